// The CLI's side of the control socket (agent/control_protocol.h): one request, one reply.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "platform/status.h"

namespace edgesync::agent {

// Sends `request` and returns the agent's reply. Unavailable: nothing listens on the socket
// (no agent runs, or it has no control socket); NotFound: no socket file; IoError: the agent
// did not answer within `timeout`, or the connection broke. Permission problems say who may
// connect. `*sent` (when given) says whether the whole request reached the agent: after that, a
// failure leaves its outcome unknown.
Result<nlohmann::json> control_request(const std::string& socket_path,
                                       const nlohmann::json& request,
                                       std::chrono::milliseconds timeout, bool* sent = nullptr);

}  // namespace edgesync::agent
