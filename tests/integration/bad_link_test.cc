// Bad links between the agent and the hub: a fault-injecting TCP proxy (tests/harness/tcp_proxy.h)
// sits between the real agent and the real broker, and the TLS session runs through it. A
// half-open link (bytes swallowed both ways, nothing closed), resets every few seconds, 200 ms
// of latency each way, and a broker that accepts TCP and never answers. What the user relies
// on: a dead link is found within the keepalive bound, every acknowledged event reaches the
// hub, duplicates stay within the in-flight window per reconnect, and a silent broker is
// retried with backoff, not in a spin.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "tests/harness/tcp_proxy.h"
#include "tests/support/hub_fixture.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kKeepaliveS = 5;  // the smallest hub.keepalive_s the agent accepts
constexpr int kWindow = 32;     // hub.max_inflight

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

// The first line at or after `from` that contains `needle`, or "".
std::string line_with(const std::string& text, const std::string& needle, size_t from = 0) {
  size_t pos = text.find(needle, from);
  if (pos == std::string::npos) return "";
  size_t begin = text.rfind('\n', pos);
  begin = begin == std::string::npos ? 0 : begin + 1;
  size_t end = text.find('\n', pos);
  return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

// Events sent in paced chunks from a background thread until stop(); remembers every ok reply.
class Stream {
 public:
  Stream(std::string socket_path, std::string prefix, size_t chunk,
         std::chrono::milliseconds pause)
      : socket_(std::move(socket_path)), prefix_(std::move(prefix)), chunk_(chunk), pause_(pause) {
    thread_ = std::thread([this] { run(); });
  }
  ~Stream() { stop(); }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  size_t acked() const { return acked_.value(); }
  bool wait_acked(size_t n, std::chrono::milliseconds timeout) {
    return acked_.wait_for(n, timeout);
  }
  std::map<std::string, int64_t> acked_seqs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seqs_;
  }
  std::vector<std::string> problems() const {
    std::lock_guard<std::mutex> lock(mu_);
    return problems_;
  }

 private:
  void run() {
    try {
      Producer p(socket_);
      for (size_t n = 0; !stop_; ++n) {
        auto evs = make_events(prefix_ + std::to_string(n), chunk_);
        auto replies = p.send_all(lines_of(evs), 60s);
        {
          std::lock_guard<std::mutex> lock(mu_);
          for (size_t i = 0; i < replies.size(); ++i) {
            if (replies[i].value("ok", false) != true || !replies[i].contains("seq")) {
              problems_.push_back(evs[i].line + " -> " + replies[i].dump());
              return;
            }
            seqs_[evs[i].id] = replies[i]["seq"].get<int64_t>();
          }
          if (replies.size() != evs.size()) {
            problems_.push_back(std::to_string(replies.size()) + " replies for " +
                                std::to_string(evs.size()) + " requests");
            return;
          }
        }
        acked_.add(evs.size());
        std::this_thread::sleep_for(pause_);
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu_);
      problems_.push_back(std::string("producer exception: ") + e.what());
    }
  }

  std::string socket_;
  std::string prefix_;
  size_t chunk_;
  std::chrono::milliseconds pause_;
  std::atomic<bool> stop_{false};
  ReplyCounter acked_;
  mutable std::mutex mu_;
  std::map<std::string, int64_t> seqs_;
  std::vector<std::string> problems_;
  std::thread thread_;
};

class BadLinkTest : public HubFixture {
 protected:
  void SetUp() override {
    HubFixture::SetUp();
    proxy_ = std::make_unique<TcpProxy>(broker_->port());
    auto& c = agent_->config();
    c.hub_uri = proxy_->uri();
    c.keepalive_s = kKeepaliveS;
    c.max_inflight = kWindow;
    c.retry_initial_ms = 200;
    c.retry_max_ms = 2000;
  }
  void TearDown() override {
    if (HasFailure() && proxy_) {
      auto s = proxy_->stats();
      std::cerr << "proxy: mode " << tcp_proxy_mode_name(proxy_->mode()) << ", accepted "
                << s.accepted << ", resets " << s.resets << ", open " << s.open << ", bytes up "
                << s.bytes_up << " down " << s.bytes_down << " swallowed " << s.bytes_swallowed
                << "\n";
    }
    HubFixture::TearDown();
    proxy_.reset();
  }

  // The agent's "hub <uri>: <why>" line: the publisher's connection-down report.
  std::string down_marker() const { return "edgesync: hub " + proxy_->uri() + ": "; }
  static constexpr const char* kConnectedMarker = "edgesync: connected to ";

