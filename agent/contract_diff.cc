#include "agent/contract_diff.h"

#include <algorithm>
#include <set>

namespace edgesync::agent {
namespace {

using nlohmann::json;

const std::set<std::string> kAnnotations = {"title",    "description", "$schema", "$id",
                                            "$comment", "examples",    "default"};
const std::set<std::string> kLowerBounds = {"minimum", "exclusiveMinimum", "minLength", "minItems",
                                            "minProperties"};
const std::set<std::string> kUpperBounds = {"maximum", "exclusiveMaximum", "maxLength", "maxItems",
                                            "maxProperties"};
const std::set<std::string> kHandled = {"type",  "properties", "required", "additionalProperties",
                                        "items", "enum",       "const",    "pattern"};

class Differ {
 public:
  std::vector<ContractChange> changes;

  void compare(const json& a, const json& b, const std::string& path) {
    if (!a.is_object() || !b.is_object()) {
      if (a != b) add(path, true, "schema changed");
      return;
    }
    compare_type(a, b, path);
    for (const auto& k : kLowerBounds) compare_bound(a, b, k, path, /*lower=*/true);
    for (const auto& k : kUpperBounds) compare_bound(a, b, k, path, /*lower=*/false);
    compare_enum(a, b, path);
    compare_plain(a, b, "const", path, "const");
    compare_plain(a, b, "pattern", path, "pattern");
    compare_required(a, b, path);
    compare_properties(a, b, path);
    if (a.contains("items") || b.contains("items")) {
      const json none = json::object();
      compare(a.value("items", none), b.value("items", none), path + "/*");
    }
    // Anything else: not understood here, so assumed to refuse more.
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items()) keys.insert(k);
    for (const auto& [k, v] : b.items()) keys.insert(k);
    for (const auto& k : keys) {
      if (kAnnotations.count(k) || kHandled.count(k) || kLowerBounds.count(k) ||
          kUpperBounds.count(k)) {
        continue;
      }
      const json* x = a.contains(k) ? &a[k] : nullptr;
      const json* y = b.contains(k) ? &b[k] : nullptr;
      if (!x || !y || *x != *y) add(path, true, "\"" + k + "\" changed (not analysed: assumed breaking)");
    }
  }

 private:
  void add(const std::string& path, bool breaking, std::string what) {
    changes.push_back({path, breaking, std::move(what)});
  }

  static std::set<std::string> types(const json& node) {
    std::set<std::string> out;
    auto t = node.find("type");
    if (t == node.end()) return out;  // empty: any type
    if (t->is_string()) out.insert(t->get<std::string>());
    if (t->is_array()) {
      for (const auto& x : *t) {
        if (x.is_string()) out.insert(x.get<std::string>());
      }
    }
    return out;
  }

  static std::string list(const std::set<std::string>& s) {
    std::string out;
    for (const auto& x : s) out += (out.empty() ? "" : "|") + x;
    return out.empty() ? "any" : out;
  }

  // Every value of type `t` is also one of `allowed` (an integer is a number).
  static bool covered(const std::string& t, const std::set<std::string>& allowed) {
    return allowed.empty() || allowed.count(t) || (t == "integer" && allowed.count("number"));
  }

  void compare_type(const json& a, const json& b, const std::string& path) {
    const auto ta = types(a), tb = types(b);
    if (ta == tb) return;
    bool narrowed = ta.empty() && !tb.empty();
    for (const auto& t : ta) narrowed |= !covered(t, tb);
    add(path, narrowed, "type " + list(ta) + " -> " + list(tb));
  }

  void compare_bound(const json& a, const json& b, const std::string& k, const std::string& path,
                     bool lower) {
    const bool ha = a.contains(k) && a[k].is_number(), hb = b.contains(k) && b[k].is_number();
    if (!ha && !hb) return;
    if (ha && hb && a[k] == b[k]) return;
    bool breaking;
    std::string what;
    if (!ha) {
      breaking = true;
      what = k + " " + b[k].dump() + " added";
    } else if (!hb) {
      breaking = false;
      what = k + " " + a[k].dump() + " removed";
    } else {
      const double x = a[k].get<double>(), y = b[k].get<double>();
      breaking = lower ? y > x : y < x;
      what = k + (y > x ? " raised from " : " lowered from ") + a[k].dump() + " to " + b[k].dump();
    }
    add(path, breaking, what);
  }

