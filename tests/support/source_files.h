// The project's own files, for tests that read them (contracts, fixtures, example config).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace edgesync::test {

// $EDGESYNC_SOURCE_DIR (ctest sets it), else the current directory.
std::string source_dir();
// The file's JSON; a discarded value if it cannot be read or is not JSON.
nlohmann::json read_json(const std::string& path);

}  // namespace edgesync::test
