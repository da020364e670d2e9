// storage.max_bytes as the outbox spends it, and the pruning of delivered history.
//
// Every stored event counts counted_size(). Pending events (seq after the watermark) and the
// delivered history kept for de-duplication and inspection, seq in (pruned_through, delivered],
// share the budget. When an append would pass it, history gives way first; only when pending
// events alone fill the budget is the append refused. Apart from that, history beyond
// keep_delivered is pruned in slices after a round's replies went out.
//
// counted_size() is what an event stores, not what its rows take in the file: pages are partly
// filled and carry headers, and with small pages (the outbox's 1 KiB) rows of a few hundred
// bytes waste a third of a page or more. So once the budget is half used, calibrate() measures
// the database's live pages against the counted bytes and the budget is spent in those terms:
// storage.max_bytes stays the size of the file, whatever the events' sizes.
//
// Used by whoever holds the writer token. A copy is a snapshot of the figures: the writer takes
// one before a transaction and puts it back when the transaction fails; the outbox keeps one
// under its mutex for stats() and for deciding when the watermark's room is needed.
#pragma once

#include <cstdint>
#include <string>

#include "platform/status.h"

namespace edgesync::storage {

class Database;
class EventRows;

class OutboxBudget {
 public:
  struct Limits {
    int64_t max_bytes = 0;
    int64_t keep_delivered = 0;
    int64_t prune_step = 1;  // delivered history is deleted once this many rows are due
  };

  OutboxBudget() = default;
  explicit OutboxBudget(const Limits& limits) : limits_(limits) {}

  // New limits (a configuration applied while running); the figures stay. A smaller max_bytes
  // makes fits() refuse until deliveries or pruned history make room: nothing is deleted here.
  void set_limits(const Limits& limits) { limits_ = limits; }

  // After (re)opening: the figures of the rows on disk. `min_seq`: the oldest stored seq, 0 if
  // there is none. On failure the figures are partly loaded; load again before using them.
  Status load(EventRows& rows, int64_t delivered, int64_t next_seq, int64_t min_seq);

  int64_t pending_bytes() const { return pending_bytes_; }
  int64_t history_bytes() const { return history_bytes_; }

  // Whether `bytes` more fit in the budget as it is (without pruning).
  bool fits(int64_t bytes) const {
    return pending_bytes_ + history_bytes_ + bytes <= counted_limit();
  }

  // After a commit: whether calibrate() is worth its three queries: the budget is half used and
  // the counted bytes moved by a 256th of it since the last reading (not after every commit:
  // a lone event's commit runs on the ingest thread).
  bool calibration_due() const {
    const int64_t counted = pending_bytes_ + history_bytes_;
    const int64_t moved = counted > calibrated_at_ ? counted - calibrated_at_ : calibrated_at_ - counted;
    return 2 * counted >= counted_limit() && (calibrated_at_ < 0 || moved >= limits_.max_bytes / 256);
  }
  // Measures the live pages of the database (page_count - freelist_count, times page_size)
  // against the counted bytes stored, and budgets with that ratio from now on.
  Status calibrate(Database& db);
  // The database's page size, read by the writer when it opens the connection.
  void set_page_size(int64_t page_size) { page_size_ = page_size; }
  // An event of `size` bytes was stored (pending).
  void stored(int64_t size) { pending_bytes_ += size; }
  // Delivered history of `bytes` was deleted outside prune() (a dead letter put back).
  void history_removed(int64_t bytes) { history_bytes_ -= bytes; }
  // The watermark passed events of `bytes` in all: they are history now.
  void delivered(int64_t bytes) {
    pending_bytes_ -= bytes;
    history_bytes_ += bytes;
  }

  // Inside the append's transaction, when `size` does not fit: deletes delivered history to make
  // room, if that can be enough. Afterwards fits(size) tells whether the event may be stored.
  Status make_room(EventRows& rows, int64_t delivered, int64_t size);
  // Why an event that does not fit was refused, and what the producer should do.
  std::string full_message() const;

  // Whether at least prune_step rows of history beyond keep_delivered are due for prune().
  bool prune_due(int64_t delivered) const;
  // Outside a transaction, after a round: deletes a slice of the history beyond keep_delivered.
  // `producers_waiting`: appends are queued behind this delete. On failure nothing changed here
  // and the caller must drop the connection.
  Status prune(Database& db, EventRows& rows, int64_t delivered, bool producers_waiting);

 private:
  Status prune_history_for(EventRows& rows, int64_t delivered, int64_t want);
  // storage.max_bytes in counted bytes: what the file can hold at the measured overhead.
  int64_t counted_limit() const { return limits_.max_bytes * 1000 / file_per_counted_permille_; }

  Limits limits_;
  int64_t pending_bytes_ = 0;  // counted_size() of the events after `delivered`
  int64_t history_bytes_ = 0;  // ... of the delivered events still kept (pruned_through, delivered]
  int64_t pruned_through_ = 0;  // every seq at or below is gone from `events`
  // Bytes of live database pages per 1,000 counted bytes, as last measured; never below 1,000.
  int64_t file_per_counted_permille_ = 1000;
  int64_t calibrated_at_ = -1;  // the counted bytes at the last calibrate(); -1: never
  int64_t page_size_ = 4096;
};

}  // namespace edgesync::storage
