// The real edgesync-hub binary (EDGESYNC_HUB_BIN) as a child process: its configuration
// written as JSON, its log kept, and its query commands run as a user would run them.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/harness/process.h"

namespace edgesync::test {

// The path of edgesync-hub; throws when EDGESYNC_HUB_BIN is not set (run through ctest).
std::string edgesync_hub_bin();

class HubProcess {
 public:
  // `dir`: where hub.json and hub.log go. `config`: the whole configuration file's JSON.
  HubProcess(std::string dir, nlohmann::json config);
  ~HubProcess();  // SIGKILL if still running

  nlohmann::json& config() { return config_; }
  // Starts `edgesync-hub run` and waits for its "consuming" line; throws with the log if it
  // exits or does not get there in time.
  void start(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::optional<int> terminate(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void kill9();
  bool running();
  std::string log() const;
  const std::string& config_path() const { return config_path_; }

  // `edgesync-hub <args> --config <this config>`.
  CommandResult run(std::vector<std::string> args) const;
  // The same with --json, parsed (null when stdout is not JSON).
  nlohmann::json run_json(std::vector<std::string> args) const;

 private:
  std::string dir_;
  std::string config_path_;
  nlohmann::json config_;
  int starts_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace edgesync::test
