// The shipped event contracts and their fixtures (tests/contracts/fixtures): every valid fixture
// is accepted as a request, every invalid one refused with exactly the violations it lists
// (path, rule, expected); and the registry's loading rules (names, broken files, duplicates).
#include "events/contract_registry.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "agent/event_contract.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string source_dir() {
  const char* src = std::getenv("EDGESYNC_SOURCE_DIR");
  return src ? src : ".";
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str(), nullptr, false);
}

std::shared_ptr<const ContractRegistry> shipped() {
  auto r = ContractRegistry::load({source_dir() + "/config/contracts/events"});
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r ? *r : ContractRegistry::empty();
}

std::string request_line(const std::string& type, int v, const json& data) {
  json req = {{"type", type}, {"v", v}, {"data", data}};
  return req.dump();
}

TEST(ContractRegistry, TheShippedContractsAreTheDocumentedOnes) {
  auto reg = shipped();
  for (const char* type : {"pos.sale.completed", "pos.return.completed", "pos.void",
                           "inventory.adjusted", "inventory.counted", "inventory.received",
                           "price.changed"}) {
    EXPECT_GE(reg->newest(type), 1) << type;
  }
  EXPECT_EQ(reg->newest("pos.sale.completed"), 2);
  EXPECT_EQ(reg->versions("pos.sale.completed"), (std::vector<int>{1, 2}));
  EXPECT_EQ(reg->newest("pos.sale"), 0) << "a prefix of a type is not that type";
  EXPECT_EQ(reg->newest("till.opened"), 0);
}

// Every fixture, through the same parse_event the ingest server runs.
TEST(ContractRegistry, EveryFixtureIsJudgedAsItSays) {
  auto reg = shipped();
  IdGenerator ids;
  const ContractCheck check{reg.get(), false};
  size_t fixtures = 0;
  for (const auto& entry : fs::directory_iterator(source_dir() + "/tests/contracts/fixtures")) {
    const std::string name = entry.path().filename().string();
    std::string type;
    int version = 0;
    ASSERT_TRUE(parse_contract_file_name(
        name.substr(0, name.size() - std::string(".json").size()) + ".schema.json", &type,
        &version))
        << name;
    ASSERT_TRUE(reg->has(type, version)) << name << ": no contract for its fixtures";
    const json f = read_json(entry.path().string());
    ASSERT_TRUE(f.is_object()) << name;
    for (const auto& valid : f["valid"]) {
      SCOPED_TRACE(name + ": " + valid.value("name", ""));
      storage::AppendRequest req;
      ParseFailure failure;
      bool checked = false;
      EXPECT_TRUE(parse_event(request_line(type, version, valid["data"]), 1, ids, check, &req,
                              &failure, &checked))
          << failure.message;
      EXPECT_TRUE(checked);
      EXPECT_EQ(req.contract_version, version);
      ++fixtures;
    }
    for (const auto& invalid : f["invalid"]) {
      SCOPED_TRACE(name + ": " + invalid.value("name", ""));
      storage::AppendRequest req;
      ParseFailure failure;
      ASSERT_FALSE(parse_event(request_line(type, version, invalid["data"]), 1, ids, check, &req,
                               &failure));
      EXPECT_EQ(failure.error, IngestError::kInvalidEvent);
      json got = json::array();
      for (const auto& v : failure.violations) got.push_back(json(v.to_json()));
      // The same set: valijson's order is its own (a value's findings before its parent's).
      json want = invalid["violations"];
      auto by_path = [](const json& a, const json& b) { return a.dump() < b.dump(); };
      std::sort(got.begin(), got.end(), by_path);
      std::sort(want.begin(), want.end(), by_path);
      EXPECT_EQ(got, want) << failure.message;
      EXPECT_NE(failure.message.find(type + " v" + std::to_string(version)), std::string::npos)
          << failure.message;
      ++fixtures;
    }
  }
  EXPECT_GE(fixtures, 7u * 8u) << "the fixtures went missing";
}

// v2 of pos.sale.completed is a compatible change: whatever v1 accepts, v2 accepts.
TEST(ContractRegistry, SaleV2AcceptsEveryValidV1Event) {
  auto reg = shipped();
  const json f = read_json(source_dir() + "/tests/contracts/fixtures/pos.sale.completed.v1.json");
  ASSERT_TRUE(f.is_object());
  for (const auto& valid : f["valid"]) {
    std::vector<Violation> v;
    EXPECT_TRUE(reg->validate("pos.sale.completed", 2, valid["data"], &v))
        << valid.value("name", "") << ": " << (v.empty() ? "" : v[0].to_json().dump());
  }
}

