// edgesync-hub: the central consumer that turns the agents' events into live stock, and the
// commands that read its database.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "hub/hub_config.h"
#include "hub/hub_queries.h"
#include "hub/hub_service.h"
#include "hub/hub_tables.h"

namespace {

using edgesync::hub::HubConfig;

// The configuration, or a message and false; --database alone is enough for the queries.
bool load(const std::string& path, const std::string& database, bool queries_only,
          HubConfig* out) {
  if (queries_only && !database.empty()) {
    out->database = database;
    return true;
  }
  auto c = edgesync::hub::load_hub_config(path);
  if (!c) {
    std::cerr << "edgesync-hub: invalid configuration: " << c.status().message() << "\n";
    return false;
  }
  *out = std::move(*c);
  if (!database.empty()) out->database = database;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace edgesync::hub;
  CLI::App app{"edgesync-hub: turns the stores' events into live stock in PostgreSQL"};
  app.require_subcommand(1);
  std::string config_path = "/etc/edgesync-hub/hub.json";
  std::string database;
  bool as_json = false;
  auto common = [&](CLI::App* cmd, bool queries) {
    cmd->add_option("--config", config_path, "configuration file")->capture_default_str();
    if (queries) {
      cmd->add_option("--database", database,
                      "libpq connection string (instead of the file's \"database\")");
      cmd->add_flag("--json", as_json, "JSON instead of a table");
    }
  };
  auto* run = app.add_subcommand("run", "consume the agents' messages into PostgreSQL");
  common(run, false);
  run->footer(
      "Subscribes with MQTT v5, QoS 1 and a persistent session, commits each message's effect\n"
      "once (a repeated message changes nothing) and acknowledges a message only once its\n"
      "effect is committed: a hub stopped or killed at any point loses nothing, the broker\n"
      "sends what was not stored again when the hub is back.\n"
      "Example: edgesync-hub run --config /etc/edgesync-hub/hub.json");
  auto* check = app.add_subcommand("check-config", "validate the configuration file and exit");
  common(check, false);
  std::string store, sku;
  auto* stock = app.add_subcommand("stock", "a store's live stock levels");
  common(stock, true);
  stock->add_option("--store", store, "store id")->required();
  stock->add_option("--sku", sku, "one sku only");
  stock->footer("Example: edgesync-hub stock --store store-1 --sku 4006381333931");
  auto* lag = app.add_subcommand("lag", "per device: last seq, age of its newest event, health");
  common(lag, true);
  auto* gaps = app.add_subcommand(
      "gaps", "seq ranges neither received nor announced as dead letters (exit 1 if any)");
  common(gaps, true);
  CLI11_PARSE(app, argc, argv);

  const bool queries = !run->parsed() && !check->parsed();
  HubConfig config;
  if (!load(config_path, database, queries, &config)) return 2;
  if (check->parsed()) {
    std::cout << "configuration OK\n";
    return 0;
  }
  if (run->parsed()) return run_hub(config);

  edgesync::Result<nlohmann::json> answer = nlohmann::json::array();
  if (stock->parsed()) answer = query_stock(config.database, store, sku);
  if (lag->parsed()) answer = query_lag(config.database);
  if (gaps->parsed()) answer = query_gaps(config.database);
  if (!answer) {
    std::cerr << "edgesync-hub: " << answer.status().message() << "\n";
    return 3;
  }
  if (as_json) {
    std::cout << answer->dump(2) << "\n";
  } else if (stock->parsed()) {
    std::cout << stock_table(*answer, store);
  } else if (lag->parsed()) {
    std::cout << lag_table(*answer);
  } else {
    std::cout << gaps_table(*answer);
  }
  return gaps->parsed() && !answer->empty() ? 1 : 0;
}
