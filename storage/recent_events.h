// The events committed last, kept in memory for the publisher.
//
// At a steady pace the publisher asks for each event right after its commit. Reading it back
// from SQLite cost a hand-off to the reader thread (two wake-ups), a read transaction and a
// copy of every column, per event: at 200 events/s about as much CPU as the publish itself.
// The committer hands the round's events here instead (their strings are moved, not copied),
// and the publisher takes them from memory. What is not here (an older seq after a reconnect,
// a backlog past the bound, anything after a repair) is read from SQLite as before.
//
// Invariant: the entries are a gap-free run of seqs ending at the last seq committed, each
// exactly as it was inserted, and next_seq() is the seq after it. Whoever commits event rows
// by another path (a repair) or changes how a seq reads (a dead letter joins it) calls
// forget() first; until the next append nothing is answered from here.
//
// Thread-safe. The mutex is a leaf held for pointer copies only: the events are shared, never
// copied under it, so a delivery thread preempted while holding it stalls a commit for as
// little as possible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "platform/mutex.h"
#include "storage/outbox.h"

namespace edgesync::storage {

class RecentEvents {
 public:
  struct Bounds {
    size_t max_events = 256;
    // The bytes of the events' fields; one larger than this is never kept.
    int64_t max_bytes = 64 * 1024;
  };
  RecentEvents() = default;
  explicit RecentEvents(Bounds b) : bounds_(b) {}

  // The committer, after the commit and before anyone is told of it: events stored by one
  // round, in seq order, gap-free. Takes what fits within the bounds, the newest first.
  void append(std::vector<StoredEvent>&& events) EXCLUDES(mu_);

  // Before rows are committed by any path but append(), or when how a seq reads changes.
  void forget() EXCLUDES(mu_);

  // Up to `limit` events with seq > after_seq, in seq order, into `out` (cleared first) when
  // this can answer exactly what SQLite would: the run starts at after_seq + 1, or it is empty
  // and after_seq is the last seq committed. Returns false otherwise (read SQLite). Entries at
  // or below after_seq are dropped: the publisher reads forward.
  bool read(int64_t after_seq, size_t limit, std::vector<StoredEvent>* out) EXCLUDES(mu_);

  size_t size() const EXCLUDES(mu_);
  size_t max_events() const { return bounds_.max_events; }

 private:
  using Entry = std::shared_ptr<const StoredEvent>;
  void clear() REQUIRES(mu_);

  const Bounds bounds_;
  mutable platform::Mutex mu_;
  std::deque<Entry> entries_ GUARDED_BY(mu_);
  int64_t bytes_ GUARDED_BY(mu_) = 0;
  bool valid_ GUARDED_BY(mu_) = false;  // next_seq_ is the seq after the last committed
  int64_t next_seq_ GUARDED_BY(mu_) = 0;
};

}  // namespace edgesync::storage
