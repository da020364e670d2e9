#include "tests/support/http_client.h"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <sstream>

#include "tests/harness/process.h"

namespace edgesync::test {

using namespace std::chrono_literals;

std::string HttpAnswer::header(const std::string& name) const {
  std::istringstream lines(headers);
  std::string line;
  const std::string prefix = name + ":";
  while (std::getline(lines, line)) {
    if (line.compare(0, prefix.size(), prefix) != 0) continue;
    std::string value = line.substr(prefix.size());
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    return value;
  }
  return "";
}

HttpAnswer http_call(const std::string& target, const std::string& method, const std::string& path,
                     const std::string& body, const std::vector<std::string>& headers) {
  std::vector<std::string> argv = {"curl", "-sS", "-i", "--max-time", "30", "-X", method};
  if (method == "POST") {
    argv.insert(argv.end(), {"--data-binary", "@-", "-H", "Content-Type: application/json"});
  }
  for (const auto& h : headers) argv.insert(argv.end(), {"-H", h});
  if (!target.empty() && target.front() == '/') {
    argv.insert(argv.end(), {"--unix-socket", target, "http://localhost" + path});
  } else {
    argv.push_back("http://" + target + path);
  }
  CommandResult r = run_command(argv, body, 40s);
  HttpAnswer a;
  a.raw = r.out + r.err;
  EXPECT_TRUE(r.exited_ok()) << r.describe();
  const auto split = r.out.find("\r\n\r\n");
  if (split == std::string::npos) return a;
  a.headers = r.out.substr(0, split);
  for (auto& c : a.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::istringstream first(a.headers);
  std::string version;
  first >> version >> a.status;
  a.body = nlohmann::json::parse(r.out.substr(split + 4), nullptr, false);
  return a;
}

HttpAnswer post_events(const std::string& target, const std::string& body,
                       const std::vector<std::string>& headers) {
  return http_call(target, "POST", "/v1/events", body, headers);
}

}  // namespace edgesync::test