TEST(ContractRegistry, VersionsUnknownTypesAndTheNewestByDefault) {
  auto reg = shipped();
  IdGenerator ids;
  const json data = read_json(source_dir() + "/tests/contracts/fixtures/pos.sale.completed.v1.json")[
      "valid"][0]["data"];
  storage::AppendRequest req;
  ParseFailure failure;
  // No "v": the newest, which the reply names.
  json line = {{"type", "pos.sale.completed"}, {"data", data}};
  ASSERT_TRUE(parse_event(line.dump(), 1, ids, ContractCheck{reg.get(), false}, &req, &failure))
      << failure.message;
  EXPECT_EQ(req.contract_version, 2);
  // A version the agent does not know: the versions it does.
  line["v"] = 7;
  ASSERT_FALSE(parse_event(line.dump(), 1, ids, ContractCheck{reg.get(), false}, &req, &failure));
  EXPECT_EQ(failure.error, IngestError::kInvalidEvent);
  EXPECT_NE(failure.message.find("knows v1, v2"), std::string::npos) << failure.message;
  line["v"] = "1";
  ASSERT_FALSE(parse_event(line.dump(), 1, ids, ContractCheck{reg.get(), false}, &req, &failure));
  EXPECT_NE(failure.message.find("\"v\""), std::string::npos) << failure.message;
  // Unknown types: refused by default, passed on unchecked when the operator says so.
  json unknown = {{"type", "till.drawer_opened"}, {"v", 3}, {"data", {{"till", 1}}}};
  ASSERT_FALSE(parse_event(unknown.dump(), 1, ids, ContractCheck{reg.get(), false}, &req, &failure));
  EXPECT_EQ(failure.error, IngestError::kUnknownType);
  EXPECT_STREQ(error_code_name(failure.error), "unknown_type");
  bool checked = true;
  ASSERT_TRUE(parse_event(unknown.dump(), 1, ids, ContractCheck{reg.get(), true}, &req, &failure,
                          &checked));
  EXPECT_FALSE(checked);
  EXPECT_EQ(req.contract_version, 0) << "unchecked: no version goes to the hub as if checked";
}

TEST(ContractRegistry, TheRejectionReplyCarriesEveryViolation) {
  auto reg = shipped();
  IdGenerator ids;
  json line = {{"type", "inventory.counted"},
               {"data", {{"count_id", "c1"}, {"location_id", "floor"}, {"operator_id", "op"},
                         {"lines", {{{"sku", "A"}, {"on_hand", -1}}, {{"sku", "B"}, {"on_hand", "7"}}}}}}};
  storage::AppendRequest req;
  ParseFailure failure;
  ASSERT_FALSE(parse_event(line.dump(), 1, ids, ContractCheck{reg.get(), false}, &req, &failure));
  std::string reply;
  append_error_reply(&reply, failure.error, failure.message, failure.violations);
  const json r = json::parse(reply);
  EXPECT_EQ(r["error"], "invalid_event");
  ASSERT_EQ(r["violations"].size(), 2u) << reply;
  std::set<std::string> paths;
  for (const auto& v : r["violations"]) paths.insert(v["path"].get<std::string>());
  EXPECT_EQ(paths, (std::set<std::string>{"/data/lines/0/on_hand", "/data/lines/1/on_hand"}));
}

// valijson reads integers past INT64_MAX as negative ones: such a value would pass a minimum.
TEST(ContractRegistry, AnIntegerPastSixtyFourBitsIsRefusedNotWrapped) {
  auto reg = shipped();
  std::vector<Violation> v;
  json data = {{"adjustment_id", "a1"}, {"location_id", "floor"}, {"operator_id", "op"},
               {"reason", "damaged"},
               {"lines", {{{"sku", "1"}, {"delta", uint64_t{18446744073709551614ULL}}}}}};
  EXPECT_FALSE(reg->validate("inventory.adjusted", 1, data, &v));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].path, "/data/lines/0/delta");
  EXPECT_EQ(v[0].rule, "maximum");
}

