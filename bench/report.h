// Output helpers: progress lines on stderr, aligned result rows, the Targets table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgesync::bench {

// printf of one number; "n/a" for nan and inf.
std::string fmt(const char* f, double v);
// "n/a" when bytes < 0 (the counter could not be read) or there were no events.
std::string bytes_per_event(int64_t bytes, int64_t events);

void progress(const std::string& what);
void print_section(const std::string& title);
void print_row(const std::string& a, const std::string& b, const std::string& c = "");

struct Target {
  std::string what;
  std::string measured;
  std::string goal;
  bool pass;
};
void print_targets(const std::vector<Target>& targets);

}  // namespace edgesync::bench
