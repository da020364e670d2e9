// The reconciliation core: seq ranges, duplicates and any arrival order, dead-letter notices
// standing in for events, incarnations kept apart, and the line between a seq the box still
// has to send (pending) and one the hub acknowledged but does not have (lost).
#include "agent/reconcile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "platform/clock.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

constexpr const char* kPrefix = "edgesync/v1";
constexpr const char* kIncA = "3f0c9a52-6f1e-4c8b-9d27-5b1e0a7c4d13";
constexpr const char* kIncB = "9b2d4e61-0a7c-4f3e-8d15-2c6b7a9e0f42";
constexpr int64_t kNow = 1795000000000;  // 2026-11-18

std::string platform_time(int64_t ms) { return platform::format_rfc3339_ms(ms); }

std::string base(const std::string& device = "pos-01") {
  return std::string(kPrefix) + "/store-042/" + device;
}

void event(Reconciler* r, int64_t seq, const std::string& inc = kIncA,
           const std::string& device = "pos-01", int64_t received_ms = kNow - 5000) {
  json p = {{"id", "e-" + std::to_string(seq)},
            {"seq", seq},
            {"incarnation", inc},
            {"type", "pos.sale"},
            {"device_id", device},
            {"store_id", "store-042"},
            {"occurred_at", nullptr},
            {"received_at", platform_time(received_ms)},
            {"data", json::object()}};
  EXPECT_EQ(r->add(base(device) + "/events/pos.sale", std::string_view(p.dump())),
            MessageKind::kEvent);
}

void notice(Reconciler* r, int64_t seq, const std::string& inc = kIncA) {
  json p = {{"id", "e-" + std::to_string(seq)},
            {"seq", seq},
            {"incarnation", inc},
            {"type", "pos.sale"},
            {"device_id", "pos-01"},
            {"store_id", "store-042"},
            {"reason", "PUBACK reason code 149 (packet too large)"},
            {"failed_at", "2026-11-18T10:00:00.000Z"}};
  EXPECT_EQ(r->add(base() + "/deadletter", std::string_view(p.dump())), MessageKind::kDeadLetter);
}

void health(Reconciler* r, int64_t accepted, int64_t delivered, const std::string& inc = kIncA,
            int64_t at_ms = kNow - 2000) {
  json p = {{"format", 1},
            {"device_id", "pos-01"},
            {"store_id", "store-042"},
            {"at", platform_time(at_ms)},
            {"verdict", {{"level", "OK"}, {"reasons", json::array()}, {"line", "OK"}}},
            {"outbox",
             {{"incarnation", inc},
              {"highest_accepted_seq", accepted},
              {"highest_delivered_seq", delivered},
              {"pending", accepted - delivered}}}};
  EXPECT_EQ(r->add(base() + "/health", std::string_view(p.dump())), MessageKind::kHealth);
}

// A copy: callers pass the report as a temporary.
IncarnationReport only(const ReconcileReport& report) {
  EXPECT_EQ(report.devices.size(), 1u);
  EXPECT_EQ(report.devices.at(0).incarnations.size(), 1u);
  return report.devices.at(0).incarnations.at(0);
}

TEST(SeqRanges, AdjacentSeqsMergeIntoOneRangeInAnyOrder) {
  SeqRanges s;
  for (int64_t seq : {5, 1, 3, 2, 4, 9, 7, 8}) EXPECT_TRUE(s.insert(seq)) << seq;
  EXPECT_EQ(s.ranges(), (std::vector<SeqRange>{{1, 5}, {7, 9}}));
  EXPECT_EQ(s.count(), 8);
  EXPECT_FALSE(s.insert(3)) << "a duplicate adds nothing";
  EXPECT_EQ(s.count(), 8);
  EXPECT_TRUE(s.insert(6));
  EXPECT_EQ(s.ranges(), (std::vector<SeqRange>{{1, 9}}));
  EXPECT_TRUE(s.contains(6));
  EXPECT_FALSE(s.contains(10));
  EXPECT_FALSE(s.contains(0));
}

TEST(SeqRanges, ARangeMergesWithWhatItTouchesAndCountsOnlyNewSeqs) {
  SeqRanges s;
  EXPECT_EQ(s.insert_range(10, 20), 11);
  EXPECT_EQ(s.insert_range(30, 40), 11);
  EXPECT_EQ(s.insert_range(1, 3), 3);
  EXPECT_EQ(s.insert_range(15, 35), 9) << "21-29 are new";
  EXPECT_EQ(s.ranges(), (std::vector<SeqRange>{{1, 3}, {10, 40}}));
  EXPECT_EQ(s.insert_range(4, 9), 6) << "touching on both sides: one range";
  EXPECT_EQ(s.ranges(), (std::vector<SeqRange>{{1, 40}}));
  EXPECT_EQ(s.count(), 40);
  EXPECT_EQ(s.insert_range(5, 4), 0);
  EXPECT_EQ(s.insert_range(2, 39), 0);
}

