// Malformed and invalid requests get the right error reply, one per line, in order; they do not
// consume seqs, do not break the connection or other producers, and never reach the hub.
#include <gtest/gtest.h>

#include <set>

#include "tests/support/hub_fixture.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr int64_t kMaxLine = 4096;

class BadInputTest : public HubFixture {
 protected:
  void SetUp() override {
    HubFixture::SetUp();
    agent_->config().max_line_bytes = kMaxLine;
    agent_->start();
  }

  // Expects an ok, non-duplicate reply and records its id and seq.
  void expect_ok(const json& r, const std::string& what) {
    ASSERT_TRUE(r.is_object()) << what << " -> " << r.dump();
    EXPECT_EQ(r.value("ok", false), true) << what << " -> " << r.dump();
    EXPECT_EQ(r.value("duplicate", true), false) << what << " -> " << r.dump();
    const int64_t seq = r.value("seq", int64_t{-1});
    EXPECT_EQ(seq, static_cast<int64_t>(good_ids_.size()) + 1)
        << what << ": rejected requests must not consume seqs -> " << r.dump();
    good_ids_.insert(r.value("id", std::string()));
  }

  std::set<std::string> good_ids_;
};

void expect_error(const json& r, const std::string& code, const std::string& what) {
  ASSERT_TRUE(r.is_object()) << what << " -> " << r.dump();
  EXPECT_EQ(r.value("ok", true), false) << what << " -> " << r.dump();
  EXPECT_EQ(r.value("error", std::string()), code) << what << " -> " << r.dump();
  EXPECT_TRUE(r.contains("message") && r["message"].is_string() &&
              !r["message"].get<std::string>().empty())
      << what << ": error reply needs a message -> " << r.dump();
  EXPECT_FALSE(r.contains("seq")) << what << " -> " << r.dump();
}

TEST_F(BadInputTest, EachBadRequestGetsItsErrorAndTheConnectionStaysUsable) {
  const std::string long_id(129, 'a');
  const std::string max_id(128, 'b');
  struct Case {
    std::string line;
    std::string error;  // "" = must be accepted
  };
  const std::vector<Case> cases = {
      {R"({"type": "inventory.adjusted", "data": {)", "bad_json"},
      {R"(not json at all)", "bad_json"},
      {R"({"type": "inventory.adjusted", "data": {}})", ""},
      {R"({"data": {"sku": "A"}})", "invalid_event"},                          // no type
      {R"({"type": "Inventory.adjusted", "data": {}})", "invalid_event"},      // uppercase
      {R"({"type": "inventory.Adjusted", "data": {}})", "invalid_event"},      // uppercase
      {R"({"type": "inventory", "data": {}})", "invalid_event"},               // one segment
      {R"({"type": "inventory..adjusted", "data": {}})", "invalid_event"},     // empty segment
      {R"({"type": "inventory.9lives", "data": {}})", "invalid_event"},        // starts w/ digit
      {R"({"type": "inventory.adjusted.", "data": {}})", "invalid_event"},     // trailing dot
      {R"({"type": "inventory-x.adjusted", "data": {}})", "invalid_event"},    // bad char
      {R"({"type": 42, "data": {}})", "invalid_event"},                        // not a string
      {R"({"type": "inventory.adjusted", "data": [1, 2]})", "invalid_event"},  // data array
      {R"({"type": "inventory.adjusted", "data": "text"})", "invalid_event"},  // data string
      {R"({"type": "inventory.adjusted", "data": null})", "invalid_event"},    // data null
      {R"({"type": "inventory.adjusted"})", "invalid_event"},                  // no data
      {R"({"id": ")" + long_id + R"(", "type": "inventory.adjusted", "data": {}})",
       "invalid_event"},
      {R"({"id": "", "type": "inventory.adjusted", "data": {}})", "invalid_event"},
      {R"({"id": "tab\there", "type": "inventory.adjusted", "data": {}})", "invalid_event"},
      {R"({"id": "caf\u00e9", "type": "inventory.adjusted", "data": {}})", "invalid_event"},
      {R"({"id": 17, "type": "inventory.adjusted", "data": {}})", "invalid_event"},
      {R"({"id": ")" + max_id + R"(", "type": "inventory.adjusted", "data": {}})", ""},
      {R"({"type": "inventory.adjusted", "data": {}, "extra": 1})",
       "invalid_event"},  // unknown key
      {R"({"type": "inventory.adjusted", "occurred_at": "yesterday", "data": {}})",
       "invalid_event"},
      {R"({"type": "inventory.adjusted", "occurred_at": "2024-13-01T00:00:00Z", "data": {}})",
       "invalid_event"},
      {R"({"type": "inventory.adjusted", "occurred_at": "2024-05-01 12:00", "data": {}})",
       "invalid_event"},
      {R"({"type": "inventory.adjusted", "occurred_at": 1714564800, "data": {}})", "invalid_event"},
      {R"({"type": "inventory.adjusted", "occurred_at": "2024-05-01T12:30:00.250+02:00", "data": {}})",
       ""},
      {R"({"id": "ok-last", "type": "a.b", "data": {"fine": true}})", ""},
  };

  // One request at a time...
  Producer p(agent_->socket_path());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line.substr(0, 160));
    json r = p.request(c.line, 20s);
    if (c.error.empty()) {
      expect_ok(r, c.line);
    } else {
      expect_error(r, c.error, c.line);
    }
  }

  // ...and the same set pipelined on a fresh connection: replies in request order. Ids that were
  // accepted above now come back as duplicates, so give every line a fresh id where it had one.
  std::vector<std::string> lines;
  for (const auto& c : cases) lines.push_back(c.line);
  lines.back() = R"({"id": "ok-last-2", "type": "a.b", "data": {"fine": true}})";
  for (auto& l : lines) {
    if (l.find(max_id) != std::string::npos) {
      l = R"({"id": ")" + std::string(128, 'c') + R"(", "type": "inventory.adjusted", "data": {}})";
    }
  }
  Producer p2(agent_->socket_path());
  auto replies = p2.send_all(lines, 30s);
  ASSERT_EQ(replies.size(), lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE("pipelined #" + std::to_string(i) + ": " + lines[i].substr(0, 160));
    if (cases[i].error.empty()) {
      expect_ok(replies[i], lines[i]);
    } else {
      expect_error(replies[i], cases[i].error, lines[i]);
    }
  }

  // Only the accepted events reach the hub, in order.
  const size_t good = good_ids_.size();
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(good, 30s))
      << hub_->distinct_seq_count() << " of " << good;
  auto evs = events();
  ASSERT_TRUE(first_arrivals_gap_free(evs));
  std::set<std::string> hub_ids;
  for (const auto& e : evs) hub_ids.insert(e.id);
  EXPECT_EQ(hub_ids, good_ids_);
  for (const auto& e : evs) {
    if (e.payload.value("occurred_at", json()).is_string()) {
      EXPECT_EQ(e.payload["occurred_at"], "2024-05-01T12:30:00.250+02:00")
          << "occurred_at should be passed through as given: " << e.message.payload;
    }
  }
}

