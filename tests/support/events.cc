#include "tests/support/events.h"

#include <algorithm>
#include <sstream>
#include <unordered_map>

namespace edgesync::test {

nlohmann::json sale_data(const std::string& receipt, const std::string& sku, int qty) {
  return {{"receipt_id", receipt},
          {"till_id", "till-1"},
          {"operator_id", "op-7"},
          {"currency", "EUR"},
          {"lines", nlohmann::json::array({{{"line_no", 1},
                                            {"sku", sku},
                                            {"qty", qty},
                                            {"unit_price_minor", 250},
                                            {"line_total_minor", 250 * qty}}})},
          {"total_minor", 250 * qty}};
}

nlohmann::json count_data(const std::string& sku, int on_hand) {
  return {{"count_id", "c-" + sku},
          {"location_id", "floor"},
          {"operator_id", "op-7"},
          {"lines", nlohmann::json::array({{{"sku", sku}, {"on_hand", on_hand}}})}};
}

std::string make_request(const std::string& id, const std::string& type, const nlohmann::json& data,
                         const std::string& occurred_at, const std::string& trace_id) {
  nlohmann::json j = nlohmann::json::object();
  if (!id.empty()) j["id"] = id;
  j["type"] = type;
  if (!occurred_at.empty()) j["occurred_at"] = occurred_at;
  if (!trace_id.empty()) j["trace_id"] = trace_id;
  j["data"] = data;
  return j.dump();
}

std::vector<HubEvent> hub_events(const HubSubscriber::Messages& messages,
                                 const std::string& topic_base) {
  const std::string prefix = topic_base + "/events/";
  std::vector<HubEvent> out;
  for (const auto& m : messages) {
    if (m.topic.compare(0, prefix.size(), prefix) != 0) continue;
    HubEvent e;
    e.topic = m.topic;
    e.message = m;
    e.payload = nlohmann::json::parse(m.payload, nullptr, false);
    if (e.payload.is_object()) {
      if (e.payload.contains("id") && e.payload["id"].is_string()) {
        e.id = e.payload["id"].get<std::string>();
      }
      if (e.payload.contains("seq") && e.payload["seq"].is_number_integer()) {
        e.seq = e.payload["seq"].get<int64_t>();
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

::testing::AssertionResult first_arrivals_gap_free(const std::vector<HubEvent>& events,
                                                   int64_t* highest,
                                                   const std::set<int64_t>& late) {
  std::unordered_map<int64_t, std::string> id_of_seq;
  std::unordered_map<std::string, int64_t> seq_of_id;
  int64_t next = 1;
  int64_t top = 0;  // the highest seq seen
  size_t redeliveries = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const HubEvent& e = events[i];
    if (!e.payload.is_object() || e.id.empty() || e.seq < 0) {
      return ::testing::AssertionFailure()
             << "hub message #" << i << " on " << e.topic
             << " lacks a JSON object payload with string id and integer seq: "
             << e.message.payload;
    }
    auto sit = seq_of_id.find(e.id);
    if (sit != seq_of_id.end() && sit->second != e.seq) {
      return ::testing::AssertionFailure()
             << "id " << e.id << " arrived with seq " << sit->second << " and later with seq "
             << e.seq << " (message #" << i << ")";
    }
    auto it = id_of_seq.find(e.seq);
    if (it != id_of_seq.end()) {
      if (it->second != e.id) {
        return ::testing::AssertionFailure()
               << "seq " << e.seq << " arrived with id " << it->second << " and later with id "
               << e.id << " (message #" << i << ")";
      }
      ++redeliveries;
      continue;
    }
    if (late.count(e.seq)) {
      id_of_seq.emplace(e.seq, e.id);
      seq_of_id.emplace(e.id, e.seq);
      top = std::max(top, e.seq);
      continue;
    }
    while (late.count(next)) ++next;
    if (e.seq != next) {
      return ::testing::AssertionFailure()
             << "first arrival #" << id_of_seq.size() << " (hub message #" << i << ") has seq "
             << e.seq << " but the next new seq should be " << next
             << (e.seq > next ? " (gap or reordering)" : " (out of order)");
    }
    id_of_seq.emplace(e.seq, e.id);
    seq_of_id.emplace(e.id, e.seq);
    top = std::max(top, e.seq);
    ++next;
  }
  if (highest) *highest = top;
  return ::testing::AssertionSuccess() << id_of_seq.size() << " distinct seqs 1.." << top << ", "
                                       << redeliveries << " redeliveries";
}

std::map<int64_t, std::string> first_arrival_ids(const std::vector<HubEvent>& events) {
  std::map<int64_t, std::string> out;
  for (const auto& e : events) {
    if (e.seq >= 0) out.emplace(e.seq, e.id);
  }
  return out;
}

size_t acked_not_delivered(const std::vector<HubEvent>& events,
                           const std::map<std::string, int64_t>& acked) {
  const auto ids = first_arrival_ids(events);
  size_t missing = 0;
  for (const auto& [id, seq] : acked) {
    auto it = ids.find(seq);
    if (it == ids.end() || it->second != id) {
      if (++missing <= 5) {
        ADD_FAILURE() << "acked " << id << " seq " << seq << " arrived as "
                      << (it == ids.end() ? std::string("nothing") : it->second);
      }
    }
  }
  return missing;
}

std::string tail_lines(const std::string& text, size_t max_lines) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out = lines.size() > max_lines ? "...\n" : "";
  for (size_t i = lines.size() > max_lines ? lines.size() - max_lines : 0; i < lines.size(); ++i) {
    out += lines[i] + "\n";
  }
  return out;
}

}  // namespace edgesync::test
