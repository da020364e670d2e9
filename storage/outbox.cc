#include "storage/outbox.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>

#include "platform/threads.h"
#include "storage/schema.h"

namespace edgesync::storage {
namespace {

using Clock = std::chrono::steady_clock;

// counted_size() for rows already stored; both must agree so that the figure is the same after
// a restart (ids, types and timestamps are ASCII: length() counts their bytes).
#define EDGESYNC_STORED_SIZE_SQL \
  "(length(data) + 2 * length(id) + length(type) + coalesce(length(occurred_at), 0) + 40)"

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void read_event(const Statement& st, StoredEvent* e) {
  e->seq = st.column_int64(0);
  e->id.assign(st.column_text(1));
  e->type.assign(st.column_text(2));
  e->occurred_at.assign(st.column_text(3));
  e->received_ms = st.column_int64(4);
  e->data.assign(st.column_blob(5));
}

Result<std::unique_ptr<Database>> open_read_only(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::not_found("no outbox database at " + path +
                             " (has the agent run with this config?)");
  }
  Database::Options o;
  o.read_only = true;
  auto db = Database::open(path, o);
  if (!db) return db.status();
  Status s = check_schema_readable(**db);
  if (!s) return s;
  return db;
}

Result<OutboxStats> compute_stats(Database& db) {
  OutboxStats st;
  // One read transaction so every figure comes from the same snapshot.
  Status s = db.exec("BEGIN");
  if (!s) return s;
  auto done = [&db](Status status) -> Result<OutboxStats> {
    db.exec("COMMIT");
    return status;
  };
  auto delivered = db.query_int64("SELECT value FROM state WHERE key = 'delivered_seq'", 0);
  if (!delivered) return done(delivered.status());
  auto max_seq = db.query_int64("SELECT max(seq) FROM events", 0);
  if (!max_seq) return done(max_seq.status());
  auto stored = db.query_int64("SELECT count(*) FROM events", 0);
  if (!stored) return done(stored.status());
  auto dead = db.query_int64("SELECT count(*) FROM dead_letters", 0);
  if (!dead) return done(dead.status());
  st.delivered_seq = *delivered;
  st.next_seq = std::max(*max_seq, *delivered) + 1;
  st.pending = st.next_seq - 1 - st.delivered_seq;
  st.stored_events = *stored;
  st.dead_letters = *dead;

  auto q = db.prepare(
      "SELECT coalesce(sum(" EDGESYNC_STORED_SIZE_SQL "), 0), min(received_ms) FROM events "
      "WHERE seq > ?");
  if (!q) return done(q.status());
  (*q)->bind(1, st.delivered_seq);
  auto row = (*q)->step();
  if (!row) return done(row.status());
  if (*row) {
    st.pending_bytes = (*q)->column_int64(0);
    if (!(*q)->column_is_null(1)) st.oldest_pending_received_ms = (*q)->column_int64(1);
  }
  q->reset();
  db.exec("COMMIT");
  return st;
}

}  // namespace

int64_t counted_size(const AppendRequest& r) {
  constexpr int64_t kRowOverhead = 40;  // record header, rowid, received_ms, index entry header
  return static_cast<int64_t>(r.data.size() + 2 * r.id.size() + r.type.size() +
                              r.occurred_at.size()) +
         kRowOverhead;
}

// Everything here is touched by the writer thread only (and by open() before it starts).
struct Outbox::Writer {
  std::unique_ptr<Database> db;
  std::unique_ptr<Statement> insert, find_id, bytes_between, sizes_between, set_delivered,
      insert_dead, prune;
  int64_t next_seq = 1;
  int64_t delivered = 0;
  int64_t pending_bytes = 0;    // counted_size() of the events after `delivered`
  int64_t history_bytes = 0;    // ... of the delivered events still kept (pruned_through, delivered]
  int64_t pruned_through = 0;  // every seq at or below is gone from `events`
  bool failed = false;
  std::string failure;
  Clock::time_point failed_at;
  // Scratch reused by every round.
  std::vector<Pending> batch;
  std::vector<DeadLetter> dead;
  std::vector<AppendResult> outcomes;
  std::vector<Completion> results;

