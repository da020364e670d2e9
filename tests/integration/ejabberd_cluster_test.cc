// The agent against a real two-node ejabberd 23.01 cluster instead of one mosquitto: the agent
// publishes to node 1 over TLS (a user name and password, no client certificate), the hub
// subscribes on node 2, so every event crosses the cluster. Events arrive in seq order, and
// stopping node 1 mid-stream and starting it again loses nothing: the agent keeps accepting,
// reconnects to the restarted node, and node 2 served the hub throughout.
//
// Then edgesync-hub on the cluster: partitioned by store (ejabberd has no shared subscriptions),
// on node 2 with node 1 as its fallback, while the agent is on node 1 with node 2 as its
// fallback. Node 1 stops mid-stream (the agent fails over), comes back, then node 2 stops (the hub
// and the agent fail over to node 1): the stock at the hub is exactly the accepted sales, each
// applied once, and `gaps` is empty. The events the agent published on node 1 before the hub got
// there had no subscriber (the hub's session lived on node 2 only): the hub sees them missing
// through the agent's health message and asks the agent to send them again.
//
// Skipped where ejabberd is not installed (or the test is neither root nor the ejabberd account).
// docs/CLUSTER.md says how the cluster is made and what ejabberd 23.01 does not do.
#include "tests/harness/ejabberd_cluster.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "events/seq_ranges.h"
#include "tests/harness/postgres_server.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/tls_material.h"
#include "tests/integration/ask_again.h"
#include "tests/support/agent_process.h"
#include "tests/support/events.h"
#include "tests/support/hub_process.h"
#include "tests/support/hub_subscriber.h"
#include "tests/support/producer.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

class EjabberdClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = EjabberdCluster::unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << "no ejabberd cluster here: " << why;
    dir_ = std::make_unique<TempDir>("ejb");
    const std::string dir = dir_->path().string();
    tls_ = TlsMaterial::generate(dir);
    cluster_ = std::make_unique<EjabberdCluster>(dir, tls_, 2);
    const auto t0 = Clock::now();
    cluster_->start();
    std::cout << "[ejabberd] two-node cluster up in " << seconds_since(t0) << " s (node 1 "
              << cluster_->uri(1) << ", node 2 " << cluster_->uri(2) << ")\n";

    SubscriberOptions o;
    o.uri = cluster_->uri(2);
    o.ca_file = tls_.ca_file;
    o.cert_file = tls_.client_cert_file;  // not asked for by ejabberd; harmless
    o.key_file = tls_.client_key_file;
    o.client_id = "es-test-hub-" + std::to_string(::getpid());
    o.username = "hub";
    o.password = "anything";  // anonymous login: any password
    hub_ = std::make_unique<HubSubscriber>(o);
    hub_->connect();

    AgentConfig c;
    c.storage_path = dir + "/outbox.db";
    c.socket_path = dir + "/ingest.sock";
    c.hub_uri = cluster_->uri(1);
    c.ca_file = tls_.ca_file;
    // As a box would log in to an ejabberd hub: a user name, no client certificate.
    c.extra = {{"hub", {{"username", c.device_id}, {"password", "till-secret"}}}};
    agent_ = std::make_unique<AgentProcess>(dir, c);
  }

  void TearDown() override {
    if (HasFailure()) {
      if (agent_) {
        std::cerr << "\n===== agent log (" << agent_->log_path() << ", tail) =====\n"
                  << tail_lines(agent_->log(), 120);
      }
      if (cluster_) {
        for (int i = 1; i <= cluster_->nodes(); ++i) {
          std::cerr << "\n===== ejabberd node " << i << " log (" << cluster_->node_dir(i)
                    << "/logs, tail) =====\n"
                    << tail_lines(cluster_->log(i), 60);
        }
        std::cerr << "===== end of logs =====\n";
      }
    }
    if (agent_) agent_->terminate(10s);
    if (hub_) hub_->disconnect();
    hub_.reset();
    agent_.reset();
    const auto t0 = Clock::now();
    if (cluster_) {
      cluster_.reset();
      std::cout << "[ejabberd] cluster stopped in " << seconds_since(t0) << " s\n";
    }
    dir_.reset();
  }

  std::vector<HubEvent> events() const {
    return hub_events(hub_->messages(), agent_->config().topic_base());
  }

  std::unique_ptr<TempDir> dir_;
  TlsMaterial tls_;
  std::unique_ptr<EjabberdCluster> cluster_;
  std::unique_ptr<HubSubscriber> hub_;
  std::unique_ptr<AgentProcess> agent_;
};

