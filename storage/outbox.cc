#include "storage/outbox.h"

#include <algorithm>
#include <chrono>

#include "platform/clock.h"
#include "platform/threads.h"
#include "storage/event_rows.h"
#include "storage/outbox_writer.h"
#include "storage/pending_reader.h"

namespace edgesync::storage {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

Outbox::Outbox(const Options& options, Dispatcher dispatch)
    : options_(options),
      dispatch_(std::move(dispatch)),
      watermark_(options.watermark_flush),
      writer_(std::make_unique<Writer>(options_)) {}

Result<std::unique_ptr<Outbox>> Outbox::open(const Options& options, Dispatcher dispatch) {
  std::unique_ptr<Outbox> box(new Outbox(options, std::move(dispatch)));
  Status s = box->writer_->open();
  if (!s) return s;
  auto reader = PendingReader::open(options.path, options.vfs);
  if (!reader) return reader.status();
  box->reader_ = std::move(*reader);
  box->incarnation_ = box->writer_->incarnation;
  box->watermark_.reset(box->writer_->delivered);
  box->next_seq_seen_ = box->writer_->next_seq;
  box->budget_seen_ = box->writer_->budget;
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
  if (watermark_.mark(seq)) wake_.notify_one();
}

void Outbox::dead_letter(const StoredEvent& event, std::string reason) {
  std::lock_guard<std::mutex> lock(mu_);
  dead_letter_queue_.push_back({event, std::move(reason), platform::unix_ms()});
  wake_.notify_one();
}

int64_t Outbox::delivered_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return watermark_.wanted();
}

Status Outbox::read_pending(int64_t after_seq, size_t limit, std::vector<StoredEvent>* out) {
  return reader_->read(after_seq, limit, out);
}

OutboxStats Outbox::stats() {
  OutboxStats st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    st.next_seq = next_seq_seen_;
    st.delivered_seq = watermark_.wanted();
    st.pending_bytes = budget_seen_.pending_bytes();
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
  reader_.reset();
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
  const int64_t watermark = watermark_.to_write({!batch.empty(), !dead.empty(), closing_}, [&] {
    int64_t batch_bytes = 0;
    for (const auto& p : batch) batch_bytes += counted_size(p.request);
    return !budget_seen_.fits(batch_bytes);
  });
  if (batch.empty() && dead.empty() && watermark == watermark_.persisted()) {
    round.empty = true;
    return round;
  }
  const bool tried_watermark = watermark > watermark_.persisted();
  lock.unlock();

  std::vector<Completion>& results = w.results_scratch;
  const Writer::Written written = w.write_round(batch, dead, watermark, &results);
  const bool maintenance = written.writable && w.maintenance_due();

  lock.lock();
  if (!written.writable) {
    for (auto& d : dead) dead_letter_queue_.push_back(std::move(d));
  }
  next_seq_seen_ = w.next_seq;
  budget_seen_ = w.budget;
  watermark_.round_done(w.delivered, tried_watermark, written.writable);
  maintenance_due_ = maintenance_due_ || maintenance;
  lock.unlock();
  complete_all(results, on_owner_thread);
  if (written.stored_any && on_committed_) on_committed_();
  batch.clear();
  dead.clear();
  lock.lock();
  round.writable = written.writable;
  return round;
}

void Outbox::prune(Writer& w) {
  if (!w.prune_due()) return;
  bool producers_waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    producers_waiting = !queue_.empty();
  }
  w.prune(producers_waiting);
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
                    now >= concurrent_until_ && !closing_ && !writer_wanted_ && !maintenance_due_;
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
  auto dirty = [this] { return watermark_.dirty(); };
  while (true) {
    if (!work()) {
      if (dirty()) {
        // Only the watermark moved: let more acks gather before paying for a sync.
        wake_.wait_until(lock, watermark_.due_at(), work);
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
      w.checkpoint();
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
      w.refuse_all(rest, &failed);
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

}  // namespace edgesync::storage
