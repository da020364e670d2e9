// `edgesync contracts diff`: which changes between two versions of a contract would refuse events
// the old one accepted, on the shipped pos.sale.completed v1 -> v2 and on one change at a time.
#include "agent/contract_diff.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

namespace edgesync::agent {
namespace {

using nlohmann::json;

json shipped(const std::string& name) {
  const char* src = std::getenv("EDGESYNC_SOURCE_DIR");
  std::ifstream in(std::string(src ? src : ".") + "/config/contracts/events/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str(), nullptr, false);
}

size_t breaking(const std::vector<ContractChange>& changes) {
  size_t n = 0;
  for (const auto& c : changes) n += c.breaking ? 1 : 0;
  return n;
}

std::string describe(const std::vector<ContractChange>& changes) {
  std::string s;
  for (const auto& c : changes) s += (c.breaking ? "BREAKING " : "ok ") + c.path + ": " + c.what + "\n";
  return s;
}

TEST(ContractDiff, SaleV2IsACompatibleEvolutionOfV1AndNotTheOtherWayRound) {
  const json v1 = shipped("pos.sale.completed.v1.schema.json");
  const json v2 = shipped("pos.sale.completed.v2.schema.json");
  ASSERT_TRUE(v1.is_object() && v2.is_object());
  const auto forward = diff_contracts(v1, v2);
  EXPECT_FALSE(forward.empty());
  EXPECT_EQ(breaking(forward), 0u) << describe(forward);
  // Back to v1: v2's optional properties are refused again (v1 allows no others).
  const auto back = diff_contracts(v2, v1);
  EXPECT_GT(breaking(back), 0u) << describe(back);
}

json object_schema(json properties, json required = json::array()) {
  return {{"type", "object"},
          {"additionalProperties", false},
          {"required", required},
          {"properties", properties}};
}

TEST(ContractDiff, EachNarrowingIsBreakingAndEachWideningIsNot) {
  const json base = object_schema({{"qty", {{"type", "integer"}, {"minimum", 1}, {"maximum", 99}}},
                                   {"reason", {{"enum", {"damaged", "theft"}}}},
                                   {"sku", {{"type", "string"}, {"pattern", "^[0-9]{1,8}$"}}}},
                                  {"qty"});
  struct Case {
    const char* name;
    std::function<void(json&)> change;
    bool breaking;
    const char* path;
  };
  const std::vector<Case> cases = {
      {"minimum raised", [](json& s) { s["properties"]["qty"]["minimum"] = 2; }, true, "/data/qty"},
      {"minimum lowered", [](json& s) { s["properties"]["qty"]["minimum"] = 0; }, false, "/data/qty"},
      {"maximum lowered", [](json& s) { s["properties"]["qty"]["maximum"] = 50; }, true, "/data/qty"},
      {"maximum removed", [](json& s) { s["properties"]["qty"].erase("maximum"); }, false, "/data/qty"},
      {"type narrowed", [](json& s) { s["properties"]["sku"]["type"] = "integer"; }, true, "/data/sku"},
      {"type widened", [](json& s) { s["properties"]["qty"]["type"] = "number"; }, false, "/data/qty"},
      {"enum value removed", [](json& s) { s["properties"]["reason"]["enum"] = {"damaged"}; }, true,
       "/data/reason"},
      {"enum value added",
       [](json& s) { s["properties"]["reason"]["enum"] = {"damaged", "theft", "found"}; }, false,
       "/data/reason"},
      {"pattern changed", [](json& s) { s["properties"]["sku"]["pattern"] = "^[0-9]{8}$"; }, true,
       "/data/sku"},
      {"property now required", [](json& s) { s["required"] = {"qty", "sku"}; }, true, "/data/sku"},
      {"property no longer required", [](json& s) { s["required"] = json::array(); }, false,
       "/data/qty"},
      {"optional property added",
       [](json& s) { s["properties"]["note"] = {{"type", "string"}}; }, false, "/data/note"},
      {"property removed", [](json& s) { s["properties"].erase("sku"); }, true, "/data/sku"},
      {"unknown keyword", [](json& s) { s["properties"]["qty"]["multipleOf"] = 2; }, true,
       "/data/qty"},
  };
  for (const Case& c : cases) {
    json changed = base;
    c.change(changed);
    const auto changes = diff_contracts(base, changed);
    ASSERT_FALSE(changes.empty()) << c.name;
    bool found = false;
    for (const auto& ch : changes) found |= ch.path == c.path && ch.breaking == c.breaking;
    EXPECT_TRUE(found) << c.name << ":\n" << describe(changes);
    EXPECT_EQ(breaking(changes) > 0, c.breaking) << c.name << ":\n" << describe(changes);
  }
  EXPECT_TRUE(diff_contracts(base, base).empty());
  json retitled = base;
  retitled["title"] = "new words";
  EXPECT_TRUE(diff_contracts(base, retitled).empty()) << "annotations change nothing";
}

// Open objects: what other properties must be is compared too, and a property moved between
// "properties" and the rule for the others is held to both.
TEST(ContractDiff, OtherPropertiesRulesAreCompared) {
  const json open = {{"type", "object"}, {"properties", {{"sku", {{"type", "string"}}}}}};
  json typed_others = open;
  typed_others["additionalProperties"] = {{"type", "string"}};
  auto c = diff_contracts(open, typed_others);
  EXPECT_GT(breaking(c), 0u) << describe(c);
  json integer_others = typed_others;
  integer_others["additionalProperties"] = {{"type", "integer"}};
  c = diff_contracts(typed_others, integer_others);
  EXPECT_GT(breaking(c), 0u) << describe(c);
  // sku removed from properties, now held to "others must be integers": breaking.
  json moved = integer_others;
  moved["properties"].erase("sku");
  json with_sku = integer_others;
  with_sku["properties"]["sku"] = {{"type", "string"}};
  c = diff_contracts(with_sku, moved);
  EXPECT_GT(breaking(c), 0u) << describe(c);
  // A typed property added where anything was allowed: breaking.
  json added = open;
  added["properties"]["qty"] = {{"type", "integer"}};
  c = diff_contracts(open, added);
  EXPECT_GT(breaking(c), 0u) << describe(c);
}

TEST(ContractDiff, ItemsAreComparedAsEveryItem) {
  const json a = object_schema(
      {{"lines", {{"type", "array"}, {"items", object_schema({{"qty", {{"type", "integer"}}}})}}}});
  json b = a;
  b["properties"]["lines"]["items"]["properties"]["qty"]["minimum"] = 1;
  const auto changes = diff_contracts(a, b);
  ASSERT_EQ(changes.size(), 1u) << describe(changes);
  EXPECT_EQ(changes[0].path, "/data/lines/*/qty");
  EXPECT_TRUE(changes[0].breaking);
}

}  // namespace
}  // namespace edgesync::agent