  // Polls the agent log until `needle` appears at or after byte `from`; the time it was seen.
  std::optional<Clock::time_point> wait_log(const std::string& needle, size_t from,
                                            std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (agent_->log().find(needle, from) != std::string::npos) return Clock::now();
      std::this_thread::sleep_for(50ms);
    }
    return std::nullopt;
  }

  // Everything `warm` + the stream acked reached the hub, first arrivals gap-free and in seq
  // order; returns the number of duplicate arrivals.
  size_t expect_all_delivered(size_t warm, const std::map<std::string, int64_t>& acked) {
    const size_t total = warm + acked.size();
    EXPECT_TRUE(hub_->wait_for_distinct_seqs(total, 120s))
        << "hub received " << hub_->distinct_seq_count() << " distinct seqs of " << total;
    const auto evs = events();
    int64_t highest = 0;
    EXPECT_TRUE(first_arrivals_gap_free(evs, &highest));
    EXPECT_EQ(highest, static_cast<int64_t>(total));
    const size_t missing = acked_not_delivered(evs, acked);
    EXPECT_EQ(missing, 0u) << "acknowledged events lost";
    return evs.size() >= total ? evs.size() - total : 0;
  }

  void send_warmup(const std::string& prefix, size_t n) {
    Producer p(agent_->socket_path());
    auto r = p.send_all(lines_of(make_events(prefix, n)), 60s);
    ASSERT_EQ(r.size(), n);
    ASSERT_TRUE(hub_->wait_for_distinct_seqs(n, 60s)) << hub_->distinct_seq_count();
  }

  std::unique_ptr<TcpProxy> proxy_;
};

TEST_F(BadLinkTest, HalfOpenLinkIsDetectedByKeepaliveAndNothingIsLost) {
  agent_->start();
  ASSERT_NO_FATAL_FAILURE(send_warmup("warm", 200));

  Stream stream(agent_->socket_path(), "h", 20, 20ms);
  ASSERT_TRUE(stream.wait_acked(300, 60s));

  // The link goes half-open mid-stream: both TCP ends stay up, nothing gets through.
  const size_t log_at_cut = agent_->log().size();
  const size_t acked_at_cut = stream.acked();
  const auto cut = Clock::now();
  proxy_->set_mode(TcpProxy::Mode::kBlackhole);

  auto found = wait_log(down_marker(), log_at_cut, std::chrono::seconds(6 * kKeepaliveS));
  ASSERT_TRUE(found) << "the agent did not notice the dead link in " << 6 * kKeepaliveS << " s";
  const double detect_s = std::chrono::duration<double>(*found - cut).count();
  const std::string down_line = line_with(agent_->log(), down_marker(), log_at_cut);
  std::cerr << "[bad-link] half-open link detected after " << detect_s << " s (keepalive "
            << kKeepaliveS << " s, " << detect_s / kKeepaliveS << "x): " << down_line << "\n";
  // With events in flight the agent's own watchdog drops a session that completed nothing for
  // 1.5 x keepalive (paho's keepalive alone took 2.0x to 2.7x). Margin for a loaded machine.
  EXPECT_LE(detect_s, 1.5 * kKeepaliveS + 2.0);
  EXPECT_NE(down_line.find("the link is dead"), std::string::npos) << down_line;
  EXPECT_GE(detect_s, 0.5 * kKeepaliveS) << "lost before keepalive could have said so";

  // Producers were acknowledged throughout: acks need only the disk.
  EXPECT_GT(stream.acked(), acked_at_cut + 100) << "acks stalled while the link was dead";
  auto st = status_json();
  SCOPED_TRACE("status --json with the link down: " + st.dump());
  ASSERT_TRUE(st.contains("hub"));
  EXPECT_NE(st["hub"].value("state", ""), "connected");
  std::cerr << "[bad-link] status with the link down: hub " << st["hub"].dump() << "\n";

  // The link comes back: the agent reconnects and resends from the watermark.
  const size_t log_at_heal = agent_->log().size();
  proxy_->set_mode(TcpProxy::Mode::kPass);
  ASSERT_TRUE(wait_log(kConnectedMarker, log_at_heal, 30s)) << "no reconnect after the link healed";
  ASSERT_TRUE(stream.wait_acked(stream.acked() + 200, 30s));
  stream.stop();
  ASSERT_TRUE(stream.problems().empty()) << stream.problems().front();

  const auto acked = stream.acked_seqs();
  const size_t dups = expect_all_delivered(200, acked);
  const std::string log = agent_->log();
  const size_t reconnects = count_of(log, kConnectedMarker) - 1;
  std::cerr << "[bad-link] half-open: " << 200 + acked.size() << " events, " << dups
            << " duplicates, " << reconnects << " reconnects (window " << kWindow << ")\n";
  EXPECT_GE(reconnects, 1u);
  EXPECT_LE(dups, reconnects * kWindow) << "more duplicates than the in-flight window allows";
}

TEST_F(BadLinkTest, ResetsDuringAStreamLoseNothing) {
  agent_->start();
  ASSERT_NO_FATAL_FAILURE(send_warmup("warm", 100));

  Stream stream(agent_->socket_path(), "r", 50, 10ms);
  ASSERT_TRUE(stream.wait_acked(200, 60s));
  constexpr int kResets = 6;
  for (int i = 0; i < kResets; ++i) {
    std::this_thread::sleep_for(2s);
    proxy_->reset_all();
  }
  std::this_thread::sleep_for(2s);
  stream.stop();
  ASSERT_TRUE(stream.problems().empty()) << stream.problems().front();

  const auto acked = stream.acked_seqs();
  EXPECT_GE(acked.size(), 1000u) << "the stream was too short to mean much";
  const size_t dups = expect_all_delivered(100, acked);
  const std::string log = agent_->log();
  const size_t reconnects = count_of(log, kConnectedMarker) - 1;
  const size_t downs = count_of(log, down_marker());
  std::cerr << "[bad-link] resets: " << 100 + acked.size() << " events, " << kResets
            << " resets, " << downs << " connection losses, " << reconnects << " reconnects, "
            << dups << " duplicates (window " << kWindow << ")\n";
  // A reset that lands during a backoff pause finds no connection to cut.
  EXPECT_GE(downs, 2u) << "resets went unnoticed";
  EXPECT_LE(dups, reconnects * kWindow) << "more duplicates than the in-flight window allows";
  EXPECT_EQ(agent_->running(), true);
}

