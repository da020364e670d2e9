// libFuzzer target: the HTTP ingest body rules (agent/http_body.h) on any body, with or without
// an Idempotency-Key. Beyond crashes, sanitizer reports and stack exhaustion, it checks what the
// HTTP contract promises: a request refused whole submits nothing; one event is one item; an
// array's items are each valid JSON and at most kMaxEventsPerRequest; nothing over the line
// bound reaches the core; every reply made here is a JSON error object; and a key given with
// one JSON object becomes that object's id.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/http_body.h"

namespace {

using nlohmann::json;

constexpr size_t kMaxLine = 512;

[[noreturn]] void broken(const char* what, const std::string& body) {
  std::cerr << "invariant broken: " << what << "\nbody: " << body << "\n";
  std::abort();
}

void check_reply(const edgesync::agent::IngestReply& r, const std::string& body) {
  if (r.ok) broken("a reply made before the core is ok", body);
  const json j = json::parse(r.text, nullptr, false);
  if (!j.is_object() || j.value("ok", true) || !j.contains("error")) {
    broken("a reply is not a JSON error object", body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgesync::agent;
  // The first byte: odd sends an Idempotency-Key, the text up to the first newline.
  if (size == 0) return 0;
  std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::optional<std::string> key;
  if (data[0] & 1) {
    const auto nl = rest.find('\n');
    if (nl == std::string::npos) return 0;
    key = rest.substr(0, nl);
    rest = rest.substr(nl + 1);
  }
  const std::string& body = rest;
  const BodyPlan plan = plan_body(body, key, kMaxLine);
  if (plan.refused) {
    if (!plan.items.empty()) broken("a refused request still submits events", body);
    check_reply(*plan.refused, body);
    return 0;
  }
  if (!plan.array && plan.items.size() != 1) broken("one event is not one item", body);
  if (plan.items.size() > kMaxEventsPerRequest) broken("more events than allowed", body);
  for (const auto& item : plan.items) {
    if (item.reply) {
      check_reply(*item.reply, body);
      continue;
    }
    if (item.line.size() > kMaxLine) broken("a line over the bound reaches the core", body);
    if (plan.array && !json::accept(item.line)) broken("an array element is not JSON", body);
  }
  if (key && !plan.array && !plan.items[0].reply) {
    const json event = json::parse(plan.items[0].line, nullptr, false);
    // (An object nested beyond an event's 64 levels is left for the core to refuse.)
    const auto opens = std::count_if(body.begin(), body.end(),
                                     [](char c) { return c == '[' || c == '{'; });
    if (event.is_object() && opens < 60 && event.value("id", json()) != json(*key)) {
      broken("the Idempotency-Key is not the event's id", body);
    }
  }
  return 0;
}
