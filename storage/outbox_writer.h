// The outbox's writer: the write connection with its statements and counters, the failure state
// and reopening, and the commit of one round. Storage layer only.
//
// After a failed commit, sync, prune or checkpoint the writer rolls back and drops its connection
// (fail()); rounds then refuse their appends until retry_after has passed, when the next round
// reopens the database. A fresh connection re-reads the WAL index, so the failed transaction is
// gone; what was committed stays intact.
//
// REQUIRES: used only by whoever holds the outbox's writer token (the writer thread, or the
// owner thread committing a lone event), and by Outbox::open() before the writer thread starts.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "platform/status.h"
#include "storage/checkpoint_policy.h"
#include "storage/event_rows.h"
#include "storage/outbox.h"
#include "storage/outbox_budget.h"
#include "storage/sqlite.h"

namespace edgesync::storage {

struct Outbox::Writer {
  using Clock = std::chrono::steady_clock;

  struct Written {
    bool writable = true;     // false: storage is failed, nothing of the round is on disk
    bool stored_any = false;  // at least one new event was stored
  };

  explicit Writer(const Options& options);

  // (Re)opens the database (creating and migrating as needed), prepares the statements and
  // reads the counters from disk. On failure `db` is null and `failed` unchanged.
  Status open();
  // Drops the statements, then the connection.
  void close();
  // Rolls back and drops the connection; nothing is written until a round reopens it.
  void fail(const Status& s);

  // One round: `batch` (whose callbacks it moves into `results`), `dead` and `watermark` in one
  // transaction, reopening first if storage failed and retry_after has passed. `results` gets
  // one completion per append: its outcome, or kStorageError when nothing could be written.
  Written write_round(std::vector<Pending>& batch, const std::vector<DeadLetter>& dead,
                      int64_t watermark, std::vector<Completion>* results);
  // Moves every callback of `batch` into `out` with kStorageError and the failure's message.
  void refuse_all(std::vector<Pending>& batch, std::vector<Completion>* out) const;

  // New limits from Outbox::set_limits(), used from the next round on: the budget's at once
  // (a smaller max_bytes only refuses appends, history is pruned as prune_due() says), and
  // dead letters beyond smaller bounds are due for prune_dead_letters_to_limits().
  void set_limits(const Limits& l);

  // Maintenance, after a round's replies went out (not inside its commit).
  bool prune_due() const;
  bool checkpoint_due() const;
  bool dead_letter_prune_due() const { return db && dead_letter_prune_wanted; }
  bool maintenance_due() const {
    return prune_due() || checkpoint_due() || dead_letter_prune_due();
  }
  // REQUIRES: prune_due(). `producers_waiting`: appends are queued behind this delete.
  void prune(bool producers_waiting);
  void checkpoint();  // when checkpoint_due()
  // When dead_letter_prune_due(): a transaction of its own.
  void prune_dead_letters_to_limits();

  // A technician's repair (outbox_repair.cc), in a transaction of its own, reopening first if
  // storage failed and retry_after has passed. A failed commit fails the writer as a round's
  // would, and the result says what failed; nothing of it is on disk then.
  RepairResult repair(const RepairRequest& request);
  // Whether this round may write: true unless failed and retry_after has not passed or
  // reopening failed.
  bool writable_now();

  // Constant for the outbox's lifetime; the fields that may change are in `limits`.
  const Options& options;
  // max_bytes, keep_delivered (both also in `budget`), max_dead_letters, dead_letter_max_age:
  // from `options` at first, then from set_limits().
  Limits limits;
  // Smaller dead-letter bounds were set and not yet applied to the table (open() applies them
  // too, so a failed writer loses nothing by dropping it).
  bool dead_letter_prune_wanted = false;
  // `db` before `rows`: the statements are finalized before their connection closes.
  std::unique_ptr<Database> db;
  EventRows rows;
  OutboxBudget budget;
  CheckpointPolicy checkpoints;
  int64_t next_seq = 1;
  int64_t next_refusal_key = -1;  // AppendRequest::refused_reason's key for the next one
  int64_t delivered = 0;  // the watermark on disk
  int64_t held_since_ms = 0;  // the delivery hold on disk (0: none)
  std::string incarnation;
  bool failed = false;
  bool corrupt = false;  // the failure was SQLite reporting the file damaged
  std::string failure;
  Clock::time_point failed_at;
  // Scratch reused from round to round. A burst (producers outrunning the disk) grows the batch
  // and `outcomes` to max_batch entries, about a megabyte together; release_large_scratch()
  // frees that after the round instead of keeping it for the life of the agent.
  std::vector<Pending> batch_scratch;
  std::vector<DeadLetter> dead_scratch;
  std::vector<Completion> results_scratch;
  // Frees the scratch vectors (emptied by the round) whose capacity a burst grew beyond what
  // steady traffic uses; the next burst allocates again, once per round of thousands of events.
  void release_large_scratch();

 private:
  // open() without the cleanup: on failure `db` and the statements may be half set up.
  Status open_connection();
  // Inside a transaction: dead letters beyond max_dead_letters or dead_letter_max_age go.
  Status prune_dead_letters();
  // The repairs' bodies, inside the transaction repair() opens.
  Status retry_dead_letters(const std::vector<int64_t>& seqs, RepairResult* out);
  Status purge_dead_letters(int64_t failed_before_ms, RepairResult* out);
  Status set_hold(bool hold, RepairResult* out);
  // Inside commit(): keeps a request refused on arrival as a dead letter (or finds it there).
  Status keep_refusal(const AppendRequest& req, AppendResult* r);
  // Fills `outcomes`, one per append.
  Status commit(const std::vector<Pending>& batch, const std::vector<DeadLetter>& dead,
                int64_t watermark);

  std::vector<AppendResult> outcomes;  // scratch, as the ones above
};

}  // namespace edgesync::storage
