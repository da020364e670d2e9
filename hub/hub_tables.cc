#include "hub/hub_tables.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

namespace edgesync::hub {

namespace {

using nlohmann::json;

// Columns padded to their widest cell; the last column is not padded.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::ostringstream out;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      out << r[i];
      if (i + 1 < r.size()) out << std::string(width[i] - r[i].size() + 2, ' ');
    }
    out << "\n";
  }
  return out.str();
}

std::string text(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  return v.dump();
}

// "4 s", "12 min", "3 h", "2 d": an age a person compares at a glance.
std::string age(const json& seconds) {
  if (!seconds.is_number()) return "-";
  double s = seconds.get<double>();
  char buf[32];
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%.0f s", s);
  } else if (s < 7200) {
    std::snprintf(buf, sizeof buf, "%.0f min", s / 60);
  } else if (s < 172800) {
    std::snprintf(buf, sizeof buf, "%.0f h", s / 3600);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f d", s / 86400);
  }
  return buf;
}

}  // namespace

std::string stock_table(const json& rows, const std::string& store) {
  if (rows.empty()) return "no stock recorded for store " + store + "\n";
  std::vector<std::vector<std::string>> t{{"SKU", "ON HAND", "CHANGED", "COUNTED"}};
  for (const json& r : rows) {
    t.push_back({text(r["sku"]), text(r["on_hand"]), text(r["changed_at"]),
                 r["counted_at"].is_null()
                     ? "never"
                     : text(r["counted_level"]) + " at " + text(r["counted_at"])});
  }
  return table(t);
}

std::string lag_table(const json& rows) {
  if (rows.empty()) return "no device has sent anything yet\n";
  std::vector<std::vector<std::string>> t{
      {"STORE", "DEVICE", "LAST SEQ", "NEWEST EVENT", "LAST COMMIT", "ONLINE", "PENDING"}};
  for (const json& r : rows) {
    t.push_back({text(r["store_id"]), text(r["device_id"]), text(r["last_seq"]),
                 age(r["newest_event_age_s"]) + " ago", age(r["last_commit_age_s"]) + " ago",
                 text(r["online"]), text(r["pending"])});
  }
  return table(t);
}

std::string gaps_table(const json& rows) {
  if (rows.empty()) {
    return "no gaps: every seq up to each device's highest delivered is here\n";
  }
  std::vector<std::vector<std::string>> t{
      {"STORE", "DEVICE", "INCARNATION", "SEQS", "WHERE", "STATE"}};
  std::string reasons;
  for (const json& r : rows) {
    std::string range = text(r["from"]);
    if (r["to"] != r["from"]) range += "-" + text(r["to"]);
    t.push_back({text(r["store_id"]), text(r["device_id"]), text(r["incarnation"]), range,
                 text(r["where"]), text(r["state"])});
    if (r["state"] == "gone") {
      reasons += "  " + text(r["device_id"]) + " " + range + ": " + text(r["reason"]) + "\n";
    }
  }
  return table(t) + (reasons.empty() ? "" : "gone, as the box said:\n" + reasons);
}

}  // namespace edgesync::hub
