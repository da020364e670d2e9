// The query commands' answers as tables a person reads (the same JSON --json prints).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace edgesync::hub {

std::string stock_table(const nlohmann::json& rows, const std::string& store);
std::string lag_table(const nlohmann::json& rows);
std::string gaps_table(const nlohmann::json& rows);

}  // namespace edgesync::hub
