#include "events/contract_registry.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "events/json_nesting.h"
#include "events/names.h"
#include "events/ordered_json_adapter.h"

namespace edgesync::events {

using nlohmann::json;

struct ContractRegistry::Contract {
  ContractInfo info;
  json document;
  valijson::Schema schema;
  // Compiled `pattern` regexes are cached in the validator: one per contract, kept.
  mutable valijson::Validator validator{valijson::Validator::kStrongTypes};
};

namespace {

constexpr std::string_view kSuffix = ".schema.json";

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// The name valijson quotes at the end of its description ("... constraints: 'payment'.",
// "Missing required property 'reason'."): after the last "'" but one. Names may hold quotes
// themselves, so the opening quote is found from `marker`, which precedes it.
std::string quoted_name(const std::string& description, std::string_view marker) {
  const size_t at = description.rfind(marker);
  const size_t close = description.rfind('\'');
  if (at == std::string::npos || close == std::string::npos) return {};
  const size_t open = at + marker.size();
  if (close < open) return {};
  return description.substr(open, close - open);
}

void append_pointer_token(std::string* pointer, const std::string& token) {
  pointer->push_back('/');
  for (char c : token) {
    if (c == '~') {
      pointer->append("~0");
    } else if (c == '/') {
      pointer->append("~1");
    } else {
      pointer->push_back(c);
    }
  }
}

// The schema node that applies to the value at `tokens` (instance path below `data`), following
// properties and items; null when the schema does not say (the contracts use no $ref).
const json* schema_node_at(const json& root, const std::vector<std::string>& tokens) {
  const json* node = &root;
  for (const std::string& t : tokens) {
    if (!node->is_object()) return nullptr;
    auto props = node->find("properties");
    if (props != node->end() && props->is_object() && props->contains(t)) {
      node = &(*props)[t];
      continue;
    }
    auto items = node->find("items");
    if (items != node->end() && items->is_object()) {
      node = &*items;
      continue;
    }
    auto extra = node->find("additionalProperties");
    if (extra != node->end() && extra->is_object()) {
      node = &*extra;
      continue;
    }
    return nullptr;
  }
  return node;
}

struct RuleText {
  std::string_view prefix;
  const char* rule;
};

// valijson's descriptions, by the keyword that produced them. Longer prefixes first where one
// is the start of another ("greater than or equal" before "greater than").
constexpr RuleText kRules[] = {
    {"Value type not permitted by 'type' constraint", "type"},
    {"Missing required property", "required"},
    {"Object contains a property that could not be validated", "additionalProperties"},
    {"Failed to match regex specified by 'pattern' constraint", "pattern"},
    {"Failed to match against any enum values", "enum"},
    {"Failed to match expected value set by 'const' constraint", "const"},
    {"Expected number greater than or equal to", "minimum"},
    {"Expected number greater than", "exclusiveMinimum"},
    {"Expected number less than or equal to", "maximum"},
    {"Expected number less than", "exclusiveMaximum"},
    {"Array should contain no fewer than", "minItems"},
    {"Array should contain no more than", "maxItems"},
    {"String should be no fewer than", "minLength"},
    {"String should be no more than", "maxLength"},
    {"Object should have no fewer than", "minProperties"},
    {"Object should have no more than", "maxProperties"},
    {"Value should be a multiple of", "multipleOf"},
    {"Array contains more items than allowed", "additionalItems"},
    {"Elements of array are not unique", "uniqueItems"},
    {"Target should not validate against schema specified in 'not' constraint", "not"},
};

// Descriptions valijson adds above a failure in a child value: the child's own error says it.
bool is_wrapper(const std::string& d) {
  return starts_with(d, "Failed to validate against schema associated with property name") ||
         starts_with(d, "Failed to validate item #") ||
         starts_with(d, "Failed to validate against additional properties schema") ||
         starts_with(d, "Failed to validate against schema associated with pattern");
}

bool translate(const valijson::ValidationResults::Error& e, const json& schema, Violation* v) {
  if (is_wrapper(e.description)) return false;
  std::vector<std::string> tokens;
  for (size_t i = 1; i < e.context.size(); ++i) {  // [0] is "<root>"
    const std::string& c = e.context[i];
    tokens.push_back(c.size() >= 2 && c.front() == '[' && c.back() == ']'
                         ? c.substr(1, c.size() - 2)
                         : c);
  }
  v->path = "/data";
  for (const auto& t : tokens) append_pointer_token(&v->path, t);
  v->rule.clear();
  for (const RuleText& r : kRules) {
    if (starts_with(e.description, r.prefix)) {
      v->rule = r.rule;
      break;
    }
  }
  if (v->rule.empty()) {
    // A keyword without a translation here: its own words.
    v->rule = "schema";
    v->expected = e.description;
    return true;
  }
  if (v->rule == "required") {
    v->expected = quoted_name(e.description, "property '");
    return true;
  }
  if (v->rule == "additionalProperties") {
    append_pointer_token(&v->path, quoted_name(e.description, "constraints: '"));
    v->expected = false;
    return true;
  }
  const json* node = schema_node_at(schema, tokens);
  v->expected = node && node->is_object() && node->contains(v->rule) ? (*node)[v->rule] : json();
  return true;
}

// A schema for "data" at the deepest an event may nest (events/json_nesting.h) alternates
// "properties" or "items" with each level: twice that, and room for the schema's own keywords.
constexpr int kMaxSchemaNesting = 2 * kMaxEventNesting + 8;

Result<json> read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::io_error(path + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  // Measured first: the checks below and valijson walk the schema recursively, once per level.
  if (nesting_depth(text.str()) > kMaxSchemaNesting) {
    return Status::invalid_argument(path + ": nests deeper than " +
                                    std::to_string(kMaxSchemaNesting) + " levels");
  }
  json doc = json::parse(text.str(), nullptr, false);
  if (doc.is_discarded()) return Status::invalid_argument(path + ": not valid JSON");
  return doc;
}

// Most repetitions a pattern's quantifier may allow: std::regex (valijson's matcher) recurses
// per repeated character, so a large bound against a long value exhausts the ingest thread's
// stack as surely as no bound does.
constexpr long kMaxRepeat = 1000;

// Why `pattern` is unsafe for a value of any length, or "" when it is not: it does not compile
// (valijson compiles it only at the first event), it repeats without bound (+, *, {n,}) or more
// than kMaxRepeat times, or it repeats a group that itself repeats (the counts multiply).
std::string unsafe_pattern(const std::string& pattern) {
  try {
    std::regex compiled(pattern);
  } catch (const std::regex_error& e) {
    return std::string("does not compile: ") + e.what();
  }
  std::vector<bool> group_repeats;  // per open group: whether it holds a quantifier
  bool last_was_group_with_repeat = false;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    const bool after_group = last_was_group_with_repeat;
    last_was_group_with_repeat = false;
    bool quantifier = false;
    if (c == '\\') {
      ++i;
    } else if (in_class) {
      if (c == ']') in_class = false;
    } else if (c == '[') {
      in_class = true;
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') ++i;  // "[]...]": ']' is literal
    } else if (c == '(') {
      group_repeats.push_back(false);
    } else if (c == ')') {
      if (!group_repeats.empty()) {
        last_was_group_with_repeat = group_repeats.back();
        group_repeats.pop_back();
      }
    } else if (c == '+' || c == '*') {
      return "repeats without bound (+ or *): write a bound such as {1,64}";
    } else if (c == '{') {
      const size_t close = pattern.find('}', i);
      if (close != std::string::npos) {
        const std::string inside = pattern.substr(i + 1, close - i - 1);
        const size_t comma = inside.find(',');
        if (comma != std::string::npos && comma + 1 == inside.size()) {
          return "repeats without bound ({n,}): write a bound such as {1,64}";
        }
        const std::string upper = comma == std::string::npos ? inside : inside.substr(comma + 1);
        if (!upper.empty() && upper.find_first_not_of("0123456789") == std::string::npos) {
          if (upper.size() > 6 || std::stol(upper) > kMaxRepeat) {
            return "repeats up to " + upper + " times: at most " + std::to_string(kMaxRepeat) +
                   " (use maxLength for long strings)";
          }
          // {0,1} and {1} multiply nothing (like ?).
          quantifier = std::stol(upper) > 1;
          i = close;
        }
      }
    } else if (c == '?') {
      quantifier = true;  // {0,1}: multiplies nothing
    }
    if (quantifier) {
      if (after_group && c != '?') return "repeats a group that repeats itself: the counts multiply";
      if (!group_repeats.empty() && c != '?') group_repeats.back() = true;
    }
  }
  return {};
}

