// Read-only views of an outbox for a technician (edgesync outbox show, the filtered listing,
// outbox tail). Each opens its own read-only connection, so it works while the agent writes
// (WAL lets readers in beside the writer, and a reader never blocks it) and when it is stopped.
// Nothing here writes to the file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "platform/status.h"
#include "storage/outbox.h"
#include "storage/sqlite.h"

namespace edgesync::storage {

// Where the outbox stands, read in the same snapshot as the rows that come with it.
struct OutboxPosition {
  std::string incarnation;
  int64_t delivered_seq = 0;      // the watermark as persisted
  int64_t next_seq = 1;           // the seq the next accepted event gets
  int64_t oldest_stored_seq = 0;  // 0: no event stored (all pruned, or none yet)
  int64_t held_since_ms = 0;      // delivery held (edgesync outbox hold) since; 0: not held
};

// One event looked up by seq or id, and what became of it.
struct EventLookup {
  enum class State {
    kPending,       // waiting for the hub; `ahead` events go first
    kDelivered,     // the hub has it; kept for de-duplication until pruned
    kDeadLettered,  // the hub refused it for good (`reason`); `announced`: the hub has the notice
    kNotFound,      // see `absence`
  };
  enum class Absence {
    kNotYet,     // by seq: no event has that seq yet (at or beyond next_seq, or below 1)
    kPruned,     // by seq: below the oldest kept; delivered and pruned from the history
    kRemoved,    // by seq: inside the kept range but gone (a dead letter retried under a new seq)
    kUnknownId,  // by id: never accepted by this outbox, or delivered and pruned since
  };
  State state = State::kNotFound;
  Absence absence = Absence::kUnknownId;
  StoredEvent event;       // found: the event (a dead letter's own copy when its row was pruned)
  int64_t ahead = 0;       // kPending: undelivered events with a lower seq
  std::string reason;      // kDeadLettered
  int64_t failed_ms = 0;   // kDeadLettered
  bool announced = false;  // kDeadLettered: the watermark passed it
  OutboxPosition position;
};

// Exactly one of `seq` / `id` is used: an id when it is not empty. NotFound (with how to start
// the agent) when there is no database at `path`; a missing event is a found-nothing lookup.
Result<EventLookup> find_event(const std::string& path, int64_t seq, const std::string& id);

// What the listing shows (edgesync outbox [--all] [--type T] [--since D]).
struct EventFilter {
  bool pending_only = true;
  size_t limit = 100;
  std::string type;             // empty: any; else exactly this type (or, with type_is_prefix,
  bool type_is_prefix = false;  // every type that starts with it)
  std::optional<int64_t> received_since_ms;  // received at or after this Unix time (ms)
};

// The oldest matching events first; their data included. `out` is cleared first.
Status list_events(const std::string& path, const EventFilter& filter,
                   std::vector<StoredEvent>* out, OutboxPosition* position);

// Follows an outbox as the agent writes it (edgesync outbox tail). poll() costs a stat() of the
// file and, while it is there, one query whose every part is a primary-key range: the events
// after the last one seen (bounded per poll), the watermark, and the dead letters above the
// watermark seen last time (a dead letter is stored before the watermark that passes it, so a
// new one always lies above it; the ones already reported are remembered until it does).
// The connection holds no transaction between polls, so the agent's checkpoints are not held up.
//
// It copes with the file not existing yet (kMissing until it appears, then followed from its
// first event), with the file moved aside and replaced (a new incarnation after quarantine:
// kNewIncarnation, followed from its first event) and with history pruned under it (only seqs
// above the last seen are asked for). One thread.
class OutboxTail {
 public:
  struct Poll {
    enum class Kind {
      kMissing,         // no file at the path (yet, or any more)
      kOpened,          // first poll with the file there; `backlog` newest events included
      kNewIncarnation,  // the file was replaced by another outbox: followed from its start
      kFollowing,       // the same outbox as before
      kError,           // could not read it this time (`error`); tried again at the next poll
    };
    Kind kind = Kind::kMissing;
    Status error;
    std::string incarnation;
    std::vector<StoredEvent> accepted;  // seq order; without data, dead_reason or occurred_at
    std::optional<int64_t> delivered_through;  // the watermark, when it moved (or at kOpened)
    std::vector<DeadLetter> dead_letters;      // newly dead-lettered; without data
  };

  // `backlog`: how many of the newest events the first poll returns when the file was there at
  // the start (a file that appears later, or replaces the one followed, is read from its start).
  OutboxTail(std::string path, size_t backlog);
  ~OutboxTail();
  OutboxTail(const OutboxTail&) = delete;
  OutboxTail& operator=(const OutboxTail&) = delete;

  Poll poll();

 private:
  Status open(Poll* poll);
  Status read(Poll* poll);
  void close();
  // At the first open: dead letters already in the file are not news (sets dead_floor_ and
  // dead_reported_).
  Status skip_dead_letters_already_there(Database& db);

  const std::string path_;
  const size_t backlog_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<Statement> query_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  bool from_start_ = false;  // the next open reads from the first event (the file appeared)
  std::string incarnation_;
  int64_t after_seq_ = 0;            // the last event returned
  int64_t delivered_ = -1;           // the watermark last returned
  int64_t dead_floor_ = 0;           // dead letters at or below it were there before the tail
  std::set<int64_t> dead_reported_;  // dead letters reported, above the watermark
};

}  // namespace edgesync::storage
