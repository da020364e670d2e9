// What checking an event against its contract costs, against the agent's whole CPU for the same
// events in the same run (docs/PERFORMANCE.md, "Contracts"; the target: at most a fifth).
//   edgesync_contract_bench SOURCE_DIR [--agent PATH] [--events N]
// In process: parse_event on the same request lines with and without the shipped contracts, per
// event. With --agent: the agent binary started twice per event size, once with the shipped
// contracts and once with none (the sale type then passes unchecked), taking the same lines
// through its socket, pipelined in windows of 500 and lock-step (one line, its reply, the next,
// as a till sends); its CPU (utime + stime of all threads, /proc) per event in each case. The hub
// is unreachable, so the figures are ingest alone: the share they give is an upper bound of
// the check's share of a delivering agent's CPU.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/event_contract.h"
#include "events/contract_registry.h"
#include "tests/harness/ingest_client.h"
#include "tests/harness/net_util.h"
#include "tests/harness/proc_stats.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"

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

// The agent's CPU per event (us) for `lines`, pipelined in windows of 500, then for the first
// `lockstep` of `lockstep_lines` one at a time. contracts_dir "" turns the contracts off.
struct AgentCpu {
  double pipelined_us = 0;
  double lockstep_us = 0;
};

AgentCpu agent_cpu(const std::string& agent_bin, const std::string& contracts_dir,
                   const std::vector<std::string>& lines,
                   const std::vector<std::string>& lockstep_lines) {
  namespace test = edgesync::test;
  test::TempDir dir("es-contract-bench");
  const std::string d = dir.path().string();
  const json config = {
      {"device", {{"id", "bench"}, {"store_id", "store-1"}}},
      {"storage", {{"path", d + "/outbox.db"}}},
      {"ingest",
       {{"socket", d + "/ingest.sock"},
        {"contracts_dir", contracts_dir},
        {"unknown_types", "accept"}}},
      // Nobody listens there: ingest alone.
      {"hub", {{"uri", "tcp://127.0.0.1:1"}, {"allow_insecure", true}}},
      {"log", {{"format", "text"}}}};
  test::write_file(d + "/agent.json", config.dump(2));
  test::ChildProcess agent;
  agent.spawn({agent_bin, "agent", "--config", d + "/agent.json"}, d + "/agent.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!test::unix_socket_accepts(d + "/ingest.sock")) {
    if (!agent.running() || std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("agent did not start:\n" + test::read_file(d + "/agent.log"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  test::IngestClient producer(d + "/ingest.sock");
  auto expect_ok = [&](const std::optional<std::string>& reply) {
    if (!reply || reply->find("\"ok\":true") == std::string::npos) {
      throw std::runtime_error("agent refused an event: " + reply.value_or("(no reply)"));
    }
  };
  const double us_per_tick = 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
  AgentCpu cpu;
  int64_t t0 = test::proc_cpu_ticks(agent.pid());
  for (size_t i = 0; i < lines.size(); i += 500) {
    const size_t n = std::min<size_t>(500, lines.size() - i);
    std::string window;
    for (size_t k = 0; k < n; ++k) window += lines[i + k] + "\n";
    producer.write_all(window);
    for (size_t k = 0; k < n; ++k) expect_ok(producer.read_line(std::chrono::seconds(30)));
  }
  int64_t t1 = test::proc_cpu_ticks(agent.pid());
  cpu.pipelined_us = (t1 - t0) * us_per_tick / static_cast<double>(lines.size());
  for (const auto& line : lockstep_lines) {
    producer.write_all(line + "\n");
    expect_ok(producer.read_line(std::chrono::seconds(30)));
  }
  const int64_t t2 = test::proc_cpu_ticks(agent.pid());
  cpu.lockstep_us = (t2 - t1) * us_per_tick / static_cast<double>(lockstep_lines.size());
  agent.signal(SIGTERM);
  agent.wait(std::chrono::seconds(20));
  return cpu;
}

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: edgesync_contract_bench SOURCE_DIR [--agent PATH] [--events N]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  const std::string src = argv[1];
  std::string agent_bin;
  int events = 20000;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--agent" && i + 1 < argc) {
      agent_bin = argv[++i];
    } else if (a == "--events" && i + 1 < argc) {
      events = std::atoi(argv[++i]);
    } else {
      usage();
    }
  }
  const std::string contracts = src + "/config/contracts/events";
  auto reg = edgesync::agent::ContractRegistry::load({contracts});
  if (!reg) {
    std::fprintf(stderr, "%s\n", reg.status().to_string().c_str());
    return 1;
  }
  std::printf("contract check cost, %d events per figure\n", events);
  std::printf("%-16s %6s | %-22s | %-29s | %-29s\n", "", "", "in process (parse_event)",
              "agent CPU, pipelined", "agent CPU, lock-step");
  std::printf("%-16s %6s | %10s %11s | %8s %8s %11s | %8s %8s %11s\n", "event", "bytes",
              "unchecked", "checked", "off", "on", "check share", "off", "on", "check share");
  bool met = true;
  for (int lines_per_sale : {1, 5, 20}) {
    std::vector<std::string> lines, lockstep;
    for (int i = 0; i < events; ++i) lines.push_back(sale_line(i, lines_per_sale));
    for (int i = 0; i < events / 4; ++i) lockstep.push_back(sale_line(events + i, lines_per_sale));
    us_per_event(lines, ContractCheck{reg->get(), false});  // warm caches and regexes
    const double plain = us_per_event(lines, ContractCheck{});
    const double checked = us_per_event(lines, ContractCheck{reg->get(), false});
    std::printf("sale, %2d line(s) %6zu | %7.1f us %8.1f us |", lines_per_sale, lines[0].size(),
                plain, checked);
    if (agent_bin.empty()) {
      std::printf(" (no --agent)\n");
      continue;
    }
    const AgentCpu off = agent_cpu(agent_bin, "", lines, lockstep);
    const AgentCpu on = agent_cpu(agent_bin, contracts, lines, lockstep);
    // The check's share of the agent's CPU per event with contracts on, from the agent's own
    // difference and, as a cross-check, from the in-process difference.
    auto share = [](double off_us, double on_us) { return 100.0 * (on_us - off_us) / on_us; };
    const double pipelined_share = share(off.pipelined_us, on.pipelined_us);
    const double lockstep_share = share(off.lockstep_us, on.lockstep_us);
    std::printf(" %5.0f us %5.0f us %10.1f%% | %5.0f us %5.0f us %10.1f%%\n", off.pipelined_us,
                on.pipelined_us, pipelined_share, off.lockstep_us, on.lockstep_us,
                lockstep_share);
    std::printf("%-16s %6s | %22s | in-process check / agent on: %4.1f%% pipelined, %4.1f%% "
                "lock-step\n",
                "", "", "", 100.0 * (checked - plain) / on.pipelined_us,
                100.0 * (checked - plain) / on.lockstep_us);
    met = met && pipelined_share <= 20.0 && lockstep_share <= 20.0;
  }
  std::printf("target: the check at most 20%% of the agent's CPU per event%s\n",
              agent_bin.empty() ? " (needs --agent)" : met ? ": met" : ": NOT met");
  return agent_bin.empty() || met ? 0 : 1;
}