  void compare_enum(const json& a, const json& b, const std::string& path) {
    const bool ha = a.contains("enum"), hb = b.contains("enum");
    if (!ha && !hb) return;
    if (!hb) {
      add(path, false, "enum removed");
      return;
    }
    if (!ha) {
      add(path, true, "enum " + b["enum"].dump() + " added");
      return;
    }
    for (const auto& v : a["enum"]) {
      if (std::find(b["enum"].begin(), b["enum"].end(), v) == b["enum"].end()) {
        add(path, true, "enum value " + v.dump() + " removed");
      }
    }
    for (const auto& v : b["enum"]) {
      if (std::find(a["enum"].begin(), a["enum"].end(), v) == a["enum"].end()) {
        add(path, false, "enum value " + v.dump() + " added");
      }
    }
  }

  void compare_plain(const json& a, const json& b, const char* k, const std::string& path,
                     const char* name) {
    const bool ha = a.contains(k), hb = b.contains(k);
    if (!ha && !hb) return;
    if (ha && hb && a[k] == b[k]) return;
    if (!hb) {
      add(path, false, std::string(name) + " removed");
    } else {
      add(path, true,
          std::string(name) + (ha ? " changed from " + a[k].dump() + " to " : " added: ") +
              b[k].dump());
    }
  }

  void compare_required(const json& a, const json& b, const std::string& path) {
    std::set<std::string> ra, rb;
    for (const auto& r : a.value("required", json::array())) ra.insert(r.get<std::string>());
    for (const auto& r : b.value("required", json::array())) rb.insert(r.get<std::string>());
    for (const auto& r : rb) {
      if (!ra.count(r)) add(path + "/" + r, true, "now required");
    }
    for (const auto& r : ra) {
      if (!rb.count(r)) add(path + "/" + r, false, "no longer required");
    }
  }

  // What a property not named under "properties" must be: false (refused), a schema, or
  // anything (true, or absent).
  static json extra_schema(const json& node) {
    auto it = node.find("additionalProperties");
    if (it == node.end() || *it == json(true)) return json::object();
    return *it;
  }

  void compare_properties(const json& a, const json& b, const std::string& path) {
    const json none = json::object();
    const json& pa = a.contains("properties") ? a["properties"] : none;
    const json& pb = b.contains("properties") ? b["properties"] : none;
    const json extra_a = extra_schema(a), extra_b = extra_schema(b);
    const bool closed_before = extra_a == json(false);
    const bool closed_after = extra_b == json(false);
    // Other properties: what the new schema asks of them against what the old one did.
    if (closed_before && !closed_after) {
      add(path, false, "other properties allowed");
    } else if (!closed_before && closed_after) {
      add(path, true, "other properties no longer allowed (additionalProperties: false)");
    } else if (!closed_before && !closed_after && extra_a != extra_b) {
      compare(extra_a, extra_b, path + "/(other properties)");
    }
    for (const auto& [k, v] : pa.items()) {
      if (pb.contains(k)) {
        compare(v, pb[k], path + "/" + k);
      } else if (closed_after) {
        add(path + "/" + k, true, "property removed: events carrying it are refused");
      } else {
        // Now one of the other properties: held to what those must be.
        const size_t before = changes.size();
        compare(v, extra_b, path + "/" + k);
        if (changes.size() == before) add(path + "/" + k, false, "property no longer described");
      }
    }
    for (const auto& [k, v] : pb.items()) {
      if (pa.contains(k)) continue;
      if (closed_before) {
        // No accepted event carried it.
        add(path + "/" + k, false, "property added");
      } else {
        // Accepted events may carry it, held to the old rule for other properties.
        const size_t before = changes.size();
        compare(extra_a, v, path + "/" + k);
        if (changes.size() == before) add(path + "/" + k, false, "property added");
      }
    }
  }
};

}  // namespace

std::vector<ContractChange> diff_contracts(const json& before, const json& after) {
  Differ d;
  d.compare(before, after, "/data");
  return d.changes;
}

}  // namespace edgesync::agent
