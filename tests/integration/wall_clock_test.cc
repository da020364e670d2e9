// The box's wall clock is not to be trusted: a POS box without a real-time clock boots in 1970,
// and NTP (or a technician) moves the clock by hours or days while the agent runs. The real
// agent runs under libfaketime (LD_PRELOAD), whose fake time the test changes mid-run by
// rewriting FAKETIME_TIMESTAMP_FILE. What a user relies on:
//  - events are accepted and reach the hub in seq order, every acknowledged one, whatever the
//    wall clock does;
//  - reconnecting to the hub and cutting off a half-sent line follow monotonic time: a jump of
//    a day neither stalls a reconnect for a day nor turns it into a spin;
//  - an event received while the clock read before 2025 says so in its hub payload
//    ("received_at_trusted": false), so the hub does not file a sale under 1970.
//
// Only the wall clock is faked (FAKETIME_DONT_FAKE_MONOTONIC=1): that is what a clock step does
// to a real box. EDGESYNC_CLOCK_TEST_FAKE_MONOTONIC=1 fakes CLOCK_MONOTONIC as well, which no
// real clock change does; it is there to see what the agent makes of it, not run by ctest.
// Skipped without libfaketime (Debian package faketime) and under qemu-user cross builds, where
// LD_PRELOAD would reach the emulator instead of the agent.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "tests/support/hub_fixture.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// libfaketime.so.1 under the multiarch library directory (Debian), or "" if not installed.
std::string faketime_library() {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* base : {"/usr/lib", "/usr/local/lib"}) {
    const fs::path direct = fs::path(base) / "faketime" / "libfaketime.so.1";
    if (fs::exists(direct, ec)) return direct.string();
    for (const auto& entry : fs::directory_iterator(base, ec)) {
      const fs::path p = entry.path() / "faketime" / "libfaketime.so.1";
      if (fs::exists(p, ec)) return p.string();
    }
  }
  return "";
}

double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// Lines in `log` after byte `from` that report the hub connection lost or not made (one per
// failed attempt: the agent logs each before it backs off).
size_t hub_failures_since(const std::string& log, size_t from, const std::string& uri) {
  const std::string marker = "edgesync: hub " + uri + ":";
  size_t n = 0;
  for (size_t pos = log.find(marker, from); pos != std::string::npos;
       pos = log.find(marker, pos + marker.size())) {
    ++n;
  }
  return n;
}

class ClockTest : public HubFixture {
 protected:
  void SetUp() override {
    HubFixture::SetUp();
    const char* wrapper = std::getenv("EDGESYNC_BIN_WRAPPER");
    if (wrapper && *wrapper) {
      GTEST_SKIP() << "LD_PRELOAD would reach " << wrapper << ", not the agent";
    }
    library_ = faketime_library();
    if (library_.empty()) GTEST_SKIP() << "libfaketime not installed (Debian package faketime)";
    const char* mono = std::getenv("EDGESYNC_CLOCK_TEST_FAKE_MONOTONIC");
    fake_monotonic_ = mono && std::string(mono) == "1";
    clock_file_ = dir_->file("faketimerc");
    set_clock("+0");
  }

  // The agent's wall clock from now on, as an offset from true time: "+0", "-1d", "+1d",
  // "-<seconds>". Written whole and renamed in, since the agent rereads the file on every clock
  // call.
  void set_clock(const std::string& spec) {
    write_file(clock_file_ + ".tmp", spec + "\n");
    std::filesystem::rename(clock_file_ + ".tmp", clock_file_);
    std::cerr << "[clock] agent wall clock now " << spec << "\n";
  }

  std::vector<std::string> faketime_env() const {
    std::vector<std::string> env = preload_environment(library_);
    env.insert(env.end(), {"FAKETIME_TIMESTAMP_FILE=" + clock_file_, "FAKETIME_NO_CACHE=1"});
    if (!fake_monotonic_) env.push_back("FAKETIME_DONT_FAKE_MONOTONIC=1");
    return env;
  }

  void start_agent_on_fake_clock() {
    std::cerr << "[clock] CLOCK_MONOTONIC " << (fake_monotonic_ ? "faked too" : "real") << "\n";
    agent_->set_environment(faketime_env());
    agent_->start();
  }

