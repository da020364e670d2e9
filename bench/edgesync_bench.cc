// edgesync benchmark: this machine's raw limits (fdatasync, SQLite as the agent opens it, a bare
// paho MQTT v5 TLS publisher, a do-nothing socket server) and the real agent's figures measured
// against them, in one run.
//
//   edgesync_bench --agent PATH [--quick] [--dir BASE] [--keep] [narrower modes, see usage]
//
// Everything runs under a scratch directory below BASE ($TMPDIR or /tmp by default): the
// databases, the fdatasync file, the broker config and logs, the agent's socket. The exit code
// is 0 whenever the bench could run; targets are reported as PASS/MISS, not asserted.
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/agent_process.h"
#include "bench/arrival_rate.h"
#include "bench/backlog.h"
#include "bench/delivery_rounds.h"
#include "bench/disk_io.h"
#include "bench/echo_floor.h"
#include "bench/events.h"
#include "bench/harness.h"
#include "bench/ingest.h"
#include "bench/ingest_rounds.h"
#include "bench/latency.h"
#include "bench/options.h"
#include "bench/paho_client.h"
#include "bench/raw_storage.h"
#include "bench/report.h"
#include "tests/harness/mosquitto_broker.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/tls_material.h"

namespace edgesync::bench {
namespace {

// ------------------------------------------------------------------------------------------
// Report.

// "190 us" or "n/a".
std::string us_or_na(double us) { return us < 0 ? std::string("n/a") : fmt("%.0f us", us); }

void print_latency(const std::vector<LatencyResult>& lat, const SqliteResult& paced,
                   const BlockDevice& device) {
  print_section(
      "End-to-end latency: agent with its default pacing config, 1 producer at a steady pace,\n"
      "QoS 1 subscriber on the same broker; producer's write -> arrival at the subscriber");
  for (const auto& l : lat) {
    print_row(std::to_string(l.rate) + " ev/s: " + std::to_string(l.acked) + " events in " +
                  fmt("%.1f", l.seconds) + " s",
              "p99 " + fmt("%.2f ms", l.p99_ms),
              "p50 " + fmt("%.2f", l.p50_ms) + " ms, max " + fmt("%.2f", l.max_ms) +
                  " ms, never arrived " + std::to_string(l.missing) + "; ack p50 " +
                  fmt("%.2f", l.ack_p50_ms) + " ms, p99 " + fmt("%.2f", l.ack_p99_ms) + " ms" +
                  (l.errors ? ", " + std::to_string(l.errors) + " ERRORS: " + l.first_error : ""));
    const bool floor = l.rate == kPacedSqliteRate;  // the pace of the CPU target
    print_row("", "", "agent CPU/event " + us_or_na(l.agent_cpu_us_per_event()) +
                          (floor ? " (raw SQLite paced: " + us_or_na(paced.cpu_us_per_row()) + ")"
                                 : "") +
                          ", written/event: agent " + bytes_per_event(l.io.process_bytes, l.acked) +
                          " (write_bytes" +
                          (floor ? "; raw SQLite paced: " +
                                       bytes_per_event(paced.written_bytes, paced.rows)
                                 : "") +
                          "), device " + bytes_per_event(l.io.device_bytes, l.acked) +
                          " (device-wide)");
    print_row("", "", "  by thread: " + l.cpu_per_event_by_thread());
  }
  print_row("   raw SQLite paced: 1 row/txn at " + std::to_string(kPacedSqliteRate) + " rows/s",
            us_or_na(paced.cpu_us_per_row()) + "/row",
            std::to_string(paced.rows) + " rows in " + fmt("%.1f", paced.elapsed_s) +
                " s; CPU of the inserting thread (user+system), written " +
                bytes_per_event(paced.written_bytes, paced.rows) +
                "/row (write_bytes): the floor for the agent at that pace");
  std::printf("  CPU: utime+stime of all the agent's threads over the run (%ld ticks/s). Written:\n"
              "  the agent's /proc/PID/io write_bytes, and the sectors written to %s, which\n"
              "  counts every process on the machine and the file system's journal.\n",
              ::sysconf(_SC_CLK_TCK),
              device.readable() ? device.name().c_str() : "the scratch dir's device (n/a here)");
}

// "18500 ev/s (10%..90% arrivals)" or "n/a (why)".
std::string arrival_rate_text(const ArrivalRate& a, const char* unit) {
  if (!a.measured()) return "n/a (" + a.unmeasured + ")";
  return fmt("%.0f ", a.per_s()) + unit + " (10%..90% arrivals)";
}

// What a subscriber saw besides the rate. Events published before it had subscribed only move
// the 10 % mark (the window counts distinct arrivals); later ones missing would be a fault.
std::string arrival_notes(const ArrivalRate& a) {
  std::string out;
  if (a.early > 0) {
    out += "; " + std::to_string(a.early) + " published before the subscriber was up";
  }
  const int64_t lost = a.expected - a.arrived - a.early;
  if (lost > 0) out += "; " + std::to_string(lost) + " NEVER ARRIVED";
  if (a.duplicates > 0) out += "; " + std::to_string(a.duplicates) + " duplicates";
  return out;
}

void print_raw(const SyncResult& fsync, const IngestFigures& in, const DeliveryFigures& d) {
  const PahoResult& paho = d.paho;
  print_section("Raw limits");
  print_row("1. write 300 B + fdatasync", fmt("%.0f /s", fsync.per_s),
            "p50 " + fmt("%.2f", fsync.p50_ms) + " ms, p99 " + fmt("%.2f", fsync.p99_ms) + " ms");
  print_row("2a. SQLite WAL FULL, 1 row/txn", fmt("%.0f rows/s", in.sq1.rows_per_s),
            std::to_string(in.sq1.rows) + " rows (counted " + std::to_string(in.sq1.counted_bytes) +
                " B each), CPU " + fmt("%.0f", 1e6 * in.sq1.cpu_s / in.sq1.rows) + " us/row" +
                (in.sq1.written_bytes >= 0
                     ? ", written " + std::to_string(in.sq1.written_bytes / std::max<int64_t>(in.sq1.rows, 1)) +
                           " B/row (the floor for a lone event's commit)"
                     : ""));
  print_row("2b. SQLite WAL FULL, 64 rows/txn", fmt("%.0f rows/s", in.sq64.rows_per_s),
            std::to_string(in.sq64.rows) + " rows, CPU " +
                fmt("%.1f", 1e6 * in.sq64.cpu_s / in.sq64.rows) + " us/row");
  print_row("    the same, the ids of 64 producers in turn",
            fmt("%.0f rows/s", in.sq64_producers.rows_per_s),
            std::to_string(in.sq64_producers.rows) + " rows, CPU " +
                fmt("%.1f", in.sq64_producers.cpu_us_per_row()) +
                " us/row: the 64-producer case's rows, 64 places in the id index per commit");
  print_row("2c. SQLite WAL FULL, 1000 rows/txn", fmt("%.0f rows/s", in.sq1000.rows_per_s),
            std::to_string(in.sq1000.rows) + " rows, CPU " +
                fmt("%.1f", 1e6 * in.sq1000.cpu_s / in.sq1000.rows) + " us/row");
  print_row("3. bare paho v5 QoS1 TLS, window 64, with a subscriber",
            fmt("%.0f msg/s", paho.msgs_per_s),
            std::to_string(paho.n) + " msgs of " + std::to_string(paho.payload_bytes) +
                " B, acked at the publisher; at the subscriber " +
                arrival_rate_text(d.paho_arrivals, "msg/s") +
                (paho.failures ? ", " + std::to_string(paho.failures) + " FAILED" : ""));
  print_row("4. echo server (epoll, fixed reply), 64 lock-step clients",
            fmt("%.0f rt/s", in.echo64.per_s),
            "p50 " + fmt("%.2f", in.echo64.p50_ms) + " ms" +
                (in.echo64.errors ? ", " + std::to_string(in.echo64.errors) +
                                        " ERRORS: " + in.echo64.first_error
                                  : ""));
  print_row("", "", echo_cpu_per_event(in.echo64));
  print_row("   64-producer floor: 1 / (1/echo + 1/SQLite 64 rows/txn)",
            fmt("%.0f ev/s", in.floor64()), "");
  print_row("     with the producers' ids (like for like)",
            fmt("%.0f ev/s", in.floor64_producers_ids()), "");
}

namespace {

// What the CPU a case took per event allows on this machine at most, all cores busy: the
// floor above leaves out the publisher's, paho's and the broker's share, which the same cores
// pay when the hub is connected.
std::string cpu_ceiling(const IngestResult& r) {
  const double per = cpu_us_per_event(r);
  const double cpus = static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN));
  // No CPU counted (too short a run for the clock's ticks) allows no figure either.
  const double most = per > 0 ? cpus * 1e6 / per : std::nan("");
  return fmt("%.0f us", per) + " of CPU per event on the machine: at most " +
         fmt("%.0f ev/s", most) + " on " + fmt("%.0f", cpus) + " CPUs";
}

}  // namespace

