// The ingest socket at its limits:
//  - a producer that pipelines requests and does not read its replies must not make the agent's
//    memory grow: once a bounded number of replies waits on that connection the agent stops
//    reading it (the producer's writes block), other producers are served meanwhile, and when
//    the producer reads again every request gets its reply, in order;
//  - out of file descriptors, the agent neither spins nor drops the producers waiting in the
//    listen queue: it serves them once descriptors are free again.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

#include "tests/harness/proc_stats.h"
#include "tests/support/hub_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Far above what the agent may hold for one connection (1,024 replies, plus one 16 KiB read of
// requests and the kernel's socket buffers both ways) and far below what a producer could
// push if the agent kept reading.
constexpr int64_t kStallBound = 20000;
constexpr int64_t kGiveUpAt = 100000;

int connect_nonblocking(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + std::string(strerror(errno)));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error("connect " + path + ": " + strerror(e));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

bool wait_for(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

int open_fd_count(pid_t pid) {
  int n = 0;
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

class IngestLimitsTest : public HubFixture {};

TEST_F(IngestLimitsTest, ProducerThatDoesNotReadIsPausedAndLosesNothing) {
  agent_->start();
  const int fd = connect_nonblocking(agent_->socket_path());

  // Write requests without reading a single reply until the socket stays unwritable for 2 s.
  std::string pending;  // the unsent rest of the current line
  int64_t written = 0;  // complete lines handed to the kernel
  while (written < kGiveUpAt) {
    if (pending.empty()) {
      pending = make_request("bp-" + std::to_string(written), "sale.completed",
                             json{{"n", written}}) + "\n";
    }
    ssize_t n = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
    if (n > 0) {
      pending.erase(0, static_cast<size_t>(n));
      if (pending.empty()) ++written;
      continue;
    }
    ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) << strerror(errno);
    if (!wait_for(fd, POLLOUT, 2s)) break;  // the agent stopped reading us
  }
  ASSERT_LT(written, kStallBound)
      << "the agent kept reading a producer that never reads its replies";
  ASSERT_GT(written, 1000) << "the agent should take a deep pipeline before pausing";

  // Another producer is served while that one is paused.
  Producer other(agent_->socket_path());
  json r = other.request(make_request("bp-other", "sale.completed", json::object()));
  EXPECT_EQ(r.value("ok", false), true) << r.dump();

  // Finish the partial line, then read every reply: all ok, in request order, gap-free seqs.
  int64_t to_send = written + (pending.empty() ? 0 : 1);
  std::string in;
  int64_t replies = 0;
  int64_t last_seq = 0;
  std::set<int64_t> seqs;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (replies < to_send && std::chrono::steady_clock::now() < deadline) {
    if (!pending.empty()) {
      ssize_t n = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
      if (n > 0) pending.erase(0, static_cast<size_t>(n));
    }
    wait_for(fd, POLLIN | (pending.empty() ? 0 : POLLOUT), 1s);
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) continue;
    in.append(buf, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = in.find('\n', start)) != std::string::npos) {
      json reply = json::parse(in.substr(start, nl - start));
      start = nl + 1;
      ASSERT_EQ(reply.value("ok", false), true) << reply.dump();
      ASSERT_EQ(reply.value("id", std::string()), "bp-" + std::to_string(replies)) << reply.dump();
      int64_t seq = reply.value("seq", int64_t{0});
      ASSERT_GT(seq, last_seq) << "replies out of request order";
      last_seq = seq;
      seqs.insert(seq);
      ++replies;
    }
    in.erase(0, start);
  }
  ::close(fd);
  EXPECT_EQ(replies, to_send);
  EXPECT_EQ(static_cast<int64_t>(seqs.size()), to_send);

  json status = status_json();
  EXPECT_EQ(status["outbox"].value("next_seq", int64_t{0}), to_send + 2) << status.dump();
}

TEST_F(IngestLimitsTest, OutOfFileDescriptorsTheAgentWaitsAndServesQueuedProducersLater) {
  agent_->start();
  const pid_t pid = agent_->pid();
  // Once the hub link is up the agent opens no descriptors of its own unprompted.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (agent_->log().find("connected to ") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE(agent_->log().find("connected to "), std::string::npos) << agent_->log();
  // Room for two producer connections, no more (soft limit only: lowering the hard limit could
  // not be undone without privilege).
  const int in_use = open_fd_count(pid);
  ASSERT_GT(in_use, 0);
  rlimit before{};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, nullptr, &before), 0) << strerror(errno);
  rlimit tight{static_cast<rlim_t>(in_use + 2), before.rlim_max};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &tight, nullptr), 0) << strerror(errno);

  std::vector<std::unique_ptr<Producer>> producers;
  for (int i = 0; i < 5; ++i) {
    producers.push_back(std::make_unique<Producer>(agent_->socket_path()));
    if (i < 2) {
      json r = producers[i]->request(make_request("fd-" + std::to_string(i), "sale.completed",
                                                  json::object()));
      ASSERT_EQ(r.value("ok", false), true) << r.dump();
    }
  }
  // Three producers wait in the listen queue and accept fails: the agent must not spin.
  std::this_thread::sleep_for(300ms);
  const int64_t t0 = proc_cpu_ticks(pid);
  ASSERT_GE(t0, 0) << "cannot read /proc/" << pid << "/stat";
  std::this_thread::sleep_for(2s);
  const int64_t t1 = proc_cpu_ticks(pid);
  ASSERT_GE(t1, 0) << "cannot read /proc/" << pid << "/stat";
  const int64_t used = t1 - t0;
  EXPECT_LT(used, 40) << "CPU ticks in 2 s while accept fails (200 = one core busy)";
  EXPECT_NE(agent_->log().find("accepting a producer connection failed"), std::string::npos)
      << agent_->log();
  // The served producers still are.
  json r = producers[0]->request(make_request("fd-0b", "sale.completed", json::object()));
  EXPECT_EQ(r.value("ok", false), true) << r.dump();

  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &before, nullptr), 0) << strerror(errno);
  for (int i = 2; i < 5; ++i) {
    json q = producers[i]->request(
        make_request("fd-" + std::to_string(i), "sale.completed", json::object()), 10s);
    EXPECT_EQ(q.value("ok", false), true) << "queued producer " << i << ": " << q.dump();
  }
  EXPECT_NE(agent_->log().find("accepting producer connections again"), std::string::npos);
}

