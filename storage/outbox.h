// The durable outbox: the one queue between producers and the hub.
//
// Appends are group-committed: every append waiting when the writer thread wakes goes into one
// transaction and one sync (WAL, synchronous=FULL), then every waiting producer is completed. A
// lone event from a lone producer is committed on the owner's thread instead (commit_queued()),
// which saves two thread hand-offs per event. A completion with kStored or kDuplicate means the
// event is on disk.
//
// Sequence numbers are assigned by the writer in commit order, start at 1 and are gap-free: a
// failed transaction gives its numbers back. Delivery is tracked as a watermark (every seq at or
// below it is delivered or dead-lettered); delivered events are kept up to `keep_delivered` for
// de-duplication and inspection, then pruned.
//
// After a failed commit or sync the outbox refuses appends with kStorageError and does not write
// again until `retry_after` has passed, when it reopens the database (SQLite discards whatever
// the failed transaction left in the WAL) and tries again. What was committed stays intact.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "platform/files.h"
#include "platform/mutex.h"
#include "platform/status.h"
#include "platform/thread_annotations.h"
#include "storage/outbox_budget.h"
#include "storage/sqlite.h"
#include "storage/watermark.h"

namespace edgesync::storage {

class PendingReader;
class RecentEvents;

struct AppendRequest {
  std::string id;  // idempotency key, non-empty
  std::string type;
  std::string occurred_at;  // empty: not given by the producer
  int64_t received_ms = 0;  // Unix time in ms when the agent received the event
  std::string data;         // opaque bytes
  std::string trace_id;     // empty: not given by the producer; carried to the hub as it is
  int contract_version = 0;  // the event contract's version (docs/CONTRACTS.md); 0: none
  // Non-empty: not an event but a request refused on arrival (a spool file's invalid line),
  // kept in the dead-letter table with this reason so a technician finds it where undeliverable
  // events are. It never enters the stream: its key is below zero (the first -1, then counting
  // down), it takes no seq, no budget and is never sent. Outcome kStored with that key, or
  // kDuplicate with the key of an earlier refusal under the same id.
  std::string refused_reason;
};

// What an event counts against storage.max_bytes: its columns (the id twice, in the row and in
// the unique index) plus 40 bytes for record and index headers. Pending events and the delivered
// history kept for de-duplication share the budget; history is pruned first to make room.
int64_t counted_size(const AppendRequest& r);

struct AppendResult {
  enum class Outcome { kStored, kDuplicate, kOutboxFull, kStorageError };
  Outcome outcome = Outcome::kStorageError;
  int64_t seq = 0;      // kStored: the new seq; kDuplicate: the seq first given to this id
  std::string message;  // for the two failures: what failed and what to do
};

struct StoredEvent {
  int64_t seq = 0;
  std::string id;
  std::string type;
  std::string occurred_at;
  int64_t received_ms = 0;
  std::string data;
  std::string trace_id;  // empty: none
  int contract_version = 0;  // 0: none
  // read_pending() only: the event was dead-lettered (reason and when) but the watermark has
  // not passed it yet; the hub gets a dead-letter notice for it instead of the event.
  std::string dead_reason;
  int64_t dead_ms = 0;
};

// The event a request stores under `seq`, field by field as its row holds it.
StoredEvent stored_event(int64_t seq, AppendRequest req);

// An outbox file found damaged or not ours at start and moved aside (storage/outbox_quarantine.h).
// Recorded in the fresh outbox's meta table, so it outlives restarts.
struct QuarantineIncident {
  std::string file;         // where the old file is now, kept byte for byte
  std::string reason;       // why it was moved aside
  int64_t at_ms = 0;        // when (Unix ms)
  std::string incarnation;  // the old file's incarnation, if it could still be read
};

struct OutboxStats {
  std::string incarnation;  // inspect() only
  std::optional<QuarantineIncident> quarantine;  // inspect() only
  int64_t next_seq = 1;
  int64_t delivered_seq = 0;  // watermark as persisted
  int64_t pending = 0;        // next_seq - 1 - delivered_seq
  int64_t pending_bytes = 0;  // counted_size() of the pending events
  std::optional<int64_t> oldest_pending_received_ms;
  int64_t stored_events = 0;  // pending plus kept history
  int64_t dead_letters = 0;
  int64_t dead_letters_pruned = 0;  // dropped over max_dead_letters or dead_letter_max_age, ever
  int64_t held_since_ms = 0;        // delivery held (edgesync outbox hold) since then; 0: not held
  int64_t dead_letters_last_day = 0;  // inspect() only: failed in the last 24 hours
};

// An event the hub refused for good (event.seq its place in the stream), or a request refused
// on arrival (event.seq < 0: AppendRequest::refused_reason).
struct DeadLetter {
  StoredEvent event;
  std::string reason;
  int64_t failed_ms = 0;
};

// A repair a technician asks for (edgesync dead-letters retry|purge, outbox hold|release), run by
// the outbox's writer between rounds: the one writer of the file, whether the agent runs it or
// the CLI opened the outbox itself with the agent stopped (the lock file keeps those apart).
struct RepairRequest {
  enum class Kind { kRetryDeadLetters, kPurgeDeadLetters, kHold, kRelease };
  Kind kind = Kind::kHold;
  // kRetryDeadLetters: these dead letters' seqs; empty means every dead letter.
  std::vector<int64_t> seqs;
  // kPurgeDeadLetters: dead letters that failed before this Unix time (ms) go.
  int64_t failed_before_ms = 0;
};
struct RepairResult {
  Status status;  // not ok: nothing was changed
  // kRetryDeadLetters: each dead letter put back, as (its old seq, the seq it is delivered
  // under now). The event keeps its id, type, times and data: the hub gets the same event.
  std::vector<std::pair<int64_t, int64_t>> retried;
  // Requested but left as they were, each "seq N: why".
  std::vector<std::string> skipped;
  int64_t purged = 0;         // kPurgeDeadLetters: how many went
  int64_t held_since_ms = 0;  // kHold: since when delivery is held (an earlier hold stays)
};

class Outbox {
 public:
  using AppendCallback = std::function<void(const AppendResult&)>;
  // Runs a completion on the owner's thread (the agent posts it to its io_context).
  using Dispatcher = std::function<void(std::function<void()>)>;

