#include "storage/outbox.h"

#include <algorithm>
#include <chrono>

#include "platform/clock.h"
#include "platform/threads.h"
#include "storage/event_rows.h"
#include "storage/outbox_quarantine.h"
#include "storage/outbox_writer.h"
#include "storage/pending_reader.h"
#include "storage/recent_events.h"

namespace edgesync::storage {
namespace {

using Clock = std::chrono::steady_clock;

// A lone event's commit on the owner's thread writes a dirty watermark along with it only if it
// passes at most this many events: the round sums their sizes (the room they free), which is
// the writer's work when a backlog was just delivered.
constexpr int64_t kOwnerWatermarkSpan = 1024;

}  // namespace

Outbox::Outbox(const Options& options, Dispatcher dispatch)
    : options_(options),
      dispatch_(std::move(dispatch)),
      recent_(std::make_unique<RecentEvents>()),
      watermark_(options.watermark_flush),
      writer_(std::make_unique<Writer>(options_)) {}

Result<std::unique_ptr<Outbox>> Outbox::open(const Options& options, Dispatcher dispatch) {
  std::unique_ptr<Outbox> box(new Outbox(options, std::move(dispatch)));
  // One agent per outbox: a second one must neither write it nor, finding it damaged, move it
  // away under the first.
  auto lock = platform::FileLock::acquire(options.path + ".lock");
  if (!lock) {
    if (lock.status().code() != Status::Code::kUnavailable) return lock.status();
    return Status::unavailable("the outbox " + options.path +
                               " is in use by another edgesync agent (" +
                               lock.status().message() + ")");
  }
  box->lock_ = std::move(*lock);
  // The quarantine decision is examine_outbox_file's alone (outbox_quarantine.h): only a file
  // SQLite calls damaged, or one that is not ours, is moved aside; any other error stops here.
  auto check = examine_outbox_file(options.path, options.vfs);
  if (!check) return check.status();
  std::optional<QuarantineIncident> incident;
  if (check->quarantine) {
    auto moved = quarantine_outbox_file(options.path, *check, platform::unix_ms());
    if (!moved) return moved.status();
    incident = std::move(*moved);
  }
  Status s = box->writer_->open();
  if (!s) return s;
  // If recording it fails, the incident is still reported for this run (and the kept file
  // stays where it is).
  if (incident && !record_quarantine(*box->writer_->db, *incident)) box->quarantine_ = incident;
  if (!box->quarantine_) box->quarantine_ = read_quarantine(*box->writer_->db);
  auto reader = PendingReader::open(options.path, options.vfs);
  if (!reader) return reader.status();
  box->reader_ = std::move(*reader);
  box->incarnation_ = box->writer_->incarnation;
  {
    platform::MutexLock lock(box->mu_);
    box->watermark_.reset(box->writer_->delivered);
    box->acked_ = box->writer_->delivered;
    box->acked_persisted_ = box->writer_->delivered;
    box->next_seq_seen_ = box->writer_->next_seq;
    box->budget_seen_ = box->writer_->budget;
  }
  box->held_since_ms_ = box->writer_->held_since_ms;
  box->thread_ = std::thread([b = box.get()] {
    platform::set_current_thread_name("outbox-writer");
    b->writer_loop();
  });
  box->read_thread_ = std::thread([b = box.get()] {
    platform::set_current_thread_name("outbox-reader");
    b->reader_loop();
  });
  {
    platform::MutexLock lock(box->mu_);
    while (!box->writer_started_) box->started_.wait(box->mu_);
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
  bool queued = false;
  bool wake = false;
  {
    platform::MutexLock lock(mu_);
    if (!closing_) {
      wake = wake_writer && queue_.empty();
      queue_.push_back({std::move(request), std::move(done)});
      queued = true;
    }
  }
  if (wake) wake_.signal();
  if (queued) return;
  AppendResult r;
  r.message = "the agent is shutting down; resend the event after it restarts";
  dispatch_([done = std::move(done), r] { done(r); });
}

bool Outbox::fold_acks() { return watermark_.mark(acked_.load()); }

void Outbox::mark_delivered(int64_t seq) {
  // The delivery thread's ack path, below ingest's priority: it takes mu_ only when the
  // watermark was clean and needs the writer woken (about once per watermark write). While it
  // is dirty, the writer reads acked_ when it writes it: a delivery thread preempted here holds
  // nothing that ingest waits for.
  int64_t before = acked_.load();
  while (seq > before && !acked_.compare_exchange_weak(before, seq)) {
  }
  if (seq <= before) return;  // lower values than before are ignored
  // acked_ was raised before acked_persisted_ is read, and the writer stores acked_persisted_
  // before it reads acked_ (both sequentially consistent): if this sees an older value, the
  // writer's fold after its store sees `seq`.
  if (before > acked_persisted_.load()) return;  // already dirty: the writer's next fold takes it
  bool wake;
  {
    platform::MutexLock lock(mu_);
    wake = fold_acks();
  }
  if (wake) wake_.signal();
}

void Outbox::dead_letter(const StoredEvent& event, std::string reason) {
  // Copied outside the lock: the delivery thread holds mu_ only for the push.
  DeadLetter d{event, std::move(reason), platform::unix_ms()};
  {
    platform::MutexLock lock(mu_);
    dead_letter_queue_.push_back(std::move(d));
  }
  wake_.signal();
}

int64_t Outbox::delivered_seq() const { return acked_.load(); }

void Outbox::repair(RepairRequest request, std::function<void(const RepairResult&)> done) {
  bool queued = false;
  {
    platform::MutexLock lock(mu_);
    if (!closing_) {
      repair_queue_.push_back({std::move(request), std::move(done)});
      queued = true;
    }
  }
  if (queued) {
    wake_.signal();
    return;
  }
  RepairResult r;
  r.status = Status::unavailable("the agent is shutting down; nothing was changed");
  dispatch_([done = std::move(done), r] { done(r); });
}

void Outbox::run_repairs(std::vector<Repair>& repairs) {
  Writer& w = *writer_;
  // A retried dead letter is committed under a new seq by this path, not by a round.
  recent_->forget();
  bool stored_any = false;
  for (auto& job : repairs) {
    RepairResult r = w.repair(job.request);
    stored_any = stored_any || !r.retried.empty();
    held_since_ms_ = w.held_since_ms;
    dispatch_([done = std::move(job.done), r = std::move(r)] { done(r); });
  }
  repairs.clear();
  {
    platform::MutexLock lock(mu_);
    next_seq_seen_ = w.next_seq;
    budget_seen_ = w.budget;
    storage_failed_ = w.failed;
  }
  // Dead letters put back are new pending events: the publisher must hear of them.
  if (stored_any && on_committed_) on_committed_();
}

Status Outbox::read_pending(int64_t after_seq, size_t limit, std::vector<StoredEvent>* out) {
  if (recent_->read(after_seq, limit, out)) return Status::ok();
  disk_reads_.fetch_add(1, std::memory_order_relaxed);
  ReadRequest req;
  req.after_seq = after_seq;
  req.limit = limit;
  req.out = out;
  {
    platform::MutexLock lock(read_mu_);
    while (read_request_ != nullptr && !read_stop_) read_done_.wait(read_mu_);
    if (read_stop_) return Status::unavailable("the outbox is closed");
    read_request_ = &req;
  }
  read_wake_.signal();
  {
    platform::MutexLock lock(read_mu_);
    while (!req.done) read_done_.wait(read_mu_);
  }
  Status s = req.status;
  if (s.code() == Status::Code::kCorruption) {
    note_corruption(s.to_string());
    return Status::corruption("the outbox " + options_.path + " is damaged after seq " +
                              std::to_string(after_seq) +
                              ": events past it cannot be delivered; the file is quarantined "
                              "(kept) at the next start of the agent (" + s.message() + ")");
  }
  return s;
}

void Outbox::note_corruption(const std::string& what) {
  platform::MutexLock lock(mu_);
  if (!corruption_) corruption_ = what;
}

std::optional<std::string> Outbox::corruption_seen() const {
  platform::MutexLock lock(mu_);
  return corruption_;
}

bool Outbox::storage_failed() const {
  platform::MutexLock lock(mu_);
  return storage_failed_;
}

OutboxStats Outbox::stats() {
  OutboxStats st;
  {
    platform::MutexLock lock(mu_);
    st.next_seq = next_seq_seen_;
    st.pending_bytes = budget_seen_.pending_bytes();
  }
  st.delivered_seq = acked_.load();
  st.pending = st.next_seq - 1 - st.delivered_seq;
  st.held_since_ms = held_since_ms_.load();
  std::vector<StoredEvent> first;
  if (st.pending > 0 && read_pending(st.delivered_seq, 1, &first) && !first.empty()) {
    st.oldest_pending_received_ms = first.front().received_ms;
  }
  return st;
}

void Outbox::set_limits(const Limits& limits) {
  {
    platform::MutexLock lock(mu_);
    limits_pending_ = limits;
  }
  // The writer applies them even when nothing else is due, and prunes what they make due.
  wake_.signal();
}

void Outbox::apply_pending_limits() {
  if (!limits_pending_) return;
  Writer& w = *writer_;
  w.set_limits(*limits_pending_);
  limits_pending_.reset();
  // Decisions taken under mu_ (lone_commit_is_cheap(), the watermark's room) use the new
  // max_bytes from now on, not only after the writer's next round.
  budget_seen_ = w.budget;
  // Pruning what the new limits make due is the writer thread's, after a round: the caller may
  // be the owner's thread, which does no slow work.
  prune_to_limits_ = w.prune_due();
  maintenance_due_ = maintenance_due_ || w.maintenance_due();
}

void Outbox::close() {
  {
    platform::MutexLock lock(mu_);
    closing_ = true;
  }
  wake_.signal();
  if (thread_.joinable()) thread_.join();
  recent_->forget();  // reads after close() fail as the reader's do
  std::vector<Repair> unrun;
  {
    platform::MutexLock lock(mu_);
    unrun.swap(repair_queue_);
  }
  for (auto& job : unrun) {
    RepairResult r;
    r.status = Status::unavailable("the agent is shutting down; nothing was changed");
    dispatch_([done = std::move(job.done), r] { done(r); });
  }
  {
    platform::MutexLock lock(read_mu_);
    read_stop_ = true;
  }
  read_wake_.signal();
  if (read_thread_.joinable()) read_thread_.join();
  reader_.reset();
}

void Outbox::reader_loop() {
  read_mu_.lock();
  while (true) {
    while (read_request_ == nullptr && !read_stop_) read_wake_.wait(read_mu_);
    if (read_request_ == nullptr) break;  // stopping, nobody waiting
    ReadRequest* r = read_request_;
    read_mu_.unlock();
    Status s = reader_->read(r->after_seq, r->limit, r->out);
    read_mu_.lock();
    r->status = std::move(s);
    r->done = true;
    read_request_ = nullptr;
    read_done_.signal_all();
  }
  read_mu_.unlock();
}

void Outbox::keep_recent(std::vector<Pending>& batch, const std::vector<Completion>& results) {
  auto is_event = [&results](size_t i) {
    const AppendResult& r = results[i].second;
    // Refusals are kept under keys below zero and never sent: not events of the stream.
    return r.outcome == AppendResult::Outcome::kStored && r.seq > 0;
  };
  // Only the newest that recent_ can keep: a burst's round is thousands.
  const size_t n = std::min(batch.size(), results.size());
  size_t first = n;
  for (size_t taken = 0; first > 0 && taken < recent_->max_events(); --first) {
    if (is_event(first - 1)) ++taken;
  }
  std::vector<RecentEvents::Entry> kept;
  kept.reserve(n - first);
  for (size_t i = first; i < n; ++i) {
    if (!is_event(i)) continue;
    kept.push_back(std::make_shared<const StoredEvent>(
        stored_event(results[i].second.seq, std::move(batch[i].request))));
  }
  recent_->append(std::move(kept));
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

Outbox::Round Outbox::run_round(bool on_owner_thread) {
  Writer& w = *writer_;
  Round round;
  std::vector<Pending>& batch = w.batch_scratch;
  std::vector<DeadLetter>& dead = w.dead_scratch;
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
  fold_acks();
  // Whether the round's appends may need the room that writing the watermark frees; only
  // asked when the watermark is dirty.
  bool needs_room = false;
  if (watermark_.dirty()) {
    int64_t batch_bytes = 0;
    for (const auto& p : batch) batch_bytes += counted_size(p.request);
    needs_room = !budget_seen_.fits(batch_bytes);
  }
  const int64_t watermark = watermark_.to_write({!batch.empty(), !dead.empty(), closing_},
                                                [needs_room] { return needs_room; });
  if (batch.empty() && dead.empty() && watermark == watermark_.persisted()) {
    round.empty = true;
    return round;
  }
  const bool tried_watermark = watermark > watermark_.persisted();
  mu_.unlock();

  std::vector<Completion>& results = w.results_scratch;
  // A dead letter changes how its seq reads (SQLite joins the reason): read again (after a
  // reconnect, or by a resend), the event must come with it.
  if (!dead.empty()) recent_->forget();
  const Writer::Written written = w.write_round(batch, dead, watermark, &results);
  if (written.writable) {
    if (written.stored_any) keep_recent(batch, results);
    // Delivered history may be pruned from now on; the publisher reads past it anyway.
    recent_->drop_through(w.delivered);
  } else {
    // A failed commit may still have reached the disk: its seqs were never handed in.
    recent_->forget();
  }
  const bool maintenance = written.writable && w.maintenance_due();
  if (!written.writable && w.corrupt) note_corruption(w.failure);

  mu_.lock();
  if (!written.writable) {
    for (auto& d : dead) dead_letter_queue_.push_back(std::move(d));
  }
  next_seq_seen_ = w.next_seq;
  budget_seen_ = w.budget;
  storage_failed_ = !written.writable;
  watermark_.round_done(w.delivered, tried_watermark, written.writable);
  note_watermark_persisted();
  maintenance_due_ = maintenance_due_ || maintenance;
  mu_.unlock();
  complete_all(results, on_owner_thread);
  if (written.stored_any && on_committed_) on_committed_();
  batch.clear();
  dead.clear();
  w.release_large_scratch();
  mu_.lock();
  round.writable = written.writable;
  return round;
}

void Outbox::note_watermark_persisted() {
  // Stored before the fold reads acked_ (see mark_delivered()).
  acked_persisted_ = watermark_.persisted();
  fold_acks();
}

void Outbox::prune(Writer& w) {
  if (!w.prune_due()) return;
  bool producers_waiting;
  {
    platform::MutexLock lock(mu_);
    producers_waiting = !queue_.empty();
  }
  w.prune(producers_waiting);
}

bool Outbox::lone_commit_is_cheap(Clock::time_point now) {
  if (!options_.commit_lone_on_owner || queue_.size() != 1 || now < concurrent_until_ ||
      closing_) {
    return false;
  }
  // Not while the writer waits for the token (for maintenance or the watermark): the owner's
  // next round could start before the writer wakes, again and again.
  if (writer_wanted_) return false;
  // Nothing slow on the owner's thread, which is the ingest thread: a producer waits for every
  // reply it makes, and the watchdog for its loop. Reopening after a failure (with the
  // budget's full-table sums), pruning, checkpoints and dead letters (with their prune) are the
  // writer's.
  if (storage_failed_ || maintenance_due_ || !dead_letter_queue_.empty() ||
      !queue_.front().request.refused_reason.empty()) {
    return false;
  }
  // Nor what the commit itself would add: deleting history to make room, a calibration of the
  // budget, or summing a long stretch of delivered events for the watermark.
  const int64_t size = counted_size(queue_.front().request);
  if (!budget_seen_.fits(size)) return false;
  OutboxBudget after = budget_seen_;
  after.stored(size);
  if (after.calibration_due()) return false;
  fold_acks();
  return watermark_.wanted() - watermark_.persisted() <= kOwnerWatermarkSpan;
}

void Outbox::commit_queued() {
  bool wake = false;
  {
    platform::MutexLock lock(mu_);
    if (queue_.empty()) return;
    const auto now = Clock::now();
    if (queue_.size() > 1) concurrent_until_ = now + options_.concurrency_hold;
    if (writer_busy_) return;  // the writer thread takes the queue when it is done
    // The token is free: limits from set_limits() reach the writer before this decision and
    // this commit, which must not go by the old max_bytes.
    apply_pending_limits();
    if (lone_commit_is_cheap(now)) {
      writer_busy_ = true;
      run_round(/*on_owner_thread=*/true);
      writer_busy_ = false;
      wake = writer_wanted_ || maintenance_due_ || storage_failed_ || !queue_.empty() ||
             !dead_letter_queue_.empty();
    } else {
      wake = true;
    }
  }
  if (wake) wake_.signal();
}

bool Outbox::writer_has_work() const {
  return !queue_.empty() || !dead_letter_queue_.empty() || closing_ || maintenance_due_ ||
         limits_pending_.has_value() || !repair_queue_.empty();
}

void Outbox::writer_loop() {
  Writer& w = *writer_;
  mu_.lock();
  writer_started_ = true;
  started_.signal_all();  // open() proceeds once this thread waits below and so releases mu_
  while (true) {
    fold_acks();
    if (!writer_has_work()) {
      if (watermark_.dirty()) {
        // Only the watermark moved: let more acks gather before paying for a sync.
        const auto due = watermark_.due_at();
        while (!writer_has_work() && wake_.wait_until(mu_, due)) {
        }
      } else {
        wake_.wait(mu_);
        continue;
      }
    }
    if (writer_busy_) {
      // The owner thread is committing a lone event itself; it wakes us when it is done.
      writer_wanted_ = true;
      while (writer_busy_) wake_.wait(mu_);
      writer_wanted_ = false;
      continue;
    }
    writer_busy_ = true;
    apply_pending_limits();
    const bool closing = closing_;
    Round round = run_round(/*on_owner_thread=*/false);
    if (closing && round.empty) {
      writer_busy_ = false;
      break;
    }
    if (round.writable) {
      // After the round's replies went out, not inside its commit.
      maintenance_due_ = false;
      std::vector<Repair> repairs;
      repairs.swap(repair_queue_);
      mu_.unlock();
      if (!repairs.empty()) run_repairs(repairs);
      prune(w);
      w.prune_dead_letters_to_limits();
      w.checkpoint();
      mu_.lock();
      // A failed prune or checkpoint dropped the connection: the next round reopens it.
      storage_failed_ = w.failed;
      budget_seen_ = w.budget;
      // After smaller limits, history is pruned slice after slice until it is within them, not
      // a slice per append round (an idle outbox would keep it for as long as it stays idle).
      // Queued appends still come first: each slice follows a round.
      if (prune_to_limits_) {
        prune_to_limits_ = w.prune_due();
        maintenance_due_ = maintenance_due_ || prune_to_limits_;
      }
      writer_busy_ = false;
      continue;
    }
    const auto retry_at = w.failed_at + options_.retry_after;
    writer_busy_ = false;
    maintenance_due_ = false;
    if (closing_) {
      // Closing with the storage down: refuse what is still queued and stop. Unwritten dead
      // letters and watermark are not lost: those events are still pending on disk and are
      // sent (and refused) again after a restart.
      std::vector<Pending> rest;
      rest.swap(queue_);
      mu_.unlock();
      std::vector<Completion> failed;
      w.refuse_all(rest, &failed);
      complete_all(failed, /*on_owner_thread=*/false);
      mu_.lock();
      break;
    }
    // Nothing can be written before the retry time; new appends still get their refusal
    // at once. Without this wait, queued dead letters would make the loop spin.
    while (queue_.empty() && !closing_ && wake_.wait_until(mu_, retry_at)) {
    }
  }
  mu_.unlock();
}

}  // namespace edgesync::storage