void print_ingest(const IngestFigures& in) {
  print_section("Agent ingest (the edgesync binary as a child process, mosquitto over TLS on loopback)");
  auto row = [](const std::string& label, const IngestResult& r) {
    print_row(label, fmt("%.0f ev/s", r.per_s),
              "ack p50 " + fmt("%.2f", r.p50_ms) + " ms, p99 " + fmt("%.2f", r.p99_ms) + " ms" +
                  (r.errors ? ", " + std::to_string(r.errors) + " ERRORS: " + r.first_error : ""));
    print_row("", "", cpu_per_event(r));
  };
  row("5. accepted, 1 producer (request, wait, repeat)", in.one);
  row("   (1 producer with the hub down, for comparison)", in.one_hub_down);
  row("6. accepted, 8 producers", in.eight);
  print_row("", "",
            "written/event: agent " + bytes_per_event(in.eight.agent_write_bytes, in.eight.accepted) +
                " (write_bytes), stored " + std::to_string(in.stored_bytes) + " B (counted size)");
  row("7. accepted, 64 producers", in.many);
  auto of_floors = [&in](const IngestResult& r) {
    return "= " + fmt("%.1f%%", 100 * r.per_s / in.floor64()) + " of the floor " +
           fmt("%.0f ev/s", in.floor64()) + ", " +
           fmt("%.1f%%", 100 * r.per_s / in.floor64_producers_ids()) +
           " of the floor with the producers' ids " + fmt("%.0f ev/s", in.floor64_producers_ids());
  };
  print_row("", "", of_floors(in.many));
  print_row("", "", cpu_ceiling(in.many));
  row("   (64 producers with the hub down, for comparison)", in.many_hub_down);
  print_row("", "", of_floors(in.many_hub_down));
  print_row("", "", cpu_ceiling(in.many_hub_down));
  print_row("", "", "echo server and its clients: " + cpu_ceiling(in.echo64));
}

