// Delivery must not starve while another process keeps every core busy at normal priority (the
// POS application doing a heavy job on a store box). The delivery threads run below ingest but
// in the normal scheduling class; in SCHED_IDLE, as they once were, such a hog held events
// back for seconds each.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "tests/support/hub_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Busy processes at the test's (normal) priority, two per core, stopped on destruction.
class CpuHog {
 public:
  explicit CpuHog(int processes) {
    for (int i = 0; i < processes; ++i) {
      pid_t pid = ::fork();
      if (pid == 0) {
        // Dies with the test, even if ctest kills it: a hog left spinning would slow every
        // test after it.
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
  size_t size() const { return pids_.size(); }

 private:
  std::vector<pid_t> pids_;
};

class DeliveryUnderCpuHogTest : public HubFixture {};

TEST_F(DeliveryUnderCpuHogTest, EventsReachTheHubPromptlyWhileAnotherProcessHogsEveryCore) {
  if (const char* w = std::getenv("EDGESYNC_BIN_WRAPPER"); w && *w) {
    GTEST_SKIP() << "under an emulator the agent's threads are the emulator's";
  }
  agent_->config().linger_ms = 0;  // this test is about scheduling, not pacing
  agent_->start();
  Producer p(agent_->socket_path());
  // Connected and delivering before the hog starts.
  auto warm = p.request(R"({"id":"warm","type":"inventory.adjusted","data":{"sku":"A1","delta":1}})");
  ASSERT_EQ(warm.value("ok", false), true) << warm.dump();
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(1, 30s)) << "the agent never delivered";

  // The cores this process may run on (a CI container can be pinned to 2 of many), capped.
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cores = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 2;
  const int hogs = std::clamp(2 * cores, 2, 16);
  CpuHog hog(hogs);
  ASSERT_EQ(hog.size(), static_cast<size_t>(hogs));
  constexpr int kEvents = 40;
  std::vector<double> ms;
  for (int i = 1; i <= kEvents; ++i) {
    const auto t = Clock::now();
    auto reply = p.request(R"({"id":"hog-)" + std::to_string(i) +
                           R"(","type":"inventory.adjusted","data":{"sku":"A1","delta":-1}})");
    ASSERT_EQ(reply.value("ok", false), true) << reply.dump();
    ASSERT_TRUE(hub_->wait_for_distinct_seqs(static_cast<size_t>(i) + 1, 30s))
        << "event " << i << " never reached the hub under the CPU hog";
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
  }
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  const double mean = sum / ms.size(), median = ms[ms.size() / 2], worst = ms.back();
  const double p90 = ms[ms.size() * 9 / 10];
  std::printf("write -> hub under a %zu-process CPU hog: mean %.1f ms, median %.1f ms, p90 %.1f ms, "
              "max %.1f ms\n",
              hog.size(), mean, median, p90, worst);
  // Measured on a 2-core VM with other builds running: nice +5 in the normal class, mean 1-6 ms,
  // p90 4-10 ms; SCHED_IDLE (the old policy), mean 52-280 ms, p90 190-940 ms. The bounds leave
  // room for a slow CI machine.
  EXPECT_LT(mean, 25.0);
  EXPECT_LT(p90, 50.0);
}

}  // namespace
}  // namespace edgesync::test
