// The events committed last, kept in memory for the publisher.
//
// At a steady pace the publisher asks for each event right after its commit. Reading it back
// from SQLite cost a hand-off to the reader thread (two wake-ups), a read transaction and a
// copy of every column, per event: at 200 events/s about as much CPU as the publish itself.
// The committer hands the round's events here instead (their strings are moved, not copied),
// and the publisher takes them from memory. What is not here (an older seq after a reconnect,
// a backlog past the bound, anything after a repair) is read from SQLite as before.
//
// What it answers is what SQLite would: the entries are a gap-free run of seqs, each exactly as
// it was inserted, and the run ends at the last seq handed in. The committer hands in every
// round's events after its commit and before it tells the publisher; whoever changes the rows
// any other way (a repair commits events, a dead letter joins a seq, a failed commit may leave
// seqs on disk that were never handed in) calls forget(), and delivered history is dropped
// with drop_through() before it can be pruned.
//
// Thread-safe, and nobody waits for its lock (a leaf, held for no allocation, copy or free): the
// publisher's delivery thread runs below ingest's priority, and one preempted while holding a
// lock the ingest thread waited for held producers' replies for seconds under a CPU hog
// (tests/integration/ingest_under_cpu_hog_test.cc). A committer that finds it held marks the
// run stale, and whoever holds it next empties it; a reader that finds it held reads SQLite.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "platform/mutex.h"
#include "storage/outbox.h"

namespace edgesync::storage {

class RecentEvents {
 public:
  // An event as the committer hands it in: shared, so that a read copies it outside the lock.
  using Entry = std::shared_ptr<const StoredEvent>;
  struct Bounds {
    // Enough for a few rounds of 64 lock-step producers; the publisher reads up to 256 at once.
    size_t max_events = 128;
    // The bytes of the events' fields; one larger than this is never kept.
    int64_t max_bytes = 32 * 1024;
  };
  RecentEvents() : RecentEvents(Bounds{}) {}
  explicit RecentEvents(Bounds b);

  // The committer, after the commit and before anyone is told of it: the events one round
  // stored, in seq order, gap-free (the newest of a round may be handed alone: the run then
  // starts anew at them). Keeps what fits within the bounds, the newest first. What it does
  // not keep is freed when the caller's vector is, outside the lock.
  void append(std::vector<Entry>&& events) EXCLUDES(mu_);

  // Before rows change by any path but append(): nothing is answered until the next append.
  void forget() EXCLUDES(mu_);

  // Drops the events at or below `seq`: delivered, and history that may be pruned from now on.
  void drop_through(int64_t seq) EXCLUDES(mu_);

  // Up to `limit` events with seq > after_seq, in seq order, into `out` (cleared first) when
  // this can answer exactly what SQLite would: the run starts at after_seq + 1, or it is empty
  // and after_seq is the last seq handed in. Returns false otherwise (read SQLite). Entries at
  // or below after_seq are dropped: the publisher reads forward.
  bool read(int64_t after_seq, size_t limit, std::vector<StoredEvent>* out) EXCLUDES(mu_);

  // For tests and inspection: the events held now. Waits for the lock.
  size_t size() const EXCLUDES(mu_);
  size_t max_events() const { return bounds_.max_events; }

 private:
  friend class RecentEventsPeer;  // tests: holds the lock as a reader in the middle of a read
  // The oldest entry leaves the ring into `out`, to be freed once the lock is released.
  void pop_front(std::vector<Entry>* out) REQUIRES(mu_);
  const Entry& front() const REQUIRES(mu_) { return slots_[head_]; }
  // Empties the run if a committer could not take the lock since the last holder.
  void empty_if_stale(std::vector<Entry>* dropped) REQUIRES(mu_);
  // Each thread's scratch for entries taken or dropped under the lock, reserved beforehand:
  // nothing is allocated or freed while the lock is held.
  std::vector<Entry>& scratch(int which) const;

  Bounds bounds_;  // set by the constructor only
  mutable platform::Mutex mu_;
  std::vector<Entry> slots_ GUARDED_BY(mu_);  // a ring of max_events slots
  size_t head_ GUARDED_BY(mu_) = 0;
  size_t count_ GUARDED_BY(mu_) = 0;
  int64_t bytes_ GUARDED_BY(mu_) = 0;
  bool valid_ GUARDED_BY(mu_) = false;  // next_seq_ is the seq after the last handed in
  // Set without the lock by a committer that found it held: what it would have changed is
  // missing, so the next holder empties the run. Set before the committer tells the publisher.
  //
  // Sequentially consistent, and so must be the flag with which the publisher asks to be told
  // of commits (it sets that flag, then reads; a committer sets stale_, then takes the flag):
  // either the committer finds the flag set and the publisher reads again after the tell, or
  // the flag was set later in the one order of seq_cst operations and the publisher's read,
  // after it, finds stale_ set. With weaker orders a reader that answered "nothing new" while
  // a commit marked the run stale could miss both, and the events would wait for the next
  // commit.
  std::atomic<bool> stale_{false};
  int64_t next_seq_ GUARDED_BY(mu_) = 0;
};

}  // namespace edgesync::storage