// True once the agent closed its end: a read returns end of file (or the connection was reset).
bool closed_by_agent(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[256];
  while (std::chrono::steady_clock::now() < deadline) {
    if (!wait_for(fd, POLLIN, 100ms)) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
  }
  return false;
}

// Regression: connections that sent nothing, or half a line, held every ingest.max_connections
// slot, and a new producer's event waited in the listen queue with no reply until they closed
// (20 s and more; for ever if they never close).
TEST_F(IngestLimitsTest, IdleConnectionsGiveWayToAWaitingProducer) {
  agent_->config().max_connections = 4;
  agent_->start();
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(connect_nonblocking(agent_->socket_path()));
    if (i % 2 == 1) {
      const std::string half = R"({"id":"half-)" + std::to_string(i) + R"(","type":"sale)";
      ASSERT_EQ(::write(idle.back(), half.data(), half.size()), static_cast<ssize_t>(half.size()));
    }
  }
  std::this_thread::sleep_for(1s);  // all four now hold their slots, idle

  Producer late(agent_->socket_path());
  const auto t0 = std::chrono::steady_clock::now();
  json r = late.request(make_request("late-1", "sale.completed", json::object()), 10s);
  EXPECT_EQ(r.value("ok", false), true) << r.dump();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "the waiting producer was not let in";
  int closed = 0;
  for (int fd : idle) closed += closed_by_agent(fd, 200ms) ? 1 : 0;
  EXPECT_GE(closed, 1) << "no idle connection gave way";
  EXPECT_NE(agent_->log().find("closing the ones idle the longest"), std::string::npos)
      << agent_->log();
  for (int fd : idle) ::close(fd);
}

// A producer that keeps sending is never closed for another: only idle ones give way.
TEST_F(IngestLimitsTest, AnActiveProducerIsNotClosedForAWaitingProducer) {
  agent_->config().max_connections = 1;
  agent_->start();
  Producer first(agent_->socket_path());
  json r1 = first.request(make_request("first-1", "sale.completed", json::object()), 10s);
  ASSERT_EQ(r1.value("ok", false), true) << r1.dump();
  // The only slot is held by a producer that keeps sending: it is never idle for long.
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::thread busy([&] {
    for (int i = 2; !stop; ++i) {
      json r = first.request(make_request("first-" + std::to_string(i), "sale.completed",
                                          json::object()),
                             10s);
      if (r.value("ok", false)) ++sent;
      std::this_thread::sleep_for(50ms);
    }
  });
  int waiting = connect_nonblocking(agent_->socket_path());
  const std::string line = make_request("waiting-1", "sale.completed", json::object()) + "\n";
  ASSERT_EQ(::write(waiting, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(wait_for(waiting, POLLIN, 0ms)) << "the waiting producer got in while the slot was busy";
  stop = true;
  busy.join();
  EXPECT_GE(sent.load(), 10) << "the busy producer was disturbed";
  // Once the busy producer goes idle, the waiting one gets in.
  ASSERT_TRUE(wait_for(waiting, POLLIN, 5s)) << "the waiting producer never got in";
  ::close(waiting);
}

TEST_F(IngestLimitsTest, AConnectionStuckMidLineIsClosedAfterTheIdleTimeout) {
  agent_->config().idle_timeout_s = 1;
  agent_->start();
  int stuck = connect_nonblocking(agent_->socket_path());
  const std::string half = R"({"id":"stuck-1","type":"sale.compl)";
  ASSERT_EQ(::write(stuck, half.data(), half.size()), static_cast<ssize_t>(half.size()));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(closed_by_agent(stuck, 5s)) << "a connection stuck mid-line was kept open";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms) << "closed before the timeout";
  ::close(stuck);
  // A producer that sends whole lines is not affected, however long it pauses.
  Producer slow(agent_->socket_path());
  json r1 = slow.request(make_request("slow-1", "sale.completed", json::object()), 10s);
  ASSERT_EQ(r1.value("ok", false), true) << r1.dump();
  std::this_thread::sleep_for(2s);
  json r2 = slow.request(make_request("slow-2", "sale.completed", json::object()), 10s);
  EXPECT_EQ(r2.value("ok", false), true) << r2.dump();
  EXPECT_NE(agent_->log().find("sent part of a line"), std::string::npos) << agent_->log();
}

}  // namespace
}  // namespace edgesync::test
