// Building ingest requests and checking what reached the hub against the agent's contract.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/support/hub_subscriber.h"

namespace edgesync::test {

// One ingest request line (no trailing newline). Empty id, occurred_at, trace_id are left out.
std::string make_request(const std::string& id, const std::string& type, const nlohmann::json& data,
                         const std::string& occurred_at = "", const std::string& trace_id = "");

// Retail payloads that pass the shipped contracts: a sale of one line (`qty` of `sku` at 2.50
// EUR) and a count of one SKU on the shop floor.
nlohmann::json sale_data(const std::string& receipt, const std::string& sku, int qty);
nlohmann::json count_data(const std::string& sku, int on_hand);

// An event message as received on <topic_base>/events/<type>.
struct HubEvent {
  std::string topic;
  nlohmann::json payload;   // discarded value if the payload was not JSON
  std::string id;           // payload["id"], "" if absent
  int64_t seq = -1;         // payload["seq"], -1 if absent or not an integer
  ReceivedMessage message;  // the raw message (properties, content type, retained flag)
};

// The messages under "<topic_base>/events/", in arrival order (others, like status, skipped).
std::vector<HubEvent> hub_events(const HubSubscriber::Messages& messages,
                                 const std::string& topic_base);

// Checks arrival-order invariants of hub events:
//  - every payload is a JSON object with a string id and an integer seq;
//  - the first arrival of each seq is exactly 1, 2, 3, ... in that order (gap-free and
//    increasing); later arrivals of a seq are redeliveries and must carry the same id;
//  - no id arrives with two different seqs.
// On success *highest (if given) is the highest seq seen. Seqs in `late` (asked for again after
// a broker lost them) may first arrive after higher ones, or not at all.
::testing::AssertionResult first_arrivals_gap_free(const std::vector<HubEvent>& events,
                                                   int64_t* highest = nullptr,
                                                   const std::set<int64_t>& late = {});

// seq -> id of the first arrival of each seq.
std::map<int64_t, std::string> first_arrival_ids(const std::vector<HubEvent>& events);

// Acknowledged events (id -> seq from the agent's reply) whose seq did not first arrive at the
// hub with that id: the events lost. Each of the first five is reported as a test failure.
size_t acked_not_delivered(const std::vector<HubEvent>& events,
                           const std::map<std::string, int64_t>& acked);

// The last `max_lines` lines of text (for printing logs).
std::string tail_lines(const std::string& text, size_t max_lines);

}  // namespace edgesync::test
