// End-to-end delivery: producers -> agent (durable outbox) -> MQTT v5 over TLS -> hub.
#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <regex>
#include <set>

#include "tests/support/hub_fixture.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class DeliveryTest : public HubFixture {};

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "2026-11-23T08:15:02.123Z" (UTC, milliseconds: the documented form of received_at) -> Unix ms;
// -1 for anything else.
int64_t parse_utc_ms(const std::string& text) {
  static const std::regex form(R"((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z)");
  std::smatch m;
  if (!std::regex_match(text, m, form)) return -1;
  std::tm t{};
  t.tm_year = std::stoi(m[1]) - 1900;
  t.tm_mon = std::stoi(m[2]) - 1;
  t.tm_mday = std::stoi(m[3]);
  t.tm_hour = std::stoi(m[4]);
  t.tm_min = std::stoi(m[5]);
  t.tm_sec = std::stoi(m[6]);
  return static_cast<int64_t>(::timegm(&t)) * 1000 + std::stoi(m[7]);
}

// Checks one reply to a fresh (non-duplicate) request; returns its seq or -1.
int64_t expect_accepted(const json& reply, const SentEvent& sent, const std::string& where) {
  EXPECT_TRUE(reply.is_object() && reply.value("ok", false) == true)
      << where << ": request " << sent.line << " got " << reply.dump();
  if (!reply.is_object() || !reply.contains("seq") || !reply["seq"].is_number_integer()) {
    ADD_FAILURE() << where << ": reply without integer seq: " << reply.dump();
    return -1;
  }
  EXPECT_EQ(reply.value("duplicate", true), false) << where << ": " << reply.dump();
  if (!sent.id.empty()) {
    EXPECT_EQ(reply.value("id", std::string()), sent.id) << where << ": " << reply.dump();
  } else {
    EXPECT_FALSE(reply.value("id", std::string()).empty())
        << where << ": no generated id for an id-less request: " << reply.dump();
  }
  return reply["seq"].get<int64_t>();
}