  struct Options {
    std::string path;
    int64_t max_bytes = int64_t{1} << 30;
    int64_t keep_delivered = 10000;
    std::chrono::milliseconds retry_after{2000};
    // A delivered watermark rides along with the next append round once it has waited this
    // long, and is written on its own (a commit and a sync of its own) after twice this with no
    // append round to take it. Not with every append: that would add a page to every commit.
    std::chrono::milliseconds watermark_flush{500};
    // The WAL is checkpointed into the database once it holds this many bytes of frames, by the
    // writer after it has sent a round's replies (not inside a commit, where SQLite's own
    // auto-checkpoint would make those replies wait). A checkpoint writes every page changed
    // since the last one once more; the longer the WAL, the more changes of the same page (the
    // right edge of the event table, the state row) it folds into one write.
    int64_t checkpoint_bytes = int64_t{8} << 20;
    size_t max_batch = 4096;
    // commit_queued() commits a lone event on the owner's thread, but once two producers' events
    // met in one round it leaves every commit to the writer thread for this long: with many
    // producers, parsing and replying overlap the writer's sync, which one thread cannot do.
    bool commit_lone_on_owner = true;
    std::chrono::milliseconds concurrency_hold{10};
    // Delivered history is deleted once this many rows beyond keep_delivered are due.
    int64_t prune_step = 1000;
    // Dead letters kept: the newest max_dead_letters, none older than dead_letter_max_age
    // (pruned when new ones are written, at open and after set_limits() lowers either). A hub
    // that refuses a common event would otherwise fill the disk with them, and then every
    // append would fail.
    int64_t max_dead_letters = 10000;
    std::chrono::seconds dead_letter_max_age{30 * 24 * 3600};
    std::string vfs;  // tests only: a fault-injecting SQLite VFS
  };

  // The Options a pushed configuration may change while the outbox runs (set_limits()). Every
  // field must be set: they replace the running values whole.
  struct Limits {
    int64_t max_bytes;
    int64_t keep_delivered;
    int64_t max_dead_letters;
    std::chrono::seconds dead_letter_max_age;
  };

  // Opens (creating and migrating as needed) and starts the writer thread.
  // `dispatch` runs append completions on the owner's thread.
  // An existing file that is damaged or not an outbox is moved aside first and a fresh outbox
  // started (storage/outbox_quarantine.h says exactly when); any other failure (I/O,
  // permissions, the file held by another agent: Unavailable) returns an error and leaves the
  // files as they were. The outbox holds `path`.lock for its lifetime.
  static Result<std::unique_ptr<Outbox>> open(const Options& options, Dispatcher dispatch);
  ~Outbox();  // close()

