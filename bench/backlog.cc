#include "bench/backlog.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <thread>

#include "bench/agent_process.h"
#include "bench/events.h"
#include "bench/harness.h"
#include "bench/ingest.h"
#include "tests/harness/proc_stats.h"

namespace edgesync::bench {
namespace {

constexpr int64_t kDefaultMaxBytes = int64_t{1} << 30;  // agent/config.h
constexpr int64_t kKeepDelivered = 10000;               // agent/config.h

}  // namespace

BacklogResult backlog_run(const Options& opt, const std::string& root, const std::string& name,
                          test::MosquittoBroker& broker, int64_t n, bool measure_idle,
                          bool count_arrivals) {
  std::string dir = root + "/" + name;
  std::filesystem::create_directories(dir);
  if (broker.running()) broker.stop();
  BacklogResult r;
  r.events = n;
  r.counted_bytes = EventFactory{name}.counted_size();
  // The whole backlog is pending at once and must fit storage.max_bytes (pending and kept
  // history share it); twice that leaves room for the history of earlier events.
  r.max_bytes = std::max(kDefaultMaxBytes, 2 * (n + kKeepDelivered) * r.counted_bytes);
  Agent agent(opt, dir, broker, {{"storage", {{"max_bytes", r.max_bytes}}}});
  agent.start();
  r.fill_per_s = fill_backlog(agent.socket(), n, name);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  r.rss_kb_backlog = test::proc_status_kb(agent.pid(), "VmRSS");

  WatermarkReader wm(agent.db());
  std::optional<ArrivalCounter> sub;
  if (count_arrivals) {
    // The agent is held still until the subscriber has subscribed: its reconnect would otherwise
    // race the subscriber's, and what it publishes first nobody would count.
    agent.pause();
    sub.emplace(opt, dir + "/subscriber", broker, "edgesync-bench-drain-" + name, name + "-", n);
  }
  const int64_t ticks0 = test::proc_cpu_ticks(agent.pid());
  auto t0 = Clock::now();
  broker.start();
  if (sub) {
    try {
      sub->wait_ready();
    } catch (const std::exception& e) {
      r.arrivals.expected = n;
      r.arrivals.unmeasured = e.what();
      sub.reset();
    }
    agent.resume();
  }
  while (true) {
    int64_t d = wm.read();
    double t = seconds_since(t0);
    if (d >= n) {
      r.drain_s = t;
      r.drain_ticks = test::proc_cpu_ticks(agent.pid()) - ticks0;
      break;
    }
    if (t > 600) {
      throw std::runtime_error("backlog not drained after 600 s (delivered " + std::to_string(d) +
                               " of " + std::to_string(n) + "); agent log " + agent.log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (sub) r.arrivals = sub->finish();
  auto st = agent.status();
  r.status_line = "pending=" + st["outbox"]["pending"].dump() +
                  " last_delivered_seq=" + st["outbox"]["last_delivered_seq"].dump() +
                  " hub=" + st["hub"]["state"].get<std::string>();
  if (st["outbox"]["pending"] != 0) {
    throw std::runtime_error("edgesync status disagrees with the drained watermark: " + st.dump());
  }
  r.hwm_kb = test::proc_status_kb(agent.pid(), "VmHWM");
  r.rss_kb_after = test::proc_status_kb(agent.pid(), "VmRSS");
  if (measure_idle) {
    // Let the watermark flush and any last acks settle first.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    int64_t a = test::proc_cpu_ticks(agent.pid());
    auto ti = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(opt.idle_seconds));
    int64_t b = test::proc_cpu_ticks(agent.pid());
    r.idle_seconds = seconds_since(ti);
    r.idle_ticks = b - a;
  }
  agent.stop();
  if (!opt.keep) {
    // A million-event outbox is half a gigabyte: give the space back before the next case.
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::error_code ec;
      std::filesystem::remove(agent.db() + suffix, ec);
    }
  }
  return r;
}

}  // namespace edgesync::bench