TEST_F(BadLinkTest, LatencyKeepsOrderAndDeliversEverything) {
  proxy_->set_latency(200ms);
  const auto t0 = Clock::now();
  agent_->start();
  constexpr size_t kEvents = 400;
  auto evs = make_events("lat", kEvents);
  {
    Producer p(agent_->socket_path());
    auto r = p.send_all(lines_of(evs), 60s);
    ASSERT_EQ(r.size(), kEvents);
  }
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(kEvents, 90s)) << hub_->distinct_seq_count();
  const double took = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto got = events();
  int64_t highest = 0;
  ASSERT_TRUE(first_arrivals_gap_free(got, &highest));
  EXPECT_EQ(highest, static_cast<int64_t>(kEvents));
  // Arrival order is seq order and ids match what was sent.
  for (size_t i = 0; i < kEvents && i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ(got[i].id, evs[i].id);
  }
  const std::string log = agent_->log();
  std::cerr << "[bad-link] latency 200 ms each way: " << kEvents << " events in " << took
            << " s (from agent start), " << got.size() - kEvents << " duplicates, "
            << count_of(log, kConnectedMarker) << " connections\n";
  EXPECT_EQ(count_of(log, kConnectedMarker), 1u) << "latency alone must not drop the session";
  EXPECT_EQ(got.size(), kEvents) << "no duplicates without a reconnect";
}

TEST_F(BadLinkTest, BrokerThatNeverAnswersIsRetriedWithBackoffNotASpin) {
  proxy_->set_mode(TcpProxy::Mode::kNoAnswer);
  agent_->start();
  constexpr size_t kEvents = 50;
  {
    Producer p(agent_->socket_path());
    auto r = p.send_all(lines_of(make_events("quiet", kEvents)), 30s);
    ASSERT_EQ(r.size(), kEvents);
    for (const auto& x : r) ASSERT_EQ(x.value("ok", false), true) << x.dump();
  }

  // Each attempt is accepted and then hangs until the agent's connect timeout (10 s).
  constexpr auto kQuietWindow = 25s;
  std::this_thread::sleep_for(kQuietWindow);
  const auto quiet = proxy_->stats();
  auto st = status_json();
  const std::string log = agent_->log();
  std::cerr << "[bad-link] broker never answers: " << quiet.accepted << " connection attempts in "
            << kQuietWindow.count() << " s; status hub " << st["hub"].dump() << "; log: "
            << line_with(log, down_marker()) << "\n";
  EXPECT_GE(quiet.accepted, 2u) << "the agent stopped trying";
  EXPECT_LE(quiet.accepted, 5u) << "a connect attempt did not wait for its timeout";
  ASSERT_TRUE(st.contains("hub"));
  const std::string state = st["hub"].value("state", "");
  EXPECT_TRUE(state == "connecting" || state == "disconnected") << st.dump();
  EXPECT_FALSE(st["hub"].value("last_error", "").empty()) << "no reason given: " << st.dump();
  EXPECT_NE(line_with(log, down_marker()), "") << "no log line for the failed attempts";
  EXPECT_EQ(hub_->distinct_seq_count(), 0u);

  // A broker that refuses at once: attempts follow the backoff (200 ms .. 2 s), not a spin.
  proxy_->set_mode(TcpProxy::Mode::kRefuse);
  proxy_->reset_all();  // the attempt hanging now ends here
  const uint64_t before = proxy_->stats().accepted;
  constexpr auto kRefuseWindow = 10s;
  std::this_thread::sleep_for(kRefuseWindow);
  const uint64_t refused = proxy_->stats().accepted - before;
  std::cerr << "[bad-link] connection refused: " << refused << " attempts in "
            << kRefuseWindow.count() << " s (" << refused * 60 / kRefuseWindow.count()
            << " per minute; retry 200 ms .. 2 s); log: "
            << line_with(agent_->log(), down_marker(), log.size()) << "\n";
  EXPECT_GE(refused, 3u) << "the agent stopped trying";
  EXPECT_LE(refused, 40u) << "reconnecting in a spin";

  // The broker answers again: everything is delivered.
  proxy_->set_mode(TcpProxy::Mode::kPass);
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(kEvents, 30s)) << hub_->distinct_seq_count();
  EXPECT_TRUE(first_arrivals_gap_free(events()));
  EXPECT_EQ(agent_->running(), true);
}

}  // namespace
}  // namespace edgesync::test
