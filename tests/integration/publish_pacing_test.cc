// How the agent paces publishing: by default every event at once; hub.linger_ms > 0 (events
// arriving one by one go out in bursts, an event after a quiet spell at once); and the delivery
// threads' priority (below ingest, in the normal scheduling class).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <sstream>
#include <thread>

#include "tests/harness/proc_stats.h"
#include "tests/support/hub_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class PublishPacingTest : public HubFixture {
 protected:
  void start_connected() {
    agent_->start();
    const std::string status_topic = agent_->config().topic_base() + "/status";
    ASSERT_TRUE(hub_->wait_for(
        [&](const HubSubscriber::Messages& ms) {
          for (const auto& m : ms) {
            if (m.topic == status_topic && m.payload.find("\"online\":true") != std::string::npos) {
              return true;
            }
          }
          return false;
        },
        30s))
        << "the agent never connected";
  }

  void accept(Producer& p, const std::string& id) {
    auto reply = p.request(R"({"id":")" + id + R"(","type":"inventory.adjusted","data":{"sku":"A1","delta":-1}})");
    ASSERT_EQ(reply.value("ok", false), true) << reply.dump();
  }

  static double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  }
};

TEST_F(PublishPacingTest, AnEventAfterAQuietSpellGoesOutAtOnceAndFollowersWaitForTheLinger) {
  agent_->config().linger_ms = 3000;
  start_connected();
  Producer p(agent_->socket_path());

  const auto t_first = Clock::now();
  accept(p, "first");
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(1, 10s));
  // Nothing was published in the last 3 s: no waiting (the bound only absorbs a slow machine).
  EXPECT_LT(ms_since(t_first), 1000) << "an isolated event waited for the linger";

  // The agent published "first" after t_first, so the next burst is due 3 s after that at the
  // earliest: both followers go out together, then, and not before.
  // A burst reads the outbox until it finds nothing new, so followers committed while it still
  // reads belong to it. Natively that read is done long before the hub has "first"; under an
  // emulator it can still be going when the followers arrive (seen in CI: all three at 41 ms),
  // so the linger is checked on native runs only.
  if (const char* w = std::getenv("EDGESYNC_BIN_WRAPPER"); w && *w) return;
  // Natively too on a loaded machine (seen: all three at 4 ms; and at 204 ms with a 200 ms
  // pause): the followers come a second after the hub has "first", well inside the linger, once
  // that burst is surely over.
  std::this_thread::sleep_for(1s);
  accept(p, "second");
  accept(p, "third");
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(3, 10s)) << "the followers never arrived";
  EXPECT_GE(ms_since(t_first), 3000) << "followers were published before hub.linger_ms passed";

  auto got = events();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].id, "first");
  EXPECT_EQ(got[1].id, "second");
  EXPECT_EQ(got[2].id, "third");
}

TEST_F(PublishPacingTest, ZeroLingerPublishesEveryEventAtOnce) {
  agent_->config().linger_ms = 0;
  start_connected();
  Producer p(agent_->socket_path());
  for (int i = 1; i <= 3; ++i) {
    const auto t = Clock::now();
    accept(p, "e" + std::to_string(i));
    ASSERT_TRUE(hub_->wait_for_distinct_seqs(static_cast<size_t>(i), 10s));
    EXPECT_LT(ms_since(t), 1000) << "event " << i << " waited with hub.linger_ms 0";
  }
}

// The threads of `pid` by name (a name may repeat).
std::multimap<std::string, ThreadStat> thread_policies(pid_t pid) {
  std::multimap<std::string, ThreadStat> out;
  for (ThreadStat& t : proc_threads(pid)) out.emplace(t.name, std::move(t));
  return out;
}

TEST_F(PublishPacingTest, DefaultConfigPublishesEveryEventAtOnce) {
  // No hub.linger_ms in the config: what a new user gets.
  start_connected();
  Producer p(agent_->socket_path());
  for (int i = 1; i <= 5; ++i) {
    const auto t = Clock::now();
    accept(p, "d" + std::to_string(i));
    ASSERT_TRUE(hub_->wait_for_distinct_seqs(static_cast<size_t>(i), 10s));
    // Back to back: with the old 500 ms default every event after the first waited ~0.5 s.
    EXPECT_LT(ms_since(t), 250) << "event " << i << " was held back by the default config";
  }
}

TEST_F(PublishPacingTest, DeliveryThreadsRunBelowIngestInTheNormalClass) {
  if (const char* w = std::getenv("EDGESYNC_BIN_WRAPPER"); w && *w) {
    GTEST_SKIP() << "under an emulator the agent's threads are the emulator's";
  }
  start_connected();
  constexpr int kSchedOther = 0;
  auto policies = thread_policies(agent_->pid());
  std::ostringstream all;
  for (const auto& [name, s] : policies) all << name << "=" << s.policy << "/" << s.nice << " ";
  // Every thread in the normal class (SCHED_IDLE could be starved by any busy process).
  // Ingest (the main thread) and the outbox writer at the agent's nice; delivery and paho's
  // threads, started from it, five steps lower.
  ASSERT_EQ(policies.count("edgesync"), 1u) << all.str();
  const int agent_nice = policies.find("edgesync")->second.nice;
  for (const char* name : {"edgesync", "outbox-writer"}) {
    ASSERT_EQ(policies.count(name), 1u) << all.str();
    EXPECT_EQ(policies.find(name)->second.policy, kSchedOther) << name << ": " << all.str();
    EXPECT_EQ(policies.find(name)->second.nice, agent_nice) << name << ": " << all.str();
  }
  for (const char* name : {"delivery", "MQTTAsync_send", "MQTTAsync_rcv"}) {
    ASSERT_EQ(policies.count(name), 1u) << all.str();
    EXPECT_EQ(policies.find(name)->second.policy, kSchedOther) << name << ": " << all.str();
    EXPECT_EQ(policies.find(name)->second.nice, std::min(19, agent_nice + 5))
        << name << ": " << all.str();
  }
}

}  // namespace
}  // namespace edgesync::test
