#include "platform/threads.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace edgesync::platform {

void set_current_thread_name(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

bool make_current_thread_background() {
  sched_param p{};
  p.sched_priority = 0;
  // pid 0: the calling thread (Linux applies scheduling attributes per thread).
  if (::sched_setscheduler(0, SCHED_IDLE, &p) == 0) return true;
  // Per thread too: setpriority with a thread id.
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  return ::setpriority(PRIO_PROCESS, tid, 19) == 0;
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
