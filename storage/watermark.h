// The delivery watermark as the outbox batches its writes.
//
// Acks move it in memory at once (mark()); a round of the writer writes it to disk in the round's
// transaction, when to_write() says so. Losing an unwritten watermark in a crash only causes
// re-sends (duplicates), never loss; writing it costs a page (a WAL frame) and a query, so it
// waits for more acks instead of riding along with every commit. Once it has waited `flush` it
// rides along with the next append round (one more frame in a commit that syncs anyway); only
// when no append round comes for twice that is it written in a commit of its own, which costs a
// sync and, on flash, a page program of its own.
//
// REQUIRES: guarded by the outbox's mutex.
#pragma once

#include <chrono>
#include <cstdint>

namespace edgesync::storage {

class Watermark {
 public:
  using Clock = std::chrono::steady_clock;

  // What a round is about to commit besides the watermark.
  struct RoundContents {
    bool appends = false;
    bool dead_letters = false;
    bool closing = false;
  };

  // `flush`: how long a delivered watermark may wait in memory before it is written.
  explicit Watermark(std::chrono::milliseconds flush) : flush_(flush) {}

  // At open: the watermark on disk.
  void reset(int64_t on_disk) { wanted_ = persisted_ = on_disk; }

  int64_t wanted() const { return wanted_; }        // every seq at or below is delivered
  int64_t persisted() const { return persisted_; }  // ... as written by the last round
  bool dirty() const { return wanted_ > persisted_; }
  // When a dirty watermark is due to be written on its own.
  Clock::time_point due_at() const { return dirty_since_ + 2 * flush_; }

  // Every seq at or below `seq` is delivered; lower values than before are ignored. Returns true
  // when the watermark just became dirty: the writer must be woken to write it in time.
  bool mark(int64_t seq) {
    if (seq <= wanted_) return false;
    const bool was_clean = wanted_ == persisted_;
    wanted_ = seq;
    if (was_clean) dirty_since_ = Clock::now();
    return was_clean;
  }

  // The watermark a round writes: persisted() when it writes none. `needs_room()` tells whether
  // the round's appends may need the room that writing the watermark frees; it is called only
  // when the watermark is dirty.
  template <typename NeedsRoom>
  int64_t to_write(const RoundContents& round, NeedsRoom needs_room) const {
    if (!dirty()) return persisted_;
    // Written when due on its own, with appends once it has waited `flush`, when closing, with
    // dead letters, and when the room it frees may be needed by this round's appends.
    const auto now = Clock::now();
    const bool rides = round.appends && now >= dirty_since_ + flush_;
    if (now >= due_at() || rides || round.closing || round.dead_letters || needs_room()) {
      return wanted_;
    }
    return persisted_;
  }

  // After a round: the writer's watermark on disk is now `on_disk`. `tried`: the round tried to
  // write the watermark; `writable`: storage was not failed.
  void round_done(int64_t on_disk, bool tried, bool writable) {
    if ((tried || !writable) && wanted_ > on_disk) {
      // Newer acks came in meanwhile, or storage is down: wait a whole interval again
      // rather than spin.
      dirty_since_ = Clock::now();
    }
    persisted_ = on_disk;
  }

 private:
  std::chrono::milliseconds flush_;
  int64_t wanted_ = 0;
  int64_t persisted_ = 0;
  Clock::time_point dirty_since_;
};

}  // namespace edgesync::storage