TEST(SeqRanges, MissingAndContiguous) {
  SeqRanges s;
  for (int64_t seq = 1; seq <= 10; ++seq) {
    if (seq != 4 && seq != 7 && seq != 8) s.insert(seq);
  }
  EXPECT_EQ(s.contiguous_from(1), 3);
  EXPECT_EQ(s.contiguous_from(4), 3) << "4 itself missing";
  EXPECT_EQ(s.contiguous_from(5), 6);
  EXPECT_EQ(s.missing(1, 12), (std::vector<SeqRange>{{4, 4}, {7, 8}, {11, 12}}));
  EXPECT_EQ(s.missing(5, 6), std::vector<SeqRange>{});
  EXPECT_EQ(s.missing(8, 8), (std::vector<SeqRange>{{8, 8}}));
  EXPECT_EQ(s.missing(3, 2), std::vector<SeqRange>{});
  EXPECT_EQ(format_ranges(s.missing(1, 12)), "4, 7-8, 11-12");
  EXPECT_EQ(format_ranges({}), "none");
}

TEST(Reconciler, ShuffledDuplicatedStreamKeepsRangesNotEvents) {
  // 1..9000 without 5001, every tenth event twice, in random order: two ranges, whatever the
  // order, and the duplicates counted but not mistaken for anything.
  std::vector<int64_t> seqs;
  for (int64_t s = 1; s <= 9000; ++s) {
    if (s == 5001) continue;
    seqs.push_back(s);
    if (s % 10 == 0) seqs.push_back(s);
  }
  std::mt19937 rng(42);
  std::shuffle(seqs.begin(), seqs.end(), rng);
  Reconciler r(kPrefix);
  for (int64_t s : seqs) event(&r, s);
  health(&r, 9000, 8000);
  const auto report = r.report(kNow);
  const auto& inc = only(report);
  EXPECT_EQ(format_ranges(inc.received), "1-5000, 5002-9000");
  EXPECT_EQ(inc.received_count, 8999);
  EXPECT_EQ(inc.duplicates, 900);
  EXPECT_EQ(inc.highest_contiguous_seq, 5000);
  EXPECT_EQ(inc.lag, 4000);
  EXPECT_EQ(inc.lost, (std::vector<SeqRange>{{5001, 5001}}))
      << "the box says the hub acknowledged up to 8000";
  EXPECT_EQ(inc.state, ReconcileState::kLost);
  EXPECT_EQ(report.lost_seqs(), 1);
  EXPECT_EQ(report.events, static_cast<int64_t>(seqs.size()));
}

TEST(Reconciler, DeadLetterNoticeFillsItsSeq) {
  Reconciler r(kPrefix);
  for (int64_t s = 1; s <= 10; ++s) {
    if (s != 4) event(&r, s);
  }
  notice(&r, 4);
  notice(&r, 4);  // resent after a reconnect
  health(&r, 10, 10);
  const auto& inc = only(r.report(kNow));
  EXPECT_EQ(inc.state, ReconcileState::kComplete);
  EXPECT_EQ(format_ranges(inc.received), "1-3, 5-10");
  ASSERT_EQ(inc.dead_letters.size(), 1u);
  EXPECT_EQ(inc.dead_letters[0].seq, 4);
  EXPECT_EQ(inc.dead_letters[0].id, "e-4");
  EXPECT_NE(inc.dead_letters[0].reason.find("149"), std::string::npos);
  EXPECT_EQ(inc.highest_contiguous_seq, 10);
  EXPECT_EQ(inc.lag, 0);
  EXPECT_TRUE(inc.lost.empty());
  EXPECT_TRUE(inc.pending.empty());
  EXPECT_EQ(inc.duplicates, 1);
}

