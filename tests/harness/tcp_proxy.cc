#include "tests/harness/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace edgesync::test {
namespace {

using Clock = std::chrono::steady_clock;

// Bytes queued in one direction before the proxy stops reading from the sender: a slow or
// delayed direction pushes back instead of growing without bound.
constexpr size_t kMaxQueued = 1 << 20;
constexpr size_t kReadSize = 64 * 1024;

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// close() with SO_LINGER {1, 0}: the peer gets an RST, not a FIN.
void close_with_reset(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

struct Chunk {
  Clock::time_point due;
  std::string data;
  size_t off = 0;
};

struct Direction {
  std::deque<Chunk> q;
  size_t queued = 0;
  bool eof = false;   // the sender closed its side
  bool shut = false;  // the FIN was passed on
  bool blocked = false;  // the last write would have blocked: wait for POLLOUT
};

struct Conn {
  int client = -1;
  int upstream = -1;
  Direction up;    // client -> upstream
  Direction down;  // upstream -> client
  bool sink = false;    // never connected upstream: what arrives is discarded
  bool doomed = false;  // lived through a blackhole: swallowed until reset
  bool closed = false;
};

}  // namespace

const char* tcp_proxy_mode_name(TcpProxy::Mode mode) {
  switch (mode) {
    case TcpProxy::Mode::kPass: return "pass";
    case TcpProxy::Mode::kBlackhole: return "blackhole";
    case TcpProxy::Mode::kNoAnswer: return "no-answer";
    case TcpProxy::Mode::kRefuse: return "refuse";
  }
  return "?";
}

struct TcpProxy::Impl {
  int upstream_port = 0;
  int listener = -1;
  int wake_fd = -1;
  std::thread thread;

  mutable std::mutex mu;
  std::condition_variable cv;
  Mode mode = Mode::kPass;                       // guarded by mu
  std::chrono::milliseconds latency{0};          // guarded by mu
  uint64_t resets_requested = 0;                 // guarded by mu
  uint64_t resets_done = 0;                      // guarded by mu
  bool stop = false;                             // guarded by mu
  Stats stats;                                   // guarded by mu

  // Proxy thread only.
  std::list<Conn> conns;
  Mode current = Mode::kPass;

  void wake() {
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd, &one, sizeof one);
    (void)n;
  }

  void count(uint64_t Stats::*field, uint64_t n) {
    std::lock_guard<std::mutex> lock(mu);
    stats.*field += n;
  }

  void reset_conn(Conn& c) {
    if (c.closed) return;
    close_with_reset(c.client);
    close_with_reset(c.upstream);
    c.client = c.upstream = -1;
    c.closed = true;
    count(&Stats::resets, 1);
  }

  void close_conn(Conn& c) {
    if (c.closed) return;
    if (c.client >= 0) ::close(c.client);
    if (c.upstream >= 0) ::close(c.upstream);
    c.client = c.upstream = -1;
    c.closed = true;
  }

