// The judgements of `edgesync doctor` apart from the facts they judge: the clock against the
// build date, free space against the outbox budget, the broker's CONNACK limits against the
// configuration; and how hub.uri is taken apart for the network probes.
#include "agent/doctor_checks.h"

#include <gtest/gtest.h>

#include "platform/tls_probe.h"

namespace edgesync::agent::doctor {
namespace {

constexpr int64_t kDayMs = 86400000;
constexpr int64_t kBuild = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kMiB = int64_t{1} << 20;

TEST(DoctorClock, AClockYearsBeforeTheBuildHasNeverBeenSet) {
  Check c = judge_clock(5000, kBuild);  // 1970: a box without RTC, before NTP
  EXPECT_EQ(c.name, "clock");
  EXPECT_EQ(c.result, Outcome::kFail);
  EXPECT_NE(c.detail.find("1970-01-01T00:00:05Z"), std::string::npos) << c.detail;
  EXPECT_NE(c.detail.find("no battery-backed clock (RTC)"), std::string::npos) << c.detail;
  EXPECT_NE(c.fix.find("timedatectl set-ntp true"), std::string::npos) << c.fix;
}

TEST(DoctorClock, BehindTheBuildWarnsAndAfterItIsOk) {
  EXPECT_EQ(judge_clock(kBuild * 1000 - 366 * kDayMs, kBuild).result, Outcome::kFail);
  EXPECT_EQ(judge_clock(kBuild * 1000 - 364 * kDayMs, kBuild).result, Outcome::kWarn);
  EXPECT_EQ(judge_clock(kBuild * 1000 - 1, kBuild).result, Outcome::kWarn);
  Check ok = judge_clock(kBuild * 1000 + 30 * kDayMs, kBuild);
  EXPECT_EQ(ok.result, Outcome::kOk);
  EXPECT_EQ(ok.detail, "2026-01-31T00:00:00Z");
  EXPECT_TRUE(ok.fix.empty());
}

Config config_with_budget(int64_t max_bytes) {
  Config c;
  c.storage.max_bytes = max_bytes;
  c.ingest.max_line_bytes = 256 * 1024;
  return c;
}

TEST(DoctorDisk, RoomForTheBudgetAndItsWalIsOk) {
  Config c = config_with_budget(100 * kMiB);
  DiskFacts d{"/var/lib/edgesync", 100 * kMiB + kWalAllowanceBytes - 10 * kMiB, 10 * kMiB};
  EXPECT_EQ(judge_disk(d, c, "/etc/edgesync/edgesync.json").result, Outcome::kOk);
}

TEST(DoctorDisk, TooLittleForTheBudgetWarnsWithTheBudgetThatFits) {
  Config c = config_with_budget(1024 * kMiB);
  DiskFacts d{"/var/lib/edgesync", 500 * kMiB, 20 * kMiB};
  Check k = judge_disk(d, c, "/etc/edgesync/edgesync.json");
  EXPECT_EQ(k.result, Outcome::kWarn);
  EXPECT_NE(k.detail.find("500.0 MiB free on /var/lib/edgesync"), std::string::npos) << k.detail;
  // 20 MiB now + 500 MiB free - 12 MiB of WAL = 508 MiB.
  EXPECT_NE(k.fix.find("lower storage.max_bytes to at most " + std::to_string(508 * kMiB) +
                       " in /etc/edgesync/edgesync.json"),
            std::string::npos)
      << k.fix;
}

TEST(DoctorDisk, NoRoomForTwoMaximumEventsFails) {
  Config c = config_with_budget(1024 * kMiB);
  DiskFacts d{"/var/lib/edgesync", 300 * 1024, 900 * kMiB};
  Check k = judge_disk(d, c, "/etc/edgesync/edgesync.json");
  EXPECT_EQ(k.result, Outcome::kFail);
  EXPECT_NE(k.fix.find("free space on the file system of /var/lib/edgesync"), std::string::npos)
      << k.fix;
}

TEST(DoctorBrokerLimits, NoLimitsOrRoomyOnesAreOk) {
  Config c;
  Check none = judge_broker_limits({}, c, "cfg", "box-doctor");
  EXPECT_EQ(none.result, Outcome::kOk);
  EXPECT_NE(none.detail.find("connected as box-doctor"), std::string::npos) << none.detail;
  EXPECT_NE(none.detail.find("no Receive Maximum"), std::string::npos) << none.detail;
  EXPECT_NE(none.detail.find("no Maximum Packet Size"), std::string::npos) << none.detail;

  Check roomy = judge_broker_limits({100, 10 * kMiB}, c, "cfg", "box-doctor");
  EXPECT_EQ(roomy.result, Outcome::kOk);
  EXPECT_NE(roomy.detail.find("hub.max_inflight 64 fits"), std::string::npos) << roomy.detail;
}

TEST(DoctorBrokerLimits, ASmallerReceiveMaximumIsReportedNotWarned) {
  // The agent lowers its window to the broker's Receive Maximum by itself.
  Check k = judge_broker_limits({10, 0}, Config{}, "cfg", "box-doctor");
  EXPECT_EQ(k.result, Outcome::kOk);
  EXPECT_NE(k.detail.find("the agent keeps 10 in flight, not hub.max_inflight 64"),
            std::string::npos)
      << k.detail;
}

TEST(DoctorBrokerLimits, APacketLimitBelowTheIngestLimitWarns) {
  Config c;
  c.ingest.max_line_bytes = 256 * 1024;
  Check k = judge_broker_limits({0, 128 * 1024}, c, "/etc/edgesync/edgesync.json", "box-doctor");
  EXPECT_EQ(k.result, Outcome::kWarn);
  EXPECT_NE(k.detail.find("dead-lettered"), std::string::npos) << k.detail;
  EXPECT_NE(k.fix.find("ingest.max_line_bytes to at most " +
                       std::to_string(128 * 1024 - kPublishOverheadBytes)),
            std::string::npos)
      << k.fix;
  EXPECT_NE(k.fix.find("at least " + std::to_string(256 * 1024 + kPublishOverheadBytes)),
            std::string::npos)
      << k.fix;
  // Right at the line limit plus the envelope: fits.
  EXPECT_EQ(judge_broker_limits({0, 256 * 1024 + kPublishOverheadBytes}, c, "cfg", "x").result,
            Outcome::kOk);
}

TEST(DoctorHubUri, TakenApartForTheProbes) {
  auto ssl = platform::parse_hub_endpoint("ssl://hub.example.net:8883");
  ASSERT_TRUE(ssl) << ssl.status().to_string();
  EXPECT_EQ(ssl->host, "hub.example.net");
  EXPECT_EQ(ssl->port, 8883);
  EXPECT_TRUE(ssl->tls);
  auto v6 = platform::parse_hub_endpoint("mqtts://[fd00::5]:8883");
  ASSERT_TRUE(v6) << v6.status().to_string();
  EXPECT_EQ(v6->host, "fd00::5");
  EXPECT_TRUE(platform::is_ip_literal(v6->host));
  auto plain = platform::parse_hub_endpoint("tcp://10.0.0.5:1883");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->tls);
  EXPECT_TRUE(platform::is_ip_literal(plain->host));
  EXPECT_FALSE(platform::is_ip_literal("hub.example.net"));
  for (const char* bad :
       {"hub.example.net:8883", "ssl://hub.example.net", "ssl://:8883", "ssl://hub:88a3",
        "ssl://hub:70000", "http://hub:80", "ssl://[::1]8883"}) {
    EXPECT_FALSE(platform::parse_hub_endpoint(bad)) << bad;
  }
}

}  // namespace
}  // namespace edgesync::agent::doctor
