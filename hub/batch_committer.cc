#include "hub/batch_committer.h"

#include <algorithm>
#include <chrono>

#include "platform/log.h"

namespace edgesync::hub {

BatchCommitter::BatchCommitter(ApplyFn apply, int max_batch,
                               std::function<void(const BatchOutcome&)> on_commit)
    : apply_(std::move(apply)),
      max_batch_(static_cast<size_t>(std::max(1, max_batch))),
      on_commit_(std::move(on_commit)),
      thread_([this] { run(); }) {}

BatchCommitter::~BatchCommitter() { stop(); }

bool BatchCommitter::commit(InboundMessage m) {
  Waiting w{std::move(m)};
  std::unique_lock lock(mu_);
  if (stopping_) return false;
  queue_.push_back(&w);
  wake_.notify_one();
  done_.wait(lock, [&] { return w.done; });
  return w.ok;
}

void BatchCommitter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Whoever still waits was never committed.
  std::lock_guard lock(mu_);
  for (Waiting* w : queue_) w->done = true;
  queue_.clear();
  done_.notify_all();
}

CommitterFigures BatchCommitter::figures() const {
  std::lock_guard lock(mu_);
  return figures_;
}

void BatchCommitter::run() {
  std::vector<Waiting*> batch;
  std::vector<InboundMessage> messages;
  auto retry_delay = std::chrono::milliseconds(100);
  while (true) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      batch.clear();
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    messages.clear();
    for (Waiting* w : batch) messages.push_back(w->message);
    BatchOutcome outcome;
    Status s = apply_(messages, &outcome);
    while (!s) {
      // Nothing of the batch is committed and nobody has been acknowledged: wait for the
      // database, however long it takes (the broker keeps the rest queued meanwhile).
      platform::log(platform::LogLevel::kError, "commit_failed",
                    "batch of " + std::to_string(messages.size()) +
                        " message(s) not committed, trying again in " +
                        std::to_string(retry_delay.count()) + " ms: " + s.message());
      {
        std::unique_lock lock(mu_);
        ++figures_.failures;
        if (wake_.wait_for(lock, retry_delay, [&] { return stopping_; })) {
          // Put them back: stop() tells their callers they were not committed.
          for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(*it);
          return;
        }
      }
      retry_delay = std::min(retry_delay * 2, std::chrono::milliseconds(10000));
      s = apply_(messages, &outcome);
    }
    retry_delay = std::chrono::milliseconds(100);
    if (on_commit_) on_commit_(outcome);
    std::lock_guard lock(mu_);
    ++figures_.batches;
    figures_.messages += static_cast<int64_t>(batch.size());
    figures_.events_new += outcome.events_new;
    figures_.events_repeated += outcome.events_repeated;
    figures_.rejected += outcome.rejected;
    for (Waiting* w : batch) {
      w->ok = true;
      w->done = true;
    }
    done_.notify_all();
  }
}

}  // namespace edgesync::hub