// `d` is null when there were no delivery rounds (--drain-only).
void print_backlogs(const BacklogResult& small, const BacklogResult& large,
                    const DeliveryFigures* d, int64_t delivery_backlog) {
  print_section("Backlogs (built with the hub down by 8 pipelined producers, then drained)");
  print_row("   backlog fill, hub down", fmt("%.0f ev/s", large.fill_per_s),
            std::to_string(large.events) + " events, counted " +
                std::to_string(large.counted_bytes) + " B each = " +
                fmt("%.0f MB", large.events * large.counted_bytes / 1e6) +
                " of storage.max_bytes " + fmt("%.0f MB", large.max_bytes / 1e6));
  if (d) {
    const ArrivalRate& a = d->agent_arrivals;
    print_row("8. delivered: agent's drains at a QoS 1 subscriber",
              a.measured() ? fmt("%.0f ev/s", a.per_s()) : "n/a",
              std::to_string(d->rounds) + " drains of " + std::to_string(delivery_backlog) +
                  ", 10%..90% of the arrivals" +
                  (a.measured() ? "" : " (" + a.unmeasured + ")") + arrival_notes(a));
    print_row("   bare paho publisher at the same kind of subscriber",
              d->paho_arrivals.measured() ? fmt("%.0f msg/s", d->paho_arrivals.per_s()) : "n/a",
              std::to_string(d->rounds) + " x " +
                  std::to_string(d->paho.n / std::max(d->rounds, 1)) +
                  " msgs, alternating with the drains" +
                  (d->paho_arrivals.measured() ? "" : " (" + d->paho_arrivals.unmeasured + ")") +
                  arrival_notes(d->paho_arrivals));
    std::printf("  Both counted by a QoS 1 subscriber on the event topics (a process of its\n"
                "  own), so both pay the broker's forwarding to it alike; neither depends on how\n"
                "  often the agent writes its delivered watermark.\n");
  }
  print_row("9. drain " + std::to_string(large.events) + "-event backlog (hub start -> pending 0)",
            fmt("%.2f s", large.drain_s),
            fmt("%.0f ev/s on average; ", large.events / large.drain_s) + large.status_line);
  print_row("   agent CPU per drained event (utime+stime)",
            fmt("%.0f us", large.drain_ticks * 1e6 / ::sysconf(_SC_CLK_TCK) / large.events),
            std::to_string(large.drain_ticks) + " ticks over the drain");
  for (const BacklogResult* b : {&small, &large}) {
    if (b->events == 0) continue;
    print_row("10. VmHWM after draining " + std::to_string(b->events) + " events",
              fmt("%.1f MiB", b->hwm_kb / 1024.0),
              "VmRSS with the backlog waiting " + fmt("%.1f", b->rss_kb_backlog / 1024.0) +
                  " MiB, after the drain " + fmt("%.1f", b->rss_kb_after / 1024.0) + " MiB");
  }
  print_row("11. idle CPU (utime+stime), hub connected, no events",
            std::to_string(large.idle_ticks) + " ticks",
            "over " + fmt("%.1f", large.idle_seconds) + " s (" +
                std::to_string(::sysconf(_SC_CLK_TCK)) + " ticks/s)");
}

