// What checking an event against its contract costs the ingest thread: parse_event on the same
// request lines with and without the shipped contracts, per event, on this machine. Prints the
// figures and the share of the agent's whole CPU per event that validation takes, against the
// target of at most a fifth (docs/PERFORMANCE.md, "Contracts").
//   edgesync_contract_bench [SOURCE_DIR] [EVENTS] [AGENT_US_PER_EVENT]
// AGENT_US_PER_EVENT: the agent's CPU per event from edgesync_bench's paced runs (all threads);
// default 330, this machine class's figure at 200 events/s.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "events/contract_registry.h"
#include "agent/event_contract.h"

namespace {

using nlohmann::json;
using edgesync::agent::ContractCheck;

// A till's sale of `lines` lines, about 150 bytes a line: the common case at a store.
std::string sale_line(int n, int lines) {
  json l = json::array();
  for (int i = 1; i <= lines; ++i) {
    l.push_back({{"line_no", i},
                 {"sku", "SKU-" + std::to_string(100000 + i)},
                 {"gtin", "4006381333931"},
                 {"qty", 1 + i % 3},
                 {"unit_price_minor", 199 + i},
                 {"line_total_minor", (199 + i) * (1 + i % 3)}});
  }
  json data = {{"receipt_id", "r" + std::to_string(n)}, {"till_id", "till-3"},
               {"operator_id", "op-17"},                {"currency", "EUR"},
               {"lines", l},                            {"total_minor", 1000}};
  return json({{"id", "till-3/r" + std::to_string(n)}, {"type", "pos.sale.completed"}, {"v", 1},
               {"data", data}})
      .dump();
}

double us_per_event(const std::vector<std::string>& lines, const ContractCheck& check) {
  edgesync::agent::IdGenerator ids;
  edgesync::storage::AppendRequest req;
  edgesync::agent::ParseFailure failure;
  const auto t0 = std::chrono::steady_clock::now();
  size_t ok = 0;
  for (const auto& line : lines) ok += edgesync::agent::parse_event(line, 1, ids, check, &req, &failure);
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  if (ok != lines.size()) {
    std::fprintf(stderr, "refused: %s\n", failure.message.c_str());
    std::exit(1);
  }
  return us / static_cast<double>(lines.size());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string src = argc > 1 ? argv[1] : ".";
  const int events = argc > 2 ? std::atoi(argv[2]) : 20000;
  const double agent_us = argc > 3 ? std::atof(argv[3]) : 330.0;
  auto reg = edgesync::agent::ContractRegistry::load({src + "/config/contracts/events"});
  if (!reg) {
    std::fprintf(stderr, "%s\n", reg.status().to_string().c_str());
    return 1;
  }
  std::printf("contract check cost: parse_event per event, %d events each (agent CPU per event "
              "taken as %.0f us)\n",
              events, agent_us);
  std::printf("%-22s %12s %12s %12s %14s\n", "event", "bytes", "unchecked", "checked",
              "check / agent");
  for (int lines_per_sale : {1, 5, 20}) {
    std::vector<std::string> lines;
    for (int i = 0; i < events; ++i) lines.push_back(sale_line(i, lines_per_sale));
    us_per_event(lines, ContractCheck{reg->get(), false});  // warm caches and regexes
    const double plain = us_per_event(lines, ContractCheck{});
    const double checked = us_per_event(lines, ContractCheck{reg->get(), false});
    std::printf("sale, %2d line(s)       %12zu %9.1f us %9.1f us %13.1f%%\n", lines_per_sale,
                lines[0].size(), plain, checked, 100.0 * (checked - plain) / agent_us);
  }
  std::printf("target: the check (checked - unchecked) at most 20%% of the agent's CPU per event\n");
  return 0;
}
