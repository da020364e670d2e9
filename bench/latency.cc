#include "bench/latency.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "bench/agent_process.h"
#include "bench/events.h"
#include "bench/harness.h"
#include "bench/ingest.h"
#include "bench/report.h"
#include "bench/subscriber.h"
#include "tests/harness/ingest_client.h"
#include "tests/harness/proc_stats.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::bench {
namespace {

// Stamps the first arrival of each event of the current run (ids "<prefix>-000-<index>") at a
// QoS 1 subscriber to every event topic of the bench's device.
class ArrivalRecorder {
 public:
  explicit ArrivalRecorder(const test::MosquittoBroker& broker)
      : sub_(broker.uri(), broker.tls(), "edgesync-bench-subscriber",
             [this](const char* p, size_t n, int64_t t) { on_message(p, n, t); }) {}

  void expect(const std::string& prefix, int64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    prefix_ = prefix + "-000-";
    arrival_ns_.assign(static_cast<size_t>(n), 0);
    arrived_ = 0;
  }
  int64_t arrived() const { return arrived_.load(); }
  // Steady-clock ns of event i's first arrival; 0 if it has not arrived.
  int64_t arrival_ns(int64_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return arrival_ns_[static_cast<size_t>(i)];
  }

 private:
  void on_message(const char* payload, size_t size, int64_t t) {
    const std::string id = payload_event_id(payload, size);
    std::lock_guard<std::mutex> lock(mu_);
    if (id.size() != prefix_.size() + 9 || id.compare(0, prefix_.size(), prefix_) != 0) return;
    const int64_t i = std::atoll(id.c_str() + prefix_.size());
    if (i < 0 || i >= static_cast<int64_t>(arrival_ns_.size()) || arrival_ns_[i] != 0) return;
    arrival_ns_[i] = t;
    ++arrived_;
  }

  std::mutex mu_;
  std::string prefix_ = "-";
  std::vector<int64_t> arrival_ns_;
  std::atomic<int64_t> arrived_{0};
  EventSubscriber sub_;  // last: disconnected before what its handler touches goes
};

// Sends `rate` events/s for `seconds` on one connection: write a line, read its reply, sleep
// until the next slot. Slots come from the steady clock (start + i * period), so a slow reply
// does not shift every later send.
LatencyResult paced_run(const Agent& agent, test::IngestClient& producer, ArrivalRecorder& sub,
                        const BlockDevice& device, int rate, double seconds,
                        const std::string& prefix) {
  const int64_t n = std::max<int64_t>(1, std::llround(rate * seconds));
  EventFactory f{prefix};
  std::vector<std::string> lines;
  lines.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) lines.push_back(f.line(0, i));
  std::vector<int64_t> send_ns(static_cast<size_t>(n), 0);  // 0: not acked
  std::vector<double> ack_ms;
  ack_ms.reserve(static_cast<size_t>(n));
  sub.expect(prefix, n);

  LatencyResult r;
  r.rate = rate;
  const auto period = std::chrono::nanoseconds(1000000000LL / rate);
  const int64_t ticks0 = test::proc_cpu_ticks(agent.pid());
  const auto threads0 = test::proc_thread_cpu_ticks(agent.pid());
  IoMeter io(agent.pid(), device);
  const auto start = Clock::now() + std::chrono::milliseconds(20);
  for (int64_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(start + i * period);
    const int64_t a = now_ns();
    ++r.sent;
    std::string reply;
    try {
      producer.write_all(lines[i]);
      reply = producer.read_line();
    } catch (const std::exception& e) {
      if (r.errors++ == 0) r.first_error = e.what();
      break;
    }
    const int64_t b = now_ns();
    if (reply.rfind("{\"ok\":true", 0) != 0) {
      if (r.errors++ == 0) r.first_error = reply;
      continue;
    }
    send_ns[i] = a;
    ack_ms.push_back((b - a) / 1e6);
    ++r.acked;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  // Wait for the stragglers; anything later than this counts as never arrived.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (sub.arrived() < r.acked && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.agent_ticks = test::proc_cpu_ticks(agent.pid()) - ticks0;
  for (const auto& [name, ticks] : test::proc_thread_cpu_ticks(agent.pid())) {
    auto it = threads0.find(name);
    r.thread_ticks[name] = ticks - (it == threads0.end() ? 0 : it->second);
  }
  r.io = io.finish();

  std::vector<double> lat;
  lat.reserve(static_cast<size_t>(r.acked));
  for (int64_t i = 0; i < n; ++i) {
    if (send_ns[i] == 0) continue;
    const int64_t t = sub.arrival_ns(i);
    if (t == 0) {
      ++r.missing;
    } else {
      lat.push_back((t - send_ns[i]) / 1e6);
    }
  }
  r.p50_ms = percentile(lat, 0.50);
  r.p99_ms = percentile(lat, 0.99);
  r.max_ms = lat.empty() ? 0 : lat.back();  // percentile() sorted it
  r.ack_p50_ms = percentile(ack_ms, 0.50);
  r.ack_p99_ms = percentile(ack_ms, 0.99);
  return r;
}

}  // namespace

double LatencyResult::agent_cpu_us_per_event() const {
  if (acked == 0 || agent_ticks < 0) return -1;
  return agent_ticks * 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK)) / acked;
}

std::string LatencyResult::cpu_per_event_by_thread() const {
  if (acked == 0) return "n/a";
  const double us_per_tick = 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::string out;
  for (const auto& [name, ticks] : thread_ticks) {
    if (!out.empty()) out += ", ";
    out += name + " " + fmt("%.0f us", ticks * us_per_tick / acked);
  }
  return out;
}

std::vector<LatencyResult> latency_runs(const Options& opt, const std::string& root,
                                        test::MosquittoBroker& broker, const BlockDevice& device) {
  const std::string dir = root + "/latency";
  std::filesystem::create_directories(dir);
  if (!broker.running()) broker.start();
  Agent agent(opt, dir, broker);
  agent.start();
  if (!agent.wait_hub_connected(std::chrono::seconds(20))) {
    throw std::runtime_error("agent did not connect to the hub; log:\n" +
                             test::read_file(agent.log()));
  }
  ArrivalRecorder sub(broker);
  test::IngestClient producer(agent.socket());
  // A few events through the whole path first, so that first-use costs (page cache, the
  // subscriber's session, lazy allocations) are not in the 20 ev/s figure.
  paced_run(agent, producer, sub, device, 50, 0.4, "latprime");
  std::vector<LatencyResult> out;
  for (int k = 0; k < 3; ++k) {
    const int rate = kLatencyRates[k];
    progress("paced latency: " + std::to_string(rate) + " ev/s for " +
             fmt("%.0f", opt.latency_seconds[k]) + " s, subscriber on the broker");
    settle();
    out.push_back(paced_run(agent, producer, sub, device, rate, opt.latency_seconds[k],
                            "lat" + std::to_string(rate)));
  }
  agent.stop();
  return out;
}

}  // namespace edgesync::bench
