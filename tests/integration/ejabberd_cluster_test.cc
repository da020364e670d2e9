// The agent against a real two-node ejabberd 23.01 cluster instead of one mosquitto: the agent
// publishes to node 1 over TLS (a user name and password, no client certificate), the hub
// subscribes on node 2, so every event crosses the cluster. Events arrive in seq order, and
// stopping node 1 mid-stream and starting it again loses nothing: the agent keeps accepting,
// reconnects to the restarted node, and node 2 served the hub throughout.
//
// Skipped where ejabberd is not installed (or the test is neither root nor the ejabberd account).
// docs/CLUSTER.md says how the cluster is made and what ejabberd 23.01 does not do.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "tests/harness/ejabberd_cluster.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/tls_material.h"
#include "tests/support/agent_process.h"
#include "tests/support/events.h"
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
            << accepted_at_restart - accepted_when_down << " more were accepted during the outage\n";
  ASSERT_TRUE(wait_accepted(accepted_at_restart + 50, 20s)) << "the agent stopped accepting";
  stop = true;
  producer.join();
  {
    std::lock_guard<std::mutex> lock(acks.mu);
    ASSERT_TRUE(acks.problems.empty()) << acks.problems.front();
  }
  const size_t total = accepted.load();
  ASSERT_EQ(acks.seq_by_id.size(), total);

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
  EXPECT_TRUE(first_arrivals_gap_free(evs, &highest));
  EXPECT_EQ(highest, static_cast<int64_t>(total));
  EXPECT_EQ(acked_not_delivered(evs, acks.seq_by_id), 0u);
  std::cout << "[ejabberd] " << evs.size() << " messages for " << total << " events ("
            << (evs.size() > total ? evs.size() - total : 0) << " redelivered)\n";
  EXPECT_EQ(hub_->connections(), 1) << "the subscriber on node 2 lost its connection";
}

}  // namespace
}  // namespace edgesync::test
