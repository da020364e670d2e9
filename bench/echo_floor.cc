#include "bench/echo_floor.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>

#include "bench/harness.h"
#include "tests/harness/net_util.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::bench {
namespace {

// The shape of the agent's reply to the bench's events.
constexpr char kReply[] = "{\"ok\":true,\"id\":\"p64r0-063-000012345\",\"seq\":1234567,\"duplicate\":false}\n";
constexpr size_t kReplyLen = sizeof kReply - 1;

struct Conn {
  std::string out;
  size_t sent = 0;
  bool want_write = false;
};

// Writes what is pending; false if the connection failed.
bool flush(int fd, Conn& c) {
  while (c.sent < c.out.size()) {
    ssize_t n = ::send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return true;
    } else {
      return false;
    }
  }
  c.out.clear();
  c.sent = 0;
  return true;
}

}  // namespace

int echo_server_main(const std::string& socket_path) {
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, socket_path.c_str(), sizeof a.sun_path - 1);
  ::unlink(socket_path.c_str());
  if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(lfd, 512) != 0) {
    std::fprintf(stderr, "echo server: cannot listen on %s: %s\n", socket_path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::unordered_map<int, Conn> conns;
  auto close_conn = [&](int fd) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    conns.erase(fd);
  };
  epoll_event events[256];
  char buf[65536];
  while (true) {
    int n = ::epoll_wait(ep, events, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 1;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        int c;
        while ((c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          epoll_event ce{};
          ce.events = EPOLLIN;
          ce.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
          conns[c];
        }
        continue;
      }
      Conn& conn = conns[fd];
      bool dead = (events[i].events & (EPOLLERR | EPOLLHUP)) != 0 &&
                  (events[i].events & EPOLLIN) == 0;
      if (!dead && (events[i].events & EPOLLIN)) {
        while (true) {
          ssize_t k = ::recv(fd, buf, sizeof buf, 0);
          if (k > 0) {
            // One reply per complete line; a partial line's newline arrives with a later read.
            for (const char* p = buf; (p = static_cast<const char*>(
                                           std::memchr(p, '\n', buf + k - p))) != nullptr;
                 ++p) {
              conn.out.append(kReply, kReplyLen);
            }
            continue;
          }
          if (k < 0 && errno == EINTR) continue;
          if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          dead = true;  // EOF or error
          break;
        }
      }
      if (!dead && !flush(fd, conn)) dead = true;
      if (dead) {
        close_conn(fd);
        continue;
      }
      const bool want_write = !conn.out.empty();
      if (want_write != conn.want_write) {
        conn.want_write = want_write;
        epoll_event me{};
        me.events = EPOLLIN | (want_write ? uint32_t{EPOLLOUT} : 0u);
        me.data.fd = fd;
        ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &me);
      }
    }
  }
}

EchoServer::EchoServer(const std::string& self_exe, const std::string& dir)
    : socket_(dir + "/echo.sock") {
  child_.spawn({self_exe, "--echo-server", socket_}, dir + "/echo.log");
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!test::unix_socket_accepts(socket_)) {
    if (!child_.running() || Clock::now() > deadline) {
      throw std::runtime_error("echo server did not start; log:\n" +
                               test::read_file(dir + "/echo.log"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

EchoServer::~EchoServer() { child_.stop(std::chrono::seconds(5)); }

}  // namespace edgesync::bench
