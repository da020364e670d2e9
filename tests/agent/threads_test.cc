// platform/threads.h: the delivery thread's lower priority must reach the threads it starts
// later (paho's), must not leak to the thread that started it, and must stay in the normal
// scheduling class (SCHED_IDLE could be starved by any busy process).
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

TEST(Threads, LowerPriorityIsInheritedByThreadsStartedLaterAndStaysOffTheCaller) {
  const int before = current_thread_nice();
  int mine = 0, child = 0;
  std::string mine_class, child_class;
  std::thread t([&] {
    ASSERT_TRUE(lower_current_thread_priority(kDeliveryNiceSteps));
    mine = current_thread_nice();
    mine_class = current_thread_sched_class();
    std::thread c([&] {
      child = current_thread_nice();
      child_class = current_thread_sched_class();
    });
    c.join();
  });
  t.join();
  EXPECT_EQ(mine, std::min(19, before + kDeliveryNiceSteps));
  EXPECT_EQ(mine_class, "normal") << "delivery must stay in the normal class";
  EXPECT_EQ(child, mine) << "a thread started from the delivery thread must inherit its nice";
  EXPECT_EQ(child_class, "normal");
  EXPECT_EQ(current_thread_nice(), before) << "the calling thread's priority changed";
}

TEST(Threads, LoweringIsRelativeAndStopsAtNineteen) {
  int seen = 0;
  std::thread t([&] {
    ASSERT_TRUE(lower_current_thread_priority(17));
    ASSERT_TRUE(lower_current_thread_priority(kDeliveryNiceSteps));
    seen = current_thread_nice();
  });
  t.join();
  EXPECT_EQ(seen, 19);
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