  // Called after each batch that stored at least one new event, once its completions were
  // dispatched: on the writer thread, or on the owner's thread when commit_queued() committed a
  // lone event there. It must only hand over (post to another thread), never block.
  // REQUIRES: set before the first append.
  void set_on_committed(std::function<void()> fn) { on_committed_ = std::move(fn); }

  // Any thread. The callback runs exactly once, through the dispatcher, after the event's
  // transaction committed (or failed). After close() it completes at once with kStorageError.
  void append(AppendRequest request, AppendCallback done) EXCLUDES(mu_);

  // Owner thread (the one the dispatcher runs completions on): the event loop's way to append.
  // append_deferred() queues without waking the writer; commit_queued(), called once after a
  // round of appends, commits them. A lone event while the writer is idle is committed right
  // here, its callback run before commit_queued() returns (no thread hand-off: the
  // single-producer case); anything else goes to the writer thread as with append().
  // commit_queued() never does slow storage work on the owner's thread: while storage is failed
  // (the reopen), or maintenance, dead letters, pruning to make room, a calibration of the
  // budget or a long watermark would come with the commit, the lone event goes to the writer.
  void append_deferred(AppendRequest request, AppendCallback done) EXCLUDES(mu_);
  void commit_queued() EXCLUDES(mu_);

  // Any thread (the publisher's): up to `limit` events with seq > after_seq, in seq order.
  // Events just committed are answered from memory (recent_events.h; nobody waits for its
  // lock). Otherwise the
  // query runs on the outbox's reader thread, at the agent's priority, while the caller waits:
  // SQLite's connections in one process share mutexes (the file's locks, the WAL index), and a
  // delivery thread below ingest's priority preempted while holding one stalled the ingest
  // thread's commits for as long as the scheduler kept it off the CPU (seconds in SCHED_IDLE).
  // `out` is cleared first; its capacity is reused.
  Status read_pending(int64_t after_seq, size_t limit, std::vector<StoredEvent>* out);
  // Any thread: how many read_pending() calls went to SQLite; the others were answered from
  // the events committed last, kept in memory (recent_events.h).
  uint64_t disk_reads() const { return disk_reads_.load(std::memory_order_relaxed); }

  // Any thread. Every event with seq <= `seq` has been delivered (or dead-lettered). Written
  // with the next append round once it has waited watermark_flush, on its own after twice
  // that, and at once with dead letters and at close. Lower values than before are ignored.
  // Takes the outbox's mutex only when the watermark was clean (about once per write of it),
  // so a delivery thread below ingest's priority, preempted here, rarely holds what ingest needs.
  void mark_delivered(int64_t seq) EXCLUDES(mu_);

  // Any thread. Moves the event to the dead-letter table with its reason; persisted in the
  // same transaction as the watermark that passes it, so it is never lost silently.
  void dead_letter(const StoredEvent& event, std::string reason) EXCLUDES(mu_);

  // Owner thread. Figures as of now (pending from the in-memory seq counter and watermark).
  OutboxStats stats() EXCLUDES(mu_);
  // Any thread, lock-free: the highest seq passed to mark_delivered() (or on disk at open).
  int64_t delivered_seq() const;
  // Any thread. The id this outbox file was created with (schema.h): with seq, the identity of
  // an event at the hub.
  const std::string& incarnation() const { return incarnation_; }
  // Any thread. The last quarantine recorded in this outbox (at this start or an earlier one),
  // if any: for the log, `edgesync status` and the hub's status message. Constant after open().
  const std::optional<QuarantineIncident>& quarantine() const { return quarantine_; }
  // Any thread. Set once SQLite reported the live file corrupt while running (read_pending or
  // a commit): what failed. Delivery from the damaged part cannot go on; the file is
  // quarantined at the next start.
  std::optional<std::string> corruption_seen() const EXCLUDES(mu_);
  // Any thread. The last commit failed and the outbox refuses appends until its reopen
  // succeeds (storage_error replies meanwhile).
  bool storage_failed() const EXCLUDES(mu_);

