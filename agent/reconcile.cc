#include "agent/reconcile.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <tuple>

#include "platform/clock.h"

namespace edgesync::agent {

using nlohmann::json;

const char* reconcile_state_name(ReconcileState s) {
  switch (s) {
    case ReconcileState::kComplete:
      return "complete";
    case ReconcileState::kBehind:
      return "behind";
    case ReconcileState::kLost:
      return "lost";
    case ReconcileState::kUnconfirmed:
      return "unconfirmed";
  }
  return "unconfirmed";
}

int64_t ReconcileReport::lost_seqs() const {
  int64_t n = 0;
  for (const auto& d : devices) {
    for (const auto& i : d.incarnations) n += seq_count(i.lost);
  }
  return n;
}

// ---- Reconciler ----

namespace {

// Far below INT64_MAX, so that seq + 1 and range arithmetic cannot overflow on a forged payload.
constexpr int64_t kMaxSeq = std::numeric_limits<int64_t>::max() / 4;
constexpr size_t kMaxProblems = 20;
constexpr size_t kMaxIncarnationLength = 128;

std::optional<int64_t> integer_member(const json& j, const char* key, int64_t min) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(kMaxSeq)) {
    return std::nullopt;
  }
  const int64_t v = it->get<int64_t>();
  if (v < min || v > kMaxSeq) return std::nullopt;
  return v;
}