// The first unsafe "pattern" (or patternProperties name) in `node` or below, with the reason.
std::string find_unsafe_pattern(const json& node) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "pattern" && value.is_string()) {
        const std::string why = unsafe_pattern(value.get<std::string>());
        if (!why.empty()) return "the pattern " + value.dump() + " " + why;
      }
      if (key == "patternProperties" && value.is_object()) {
        for (const auto& [p, sub] : value.items()) {
          const std::string why = unsafe_pattern(p);
          if (!why.empty()) return "the pattern " + json(p).dump() + " " + why;
        }
      }
      std::string found = find_unsafe_pattern(value);
      if (!found.empty()) return found;
    }
  } else if (node.is_array()) {
    for (const auto& item : node) {
      std::string found = find_unsafe_pattern(item);
      if (!found.empty()) return found;
    }
  }
  return {};
}

Status populate(const json& document, valijson::Schema* schema) {
  if (!document.is_object()) return Status::invalid_argument("a schema must be a JSON object");
  // The walks below recurse once per level (read_json_file measured the text already; a
  // schema that did not come through it, `contracts diff`'s, is measured here).
  if (json_nesting(document, kMaxSchemaNesting) > kMaxSchemaNesting) {
    return Status::invalid_argument("nests deeper than " + std::to_string(kMaxSchemaNesting) +
                                    " levels");
  }
  const std::string unsafe = find_unsafe_pattern(document);
  if (!unsafe.empty()) return Status::invalid_argument(unsafe);
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(document);
    parser.populateSchema(adapter, *schema);
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("not a usable JSON Schema: ") + e.what());
  }
  return Status::ok();
}

}  // namespace