TEST_F(DeliveryTest, TenThousandEventsFromEightProducersArriveInSeqOrder) {
  agent_->start();
  constexpr size_t kProducers = 8;
  constexpr size_t kPerProducer = 1250;
  std::vector<std::vector<SentEvent>> sent(kProducers);
  std::vector<std::vector<std::string>> streams(kProducers);
  for (size_t k = 0; k < kProducers; ++k) {
    // Producer 0 leaves the id out of every 10th request: the agent must generate one.
    sent[k] = make_events("p" + std::to_string(k), kPerProducer, k == 0 ? 10 : 0);
    streams[k] = lines_of(sent[k]);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t sent_from_ms = wall_ms();
  auto replies = send_concurrently(agent_->socket_path(), streams, 150s);
  const int64_t acked_by_ms = wall_ms();
  const auto acked_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Every request accepted; per producer, seqs increase in send order; overall 1..N once each.
  std::map<std::string, const SentEvent*> sent_by_id;  // by the id the agent reported
  std::map<int64_t, std::string> id_by_seq;
  for (size_t k = 0; k < kProducers; ++k) {
    ASSERT_EQ(replies[k].size(), kPerProducer) << "producer " << k << " got too few replies";
    int64_t prev = 0;
    for (size_t i = 0; i < kPerProducer; ++i) {
      const std::string where = "producer " + std::to_string(k) + " request " + std::to_string(i);
      int64_t seq = expect_accepted(replies[k][i], sent[k][i], where);
      ASSERT_GT(seq, prev) << where << ": seq not increasing in this producer's send order";
      prev = seq;
      const std::string id = replies[k][i]["id"].get<std::string>();
      ASSERT_TRUE(id_by_seq.emplace(seq, id).second) << where << ": seq " << seq << " given twice";
      ASSERT_TRUE(sent_by_id.emplace(id, &sent[k][i]).second) << where << ": id " << id << " twice";
    }
  }
  const int64_t total = static_cast<int64_t>(kProducers * kPerProducer);
  ASSERT_EQ(id_by_seq.begin()->first, 1);
  ASSERT_EQ(id_by_seq.rbegin()->first, total) << "seqs are not gap-free 1..N";

  // The hub gets every seq; first arrivals are exactly 1, 2, ..., N in order.
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(kProducers * kPerProducer, 150s))
      << "hub received " << hub_->distinct_seq_count() << " of " << total << " distinct seqs";
  const auto delivered_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "[delivery] " << total << " events acked in " << acked_s << " s, delivered in "
            << delivered_s << " s\n";
  const auto evs = events();
  int64_t highest = 0;
  ASSERT_TRUE(first_arrivals_gap_free(evs, &highest));
  EXPECT_EQ(highest, total);

  // Each first arrival matches what was sent and what the agent replied.
  const std::string base = agent_->config().topic_base();
  // One incarnation for the whole stream: the hub keys events on (device, incarnation, seq).
  const std::string incarnation = evs.front().payload.value("incarnation", "");
  EXPECT_EQ(incarnation.size(), 36u) << "not a UUID: '" << incarnation << "'";
  const std::set<std::string> expected_keys{"id", "seq", "incarnation", "type", "v", "device_id",
                                            "store_id", "occurred_at", "received_at", "data"};
  std::set<std::string> expected_keys_traced = expected_keys;
  expected_keys_traced.insert("trace_id");
  std::set<int64_t> checked;
  size_t mismatches = 0;
  for (const auto& e : evs) {
    if (!checked.insert(e.seq).second) continue;
    if (mismatches > 10) break;  // enough detail
    SCOPED_TRACE("hub event seq " + std::to_string(e.seq) + ": " + e.message.payload);
    ASSERT_EQ(id_by_seq.count(e.seq), 1u);
    EXPECT_EQ(e.id, id_by_seq[e.seq]);
    const SentEvent& s = *sent_by_id.at(id_by_seq[e.seq]);
    std::set<std::string> keys;
    for (auto it = e.payload.begin(); it != e.payload.end(); ++it) keys.insert(it.key());
    bool ok = true;
    ok &= e.topic == base + "/events/" + s.type;
    // A producer's trace_id reaches the hub as it was sent; without one the key is left out.
    ok &= keys == (s.trace_id.empty() ? expected_keys : expected_keys_traced);
    ok &= s.trace_id.empty() || e.payload.value("trace_id", "") == s.trace_id;
    ok &= e.payload.value("type", "") == s.type;
    ok &= e.payload.value("incarnation", "") == incarnation;
    ok &= e.message.prop_incarnation == incarnation;
    ok &= e.payload.value("device_id", "") == "pos-01";
    ok &= e.payload.value("store_id", "") == "store-042";
    ok &= e.payload.contains("data") && e.payload["data"] == s.data;
    ok &= s.occurred_at.empty()
              ? e.payload.contains("occurred_at") && e.payload["occurred_at"].is_null()
              : e.payload.value("occurred_at", json()) == json(s.occurred_at);
    // received_at: when the agent took the request, UTC with milliseconds.
    const int64_t received_ms = e.payload.value("received_at", json()).is_string()
                                    ? parse_utc_ms(e.payload["received_at"].get<std::string>())
                                    : -1;
    ok &= received_ms >= sent_from_ms - 1000 && received_ms <= acked_by_ms + 1000;
    ok &= e.message.content_type == "application/json";
    ok &= e.message.prop_id == e.id;
    ok &= e.message.prop_seq == std::to_string(e.seq);
    ok &= e.message.qos == 1;
    ok &= !e.message.retained;
    if (!ok) {
      ++mismatches;
      ADD_FAILURE() << "hub event does not match the request.\n  sent:    " << s.line
                    << "\n  topic:   " << e.topic << " (expected " << base << "/events/" << s.type
                    << ")\n  payload: " << e.message.payload << "\n  content type: '"
                    << e.message.content_type
                    << "', user props id=" << e.message.prop_id.value_or("<none>")
                    << " seq=" << e.message.prop_seq.value_or("<none>") << ", qos " << e.message.qos
                    << (e.message.retained ? ", retained" : "");
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(checked.size(), static_cast<size_t>(total));

  // The retained status topic says the agent is online (seen by a fresh subscriber).
  auto probe = make_subscriber(base + "/status", /*persistent=*/false);
  ASSERT_TRUE(probe->wait_for_count(1, 10s)) << "no retained message on " << base << "/status";
  const auto status_msg = probe->messages().front();
  EXPECT_TRUE(status_msg.retained);
  auto status = json::parse(status_msg.payload, nullptr, false);
  ASSERT_TRUE(status.is_object()) << status_msg.payload;
  EXPECT_EQ(status.value("online", false), true) << status_msg.payload;
}

TEST_F(DeliveryTest, ResubmittedIdsAreDuplicatesWithTheOriginalSeq) {
  agent_->start();
  auto sent = make_events("dup", 200);
  std::vector<json> first;
  {
    Producer p(agent_->socket_path());
    first = p.send_all(lines_of(sent), 60s);
  }
  ASSERT_EQ(first.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    ASSERT_EQ(expect_accepted(first[i], sent[i], "request " + std::to_string(i)),
              static_cast<int64_t>(i + 1));
  }

  // Resubmit every 4th event from a new connection, plus the same id twice in one pipelined
  // batch (a retry racing the original), then one fresh event as a marker.
  std::vector<std::string> again;
  std::vector<size_t> again_index;
  for (size_t i = 0; i < sent.size(); i += 4) {
    again.push_back(sent[i].line);
    again_index.push_back(i);
  }
  const auto twin = make_request("twin-1", "sale.completed", json{{"n", 1}});
  again.push_back(twin);
  again.push_back(twin);
  const auto marker = make_request("marker-1", "inventory.adjusted", json{{"marker", true}});
  again.push_back(marker);

  Producer p2(agent_->socket_path());
  auto replies = p2.send_all(again, 60s);
  ASSERT_EQ(replies.size(), again.size());
  for (size_t j = 0; j < again_index.size(); ++j) {
    const auto& r = replies[j];
    const int64_t original = first[again_index[j]]["seq"].get<int64_t>();
    EXPECT_EQ(r.value("ok", false), true) << again[j] << " -> " << r.dump();
    EXPECT_EQ(r.value("duplicate", false), true) << again[j] << " -> " << r.dump();
    EXPECT_EQ(r.value("seq", int64_t{-1}), original) << again[j] << " -> " << r.dump();
    EXPECT_EQ(r.value("id", std::string()), sent[again_index[j]].id) << r.dump();
  }
  const size_t t = again_index.size();
  EXPECT_EQ(replies[t].value("duplicate", true), false) << replies[t].dump();
  EXPECT_EQ(replies[t].value("seq", int64_t{-1}), 201) << replies[t].dump();
  EXPECT_EQ(replies[t + 1].value("duplicate", false), true) << replies[t + 1].dump();
  EXPECT_EQ(replies[t + 1].value("seq", int64_t{-1}), 201) << replies[t + 1].dump();
  EXPECT_EQ(replies[t + 2].value("duplicate", true), false) << replies[t + 2].dump();
  EXPECT_EQ(replies[t + 2].value("seq", int64_t{-1}), 202)
      << "duplicates must not consume seqs: " << replies[t + 2].dump();

  // The hub sees seqs 1..202 and nothing more: the marker (202) is published after anything a
  // duplicate could have produced, since the hub receives events in seq order.
  ASSERT_TRUE(hub_->wait_for(
      [](const HubSubscriber::Messages& ms) {
        return std::any_of(ms.begin(), ms.end(),
                           [](const ReceivedMessage& m) { return m.prop_id == "marker-1"; });
      },
      60s))
      << "marker never reached the hub; distinct seqs: " << hub_->distinct_seq_count();
  const auto evs = events();
  int64_t highest = 0;
  ASSERT_TRUE(first_arrivals_gap_free(evs, &highest));
  EXPECT_EQ(highest, 202);
  EXPECT_EQ(hub_->distinct_seq_count(), 202u);
  size_t twin_count = 0;
  for (const auto& e : evs) twin_count += e.id == "twin-1";
  EXPECT_GE(twin_count, 1u);
}

// hub.cert_file and hub.key_file are optional: a hub that authenticates itself only (TLS without
// client certificates) gets the events all the same.
class ServerOnlyTlsTest : public HubFixture {
 protected:
  BrokerOptions broker_options() const override {
    BrokerOptions o;
    o.require_client_certificate = false;
    return o;
  }
};

TEST_F(ServerOnlyTlsTest, AgentWithoutClientCertificateDelivers) {
  agent_->config().cert_file.clear();
  agent_->config().key_file.clear();
  agent_->start();
  Producer p(agent_->socket_path());
  for (int i = 1; i <= 5; ++i) {
    json r = p.request(make_request("tls-" + std::to_string(i), "sale.completed", json{{"n", i}}));
    ASSERT_EQ(r.value("seq", 0), i) << r.dump();
  }
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(5, 30s)) << hub_->distinct_seq_count();
  ASSERT_TRUE(first_arrivals_gap_free(events()));
}

}  // namespace
}  // namespace edgesync::test
