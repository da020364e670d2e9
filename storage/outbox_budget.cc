#include "storage/outbox_budget.h"

#include <algorithm>

#include "storage/event_rows.h"
#include "storage/sqlite.h"

namespace edgesync::storage {

Status OutboxBudget::load(EventRows& rows, int64_t delivered, int64_t next_seq, int64_t min_seq) {
  pruned_through_ = min_seq > 0 ? min_seq - 1 : delivered;
  auto pending = rows.sum_between(delivered, next_seq);
  if (!pending) return pending.status();
  pending_bytes_ = *pending;
  auto history = rows.sum_between(pruned_through_, delivered);
  if (!history) return history.status();
  history_bytes_ = *history;
  return Status::ok();
}

Status OutboxBudget::make_room(EventRows& rows, int64_t delivered, int64_t size) {
  // Over budget: delivered history gives way first (a sixty-fourth of the budget more than this
  // event needs, so that it happens rarely); only when pending events alone fill the budget is
  // the event refused.
  const int64_t limit = counted_limit();
  if (history_bytes_ > 0 && pending_bytes_ + size <= limit) {
    const int64_t over = pending_bytes_ + history_bytes_ + size - limit;
    return prune_history_for(rows, delivered, over + limit / 64);
  }
  return Status::ok();
}

Status OutboxBudget::calibrate(Database& db) {
  // Too little stored to say anything (the schema's own pages would dominate).
  const int64_t counted = pending_bytes_ + history_bytes_;
  if (counted < 64 * 1024) return Status::ok();
  auto pages = db.query_int64("PRAGMA page_count", 0);
  if (!pages) return pages.status();
  auto free_pages = db.query_int64("PRAGMA freelist_count", 0);
  if (!free_pages) return free_pages.status();
  const int64_t live = (*pages - *free_pages) * page_size_;
  // Dead letters and the schema live in the same file and raise the ratio: the budget then
  // leaves them their room too. Capped so that a skewed reading cannot shut the outbox.
  file_per_counted_permille_ = std::clamp<int64_t>(live * 1000 / counted, 1000, 8000);
  calibrated_at_ = counted;
  return Status::ok();
}

std::string OutboxBudget::full_message() const {
  return "outbox full: " + std::to_string(pending_bytes_) +
         " bytes wait for the hub (storage.max_bytes " + std::to_string(limits_.max_bytes) +
         "); retry later, the agent keeps delivering";
}

// Inside a transaction: deletes the oldest kept delivered events until at least `want` bytes
// are freed (or the history is gone). Pending events are never touched.
Status OutboxBudget::prune_history_for(EventRows& rows, int64_t delivered, int64_t want) {
  int64_t through = pruned_through_, freed = 0;
  Status s = rows.oldest_for(pruned_through_, delivered, want, &through, &freed);
  if (!s || through == pruned_through_) return s;
  s = rows.delete_through(through);
  if (!s) return s;
  pruned_through_ = through;
  history_bytes_ -= freed;
  return Status::ok();
}

// Deletes kept history beyond keep_delivered. Runs after the round's replies went out, only once
// at least prune_step rows are due (so its cost is shared by many events), and a slice at a time
// so no transaction holds the writer for long. It commits without its own sync: losing a prune
// in a crash only brings back delivered rows, and the next FULL commit syncs it with its own.
bool OutboxBudget::prune_due(int64_t delivered) const {
  const int64_t step = std::max<int64_t>(limits_.prune_step, 1);
  return delivered - limits_.keep_delivered - pruned_through_ >= step;
}

Status OutboxBudget::prune(Database& db, EventRows& rows, int64_t delivered,
                           bool producers_waiting) {
  const int64_t step = std::max<int64_t>(limits_.prune_step, 1);
  // Waiting producers' acks wait for this delete: keep it short then (a 5,000-row slice after a
  // burst cost single-producer acks tens of milliseconds); when idle, take a longer one, but
  // not so long that its WAL frames (with 1 KiB pages, about a page per 300-byte row deleted)
  // carry the WAL far past the checkpoint threshold: 5,000 rows took it from 8 to ~13 MB.
  int64_t slice = producers_waiting ? std::min<int64_t>(step, 256) : std::max<int64_t>(step, 2000);
  int64_t target = std::min(delivered - limits_.keep_delivered, pruned_through_ + slice);
  auto freed = rows.sum_between(pruned_through_, target);
  Status s = freed.status();
  if (s) s = db.exec("PRAGMA synchronous=NORMAL");
  if (s) s = rows.delete_through(target);
  Status restore = db.exec("PRAGMA synchronous=FULL");
  if (s) s = restore;
  if (!s) return s;
  pruned_through_ = target;
  history_bytes_ -= *freed;
  return Status::ok();
}

}  // namespace edgesync::storage