TEST_F(BadInputTest, OverlongLinesAreTooLargeAndTheNextLineWorks) {
  Producer p(agent_->socket_path());
  const std::string big_a =
      make_request("big-a", "inventory.adjusted", json{{"blob", std::string(kMaxLine, 'x')}});
  json r = p.request(big_a, 20s);
  expect_error(r, "too_large", "a line of " + std::to_string(big_a.size()) + " bytes");
  r = p.request(make_request("after-big-a", "inventory.adjusted", json{{"n", 1}}), 20s);
  expect_ok(r, "the line after a too_large one");

  // Much larger than any read buffer, not even JSON, followed in the same write by a good line.
  const std::string huge(1 << 20, '{');
  const std::string good = make_request("after-huge", "inventory.adjusted", json{{"n", 2}});
  p.send_raw(huge + "\n" + good + "\n");
  expect_error(p.read_reply(30s), "too_large", "a 1 MiB line");
  expect_ok(p.read_reply(30s), "the good line pipelined right after a 1 MiB line");

  // A line just under the limit is fine.
  std::string fits = make_request("fits", "inventory.adjusted", json{{"blob", ""}});
  fits = make_request("fits", "inventory.adjusted",
                      json{{"blob", std::string(kMaxLine - 100 - fits.size(), 'y')}});
  ASSERT_LT(fits.size() + 1, static_cast<size_t>(kMaxLine));
  expect_ok(p.request(fits, 20s), "a line of " + std::to_string(fits.size()) + " bytes");

  ASSERT_TRUE(hub_->wait_for_distinct_seqs(good_ids_.size(), 30s));
  auto evs = events();
  ASSERT_TRUE(first_arrivals_gap_free(evs));
  for (const auto& e : evs) {
    EXPECT_NE(e.id, "big-a") << "a too_large event reached the hub";
  }
}

TEST_F(BadInputTest, ProducerDisconnectingMidLineDoesNotDisturbOthers) {
  Producer steady(agent_->socket_path());
  expect_ok(steady.request(make_request("steady-0", "sale.completed", json{{"n", 0}}), 20s),
            "steady-0");

  {
    // Half a line, then gone.
    Producer quitter(agent_->socket_path());
    quitter.send_raw(R"({"id": "half-1", "type": "sale.completed", "data": {"n": )");
    quitter.close();
  }
  // Half a line and the connection stays open, idle, while others work.
  Producer idler(agent_->socket_path());
  idler.send_raw(R"({"id": "half-2", "type": "sale.completed", "da)");

  auto evs_to_send = make_events("s", 50);
  auto replies = steady.send_all(lines_of(evs_to_send), 30s);
  ASSERT_EQ(replies.size(), evs_to_send.size());
  for (size_t i = 0; i < replies.size(); ++i) expect_ok(replies[i], evs_to_send[i].line);

  // A new producer works too, while the idler still holds half a line.
  Producer late(agent_->socket_path());
  expect_ok(late.request(make_request("late-1", "sale.completed", json{{"n", 1}}), 20s), "late-1");

  // The idler finishing its line gets a normal reply; its half line was not mixed up with
  // anybody else's bytes.
  idler.send_raw(R"(ta": {"n": 2}})"
                 "\n");
  expect_ok(idler.read_reply(20s), "the idler's completed line");
  idler.close();

  ASSERT_TRUE(hub_->wait_for_distinct_seqs(good_ids_.size(), 30s));
  auto evs = events();
  ASSERT_TRUE(first_arrivals_gap_free(evs));
  std::set<std::string> hub_ids;
  for (const auto& e : evs) hub_ids.insert(e.id);
  EXPECT_EQ(hub_ids, good_ids_);
  EXPECT_EQ(hub_ids.count("half-1"), 0u) << "a line cut off by a disconnect was accepted";
  EXPECT_EQ(hub_ids.count("half-2"), 1u);
}

}  // namespace
}  // namespace edgesync::test
