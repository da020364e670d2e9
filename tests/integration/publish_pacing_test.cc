// How the agent paces publishing: hub.linger_ms (events arriving one by one go out in bursts,
// an event after a quiet spell at once) and the delivery threads' scheduling class (they yield
// the CPU to ingest).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

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
  agent_->config().linger_ms = 1500;
  start_connected();
  Producer p(agent_->socket_path());

  const auto t_first = Clock::now();
  accept(p, "first");
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(1, 10s));
  // Nothing was published in the last 1.5 s: no waiting (the bound only absorbs a slow machine).
  EXPECT_LT(ms_since(t_first), 1000) << "an isolated event waited for the linger";

  // The agent published "first" after t_first, so the next burst is due 1.5 s after that at the
  // earliest: both followers go out together, then, and not before.
  accept(p, "second");
  accept(p, "third");
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(3, 10s)) << "the followers never arrived";
  EXPECT_GE(ms_since(t_first), 1500) << "followers were published before hub.linger_ms passed";

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

// The scheduling policy of each thread of `pid`, by thread name (field 41 of
// /proc/<pid>/task/<tid>/stat; the name is in parentheses and may hold spaces).
std::multimap<std::string, int> thread_policies(pid_t pid) {
  std::multimap<std::string, int> out;
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(task_dir)) {
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    // After the name: field 3 (state) ... field 41 (policy) is the 39th.
    for (int i = 3; i <= 41 && rest >> field; ++i) {
    }
    out.emplace(stat.substr(open + 1, close - open - 1), std::atoi(field.c_str()));
  }
  return out;
}

TEST_F(PublishPacingTest, DeliveryThreadsYieldTheCpuToIngest) {
  if (const char* w = std::getenv("EDGESYNC_BIN_WRAPPER"); w && *w) {
    GTEST_SKIP() << "under an emulator the agent's threads are the emulator's";
  }
  start_connected();
  constexpr int kSchedOther = 0, kSchedIdle = 5;
  auto policies = thread_policies(agent_->pid());
  std::ostringstream all;
  for (const auto& [name, policy] : policies) all << name << "=" << policy << " ";
  // Ingest (the main thread) and the outbox writer: normal. Delivery and paho's threads,
  // started from it: background.
  for (const char* name : {"edgesync", "outbox-writer"}) {
    ASSERT_EQ(policies.count(name), 1u) << all.str();
    EXPECT_EQ(policies.find(name)->second, kSchedOther) << name << ": " << all.str();
  }
  for (const char* name : {"delivery", "MQTTAsync_send", "MQTTAsync_rcv"}) {
    ASSERT_EQ(policies.count(name), 1u) << all.str();
    EXPECT_EQ(policies.find(name)->second, kSchedIdle) << name << ": " << all.str();
  }
}

}  // namespace
}  // namespace edgesync::test
