// Headless Chromium for the tests of the hub's page, driven the way browser tests are everywhere:
// chromedriver's W3C WebDriver HTTP API, spoken with curl. chromedriver runs as a child process on
// a free loopback port; one session, its browser profile in a scratch directory.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tests/harness/process.h"

namespace edgesync::test {

struct BrowserPaths {
  std::string chromedriver;
  std::string chromium;  // the browser binary itself, not a wrapper script
};

// EDGESYNC_CHROMEDRIVER and EDGESYNC_CHROMIUM, else Debian's chromium-driver and chromium;
// nullopt (with the reason in *why) when either is missing.
std::optional<BrowserPaths> find_browser(std::string* why);

class WebDriver {
 public:
  // Starts chromedriver and a headless session. `dir` (must exist) gets chromedriver.log and the
  // profile. Throws std::runtime_error, with chromedriver's log, if either does not start.
  WebDriver(const std::string& dir, const BrowserPaths& paths);
  ~WebDriver();  // quit()
  WebDriver(const WebDriver&) = delete;
  WebDriver& operator=(const WebDriver&) = delete;

  // Loads `url` and returns once the document has loaded.
  void navigate(const std::string& url);
  // Runs `script` as the body of a function called with `args`; returns what it returns.
  nlohmann::json execute(const std::string& script,
                         const nlohmann::json& args = nlohmann::json::array());
  // The same, asynchronous: the script calls its last argument with the result, within
  // `timeout` (else a script-timeout error is thrown).
  nlohmann::json execute_async(const std::string& script, const nlohmann::json& args,
                               std::chrono::milliseconds timeout);
  // What the browser shows, as PNG bytes.
  std::string screenshot_png();
  // Ends the session (the browser exits) and stops chromedriver. Idempotent.
  void quit();
  std::string log() const;

 private:
  // One WebDriver command; throws std::runtime_error with the W3C error on anything but 200.
  nlohmann::json call(const std::string& method, const std::string& path,
                      const nlohmann::json& body, std::chrono::seconds max_time);

  std::string dir_;
  int port_ = 0;
  std::string session_;
  std::unique_ptr<ChildProcess> driver_;
};

}  // namespace edgesync::test
