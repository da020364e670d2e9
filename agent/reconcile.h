// Reconciliation: the hub's proof, per box, that every seq the box accepted is either received
// as an event or announced as a dead letter (`edgesync reconcile`).
//
// Pure: fed the hub's messages (topic and payload) in any order, duplicates included; no MQTT
// and no clock (report() is given the time). One thread at a time.
//
// Per (store, device, incarnation) it keeps the seqs received as events as ranges (memory grows
// with the number of holes, not with the number of events), the dead-letter notices, and what
// the health messages naming that incarnation said. A health message says "every seq up to
// highest_accepted_seq was given to an event" and "every seq up to highest_delivered_seq was
// acknowledged by the hub"; both only grow within an incarnation, so the largest value any
// message gave is a fact whatever order the messages come in, and whatever the box's clock read.
//
// A seq in [checked_from, max(highest_accepted_seq, highest seq seen)] that is neither received
// nor announced is one of two things, and the difference is the point of the whole report:
//  - lost: at or below highest_delivered_seq. The box holds the broker's acknowledgement for it
//    (its watermark passed it) and will never send it again, yet the hub does not have it: it was
//    dropped after the broker took it (a subscriber queue overflow, a recorder that was away with
//    a clean session, a consumer bug), or the message was taken out of the record. A real gap.
//  - pending (in flight): above highest_delivered_seq. The box has not been told the hub has
//    it: it is still in the box's outbox and will be sent (again), or announced as a dead letter.
//    A device whose hub side stops below its highest_accepted_seq is behind, not short.
// Without a health message for an incarnation nothing can be proven lost (the box's word is
// missing): its holes are reported as pending.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/seq_ranges.h"

namespace edgesync::agent {

using events::format_ranges;
using events::seq_count;
using events::SeqRange;
using events::SeqRanges;

struct ReconcileOptions {
  // false: every incarnation is checked from seq 1 (a record kept since the box started).
  // true: from the lowest seq seen for it (a record that began mid-stream, or a live run that
  // sees only what arrives while it listens); an incarnation with nothing seen from
  // highest_delivered_seq + 1.
  bool from_first_seen = false;
};

enum class MessageKind { kEvent, kDeadLetter, kHealth, kIgnored, kUnreadable };

struct DeadLetterSeen {
  int64_t seq = 0;
  std::string id;
  std::string reason;
  std::string failed_at;
};

// kComplete: health present and nothing missing. kBehind: seqs missing, none lost.
// kLost: a seq at or below highest_delivered_seq missing. kUnconfirmed: nothing missing up to the
// highest seq seen, but no health message to say that was the last one.
enum class ReconcileState { kComplete, kBehind, kLost, kUnconfirmed };
const char* reconcile_state_name(ReconcileState s);

struct IncarnationReport {
  std::string incarnation;
  ReconcileState state = ReconcileState::kUnconfirmed;
  std::vector<SeqRange> received;
  int64_t received_count = 0;                // distinct seqs received as events
  int64_t duplicates = 0;                    // messages for a seq already received or announced
  std::vector<DeadLetterSeen> dead_letters;  // by seq
  bool has_health = false;
  int64_t highest_accepted_seq = 0;   // from health (0 without)
  int64_t highest_delivered_seq = 0;  // from health (0 without)
  std::string health_at;              // the newest health message's "at"
  std::optional<int64_t> health_at_ms;
  std::string verdict_line;      // the newest health message's verdict.line
  int64_t highest_seen_seq = 0;  // received or announced
  int64_t checked_from = 1;
  int64_t checked_to = 0;              // max(highest_accepted_seq, highest_seen_seq)
  int64_t highest_contiguous_seq = 0;  // every seq in [checked_from, this] received or announced
  int64_t lag = 0;                     // checked_to - highest_contiguous_seq
  std::vector<SeqRange> lost;
  std::vector<SeqRange> pending;
  std::string newest_event_at;  // the newest event's received_at (the box's clock)
  std::optional<int64_t> newest_event_ms;
  std::optional<double> newest_event_age_s;
  std::optional<double> health_age_s;
  // The incarnation the device's newest health message names, when that is another one: the
  // box moved to a new outbox (repair, quarantine); this one's pending seqs stay in the old file.
  std::string superseded_by;
};

struct DeviceReport {
  std::string store_id;
  std::string device_id;
  std::vector<IncarnationReport> incarnations;  // oldest activity first: the current one last
};

struct ReconcileReport {
  bool from_first_seen = false;
  int64_t events = 0;                 // event messages read (duplicates included)
  int64_t dead_letters = 0;           // notices read
  int64_t health = 0;                 // health messages read
  int64_t ignored = 0;                // other topics (status, config)
  int64_t unreadable = 0;             // a known topic with a payload that does not parse
  std::vector<std::string> problems;  // the first few unreadable messages, why
  std::vector<DeviceReport> devices;  // by store, then device
  int64_t lost_seqs() const;
};

class Reconciler {
 public:
  Reconciler(std::string topic_prefix, ReconcileOptions options = {});

  // One message as the hub received it. `payload` is the JSON text. Messages on topics other
  // than events, deadletter and health under the prefix are ignored.
  MessageKind add(std::string_view topic, std::string_view payload);
  // The same with the payload already parsed (a capture that holds it as JSON).
  MessageKind add_json(std::string_view topic, const nlohmann::json& payload);
  // Counts a record that could not be read at all (a capture line), with why.
  void add_problem(std::string what);

  ReconcileReport report(int64_t now_ms) const;

 private:
  struct Incarnation {
    SeqRanges received;
    SeqRanges covered;  // received or announced
    std::map<int64_t, DeadLetterSeen> dead_letters;
    int64_t duplicates = 0;
    bool has_health = false;
    int64_t highest_accepted = 0;
    int64_t highest_delivered = 0;
    std::optional<int64_t> health_at_ms;
    std::string health_at;
    std::string verdict_line;
    std::optional<int64_t> newest_event_ms;
    std::string newest_event_at;
  };
  struct Device {
    std::map<std::string, Incarnation> incarnations;
    std::optional<int64_t> newest_health_ms;
    std::string newest_health_incarnation;
  };
  using DeviceKey = std::pair<std::string, std::string>;  // store, device

  // The kind the topic names (kIgnored for other topics), with its store and device levels.
  MessageKind classify(std::string_view topic, std::string* store, std::string* device) const;
  MessageKind unreadable(std::string_view topic, const std::string& why);
  IncarnationReport report_one(const std::string& name, const Incarnation& inc,
                               const Device& device, int64_t now_ms) const;

  std::string prefix_;  // with its trailing '/'
  ReconcileOptions options_;
  std::map<DeviceKey, Device> devices_;
  int64_t events_ = 0, dead_letters_ = 0, health_ = 0, ignored_ = 0, unreadable_ = 0;
  std::vector<std::string> problems_;
};

// The report as config/contracts/reconcile.schema.json describes it.
nlohmann::json reconcile_json(const ReconcileReport& report);

}  // namespace edgesync::agent
