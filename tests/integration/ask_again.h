// What the hub does when it sees a gap (docs/HUB.md, "gaps"): it asks the box for the seqs it
// lacks. Tests that stop the broker an agent is on, mid-stream, need it too: the stopped broker
// can take with it events it acknowledged to the agent but had not yet passed to its subscriber
// (seen in CI), which MQTT cannot tell the agent, so the agent rightly resends only from its
// first unacknowledged seq.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "events/resend.h"
#include "events/seq_ranges.h"
#include "tests/support/agent_process.h"
#include "tests/support/hub_subscriber.h"

namespace edgesync::test {

// Publishes, through `via` (a subscriber on a broker the agent is on, or in its cluster), a
// resend request for the seqs in 1..last that `have` lacks, of the outbox `incarnation`. Returns
// the ranges it asked for: none (and nothing sent) when no seq is missing. At most
// kMaxResendRanges of them, as a box accepts; the tests here lose a few runs, not a thousand.
inline std::vector<events::SeqRange> ask_agent_again(HubSubscriber& via, const AgentConfig& agent,
                                                     const std::string& incarnation,
                                                     const events::SeqRanges& have, int64_t last,
                                                     const std::string& request_id) {
  events::ResendRequest request;
  request.request_id = request_id;
  request.incarnation = incarnation;
  request.ranges = have.missing(1, last);
  if (request.ranges.size() > events::kMaxResendRanges) {
    std::printf("asking for the first %zu of %zu missing ranges only (a box takes no more)\n",
                events::kMaxResendRanges, request.ranges.size());
    request.ranges.resize(events::kMaxResendRanges);
  }
  if (request.ranges.empty()) return {};
  via.publish(events::resend_request_topic(agent.topic_prefix, agent.store_id, agent.device_id),
              events::build_resend_request(request), false);
  return request.ranges;
}

}  // namespace edgesync::test
