#include "bench/report.h"

#include <cmath>
#include <cstdio>

namespace edgesync::bench {

std::string fmt(const char* f, double v) {
  // A figure that could not be measured (0/0, x/0) must not read as a number.
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string bytes_per_event(int64_t bytes, int64_t events) {
  if (bytes < 0 || events <= 0) return "n/a";
  return fmt("%.0f B", static_cast<double>(bytes) / static_cast<double>(events));
}

void progress(const std::string& what) {
  std::fprintf(stderr, "  ... %s\n", what.c_str());
}

void print_section(const std::string& title) { std::printf("\n%s\n", title.c_str()); }

void print_row(const std::string& a, const std::string& b, const std::string& c) {
  std::printf("  %-58s %16s  %s\n", a.c_str(), b.c_str(), c.c_str());
}

void print_targets(const std::vector<Target>& targets) {
  print_section("Targets");
  std::printf("  %-46s %-40s %-10s %s\n", "figure", "measured", "target", "result");
  for (const auto& t : targets) {
    std::printf("  %-46s %-40s %-10s %s\n", t.what.c_str(), t.measured.c_str(), t.goal.c_str(),
                t.pass ? "PASS" : "MISS");
  }
}

}  // namespace edgesync::bench