std::string ratio(double a, double b) {
  return fmt("%.0f", a) + " / " + fmt("%.0f", b) + " = " +
         (b > 0 ? fmt("%.1f%%", 100 * a / b) : std::string("n/a"));
}

void delivery_target(const DeliveryFigures& d, std::vector<Target>* t) {
  const ArrivalRate &agent = d.agent_arrivals, &paho = d.paho_arrivals;
  const bool ok = agent.measured() && paho.measured();
  t->push_back({"delivery / bare paho rate, at a subscriber",
                ok ? ratio(agent.per_s(), paho.per_s())
                   : "n/a (" + (agent.measured() ? "paho: " + paho.unmeasured
                                                 : "agent: " + agent.unmeasured) + ")",
                ">= 90%", ok && agent.per_s() >= 0.90 * paho.per_s()});
}

void latency_targets(const std::vector<LatencyResult>& lat, const SqliteResult& paced,
                     std::vector<Target>* t) {
  int64_t missing = 0;
  for (const auto& l : lat) {
    const double limit = l.rate >= 1000 ? 10 : 5;
    t->push_back({"e2e latency p99 at " + std::to_string(l.rate) + " ev/s", fmt("%.2f ms", l.p99_ms),
                  "< " + fmt("%.0f", limit) + " ms", l.acked > 0 && l.p99_ms < limit});
    missing += l.missing;
  }
  t->push_back({"events never arrived (paced runs)", std::to_string(missing), "0", missing == 0});
  for (const auto& l : lat) {
    if (l.rate == 20) {
      const bool ok = l.io.process_bytes >= 0 && l.acked > 0 &&
                      l.io.process_bytes <= 6144 * l.acked;
      t->push_back({"agent write_bytes/event at 20 ev/s",
                    bytes_per_event(l.io.process_bytes, l.acked), "<= 6144 B", ok});
    }
    if (l.rate == kPacedSqliteRate) {
      const double cpu = l.agent_cpu_us_per_event();
      t->push_back({"agent CPU/event at " + std::to_string(l.rate) + " ev/s",
                    us_or_na(cpu) + " (raw SQLite paced: " + us_or_na(paced.cpu_us_per_row()) + ")",
                    "<= 200 us", cpu >= 0 && cpu <= 200});
    }
  }
}