  // `edgesync status --json` run on the agent's fake clock, as a user on the box would see it.
  json status_on_fake_clock() {
    std::vector<std::string> argv{"env"};
    for (const auto& e : faketime_env()) argv.push_back(e);
    for (const auto& a : edgesync_argv({"status", "--config", agent_->config_path(), "--json"})) {
      argv.push_back(a);
    }
    CommandResult r = run_command(argv, "", 20s);
    // The exit status is the verdict (0-2).
    EXPECT_TRUE(r.exit_code() >= 0 && r.exit_code() <= 2) << "edgesync status --json: " << r.describe();
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.describe();
    return j;
  }

  std::string hub_state() {
    json s = status_json();
    return s.is_object() && s.contains("hub") ? s["hub"].value("state", "") : "";
  }

  // Seconds until `edgesync status` reports the hub connected (polled every 100 ms); -1 if not
  // within timeout.
  double seconds_until_connected(std::chrono::milliseconds timeout) {
    const auto t0 = SteadyClock::now();
    while (SteadyClock::now() - t0 < timeout) {
      if (hub_state() == "connected") return seconds_since(t0);
      std::this_thread::sleep_for(100ms);
    }
    return -1;
  }

  std::string library_;
  std::string clock_file_;
  bool fake_monotonic_ = false;
};

// Producers streaming chunks of events on their own connections, recording every ok reply.
class Stream {
 public:
  Stream(const std::string& socket, size_t producers, size_t chunk) {
    for (size_t k = 0; k < producers; ++k) {
      threads_.emplace_back([this, socket, k, chunk] { run(socket, k, chunk); });
    }
  }
  ~Stream() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  ReplyCounter& acked() { return acked_; }
  std::map<std::string, int64_t> acked_seq_by_id() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_seq_by_id_;
  }
  std::vector<std::string> problems() {
    std::lock_guard<std::mutex> lock(mu_);
    return problems_;
  }

 private:
  void run(const std::string& socket, size_t k, size_t chunk_size) {
    try {
      Producer p(socket);
      for (size_t chunk = 0; !stop_.load(); ++chunk) {
        auto evs = make_events("c" + std::to_string(k) + "-" + std::to_string(chunk), chunk_size);
        auto replies = p.send_all(lines_of(evs), 60s);
        std::lock_guard<std::mutex> lock(mu_);
        if (replies.size() != evs.size()) {
          problems_.push_back(std::to_string(replies.size()) + " replies for " +
                              std::to_string(evs.size()) + " requests");
          return;
        }
        for (size_t i = 0; i < evs.size(); ++i) {
          if (replies[i].value("ok", false) != true || !replies[i].contains("seq")) {
            problems_.push_back(evs[i].line + " -> " + replies[i].dump());
            return;
          }
          acked_seq_by_id_[evs[i].id] = replies[i]["seq"].get<int64_t>();
        }
        acked_.add(evs.size());
        // A till's pace, not a flood: a few hundred events a second between them.
        std::this_thread::sleep_for(50ms);
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu_);
      problems_.push_back(std::string("producer: ") + e.what());
    }
  }

  std::atomic<bool> stop_{false};
  ReplyCounter acked_;
  std::mutex mu_;
  std::map<std::string, int64_t> acked_seq_by_id_;
  std::vector<std::string> problems_;
  std::vector<std::thread> threads_;
};

// Every acknowledged event reached the hub, first arrivals in seq order 1..highest.
void expect_all_delivered(HubSubscriber& hub, const std::vector<HubEvent>& evs,
                          const std::map<std::string, int64_t>& acked, int64_t total) {
  int64_t highest = 0;
  EXPECT_TRUE(first_arrivals_gap_free(evs, &highest));
  EXPECT_EQ(highest, total);
  const size_t missing = acked_not_delivered(evs, acked);
  EXPECT_EQ(missing, 0u);
  std::cerr << "[clock] " << acked.size() << " acked, " << hub.distinct_seq_count()
            << " distinct seqs at the hub, " << evs.size() - hub.distinct_seq_count()
            << " redeliveries, " << missing << " missing\n";
}

