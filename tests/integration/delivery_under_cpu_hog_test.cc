// Delivery must not starve while another process keeps every core busy at normal priority (the
// POS application doing a heavy job on a store box). The delivery threads run below ingest but
// in the normal scheduling class; in SCHED_IDLE, as they once were, such a hog held events
// back for seconds each.
#include <gtest/gtest.h>
#include <signal.h>
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

  const long cores = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
  CpuHog hog(static_cast<int>(2 * cores));
  ASSERT_EQ(hog.size(), static_cast<size_t>(2 * cores));
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
  std::printf("write -> hub under a %zu-process CPU hog: mean %.1f ms, median %.1f ms, max %.1f ms\n",
              hog.size(), mean, median, worst);
  // Measured on a 2-core VM with other builds running: nice +5 in the normal class, mean 3-18 ms,
  // max 16-35 ms; SCHED_IDLE (the old policy), mean 150-190 ms, max 0.8-1.2 s. The bounds leave
  // room for a slow CI machine.
  EXPECT_LT(mean, 50.0);
  EXPECT_LT(worst, 500.0);
}

}  // namespace
}  // namespace edgesync::test