void ingest_targets(const IngestFigures& in, std::vector<Target>* t) {
  const bool wb = in.eight.agent_write_bytes >= 0 && in.eight.accepted > 0;
  const double per = wb ? static_cast<double>(in.eight.agent_write_bytes) / in.eight.accepted : 0;
  t->push_back({"8 producers: write_bytes/event / stored",
                wb ? fmt("%.0f", per) + " / " + std::to_string(in.stored_bytes) + " B = " +
                         fmt("%.1fx", per / in.stored_bytes)
                   : "n/a",
                "<= 2x", wb && per <= 2.0 * in.stored_bytes});
  const double r64 = in.many.per_s / in.floor64();
  t->push_back({"64-producer rate / floor (echo + SQLite 64)", ratio(in.many.per_s, in.floor64()),
                ">= 60%", r64 >= 0.60});
  const double r1 = in.one.per_s / in.sq1.rows_per_s;
  t->push_back({"1-producer rate / SQLite 1 row/txn", ratio(in.one.per_s, in.sq1.rows_per_s),
                ">= 75%", r1 >= 0.75});
}

void backlog_targets(const BacklogResult& small, const BacklogResult& large,
                     std::vector<Target>* t) {
  t->push_back({"drain of the " + std::to_string(large.events) + " backlog",
                fmt("%.2f s", large.drain_s), "< 60 s", large.drain_s < 60});
  t->push_back({"VmHWM after the " + std::to_string(large.events) + " backlog",
                fmt("%.1f MiB", large.hwm_kb / 1024.0) + " (" +
                    fmt("%.1f MB", large.hwm_kb * 1.024e-3) + ")",
                "< 20 MB", large.hwm_kb * 1024 < 20000000});
  if (small.events > 0) {
    const int64_t growth_kb = large.hwm_kb - small.hwm_kb;
    t->push_back({"VmHWM growth, " + std::to_string(small.events) + " -> " +
                      std::to_string(large.events),
                  fmt("%+.1f MiB", growth_kb / 1024.0), "< 4 MiB", growth_kb < 4096});
  }
  t->push_back({"idle CPU over " + fmt("%.0f", large.idle_seconds) + " s",
                std::to_string(large.idle_ticks) + " ticks", "<= 1 tick",
                large.idle_ticks >= 0 && large.idle_ticks <= 1});
}

// SQLite alone at the pace of the CPU target, in the bench process with nothing else running.
SqliteResult paced_sqlite(const Options& opt, test::TempDir& root) {
  progress("raw SQLite, 1 row/txn paced at " + std::to_string(kPacedSqliteRate) + " rows/s for " +
           fmt("%.0f", opt.paced_sqlite_seconds) + " s");
  settle();
  return raw_sqlite_paced(root.file("raw_paced.db"), kPacedSqliteRate, opt.paced_sqlite_seconds);
}