// Records the seq of every accepted event; the failures in their own list (an ASSERT in a
// producer thread would not stop the test).
struct Acks {
  std::mutex mu;
  std::map<std::string, int64_t> seq_by_id;
  std::vector<std::string> problems;

  void take(const std::vector<SentEvent>& sent, const std::vector<json>& replies) {
    std::lock_guard<std::mutex> lock(mu);
    if (replies.size() != sent.size()) {
      problems.push_back(std::to_string(replies.size()) + " replies for " +
                         std::to_string(sent.size()) + " requests");
    }
    for (size_t i = 0; i < replies.size() && i < sent.size(); ++i) {
      const json& r = replies[i];
      if (!r.is_object() || r.value("ok", false) != true || !r.contains("seq") ||
          !r["seq"].is_number_integer()) {
        problems.push_back(sent[i].line + " -> " + r.dump());
        continue;
      }
      seq_by_id[sent[i].id] = r["seq"].get<int64_t>();
    }
  }
};

TEST_F(EjabberdClusterTest, EventsPublishedOnNode1ReachASubscriberOnNode2InOrder) {
  constexpr size_t kEvents = 200;
  agent_->start();
  const auto t0 = Clock::now();
  const auto sent = make_events("ejb", kEvents);
  Acks acks;
  {
    Producer p(agent_->socket_path());
    acks.take(sent, p.send_all(lines_of(sent), 60s));
  }
  ASSERT_TRUE(acks.problems.empty()) << acks.problems.front();
  ASSERT_EQ(acks.seq_by_id.size(), kEvents);

  ASSERT_TRUE(hub_->wait_for_distinct_seqs(kEvents, 60s))
      << "node 2's subscriber has " << hub_->distinct_seq_count() << " of " << kEvents;
  std::cout << "[ejabberd] " << kEvents << " events node 1 -> node 2 in " << seconds_since(t0)
            << " s\n";

  const auto evs = events();
  int64_t highest = 0;
  EXPECT_TRUE(first_arrivals_gap_free(evs, &highest));
  EXPECT_EQ(highest, static_cast<int64_t>(kEvents));
  EXPECT_EQ(acked_not_delivered(evs, acks.seq_by_id), 0u);
  // The envelope survives the hop between nodes: the MQTT 5 user properties and QoS 1.
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.front().message.qos, 1);
  EXPECT_EQ(evs.front().message.prop_seq.value_or(""), std::to_string(evs.front().seq));
  EXPECT_EQ(evs.front().message.prop_id.value_or(""), evs.front().id);
  EXPECT_EQ(hub_->connections(), 1) << "the subscriber on node 2 lost its connection";
}

