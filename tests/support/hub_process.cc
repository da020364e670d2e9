#include "tests/support/hub_process.h"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "tests/harness/temp_dir.h"

namespace edgesync::test {

std::string edgesync_hub_bin() {
  const char* bin = std::getenv("EDGESYNC_HUB_BIN");
  if (!bin || !*bin) throw std::runtime_error("EDGESYNC_HUB_BIN is not set (run through ctest)");
  if (!std::filesystem::exists(bin)) {
    throw std::runtime_error(std::string("EDGESYNC_HUB_BIN does not exist: ") + bin);
  }
  return bin;
}

HubProcess::HubProcess(std::string dir, nlohmann::json config)
    : dir_(std::move(dir)), config_path_(dir_ + "/hub.json"), config_(std::move(config)) {}

HubProcess::~HubProcess() {
  if (child_ && child_->running()) kill9();
}

std::string HubProcess::log() const { return read_file(dir_ + "/hub.log"); }

bool HubProcess::running() { return child_ && child_->running(); }

void HubProcess::start(std::chrono::milliseconds timeout) {
  if (running()) throw std::runtime_error("hub already running");
  write_file(config_path_, config_.dump(2));
  const std::string marker =
      "===== [test harness] hub start #" + std::to_string(++starts_) + " =====\n";
  {
    std::ofstream out(dir_ + "/hub.log", std::ios::app);
    out << marker;
  }
  child_ = std::make_unique<ChildProcess>();
  child_->spawn({edgesync_hub_bin(), "run", "--config", config_path_}, dir_ + "/hub.log");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (!child_->running()) {
      throw std::runtime_error("edgesync-hub exited during start-up (" +
                               describe_wait_status(*child_->exit_status()) + "); log:\n" + log());
    }
    std::string text = log();
    size_t from = text.rfind(marker);
    if (from != std::string::npos && text.find("edgesync-hub: consuming", from) != std::string::npos) {
      return;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("edgesync-hub not consuming after the start-up timeout; log:\n" +
                               log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::optional<int> HubProcess::terminate(std::chrono::milliseconds timeout) {
  if (!child_) return std::nullopt;
  return child_->stop(timeout);
}

void HubProcess::kill9() {
  if (!child_ || !child_->running()) return;
  child_->signal(SIGKILL);
  child_->wait(std::chrono::seconds(10));
}

CommandResult HubProcess::run(std::vector<std::string> args) const {
  args.insert(args.begin(), edgesync_hub_bin());
  args.push_back("--config");
  args.push_back(config_path_);
  return run_command(args);
}

nlohmann::json HubProcess::run_json(std::vector<std::string> args) const {
  args.push_back("--json");
  CommandResult r = run(std::move(args));
  return nlohmann::json::parse(r.out, nullptr, false);
}

}  // namespace edgesync::test
