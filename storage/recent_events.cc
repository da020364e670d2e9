#include "storage/recent_events.h"

#include <algorithm>
#include <iterator>

namespace edgesync::storage {
namespace {

int64_t field_bytes(const StoredEvent& e) {
  return static_cast<int64_t>(e.id.size() + e.type.size() + e.occurred_at.size() +
                              e.data.size() + e.trace_id.size());
}

}  // namespace

void RecentEvents::append(std::vector<StoredEvent>&& events) {
  if (events.empty()) return;
  // The newest that fit, built outside the lock.
  std::vector<Entry> fresh;
  int64_t fresh_bytes = 0;
  size_t first = events.size();
  while (first > 0 && events.size() - first < bounds_.max_events) {
    const int64_t b = field_bytes(events[first - 1]);
    if (fresh_bytes + b > bounds_.max_bytes) break;
    fresh_bytes += b;
    --first;
  }
  fresh.reserve(events.size() - first);
  for (size_t i = first; i < events.size(); ++i) {
    fresh.push_back(std::make_shared<const StoredEvent>(std::move(events[i])));
  }
  const int64_t first_seq = events.front().seq;
  const int64_t next = events.back().seq + 1;
  std::vector<Entry> dropped;  // freed outside the lock
  platform::MutexLock lock(mu_);
  // Not the continuation of the run (the first round, a round after forget(), or seqs given
  // again after a failed commit): start a new run.
  if (!valid_ || first_seq != next_seq_ || first > 0) {
    dropped.assign(std::make_move_iterator(entries_.begin()),
                   std::make_move_iterator(entries_.end()));
    clear();
  }
  for (auto& e : fresh) {
    bytes_ += field_bytes(*e);
    entries_.push_back(std::move(e));
  }
  while (entries_.size() > bounds_.max_events || bytes_ > bounds_.max_bytes) {
    bytes_ -= field_bytes(*entries_.front());
    dropped.push_back(std::move(entries_.front()));
    entries_.pop_front();
  }
  valid_ = true;
  next_seq_ = next;
}

void RecentEvents::forget() {
  std::deque<Entry> dropped;  // freed outside the lock
  platform::MutexLock lock(mu_);
  dropped.swap(entries_);
  clear();
}

void RecentEvents::clear() {
  entries_.clear();
  bytes_ = 0;
  valid_ = false;
}

bool RecentEvents::read(int64_t after_seq, size_t limit, std::vector<StoredEvent>* out) {
  std::vector<Entry> taken;
  std::vector<Entry> dropped;  // freed outside the lock
  {
    platform::MutexLock lock(mu_);
    if (!valid_) return false;
    while (!entries_.empty() && entries_.front()->seq <= after_seq) {
      bytes_ -= field_bytes(*entries_.front());
      dropped.push_back(std::move(entries_.front()));
      entries_.pop_front();
    }
    if (entries_.empty()) {
      if (after_seq != next_seq_ - 1) return false;
    } else {
      if (entries_.front()->seq != after_seq + 1) return false;
      const size_t n = std::min(limit, entries_.size());
      taken.assign(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(n));
    }
  }
  // The copies outside the lock; the strings already in `out` are reused.
  out->resize(taken.size());
  for (size_t i = 0; i < taken.size(); ++i) (*out)[i] = *taken[i];
  return true;
}

size_t RecentEvents::size() const {
  platform::MutexLock lock(mu_);
  return entries_.size();
}

}  // namespace edgesync::storage