  // Any thread: new limits for the budget, delivered history and dead letters. They take effect
  // at the writer's next round (the writer holds the only copy it uses); nothing stored is lost:
  // a smaller max_bytes refuses new events until there is room again, it never deletes pending
  // events. Delivered history beyond a smaller keep_delivered, and dead letters beyond smaller
  // bounds, are pruned by the writer thread soon after, in slices, never on the owner's thread.
  void set_limits(const Limits& limits) EXCLUDES(mu_);

  // Any thread: runs `request` on the writer thread after the current round, in a transaction
  // of its own, and completes through the dispatcher. Dead letters come back as new pending
  // events (the watermark stays gap-free); only those whose notice the watermark has passed
  // can be retried or purged: one still being announced is skipped with that reason.
  void repair(RepairRequest request, std::function<void(const RepairResult&)> done)
      EXCLUDES(mu_);
  // Any thread, lock-free: since when delivery is held (persisted: a hold outlives restarts),
  // 0 when it is not. The publisher sends nothing new while it is set.
  int64_t held_since_ms() const { return held_since_ms_.load(); }
  // Waits for queued appends to finish, writes the watermark, stops the writer. Idempotent.
  void close() EXCLUDES(mu_);

  // For the CLI: read-only figures from a database another process may be writing
  // (outbox_inspect.cc).
  static Result<OutboxStats> inspect(const std::string& path);
  static Status list(const std::string& path, bool pending_only, size_t limit,
                     std::vector<StoredEvent>* out, OutboxStats* stats);
  // When each dead letter failed (Unix ms, ascending), those at or after `since_ms`: the agent
  // seeds its "dead letters in the last 24 h" with them at start, so that its health verdict
  // and `edgesync status` (which counts from the file) agree after a restart.
  static Status dead_letter_times(const std::string& path, int64_t since_ms,
                                  std::vector<int64_t>* out);
  static Status list_dead_letters(const std::string& path, size_t limit,
                                  std::vector<DeadLetter>* out);

 private:
  struct Pending {
    AppendRequest request;
    AppendCallback done;
  };
  struct Repair {
    RepairRequest request;
    std::function<void(const RepairResult&)> done;
  };
  // Runs the queued repairs (writer thread, the token taken, `mu_` not held).
  void run_repairs(std::vector<Repair>& repairs) EXCLUDES(mu_);
  using Completion = std::pair<AppendCallback, AppendResult>;
  // The write connection and what goes with it (outbox_writer.h); used only by whoever holds
  // the writer token (writer_busy_).
  struct Writer;
  struct Round {
    bool empty = false;    // nothing was due: no transaction
    bool writable = true;  // false: storage is failed, the round's appends were refused
  };

  Outbox(const Options& options, Dispatcher dispatch);
  void enqueue(AppendRequest request, AppendCallback done, bool wake_writer) EXCLUDES(mu_);
  void writer_loop() EXCLUDES(mu_);
  bool writer_has_work() const REQUIRES(mu_);
  void reader_loop() EXCLUDES(read_mu_);
  // Whether commit_queued() may commit the one queued event on the owner's thread: nothing
  // slow is due or would come with it (see commit_queued()).
  bool lone_commit_is_cheap(std::chrono::steady_clock::time_point now) REQUIRES(mu_);
  // One round: what is queued (up to max_batch), dead letters and the watermark when due, in
  // one transaction. REQUIRES: `mu_` held and the writer token taken; returns with `mu_` held
  // (released meanwhile). Completions go through the dispatcher, or run here when called on the
  // owner's thread.
  Round run_round(bool on_owner_thread) REQUIRES(mu_);
  // Hands the round's stored events to recent_ (their strings moved out of `batch`).
  // REQUIRES: the writer token; `mu_` not held.
  void keep_recent(std::vector<Pending>& batch, const std::vector<Completion>& results)
      EXCLUDES(mu_);
  // Runs the callbacks here (owner's thread) or through the dispatcher; empties `results`.
  void complete_all(std::vector<Completion>& results, bool on_owner_thread) EXCLUDES(mu_);
  // Deletes a slice of delivered history when due. REQUIRES: the writer token, `mu_` not held.
  void prune(Writer& w) EXCLUDES(mu_);
  // Records the first corruption met while running (logged by the caller's caller).
  void note_corruption(const std::string& what) EXCLUDES(mu_);
  // Moves acks taken without the mutex (acked_) into watermark_. Returns true when the
  // watermark just became dirty (the writer must be woken to write it in time).
  bool fold_acks() REQUIRES(mu_);
  // After a round: publishes the persisted watermark to mark_delivered(), then folds.
  void note_watermark_persisted() REQUIRES(mu_);
  // Hands limits from set_limits() to the writer and to budget_seen_, and marks the maintenance
  // they make due. REQUIRES: `mu_` held and the writer token taken by the caller or free (so
  // nobody else is using *writer_).
  void apply_pending_limits() REQUIRES(mu_);

