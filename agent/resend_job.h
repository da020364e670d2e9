// One resend request from the hub being answered (events/resend.h): which of its seqs the box
// sends again from its outbox, which are still pending in its own stream, which it no longer
// has. Pure: the publisher reads the rows and sends them; this decides, range by range, and
// makes the reply.
//
// Only delivered seqs (at or below the box's watermark) are looked up: the others are still the
// stream's (in flight, parked, or delivered behind a parked event and sent again after the next
// reconnect), and reported pending. A request's look-ups stop at `max_seqs`; what lies beyond is "deferred" and
// the hub asks again, so one request never makes a box stream its whole history at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "events/resend.h"
#include "storage/outbox.h"

namespace edgesync::agent {

class ResendJob {
 public:
  ResendJob(events::ResendRequest request, const std::string& incarnation,
            int64_t delivered_through, int64_t max_seqs);

  // Every range is settled: the reply can go.
  bool done() const { return next_ >= lookups_.size(); }
  // The next look-up: rows with seq in [cursor(), range_last()]. REQUIRES: !done().
  int64_t cursor() const { return cursor_; }
  int64_t range_last() const { return lookups_[next_].last; }

  // The rows an outbox read from cursor() on returned (seq order; the read asked for `asked`
  // rows, at most range_last() - cursor() + 1). Appends to `to_send` the index of each row to
  // send again; seqs the outbox no longer holds become gone.
  void take(const std::vector<storage::StoredEvent>& rows, size_t asked,
            std::vector<size_t>* to_send);
  // A row taken for sending that cannot be sent on this connection (too large for the broker
  // the box is on now): the box still has it, so it is deferred, not gone.
  void not_now(int64_t seq);

  const events::ResendRequest& request() const { return request_; }
  int64_t resent_count() const { return resent_.count(); }
  int64_t gone_count() const { return gone_.count(); }
  events::ResendReply reply(const std::string& store_id, const std::string& device_id) const;

 private:
  void settle_rest_of_range(const char* reason);
  static void remove(events::SeqRanges& set, int64_t seq);

  events::ResendRequest request_;
  std::vector<events::SeqRange> lookups_;  // delivered seqs to look up, ascending
  size_t next_ = 0;                        // the range of lookups_ being looked up
  int64_t cursor_ = 0;                     // the next seq of that range
  events::SeqRanges resent_;
  events::SeqRanges gone_;
  std::vector<events::SeqRange> pending_;
  std::vector<events::SeqRange> deferred_;
  std::string gone_reason_;
};

}  // namespace edgesync::agent
