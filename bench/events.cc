#include "bench/events.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace edgesync::bench {

std::string event_data(size_t id_len) {
  std::string data =
      "{\"register\":7,\"cashier\":\"c-0142\",\"items\":[{\"sku\":\"4006381333931\",\"qty\":2,"
      "\"price_cents\":1299},{\"sku\":\"5012345678900\",\"qty\":1,\"price_cents\":450}],"
      "\"total_cents\":3048,\"currency\":\"EUR\",\"note\":\"";
  const std::string head = std::string("{\"id\":\"\",\"type\":\"") + kType +
                           "\",\"occurred_at\":\"" + kOccurredAt + "\",\"data\":";
  size_t fixed = head.size() + id_len + data.size() + 3;  // "\"}" + "}"
  if (fixed < kRequestBytes) data.append(kRequestBytes - fixed, 'x');
  data += "\"}";
  return data;
}

std::string events_topic_filter() {
  return std::string("edgesync/v1/") + kStore + "/" + kDevice + "/events/#";
}

std::string event_topic() {
  return std::string("edgesync/v1/") + kStore + "/" + kDevice + "/events/" + kType;
}

std::string EventFactory::id(int64_t thread, int64_t i) const {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s-%03" PRId64 "-%09" PRId64, prefix.c_str(), thread, i);
  return buf;
}

std::string EventFactory::line(int64_t thread, int64_t i) const {
  std::string out;
  out.reserve(kRequestBytes + 8);
  out.append("{\"id\":\"").append(id(thread, i)).append("\",\"type\":\"").append(kType);
  out.append("\",\"occurred_at\":\"").append(kOccurredAt).append("\",\"data\":");
  out.append(data).append("}\n");
  return out;
}

int64_t EventFactory::counted_size() const {
  return static_cast<int64_t>(data.size() + 2 * id(0, 0).size() + std::strlen(kType) +
                              std::strlen(kOccurredAt) + 40);
}

std::string hub_payload(const std::string& id, int64_t seq, const std::string& data) {
  return "{\"id\":\"" + id + "\",\"seq\":" + std::to_string(seq) + ",\"type\":\"" + kType +
         "\",\"device_id\":\"" + kDevice + "\",\"store_id\":\"" + kStore +
         "\",\"occurred_at\":\"" + kOccurredAt +
         "\",\"received_at\":\"2024-05-01T12:34:57.001Z\",\"data\":" + data + "}";
}

std::string payload_event_id(const char* payload, size_t size) {
  static constexpr char kKey[] = "{\"id\":\"";
  constexpr size_t kKeyLen = sizeof kKey - 1;
  if (size < kKeyLen || std::memcmp(payload, kKey, kKeyLen) != 0) return {};
  const char* start = payload + kKeyLen;
  const void* end = std::memchr(start, '"', size - kKeyLen);
  if (!end) return {};
  return std::string(start, static_cast<const char*>(end));
}

int64_t payload_seq(const char* payload, size_t size) {
  static constexpr char kKey[] = "\",\"seq\":";  // after the id's closing quote
  const std::string_view p(payload, size);
  const size_t at = p.find(kKey);
  if (at == std::string_view::npos) return -1;
  int64_t seq = 0;
  size_t i = at + sizeof kKey - 1;
  if (i >= p.size() || p[i] < '0' || p[i] > '9') return -1;
  for (; i < p.size() && p[i] >= '0' && p[i] <= '9'; ++i) seq = seq * 10 + (p[i] - '0');
  return seq;
}

}  // namespace edgesync::bench