  Status open(const Options& o) {
    close();
    Database::Options dbo;
    dbo.vfs = o.vfs;
    auto opened = Database::open(o.path, dbo);
    if (!opened) return opened.status();
    auto& d = **opened;
    auto mode = d.prepare("PRAGMA journal_mode=WAL");
    if (!mode) return mode.status();
    auto row = (*mode)->step();
    if (!row) return row.status();
    if (!*row || (*mode)->column_text(0) != "wal") {
      return Status::io_error("cannot switch " + o.path + " to WAL mode");
    }
    mode->reset();
    // FULL: the WAL is synced at every commit, so a commit that returned survives power loss.
    // No "PRAGMA wal_autocheckpoint" here: it would replace the WAL hook Database installed,
    // which already turned SQLite's auto-checkpoint off (see checkpoint()).
    // cache_size: 1 MiB (SQLite's default is 2): appends touch the right edge of the seq
    // B-tree and a few id-index leaves; the rest of the RSS budget is the agent's.
    for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA journal_size_limit=67108864",
                               "PRAGMA cache_size=-1024"}) {
      Status s = d.exec(pragma);
      if (!s) return s;
    }
    Status s = migrate_schema(d);
    if (!s) return s;

#define PREPARE(field, sql)                \
  {                                        \
    auto p = d.prepare(sql);               \
    if (!p) return p.status();             \
    field = std::move(*p);                 \
  }
    PREPARE(insert,
            "INSERT INTO events(seq, id, type, occurred_at, received_ms, data) "
            "VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING");
    PREPARE(find_id, "SELECT seq FROM events WHERE id = ?");
    PREPARE(bytes_between, "SELECT coalesce(sum(" EDGESYNC_STORED_SIZE_SQL
                           "), 0) FROM events WHERE seq > ? AND seq <= ?");
    PREPARE(sizes_between, "SELECT seq, " EDGESYNC_STORED_SIZE_SQL
                           " FROM events WHERE seq > ? AND seq <= ? ORDER BY seq");
    PREPARE(set_delivered, "UPDATE state SET value = ? WHERE key = 'delivered_seq'");
    PREPARE(insert_dead,
            "INSERT OR IGNORE INTO dead_letters(seq, id, type, occurred_at, received_ms, data, "
            "reason, failed_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
    PREPARE(prune, "DELETE FROM events WHERE seq <= ?");
#undef PREPARE

    auto delivered_r = d.query_int64("SELECT value FROM state WHERE key = 'delivered_seq'", 0);
    if (!delivered_r) return delivered_r.status();
    auto max_seq = d.query_int64("SELECT max(seq) FROM events", 0);
    if (!max_seq) return max_seq.status();
    auto min_seq = d.query_int64("SELECT min(seq) FROM events", 0);
    if (!min_seq) return min_seq.status();
    delivered = *delivered_r;
    next_seq = std::max(*max_seq, delivered) + 1;
    pruned_through = *min_seq > 0 ? *min_seq - 1 : delivered;
    auto pending = sum_between(delivered, next_seq);
    if (!pending) return pending.status();
    pending_bytes = *pending;
    auto history = sum_between(pruned_through, delivered);
    if (!history) return history.status();
    history_bytes = *history;
    db = std::move(*opened);
    failed = false;
    return Status::ok();
  }

  void close() {
    insert.reset();
    find_id.reset();
    bytes_between.reset();
    sizes_between.reset();
    set_delivered.reset();
    insert_dead.reset();
    prune.reset();
    db.reset();
  }

  void fail(const Status& s) {
    if (db && db->in_transaction()) db->exec("ROLLBACK");
    // Drop the connection: after a failed sync the page cache cannot be trusted, and a fresh
    // connection makes SQLite re-read the WAL and discard the uncommitted transaction.
    close();
    failed = true;
    failure = s.to_string();
    failed_at = Clock::now();
  }

  // Sum of counted_size() over seq in (after, through].
  Result<int64_t> sum_between(int64_t after, int64_t through) {
    bytes_between->bind(1, after);
    bytes_between->bind(2, through);
    auto row = bytes_between->step();
    int64_t sum = row && *row ? bytes_between->column_int64(0) : 0;
    bytes_between->reset();
    if (!row) return row.status();
    return sum;
  }

  // Inside a transaction: deletes the oldest kept delivered events until at least `want` bytes
  // are freed (or the history is gone). Pending events are never touched.
  Status prune_history_for(int64_t want) {
    sizes_between->bind(1, pruned_through);
    sizes_between->bind(2, delivered);
    int64_t freed = 0, through = pruned_through;
    Status s = Status::ok();
    while (freed < want) {
      auto row = sizes_between->step();
      if (!row) {
        s = row.status();
        break;
      }
      if (!*row) break;
      through = sizes_between->column_int64(0);
      freed += sizes_between->column_int64(1);
    }
    sizes_between->reset();
    if (!s || through == pruned_through) return s;
    prune->bind(1, through);
    s = prune->run();
    if (!s) return s;
    pruned_through = through;
    history_bytes -= freed;
    return Status::ok();
  }

  Result<int64_t> lookup(const std::string& id) {
    find_id->bind_text(1, id);
    auto row = find_id->step();
    int64_t seq = row && *row ? find_id->column_int64(0) : 0;
    find_id->reset();
    if (!row) return row.status();
    return seq;
  }
};

