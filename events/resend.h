// The end-to-end resend: the hub asks a box for the seqs it lacks, the box sends again what its
// outbox still holds and says what it no longer has (docs/PROTOCOL.md, "Resend requests").
//
// The broker's acknowledgement tells a box that the broker took an event, not that the hub
// stored it: a hub that was away with no session on the broker the box reached, or a broker
// that dropped a queue, loses events the box counts as delivered. The hub sees such a loss
// (docs/HUB.md, "gaps") and asks; the box's delivered history answers it. Both messages are
// QoS 1 and not retained: a request that reaches a box that is offline is simply asked again.
//
//   <prefix>/<store_id>/<device_id>/resend         hub -> box: a request
//   <prefix>/<store_id>/<device_id>/resend/reply   box -> hub: what became of it
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "events/seq_ranges.h"
#include "platform/status.h"

namespace edgesync::events {

inline constexpr std::string_view kResendRequestFormat = "edgesync.resend-request/1";
inline constexpr std::string_view kResendReplyFormat = "edgesync.resend-reply/1";
// Ranges one request may carry: a box refuses a request with more.
inline constexpr size_t kMaxResendRanges = 1000;

std::string resend_request_topic(std::string_view prefix, std::string_view store_id,
                                 std::string_view device_id);
std::string resend_reply_topic(std::string_view prefix, std::string_view store_id,
                               std::string_view device_id);
// Every box's replies, for all stores ("+") or one.
std::string resend_reply_filter(std::string_view prefix, std::string_view store = "+");

struct ResendRequest {
  std::string request_id;   // chosen by the hub; echoed in the reply
  std::string incarnation;  // the outbox incarnation the seqs belong to
  std::vector<SeqRange> ranges;  // ascending, disjoint, each first >= 1
};

struct ResendReply {
  std::string request_id;
  std::string store_id;
  std::string device_id;
  std::string incarnation;  // the request's
  // Sent again, with the same id and seq (events, or the dead-letter notice that stands in for
  // one). They were handed to the box's MQTT client before this reply.
  std::vector<SeqRange> resent;
  // Not yet delivered: the box's own stream sends them (or their notices) in order.
  std::vector<SeqRange> pending;
  // The box no longer has them: pruned from its history, or of an incarnation it no longer
  // holds. A loss the hub records; it does not ask for them again.
  std::vector<SeqRange> gone;
  std::string gone_reason;  // empty when nothing is gone
  // Over the box's limit for one request (or too large for the broker the box is on now): not
  // sent this time; the hub asks again.
  std::vector<SeqRange> deferred;
};

// Refuses a request with no ranges, ranges out of order or overlapping, a seq below 1, or more
// than `max_ranges` ranges; the message says which.
Result<ResendRequest> parse_resend_request(std::string_view payload,
                                          size_t max_ranges = kMaxResendRanges);
std::string build_resend_request(const ResendRequest& r);

Result<ResendReply> parse_resend_reply(std::string_view payload);
std::string build_resend_reply(const ResendReply& r);

}  // namespace edgesync::events
