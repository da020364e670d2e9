// The control socket's requests: parsed as documented, refused with the reason otherwise, and
// the CLI's own request lines read back as what it meant.
#include "agent/control_protocol.h"

#include <gtest/gtest.h>

namespace edgesync::agent {
namespace {

using nlohmann::json;
using Kind = storage::RepairRequest::Kind;

TEST(ControlProtocol, RequestsTheCliSendsParseBackToTheSameRepair) {
  storage::RepairRequest retry;
  retry.kind = Kind::kRetryDeadLetters;
  retry.seqs = {4, 9};
  auto r = parse_repair_request(repair_request_json(retry, 0), 0);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->kind, Kind::kRetryDeadLetters);
  EXPECT_EQ(r->seqs, (std::vector<int64_t>{4, 9}));

  storage::RepairRequest all;
  all.kind = Kind::kRetryDeadLetters;
  EXPECT_EQ(repair_request_json(all, 0)["all"], true);
  EXPECT_TRUE(parse_repair_request(repair_request_json(all, 0), 0)->seqs.empty());

  storage::RepairRequest purge;
  purge.kind = Kind::kPurgeDeadLetters;
  auto p = parse_repair_request(repair_request_json(purge, 3600), 10'000'000);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->failed_before_ms, 10'000'000 - 3'600'000);
}

TEST(ControlProtocol, BadRequestsAreRefusedWithWhatIsWrong) {
  auto unknown = parse_repair_request(json{{"cmd", "format_disk"}}, 0);
  EXPECT_EQ(unknown.status().code(), Status::Code::kNotFound);
  auto both = parse_repair_request(json{{"cmd", "retry_dead_letters"}, {"all", true}, {"seqs", {1}}}, 0);
  EXPECT_EQ(both.status().code(), Status::Code::kInvalidArgument);
  auto neither = parse_repair_request(json{{"cmd", "retry_dead_letters"}}, 0);
  EXPECT_FALSE(neither);
  auto zero = parse_repair_request(json{{"cmd", "retry_dead_letters"}, {"seqs", {0}}}, 0);
  EXPECT_FALSE(zero);
  auto text = parse_repair_request(json{{"cmd", "retry_dead_letters"}, {"seqs", {"7"}}}, 0);
  EXPECT_FALSE(text);
  auto no_age = parse_repair_request(json{{"cmd", "purge_dead_letters"}}, 0);
  EXPECT_NE(no_age.status().message().find("older_than_s"), std::string::npos);
}

TEST(ControlProtocol, RepliesCarryWhatWasDoneAndFailuresTheirMessage) {
  storage::RepairRequest retry;
  retry.kind = Kind::kRetryDeadLetters;
  storage::RepairResult done;
  done.retried = {{2, 11}};
  done.skipped = {"seq 5: no such dead letter"};
  json j = repair_reply(retry, done);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["retried"][0]["new_seq"], 11);
  EXPECT_EQ(j["skipped"][0], "seq 5: no such dead letter");
  EXPECT_EQ(repair_summary(retry, done),
            "1 dead letter put back into delivery: seq 2 as 11; 1 skipped");

  storage::RepairResult failed;
  failed.status = Status::io_error("disk full");
  json f = repair_reply(retry, failed);
  EXPECT_EQ(f["ok"], false);
  EXPECT_EQ(f["error"], "failed");
  EXPECT_NE(f["message"].get<std::string>().find("disk full"), std::string::npos);
}

}  // namespace
}  // namespace edgesync::agent