Outbox::Outbox(const Options& options, Dispatcher dispatch)
    : options_(options), dispatch_(std::move(dispatch)), writer_(std::make_unique<Writer>()) {}

Result<std::unique_ptr<Outbox>> Outbox::open(const Options& options, Dispatcher dispatch) {
  std::unique_ptr<Outbox> box(new Outbox(options, std::move(dispatch)));
  Status s = box->writer_->open(options);
  if (!s) return s;
  Database::Options ro;
  ro.vfs = options.vfs;
  ro.create = false;
  auto reader = Database::open(options.path, ro);
  if (!reader) return reader.status();
  // A small page cache: the reader walks the pending events once, front to back, and SQLite
  // drops a reader's cache whenever the writer has committed since, so a big one only costs RSS.
  Status cs = (*reader)->exec("PRAGMA cache_size=-256");
  if (!cs) return cs;
  auto stmt = (*reader)->prepare(
      "SELECT seq, id, type, occurred_at, received_ms, data FROM events "
      "WHERE seq > ? ORDER BY seq LIMIT ?");
  if (!stmt) return stmt.status();
  box->reader_ = std::move(*reader);
  box->read_stmt_ = std::move(*stmt);
  box->delivered_wanted_ = box->writer_->delivered;
  box->delivered_persisted_ = box->writer_->delivered;
  box->next_seq_seen_ = box->writer_->next_seq;
  box->pending_bytes_seen_ = box->writer_->pending_bytes;
  box->history_bytes_seen_ = box->writer_->history_bytes;
  box->thread_ = std::thread([b = box.get()] {
    platform::set_current_thread_name("outbox-writer");
    b->writer_loop();
  });
  {
    std::unique_lock<std::mutex> lock(box->mu_);
    box->started_.wait(lock, [b = box.get()] { return b->writer_started_; });
  }
  return box;
}

Outbox::~Outbox() { close(); }

void Outbox::append(AppendRequest request, AppendCallback done) {
  enqueue(std::move(request), std::move(done), /*wake_writer=*/true);
}

void Outbox::append_deferred(AppendRequest request, AppendCallback done) {
  enqueue(std::move(request), std::move(done), /*wake_writer=*/false);
}

void Outbox::enqueue(AppendRequest request, AppendCallback done, bool wake_writer) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closing_) {
      bool was_empty = queue_.empty();
      queue_.push_back({std::move(request), std::move(done)});
      if (wake_writer && was_empty) wake_.notify_one();
      return;
    }
  }
  AppendResult r;
  r.message = "the agent is shutting down; resend the event after it restarts";
  dispatch_([done = std::move(done), r] { done(r); });
}

void Outbox::mark_delivered(int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seq <= delivered_wanted_) return;
  bool was_clean = delivered_wanted_ == delivered_persisted_;
  delivered_wanted_ = seq;
  if (was_clean) {
    watermark_dirty_since_ = Clock::now();
    wake_.notify_one();
  }
}

void Outbox::dead_letter(const StoredEvent& event, std::string reason) {
  std::lock_guard<std::mutex> lock(mu_);
  dead_letter_queue_.push_back({event, std::move(reason), now_ms()});
  wake_.notify_one();
}

int64_t Outbox::delivered_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delivered_wanted_;
}

