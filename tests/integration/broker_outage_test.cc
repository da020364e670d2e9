// The hub broker goes away while producers keep sending: acks keep coming (they only need the
// disk), status reports the backlog, and after the broker returns everything is delivered in
// seq order with no gaps.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <thread>

#include "tests/support/hub_fixture.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class BrokerOutageTest : public HubFixture {};

// Polls `edgesync status --json` until pred holds or timeout; returns the last status.
json wait_status(const std::function<nlohmann::json()>& get,
                 const std::function<bool(const json&)>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  json s = get();
  while (!pred(s) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
    s = get();
  }
  return s;
}

TEST_F(BrokerOutageTest, EventsAcceptedDuringOutageAreDeliveredInOrderAfterwards) {
  agent_->start();

  // Phase 1: broker up.
  auto warmup = make_events("warm", 500);
  {
    Producer p(agent_->socket_path());
    auto r = p.send_all(lines_of(warmup), 60s);
    ASSERT_EQ(r.size(), warmup.size());
  }
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(500, 60s)) << hub_->distinct_seq_count();

  // Phase 2: four producers stream continuously in chunks while the broker stops and restarts.
  constexpr size_t kProducers = 4;
  constexpr size_t kChunk = 100;
  std::atomic<bool> stop{false};
  ReplyCounter acked;
  std::mutex mu;
  std::map<std::string, int64_t> acked_seq_by_id;  // every ok reply of phase 2
  std::vector<std::string> problems;
  std::vector<std::thread> producers;
  for (size_t k = 0; k < kProducers; ++k) {
    producers.emplace_back([&, k] {
      try {
        Producer p(agent_->socket_path());
        for (size_t chunk = 0; !stop.load(); ++chunk) {
          auto evs = make_events("o" + std::to_string(k) + "-" + std::to_string(chunk), kChunk);
          auto replies = p.send_all(lines_of(evs), 60s);
          std::lock_guard<std::mutex> lock(mu);
          if (replies.size() != evs.size()) {
            problems.push_back("producer " + std::to_string(k) + " chunk " + std::to_string(chunk) +
                               ": " + std::to_string(replies.size()) + " replies for " +
                               std::to_string(evs.size()) + " requests");
            return;
          }
          for (size_t i = 0; i < evs.size(); ++i) {
            if (replies[i].value("ok", false) != true || !replies[i].contains("seq")) {
              problems.push_back(evs[i].line + " -> " + replies[i].dump());
              return;
            }
            acked_seq_by_id[evs[i].id] = replies[i]["seq"].get<int64_t>();
          }
          acked.add(evs.size());
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mu);
        problems.push_back(std::string("producer exception: ") + e.what());
      }
    });
  }
  auto join_all = [&] {
    stop = true;
    for (auto& t : producers) {
      if (t.joinable()) t.join();
    }
  };
  struct JoinOnExit {
    std::function<void()> f;
    ~JoinOnExit() { f(); }
  } join_on_exit{join_all};  // also when an ASSERT returns early

  ASSERT_TRUE(acked.wait_for(400, 60s)) << "producers stalled before the outage";
  broker_->stop();
  const size_t at_stop = acked.value();

  // Acks keep coming while the hub is unreachable.
  ASSERT_TRUE(acked.wait_for(at_stop + 2000, 60s))
      << "only " << acked.value() - at_stop << " acks in 60 s after the broker stopped";

  // Status shows the backlog and a hub that is not connected.
  auto st = wait_status([&] { return status_json(); },
                        [](const json& s) {
                          return s.is_object() && s.contains("hub") &&
                                 s["hub"].value("state", "") != "connected" &&
                                 s.contains("outbox") &&
                                 s["outbox"].value("pending", int64_t{0}) > 0;
                        },
                        15s);
  SCOPED_TRACE("status --json during outage: " + st.dump());
  ASSERT_TRUE(st.is_object());
  EXPECT_EQ(st.value("agent_running", false), true);
  ASSERT_TRUE(st.contains("hub") && st["hub"].is_object());
  const std::string state = st["hub"].value("state", "");
  EXPECT_TRUE(state == "connecting" || state == "disconnected") << "hub.state = " << state;
  ASSERT_TRUE(st.contains("outbox") && st["outbox"].is_object());
  const json& ob = st["outbox"];
  // Acks are counted per finished chunk, so up to kProducers * kChunk events counted after the
  // stop may have been accepted (and delivered) before it.
  const int64_t slack = kProducers * kChunk;
  EXPECT_GE(ob.value("pending", int64_t{0}), 2000 - slack)
      << "events acked since the outage must be pending";
  EXPECT_LE(ob.value("last_delivered_seq", int64_t{1} << 62),
            500 + static_cast<int64_t>(at_stop) + slack)
      << "events accepted after the broker stopped cannot have been delivered";
  EXPECT_GE(ob.value("next_seq", int64_t{0}), 500 + static_cast<int64_t>(at_stop) + 2000 + 1);
  EXPECT_TRUE(ob.contains("oldest_pending_age_s") && ob["oldest_pending_age_s"].is_number() &&
              ob["oldest_pending_age_s"].get<double>() >= 0.0);

  // Broker back (same port, the subscriber's persistent session restored from its db).
  broker_->start();
  const size_t at_restart = acked.value();
  const bool acks_after = acked.wait_for(at_restart + 800, 60s);
  join_all();
  ASSERT_TRUE(acks_after) << "producers stalled after the broker came back";
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_TRUE(problems.empty()) << problems.front();
  }

  const size_t total = 500 + acked_seq_by_id.size();
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(total, 120s))
      << "hub received " << hub_->distinct_seq_count() << " distinct seqs of " << total;
  const auto evs = events();
  int64_t highest = 0;
  ASSERT_TRUE(first_arrivals_gap_free(evs, &highest));
  EXPECT_EQ(highest, static_cast<int64_t>(total));
  const size_t missing = acked_not_delivered(evs, acked_seq_by_id);
  EXPECT_EQ(missing, 0u);
  std::cerr << "[outage] " << total << " events, " << evs.size() - total
            << " redeliveries, acked during outage: " << at_restart - at_stop << "\n";

  // Status afterwards: connected, nothing pending.
  auto after = wait_status([&] { return status_json(); },
                           [&](const json& s) {
                             return s.is_object() && s.contains("outbox") &&
                                    s["outbox"].value("pending", int64_t{-1}) == 0 &&
                                    s["outbox"].value("last_delivered_seq", int64_t{0}) ==
                                        static_cast<int64_t>(total);
                           },
                           20s);
  EXPECT_EQ(after["hub"].value("state", ""), "connected") << after.dump();
  EXPECT_EQ(after["outbox"].value("pending", int64_t{-1}), 0) << after.dump();
  EXPECT_EQ(after["outbox"].value("last_delivered_seq", int64_t{0}), static_cast<int64_t>(total))
      << after.dump();
  EXPECT_TRUE(after["outbox"].contains("oldest_pending_age_s") &&
              after["outbox"]["oldest_pending_age_s"].is_null())
      << after.dump();
}

}  // namespace
}  // namespace edgesync::test
