#include "tests/harness/proc_stats.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/harness/temp_dir.h"

namespace edgesync::test {
namespace {

// A /proc/.../stat line split into the name and the fields after it.
struct StatLine {
  std::string name;
  std::vector<std::string> rest;  // rest[0] is field 3 (state)

  // Field n (1-based, as in proc(5)), n >= 3; `missing` if the kernel did not write it.
  int64_t field(size_t n, int64_t missing = 0) const {
    return n - 3 < rest.size() ? std::atoll(rest[n - 3].c_str()) : missing;
  }
};

// False if unreadable (the process or thread is gone).
bool read_stat(const std::string& path, StatLine* out) {
  const std::string s = read_file(path);
  // The name is in parentheses and may itself hold spaces and parentheses: it ends at the last ')'.
  const size_t open = s.find('('), close = s.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  out->name = s.substr(open + 1, close - open - 1);
  out->rest.clear();
  std::istringstream in(s.substr(close + 1));
  std::string tok;
  while (in >> tok) out->rest.push_back(tok);
  return !out->rest.empty();
}

int64_t cpu_ticks(const StatLine& st) { return st.field(14) + st.field(15); }

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
  StatLine st;
  return read_stat("/proc/" + std::to_string(pid) + "/stat", &st) ? cpu_ticks(st) : -1;
}

std::vector<ThreadStat> proc_threads(pid_t pid) {
  std::vector<ThreadStat> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(dir, ec)) {
    StatLine st;
    if (!read_stat(task.path().string() + "/stat", &st)) continue;  // the thread exited
    ThreadStat t;
    t.name = st.name;
    t.policy = static_cast<int>(st.field(41, -1));
    t.nice = static_cast<int>(st.field(19));
    t.cpu_ticks = cpu_ticks(st);
    out.push_back(std::move(t));
  }
  return out;
}

std::map<std::string, int64_t> proc_thread_cpu_ticks(pid_t pid) {
  std::map<std::string, int64_t> out;
  for (const ThreadStat& t : proc_threads(pid)) out[t.name] += t.cpu_ticks;
  return out;
}

}  // namespace edgesync::test