Status Outbox::read_pending(int64_t after_seq, size_t limit, std::vector<StoredEvent>* out) {
  read_stmt_->bind(1, after_seq);
  read_stmt_->bind(2, static_cast<int64_t>(limit));
  // Reuse the strings already in `out` so a steady stream allocates nothing new.
  size_t n = 0;
  Status status;
  while (true) {
    auto row = read_stmt_->step();
    if (!row) {
      status = row.status();
      n = 0;
      break;
    }
    if (!*row) break;
    if (n == out->size()) out->emplace_back();
    read_event(*read_stmt_, &(*out)[n]);
    ++n;
  }
  out->resize(n);
  read_stmt_->reset();
  return status;
}

OutboxStats Outbox::stats() {
  OutboxStats st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    st.next_seq = next_seq_seen_;
    st.delivered_seq = delivered_wanted_;
    st.pending_bytes = pending_bytes_seen_;
  }
  st.pending = st.next_seq - 1 - st.delivered_seq;
  std::vector<StoredEvent> first;
  if (st.pending > 0 && read_pending(st.delivered_seq, 1, &first) && !first.empty()) {
    st.oldest_pending_received_ms = first.front().received_ms;
  }
  return st;
}

void Outbox::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  read_stmt_.reset();
  reader_.reset();
}

// One transaction for the whole round: appends, dead letters, watermark. On failure nothing of
// it is on disk and the writer's counters are as they were.
Status Outbox::commit(Writer& w, std::vector<Pending>& batch, std::vector<DeadLetter>& dead,
                      int64_t watermark, std::vector<AppendResult>* outcomes) {
  const int64_t seq_before = w.next_seq;
  const int64_t bytes_before = w.pending_bytes;
  const int64_t history_before = w.history_bytes;
  const int64_t pruned_before = w.pruned_through;
  const int64_t delivered_before = w.delivered;
  Status s = w.db->exec("BEGIN IMMEDIATE");
  // The watermark first: room freed by deliveries counts for this round's appends.
  int64_t freed = 0;
  if (s && watermark > w.delivered) {
    auto moved = w.sum_between(w.delivered, watermark);
    if (moved) freed = *moved;
    if (!moved) s = moved.status();
    if (s) {
      w.set_delivered->bind(1, watermark);
      s = w.set_delivered->run();
    }
    if (s) {
      w.delivered = watermark;
      w.pending_bytes -= freed;
      w.history_bytes += freed;
    }
  }
  for (size_t i = 0; s && i < batch.size(); ++i) {
    const AppendRequest& req = batch[i].request;
    AppendResult& r = outcomes->emplace_back();
    const int64_t size = counted_size(req);
    if (w.pending_bytes + w.history_bytes + size > options_.max_bytes) {
      auto existing = w.lookup(req.id);
      if (!existing) {
        s = existing.status();
        break;
      }
      if (*existing > 0) {  // a resubmission is a duplicate, full or not
        r.outcome = AppendResult::Outcome::kDuplicate;
        r.seq = *existing;
        continue;
      }
      // Over budget: delivered history gives way first (a sixty-fourth of the budget more than
      // this event needs, so that it happens rarely); only when pending events alone fill the
      // budget is the event refused.
      if (w.history_bytes > 0 && w.pending_bytes + size <= options_.max_bytes) {
        const int64_t over = w.pending_bytes + w.history_bytes + size - options_.max_bytes;
        s = w.prune_history_for(over + options_.max_bytes / 64);
        if (!s) break;
      }
      if (w.pending_bytes + w.history_bytes + size > options_.max_bytes) {
        r.outcome = AppendResult::Outcome::kOutboxFull;
        r.message = "outbox full: " + std::to_string(w.pending_bytes) +
                    " bytes wait for the hub (storage.max_bytes " +
                    std::to_string(options_.max_bytes) +
                    "); retry later, the agent keeps delivering";
        continue;
      }
    }
    Statement& ins = *w.insert;
    ins.bind(1, w.next_seq);
    ins.bind_text(2, req.id);
    ins.bind_text(3, req.type);
    if (req.occurred_at.empty()) {
      ins.bind_null(4);
    } else {
      ins.bind_text(4, req.occurred_at);
    }
    ins.bind(5, req.received_ms);
    ins.bind_blob(6, req.data);
    s = ins.run();
    if (!s) break;
    if (w.db->changes() == 1) {
      r.outcome = AppendResult::Outcome::kStored;
      r.seq = w.next_seq++;
      w.pending_bytes += size;
    } else {
      auto existing = w.lookup(req.id);
      if (!existing) {
        s = existing.status();
      } else {
        r.outcome = AppendResult::Outcome::kDuplicate;
        r.seq = *existing;
      }
    }
  }
  for (size_t i = 0; s && i < dead.size(); ++i) {
    const DeadLetter& d = dead[i];
    Statement& st = *w.insert_dead;
    st.bind(1, d.event.seq);
    st.bind_text(2, d.event.id);
    st.bind_text(3, d.event.type);
    if (d.event.occurred_at.empty()) {
      st.bind_null(4);
    } else {
      st.bind_text(4, d.event.occurred_at);
    }
    st.bind(5, d.event.received_ms);
    st.bind_blob(6, d.event.data);
    st.bind_text(7, d.reason);
    st.bind(8, d.failed_ms);
    s = st.run();
  }
  if (s) s = w.db->exec("COMMIT");
  if (!s) {
    w.next_seq = seq_before;
    w.pending_bytes = bytes_before;
    w.history_bytes = history_before;
    w.pruned_through = pruned_before;
    w.delivered = delivered_before;
    outcomes->clear();
    return s;
  }
  return Status::ok();
}