nlohmann::ordered_json Violation::to_json() const {
  nlohmann::ordered_json j;
  j["path"] = path;
  j["rule"] = rule;
  j["expected"] = nlohmann::ordered_json(expected);
  return j;
}

bool parse_contract_file_name(const std::string& name, std::string* type, int* version) {
  if (name.size() <= kSuffix.size() ||
      name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return false;
  }
  const std::string stem = name.substr(0, name.size() - kSuffix.size());
  const size_t dot_v = stem.rfind(".v");
  if (dot_v == std::string::npos || dot_v + 2 >= stem.size()) return false;
  const std::string digits = stem.substr(dot_v + 2);
  if (digits.size() > 4 || digits[0] == '0' ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  *type = stem.substr(0, dot_v);
  if (!is_valid_type(*type)) return false;
  *version = std::stoi(digits);
  return true;
}

Status check_contract_schema(const json& schema) {
  valijson::Schema compiled;
  return populate(schema, &compiled);
}

ContractRegistry::ContractRegistry() = default;
ContractRegistry::~ContractRegistry() = default;

std::shared_ptr<const ContractRegistry> ContractRegistry::empty() {
  return std::shared_ptr<const ContractRegistry>(new ContractRegistry());
}

Result<std::shared_ptr<const ContractRegistry>> ContractRegistry::load(
    const std::vector<std::string>& dirs) {
  std::shared_ptr<ContractRegistry> reg(new ContractRegistry());
  namespace fs = std::filesystem;
  for (const std::string& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      return Status::not_found("contract folder " + dir + " does not exist or is not a folder");
    }
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() > kSuffix.size() &&
          name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0) {
        files.push_back(it->path());
      }
    }
    if (ec) return Status::io_error("contract folder " + dir + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      const std::string path = file.string();
      auto c = std::make_unique<Contract>();
      c->info.file = path;
      if (!parse_contract_file_name(file.filename().string(), &c->info.type, &c->info.version)) {
        return Status::invalid_argument(
            path + ": the name must be <type>.v<N>.schema.json, with a type such as "
                   "pos.sale.completed and a version from 1 to 9999");
      }
      auto doc = read_json_file(path);
      if (!doc) return doc.status();
      c->document = std::move(*doc);
      Status s = populate(c->document, &c->schema);
      if (!s) return Status::invalid_argument(path + ": " + s.message());
      if (c->document.contains("title") && c->document["title"].is_string()) {
        c->info.title = c->document["title"].get<std::string>();
      }
      const auto key = std::make_pair(c->info.type, c->info.version);
      auto [it, inserted] = reg->contracts_.emplace(key, nullptr);
      if (!inserted) {
        return Status::invalid_argument(path + ": " + c->info.type + " v" +
                                        std::to_string(c->info.version) + " is already defined by " +
                                        it->second->info.file);
      }
      it->second = std::move(c);
    }
  }
  return std::shared_ptr<const ContractRegistry>(std::move(reg));
}

