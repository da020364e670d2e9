// Busy processes at the test's (normal) priority, to stand in for a POS application that keeps
// every core busy. Stopped on destruction, and killed with the test if it dies first.
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace edgesync::test {

class CpuHog {
 public:
  explicit CpuHog(int processes) {
    for (int i = 0; i < processes; ++i) {
      pid_t pid = ::fork();
      if (pid == 0) {
        // A hog left spinning would slow every test after it.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        volatile unsigned long spin = 0;
        for (;;) spin = spin + 1;
      }
      if (pid > 0) pids_.push_back(pid);
    }
  }
  ~CpuHog() {
    for (pid_t pid : pids_) ::kill(pid, SIGKILL);
    for (pid_t pid : pids_) ::waitpid(pid, nullptr, 0);
  }
  CpuHog(const CpuHog&) = delete;
  CpuHog& operator=(const CpuHog&) = delete;
  size_t size() const { return pids_.size(); }

  // Two per core this process may run on (a CI container can be pinned to 2 of many), capped.
  static int two_per_core() {
    cpu_set_t set;
    CPU_ZERO(&set);
    const int cores = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 2;
    return std::clamp(2 * cores, 2, 16);
  }

 private:
  std::vector<pid_t> pids_;
};

}  // namespace edgesync::test
