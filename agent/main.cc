// edgesync: one binary, subcommands for the agent and for the people around it.
#include <CLI/CLI.hpp>
#include <iostream>

#include "agent/agent.h"
#include "agent/cli.h"
#include "agent/config.h"
#include "agent/version.h"

namespace {

// Loads the config or prints every problem with its key path; exit code 2 on failure.
bool load(const std::string& path, edgesync::agent::FileChecks files,
          edgesync::agent::Config* out) {
  auto c = edgesync::agent::load_config(path, files);
  if (!c) {
    std::cerr << "edgesync: invalid configuration " << c.status().message() << "\n";
    return false;
  }
  *out = std::move(*c);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace edgesync::agent;
  CLI::App app{"edgesync: durable, real-time capture of POS and inventory events to the hub"};
  app.require_subcommand(1);
  app.set_version_flag("--version", kVersion);
  std::string config_path = "/etc/edgesync/edgesync.json";

  auto* agent = app.add_subcommand("agent", "run the agent (ingest, outbox, publisher)");
  agent->add_option("--config", config_path, "configuration file")->capture_default_str();

  auto* check = app.add_subcommand("check-config", "validate a configuration file and exit");
  check->add_option("--config", config_path, "configuration file")->capture_default_str();

  std::string input, socket_override;
  auto* send = app.add_subcommand("send", "send NDJSON events through the ingest socket");
  send->add_option("--config", config_path, "configuration file")->capture_default_str();
  send->add_option("--socket", socket_override, "ingest socket (overrides the config)");
  send->add_option("file", input, "NDJSON file (default: standard input)");

  bool json = false;
  auto* status = app.add_subcommand("status", "connection state and outbox figures");
  status->add_option("--config", config_path, "configuration file")->capture_default_str();
  status->add_flag("--json", json, "machine-readable output");

  bool all = false;
  size_t limit = 100;
  auto* outbox = app.add_subcommand("outbox", "list events in the outbox (pending by default)");
  outbox->add_option("--config", config_path, "configuration file")->capture_default_str();
  outbox->add_flag("--all", all, "include delivered events still kept for de-duplication");
  outbox->add_option("--limit", limit, "at most this many events")->capture_default_str();
  outbox->add_flag("--json", json, "machine-readable output");

  auto* dead = app.add_subcommand("dead-letters", "list events the hub refused for good");
  dead->add_option("--config", config_path, "configuration file")->capture_default_str();
  dead->add_option("--limit", limit, "at most this many")->capture_default_str();
  dead->add_flag("--json", json, "machine-readable output");

  CLI11_PARSE(app, argc, argv);

  Config config;
  if (*send && !socket_override.empty()) return cli_send(socket_override, input);
  // Only the agent and check-config need the TLS files; the other tools must work for accounts
  // that may not read the device's key.
  const bool needs_tls_files = *agent || *check;
  if (!load(config_path, needs_tls_files ? FileChecks::kCheck : FileChecks::kSkip, &config)) {
    return 2;
  }
  if (*agent) return run_agent(config);
  if (*check) {
    std::cout << config_path << ": ok\n";
    return 0;
  }
  if (*send) return cli_send(config.ingest.socket, input);
  if (*status) return cli_status(config, json);
  if (*outbox) return cli_outbox_list(config, all, limit, json);
  if (*dead) return cli_dead_letters(config, limit, json);
  return 2;
}
