// What the agent has done since it started: events accepted, refused by reason, delivered and
// dead-lettered, reconnects, and how long delivery takes. Read by the health message, the
// control socket's status and the metrics endpoint.
//
// Each figure has one writing thread (ingest's or delivery's) and any number of readers: a
// relaxed atomic add per event, no lock, nothing allocated.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/event_contract.h"
#include "platform/mutex.h"
#include "platform/thread_annotations.h"

namespace edgesync::agent {

// Counts in fixed slots over a trailing window, for "in the last minute / hour / day". One
// writer, any readers.
template <int64_t kSlotMs, size_t kSlots>
class RateWindow {
 public:
  void add(int64_t now_ms, uint64_t n = 1) {
    const int64_t index = now_ms / kSlotMs;
    Slot& s = slots_[static_cast<size_t>(index) % kSlots];
    if (s.index.load(std::memory_order_relaxed) != index) {
      // The slot last counted a whole window ago (or never): it starts again. A reader in
      // between may see the old count under the new index, for one slot: good enough.
      s.count.store(0, std::memory_order_relaxed);
      s.index.store(index, std::memory_order_relaxed);
    }
    s.count.fetch_add(n, std::memory_order_relaxed);
  }
  // Sum over the slots that lie within the last `seconds` (rounded up to whole slots).
  uint64_t sum(int64_t now_ms, int64_t seconds) const {
    const int64_t newest = now_ms / kSlotMs;
    const int64_t span = (seconds * 1000 + kSlotMs - 1) / kSlotMs;
    uint64_t total = 0;
    for (const Slot& s : slots_) {
      const int64_t i = s.index.load(std::memory_order_relaxed);
      if (i > newest - span && i <= newest) total += s.count.load(std::memory_order_relaxed);
    }
    return total;
  }

 private:
  struct Slot {
    std::atomic<int64_t> index{-1};  // now_ms / kSlotMs of the slot's count
    std::atomic<uint64_t> count{0};
  };
  std::array<Slot, kSlots> slots_;
};
using HourWindow = RateWindow<10'000, 360>;     // 10-second slots
using DayWindow = RateWindow<3'600'000, 24>;    // hourly slots

// A latency distribution with fixed bucket bounds (milliseconds), Prometheus-style: cumulative
// counts are computed when read. One writer.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 12> kBoundsMs = {1,   2.5,  5,     10,    25,     50,
                                                       100, 250, 1'000, 10'000, 60'000, 600'000};
  void observe(double ms);
  struct Snapshot {
    std::array<uint64_t, kBoundsMs.size()> cumulative{};  // observations <= each bound
    uint64_t count = 0;
    double sum_ms = 0;
  };
  Snapshot snapshot() const;

 private:
  std::array<std::atomic<uint64_t>, kBoundsMs.size() + 1> buckets_{};  // the last: above all
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_us_{0};
};

struct AgentCounters {
  int64_t started_ms = 0;
  // Ingest thread.
  std::atomic<uint64_t> accepted{0};    // stored: new events
  std::atomic<uint64_t> duplicates{0};  // an id stored before: acknowledged, not stored again
  // Stored without a contract check: unknown types passed on (ingest.unknown_types: accept).
  std::atomic<uint64_t> unchecked{0};
  static constexpr size_t kRefusalKinds = 6;  // IngestError's values
  std::array<std::atomic<uint64_t>, kRefusalKinds> refused{};
  HourWindow accepted_window;
  // Delivery thread.
  std::atomic<uint64_t> delivered{0};      // acknowledged by the hub
  std::atomic<uint64_t> dead_lettered{0};  // refused for good, announced instead
  std::atomic<uint64_t> connects{0};       // successful connections (the first and reconnects)
  std::atomic<int64_t> next_retry_ms{0};   // when the next connection attempt is due; 0: none
  HourWindow delivered_window;
  DayWindow dead_letter_window;
  // Spool thread: files moved to done/ and to failed/.
  std::atomic<uint64_t> spool_files_done{0};
  std::atomic<uint64_t> spool_files_failed{0};
  LatencyHistogram ack_latency;       // publish to PUBACK
  LatencyHistogram age_at_delivery;   // received by the agent to PUBACK

  void count_refused(IngestError e) { refused[static_cast<size_t>(e)].fetch_add(1, kRelaxed); }
  uint64_t refused_total() const;

  // The last connection error: written by the delivery thread, read by any.
  void set_last_error(std::string text, int64_t at_ms) EXCLUDES(error_mu_);
  std::string last_error(int64_t* at_ms) const EXCLUDES(error_mu_);

  static constexpr std::memory_order kRelaxed = std::memory_order_relaxed;

 private:
  mutable platform::Mutex error_mu_;  // rare: a connection lost or refused
  std::string last_error_ GUARDED_BY(error_mu_);
  int64_t last_error_ms_ GUARDED_BY(error_mu_) = 0;
};

}  // namespace edgesync::agent