// Deletes kept history beyond keep_delivered. Runs after the round's replies went out, only once
// at least prune_step rows are due (so its cost is shared by many events), and a slice at a time
// so no transaction holds the writer for long. It commits without its own sync: losing a prune
// in a crash only brings back delivered rows, and the next FULL commit syncs it with its own.
bool Outbox::prune_due(const Writer& w) const {
  const int64_t step = std::max<int64_t>(options_.prune_step, 1);
  return w.db && w.delivered - options_.keep_delivered - w.pruned_through >= step;
}

void Outbox::prune(Writer& w) {
  if (!prune_due(w)) return;
  const int64_t step = std::max<int64_t>(options_.prune_step, 1);
  bool producers_waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    producers_waiting = !queue_.empty();
  }
  // Waiting producers' acks wait for this delete: keep it short then (a 5,000-row slice after a
  // burst cost single-producer acks tens of milliseconds); when idle, take a long one.
  int64_t slice = producers_waiting ? std::min<int64_t>(step, 256) : std::max<int64_t>(5 * step, 2000);
  int64_t target = std::min(w.delivered - options_.keep_delivered, w.pruned_through + slice);
  auto freed = w.sum_between(w.pruned_through, target);
  Status s = freed.status();
  if (s) s = w.db->exec("PRAGMA synchronous=NORMAL");
  if (s) {
    w.prune->bind(1, target);
    s = w.prune->run();
  }
  Status restore = w.db->exec("PRAGMA synchronous=FULL");
  if (s) s = restore;
  if (s) {
    w.pruned_through = target;
    w.history_bytes -= *freed;
  } else {
    w.fail(s);
  }
}

// Copies the WAL back into the database once it has grown past checkpoint_frames. PASSIVE: it
// never waits for readers (the publisher, the CLI); what it cannot copy now waits for the next.
bool Outbox::checkpoint_due(const Writer& w) const {
  return w.db && w.db->wal_frames() >= options_.checkpoint_frames;
}

void Outbox::checkpoint(Writer& w) {
  if (!checkpoint_due(w)) return;
  Status s = w.db->exec("PRAGMA wal_checkpoint(PASSIVE)");
  if (!s) w.fail(s);
}

void Outbox::complete_all(std::vector<Completion>& results, bool on_owner_thread) {
  if (results.empty()) return;
  if (on_owner_thread) {
    for (auto& [done, r] : results) done(r);
    results.clear();
    return;
  }
  auto shared = std::make_shared<std::vector<Completion>>(std::move(results));
  results.clear();
  dispatch_([shared] {
    for (auto& [done, r] : *shared) done(r);
  });
}

