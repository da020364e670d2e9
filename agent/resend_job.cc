#include "agent/resend_job.h"

#include <algorithm>

namespace edgesync::agent {

namespace {
constexpr const char* kPruned =
    "no longer in this box's outbox: delivered history beyond storage.keep_delivered is pruned";
}  // namespace

ResendJob::ResendJob(events::ResendRequest request, const std::string& incarnation,
                     int64_t delivered_through, int64_t max_seqs)
    : request_(std::move(request)) {
  if (request_.incarnation != incarnation) {
    for (const auto& r : request_.ranges) gone_.insert_range(r.first, r.last);
    gone_reason_ = "this box's outbox is incarnation " + incarnation +
                   " now; it no longer holds the one these seqs belonged to";
    return;
  }
  int64_t budget = max_seqs;
  for (const auto& r : request_.ranges) {
    if (r.last > delivered_through) {
      pending_.push_back({std::max(r.first, delivered_through + 1), r.last});
    }
    if (r.first > delivered_through) continue;
    const int64_t last = std::min(r.last, delivered_through);
    const int64_t take = std::min(budget, last - r.first + 1);
    if (take > 0) lookups_.push_back({r.first, r.first + take - 1});
    if (r.first + take <= last) deferred_.push_back({r.first + take, last});
    budget -= take;
  }
  if (!lookups_.empty()) cursor_ = lookups_.front().first;
}

void ResendJob::take(const std::vector<storage::StoredEvent>& rows, size_t asked,
                     std::vector<size_t>* to_send) {
  if (done()) return;
  const int64_t last = range_last();
  bool beyond = false;
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t seq = rows[i].seq;
    if (seq < cursor_) continue;
    if (seq > last) {
      beyond = true;
      break;
    }
    if (seq > cursor_) {
      gone_.insert_range(cursor_, seq - 1);
      if (gone_reason_.empty()) gone_reason_ = kPruned;
    }
    to_send->push_back(i);
    resent_.insert(seq);
    cursor_ = seq + 1;
  }
  // A short read, or one that went past the range: nothing more of it is in the outbox.
  if (beyond || rows.size() < asked) settle_rest_of_range(kPruned);
  if (cursor_ > last) {
    ++next_;
    if (!done()) cursor_ = lookups_[next_].first;
  }
}

void ResendJob::settle_rest_of_range(const char* reason) {
  const int64_t last = range_last();
  if (cursor_ > last) return;
  gone_.insert_range(cursor_, last);
  if (gone_reason_.empty()) gone_reason_ = reason;
  cursor_ = last + 1;
}

void ResendJob::remove(events::SeqRanges& set, int64_t seq) {
  events::SeqRanges kept;
  for (const auto& r : set.ranges()) {
    if (seq < r.first || seq > r.last) {
      kept.insert_range(r.first, r.last);
      continue;
    }
    kept.insert_range(r.first, seq - 1);
    kept.insert_range(seq + 1, r.last);
  }
  set = std::move(kept);
}

void ResendJob::not_now(int64_t seq) {
  // Taken for sending a moment ago: from resent to deferred, which stays in seq order.
  remove(resent_, seq);
  events::SeqRanges later;
  for (const auto& r : deferred_) later.insert_range(r.first, r.last);
  later.insert(seq);
  deferred_ = later.ranges();
}

events::ResendReply ResendJob::reply(const std::string& store_id,
                                     const std::string& device_id) const {
  events::ResendReply r;
  r.request_id = request_.request_id;
  r.store_id = store_id;
  r.device_id = device_id;
  r.incarnation = request_.incarnation;
  r.resent = resent_.ranges();
  r.pending = pending_;
  r.gone = gone_.ranges();
  if (!gone_.empty()) r.gone_reason = gone_reason_;
  r.deferred = deferred_;
  return r;
}

}  // namespace edgesync::agent