TEST_F(ClockTest, BootIn1970EventsFlowAndReceivedAtIsMarkedUntrusted) {
  // An offset back to the epoch, not "@1970-01-01 ...": a start-at date restarts in every process,
  // so the agent and the CLI would disagree on the time.
  const auto real_now_s = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  set_clock("-" + std::to_string(real_now_s));
  start_agent_on_fake_clock();

  auto boot = make_events("boot", 50);
  {
    Producer p(agent_->socket_path());
    auto r = p.send_all(lines_of(boot), 60s);
    ASSERT_EQ(r.size(), boot.size());
    for (size_t i = 0; i < r.size(); ++i) {
      ASSERT_EQ(r[i].value("ok", false), true) << r[i].dump();
      EXPECT_EQ(r[i].value("seq", int64_t{-1}), static_cast<int64_t>(i + 1)) << r[i].dump();
    }
  }

  // The CLI on the same 1970 clock: it works and counts the 50 events.
  json st = status_on_fake_clock();
  std::cerr << "[clock] status --json in 1970: " << st.dump() << "\n";
  ASSERT_TRUE(st.is_object() && st.contains("outbox") && st["outbox"].is_object());
  EXPECT_EQ(st.value("agent_running", false), true);
  EXPECT_EQ(st["outbox"].value("next_seq", int64_t{0}), 51);
  if (st["outbox"].contains("oldest_pending_age_s") &&
      st["outbox"]["oldest_pending_age_s"].is_number()) {
    EXPECT_GE(st["outbox"]["oldest_pending_age_s"].get<double>(), 0.0);
  }

  // The hub's certificate is not valid yet in 1970, so TLS cannot verify it: whatever happens,
  // the events wait on disk. Report what did.
  std::this_thread::sleep_for(3s);
  const size_t in_1970 = hub_->distinct_seq_count();
  std::cerr << "[clock] after 3 s in 1970: hub state " << hub_state() << ", " << in_1970
            << " events at the hub\n";

  // The clock syncs (NTP): from now on the agent's clock is true.
  set_clock("+0");
  const auto synced = SteadyClock::now();
  auto later = make_events("synced", 50);
  {
    Producer p(agent_->socket_path());
    auto r = p.send_all(lines_of(later), 60s);
    ASSERT_EQ(r.size(), later.size());
    for (size_t i = 0; i < r.size(); ++i) {
      ASSERT_EQ(r[i].value("ok", false), true) << r[i].dump();
      EXPECT_EQ(r[i].value("seq", int64_t{-1}), static_cast<int64_t>(51 + i)) << r[i].dump();
    }
  }
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(100, 60s)) << hub_->distinct_seq_count();
  std::cerr << "[clock] all 100 at the hub " << seconds_since(synced)
            << " s after the clock synced\n";

  const auto evs = events();
  int64_t highest = 0;
  ASSERT_TRUE(first_arrivals_gap_free(evs, &highest));
  EXPECT_EQ(highest, 100);
  std::map<int64_t, const HubEvent*> first;
  for (const auto& e : evs) first.emplace(e.seq, &e);
  for (const auto& [seq, e] : first) {
    SCOPED_TRACE("seq " + std::to_string(seq) + ": " + e->payload.dump());
    ASSERT_TRUE(e->payload.contains("received_at") && e->payload["received_at"].is_string());
    const std::string at = e->payload["received_at"].get<std::string>();
    if (seq <= 50) {
      EXPECT_EQ(at.rfind("1970-01-01T", 0), 0u);
      ASSERT_TRUE(e->payload.contains("received_at_trusted"));
      EXPECT_EQ(e->payload["received_at_trusted"], json(false));
    } else {
      EXPECT_GE(std::stoi(at.substr(0, 4)), 2025);
      EXPECT_FALSE(e->payload.contains("received_at_trusted"));
    }
  }
  std::cerr << "[clock] seq 1: received_at " << first[1]->payload["received_at"]
            << ", seq 100: received_at " << first[100]->payload["received_at"] << "\n";
}