  const Options options_;
  Dispatcher dispatch_;
  std::string incarnation_;  // set by open(), then constant
  std::optional<QuarantineIncident> quarantine_;  // set by open(), then constant
  std::unique_ptr<platform::FileLock> lock_;      // set by open(): one agent per outbox
  std::function<void()> on_committed_;

  std::unique_ptr<PendingReader> reader_;  // used by the reader thread only
  // The events committed last, for read_pending() without SQLite (recent_events.h). Filled by
  // whoever holds the writer token, after a round's commit and before on_committed_.
  std::unique_ptr<RecentEvents> recent_;
  std::atomic<uint64_t> disk_reads_{0};

  // One read at a time, handed to the reader thread. The caller waits for `done`.
  struct ReadRequest {
    int64_t after_seq = 0;
    size_t limit = 0;
    std::vector<StoredEvent>* out = nullptr;
    Status status;
    bool done = false;
  };
  platform::Mutex read_mu_;  // never taken by the ingest thread's appends
  platform::CondVar read_wake_;
  platform::CondVar read_done_;
  ReadRequest* read_request_ GUARDED_BY(read_mu_) = nullptr;
  bool read_stop_ GUARDED_BY(read_mu_) = false;
  std::thread read_thread_;

  // The ingest thread takes mu_ for every append, so every holder keeps it briefly: no SQLite
  // and no large copies under it. A thread below ingest's priority (delivery) that is
  // preempted while holding it stalls ingest until the scheduler runs it again.
  mutable platform::Mutex mu_;
  platform::CondVar wake_;  // the writer thread waits on it, with mu_
  std::vector<Pending> queue_ GUARDED_BY(mu_);
  std::vector<DeadLetter> dead_letter_queue_ GUARDED_BY(mu_);
  std::vector<Repair> repair_queue_ GUARDED_BY(mu_);
  std::atomic<int64_t> held_since_ms_{0};
  Watermark watermark_ GUARDED_BY(mu_);
  // The ack path without mu_ (mark_delivered()): the highest seq acked, and the watermark as
  // last persisted. While acked_ is ahead of acked_persisted_ the watermark is dirty and the
  // writer folds acked_ into watermark_ before it decides what to write.
  std::atomic<int64_t> acked_{0};
  std::atomic<int64_t> acked_persisted_{0};
  int64_t next_seq_seen_ GUARDED_BY(mu_) = 1;  // for stats()
  OutboxBudget budget_seen_ GUARDED_BY(mu_);   // the writer's, after each round
  bool closing_ GUARDED_BY(mu_) = false;
  std::optional<std::string> corruption_ GUARDED_BY(mu_);
  // The writer token: whoever sets it (the writer thread, or the owner thread committing a lone
  // event) may use *writer_ until it clears it.
  bool writer_busy_ GUARDED_BY(mu_) = false;
  bool writer_wanted_ GUARDED_BY(mu_) = false;    // the writer waits for the token
  bool maintenance_due_ GUARDED_BY(mu_) = false;  // a prune or checkpoint is due
  // From set_limits(), until whoever takes the writer token next applies them.
  std::optional<Limits> limits_pending_ GUARDED_BY(mu_);
  // New limits left more history beyond keep_delivered than one prune slice: the writer keeps
  // pruning slice after slice (between rounds) instead of one slice per append round.
  bool prune_to_limits_ GUARDED_BY(mu_) = false;
  // The writer failed (a commit, sync, prune or checkpoint) and reopens on its next round:
  // that round is the writer thread's, never the owner's.
  bool storage_failed_ GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point concurrent_until_ GUARDED_BY(mu_);
  // Set once the writer thread holds mu_ for the first time: open() returns only then, so the
  // first deferred append meets a writer that is already waiting (not one still starting up,
  // which would take it from the owner thread).
  bool writer_started_ GUARDED_BY(mu_) = false;
  platform::CondVar started_;

  std::unique_ptr<Writer> writer_;
  std::thread thread_;
};

}  // namespace edgesync::storage
