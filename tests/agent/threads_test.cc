// platform/threads.h: the delivery thread's background class must reach the threads it starts
// later (paho's), and must not leak to the thread that started it.
#include "platform/threads.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <string>
#include <thread>

namespace edgesync::platform {
namespace {

std::string thread_name() {
  char buf[16] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}

TEST(Threads, BackgroundClassIsInheritedByThreadsStartedLaterAndStaysOffTheCaller) {
  const std::string before = current_thread_sched_class();
  std::string mine, child;
  std::thread t([&] {
    ASSERT_TRUE(make_current_thread_background());
    mine = current_thread_sched_class();
    std::thread c([&] { child = current_thread_sched_class(); });
    c.join();
  });
  t.join();
  // SCHED_IDLE where the kernel allows it; the nice-19 fallback keeps the normal class.
  EXPECT_TRUE(mine == "idle" || mine == "normal") << mine;
  EXPECT_EQ(child, mine) << "a thread started from a background thread must inherit its class";
  EXPECT_EQ(current_thread_sched_class(), before) << "the calling thread's class changed";
}

TEST(Threads, NamesAreCutToWhatTheKernelKeeps) {
  std::string seen;
  std::thread t([&] {
    set_current_thread_name("a-very-long-thread-name");
    seen = thread_name();
  });
  t.join();
  EXPECT_EQ(seen, "a-very-long-thr");
}

}  // namespace
}  // namespace edgesync::platform
