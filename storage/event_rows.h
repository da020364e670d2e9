// How an event is a row: the columns read back into a StoredEvent, what a stored row counts
// against storage.max_bytes, and the prepared statements of the writer's connection. The SQL
// that reads or writes event rows is here, beside counted_size(), which must agree with it;
// the insert itself is storage::kInsertEventSql (outbox_database.h), which the benchmark's raw
// loops share.
// Storage layer only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "platform/status.h"
#include "storage/outbox.h"
#include "storage/sqlite.h"

namespace edgesync::storage {

// The columns read_event() and read_dead_letter() read, in their order: events joined to their
// dead letters (alias e and d), and the dead_letters table alone.
#define EDGESYNC_EVENT_COLUMNS \
  "e.seq, e.id, e.type, e.occurred_at, e.received_ms, e.data, d.reason, d.failed_ms, e.trace_id, " \
  "e.contract_v "
#define EDGESYNC_DEAD_LETTER_COLUMNS \
  "seq, id, type, occurred_at, received_ms, data, reason, failed_ms, trace_id, contract_v "

// Events after a seq, in seq order, each with its dead letter's reason and time when it has one.
// Parameters: after_seq, limit. Rows for read_event().
extern const char* const kSelectEventsAfterSql;
// Dead letters in seq order. Parameter: limit. Rows for read_dead_letter().
extern const char* const kSelectDeadLettersSql;

// Copies the current row of a kSelectEventsAfterSql statement into `e`.
void read_event(const Statement& st, StoredEvent* e);
// Copies the current row of a kSelectDeadLettersSql statement into `d`.
void read_dead_letter(const Statement& st, DeadLetter* d);

// Fills stats->pending_bytes (counted_size() summed over seq > stats->delivered_seq, as stored)
// and stats->oldest_pending_received_ms. Any connection; the caller chooses the transaction.
Status read_pending_figures(Database& db, OutboxStats* stats);

// The statements the writer runs on its connection, prepared once per connection.
// REQUIRES: the Database they were prepared on outlives them (reset() before closing it), and
// one thread at a time (the writer token's holder).
class EventRows {
 public:
  // Prepares every statement on `db`. On failure some may be prepared, on `db`.
  Status prepare(Database& db);
  // Finalizes every statement.
  void reset();

  // Stores one event under `seq`. An id already stored changes nothing (changes() == 0).
  Status insert(int64_t seq, const AppendRequest& r);
  // The seq stored under `id`, 0 if none.
  Result<int64_t> lookup(const std::string& id);
  // Sum of counted_size() over seq in (after, through].
  Result<int64_t> sum_between(int64_t after, int64_t through);
  // The oldest events in (after, through], as few as sum to at least `want` bytes (all of them
  // if they sum to less): sets *last_seq to the last one's seq (`after` if none) and *bytes to
  // their sum.
  Status oldest_for(int64_t after, int64_t through, int64_t want, int64_t* last_seq,
                    int64_t* bytes);
  // Deletes every event with seq <= `seq`.
  Status delete_through(int64_t seq);
  // Deletes the one event stored under `seq` (a technician's repair, so prepared on each call);
  // returns its counted size, 0 if there was none.
  Result<int64_t> remove(int64_t seq);
  Status set_delivered(int64_t seq);
  // A dead letter already stored for the seq stays as it is.
  Status insert_dead_letter(const DeadLetter& d);
  // The key of the request refused on arrival under `id` (below zero), 0 if none.
  Result<int64_t> lookup_refusal(const std::string& id);
  // The key the next refusal gets: one below the lowest there is, -1 for the first.
  Result<int64_t> next_refusal_key();
  // Deletes dead letters beyond the newest `keep` (the hub's and the requests refused on
  // arrival, `keep` of each) and those that failed before
  // `failed_before_ms`, and adds their number to the state's dead_letters_pruned. Returns it.
  Result<int64_t> prune_dead_letters(int64_t keep, int64_t failed_before_ms);

 private:
  std::unique_ptr<Statement> insert_, find_id_, bytes_between_, sizes_between_, set_delivered_,
      insert_dead_, find_refusal_, prune_, prune_dead_count_, prune_refused_count_,
      prune_dead_age_, add_dead_pruned_;
  Database* db_ = nullptr;  // the one they were prepared on, for changes()
};

}  // namespace edgesync::storage
