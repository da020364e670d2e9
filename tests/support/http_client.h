// An HTTP client for the tests of the agent's HTTP ingest: curl, the way an integrator's script
// calls it, so what is tested is what a producer's client sees on the wire.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgesync::test {

struct HttpAnswer {
  int status = 0;       // 0: no HTTP answer (curl failed; raw says why)
  std::string headers;  // the response's header lines, lower-cased
  nlohmann::json body;  // discarded if not JSON
  std::string raw;      // everything curl printed, for failure messages

  // The value of one header ("" if absent); `name` in lower case.
  std::string header(const std::string& name) const;
};

// One request through curl. `target`: "HOST:PORT", or the absolute path of a Unix socket.
// A POST sends `body` as application/json; `headers` are extra "Name: value" lines.
HttpAnswer http_call(const std::string& target, const std::string& method, const std::string& path,
                     const std::string& body, const std::vector<std::string>& headers = {});

// POST /v1/events.
HttpAnswer post_events(const std::string& target, const std::string& body,
                       const std::vector<std::string>& headers = {});

}  // namespace edgesync::test