// --load N: one producer case on its own, for a profiler attached to the agent (its pid is
// printed, then the load starts after 2 s).
int load_only(const Options& opt, test::TempDir& root, test::MosquittoBroker& broker) {
  std::string dir = root.file("load");
  std::filesystem::create_directories(dir);
  Agent agent(opt, dir, broker);
  agent.start();
  if (!agent.wait_hub_connected(std::chrono::seconds(20))) {
    throw std::runtime_error("agent did not connect to the hub");
  }
  warm_up(agent, 12000);
  if (opt.hub_down) broker.stop();
  std::printf("agent pid %d, broker pid %d; load starts in 2 s\n", agent.pid(),
              opt.hub_down ? 0 : broker.pid());
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  settle();
  auto r = ingest_case(agent, broker, opt.load_producers, opt.ingest_seconds, "load");
  std::printf("%d producers%s: %.0f ev/s, p50 %.2f ms, p99 %.2f ms, %s\n", r.producers,
              opt.hub_down ? " (hub down)" : "", r.per_s, r.p50_ms, r.p99_ms,
              cpu_per_event(r).c_str());
  return 0;
}

void print_load(const double (&start)[3]) {
  double end[3] = {0, 0, 0};
  ::getloadavg(end, 3);
  std::printf("\nload average: %.2f at start, %.2f at end (%ld CPUs). Other work on the machine\n"
              "moves these figures; the ratios compare slices measured alternately.\n",
              start[0], end[0], ::sysconf(_SC_NPROCESSORS_ONLN));
}

