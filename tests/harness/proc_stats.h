// Readings of a running process from /proc: memory, and CPU time in all and per thread. Each
// returns "unreadable" instead of throwing, since the process may have exited meanwhile.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

namespace edgesync::test {

// /proc/<pid>/status field in kB ("VmHWM", "VmRSS"); -1 if unreadable.
int64_t proc_status_kb(pid_t pid, const char* field);
// utime + stime in clock ticks from /proc/<pid>/stat; -1 if unreadable.
int64_t proc_cpu_ticks(pid_t pid);
// utime + stime per thread name from /proc/<pid>/task/*/stat (threads of one name summed).
std::map<std::string, int64_t> proc_thread_cpu_ticks(pid_t pid);

}  // namespace edgesync::test