TEST(Reconciler, TwoIncarnationsOfOneDeviceAreKeptApart) {
  // The box's outbox was quarantined at seq 5: the new file starts at 1 again. Seq 1..3 of the
  // new incarnation must not count for the old one, nor the other way round.
  Reconciler r(kPrefix);
  for (int64_t s = 1; s <= 5; ++s) event(&r, s, kIncA, "pos-01", kNow - 60000);
  health(&r, 7, 5, kIncA, kNow - 50000);
  for (int64_t s = 1; s <= 3; ++s) event(&r, s, kIncB);
  health(&r, 3, 3, kIncB, kNow - 1000);
  event(&r, 4, kIncA, "pos-02");  // another device, same incarnation string: apart too
  const auto report = r.report(kNow);
  ASSERT_EQ(report.devices.size(), 2u);
  const auto& d = report.devices[0];
  EXPECT_EQ(d.device_id, "pos-01");
  ASSERT_EQ(d.incarnations.size(), 2u);
  const auto& old_inc = d.incarnations[0];
  const auto& new_inc = d.incarnations[1];
  EXPECT_EQ(old_inc.incarnation, kIncA) << "the current incarnation comes last";
  EXPECT_EQ(format_ranges(old_inc.received), "1-5");
  EXPECT_EQ(old_inc.pending, (std::vector<SeqRange>{{6, 7}}));
  EXPECT_EQ(old_inc.superseded_by, kIncB);
  EXPECT_EQ(old_inc.state, ReconcileState::kBehind);
  EXPECT_EQ(new_inc.incarnation, kIncB);
  EXPECT_EQ(format_ranges(new_inc.received), "1-3");
  EXPECT_EQ(new_inc.state, ReconcileState::kComplete);
  EXPECT_EQ(new_inc.superseded_by, "");
  const auto& other = report.devices[1];
  EXPECT_EQ(other.device_id, "pos-02");
  ASSERT_EQ(other.incarnations.size(), 1u);
  EXPECT_EQ(other.incarnations[0].pending, (std::vector<SeqRange>{{1, 3}}))
      << "no health from pos-02: its holes cannot be proven lost";
  EXPECT_EQ(other.incarnations[0].state, ReconcileState::kBehind);
}

TEST(Reconciler, PendingAboveDeliveredLostAtOrBelow) {
  // The hub saw 1..50 and 52..55. The box accepted 100 and holds acknowledgements through 60.
  Reconciler r(kPrefix);
  for (int64_t s = 1; s <= 55; ++s) {
    if (s != 51) event(&r, s);
  }
  health(&r, 100, 60);
  const auto& inc = only(r.report(kNow));
  EXPECT_EQ(inc.lost, (std::vector<SeqRange>{{51, 51}, {56, 60}}));
  EXPECT_EQ(inc.pending, (std::vector<SeqRange>{{61, 100}}));
  EXPECT_EQ(inc.state, ReconcileState::kLost);
  EXPECT_EQ(inc.highest_contiguous_seq, 50);
  EXPECT_EQ(inc.lag, 50);
  EXPECT_EQ(inc.checked_to, 100);
}

TEST(Reconciler, BehindIsNotAGap) {
  // The hub has everything the box was told it has; the rest is still in the box's outbox.
  Reconciler r(kPrefix);
  for (int64_t s = 1; s <= 60; ++s) event(&r, s);
  health(&r, 100, 60);
  const auto report = r.report(kNow);
  const auto& inc = only(report);
  EXPECT_TRUE(inc.lost.empty());
  EXPECT_EQ(inc.pending, (std::vector<SeqRange>{{61, 100}}));
  EXPECT_EQ(inc.state, ReconcileState::kBehind);
  EXPECT_EQ(inc.lag, 40);
  EXPECT_EQ(report.lost_seqs(), 0);
  EXPECT_EQ(reconcile_json(report)["ok"], true);
}

TEST(Reconciler, HealthInAnyOrderTheLargestFiguresCount) {
  // An old retained message read after a newer one must not pull the figures back.
  Reconciler r(kPrefix);
  for (int64_t s = 1; s <= 100; ++s) event(&r, s);
  health(&r, 100, 100, kIncA, kNow - 1000);
  health(&r, 50, 40, kIncA, kNow - 90000);
  const auto& inc = only(r.report(kNow));
  EXPECT_EQ(inc.highest_accepted_seq, 100);
  EXPECT_EQ(inc.highest_delivered_seq, 100);
  EXPECT_EQ(inc.state, ReconcileState::kComplete);
  ASSERT_TRUE(inc.health_age_s.has_value());
  EXPECT_DOUBLE_EQ(*inc.health_age_s, 1.0) << "the newest health message's age";
  ASSERT_TRUE(inc.newest_event_age_s.has_value());
  EXPECT_DOUBLE_EQ(*inc.newest_event_age_s, 5.0);
}

TEST(Reconciler, HigherSeqThanHealthSaysExtendsTheCheck) {
  // A health message older than the events: the seqs seen count up to the highest one.
  Reconciler r(kPrefix);
  for (int64_t s = 1; s <= 20; ++s) {
    if (s != 15) event(&r, s);
  }
  health(&r, 10, 10);
  const auto& inc = only(r.report(kNow));
  EXPECT_EQ(inc.checked_to, 20);
  EXPECT_EQ(inc.pending, (std::vector<SeqRange>{{15, 15}}));
  EXPECT_TRUE(inc.lost.empty());
}

TEST(Reconciler, WithoutHealthNothingMissingIsUnconfirmed) {
  Reconciler r(kPrefix);
  for (int64_t s = 1; s <= 5; ++s) event(&r, s);
  const auto& inc = only(r.report(kNow));
  EXPECT_EQ(inc.state, ReconcileState::kUnconfirmed);
  EXPECT_FALSE(inc.has_health);
  EXPECT_EQ(inc.checked_to, 5);
}

