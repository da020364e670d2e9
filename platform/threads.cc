#include "platform/threads.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace edgesync::platform {
namespace {

id_t current_tid() { return static_cast<id_t>(::syscall(SYS_gettid)); }

}  // namespace

void set_current_thread_name(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

bool lower_current_thread_priority(int steps) {
  // Relative to where the thread is: an agent started at nice 10 must not ask for nice 5, which
  // would be a raise and need a privilege it does not have.
  const int nice = std::min(19, current_thread_nice() + steps);
  // PRIO_PROCESS with a thread id: Linux applies the nice value to that thread only.
  return ::setpriority(PRIO_PROCESS, current_tid(), nice) == 0;
}

int current_thread_nice() {
  errno = 0;
  return ::getpriority(PRIO_PROCESS, current_tid());
}

std::string current_thread_sched_class() {
  switch (::sched_getscheduler(0)) {
    case SCHED_IDLE: return "idle";
    case SCHED_BATCH: return "batch";
    case SCHED_OTHER: return "normal";
    default: return "other";
  }
}

}  // namespace edgesync::platform