int run(const Options& opt) {
  struct utsname u {};
  ::uname(&u);
  const std::string fs = filesystem_type(opt.base_dir);
  std::printf("edgesync bench%s: %s %s, %ld CPUs, scratch dir %s (%s)\n",
              opt.quick ? " (--quick)" : "", u.sysname, u.release,
              ::sysconf(_SC_NPROCESSORS_ONLN), opt.base_dir.c_str(), fs.c_str());
  if (fs == "tmpfs") {
    std::printf("  WARNING: the scratch dir is on tmpfs: fdatasync is free there, so the durability\n"
                "  figures are meaningless. Use --dir on the disk the outbox will live on.\n");
  }
  double load_start[3] = {0, 0, 0};
  ::getloadavg(load_start, 3);
  std::fflush(stdout);
  test::TempDir root("esb", opt.base_dir, opt.keep);
  if (opt.keep) std::printf("  keeping %s\n", root.path().c_str());
  const BlockDevice device(root.path());

  std::filesystem::create_directories(root.file("tls"));
  std::filesystem::create_directories(root.file("broker"));
  progress("generating TLS material, starting mosquitto");
  const test::TlsMaterial tls = test::TlsMaterial::generate(root.file("tls"), "edgesync-bench");
  test::MosquittoBroker broker(root.file("broker"), tls, broker_options());
  broker.start();
  if (opt.load_producers > 0) return load_only(opt, root, broker);

  std::vector<Target> targets;
  if (opt.latency_only) {
    auto lat = latency_runs(opt, root.path(), broker, device);
    auto paced = paced_sqlite(opt, root);
    print_latency(lat, paced, device);
    latency_targets(lat, paced, &targets);
    print_targets(targets);
    print_load(load_start);
    return 0;
  }
  if (opt.drain_only) {
    progress("backlog of " + std::to_string(opt.backlog_large) + " events: fill, drain, idle");
    BacklogResult none;
    auto large = backlog_run(opt, root.path(), "b" + std::to_string(opt.backlog_large), broker,
                             opt.backlog_large, true);
    print_backlogs(none, large, nullptr, 0);
    backlog_targets(none, large, &targets);
    print_targets(targets);
    print_load(load_start);
    return 0;
  }

  progress("fdatasync loop");
  auto fsync = raw_fdatasync(root.file("fdatasync.dat"), opt.raw_seconds);
  if (opt.raw_only) {
    auto paho = raw_paho(broker, opt.paho_messages, 64);
    auto sq1 = raw_sqlite(root.file("raw1.db"), 1, opt.raw_seconds, INT64_MAX);
    auto sq64 = raw_sqlite(root.file("raw64.db"), 64, opt.raw_seconds, 2000000);
    auto sq64p = raw_sqlite(root.file("raw64p.db"), 64, opt.raw_seconds, 2000000, 64);
    auto sq1000 = raw_sqlite(root.file("raw1000.db"), 1000, opt.raw_seconds, 2000000);
    std::printf("fdatasync %.0f/s p99 %.2f ms | sqlite 1/txn %.0f | 64/txn %.0f (CPU %.1f us/row), "
                "ids of 64 producers %.0f (CPU %.1f us/row) | 1000/txn %.0f | "
                "paho %.0f (no subscriber)\n",
                fsync.per_s, fsync.p99_ms, sq1.rows_per_s, sq64.rows_per_s, sq64.cpu_us_per_row(),
                sq64p.rows_per_s, sq64p.cpu_us_per_row(), sq1000.rows_per_s, paho.msgs_per_s);
    return 0;
  }

  std::vector<LatencyResult> lat;
  SqliteResult paced;
  if (!opt.ingest_only) {
    lat = latency_runs(opt, root.path(), broker, device);
    paced = paced_sqlite(opt, root);
  }
  IngestFigures in = ingest_rounds(opt, root, broker);
  if (opt.ingest_only) {
    std::printf("SQLite 1 row/txn %.0f rows/s | agent 1 producer %.0f ev/s (%s), p50 %.2f ms, "
                "p99 %.2f ms | hub down %.0f ev/s, p50 %.2f ms\n",
                in.sq1.rows_per_s, in.one.per_s,
                fmt("%.1f%%", 100 * in.one.per_s / in.sq1.rows_per_s).c_str(), in.one.p50_ms,
                in.one.p99_ms, in.one_hub_down.per_s, in.one_hub_down.p50_ms);
    std::printf("SQLite 64 rows/txn %.0f (the producers' ids %.0f), echo %.0f, floor %.0f "
                "(%.0f) | agent 64 producers %.0f ev/s (%s of the floor), hub down %.0f | "
                "8 producers %.0f, %s/event written\n",
                in.sq64.rows_per_s, in.sq64_producers.rows_per_s, in.echo64.per_s, in.floor64(),
                in.floor64_producers_ids(), in.many.per_s,
                fmt("%.1f%%", 100 * in.many.per_s / in.floor64()).c_str(), in.many_hub_down.per_s,
                in.eight.per_s,
                bytes_per_event(in.eight.agent_write_bytes, in.eight.accepted).c_str());
    for (const auto* c : {&in.one, &in.one_hub_down, &in.eight, &in.many, &in.many_hub_down}) {
      std::printf("  %2d producers%s: %s\n", c->producers,
                  c == &in.one_hub_down || c == &in.many_hub_down ? " hub down" : "",
                  cpu_per_event(*c).c_str());
    }
    std::printf("  echo server, 64 clients: %s; %s\n", echo_cpu_per_event(in.echo64).c_str(),
                cpu_ceiling(in.echo64).c_str());
    std::printf("  64 producers: %s\n  64 producers hub down (%s of the floor, %s with the "
                "producers' ids): %s\n",
                cpu_ceiling(in.many).c_str(),
                fmt("%.1f%%", 100 * in.many_hub_down.per_s / in.floor64()).c_str(),
                fmt("%.1f%%", 100 * in.many_hub_down.per_s / in.floor64_producers_ids()).c_str(),
                cpu_ceiling(in.many_hub_down).c_str());
    return 0;
  }

  progress("backlog of " + std::to_string(opt.backlog_small) + " events: fill, drain");
  auto small = backlog_run(opt, root.path(), "b" + std::to_string(opt.backlog_small), broker,
                           opt.backlog_small, false);
  progress("backlog of " + std::to_string(opt.backlog_large) + " events: fill, drain, idle");
  auto large = backlog_run(opt, root.path(), "b" + std::to_string(opt.backlog_large), broker,
                           opt.backlog_large, true);
  const DeliveryFigures delivery = delivery_rounds(opt, root.path(), broker);
  broker.stop();

  print_raw(fsync, in, delivery);
  print_latency(lat, paced, device);
  print_ingest(in);
  print_backlogs(small, large, &delivery, opt.delivery_backlog);

  latency_targets(lat, paced, &targets);
  ingest_targets(in, &targets);
  delivery_target(delivery, &targets);
  backlog_targets(small, large, &targets);
  print_targets(targets);
  print_load(load_start);
  return 0;
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace
}  // namespace edgesync::bench