// Past 64 KiB a refused event gets one violation, not every one: 100,000 wrong items must not
// cost the ingest thread tens of milliseconds and megabytes.
TEST(ContractRegistry, AHugeInvalidEventIsRefusedWithoutListingEveryViolation) {
  auto reg = shipped();
  IdGenerator ids;
  json lines = json::array();
  for (int i = 0; i < 40000; ++i) lines.push_back(1);
  json line = {{"type", "inventory.counted"},
               {"data", {{"count_id", "c1"}, {"location_id", "floor"}, {"operator_id", "op"},
                         {"lines", lines}}}};
  storage::AppendRequest req;
  ParseFailure failure;
  ASSERT_GT(line.dump().size(), 64u * 1024);
  ASSERT_FALSE(parse_event(line.dump(), 1, ids, ContractCheck{reg.get(), false}, &req, &failure));
  EXPECT_EQ(failure.error, IngestError::kInvalidEvent);
  ASSERT_EQ(failure.violations.size(), 1u);
  EXPECT_NE(failure.violations[0].expected.get<std::string>().find("too large"), std::string::npos);
}

class RegistryFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgesync-contracts-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  Status load() {
    auto r = ContractRegistry::load({dir_.string()});
    return r ? Status::ok() : r.status();
  }
  fs::path dir_;
};

TEST_F(RegistryFiles, ABrokenContractIsAnErrorNamingTheFile) {
  write("a.b.v1.schema.json", "{\"type\": \"object\"}");
  EXPECT_TRUE(load());
  write("a.c.v1.schema.json", "{not json");
  Status s = load();
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("a.c.v1.schema.json"), std::string::npos) << s.message();
  fs::remove(dir_ / "a.c.v1.schema.json");
  write("Bad.Name.v1.schema.json", "{}");
  s = load();
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("<type>.v<N>.schema.json"), std::string::npos) << s.message();
  fs::remove(dir_ / "Bad.Name.v1.schema.json");
  write("a.d.v01.schema.json", "{}");
  EXPECT_FALSE(load()) << "a version with a leading zero is not a version";
  fs::remove(dir_ / "a.d.v01.schema.json");
  write("README.md", "other files are ignored");
  EXPECT_TRUE(load());
  EXPECT_FALSE(ContractRegistry::load({(dir_ / "missing").string()}));
}

// Checking a schema and building its validator walk it once per level: a contract file nested
// 100,000 deep would end the agent at its load. It is an error naming the file instead.
TEST_F(RegistryFiles, AContractNestedTooDeepIsAnErrorNamingTheFile) {
  write("a.b.v1.schema.json", "{\"type\": \"object\", \"default\": " +
                                  std::string(100000, '[') + std::string(100000, ']') + "}");
  Status s = load();
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("a.b.v1.schema.json: nests deeper than"), std::string::npos)
      << s.message();
}

// std::regex recurses per repeated character: "^[0-9]+$" against a 256 KiB value crashed the
// validator's thread. A pattern without a bound is refused when the contract loads.
TEST_F(RegistryFiles, AnUnboundedPatternIsRefusedAtLoad) {
  for (const char* pattern : {"^[0-9]+$", "^a*$", "^x{2,}$", "^(ab)+$", "^([0-9A-Z]{1,200}){1,200}$",
                              "^[0-9]{1,5000}$", "^[A-Z{1,3}$"}) {
    write("a.b.v1.schema.json",
          json({{"type", "object"}, {"properties", {{"s", {{"type", "string"}, {"pattern", pattern}}}}}})
              .dump());
    Status s = load();
    EXPECT_FALSE(s) << pattern;
    EXPECT_NE(s.message().find("a.b.v1.schema.json"), std::string::npos) << s.message();
  }
  for (const char* pattern : {"^[0-9]{1,64}$", "^[+*]{1,3}$", "^a\\+b$", "^[A-Z]{3}$", "^(ab)?c{1,3}$",
                              "^([0-9]{2}-){0,1}[0-9]{1,8}$"}) {
    write("a.b.v1.schema.json",
          json({{"type", "object"}, {"properties", {{"s", {{"type", "string"}, {"pattern", pattern}}}}}})
              .dump());
    EXPECT_TRUE(load()) << pattern;
  }
}

// A title that is not a string is no reason to abort: the contract loads.
TEST_F(RegistryFiles, ANonStringTitleIsIgnored) {
  write("a.b.v1.schema.json", R"({"title": 5, "type": "object"})");
  EXPECT_TRUE(load());
}

TEST_F(RegistryFiles, TheSameTypeAndVersionTwiceIsRefused) {
  write("a.b.v1.schema.json", "{\"type\": \"object\"}");
  const fs::path other = dir_ / "other";
  fs::create_directories(other);
  std::ofstream(other / "a.b.v1.schema.json") << "{\"type\": \"object\"}";
  auto r = ContractRegistry::load({dir_.string(), other.string()});
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("already defined"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace edgesync::agent
