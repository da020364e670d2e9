#include "tests/support/agent_process.h"

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/harness/mosquitto_broker.h"
#include "tests/harness/net_util.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::test {

std::string edgesync_bin() {
  const char* bin = std::getenv("EDGESYNC_BIN");
  if (!bin || !*bin) {
    throw std::runtime_error("EDGESYNC_BIN is not set (run the tests through ctest)");
  }
  if (!std::filesystem::exists(bin)) {
    throw std::runtime_error(std::string("EDGESYNC_BIN does not exist: ") + bin);
  }
  return bin;
}

std::vector<std::string> edgesync_argv(const std::vector<std::string>& args) {
  // Cross builds run the agent under qemu-user: EDGESYNC_BIN_WRAPPER holds that command line
  // (space-separated); empty for native builds.
  std::vector<std::string> argv;
  if (const char* wrap = std::getenv("EDGESYNC_BIN_WRAPPER")) {
    std::istringstream words(wrap);
    for (std::string w; words >> w;) argv.push_back(w);
  }
  argv.push_back(edgesync_bin());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

AgentConfig AgentConfig::for_test(const std::string& dir, const MosquittoBroker& broker) {
  AgentConfig c;
  c.storage_path = dir + "/outbox.db";
  c.socket_path = dir + "/ingest.sock";
  c.hub_uri = broker.uri();
  c.ca_file = broker.tls().ca_file;
  c.cert_file = broker.tls().client_cert_file;
  c.key_file = broker.tls().client_key_file;
  return c;
}

nlohmann::json AgentConfig::to_json() const {
  nlohmann::json j = {
      {"device", {{"id", device_id}, {"store_id", store_id}}},
      {"storage",
       {{"path", storage_path}, {"max_bytes", max_bytes}, {"keep_delivered", keep_delivered}}},
      // Event contracts off unless a test turns them on: the workloads here exercise the
      // envelope and the path, with types and data of their own.
      {"ingest",
       {{"socket", socket_path},
        {"max_line_bytes", max_line_bytes},
        {"contracts_dir", ""},
        {"unknown_types", "accept"}}},
      {"hub",
       {{"uri", hub_uri},
        {"topic_prefix", topic_prefix},
        {"ca_file", ca_file},
        {"cert_file", cert_file},
        {"key_file", key_file},
        {"keepalive_s", keepalive_s},
        {"max_inflight", max_inflight}}},
      {"retry",
       {{"initial_ms", retry_initial_ms},
        {"max_ms", retry_max_ms},
        {"reconnect_spread_ms", retry_reconnect_spread_ms}}},
      // The tests search the log for plain text (auto would write JSON to a file).
      {"log", {{"format", "text"}}},
  };
  if (linger_ms >= 0) j["hub"]["linger_ms"] = linger_ms;
  if (refused_retry_s >= 0) j["hub"]["refused_retry_s"] = refused_retry_s;
  if (max_connections >= 0) j["ingest"]["max_connections"] = max_connections;
  if (idle_timeout_s >= 0) j["ingest"]["idle_timeout_s"] = idle_timeout_s;
  if (extra.is_object() && !extra.empty()) j.merge_patch(extra);
  return j;
}

std::string AgentConfig::to_text() const {
  return "// edgesync agent config written by the integration tests\n" + to_json().dump(2) + "\n";
}

std::string AgentConfig::topic_base() const {
  return topic_prefix + "/" + store_id + "/" + device_id;
}

AgentProcess::AgentProcess(std::string dir, AgentConfig config)
    : dir_(std::move(dir)), config_(std::move(config)), config_path_(dir_ + "/agent.json") {
  write_config();
}

AgentProcess::~AgentProcess() {
  if (child_ && child_->running()) kill9();
}

void AgentProcess::write_config() { write_file(config_path_, config_.to_text()); }

pid_t AgentProcess::pid() const { return child_ ? child_->pid() : 0; }

std::string AgentProcess::log() const { return read_file(log_path()); }

bool AgentProcess::says_ready_since(const std::string& marker) const {
  const std::string text = log();
  const size_t from = text.rfind(marker);
  if (from == std::string::npos) return false;
  const size_t line = text.find("edgesync: agent ", from);
  return line != std::string::npos && text.find(" listening on ", line) != std::string::npos;
}

void AgentProcess::start(std::chrono::milliseconds timeout) {
  if (child_ && child_->running()) throw std::runtime_error("agent already running");
  write_config();
  const std::string marker = "===== [test harness] agent start #" + std::to_string(++starts_) +
                             " =====\n";
  {
    std::ofstream out(log_path(), std::ios::app);
    out << marker;
  }
  child_ = std::make_unique<ChildProcess>();
  std::vector<std::string> argv = edgesync_argv({"agent", "--config", config_path_});
  if (!environment_.empty()) {
    // env(1) execs the agent in its own place, so pid() is still the agent's.
    std::vector<std::string> with_env{"env"};
    with_env.insert(with_env.end(), environment_.begin(), environment_.end());
    argv.insert(argv.begin(), with_env.begin(), with_env.end());
  }
  child_->spawn(argv, log_path());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (!child_->running()) {
      throw std::runtime_error("edgesync agent exited during start-up (" +
                               describe_wait_status(*child_->exit_status()) + "); log:\n" + log());
    }
    // Ready as systemd hears it: the line that follows READY=1 comes once every way in (socket,
    // spool folder, HTTP, control socket, metrics) is open, not only the ingest socket.
    if (unix_socket_accepts(config_.socket_path) && says_ready_since(marker)) return;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("edgesync agent not ready (ingest socket " + config_.socket_path +
                               " and its ready line) after the start-up timeout; log:\n" + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::optional<int> AgentProcess::terminate(std::chrono::milliseconds timeout) {
  if (!child_) return std::nullopt;
  if (!child_->running()) return child_->exit_status();
  child_->signal(SIGTERM);
  auto st = child_->wait(timeout);
  if (!st) kill9();
  return st;
}

void AgentProcess::signal(int signo) {
  if (child_ && child_->running()) child_->signal(signo);
}

void AgentProcess::kill9() {
  if (!child_ || !child_->running()) return;
  child_->signal(SIGKILL);
  child_->wait(std::chrono::seconds(10));
}

bool AgentProcess::running() { return child_ && child_->running(); }

CommandResult AgentProcess::run_cli(const std::vector<std::string>& args,
                                    const std::string& stdin_text,
                                    std::chrono::milliseconds timeout) {
  return run_command(edgesync_argv(args), stdin_text, timeout);
}

std::vector<std::string> preload_environment(const std::string& library) {
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string options = asan ? asan : "";
  return {"LD_PRELOAD=" + library,
          "ASAN_OPTIONS=" + options + (options.empty() ? "" : ":") + "verify_asan_link_order=0"};
}

}  // namespace edgesync::test