TEST(Reconciler, FromFirstSeenChecksOnlyWhatTheRecordCovers) {
  Reconciler r(kPrefix, ReconcileOptions{true});
  for (int64_t s = 500; s <= 600; ++s) event(&r, s);
  health(&r, 600, 600);
  auto inc = only(r.report(kNow));
  EXPECT_EQ(inc.state, ReconcileState::kComplete);
  EXPECT_EQ(inc.checked_from, 500);
  EXPECT_EQ(inc.highest_contiguous_seq, 600);

  // Nothing seen, only the retained health: what the box has not delivered yet is pending.
  Reconciler quiet(kPrefix, ReconcileOptions{true});
  health(&quiet, 10, 5);
  inc = only(quiet.report(kNow));
  EXPECT_EQ(inc.checked_from, 6);
  EXPECT_EQ(inc.pending, (std::vector<SeqRange>{{6, 10}}));
  EXPECT_EQ(inc.lag, 5);
  EXPECT_EQ(inc.state, ReconcileState::kBehind);

  // The same record read from seq 1: everything below 500 is missing, and lost.
  Reconciler strict(kPrefix);
  for (int64_t s = 500; s <= 600; ++s) event(&strict, s);
  health(&strict, 600, 600);
  EXPECT_EQ(only(strict.report(kNow)).lost, (std::vector<SeqRange>{{1, 499}}));
}

TEST(Reconciler, OtherTopicsIgnoredBrokenPayloadsCounted) {
  Reconciler r("edgesync/v1/");  // a trailing slash is the same prefix
  EXPECT_EQ(r.add(base() + "/status", std::string_view("{\"online\":true}")),
            MessageKind::kIgnored);
  EXPECT_EQ(r.add(base() + "/config/status", std::string_view("not json")), MessageKind::kIgnored);
  EXPECT_EQ(r.add("edgesync/v1/fleet/config", std::string_view("{}")), MessageKind::kIgnored);
  EXPECT_EQ(r.add("other/v1/store-042/pos-01/events/pos.sale", std::string_view("{}")),
            MessageKind::kIgnored);
  EXPECT_EQ(r.add(base() + "/events/pos.sale", std::string_view("{\"seq\":")),
            MessageKind::kUnreadable);
  EXPECT_EQ(r.add_json(base() + "/events/pos.sale", json{{"seq", 0}, {"incarnation", kIncA}}),
            MessageKind::kUnreadable);
  EXPECT_EQ(r.add_json(base() + "/events/pos.sale", json{{"seq", "7"}, {"incarnation", kIncA}}),
            MessageKind::kUnreadable);
  EXPECT_EQ(r.add_json(base() + "/health", json{{"outbox", {{"incarnation", kIncA}}}}),
            MessageKind::kUnreadable);
  EXPECT_EQ(r.add_json(base() + "/events/pos.sale", json{{"seq", 1}, {"incarnation", kIncA}}),
            MessageKind::kEvent)
      << "a payload parsed elsewhere (a capture with the payload as JSON) counts the same";
  const auto report = r.report(kNow);
  EXPECT_EQ(report.ignored, 4);
  EXPECT_EQ(report.unreadable, 4);
  EXPECT_EQ(report.events, 1);
  EXPECT_EQ(report.problems.size(), 4u);
  EXPECT_NE(report.problems[0].find("not JSON"), std::string::npos) << report.problems[0];
}

TEST(Reconciler, JsonCarriesRangesAndCounts) {
  Reconciler r(kPrefix);
  for (int64_t s = 1; s <= 10; ++s) {
    if (s != 3) event(&r, s);
  }
  notice(&r, 9);
  health(&r, 12, 10);
  const json j = reconcile_json(r.report(kNow));
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["lost_seqs"], 1);
  EXPECT_EQ(j["checked_from"], "seq_1");
  const json& inc = j["devices"][0]["incarnations"][0];
  EXPECT_EQ(j["devices"][0]["store_id"], "store-042");
  EXPECT_EQ(inc["state"], "lost");
  EXPECT_EQ(inc["received"], json::parse("[[1,2],[4,10]]"));
  EXPECT_EQ(inc["lost"], json::parse("[[3,3]]"));
  EXPECT_EQ(inc["pending"], json::parse("[[11,12]]"));
  EXPECT_EQ(inc["pending_count"], 2);
  EXPECT_EQ(inc["dead_letters"][0]["seq"], 9);
  EXPECT_EQ(inc["health"]["highest_accepted_seq"], 12);
  EXPECT_EQ(inc["superseded_by"], nullptr);
}

}  // namespace
}  // namespace edgesync::agent