  void accept_new(Mode m) {
    while (true) {
      int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN: none left (errors are retried on the next readiness)
      count(&Stats::accepted, 1);
      if (m == Mode::kRefuse) {
        close_with_reset(fd);
        count(&Stats::resets, 1);
        continue;
      }
      set_nodelay(fd);
      Conn c;
      c.client = fd;
      if (m == Mode::kPass) {
        int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(upstream_port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        // Blocking connect on loopback: answered at once (accepted or refused).
        if (up < 0 || ::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
          if (up >= 0) ::close(up);
          close_with_reset(fd);  // the broker is down: the client sees a reset
          count(&Stats::resets, 1);
          continue;
        }
        set_nonblocking(up);
        set_nodelay(up);
        c.upstream = up;
      } else {
        c.sink = true;
        c.doomed = m == Mode::kBlackhole;
      }
      conns.push_back(std::move(c));
    }
  }

  // Reads what `from` has; queues it for `to` unless this connection swallows.
  void read_side(Conn& c, bool from_client, short revents, std::chrono::milliseconds lat) {
    int& from = from_client ? c.client : c.upstream;
    Direction& d = from_client ? c.up : c.down;
    if ((revents & POLLERR) || ((revents & POLLHUP) && !(revents & POLLIN))) {
      // Reported whatever was asked for, and this socket can do nothing more: handle it now
      // or poll would return at once forever.
      if (c.doomed) {
        ::close(from);
        from = -1;
        if (c.client < 0 && c.upstream < 0) c.closed = true;
      } else {
        reset_conn(c);
      }
      return;
    }
    char buf[kReadSize];
    while (from >= 0 && d.queued < kMaxQueued) {
      ssize_t n = ::recv(from, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        if (c.sink || c.doomed) {
          count(&Stats::bytes_swallowed, static_cast<uint64_t>(n));
          continue;
        }
        d.q.push_back(Chunk{Clock::now() + lat, std::string(buf, static_cast<size_t>(n)), 0});
        d.queued += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      // EOF or error.
      if (c.doomed) {
        // A dead link does not carry the close either: only this side goes.
        ::close(from);
        from = -1;
        if (c.client < 0 && c.upstream < 0) c.closed = true;
        return;
      }
      if (c.sink) {
        close_conn(c);
        return;
      }
      if (n < 0) {
        reset_conn(c);  // the sender reset: so does the proxy towards the other end
        return;
      }
      d.eof = true;
      return;
    }
  }

  // Writes every chunk that is due; passes a FIN on once the queue is empty.
  void flush(Conn& c, bool up) {
    Direction& d = up ? c.up : c.down;
    int to = up ? c.upstream : c.client;
    d.blocked = false;
    if (c.closed || to < 0) return;
    const auto now = Clock::now();
    while (!d.q.empty() && d.q.front().due <= now) {
      Chunk& ch = d.q.front();
      ssize_t n = ::send(to, ch.data.data() + ch.off, ch.data.size() - ch.off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          d.blocked = true;
          return;
        }
        reset_conn(c);
        return;
      }
      count(up ? &Stats::bytes_up : &Stats::bytes_down, static_cast<uint64_t>(n));
      ch.off += static_cast<size_t>(n);
      d.queued -= static_cast<size_t>(n);
      if (ch.off == ch.data.size()) d.q.pop_front();
    }
    if (d.q.empty() && d.eof && !d.shut) {
      ::shutdown(to, SHUT_WR);
      d.shut = true;
    }
    if (c.up.shut && c.down.shut) close_conn(c);
  }

  void apply_mode(Mode m) {
    if (m == current) return;
    if (m == Mode::kBlackhole) {
      for (auto& c : conns) {
        c.doomed = true;
        c.up.q.clear();
        c.down.q.clear();
        c.up.queued = c.down.queued = 0;
      }
    } else if (current == Mode::kBlackhole) {
      for (auto& c : conns) {
        if (c.doomed) reset_conn(c);
      }
    }
    current = m;
  }

  void run() {
    std::vector<pollfd> fds;
    std::vector<Conn*> owners;  // owners[i] for fds[i], i >= 2
    while (true) {
      Mode m;
      std::chrono::milliseconds lat;
      uint64_t resets_wanted;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop) break;
        m = mode;
        lat = latency;
        resets_wanted = resets_requested;
      }
      apply_mode(m);
      bool reset_now;
      {
        std::lock_guard<std::mutex> lock(mu);
        reset_now = resets_done < resets_wanted;
      }
      if (reset_now) {
        for (auto& c : conns) reset_conn(c);
        std::lock_guard<std::mutex> lock(mu);
        resets_done = resets_wanted;
        cv.notify_all();
      }
      for (auto it = conns.begin(); it != conns.end();) {
        it = it->closed ? conns.erase(it) : std::next(it);
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        stats.open = static_cast<int>(conns.size());
      }

      fds.clear();
      owners.clear();
      fds.push_back({wake_fd, POLLIN, 0});
      fds.push_back({listener, POLLIN, 0});
      const auto now = Clock::now();
      auto next_due = Clock::time_point::max();
      for (auto& c : conns) {
        auto want = [&](Direction& from_dir, Direction& to_dir) {
          short ev = 0;
          if (!from_dir.eof && from_dir.queued < kMaxQueued) ev |= POLLIN;
          if (!to_dir.q.empty()) {
            if (to_dir.q.front().due <= now) {
              if (to_dir.blocked) ev |= POLLOUT;
            } else {
              next_due = std::min(next_due, to_dir.q.front().due);
            }
          }
          return ev;
        };
        if (c.client >= 0) {
          fds.push_back({c.client, want(c.up, c.down), 0});
          owners.push_back(&c);
        }
        if (c.upstream >= 0) {
          fds.push_back({c.upstream, want(c.down, c.up), 0});
          owners.push_back(&c);
        }
      }
      int timeout = -1;
      if (next_due != Clock::time_point::max()) {
        auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_due - now).count();
        timeout = static_cast<int>(std::max<int64_t>(wait, 0));
      }
      int r = ::poll(fds.data(), fds.size(), timeout);
      if (r < 0 && errno != EINTR) break;
      if (fds[0].revents & POLLIN) {
        uint64_t v;
        while (::read(wake_fd, &v, sizeof v) > 0) {
        }
      }
      if (fds[1].revents & POLLIN) accept_new(m);
      for (size_t i = 2; i < fds.size(); ++i) {
        Conn& c = *owners[i - 2];
        if (c.closed || fds[i].revents == 0) continue;
        const bool is_client = fds[i].fd == c.client;
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) read_side(c, is_client, fds[i].revents, lat);
      }
      // Due chunks go out (whichever socket woke us), and FINs follow drained queues.
      for (auto& c : conns) {
        if (c.closed || c.sink || c.doomed) continue;
        flush(c, true);
        flush(c, false);
      }
    }
    for (auto& c : conns) close_conn(c);
    conns.clear();
  }
};

TcpProxy::TcpProxy(int upstream_port) : impl_(std::make_unique<Impl>()) {
  impl_->upstream_port = upstream_port;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("proxy socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("proxy listener: " + err);
  }
  port_ = ntohs(a.sin_port);
  impl_->listener = fd;
  impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl_->wake_fd < 0) {
    ::close(fd);
    throw std::runtime_error(std::string("proxy eventfd: ") + std::strerror(errno));
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

TcpProxy::~TcpProxy() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->wake();
  if (impl_->thread.joinable()) impl_->thread.join();
  ::close(impl_->listener);
  ::close(impl_->wake_fd);
}

std::string TcpProxy::uri() const { return "ssl://127.0.0.1:" + std::to_string(port_); }

void TcpProxy::set_mode(Mode mode) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->mode = mode;
  }
  impl_->wake();
}

TcpProxy::Mode TcpProxy::mode() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->mode;
}

void TcpProxy::set_latency(std::chrono::milliseconds each_way) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->latency = each_way;
  }
  impl_->wake();
}

void TcpProxy::reset_all() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  const uint64_t ticket = ++impl_->resets_requested;
  impl_->wake();
  impl_->cv.wait(lock, [&] { return impl_->resets_done >= ticket || impl_->stop; });
}

TcpProxy::Stats TcpProxy::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

}  // namespace edgesync::test