std::string string_member(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool usable_incarnation(const std::string& s) {
  return !s.empty() && s.size() <= kMaxIncarnationLength;
}

std::vector<std::string_view> split_levels(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t slash = s.find('/', start);
    out.push_back(s.substr(start, slash == std::string_view::npos ? s.npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

}  // namespace

Reconciler::Reconciler(std::string topic_prefix, ReconcileOptions options)
    : prefix_(std::move(topic_prefix)), options_(options) {
  while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
  prefix_.push_back('/');
}

void Reconciler::add_problem(std::string what) {
  ++unreadable_;
  if (problems_.size() < kMaxProblems) problems_.push_back(std::move(what));
}

MessageKind Reconciler::unreadable(std::string_view topic, const std::string& why) {
  add_problem(std::string(topic) + ": " + why);
  return MessageKind::kUnreadable;
}

MessageKind Reconciler::classify(std::string_view topic, std::string* store,
                                 std::string* device) const {
  if (topic.substr(0, prefix_.size()) != prefix_) return MessageKind::kIgnored;
  const auto levels = split_levels(topic.substr(prefix_.size()));
  if (levels.size() < 3 || levels[0].empty() || levels[1].empty()) return MessageKind::kIgnored;
  MessageKind kind = MessageKind::kIgnored;
  if (levels[2] == "events" && levels.size() >= 4) {
    kind = MessageKind::kEvent;
  } else if (levels[2] == "deadletter" && levels.size() == 3) {
    kind = MessageKind::kDeadLetter;
  } else if (levels[2] == "health" && levels.size() == 3) {
    kind = MessageKind::kHealth;
  }
  store->assign(levels[0]);
  device->assign(levels[1]);
  return kind;
}

MessageKind Reconciler::add(std::string_view topic, std::string_view payload) {
  std::string store, device;
  if (classify(topic, &store, &device) == MessageKind::kIgnored) {
    // Status and configuration messages are none of the reconciliation's business, whatever
    // their shape.
    ++ignored_;
    return MessageKind::kIgnored;
  }
  json j = json::parse(payload.begin(), payload.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return unreadable(topic, "the payload is not JSON");
  return add_json(topic, j);
}

MessageKind Reconciler::add_json(std::string_view topic, const json& payload) {
  std::string store, device_id;
  const MessageKind kind = classify(topic, &store, &device_id);
  if (kind == MessageKind::kIgnored) {
    ++ignored_;
    return kind;
  }
  if (!payload.is_object()) return unreadable(topic, "the payload is not a JSON object");
  Device& device = devices_[{store, device_id}];

  if (kind == MessageKind::kHealth) {
    auto outbox = payload.find("outbox");
    if (outbox == payload.end() || !outbox->is_object()) {
      return unreadable(topic, "health without an \"outbox\" object");
    }
    const std::string name = string_member(*outbox, "incarnation");
    const auto accepted = integer_member(*outbox, "highest_accepted_seq", 0);
    const auto delivered = integer_member(*outbox, "highest_delivered_seq", 0);
    if (!usable_incarnation(name) || !accepted || !delivered) {
      return unreadable(topic,
                        "health without outbox.incarnation, highest_accepted_seq and "
                        "highest_delivered_seq");
    }
    ++health_;
    Incarnation& inc = device.incarnations[name];
    inc.has_health = true;
    inc.highest_accepted = std::max(inc.highest_accepted, *accepted);
    inc.highest_delivered = std::max(inc.highest_delivered, *delivered);
    const std::string at = string_member(payload, "at");
    const auto at_ms = platform::parse_rfc3339_ms(at);
    // The newest message speaks for the verdict and the age; the seqs above do not need it.
    if (at_ms && (!inc.health_at_ms || *at_ms >= *inc.health_at_ms)) {
      inc.health_at_ms = at_ms;
      inc.health_at = at;
      auto verdict = payload.find("verdict");
      inc.verdict_line = verdict != payload.end() && verdict->is_object()
                             ? string_member(*verdict, "line")
                             : std::string();
    }
    if (at_ms && (!device.newest_health_ms || *at_ms >= *device.newest_health_ms)) {
      device.newest_health_ms = at_ms;
      device.newest_health_incarnation = name;
    }
    return kind;
  }

  const auto seq = integer_member(payload, "seq", 1);
  const std::string name = string_member(payload, "incarnation");
  if (!seq || !usable_incarnation(name)) {
    return unreadable(topic, "no positive integer \"seq\" and \"incarnation\" string");
  }
  Incarnation& inc = device.incarnations[name];
  if (kind == MessageKind::kEvent) {
    ++events_;
    inc.received.insert(*seq);
    const std::string received_at = string_member(payload, "received_at");
    const auto ms = platform::parse_rfc3339_ms(received_at);
    if (ms && (!inc.newest_event_ms || *ms > *inc.newest_event_ms)) {
      inc.newest_event_ms = ms;
      inc.newest_event_at = received_at;
    }
  } else {
    ++dead_letters_;
    inc.dead_letters.emplace(
        *seq, DeadLetterSeen{*seq, string_member(payload, "id"), string_member(payload, "reason"),
                             string_member(payload, "failed_at")});
  }
  if (!inc.covered.insert(*seq)) ++inc.duplicates;
  return kind;
}

IncarnationReport Reconciler::report_one(const std::string& name, const Incarnation& inc,
                                         const Device& device, int64_t now_ms) const {
  IncarnationReport r;
  r.incarnation = name;
  r.received = inc.received.ranges();
  r.received_count = inc.received.count();
  r.duplicates = inc.duplicates;
  for (const auto& [seq, notice] : inc.dead_letters) r.dead_letters.push_back(notice);
  r.has_health = inc.has_health;
  r.highest_accepted_seq = inc.highest_accepted;
  r.highest_delivered_seq = inc.highest_delivered;
  r.health_at = inc.health_at;
  r.health_at_ms = inc.health_at_ms;
  r.verdict_line = inc.verdict_line;
  r.highest_seen_seq = inc.covered.highest();
  r.checked_to = std::max(inc.highest_accepted, r.highest_seen_seq);
  r.checked_from = 1;
  if (options_.from_first_seen) {
    // Below the first seq seen the record says nothing. With nothing seen, what the box says the
    // hub acknowledged is taken as the start: what is above it has yet to arrive.
    r.checked_from = inc.covered.empty() ? inc.highest_delivered + 1 : inc.covered.lowest();
  }
  r.highest_contiguous_seq = inc.covered.contiguous_from(r.checked_from);
  r.lag = std::max<int64_t>(0, r.checked_to - r.highest_contiguous_seq);
  // Missing seqs split at highest_delivered_seq: the box holds the hub's acknowledgement for
  // those at or below it (lost), not for those above (pending).
  for (const auto& m : inc.covered.missing(r.checked_from, r.checked_to)) {
    if (m.first <= inc.highest_delivered) {
      r.lost.push_back({m.first, std::min(m.last, inc.highest_delivered)});
    }
    if (m.last > inc.highest_delivered) {
      r.pending.push_back({std::max(m.first, inc.highest_delivered + 1), m.last});
    }
  }
  if (!r.lost.empty()) {
    r.state = ReconcileState::kLost;
  } else if (!r.pending.empty()) {
    r.state = ReconcileState::kBehind;
  } else {
    r.state = inc.has_health ? ReconcileState::kComplete : ReconcileState::kUnconfirmed;
  }
  r.newest_event_at = inc.newest_event_at;
  r.newest_event_ms = inc.newest_event_ms;
  if (inc.newest_event_ms) r.newest_event_age_s = (now_ms - *inc.newest_event_ms) / 1000.0;
  if (inc.health_at_ms) r.health_age_s = (now_ms - *inc.health_at_ms) / 1000.0;
  if (!device.newest_health_incarnation.empty() && device.newest_health_incarnation != name) {
    r.superseded_by = device.newest_health_incarnation;
  }
  return r;
}

ReconcileReport Reconciler::report(int64_t now_ms) const {
  ReconcileReport out;
  out.from_first_seen = options_.from_first_seen;
  out.events = events_;
  out.dead_letters = dead_letters_;
  out.health = health_;
  out.ignored = ignored_;
  out.unreadable = unreadable_;
  out.problems = problems_;
  for (const auto& [key, device] : devices_) {
    DeviceReport d;
    d.store_id = key.first;
    d.device_id = key.second;
    for (const auto& [name, inc] : device.incarnations) {
      d.incarnations.push_back(report_one(name, inc, device, now_ms));
    }
    // The current incarnation last: order by the newest thing heard of each (box clock).
    auto activity = [](const IncarnationReport& i) {
      return std::max(i.newest_event_ms.value_or(0), i.health_at_ms.value_or(0));
    };
    std::stable_sort(d.incarnations.begin(), d.incarnations.end(),
                     [&](const IncarnationReport& a, const IncarnationReport& b) {
                       return activity(a) < activity(b);
                     });
    out.devices.push_back(std::move(d));
  }
  return out;
}

// ---- JSON ----

namespace {

json ranges_json(const std::vector<SeqRange>& ranges) {
  json out = json::array();
  for (const auto& r : ranges) out.push_back(json::array({r.first, r.last}));
  return out;
}

json optional_string(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json optional_number(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json incarnation_json(const IncarnationReport& r) {
  json dead = json::array();
  for (const auto& d : r.dead_letters) {
    dead.push_back({{"seq", d.seq},
                    {"id", d.id},
                    {"reason", d.reason},
                    {"failed_at", optional_string(d.failed_at)}});
  }
  json health = nullptr;
  if (r.has_health) {
    health = {{"highest_accepted_seq", r.highest_accepted_seq},
              {"highest_delivered_seq", r.highest_delivered_seq},
              {"at", optional_string(r.health_at)},
              {"age_s", optional_number(r.health_age_s)},
              {"verdict", optional_string(r.verdict_line)}};
  }
  return {{"incarnation", r.incarnation},
          {"state", reconcile_state_name(r.state)},
          {"received", ranges_json(r.received)},
          {"received_count", r.received_count},
          {"duplicates", r.duplicates},
          {"dead_letters", dead},
          {"health", health},
          {"highest_seen_seq", r.highest_seen_seq},
          {"checked_from", r.checked_from},
          {"checked_to", r.checked_to},
          {"highest_contiguous_seq", r.highest_contiguous_seq},
          {"lag", r.lag},
          {"lost", ranges_json(r.lost)},
          {"lost_count", seq_count(r.lost)},
          {"pending", ranges_json(r.pending)},
          {"pending_count", seq_count(r.pending)},
          {"newest_event_at", optional_string(r.newest_event_at)},
          {"newest_event_age_s", optional_number(r.newest_event_age_s)},
          {"superseded_by", optional_string(r.superseded_by)}};
}

}  // namespace

json reconcile_json(const ReconcileReport& report) {
  json devices = json::array();
  for (const auto& d : report.devices) {
    json incarnations = json::array();
    for (const auto& i : d.incarnations) incarnations.push_back(incarnation_json(i));
    devices.push_back(
        {{"store_id", d.store_id}, {"device_id", d.device_id}, {"incarnations", incarnations}});
  }
  const int64_t lost = report.lost_seqs();
  return {{"format", 1},
          {"ok", lost == 0},
          {"lost_seqs", lost},
          {"checked_from", report.from_first_seen ? "first_seen" : "seq_1"},
          {"messages",
           {{"events", report.events},
            {"dead_letters", report.dead_letters},
            {"health", report.health},
            {"ignored", report.ignored},
            {"unreadable", report.unreadable}}},
          {"problems", report.problems},
          {"devices", devices}};
}

}  // namespace edgesync::agent
