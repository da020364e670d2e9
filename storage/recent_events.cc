#include "storage/recent_events.h"

#include <algorithm>

namespace edgesync::storage {
namespace {

int64_t field_bytes(const StoredEvent& e) {
  return static_cast<int64_t>(e.id.size() + e.type.size() + e.occurred_at.size() +
                              e.data.size() + e.trace_id.size());
}

// Empties a scratch list on every way out, a throw included: entries left in it would be freed
// late, or handed out by the next read on this thread.
template <typename T>
struct ClearOnExit {
  T& list;
  ~ClearOnExit() { list.clear(); }
};

}  // namespace

RecentEvents::RecentEvents(Bounds b) : bounds_(b) {
  bounds_.max_events = std::max<size_t>(bounds_.max_events, 1);
  bounds_.max_bytes = std::max<int64_t>(bounds_.max_bytes, 0);
  platform::MutexLock lock(mu_);
  slots_.resize(bounds_.max_events);
}

std::vector<RecentEvents::Entry>& RecentEvents::scratch(int which) const {
  thread_local std::vector<Entry> lists[2];
  std::vector<Entry>& v = lists[which];
  // The most one call drops or takes is the whole ring.
  v.reserve(bounds_.max_events);
  return v;
}

void RecentEvents::pop_front(std::vector<Entry>* out) {
  out->push_back(std::move(slots_[head_]));
  bytes_ -= field_bytes(*out->back());
  head_ = (head_ + 1) % slots_.size();
  --count_;
}

void RecentEvents::append(std::vector<Entry>&& events) {
  if (events.empty()) return;
  // The newest that fit.
  int64_t fresh_bytes = 0;
  size_t first = events.size();
  while (first > 0 && events.size() - first < bounds_.max_events) {
    const int64_t b = field_bytes(*events[first - 1]);
    if (fresh_bytes + b > bounds_.max_bytes) break;
    fresh_bytes += b;
    --first;
  }
  const int64_t first_seq = events.front()->seq;
  const int64_t next = events.back()->seq + 1;
  std::vector<Entry>& dropped = scratch(0);
  ClearOnExit<std::vector<Entry>> clear_dropped{dropped};
  if (!mu_.try_lock()) {
    stale_ = true;  // a reader holds it: the next holder empties the run
    return;
  }
  platform::MutexLock lock(mu_, platform::kAdoptLock);
  empty_if_stale(&dropped);
  // Not the continuation of the run (the first round, a round after forget(), or one whose
  // oldest events did not fit): a new run starts.
  if (!valid_ || first_seq != next_seq_ || first > 0) {
    while (count_ > 0) pop_front(&dropped);
  }
  for (size_t i = first; i < events.size(); ++i) {
    if (count_ == slots_.size()) pop_front(&dropped);
    bytes_ += field_bytes(*events[i]);
    slots_[(head_ + count_) % slots_.size()] = std::move(events[i]);
    ++count_;
  }
  while (count_ > 0 && bytes_ > bounds_.max_bytes) pop_front(&dropped);
  valid_ = true;
  next_seq_ = next;
}

void RecentEvents::forget() {
  std::vector<Entry>& dropped = scratch(0);
  ClearOnExit<std::vector<Entry>> clear_dropped{dropped};
  if (!mu_.try_lock()) {
    stale_ = true;
    return;
  }
  platform::MutexLock lock(mu_, platform::kAdoptLock);
  stale_ = false;  // emptied here anyway
  while (count_ > 0) pop_front(&dropped);
  valid_ = false;
}

void RecentEvents::drop_through(int64_t seq) {
  std::vector<Entry>& dropped = scratch(0);
  ClearOnExit<std::vector<Entry>> clear_dropped{dropped};
  if (!mu_.try_lock()) {
    stale_ = true;  // more than was asked, and safe
    return;
  }
  platform::MutexLock lock(mu_, platform::kAdoptLock);
  empty_if_stale(&dropped);
  while (count_ > 0 && front()->seq <= seq) pop_front(&dropped);
}

void RecentEvents::empty_if_stale(std::vector<Entry>* dropped) {
  if (!stale_.exchange(false)) return;
  while (count_ > 0) pop_front(dropped);
  valid_ = false;
}

bool RecentEvents::read(int64_t after_seq, size_t limit, std::vector<StoredEvent>* out) {
  std::vector<Entry>& dropped = scratch(0);
  std::vector<Entry>& taken = scratch(1);
  ClearOnExit<std::vector<Entry>> clear_dropped{dropped};
  ClearOnExit<std::vector<Entry>> clear_taken{taken};
  // Held by the committer: SQLite answers this one.
  if (!mu_.try_lock()) return false;
  bool answered = false;
  {
    platform::MutexLock lock(mu_, platform::kAdoptLock);
    empty_if_stale(&dropped);
    if (valid_) {
      while (count_ > 0 && front()->seq <= after_seq) pop_front(&dropped);
      if (count_ == 0) {
        answered = after_seq == next_seq_ - 1;
      } else if (front()->seq == after_seq + 1) {
        answered = true;
        const size_t n = std::min(limit, count_);
        for (size_t i = 0; i < n; ++i) taken.push_back(slots_[(head_ + i) % slots_.size()]);
      }
    }
  }
  if (answered) {
    // The copies outside the lock; the strings already in `out` are reused.
    out->resize(taken.size());
    for (size_t i = 0; i < taken.size(); ++i) (*out)[i] = *taken[i];
  }
  return answered;
}

size_t RecentEvents::size() const {
  platform::MutexLock lock(mu_);
  return count_;
}

}  // namespace edgesync::storage