Outbox::Round Outbox::run_round(std::unique_lock<std::mutex>& lock, bool on_owner_thread) {
  Writer& w = *writer_;
  Round round;
  std::vector<Pending>& batch = w.batch;
  std::vector<DeadLetter>& dead = w.dead;
  batch.clear();
  dead.clear();
  if (queue_.size() <= options_.max_batch) {
    batch.swap(queue_);
  } else {
    auto split = queue_.begin() + options_.max_batch;
    batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(split));
    queue_.erase(queue_.begin(), split);
  }
  dead.swap(dead_letter_queue_);
  int64_t watermark = delivered_persisted_;
  if (delivered_wanted_ > delivered_persisted_) {
    int64_t batch_bytes = 0;
    for (const auto& p : batch) batch_bytes += counted_size(p.request);
    // Written when due, when closing, with dead letters, and when the room it frees may be
    // needed by this round's appends.
    bool due = Clock::now() >= watermark_dirty_since_ + options_.watermark_flush;
    if (due || closing_ || !dead.empty() ||
        pending_bytes_seen_ + history_bytes_seen_ + batch_bytes > options_.max_bytes) {
      watermark = delivered_wanted_;
    }
  }
  if (batch.empty() && dead.empty() && watermark == delivered_persisted_) {
    round.empty = true;
    return round;
  }
  const bool tried_watermark = watermark > delivered_persisted_;
  lock.unlock();

  std::vector<Completion>& results = w.results;
  results.clear();
  std::vector<AppendResult>& outcomes = w.outcomes;
  outcomes.clear();

  bool writable = true;
  if (w.failed) {
    if (Clock::now() - w.failed_at < options_.retry_after) {
      writable = false;
    } else if (Status s = w.open(options_); !s) {
      w.fail(s);
      writable = false;
    }
  }
  bool stored_any = false;
  if (writable) {
    Status s = commit(w, batch, dead, watermark, &outcomes);
    if (s) {
      for (const auto& r : outcomes) stored_any |= r.outcome == AppendResult::Outcome::kStored;
    } else {
      w.fail(s);
      writable = false;
    }
  }
  if (writable) {
    for (size_t i = 0; i < batch.size(); ++i) {
      results.emplace_back(std::move(batch[i].done), std::move(outcomes[i]));
    }
  } else {
    // Nothing of this round is on disk. Appends fail now (the producer decides whether to
    // retry); dead letters wait for the next attempt, the watermark stays in memory.
    fail_all(batch, w.failure, &results);
  }
  const bool maintenance = writable && (prune_due(w) || checkpoint_due(w));

  lock.lock();
  if (!writable) {
    for (auto& d : dead) dead_letter_queue_.push_back(std::move(d));
  }
  next_seq_seen_ = w.next_seq;
  pending_bytes_seen_ = w.pending_bytes;
  history_bytes_seen_ = w.history_bytes;
  if ((tried_watermark || !writable) && delivered_wanted_ > w.delivered) {
    // Newer acks came in meanwhile, or storage is down: wait a whole interval again
    // rather than spin.
    watermark_dirty_since_ = Clock::now();
  }
  delivered_persisted_ = w.delivered;
  maintenance_due_ = maintenance_due_ || maintenance;
  lock.unlock();
  complete_all(results, on_owner_thread);
  if (stored_any && on_committed_) on_committed_();
  batch.clear();
  dead.clear();
  lock.lock();
  round.writable = writable;
  return round;
}

void Outbox::commit_queued() {
  std::unique_lock<std::mutex> lock(mu_);
  if (queue_.empty()) return;
  const auto now = Clock::now();
  if (queue_.size() > 1) concurrent_until_ = now + options_.concurrency_hold;
  if (writer_busy_) return;  // the writer thread takes the queue when it is done
  // Not while the writer waits for the token (for maintenance or the watermark): the owner's
  // next round could start before the writer wakes, again and again.
  const bool lone = options_.commit_lone_on_owner && queue_.size() == 1 &&
                    now >= concurrent_until_ && !closing_ && !writer_wanted_ &&
                    !maintenance_due_;
  if (!lone) {
    wake_.notify_one();
    return;
  }
  writer_busy_ = true;
  run_round(lock, /*on_owner_thread=*/true);
  writer_busy_ = false;
  if (writer_wanted_ || maintenance_due_ || !queue_.empty() || !dead_letter_queue_.empty()) {
    wake_.notify_one();
  }
}

