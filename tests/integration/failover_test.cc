// hub.fallback_uris through the real agent and two real mosquitto brokers (mutual TLS): with
// hub.uri down the agent delivers through the fallback and says which broker it is on (status,
// health, log); when the broker it is on stops mid-stream it moves to the other, and the two
// brokers' subscribers together hold every seq (a resend may repeat one, none is missing; what
// the stopped broker took with it comes back when asked for, as the hub asks).
// Also: a failed connect names its cause (here: connection refused), not "return code -1".
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <thread>

#include "events/seq_ranges.h"
#include "tests/harness/net_util.h"
#include "tests/integration/ask_again.h"
#include "tests/support/events.h"
#include "tests/support/hub_fixture.h"
#include "tests/support/producer.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

class FailoverTest : public HubFixture {
 protected:
  // A second broker with the fixture's TLS material, and a persistent subscriber on it.
  void start_second_broker() {
    std::string dir = (dir_->path() / "broker-2").string();
    std::filesystem::create_directories(dir);
    second_ = std::make_unique<MosquittoBroker>(dir, tls_);
    second_->start();
    SubscriberOptions o;
    o.uri = second_->uri();
    o.ca_file = tls_.ca_file;
    o.cert_file = tls_.client_cert_file;
    o.key_file = tls_.client_key_file;
    o.client_id = "hub-on-second";
    second_hub_ = std::make_unique<HubSubscriber>(o);
    second_hub_->connect();
  }

  void TearDown() override {
    if (agent_) agent_->terminate(10s);
    if (second_hub_) second_hub_->disconnect();
    second_hub_.reset();
    second_.reset();
    HubFixture::TearDown();
  }

  std::set<int64_t> seqs_of(const HubSubscriber& s) const {
    std::set<int64_t> out;
    for (const HubEvent& e : hub_events(s.messages(), agent_->config().topic_base())) {
      out.insert(e.seq);
    }
    return out;
  }

  std::unique_ptr<MosquittoBroker> second_;
  std::unique_ptr<HubSubscriber> second_hub_;
};

TEST_F(FailoverTest, WithHubUriDownItDeliversThroughTheFallbackAndSaysWhichOne) {
  const std::string dead = "ssl://127.0.0.1:" + std::to_string(pick_free_port());
  agent_->config().hub_uri = dead;
  agent_->config().extra["hub"]["fallback_uris"] = json::array({broker_->uri()});
  agent_->start();
  Producer p(agent_->socket_path());
  auto replies = p.send_all(lines_of(make_events("fo", 50)));
  ASSERT_EQ(replies.size(), 50u);
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(50, 30s)) << hub_->count();

  json status = status_json();
  EXPECT_EQ(status["hub"]["uri"], broker_->uri()) << status.dump();
  EXPECT_EQ(status["hub"]["state"], "connected") << status.dump();
  const std::string log = agent_->log();
  EXPECT_NE(log.find("hub " + dead + ": cannot connect to " + dead + ": connection refused"),
            std::string::npos)
      << "the failed connect names its cause; log:\n"
      << log;
  EXPECT_NE(log.find("trying " + broker_->uri()), std::string::npos) << log;
  EXPECT_NE(log.find("connected to " + broker_->uri()), std::string::npos) << log;
}

TEST_F(FailoverTest, WhenTheBrokerItIsOnStopsItMovesToTheOtherAndNothingIsMissing) {
  start_second_broker();
  agent_->config().extra["hub"]["fallback_uris"] = json::array({second_->uri()});
  agent_->start();
  constexpr size_t kEvents = 600;
  Producer p(agent_->socket_path());
  std::vector<std::string> lines = lines_of(make_events("mv", kEvents));
  std::thread sender([&] {
    for (size_t i = 0; i < lines.size(); i += 50) {
      std::vector<std::string> chunk(lines.begin() + i,
                                     lines.begin() + std::min(lines.size(), i + 50));
      p.send_all(chunk);
      std::this_thread::sleep_for(20ms);
    }
  });
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(100, 30s));
  broker_->stop();  // the broker the agent is on
  sender.join();
  // The predicate runs under the second subscriber's lock: it reads that one's messages from
  // its argument, never through the subscriber.
  const std::string base = agent_->config().topic_base();
  auto everything_arrived = [&](const HubSubscriber::Messages& on_second) {
    std::set<int64_t> all = seqs_of(*hub_);
    for (const HubEvent& e : hub_events(on_second, base)) all.insert(e.seq);
    return all.size() >= kEvents;
  };
  if (!second_hub_->wait_for(everything_arrived, 20s)) {
    // The stopped broker took events with it (tests/integration/ask_again.h): ask as the hub
    // does, on the broker the agent is on now.
    events::SeqRanges have;
    for (int64_t seq : seqs_of(*hub_)) have.insert(seq);
    for (int64_t seq : seqs_of(*second_hub_)) have.insert(seq);
    std::string incarnation;
    for (const HubEvent& e : hub_events(second_hub_->messages(), base)) {
      incarnation = e.payload.value("incarnation", "");
    }
    ASSERT_FALSE(incarnation.empty()) << "nothing arrived through the second broker";
    const auto asked = ask_agent_again(*second_hub_, agent_->config(), incarnation, have,
                                       static_cast<int64_t>(kEvents), "failover-test");
    std::printf("asked the agent again for %lld seq(s) the stopped broker had taken\n",
                static_cast<long long>(events::seq_count(asked)));
    ASSERT_TRUE(second_hub_->wait_for(everything_arrived, 60s))
        << "the resend did not fill the gap";
  }
  std::set<int64_t> all = seqs_of(*hub_);
  for (int64_t s : seqs_of(*second_hub_)) all.insert(s);
  ASSERT_EQ(all.size(), kEvents);
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), static_cast<int64_t>(kEvents));
  EXPECT_FALSE(seqs_of(*second_hub_).empty()) << "nothing went through the second broker";
  json status = status_json();
  EXPECT_EQ(status["hub"]["uri"], second_->uri()) << status.dump();
}

}  // namespace
}  // namespace edgesync::test