TEST_F(EjabberdClusterTest, Node1StoppedMidStreamAndRestartedLosesNothing) {
  // A producer keeps sending small chunks while node 1, the agent's only hub, stops and comes
  // back: some events go out before the stop, some are accepted while the agent has no hub, some
  // after the restart.
  constexpr size_t kChunk = 10;
  agent_->start();
  const auto t0 = Clock::now();

  Acks acks;
  std::atomic<size_t> accepted{0};
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    try {
      Producer p(agent_->socket_path());
      for (size_t k = 0; !stop.load(); ++k) {
        const auto sent = make_events("ejb" + std::to_string(k), kChunk);
        acks.take(sent, p.send_all(lines_of(sent), 60s));
        accepted += kChunk;
        std::this_thread::sleep_for(100ms);
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(acks.mu);
      acks.problems.push_back(std::string("producer: ") + e.what());
    }
  });
  struct JoinOnExit {
    std::atomic<bool>& stop;
    std::thread& t;
    ~JoinOnExit() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join_on_exit{stop, producer};  // also when an ASSERT returns early
  auto wait_accepted = [&](size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (accepted.load() < n && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
    return accepted.load() >= n;
  };

  ASSERT_TRUE(hub_->wait_for_distinct_seqs(100, 30s))
      << "only " << hub_->distinct_seq_count() << " events reached node 2 before the stop";
  const size_t seen_at_stop = hub_->distinct_seq_count();
  const size_t accepted_at_stop = accepted.load();
  const auto t_stop = Clock::now();
  cluster_->stop_node(1);
  ASSERT_FALSE(cluster_->node_running(1));
  std::cout << "[ejabberd] node 1 stopped in " << seconds_since(t_stop) << " s; " << seen_at_stop
            << " events had reached node 2, " << accepted_at_stop << " were accepted\n";

  // The agent keeps accepting with its hub gone, nothing more reaches node 2 (the outage is
  // real), and node 2, on its own now, still serves its subscriber.
  const size_t accepted_when_down = accepted.load();
  const size_t seen_when_down = hub_->distinct_seq_count();
  ASSERT_TRUE(wait_accepted(accepted_when_down + 50, 20s)) << "the agent stopped accepting";
  EXPECT_EQ(hub_->distinct_seq_count(), seen_when_down) << "events arrived with node 1 down";
  EXPECT_TRUE(hub_->is_connected());

  const auto t_start = Clock::now();
  cluster_->start_node(1);
  const size_t accepted_at_restart = accepted.load();
  std::cout << "[ejabberd] node 1 back in " << seconds_since(t_start) << " s; node 2 had "
            << seen_when_down << " events when node 1 was down, "
            << accepted_at_restart - accepted_when_down
            << " more were accepted during the outage\n";
  ASSERT_TRUE(wait_accepted(accepted_at_restart + 50, 20s)) << "the agent stopped accepting";
  stop = true;
  producer.join();
  {
    std::lock_guard<std::mutex> lock(acks.mu);
    ASSERT_TRUE(acks.problems.empty()) << acks.problems.front();
  }
  const size_t total = accepted.load();
  ASSERT_EQ(acks.seq_by_id.size(), total);

  // Seqs asked for again arrive after higher ones.
  std::set<int64_t> asked;
  if (!hub_->wait_for_distinct_seqs(total, 30s)) {
    // Node 1 stopped can take with it events it acknowledged to the agent but had not yet
    // passed to node 2 (tests/integration/ask_again.h): ask as the hub does.
    events::SeqRanges have;
    std::string incarnation;
    for (const HubEvent& e : events()) {
      have.insert(e.seq);
      incarnation = e.payload.value("incarnation", "");
    }
    ASSERT_FALSE(incarnation.empty()) << "nothing arrived at node 2";
    for (const events::SeqRange& r :
         ask_agent_again(*hub_, agent_->config(), incarnation, have, static_cast<int64_t>(total),
                         "ejabberd-test")) {
      for (int64_t seq = r.first; seq <= r.last; ++seq) asked.insert(seq);
    }
    std::cout << "[ejabberd] asked the agent again for " << asked.size()
              << " seq(s) that stopped node 1 had taken\n";
  }
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(total, 60s))
      << "node 2's subscriber has " << hub_->distinct_seq_count() << " of " << total;
  std::cout << "[ejabberd] all " << total << " events at node 2 " << seconds_since(t0)
            << " s after the first was sent\n";

  const auto evs = events();
  std::set<int64_t> seqs;
  for (const auto& e : evs) seqs.insert(e.seq);
  std::vector<int64_t> missing;
  for (int64_t s = 1; s <= static_cast<int64_t>(total); ++s) {
    if (!seqs.count(s)) missing.push_back(s);
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " seqs never reached node 2, the first "
                               << missing.front();
  int64_t highest = 0;
  EXPECT_TRUE(first_arrivals_gap_free(evs, &highest, asked));
  EXPECT_EQ(highest, static_cast<int64_t>(total));
  EXPECT_EQ(acked_not_delivered(evs, acks.seq_by_id), 0u);
  std::cout << "[ejabberd] " << evs.size() << " messages for " << total << " events ("
            << (evs.size() > total ? evs.size() - total : 0) << " redelivered)\n";
  EXPECT_EQ(hub_->connections(), 1) << "the subscriber on node 2 lost its connection";
}

// Sends sales of one unit of SKU-E in chunks until `stop`; counts what the agent accepted.
class SaleFeed {
 public:
  explicit SaleFeed(const std::string& socket) {
    thread_ = std::thread([this, socket] {
      try {
        Producer p(socket);
        for (int k = 0; !stop_.load(); ++k) {
          std::vector<std::string> lines;
          for (int i = 0; i < 10; ++i) {
            lines.push_back(make_request("", "pos.sale.completed",
                                         sale_data("E" + std::to_string(k * 10 + i), "SKU-E", 1)));
          }
          for (const json& r : p.send_all(lines, 60s)) {
            if (r.value("ok", false)) {
              ++accepted_;
            } else {
              std::lock_guard lock(mu_);
              problems_.push_back(r.dump());
            }
          }
          std::this_thread::sleep_for(100ms);
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(mu_);
        problems_.push_back(std::string("producer: ") + e.what());
      }
    });
  }
  ~SaleFeed() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int accepted() const { return accepted_.load(); }
  bool wait_accepted(int n, std::chrono::milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    while (accepted_.load() < n && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
    return accepted_.load() >= n;
  }
  std::vector<std::string> problems() {
    std::lock_guard lock(mu_);
    return problems_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::vector<std::string> problems_;
  std::thread thread_;
};

TEST_F(EjabberdClusterTest, TheHubKeepsExactStockWhileTheAgentsNodeAndThenItsOwnNodeStop) {
  if (!std::getenv("EDGESYNC_HUB_BIN")) GTEST_SKIP() << "edgesync-hub is not built here";
  const std::string dir = dir_->path().string();
  std::filesystem::create_directories(dir + "/pg");
  std::filesystem::create_directories(dir + "/hub");
  PostgresServer pg(dir + "/pg");
  pg.start();
  pg.create_database("hub");
  const AgentConfig& a = agent_->config();
  HubProcess hub(dir + "/hub", {{"broker",
                                 {{"uris", json::array({cluster_->uri(2), cluster_->uri(1)})},
                                  {"client_id", "hub-ejb"},
                                  {"username", "hub"},
                                  {"password", "anything"},
                                  {"ca_file", tls_.ca_file}}},
                                {"topic_prefix", a.topic_prefix},
                                {"subscription", {{"stores", json::array({a.store_id})}}},
                                {"database", pg.conninfo("hub")},
                                {"resend", {{"interval_s", 2}}}});
  agent_->config().extra["hub"]["fallback_uris"] = json::array({cluster_->uri(2)});
  // The tail the hub's node took to its grave is seen through the box's health message.
  agent_->config().extra["health"]["interval_s"] = 5;
  const char* src = std::getenv("EDGESYNC_SOURCE_DIR");
  agent_->config().extra["ingest"]["contracts_dir"] =
      std::string(src ? src : ".") + "/config/contracts/events";
  hub.start();
  agent_->start();
  auto committed = [&] { return std::stoi(pg.psql("SELECT count(*) FROM hub_events", "hub")); };
  auto wait_committed = [&](int n, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (committed() < n && Clock::now() < deadline) std::this_thread::sleep_for(100ms);
    return committed() >= n;
  };

  SaleFeed feed(agent_->socket_path());
  ASSERT_TRUE(wait_committed(50, 60s)) << committed() << " committed\n" << hub.log();
  cluster_->stop_node(1);  // the agent's node
  ASSERT_TRUE(feed.wait_accepted(feed.accepted() + 50, 30s)) << "the agent stopped accepting";
  cluster_->start_node(1);
  ASSERT_TRUE(feed.wait_accepted(feed.accepted() + 50, 30s)) << "the agent stopped accepting";
  cluster_->stop_node(2);  // the hub's node, and the agent's since its failover
  ASSERT_TRUE(feed.wait_accepted(feed.accepted() + 50, 30s)) << "the agent stopped accepting";
  feed.finish();
  ASSERT_TRUE(feed.problems().empty()) << feed.problems().front();
  const int total = feed.accepted();
  ASSERT_TRUE(wait_committed(total, 120s))
      << committed() << " of " << total << " committed; gaps:\n"
      << hub.run({"gaps"}).out << "\n"
      << hub.log();
  json stock = hub.run_json({"stock", "--store", a.store_id, "--sku", "SKU-E"});
  ASSERT_TRUE(stock.is_array() && stock.size() == 1) << stock.dump();
  EXPECT_EQ(stock[0]["on_hand"].get<long>(), -total);
  CommandResult gaps = hub.run({"gaps"});
  EXPECT_TRUE(gaps.exited_ok()) << gaps.describe();
  std::string log = hub.log();
  EXPECT_NE(log.find("connected to " + cluster_->uri(1)), std::string::npos)
      << "the hub never moved to node 1\n"
      << log;
  // Whether this run lost a tail on node 1 (the hub asked the agent for it) depends on which
  // reached node 1 first: said, so that a run shows which case it covered.
  const size_t asked_at = log.find("asked " + a.store_id + "/");
  std::cout << "[ejabberd] " << total << " sales through two node stops; hub stock "
            << stock[0]["on_hand"] << "; "
            << (asked_at == std::string::npos
                    ? std::string("nothing lost on the way, nothing asked for again")
                    : "the hub asked the agent again: " +
                          log.substr(asked_at, log.find('\n', asked_at) - asked_at))
            << "\n";
}

}  // namespace
}  // namespace edgesync::test
