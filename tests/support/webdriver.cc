#include "tests/support/webdriver.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "tests/harness/net_util.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::test {

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string from_env(const char* name, const std::string& otherwise) {
  const char* v = std::getenv(name);
  return v && *v ? v : otherwise;
}

}  // namespace

std::optional<BrowserPaths> find_browser(std::string* why) {
  BrowserPaths p;
  p.chromedriver = from_env("EDGESYNC_CHROMEDRIVER", "/usr/bin/chromedriver");
  // Debian's /usr/bin/chromium is a shell script that chromedriver cannot drive.
  p.chromium = from_env("EDGESYNC_CHROMIUM", "/usr/lib/chromium/chromium");
  for (const std::string* f : {&p.chromedriver, &p.chromium}) {
    if (!std::filesystem::exists(*f)) {
      if (why) *why = *f + " is missing (Debian: chromium chromium-driver, see .ci/deps.sh)";
      return std::nullopt;
    }
  }
  return p;
}

WebDriver::WebDriver(const std::string& dir, const BrowserPaths& paths) : dir_(dir) {
  port_ = pick_free_port();
  driver_ = std::make_unique<ChildProcess>();
  driver_->spawn({paths.chromedriver, "--port=" + std::to_string(port_)},
                 dir_ + "/chromedriver.log");
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (true) {
    if (!driver_->running()) {
      throw std::runtime_error("chromedriver exited at start; log:\n" + log());
    }
    if (tcp_port_accepts(port_)) {
      try {
        if (call("GET", "/status", nullptr, 5s).value("ready", false)) break;
      } catch (const std::exception&) {
        // not answering yet
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("chromedriver not ready after 30 s; log:\n" + log());
    }
    std::this_thread::sleep_for(50ms);
  }
  const json options = {
      {"binary", paths.chromium},
      {"args",
       // As root (CI containers) Chromium's sandbox cannot start; /dev/shm is small in
       // containers; a laptop-sized window, so the page is laid out as an operator sees it.
       {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--window-size=1366,768", "--user-data-dir=" + dir_ + "/profile"}}};
  json session =
      call("POST", "/session",
           {{"capabilities",
             {{"alwaysMatch", {{"browserName", "chrome"}, {"goog:chromeOptions", options}}}}}},
           90s);
  session_ = session.value("sessionId", "");
  if (session_.empty()) throw std::runtime_error("no session id in " + session.dump());
}

WebDriver::~WebDriver() { quit(); }

std::string WebDriver::log() const { return read_file(dir_ + "/chromedriver.log"); }

json WebDriver::call(const std::string& method, const std::string& path, const json& body,
                     std::chrono::seconds max_time) {
  std::vector<std::string> argv = {"curl", "-sS",           "-X",
                                   method, "--max-time",    std::to_string(max_time.count()),
                                   "-w",   "\n%{http_code}"};
  std::string input;
  if (!body.is_null()) {
    // "Expect:" off: curl would otherwise wait for a 100 Continue before a body over 1 KiB.
    argv.insert(argv.end(), {"-H", "Content-Type: application/json; charset=utf-8", "-H",
                             "Expect:", "--data-binary", "@-"});
    input = body.dump();
  }
  argv.push_back("http://127.0.0.1:" + std::to_string(port_) + path);
  CommandResult r = run_command(argv, input, max_time + 10s);
  if (!r.exited_ok()) {
    throw std::runtime_error("WebDriver " + method + " " + path + ": curl: " + r.describe());
  }
  const auto last = r.out.rfind('\n');
  const std::string status = last == std::string::npos ? "" : r.out.substr(last + 1);
  json reply = json::parse(r.out.substr(0, last == std::string::npos ? 0 : last), nullptr, false);
  if (status != "200" || !reply.is_object()) {
    std::string what = r.out;
    if (reply.is_object() && reply["value"].is_object()) {
      what = reply["value"].value("error", "") + ": " + reply["value"].value("message", "");
    }
    throw std::runtime_error("WebDriver " + method + " " + path + " (" + status + "): " + what);
  }
  return reply["value"];
}

void WebDriver::navigate(const std::string& url) {
  call("POST", "/session/" + session_ + "/url", {{"url", url}}, 60s);
}

json WebDriver::execute(const std::string& script, const json& args) {
  return call("POST", "/session/" + session_ + "/execute/sync",
              {{"script", script}, {"args", args}}, 60s);
}

json WebDriver::execute_async(const std::string& script, const json& args,
                              std::chrono::milliseconds timeout) {
  call("POST", "/session/" + session_ + "/timeouts", {{"script", timeout.count()}}, 30s);
  const auto max_time = std::chrono::duration_cast<std::chrono::seconds>(timeout) + 30s;
  return call("POST", "/session/" + session_ + "/execute/async",
              {{"script", script}, {"args", args}}, max_time);
}

std::string WebDriver::screenshot_png() {
  const std::string b64 =
      call("GET", "/session/" + session_ + "/screenshot", nullptr, 60s).get<std::string>();
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned int bits = 0;
  int have = 0;
  for (char c : b64) {
    const auto v = kAlphabet.find(c);
    if (v == std::string::npos) continue;  // '=' and line breaks
    bits = (bits << 6) | static_cast<unsigned int>(v);
    have += 6;
    if (have >= 8) {
      have -= 8;
      out.push_back(static_cast<char>((bits >> have) & 0xff));
    }
  }
  return out;
}

void WebDriver::quit() {
  if (!session_.empty()) {
    try {
      call("DELETE", "/session/" + session_, nullptr, 30s);
    } catch (const std::exception&) {
      // chromedriver is stopped below either way
    }
    session_.clear();
  }
  if (driver_) {
    driver_->stop(10s);
    driver_.reset();
  }
}

}  // namespace edgesync::test
