#include "events/names.h"

namespace edgesync::events {

bool is_valid_type(std::string_view t) {
  // Segments of [a-z][a-z0-9_]* joined by '.', at least two; it becomes an MQTT topic level.
  if (t.empty() || t.size() > 128) return false;
  int segments = 0;
  bool at_start = true;
  for (char c : t) {
    if (at_start) {
      if (c < 'a' || c > 'z') return false;
      at_start = false;
      ++segments;
    } else if (c == '.') {
      at_start = true;
    } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return !at_start && segments >= 2;
}

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace edgesync::events