int main(int argc, char** argv) {
  using edgesync::bench::Options;
  // Hidden: the bench re-executes itself as the echo server of the 64-producer floor.
  if (argc == 3 && std::string(argv[1]) == "--echo-server") {
    return edgesync::bench::echo_server_main(argv[2]);
  }
  // Hidden: ... and as the subscriber that counts arrivals in the delivery rounds.
  if (argc == 3 && std::string(argv[1]) == "--count-arrivals") {
    return edgesync::bench::arrival_counter_main(argv[2]);
  }
  Options opt;
  const char* tmp = std::getenv("TMPDIR");
  opt.base_dir = tmp && *tmp ? tmp : "/tmp";
  if (const char* bin = std::getenv("EDGESYNC_BIN")) opt.agent_bin = bin;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--agent") {
      opt.agent_bin = value();
    } else if (a == "--dir") {
      opt.base_dir = value();
    } else if (a == "--quick") {
      opt.quick = true;
    } else if (a == "--keep") {
      opt.keep = true;
    } else if (a == "--raw-only") {
      opt.raw_only = true;
    } else if (a == "--ingest-only") {
      opt.ingest_only = true;
    } else if (a == "--latency-only") {
      opt.latency_only = true;
    } else if (a == "--drain-only") {
      opt.drain_only = true;
    } else if (a == "--load") {
      opt.load_producers = std::atoi(value().c_str());
    } else if (a == "--seconds") {
      opt.ingest_seconds = std::atof(value().c_str());
    } else if (a == "--hub-down") {
      opt.hub_down = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s --agent PATH [--quick] [--dir BASE] [--keep]\n"
                   "       [--raw-only | --ingest-only | --latency-only | --drain-only]\n"
                   "       [--load N [--seconds S] [--hub-down]]\n"
                   "  --agent  the edgesync binary (default: $EDGESYNC_BIN)\n"
                   "  --quick  smaller counts and shorter runs (under two minutes)\n"
                   "  --dir    where the scratch dir goes (default: $TMPDIR or /tmp); put it on\n"
                   "           the disk the outbox lives on: fdatasync is what is measured\n"
                   "  --keep   keep the scratch dir (logs, databases)\n"
                   "  --raw-only  only the raw limits\n"
                   "  --ingest-only  only the raw limits and the producer cases\n"
                   "  --latency-only  only the paced end-to-end latency runs\n"
                   "  --drain-only  only the large backlog (fill, drain, RSS, idle CPU)\n"
                   "  --load N [--seconds S] [--hub-down]  only N producers for S seconds (6),\n"
                   "           printing the agent's pid first: for a profiler\n",
                   argv[0]);
      return 2;
    }
  }
  if (opt.agent_bin.empty()) {
    std::fprintf(stderr, "edgesync_bench: --agent PATH (or EDGESYNC_BIN) is required\n");
    return 2;
  }
  if (opt.quick) opt.make_quick();
  try {
    opt.self_exe = edgesync::bench::self_exe();
    return edgesync::bench::run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edgesync_bench: could not run: %s\n", e.what());
    return 1;
  }
}
