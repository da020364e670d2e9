// The repairs a technician asks for (Outbox::repair): dead letters put back into delivery or
// purged, and the delivery hold. Each is one transaction on the writer's connection, by whoever
// holds the writer token.
#include <algorithm>
#include <set>

#include "platform/clock.h"
#include "storage/outbox_writer.h"

namespace edgesync::storage {
namespace {

std::string seq_note(int64_t seq, const std::string& why) {
  return "seq " + std::to_string(seq) + ": " + why;
}

// Dead letters in seq order, those in `seqs` or, when it is empty, every one the hub refused
// (requests refused on arrival, below zero, cannot be retried: only asked for by seq).
Status read_dead_letters(Database& db, const std::vector<int64_t>& seqs,
                         std::vector<DeadLetter>* out) {
  auto q = db.prepare("SELECT " EDGESYNC_DEAD_LETTER_COLUMNS
                      "FROM dead_letters WHERE (?1 AND seq > 0) OR seq = ?2 ORDER BY seq");
  if (!q) return q.status();
  auto collect = [&](bool all, int64_t seq) -> Status {
    (*q)->bind(1, int64_t{all ? 1 : 0});
    (*q)->bind(2, seq);
    while (true) {
      auto row = (*q)->step();
      if (!row) return row.status();
      if (!*row) break;
      read_dead_letter(**q, &out->emplace_back());
    }
    (*q)->reset();
    return Status::ok();
  };
  if (seqs.empty()) return collect(true, 0);
  for (int64_t seq : std::set<int64_t>(seqs.begin(), seqs.end())) {
    Status s = collect(false, seq);
    if (!s) return s;
  }
  return Status::ok();
}

}  // namespace

RepairResult Outbox::Writer::repair(const RepairRequest& request) {
  RepairResult out;
  if (!writable_now()) {
    out.status = Status::unavailable("storage is failing (" + failure +
                                     "); nothing was changed: try again once it has recovered");
    return out;
  }
  const int64_t seq_before = next_seq;
  const OutboxBudget budget_before = budget;
  const int64_t held_before = held_since_ms;
  Status s = db->exec("BEGIN IMMEDIATE");
  if (s) {
    switch (request.kind) {
      case RepairRequest::Kind::kRetryDeadLetters:
        s = retry_dead_letters(request.seqs, &out);
        break;
      case RepairRequest::Kind::kPurgeDeadLetters:
        s = purge_dead_letters(request.failed_before_ms, &out);
        break;
      case RepairRequest::Kind::kHold:
      case RepairRequest::Kind::kRelease:
        s = set_hold(request.kind == RepairRequest::Kind::kHold, &out);
        break;
    }
  }
  if (s) s = db->exec("COMMIT");
  if (!s) {
    next_seq = seq_before;
    budget = budget_before;
    held_since_ms = held_before;
    fail(s);
    out = RepairResult{};
    out.status = Status::io_error("the repair failed and changed nothing: " + s.to_string());
  }
  return out;
}

Status Outbox::Writer::retry_dead_letters(const std::vector<int64_t>& seqs, RepairResult* out) {
  std::vector<DeadLetter> dead;
  Status s = read_dead_letters(*db, seqs, &dead);
  if (!s) return s;
  for (int64_t seq : std::set<int64_t>(seqs.begin(), seqs.end())) {
    if (std::none_of(dead.begin(), dead.end(), [seq](const DeadLetter& d) {
          return d.event.seq == seq;
        })) {
      out->skipped.push_back(seq_note(seq, "no such dead letter"));
    }
  }
  auto forget = db->prepare("DELETE FROM dead_letters WHERE seq = ?");
  if (!forget) return forget.status();
  for (const DeadLetter& d : dead) {
    const int64_t old_seq = d.event.seq;
    if (old_seq < 0) {
      out->skipped.push_back(seq_note(
          old_seq, "refused on arrival, never an event of the stream: correct it at its source "
                   "and send it again (the reason says what was wrong)"));
      continue;
    }
    // Until the watermark passes it, the publisher is still announcing it to the hub (or will,
    // after a restart): putting it back now would race that notice.
    if (old_seq > delivered) {
      out->skipped.push_back(
          seq_note(old_seq, "its dead-letter notice is still being sent to the hub; try again "
                            "once the hub has it (edgesync status: last delivered seq)"));
      continue;
    }
    AppendRequest again{d.event.id,          d.event.type, d.event.occurred_at,
                        d.event.received_ms, d.event.data, d.event.trace_id,
                        d.event.contract_version, {}};
    // Every reason to skip is checked before anything changes: a skipped retry must leave the
    // delivered copy that de-duplicates the id in place.
    auto existing = rows.lookup(again.id);
    if (!existing) return existing.status();
    if (*existing > 0 && *existing != old_seq) {
      out->skipped.push_back(seq_note(
          old_seq, "its id is stored again as seq " + std::to_string(*existing) +
                       " (the producer sent it again after the first was dead-lettered)"));
      continue;
    }
    const int64_t size = counted_size(again);
    if (!budget.fits(size)) {
      s = budget.make_room(rows, delivered, size);
      if (!s) return s;
      if (!budget.fits(size)) {
        out->skipped.push_back(seq_note(old_seq, "no room: " + budget.full_message()));
        continue;
      }
    }
    // The delivered copy kept for de-duplication holds the id: it goes, so the id can be
    // stored under its new seq (and still de-duplicates a producer's resend).
    auto removed = rows.remove(old_seq);
    if (!removed) return removed.status();
    budget.history_removed(*removed);
    s = rows.insert(next_seq, again);
    if (!s) return s;
    (*forget)->bind(1, old_seq);
    s = (*forget)->run();
    if (!s) return s;
    out->retried.emplace_back(old_seq, next_seq);
    ++next_seq;
    budget.stored(size);
  }
  return Status::ok();
}

Status Outbox::Writer::purge_dead_letters(int64_t failed_before_ms, RepairResult* out) {
  // Only those the hub was told about: one the watermark has not passed would otherwise be
  // sent as a live event.
  auto q = db->prepare("DELETE FROM dead_letters WHERE failed_ms < ? AND seq <= ?");
  if (!q) return q.status();
  (*q)->bind(1, failed_before_ms);
  (*q)->bind(2, delivered);
  Status s = (*q)->run();
  if (!s) return s;
  out->purged = db->changes();
  return Status::ok();
}

Status Outbox::Writer::set_hold(bool hold, RepairResult* out) {
  if (hold && held_since_ms > 0) {  // an earlier hold stays, with its time
    out->held_since_ms = held_since_ms;
    return Status::ok();
  }
  const int64_t since = hold ? platform::unix_ms() : 0;
  auto q = db->prepare(
      "INSERT INTO state(key, value) VALUES('delivery_held_since', ?) "
      "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  if (!q) return q.status();
  (*q)->bind(1, since);
  Status s = (*q)->run();
  if (!s) return s;
  held_since_ms = since;
  out->held_since_ms = since;
  return Status::ok();
}

}  // namespace edgesync::storage
