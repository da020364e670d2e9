// Readings of a running process from /proc: memory, CPU time in all and per thread, and each
// thread's scheduling. Each returns "unreadable" instead of throwing, since the process may have
// exited meanwhile.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace edgesync::test {

// /proc/<pid>/status field in kB ("VmHWM", "VmRSS"); -1 if unreadable.
int64_t proc_status_kb(pid_t pid, const char* field);
// utime + stime in clock ticks from /proc/<pid>/stat; -1 if unreadable.
int64_t proc_cpu_ticks(pid_t pid);

// One thread as /proc/<pid>/task/<tid>/stat shows it.
struct ThreadStat {
  std::string name;       // comm (field 2): what the thread set with prctl(PR_SET_NAME)
  int policy = -1;        // field 41: SCHED_OTHER 0, SCHED_IDLE 5, ...
  int nice = 0;           // field 19
  int64_t cpu_ticks = 0;  // utime + stime (fields 14, 15)
};
// Every thread of `pid` that could be read; empty if the process is gone.
std::vector<ThreadStat> proc_threads(pid_t pid);
// utime + stime per thread name (threads of one name summed).
std::map<std::string, int64_t> proc_thread_cpu_ticks(pid_t pid);

}  // namespace edgesync::test
