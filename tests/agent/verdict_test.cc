// The verdict rules: what makes a box DEGRADED or DOWN, and the line a technician reads first.
#include "agent/verdict.h"

#include <gtest/gtest.h>

namespace edgesync::agent {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

VerdictInputs healthy() {
  VerdictInputs in;
  in.hub_state = "connected";
  in.hub_since_ms = kNow - 3'600'000;
  in.max_bytes = 1 << 30;
  in.certificate_state = "ok";
  in.certificate_days_left = 300;
  in.free_disk_bytes = int64_t{8} << 30;
  in.now_ms = kNow;
  return in;
}

TEST(Verdict, AConnectedBoxWithNothingWaitingIsOk) {
  const Verdict v = judge(healthy());
  EXPECT_EQ(v.level, VerdictLevel::kOk);
  EXPECT_EQ(v.line(), "OK");
}

TEST(Verdict, HubAwayLongerThanAReconnectIsDegradedWithTheBacklogInTheLine) {
  VerdictInputs in = healthy();
  in.hub_state = "disconnected";
  in.hub_since_ms = kNow - 14 * 60'000;
  in.pending = 3120;
  in.oldest_pending_ms = kNow - 14 * 60'000;
  const Verdict v = judge(in);
  EXPECT_EQ(v.level, VerdictLevel::kDegraded);
  EXPECT_EQ(v.line(), "DEGRADED: hub unreachable for 14 min, 3,120 events waiting, oldest 14 min");
}

TEST(Verdict, ABriefReconnectIsNotYetDegraded) {
  VerdictInputs in = healthy();
  in.hub_state = "connecting";
  in.hub_since_ms = kNow - 5'000;
  EXPECT_EQ(judge(in).level, VerdictLevel::kOk);
}

TEST(Verdict, OldPendingEventsWhileConnectedMeanDeliveryIsBehind) {
  VerdictInputs in = healthy();
  in.pending = 2;
  in.oldest_pending_ms = kNow - 5 * 60'000;
  const Verdict v = judge(in);
  EXPECT_EQ(v.level, VerdictLevel::kDegraded);
  EXPECT_EQ(v.reasons.at(0), "delivery behind: 2 events waiting, oldest 5 min");
}

TEST(Verdict, AStoppedAgentAFullOutboxOrAnExpiredCertificateAreDown) {
  VerdictInputs stopped = healthy();
  stopped.agent_running = false;
  EXPECT_EQ(judge(stopped).level, VerdictLevel::kDown);
  EXPECT_EQ(judge(stopped).reasons.at(0), "agent not running, nothing waiting");

  VerdictInputs full = healthy();
  full.pending_bytes = full.max_bytes;
  EXPECT_EQ(judge(full).level, VerdictLevel::kDown);

  VerdictInputs expired = healthy();
  expired.certificate_state = "expired";
  EXPECT_EQ(judge(expired).level, VerdictLevel::kDown);
}

TEST(Verdict, DownReasonsComeBeforeDegradedOnes) {
  VerdictInputs in = healthy();
  in.certificate_state = "expiring";
  in.certificate_days_left = 9;
  in.outbox_damage = "database disk image is malformed";
  const Verdict v = judge(in);
  EXPECT_EQ(v.level, VerdictLevel::kDown);
  ASSERT_EQ(v.reasons.size(), 2u);
  EXPECT_NE(v.reasons[0].find("outbox damaged"), std::string::npos);
  EXPECT_EQ(v.reasons[1], "client certificate expires in 9 days");
}

TEST(Verdict, HeldDeliveryRecentDeadLettersAndLowDiskAreDegraded) {
  VerdictInputs held = healthy();
  held.held_since_ms = kNow - 3 * 60'000;
  EXPECT_EQ(judge(held).reasons.at(0).rfind("delivery held for 3 min", 0), 0u)
      << judge(held).line();

  VerdictInputs dead = healthy();
  dead.dead_letters_last_day = 1;
  EXPECT_EQ(judge(dead).reasons.at(0), "1 dead letter in the last 24 h (edgesync dead-letters)");

  VerdictInputs disk = healthy();
  disk.free_disk_bytes = 100 << 20;
  EXPECT_EQ(judge(disk).level, VerdictLevel::kDegraded);
}

TEST(Verdict, NumbersAndDurationsReadAsATechnicianWritesThem) {
  EXPECT_EQ(grouped(0), "0");
  EXPECT_EQ(grouped(999), "999");
  EXPECT_EQ(grouped(1000), "1,000");
  EXPECT_EQ(grouped(1234567), "1,234,567");
  EXPECT_EQ(short_duration(45'000), "45 s");
  EXPECT_EQ(short_duration(14 * 60'000), "14 min");
  EXPECT_EQ(short_duration(3 * 3'600'000), "3.0 h");
  EXPECT_EQ(short_duration(3 * 86'400'000LL), "3 days");
}

}  // namespace
}  // namespace edgesync::agent
