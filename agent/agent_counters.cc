#include "agent/agent_counters.h"

#include <algorithm>

namespace edgesync::agent {

void LatencyHistogram::observe(double ms) {
  size_t b = 0;
  while (b < kBoundsMs.size() && ms > kBoundsMs[b]) ++b;
  buckets_[b].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<uint64_t>(ms < 0 ? 0 : ms * 1000), std::memory_order_relaxed);
}

LatencyHistogram::Snapshot LatencyHistogram::snapshot() const {
  Snapshot s;
  uint64_t running = 0;
  for (size_t b = 0; b < kBoundsMs.size(); ++b) {
    running += buckets_[b].load(std::memory_order_relaxed);
    s.cumulative[b] = running;
  }
  // The count includes the overflow bucket; read after the buckets so +Inf >= every bucket.
  s.count = std::max(count_.load(std::memory_order_relaxed),
                     running + buckets_.back().load(std::memory_order_relaxed));
  s.sum_ms = sum_us_.load(std::memory_order_relaxed) / 1000.0;
  return s;
}

uint64_t AgentCounters::refused_total() const {
  uint64_t total = 0;
  for (const auto& r : refused) total += r.load(kRelaxed);
  return total;
}

void AgentCounters::set_last_error(std::string text, int64_t at_ms) {
  platform::MutexLock lock(error_mu_);
  last_error_ = std::move(text);
  last_error_ms_ = at_ms;
}

std::string AgentCounters::last_error(int64_t* at_ms) const {
  platform::MutexLock lock(error_mu_);
  if (at_ms) *at_ms = last_error_ms_;
  return last_error_;
}

}  // namespace edgesync::agent
