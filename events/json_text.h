// JSON the agent and the hub write for others to read: replies, the health message, the status
// file, the hub's pages. Text passed on from elsewhere (a broker's, a certificate's, the
// system's) need not be UTF-8, and nlohmann's dump() throws on a string that is not; thrown in
// an I/O callback, nothing would catch it and the process would end. Here such bytes come out
// as U+FFFD instead.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace edgesync::events {

inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace edgesync::events
