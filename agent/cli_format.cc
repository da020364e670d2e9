#include "agent/cli_format.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "events/json_text.h"

namespace edgesync::agent {

std::string human_bytes(int64_t b) {
  char buf[32];
  if (b < 1024) return std::to_string(b) + " B";
  if (b < (int64_t{1} << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  } else if (b < (int64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
  } else if (b < (int64_t{1} << 40)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", b / 1073741824.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f TiB", b / 1099511627776.0);
  }
  return buf;
}

bool use_colour() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr &&
         !(term && std::string(term) == "dumb");
}

nlohmann::json data_json(const std::string& data) {
  nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) return j;
  // Dumped with invalid UTF-8 replaced, then read back: a string any later dump can print.
  const std::string literal =
      events::json_text(nlohmann::json(data));
  return nlohmann::json::parse(literal);
}

std::string human_age(double s) {
  char buf[32];
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  } else if (s < 7200) {
    std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  }
  return buf;
}

void print_field(const char* label, const std::string& value) {
  std::printf("%-18s %s\n", label, value.c_str());
}

}  // namespace edgesync::agent