int ContractRegistry::newest(const std::string& type) const {
  const std::vector<int> v = versions(type);
  return v.empty() ? 0 : v.back();
}

bool ContractRegistry::has(const std::string& type, int version) const {
  return contracts_.count(std::make_pair(type, version)) > 0;
}

std::vector<int> ContractRegistry::versions(const std::string& type) const {
  std::vector<int> out;
  for (auto it = contracts_.lower_bound(std::make_pair(type, 0));
       it != contracts_.end() && it->first.first == type; ++it) {
    out.push_back(it->first.second);
  }
  return out;
}

namespace {

// Integers past INT64_MAX: valijson reads them as signed 64-bit and would check a wrapped,
// negative value. Nothing in a contract wants one; the first found, by path.
bool find_oversized_integer(const nlohmann::ordered_json& value,
                            std::vector<std::string>* reversed_tokens) {
  if (value.is_number_unsigned()) {
    return value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  // The path is built only for the one found, on the way back: most events have none.
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (find_oversized_integer(*it, reversed_tokens)) {
        reversed_tokens->push_back(it.key());
        return true;
      }
    }
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      if (find_oversized_integer(value[i], reversed_tokens)) {
        reversed_tokens->push_back(std::to_string(i));
        return true;
      }
    }
  }
  return false;
}

}  // namespace

bool ContractRegistry::validate(const std::string& type, int version,
                                const nlohmann::ordered_json& data,
                                std::vector<Violation>* violations, bool details) const {
  auto it = contracts_.find(std::make_pair(type, version));
  if (it == contracts_.end()) return false;
  const Contract& c = *it->second;
  std::vector<std::string> reversed_tokens;
  if (find_oversized_integer(data, &reversed_tokens)) {
    std::string path = "/data";
    for (auto t = reversed_tokens.rbegin(); t != reversed_tokens.rend(); ++t) {
      append_pointer_token(&path, *t);
    }
    violations->push_back({path, "maximum", static_cast<int64_t>(std::numeric_limits<int64_t>::max())});
    return false;
  }
  OrderedJsonAdapter target(data);
  try {
    if (!details) {
      // Only whether it conforms: valijson stops at the first failure.
      if (c.validator.validate(c.schema, target, nullptr)) return true;
      violations->push_back({"/data", "schema",
                             "does not match; the event is too large to list each violation "
                             "(edgesync contracts check lists them)"});
      return false;
    }
    valijson::ValidationResults results;
    if (c.validator.validate(c.schema, target, &results)) return true;
    valijson::ValidationResults::Error error;
    Violation v;
    while (violations->size() < kMaxViolations && results.popError(error)) {
      if (translate(error, c.document, &v)) violations->push_back(v);
    }
  } catch (const std::exception& e) {
    // A contract the loader let through but the validator cannot apply: the event is refused
    // with the reason, never accepted unchecked and never the end of the ingest thread.
    violations->clear();
    violations->push_back(
        {"/data", "schema", std::string("the contract could not be applied: ") + e.what()});
    return false;
  }
  if (violations->empty()) {
    // Only wrappers (cannot happen with valijson 1.0's messages, but never accept silently).
    violations->push_back({"/data", "schema", "does not match the contract"});
  }
  return false;
}

std::vector<ContractInfo> ContractRegistry::list() const {
  std::vector<ContractInfo> out;
  out.reserve(contracts_.size());
  for (const auto& [key, c] : contracts_) out.push_back(c->info);
  return out;
}

}  // namespace edgesync::events
