#include "bench/ingest.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "bench/disk_io.h"
#include "bench/echo_floor.h"
#include "bench/events.h"
#include "bench/harness.h"
#include "bench/report.h"
#include "tests/harness/ingest_client.h"
#include "tests/harness/proc_stats.h"

namespace edgesync::bench {

void IngestResult::merge(IngestResult&& o) {
  producers = o.producers;
  accepted += o.accepted;
  agent_ticks += o.agent_ticks;
  producer_ticks += o.producer_ticks;
  broker_ticks += o.broker_ticks;
  agent_write_bytes =
      agent_write_bytes < 0 || o.agent_write_bytes < 0 ? -1 : agent_write_bytes + o.agent_write_bytes;
  errors += o.errors;
  elapsed_s += o.elapsed_s;
  if (first_error.empty()) first_error = o.first_error;
  lat_ms.insert(lat_ms.end(), o.lat_ms.begin(), o.lat_ms.end());
  per_s = accepted / elapsed_s;
  p50_ms = percentile(lat_ms, 0.50);
  p99_ms = percentile(lat_ms, 0.99);
}

void settle() {
  ::sync();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

IngestResult ingest_closed_loop(const std::string& socket, int producers, double seconds,
                                const std::string& prefix) {
  EventFactory f{prefix};
  std::vector<std::vector<double>> lat(producers);
  std::vector<int64_t> errors(producers, 0);
  std::vector<std::string> first_error(producers);
  std::vector<std::unique_ptr<test::IngestClient>> clients;
  for (int t = 0; t < producers; ++t) {
    clients.push_back(std::make_unique<test::IngestClient>(socket));
  }
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < producers; ++t) {
    threads.emplace_back([&, t] {
      lat[t].reserve(1 << 16);
      while (!go.load()) std::this_thread::yield();
      for (int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        std::string line = f.line(t, i);
        auto a = Clock::now();
        try {
          clients[t]->write_all(line);
          std::string reply = clients[t]->read_line();
          double ms = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
          if (reply.rfind("{\"ok\":true", 0) == 0) {
            lat[t].push_back(ms);
          } else {
            if (errors[t]++ == 0) first_error[t] = reply;
          }
        } catch (const std::exception& e) {
          if (errors[t]++ == 0) first_error[t] = e.what();
          break;
        }
      }
    });
  }
  auto t0 = Clock::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  double elapsed = seconds_since(t0);
  IngestResult r;
  r.producers = producers;
  std::vector<double> all;
  for (int t = 0; t < producers; ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    r.errors += errors[t];
    if (r.first_error.empty()) r.first_error = first_error[t];
  }
  r.accepted = static_cast<int64_t>(all.size());
  r.elapsed_s = elapsed;
  r.per_s = r.accepted / elapsed;
  r.p50_ms = percentile(all, 0.50);
  r.p99_ms = percentile(all, 0.99);
  r.lat_ms = std::move(all);
  return r;
}

int64_t self_cpu_ticks() {
  struct rusage u {};
  ::getrusage(RUSAGE_SELF, &u);
  auto us = [](const timeval& t) { return int64_t{t.tv_sec} * 1000000 + t.tv_usec; };
  return (us(u.ru_utime) + us(u.ru_stime)) * ::sysconf(_SC_CLK_TCK) / 1000000;
}

IngestResult ingest_case(const Agent& agent, test::MosquittoBroker& broker, int producers,
                         double seconds, const std::string& prefix) {
  const bool hub = broker.running();
  const int64_t a0 = test::proc_cpu_ticks(agent.pid()), p0 = self_cpu_ticks();
  const int64_t b0 = hub ? test::proc_cpu_ticks(broker.pid()) : 0;
  const int64_t w0 = proc_write_bytes(agent.pid());
  IngestResult r = ingest_closed_loop(agent.socket(), producers, seconds, prefix);
  r.agent_ticks = test::proc_cpu_ticks(agent.pid()) - a0;
  r.producer_ticks = self_cpu_ticks() - p0;
  r.broker_ticks = hub ? test::proc_cpu_ticks(broker.pid()) - b0 : 0;
  const int64_t w1 = proc_write_bytes(agent.pid());
  r.agent_write_bytes = w0 >= 0 && w1 >= 0 ? w1 - w0 : -1;
  return r;
}

IngestResult echo_case(const EchoServer& echo, int producers, double seconds,
                       const std::string& prefix) {
  const int64_t s0 = test::proc_cpu_ticks(echo.pid()), p0 = self_cpu_ticks();
  IngestResult r = ingest_closed_loop(echo.socket(), producers, seconds, prefix);
  r.agent_ticks = test::proc_cpu_ticks(echo.pid()) - s0;
  r.producer_ticks = self_cpu_ticks() - p0;
  return r;
}

std::string cpu_per_event(const IngestResult& r) {
  if (r.accepted == 0) return "";
  const double us_per_tick = 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  auto per = [&](int64_t ticks) { return fmt("%.0f", ticks * us_per_tick / r.accepted); };
  return "CPU/event: agent " + per(r.agent_ticks) + " us, producers " + per(r.producer_ticks) +
         " us, broker " + per(r.broker_ticks) + " us";
}

std::string echo_cpu_per_event(const IngestResult& r) {
  if (r.accepted == 0) return "";
  const double us_per_tick = 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  auto per = [&](int64_t ticks) { return fmt("%.0f", ticks * us_per_tick / r.accepted); };
  return "CPU/round trip: server " + per(r.agent_ticks) + " us, clients " +
         per(r.producer_ticks) + " us";
}

double cpu_us_per_event(const IngestResult& r) {
  if (r.accepted <= 0) return std::nan("");
  const double us_per_tick = 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return (r.agent_ticks + r.producer_ticks + r.broker_ticks) * us_per_tick /
         static_cast<double>(r.accepted);
}

double fill_backlog(const std::string& socket, int64_t n, const std::string& prefix,
                    int connections, int depth) {
  EventFactory f{prefix};
  std::atomic<int64_t> errors{0};
  std::string first_error;
  std::mutex mu;
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      int64_t mine = n / connections + (t < n % connections ? 1 : 0);
      try {
        test::IngestClient c(socket);
        std::string chunk;
        for (int64_t i = 0; i < mine;) {
          int64_t k = std::min<int64_t>(depth, mine - i);
          chunk.clear();
          for (int64_t j = 0; j < k; ++j) chunk += f.line(t, i + j);
          c.write_all(chunk);
          for (int64_t j = 0; j < k; ++j) {
            std::string reply = c.read_line();
            if (reply.rfind("{\"ok\":true", 0) != 0 && errors++ == 0) {
              std::lock_guard<std::mutex> lock(mu);
              first_error = reply;
            }
          }
          i += k;
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mu);
        if (errors++ == 0) first_error = e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  if (errors > 0) {
    throw std::runtime_error("backlog fill: " + std::to_string(errors.load()) +
                             " requests failed, first: " + first_error);
  }
  return n / seconds_since(t0);
}

void warm_up(const Agent& agent, int64_t events) {
  fill_backlog(agent.socket(), events, "warm");
  WatermarkReader wm(agent.db());
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (wm.read() < events) {
    if (Clock::now() > deadline) throw std::runtime_error("warm-up events not delivered");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace edgesync::bench