void Outbox::writer_loop() {
  Writer& w = *writer_;
  std::unique_lock<std::mutex> lock(mu_);
  writer_started_ = true;
  started_.notify_all();  // open() proceeds once this thread waits below and so releases mu_
  auto work = [this] {
    return !queue_.empty() || !dead_letter_queue_.empty() || closing_ || maintenance_due_;
  };
  auto dirty = [this] { return delivered_wanted_ > delivered_persisted_; };
  while (true) {
    if (!work()) {
      if (dirty()) {
        // Only the watermark moved: let more acks gather before paying for a sync.
        wake_.wait_until(lock, watermark_dirty_since_ + options_.watermark_flush, work);
      } else {
        wake_.wait(lock, [&] { return work() || dirty(); });
        continue;
      }
    }
    if (writer_busy_) {
      // The owner thread is committing a lone event itself; it wakes us when it is done.
      writer_wanted_ = true;
      wake_.wait(lock, [this] { return !writer_busy_; });
      writer_wanted_ = false;
      continue;
    }
    writer_busy_ = true;
    const bool closing = closing_;
    Round round = run_round(lock, /*on_owner_thread=*/false);
    if (closing && round.empty) {
      writer_busy_ = false;
      break;
    }
    if (round.writable) {
      // After the round's replies went out, not inside its commit.
      maintenance_due_ = false;
      lock.unlock();
      prune(w);
      checkpoint(w);
      lock.lock();
      writer_busy_ = false;
      continue;
    }
    writer_busy_ = false;
    maintenance_due_ = false;
    if (closing_) {
      // Closing with the storage down: refuse what is still queued and stop. Unwritten dead
      // letters and watermark are not lost: those events are still pending on disk and are
      // sent (and refused) again after a restart.
      std::vector<Pending> rest;
      rest.swap(queue_);
      lock.unlock();
      std::vector<Completion> failed;
      fail_all(rest, w.failure, &failed);
      complete_all(failed, /*on_owner_thread=*/false);
      lock.lock();
      break;
    }
    // Nothing can be written before the retry time; new appends still get their refusal
    // at once. Without this wait, queued dead letters would make the loop spin.
    wake_.wait_until(lock, w.failed_at + options_.retry_after,
                     [this] { return !queue_.empty() || closing_; });
  }
}

void Outbox::fail_all(std::vector<Pending>& batch, const std::string& why,
                      std::vector<Completion>* out) {
  for (auto& p : batch) {
    AppendResult r;
    r.outcome = AppendResult::Outcome::kStorageError;
    r.message = "storage failed, event not stored (" + why +
                "); retry later, and check disk space and the agent log";
    out->emplace_back(std::move(p.done), std::move(r));
  }
}

Result<OutboxStats> Outbox::inspect(const std::string& path) {
  auto db = open_read_only(path);
  if (!db) return db.status();
  return compute_stats(**db);
}

Status Outbox::list(const std::string& path, bool pending_only, size_t limit,
                    std::vector<StoredEvent>* out, OutboxStats* stats) {
  auto db = open_read_only(path);
  if (!db) return db.status();
  auto st = compute_stats(**db);
  if (!st) return st.status();
  if (stats) *stats = *st;
  auto q = (*db)->prepare(
      "SELECT seq, id, type, occurred_at, received_ms, data FROM events WHERE seq > ? "
      "ORDER BY seq LIMIT ?");
  if (!q) return q.status();
  (*q)->bind(1, pending_only ? st->delivered_seq : 0);
  (*q)->bind(2, static_cast<int64_t>(limit));
  out->clear();
  while (true) {
    auto row = (*q)->step();
    if (!row) return row.status();
    if (!*row) break;
    out->emplace_back();
    read_event(**q, &out->back());
  }
  return Status::ok();
}

Status Outbox::list_dead_letters(const std::string& path, size_t limit,
                                 std::vector<DeadLetter>* out) {
  auto db = open_read_only(path);
  if (!db) return db.status();
  auto q = (*db)->prepare(
      "SELECT seq, id, type, occurred_at, received_ms, data, reason, failed_ms "
      "FROM dead_letters ORDER BY seq LIMIT ?");
  if (!q) return q.status();
  (*q)->bind(1, static_cast<int64_t>(limit));
  out->clear();
  while (true) {
    auto row = (*q)->step();
    if (!row) return row.status();
    if (!*row) break;
    out->emplace_back();
    read_event(**q, &out->back().event);
    out->back().reason.assign((*q)->column_text(6));
    out->back().failed_ms = (*q)->column_int64(7);
  }
  return Status::ok();
}

}  // namespace edgesync::storage