TEST_F(ClockTest, WallClockJumpsLeaveOrderBackoffAndDeliveryAlone) {
  start_agent_on_fake_clock();
  const int64_t max_backoff_ms = agent_->config().retry_max_ms;
  Stream stream(agent_->socket_path(), 2, 50);
  auto& acked = stream.acked();

  ASSERT_TRUE(acked.wait_for(300, 60s)) << "producers stalled";
  // While events flow: back a day, then forward a day.
  for (const char* spec : {"-1d", "+0"}) {
    set_clock(spec);
    const size_t at = acked.value();
    const auto t0 = SteadyClock::now();
    ASSERT_TRUE(acked.wait_for(at + 300, 60s)) << "acks stalled after the clock went to " << spec;
    std::cerr << "[clock] 300 acks " << seconds_since(t0) << " s after the jump to " << spec
              << "\n";
  }

  // While the hub is away: the clock jumps a day forward (first outage) and back (second), the
  // broker comes back after 3 s, and the agent must be back within its backoff bound, having
  // tried at its normal pace meanwhile. (Not to a day before now: the test certificates are
  // minutes old, and no TLS client accepts a certificate from its future.)
  for (const char* spec : {"+1d", "+0"}) {
    const std::string log_before = agent_->log();
    broker_->stop();
    set_clock(spec);
    const size_t at_stop = acked.value();
    std::this_thread::sleep_for(3s);
    EXPECT_GE(acked.value(), at_stop + 100) << "acks must not need the hub";
    const json st = status_on_fake_clock();
    if (st.is_object() && st.contains("outbox")) {
      std::cerr << "[clock] status in the outage: pending " << st["outbox"].value("pending", -1)
                << ", oldest_pending_age_s " << st["outbox"].value("oldest_pending_age_s", json())
                << "\n";
    }
    broker_->start();
    const double reconnect_s = seconds_until_connected(30s);
    const size_t failures =
        hub_failures_since(agent_->log(), log_before.size(), agent_->config().hub_uri);
    std::cerr << "[clock] outage with the clock jumped to " << spec << ": reconnected "
              << reconnect_s << " s after the broker returned, " << failures
              << " failed attempts logged in the outage\n";
    EXPECT_GE(reconnect_s, 0.0) << "not reconnected within 30 s";
    // The next attempt is at most retry.max_ms away; the rest is TLS and the status poll on a
    // loaded machine.
    EXPECT_LE(reconnect_s, max_backoff_ms / 1000.0 + 3.0);
    // 3 s of backoff from 100 ms: a handful of attempts. A spin would log thousands.
    EXPECT_LE(failures, 30u);
    EXPECT_GE(failures, 1u);
    const size_t at_back = acked.value();
    ASSERT_TRUE(acked.wait_for(at_back + 200, 60s)) << "producers stalled after the outage";
  }
  set_clock("+0");
  stream.stop();
  const auto problems = stream.problems();
  ASSERT_TRUE(problems.empty()) << problems.front();

  const auto acked_ids = stream.acked_seq_by_id();
  const auto total = static_cast<int64_t>(acked_ids.size());
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(acked_ids.size(), 120s))
      << hub_->distinct_seq_count() << " of " << total;
  expect_all_delivered(*hub_, events(), acked_ids, total);
}

// ingest.idle_timeout_s bounds how long a producer may leave a line half-sent.
TEST_F(ClockTest, HalfSentLineTimeoutRunsOnMonotonicTime) {
  constexpr int kIdleS = 4;
  agent_->config().idle_timeout_s = kIdleS;
  start_agent_on_fake_clock();

  // A day forward in the middle of a line: the line may still be finished in time.
  Producer a(agent_->socket_path());
  const std::string line = make_request("half-1", "pos.sale", json{{"n", 1}});
  a.send_raw(line.substr(0, line.size() / 2));
  set_clock("+1d");
  std::this_thread::sleep_for(1500ms);
  a.send_raw(line.substr(line.size() / 2) + "\n");
  json r = a.read_reply(10s);
  EXPECT_EQ(r.value("ok", false), true) << "cut off after the clock jumped forward: " << r.dump();

  // A day back in the middle of a line: still cut off after about idle_timeout_s, not a day.
  const std::string next = make_request("half-2", "pos.sale", json{{"n", 2}});
  a.send_raw(next.substr(0, next.size() / 2));
  const auto t0 = SteadyClock::now();
  set_clock("-1d");
  while (a.read_line(20s)) {
  }
  const double closed_after = seconds_since(t0);
  std::cerr << "[clock] half-sent line cut off " << closed_after << " s after its last byte ("
            << "idle_timeout_s " << kIdleS << ", wall clock jumped back a day)\n";
  EXPECT_TRUE(a.eof()) << "not closed within 20 s";
  EXPECT_GE(closed_after, kIdleS - 0.5);
  EXPECT_LE(closed_after, kIdleS + 3.0);
}

}  // namespace
}  // namespace edgesync::test
