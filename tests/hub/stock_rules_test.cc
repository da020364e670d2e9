// The hub's stock rules: what each event type does to stock, line by line. The well-formed
// payloads below are checked against the shipped contracts first, so the rules are tested on
// what a till really sends; the malformed ones stand for data an agent forwarded unchecked.
#include "hub/stock_rules.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>
#include <vector>

namespace edgesync::hub {
namespace {

using nlohmann::json;
using Kind = StockEffect::Kind;

std::filesystem::path source_dir() {
  if (const char* env = std::getenv("EDGESYNC_SOURCE_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return EDGESYNC_TEST_SOURCE_DIR;
}

std::filesystem::path contracts_dir() { return source_dir() / "config/contracts/events"; }

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str(), nullptr, false);
}

// The contract's violations by data, one per line; "" when data conforms. Same validator
// settings as the agent (draft 7, strong types).
std::string violations(const std::string& type, int v, const json& data) {
  const auto file = contracts_dir() / (type + ".v" + std::to_string(v) + ".schema.json");
  const json document = read_json(file);
  if (!document.is_object()) return "cannot read " + file.string();
  valijson::Schema schema;
  valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
  valijson::adapters::NlohmannJsonAdapter schema_adapter(document);
  parser.populateSchema(schema_adapter, schema);
  valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(data);
  if (validator.validate(schema, target, &results)) return "";
  std::string out;
  valijson::ValidationResults::Error error;
  while (results.popError(error)) {
    for (const auto& c : error.context) out += c;
    out += ": " + error.description + "\n";
  }
  return out.empty() ? "invalid" : out;
}

// The ruling for an event that must conform to its contract.
StockRuling conforming(const std::string& type, int v, const json& data) {
  const std::string problems = violations(type, v, data);
  EXPECT_EQ(problems, "") << type << " v" << v << " test payload does not match its contract";
  return stock_effects(type, v, data);
}

StockEffect delta(std::string sku, int64_t qty, int line) {
  return {Kind::kDelta, std::move(sku), qty, line};
}
StockEffect level(std::string sku, int64_t qty, int line) {
  return {Kind::kLevel, std::move(sku), qty, line};
}

std::string show(const std::vector<StockEffect>& effects) {
  std::string s;
  for (const auto& e : effects) {
    s += std::string(e.kind == Kind::kDelta ? "delta " : "level ") + e.sku + " " +
         std::to_string(e.qty) + " @" + std::to_string(e.line_index) + "\n";
  }
  return s;
}

void expect_effects(const StockRuling& ruling, const std::vector<StockEffect>& expected) {
  EXPECT_EQ(show(ruling.effects), show(expected));
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A sale line as the v1 contract has it.
json sale_line(int line_no, const std::string& sku, int64_t qty, int64_t unit_price) {
  return {{"line_no", line_no},
          {"sku", sku},
          {"qty", qty},
          {"unit_price_minor", unit_price},
          {"line_total_minor", qty * unit_price}};
}

json sale_v1(const std::vector<json>& lines) {
  int64_t total = 0;
  for (const auto& l : lines) total += l["line_total_minor"].get<int64_t>();
  return {{"receipt_id", "r1001"},
          {"till_id", "till-3"},
          {"operator_id", "op-17"},
          {"business_day", "2026-11-23"},
          {"currency", "EUR"},
          {"lines", lines},
          {"total_minor", total},
          {"payments", json::array({{{"method", "card"}, {"amount_minor", total}}})}};
}

json return_line(int line_no, const std::string& sku, int64_t qty, int64_t unit_price) {
  return {{"line_no", line_no},         {"sku", sku},
          {"qty", qty},                 {"unit_price_minor", unit_price},
          {"line_total_minor", qty * unit_price}, {"reason", "unwanted"}};
}

json return_v1(const std::vector<json>& lines) {
  int64_t total = 0;
  for (const auto& l : lines) total += l["line_total_minor"].get<int64_t>();
  return {{"return_id", "rt-2002"},
          {"original_receipt_id", "r1002"},
          {"till_id", "till-1"},
          {"operator_id", "op-04"},
          {"currency", "EUR"},
          {"lines", lines},
          {"refund_total_minor", total},
          {"refunds", json::array({{{"method", "cash"}, {"amount_minor", total}}})}};
}

json adjusted_v1(const std::vector<json>& lines) {
  return {{"adjustment_id", "adj-0311"}, {"location_id", "stockroom"}, {"operator_id", "op-09"},
          {"reason", "damaged"},         {"note", "pallet dropped"},   {"lines", lines}};
}

json received_v1(const std::vector<json>& lines) {
  return {{"delivery_id", "grn-5521"},      {"supplier_id", "sup-acme"},
          {"purchase_order_ref", "po-88812"}, {"delivery_note_ref", "dn-44172"},
          {"location_id", "stockroom"},     {"operator_id", "op-09"},
          {"lines", lines}};
}

json counted_v1(const std::vector<json>& lines) {
  return {{"count_id", "cnt-2026-11-w48"}, {"location_id", "shop-floor"}, {"operator_id", "op-12"},
          {"count_type", "cycle"},         {"lines", lines}};
}

TEST(StockRules, TheContractCheckOfTheTestPayloadsRefusesWhatTheContractsRefuse) {
  // Without this the payload checks below could pass by checking nothing.
  json line = sale_line(1, "100234", 2, 199);
  line["discount_minor"] = 10;  // v2 only
  EXPECT_EQ(violations("pos.sale.completed", 2, sale_v1({line})), "");
  EXPECT_NE(violations("pos.sale.completed", 1, sale_v1({line})), "");
  EXPECT_NE(violations("inventory.adjusted", 1, adjusted_v1({{{"sku", "100234"}, {"delta", 0}}})),
            "");
}

// --- the rules, on payloads the contracts accept ---------------------------------------------

TEST(StockRules, SaleV1TakesEachLineOutOfStock) {
  const auto r = conforming("pos.sale.completed", 1,
                            sale_v1({sale_line(1, "100234", 2, 199), sale_line(2, "200871", 1, 1250)}));
  EXPECT_TRUE(r.known_type);
  EXPECT_EQ(r.note, "");
  expect_effects(r, {delta("100234", -2, 0), delta("200871", -1, 1)});
}

TEST(StockRules, SaleV2WithDiscountAndLoyaltyCustomerCountsUnitsNotMoney) {
  // The documented v2 example: a discount changes the money, not the units that left the shelf.
  json discounted = sale_line(2, "200871", 1, 1250);
  discounted["discount_minor"] = 125;
  discounted["line_total_minor"] = 1125;
  json data = sale_v1({sale_line(1, "100234", 2, 199), discounted});
  data["receipt_id"] = "r1003";
  data["customer_ref"] = "LOY-0042-7781";
  data["total_minor"] = 1523;
  data["payments"] = json::array({{{"method", "card"}, {"amount_minor", 1523}}});
  data["tax_minor"] = 264;
  const auto r = conforming("pos.sale.completed", 2, data);
  EXPECT_TRUE(r.known_type);
  EXPECT_EQ(r.note, "");
  expect_effects(r, {delta("100234", -2, 0), delta("200871", -1, 1)});
}

TEST(StockRules, TheSameSkuOnTwoLinesStaysTwoEffects) {
  // Scanned twice at the till: the hub sums, and each line keeps its own idempotent key.
  const auto r = conforming("pos.sale.completed", 1,
                            sale_v1({sale_line(1, "100234", 1, 199), sale_line(2, "300015", 3, 89),
                                     sale_line(3, "100234", 4, 199)}));
  EXPECT_EQ(r.note, "");
  expect_effects(r, {delta("100234", -1, 0), delta("300015", -3, 1), delta("100234", -4, 2)});
}

TEST(StockRules, ReturnRestocksEachLineExceptThoseWrittenOff) {
  json absent = return_line(1, "100234", 2, 199);  // restock left out means true
  json damaged = return_line(2, "200871", 1, 1250);
  damaged["reason"] = "damaged";
  damaged["restock"] = false;
  json restocked = return_line(3, "300015", 3, 89);
  restocked["restock"] = true;
  const auto r = conforming("pos.return.completed", 1, return_v1({absent, damaged, restocked}));
  EXPECT_TRUE(r.known_type);
  // A write-off is ordinary business, not a problem with the event.
  EXPECT_EQ(r.note, "");
  expect_effects(r, {delta("100234", 2, 0), delta("300015", 3, 2)});
}

TEST(StockRules, AReturnWrittenOffEntirelyChangesNoStock) {
  json line = return_line(1, "200871", 1, 1250);
  line["reason"] = "defective";
  line["restock"] = false;
  json data = return_v1({line});
  data.erase("original_receipt_id");
  const auto r = conforming("pos.return.completed", 1, data);
  EXPECT_TRUE(r.known_type);
  EXPECT_EQ(r.note, "");
  EXPECT_TRUE(r.effects.empty());
}

TEST(StockRules, AdjustmentAddsItsSignedDeltas) {
  const auto r = conforming(
      "inventory.adjusted", 1,
      adjusted_v1({{{"sku", "100234"}, {"gtin", "4006381333931"}, {"bin", "A-03"}, {"delta", -6}},
                   {{"sku", "200871"}, {"delta", 2}}}));
  EXPECT_TRUE(r.known_type);
  EXPECT_EQ(r.note, "");
  expect_effects(r, {delta("100234", -6, 0), delta("200871", 2, 1)});
}

TEST(StockRules, DeliveryAddsWhatWasReceived) {
  const auto r = conforming(
      "inventory.received", 1,
      received_v1({{{"sku", "100234"}, {"gtin", "4006381333931"}, {"qty", 48}, {"lot", "L2026-311"},
                    {"expiry_date", "2027-05-31"}},
                   {{"sku", "300015"}, {"qty", 12}, {"bin", "B-11"}}}));
  EXPECT_TRUE(r.known_type);
  EXPECT_EQ(r.note, "");
  expect_effects(r, {delta("100234", 48, 0), delta("300015", 12, 1)});
}

TEST(StockRules, CountGivesAbsoluteLevelsZeroIncluded) {
  const auto r = conforming("inventory.counted", 1,
                            counted_v1({{{"sku", "100234"}, {"bin", "A-03"}, {"on_hand", 17}},
                                        {{"sku", "200871"}, {"on_hand", 0}},
                                        {{"sku", "100234"}, {"bin", "A-04"}, {"on_hand", 5}}}));
  EXPECT_TRUE(r.known_type);
  EXPECT_EQ(r.note, "");
  // The same sku in two bins: two levels, which the hub adds up to the sku's level.
  expect_effects(r, {level("100234", 17, 0), level("200871", 0, 1), level("100234", 5, 2)});
}

TEST(StockRules, VoidAndPriceChangeAreKnownAndMoveNoStock) {
  const auto v = conforming("pos.void", 1,
                            {{"receipt_id", "r1004"},
                             {"till_id", "till-3"},
                             {"operator_id", "op-17"},
                             {"supervisor_id", "op-02"},
                             {"reason", "customer_cancelled"},
                             {"currency", "EUR"},
                             {"voided_total_minor", 2497},
                             {"line_count", 3}});
  EXPECT_TRUE(v.known_type);
  EXPECT_TRUE(v.effects.empty());
  EXPECT_EQ(v.note, "");

  const auto p = conforming("price.changed", 1,
                            {{"change_id", "pc-7781"},
                             {"sku", "100234"},
                             {"gtin", "4006381333931"},
                             {"currency", "EUR"},
                             {"old_price_minor", 199},
                             {"new_price_minor", 179},
                             {"effective_at", "2026-11-24T06:00:00Z"},
                             {"reason", "promotion_start"}});
  EXPECT_TRUE(p.known_type);
  EXPECT_TRUE(p.effects.empty());
  EXPECT_EQ(p.note, "");
}

// --- types and versions the rules do not know ------------------------------------------------

TEST(StockRules, AnUnknownTypeIsStoredAndChangesNoStock) {
  // What an agent with ingest.unknown_types accept forwards: no version, any data.
  const auto r = stock_effects("pos.tip", 0,
                               {{"till_id", "till-3"},
                                {"lines", json::array({{{"sku", "100234"}, {"qty", 1}}})}});
  EXPECT_FALSE(r.known_type);
  EXPECT_TRUE(r.effects.empty());
  EXPECT_TRUE(contains(r.note, "\"pos.tip\"")) << r.note;
  EXPECT_TRUE(contains(r.note, "changes no stock")) << r.note;
}

TEST(StockRules, AVersionTheRulesHaveNotReadChangesNoStock) {
  // Data that v1 would accept: the version alone decides, a guessed meaning could be wrong.
  const json data = sale_v1({sale_line(1, "100234", 2, 199)});
  const auto v9 = stock_effects("pos.sale.completed", 9, data);
  EXPECT_FALSE(v9.known_type);
  EXPECT_TRUE(v9.effects.empty());
  EXPECT_TRUE(contains(v9.note, "v9")) << v9.note;
  EXPECT_TRUE(contains(v9.note, "v1, v2")) << v9.note;
  EXPECT_TRUE(contains(v9.note, "changes no stock")) << v9.note;

  const auto void_v2 = stock_effects("pos.void", 2, json::object());
  EXPECT_FALSE(void_v2.known_type);
  EXPECT_FALSE(void_v2.note.empty());

  const auto negative = stock_effects("inventory.received", -1, json::object());
  EXPECT_FALSE(negative.known_type);
  EXPECT_FALSE(negative.note.empty());
}

TEST(StockRules, AKnownTypeWithoutAVersionWasNotCheckedAndChangesNoStock) {
  const auto r = stock_effects("inventory.counted", 0,
                               counted_v1({{{"sku", "100234"}, {"on_hand", 17}}}));
  EXPECT_FALSE(r.known_type);
  EXPECT_TRUE(r.effects.empty());
  EXPECT_TRUE(contains(r.note, "without a contract version")) << r.note;
}

TEST(StockRules, TypesAreMatchedExactly) {
  const json data = sale_v1({sale_line(1, "100234", 2, 199)});
  for (const char* type : {"POS.SALE.COMPLETED", "pos.sale.completed ", "pos.sale", ""}) {
    const auto r = stock_effects(type, 1, data);
    EXPECT_FALSE(r.known_type) << type;
    EXPECT_TRUE(r.effects.empty()) << type;
    EXPECT_FALSE(r.note.empty()) << type;
  }
}

// --- data no contract checked ----------------------------------------------------------------

TEST(StockRules, MalformedLinesAreSkippedNamedAndKeepTheOthersIndexes) {
  const json lines = json::array({
      "100234",                                       // 0: not an object
      {{"qty", 1}},                                   // 1: no sku
      {{"sku", 100234}, {"qty", 1}},                  // 2: sku a number
      {{"sku", ""}, {"qty", 1}},                      // 3: empty sku
      {{"sku", "200871"}},                            // 4: no qty
      {{"sku", "200872"}, {"qty", "2"}},              // 5: qty a string
      {{"sku", "200873"}, {"qty", 2.0}},              // 6: qty a float, even a whole one
      {{"sku", "200874"}, {"qty", 2.5}},              // 7
      {{"sku", "200875"}, {"qty", true}},             // 8
      {{"sku", "200876"}, {"qty", nullptr}},          // 9
      {{"sku", "300015"}, {"qty", 3}},                // 10: good
  });
  json data = sale_v1({sale_line(1, "1", 1, 1)});
  data["lines"] = lines;
  const auto r = stock_effects("pos.sale.completed", 1, data);
  EXPECT_TRUE(r.known_type);
  expect_effects(r, {delta("300015", -3, 10)});
  for (int i = 0; i <= 9; ++i) {
    EXPECT_TRUE(contains(r.note, "line " + std::to_string(i) + " ")) << i << ": " << r.note;
  }
  EXPECT_FALSE(contains(r.note, "line 10")) << r.note;
  EXPECT_TRUE(contains(r.note, "line 2 skipped: sku is not a string")) << r.note;
  EXPECT_TRUE(contains(r.note, "line 6 (sku \"200873\") skipped: qty is not an integer")) << r.note;
  EXPECT_TRUE(contains(r.note, "line 4 (sku \"200871\") skipped: no qty")) << r.note;
}

TEST(StockRules, EachTypeReadsItsOwnQuantityField) {
  // A count with qty instead of on_hand, an adjustment with qty instead of delta: not guessed.
  const auto count = stock_effects("inventory.counted", 1,
                                   counted_v1({{{"sku", "100234"}, {"qty", 17}}}));
  EXPECT_TRUE(count.effects.empty());
  EXPECT_TRUE(contains(count.note, "no on_hand")) << count.note;
  const auto adjust = stock_effects("inventory.adjusted", 1,
                                    adjusted_v1({{{"sku", "100234"}, {"qty", -2}}}));
  EXPECT_TRUE(adjust.effects.empty());
  EXPECT_TRUE(contains(adjust.note, "no delta")) << adjust.note;
}

TEST(StockRules, SkusTheContractsOrTheDatabaseWouldRefuseAreSkipped) {
  const auto r = stock_effects(
      "inventory.received", 1,
      received_v1({{{"sku", std::string(65, '7')}, {"qty", 1}},
                   {{"sku", std::string("10\0" "0234", 7)}, {"qty", 1}},
                   {{"sku", std::string("\xC3\x28", 2)}, {"qty", 1}},
                   {{"sku", std::string(64, '7')}, {"qty", 1}},
                   {{"sku", "Ä-Größe-ß"}, {"qty", 1}}}));
  expect_effects(r, {delta(std::string(64, '7'), 1, 3), delta("Ä-Größe-ß", 1, 4)});
  EXPECT_TRUE(contains(r.note, "line 0")) << r.note;
  EXPECT_TRUE(contains(r.note, "longer than 64")) << r.note;
  EXPECT_TRUE(contains(r.note, "line 1")) << r.note;
  EXPECT_TRUE(contains(r.note, "NUL")) << r.note;
  EXPECT_TRUE(contains(r.note, "line 2")) << r.note;
  EXPECT_TRUE(contains(r.note, "UTF-8")) << r.note;
  // The note itself carries neither the NUL nor the broken byte.
  EXPECT_EQ(r.note.find('\0'), std::string::npos);
  EXPECT_EQ(r.note.find('\xC3'), std::string::npos);
}

TEST(StockRules, QuantitiesAgainstTheTypesDirectionAreSkipped) {
  // A sale of -2 is not turned into a return, nor a count of -1 into a level.
  const auto sale = stock_effects(
      "pos.sale.completed", 1,
      sale_v1({sale_line(1, "100234", -2, 199), sale_line(2, "200871", 0, 1250),
               sale_line(3, "300015", 1, 89)}));
  expect_effects(sale, {delta("300015", -1, 2)});
  EXPECT_TRUE(contains(sale.note, "qty -2 is below 1")) << sale.note;
  EXPECT_TRUE(contains(sale.note, "qty 0 is below 1")) << sale.note;

  const auto ret = stock_effects("pos.return.completed", 1,
                                 return_v1({return_line(1, "100234", -1, 199)}));
  EXPECT_TRUE(ret.effects.empty());
  EXPECT_TRUE(contains(ret.note, "below 1")) << ret.note;

  const auto received = stock_effects("inventory.received", 1,
                                      received_v1({{{"sku", "100234"}, {"qty", 0}}}));
  EXPECT_TRUE(received.effects.empty());
  EXPECT_FALSE(received.note.empty());

  const auto adjusted = stock_effects("inventory.adjusted", 1,
                                      adjusted_v1({{{"sku", "100234"}, {"delta", 0}}}));
  EXPECT_TRUE(adjusted.effects.empty());
  EXPECT_TRUE(contains(adjusted.note, "delta is 0")) << adjusted.note;

  const auto counted = stock_effects("inventory.counted", 1,
                                     counted_v1({{{"sku", "100234"}, {"on_hand", -1}}}));
  EXPECT_TRUE(counted.effects.empty());
  EXPECT_TRUE(contains(counted.note, "negative")) << counted.note;
}

TEST(StockRules, ARestockThatIsNotABooleanIsNotGuessed) {
  json line_string = return_line(1, "200871", 1, 1250);
  line_string["restock"] = "no";
  json line_number = return_line(2, "100234", 1, 199);
  line_number["restock"] = 1;
  json line_null = return_line(3, "300015", 1, 89);
  line_null["restock"] = nullptr;
  const auto r = stock_effects("pos.return.completed", 1,
                               return_v1({line_string, line_number, line_null}));
  EXPECT_TRUE(r.effects.empty());
  for (const char* part : {"line 0", "line 1", "line 2", "restock is not true or false"}) {
    EXPECT_TRUE(contains(r.note, part)) << part << ": " << r.note;
  }
}

TEST(StockRules, HugeQuantitiesAreSkipped) {
  constexpr int64_t kLimit = 1'000'000'000'000;
  const auto r = stock_effects(
      "inventory.adjusted", 1,
      adjusted_v1({{{"sku", "a"}, {"delta", kLimit}},
                   {{"sku", "b"}, {"delta", -kLimit}},
                   {{"sku", "c"}, {"delta", kLimit + 1}},
                   {{"sku", "d"}, {"delta", -kLimit - 1}},
                   {{"sku", "e"}, {"delta", std::numeric_limits<int64_t>::min()}},
                   {{"sku", "f"}, {"delta", std::numeric_limits<int64_t>::max()}},
                   {{"sku", "g"}, {"delta", std::numeric_limits<uint64_t>::max()}},
                   {{"sku", "h"}, {"delta", 1e300}}}));
  expect_effects(r, {delta("a", kLimit, 0), delta("b", -kLimit, 1)});
  for (int i = 2; i <= 7; ++i) {
    EXPECT_TRUE(contains(r.note, "line " + std::to_string(i) + " ")) << i << ": " << r.note;
  }

  // Parsed from text, as the hub receives it: past INT64_MAX the parser yields an unsigned, and
  // a sale's negation must not overflow.
  const json parsed = json::parse(
      R"({"lines":[{"sku":"x","qty":18446744073709551615},{"sku":"y","qty":9223372036854775808},)"
      R"({"sku":"z","qty":1000000000000}]})");
  const auto sale = stock_effects("pos.sale.completed", 2, parsed);
  expect_effects(sale, {delta("z", -kLimit, 2)});
  EXPECT_TRUE(contains(sale.note, "18446744073709551615 is beyond")) << sale.note;

  const auto count = stock_effects("inventory.counted", 1,
                                   counted_v1({{{"sku", "a"}, {"on_hand", kLimit + 1}}}));
  EXPECT_TRUE(count.effects.empty());
  EXPECT_FALSE(count.note.empty());
}

TEST(StockRules, DataThatIsNotAnObjectChangesNoStock) {
  const std::vector<json> odd = {nullptr, json::array({sale_line(1, "100234", 2, 199)}), "r1001", 42,
                                 true, 1.5, json::array()};
  for (const char* type : {"pos.sale.completed", "pos.return.completed", "inventory.adjusted",
                           "inventory.received", "inventory.counted", "pos.void", "price.changed"}) {
    for (const auto& data : odd) {
      const auto r = stock_effects(type, 1, data);
      EXPECT_TRUE(r.known_type) << type << " " << data.dump();
      EXPECT_TRUE(r.effects.empty()) << type << " " << data.dump();
      EXPECT_TRUE(contains(r.note, "not an object")) << type << " " << r.note;
    }
  }
}

TEST(StockRules, LinesMissingEmptyOrNotAnArrayChangeNoStock) {
  json data = sale_v1({sale_line(1, "100234", 2, 199)});
  data.erase("lines");
  const auto missing = stock_effects("pos.sale.completed", 1, data);
  EXPECT_TRUE(missing.known_type);
  EXPECT_TRUE(missing.effects.empty());
  EXPECT_TRUE(contains(missing.note, "no lines")) << missing.note;

  data["lines"] = json::array();
  const auto empty = stock_effects("pos.sale.completed", 1, data);
  EXPECT_TRUE(empty.effects.empty());
  EXPECT_TRUE(contains(empty.note, "empty")) << empty.note;

  data["lines"] = {{"sku", "100234"}, {"qty", 2}};  // one line, not wrapped in an array
  const auto object = stock_effects("pos.sale.completed", 1, data);
  EXPECT_TRUE(object.effects.empty());
  EXPECT_TRUE(contains(object.note, "not an array")) << object.note;
}

TEST(StockRules, TheNoteStaysShortWhateverTheInput) {
  json lines = json::array();
  for (int i = 0; i < 5000; ++i) lines.push_back({{"sku", std::string(500, 's')}, {"qty", "1"}});
  lines.push_back({{"sku", "100234"}, {"qty", 1}});
  const auto r = stock_effects("inventory.received", 1, received_v1(lines));
  expect_effects(r, {delta("100234", 1, 5000)});
  EXPECT_LT(r.note.size(), 2000u) << r.note.substr(0, 400);
  EXPECT_TRUE(contains(r.note, "and 4990 more lines skipped")) << r.note.substr(0, 400);

  const auto type = stock_effects(std::string(100000, 't'), 1, json::object());
  EXPECT_FALSE(type.known_type);
  EXPECT_LT(type.note.size(), 400u);
}

// --- the shipped contract fixtures ----------------------------------------------------------

// Each fixture file is <type>.v<N>.json with "valid" and "invalid" lists of {name, data}.
struct Fixture {
  std::string type;
  int v = 0;
  json cases;
};

std::vector<Fixture> fixtures() {
  std::vector<Fixture> out;
  const auto dir = source_dir() / "tests/contracts/fixtures";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string stem = entry.path().stem().string();  // pos.sale.completed.v2
    const auto dot_v = stem.rfind(".v");
    if (entry.path().extension() != ".json" || dot_v == std::string::npos) continue;
    out.push_back({stem.substr(0, dot_v), std::atoi(stem.c_str() + dot_v + 2),
                   read_json(entry.path())});
  }
  return out;
}

TEST(StockRules, EveryValidFixtureGetsACleanRulingWithOneEffectPerStockedLine) {
  const auto all = fixtures();
  ASSERT_FALSE(all.empty()) << "no fixtures under " << source_dir();
  int checked = 0;
  for (const auto& f : all) {
    ASSERT_TRUE(f.cases.is_object()) << f.type << " v" << f.v;
    for (const auto& c : f.cases.value("valid", json::array())) {
      const std::string name = f.type + " v" + std::to_string(f.v) + ": " + c.value("name", "");
      const json data = c.value("data", json());
      const auto r = stock_effects(f.type, f.v, data);
      EXPECT_TRUE(r.known_type) << name;
      EXPECT_EQ(r.note, "") << name;
      size_t stocked = 0;
      if (data.contains("lines")) {
        for (const auto& line : data["lines"]) stocked += line.value("restock", true) ? 1 : 0;
      }
      EXPECT_EQ(r.effects.size(), stocked) << name;
      for (const auto& e : r.effects) {
        EXPECT_FALSE(e.sku.empty()) << name;
        if (f.type == "pos.sale.completed") {
          EXPECT_LT(e.qty, 0) << name;
        } else if (f.type != "inventory.adjusted") {
          EXPECT_GT(e.qty, f.type == "inventory.counted" ? -1 : 0) << name;
        }
        if (f.type == "inventory.counted") {
          EXPECT_EQ(e.kind, Kind::kLevel) << name;
        } else {
          EXPECT_EQ(e.kind, Kind::kDelta) << name;
        }
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(StockRules, NoInputThrows) {
  // The invalid fixtures under every type and version, then odd values of every kind.
  std::vector<json> inputs;
  for (const auto& f : fixtures()) {
    for (const auto& c : f.cases.value("invalid", json::array())) {
      inputs.push_back(c.value("data", json()));
    }
  }
  inputs.push_back(json::parse(R"({"lines":[[],{},null,{"sku":null,"qty":null},
      {"sku":{"a":1},"qty":[1]},{"sku":"x","qty":-0},{"sku":"x","qty":1,"restock":{}},
      {"sku":"x","delta":-9223372036854775808,"on_hand":-9223372036854775808}]})"));
  inputs.push_back(json::parse(R"({"lines":"lines"})"));
  inputs.push_back(json::parse(R"({"lines":{"0":{"sku":"x","qty":1}}})"));
  inputs.push_back(json::binary({1, 2, 3}));
  inputs.push_back(json(json::value_t::discarded));
  inputs.push_back({{"lines", json::array({{{"sku", json::binary({0})}, {"qty", 1}}})}});
  const char* const types[] = {"pos.sale.completed",  "pos.return.completed", "inventory.adjusted",
                               "inventory.received",  "inventory.counted",    "pos.void",
                               "price.changed",       "pos.tip"};
  for (const auto& data : inputs) {
    for (const char* type : types) {
      for (int v : {0, 1, 2, 9, -1, std::numeric_limits<int>::min()}) {
        EXPECT_NO_THROW(stock_effects(type, v, data)) << type << " v" << v;
      }
    }
  }
}

}  // namespace
}  // namespace edgesync::hub
