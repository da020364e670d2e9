#include "tests/support/workload.h"

#include <thread>

#include "tests/support/events.h"
#include "tests/support/producer.h"

namespace edgesync::test {
namespace {

const char* const kTypes[] = {"inventory.adjusted", "sale.completed", "till.drawer_opened.v2",
                              "loyalty.points.earned"};

nlohmann::json make_data(size_t i) {
  using nlohmann::json;
  switch (i % 5) {
    case 0:
      return json{{"sku", "SKU-" + std::to_string(i)},
                  {"delta", -static_cast<int64_t>(i % 7) - 1},
                  {"location", {{"aisle", static_cast<int64_t>(i % 30)}, {"bin", "B\u00e9-7"}}}};
    case 1:
      return json{{"total_cents", static_cast<int64_t>(i * 137)},
                  {"lines", json::array({json{{"sku", "A"}, {"qty", 2}, {"price", 1.25}},
                                         json{{"sku", "B"}, {"qty", 1}, {"price", 0.1}}})},
                  {"paid", true},
                  {"customer", nullptr}};
    case 2:
      return json{{"note", "quote \" backslash \\ newline \n tab \t caf\u00e9 \u2615 \U0001F600"},
                  {"big", int64_t{9007199254740993}},
                  {"neg", int64_t{-9223372036854775807}},
                  {"empty", json::object()},
                  {"list", json::array()}};
    case 3:
      return json::object();
    default:
      return json{{"i", static_cast<int64_t>(i)},
                  {"flags", json::array({true, false, nullptr})},
                  {"ratio", 0.5},
                  {"text", std::string(100 + i % 300, 'x')}};
  }
}

}  // namespace

std::vector<SentEvent> make_events(const std::string& id_prefix, size_t n, size_t no_id_every) {
  std::vector<SentEvent> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    SentEvent e;
    if (!(no_id_every > 0 && i % no_id_every == no_id_every - 1)) {
      e.id = id_prefix + "-" + std::to_string(i);
    }
    e.type = kTypes[i % (sizeof kTypes / sizeof kTypes[0])];
    e.data = make_data(i);
    if (i % 3 == 0)
      e.occurred_at =
          "2024-05-01T12:30:" + std::string(i % 60 < 10 ? "0" : "") + std::to_string(i % 60) + "Z";
    if (i % 4 == 1) e.trace_id = "trace-" + id_prefix + "-" + std::to_string(i);
    e.line = make_request(e.id, e.type, e.data, e.occurred_at, e.trace_id);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> lines_of(const std::vector<SentEvent>& events) {
  std::vector<std::string> out;
  out.reserve(events.size());
  for (const auto& e : events) out.push_back(e.line);
  return out;
}

std::vector<std::vector<nlohmann::json>> send_concurrently(
    const std::string& socket_path, const std::vector<std::vector<std::string>>& streams,
    std::chrono::milliseconds timeout, ReplyCounter* counter) {
  std::vector<std::vector<nlohmann::json>> replies(streams.size());
  std::vector<std::thread> threads;
  for (size_t k = 0; k < streams.size(); ++k) {
    threads.emplace_back([&, k] {
      try {
        Producer p(socket_path);
        replies[k] = p.send_all(streams[k], timeout, [&](const nlohmann::json&) {
          if (counter) counter->add();
        });
      } catch (const std::exception&) {
        // Could not connect (e.g. the agent was killed): no replies for this stream.
      }
    });
  }
  for (auto& t : threads) t.join();
  return replies;
}

}  // namespace edgesync::test
