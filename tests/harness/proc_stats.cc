#include "tests/harness/proc_stats.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/harness/temp_dir.h"

namespace edgesync::test {
namespace {

// utime + stime from a /proc/.../stat file; -1 if unreadable.
int64_t stat_cpu_ticks(const std::string& path) {
  std::string s = read_file(path);
  size_t close = s.rfind(')');  // the name before it may hold spaces and parentheses
  if (close == std::string::npos) return -1;
  std::istringstream in(s.substr(close + 2));
  // Fields after "(comm)": state(3) ... utime(14) stime(15).
  std::string tok;
  int64_t utime = 0, stime = 0;
  for (int field = 3; field <= 15 && (in >> tok); ++field) {
    if (field == 14) utime = std::atoll(tok.c_str());
    if (field == 15) stime = std::atoll(tok.c_str());
  }
  return utime + stime;
}

}  // namespace

int64_t proc_status_kb(pid_t pid, const char* field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string want = std::string(field) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(want, 0) == 0) return std::atoll(line.c_str() + want.size());
  }
  return -1;
}

int64_t proc_cpu_ticks(pid_t pid) {
  return stat_cpu_ticks("/proc/" + std::to_string(pid) + "/stat");
}

std::map<std::string, int64_t> proc_thread_cpu_ticks(pid_t pid) {
  std::map<std::string, int64_t> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(dir, ec)) {
    const std::string path = task.path().string();
    std::string name = read_file(path + "/comm");
    if (!name.empty() && name.back() == '\n') name.pop_back();
    const int64_t ticks = stat_cpu_ticks(path + "/stat");
    if (ticks >= 0) out[name] += ticks;
  }
  return out;
}

}  // namespace edgesync::test
