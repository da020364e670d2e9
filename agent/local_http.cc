#include "agent/local_http.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <iostream>
#include <mutex>
#include <vector>

#include "platform/files.h"
#include "platform/threads.h"
#include "platform/tls_probe.h"

namespace edgesync::agent {

namespace {

using namespace std::chrono_literals;

constexpr auto kResolveTimeout = 5s;

// httplib's own pool queues every accepted connection without limit. This one serves
// `workers` at once and holds at most as many more; beyond that enqueue() blocks the accept
// loop, so further clients wait in the kernel's listen queue and cost the agent nothing.
class BoundedWorkers : public httplib::TaskQueue {
 public:
  BoundedWorkers(size_t workers, const char* name, int nice_steps) : capacity_(workers) {
    for (size_t i = 0; i < workers; ++i) {
      threads_.emplace_back([this, name, nice_steps] {
        platform::set_current_thread_name(name);
        if (nice_steps > 0) platform::lower_current_thread_priority(nice_steps);
        run();
      });
    }
  }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mu_);
    room_.wait(lock, [&] { return jobs_.size() < capacity_ || shutdown_; });
    jobs_.push_back(std::move(fn));
    work_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    work_.notify_all();
    room_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
        if (jobs_.empty()) return;  // shut down, and every accepted connection served
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      room_.notify_one();
      job();
    }
  }

  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable work_;
  std::condition_variable room_;
  std::deque<std::function<void()>> jobs_;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

// cpp-httplib (0.11) binds TCP only. Its accept loop serves whatever listening socket it holds,
// so a Unix socket bound here is handed to it.
class Server : public httplib::Server {
 public:
  void adopt_listening_socket(int fd) { svr_sock_ = fd; }
};

struct HostPort {
  std::string host;
  int port = 0;
};

// The listen value is checked by validate() (agent/config.cc); this only takes it apart.
Result<HostPort> split_listen(const std::string& key, const std::string& listen) {
  const auto colon = listen.rfind(':');
  const Status bad =
      Status::invalid_argument(key + ": must be HOST:PORT, e.g. 127.0.0.1:9465");
  if (colon == std::string::npos || colon == 0) return bad;
  HostPort hp;
  hp.host = listen.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    return bad;
  }
  hp.port = std::stoi(port);
  return hp;
}

bool is_loopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address == "::1" || address.rfind("::ffff:127.", 0) == 0;
}

std::string with_port(const std::string& address, int port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

}  // namespace

struct LocalHttpServer::Impl {
  Server server;
  std::thread thread;
  std::atomic<bool> listen_returned{false};
};

LocalHttpServer::LocalHttpServer(std::string listen, Options options)
    : listen_(std::move(listen)), options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

LocalHttpServer::~LocalHttpServer() { stop(); }

httplib::Server& LocalHttpServer::server() { return impl_->server; }

Status LocalHttpServer::bind_tcp() {
  auto hp = split_listen(options_.key, listen_);
  if (!hp) return hp.status();
  auto resolved = platform::resolve_host(hp->host, kResolveTimeout);
  if (!resolved) {
    return Status::invalid_argument(options_.key + ": " + listen_ + ": " +
                                    resolved.status().message());
  }
  if (resolved->empty()) {
    return Status::invalid_argument(options_.key + ": " + listen_ + ": " + hp->host +
                                    " resolves to no address");
  }
  // One socket: a name that resolves to both families ("localhost") gets its IPv4 address,
  // the one a client configured with 127.0.0.1 reaches.
  std::string address = resolved->front();
  for (const auto& a : *resolved) {
    if (a.find(':') == std::string::npos) {
      address = a;
      break;
    }
  }
  // SO_REUSEADDR only. httplib's default adds SO_REUSEPORT, which would let a second agent on
  // this box bind the same port and take half the requests instead of failing to start.
  impl_->server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  int port = hp->port;
  errno = 0;
  bool bound = false;
  if (port == 0) {
    port = impl_->server.bind_to_any_port(address);
    bound = port > 0;
  } else {
    bound = impl_->server.bind_to_port(address, port);
  }
  if (!bound) {
    const int err = errno;
    return Status::unavailable(
        options_.key + ": cannot listen on " + with_port(address, port) +
        (err != 0 ? std::string(": ") + std::strerror(err) : "") + "; " + options_.key +
        " must name an address of this box and a port no other program uses");
  }
  bound_ = with_port(address, port);
  if (!is_loopback(address)) {
    std::cerr << "edgesync: WARNING: " << options_.key << " " << listen_
              << " is not a loopback address: whoever reaches " << bound_
              << " is served, without authentication\n";
  }
  return Status::ok();
}

Status LocalHttpServer::bind_unix() {
  const std::string& path = listen_;
  Status s = platform::ensure_parent_dir(path, 0755);
  if (!s) return s;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Status::invalid_argument(options_.key + ": path too long for a Unix socket");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::invalid_argument(options_.key + ": " + path +
                                      " exists and is not a socket; remove it or pick another");
    }
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr),
                                              sizeof addr) == 0;
    if (probe >= 0) ::close(probe);
    if (live) return Status::unavailable("another program already listens on " + path);
    ::unlink(path.c_str());  // stale socket from a crashed agent
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    return Status::io_error(options_.key + ": cannot listen on " + path + ": " +
                            std::strerror(err));
  }
  // Producers get in through group membership (edgesync-producers), never world access.
  ::chmod(path.c_str(), 0660);
  impl_->server.adopt_listening_socket(fd);
  bound_ = path;
  return Status::ok();
}

Status LocalHttpServer::start() {
  httplib::Server& server = impl_->server;
  const Options o = options_;
  server.new_task_queue = [o] {
    return new BoundedWorkers(o.workers, o.thread_name, o.nice_steps);
  };
  server.set_read_timeout(o.io_timeout_s, 0);
  server.set_write_timeout(o.io_timeout_s, 0);
  server.set_keep_alive_max_count(o.keep_alive_requests);
  server.set_keep_alive_timeout(o.keep_alive_s);
  server.set_payload_max_length(o.max_body_bytes);
  // A reply goes out in more than one write (headers, then the body): with Nagle's algorithm
  // the body waits for the client's delayed ACK of the headers, about 40 ms a request, which a
  // till sending one sale per request would wait every time. Accepted sockets inherit it.
  server.set_tcp_nodelay(true);

  Status s = is_unix_socket() ? bind_unix() : bind_tcp();
  if (!s) {
    impl_ = std::make_unique<Impl>();
    bound_.clear();
    return s;
  }
  Impl* impl = impl_.get();
  impl->thread = std::thread([impl, o] {
    platform::set_current_thread_name(o.thread_name);
    if (o.nice_steps > 0) platform::lower_current_thread_priority(o.nice_steps);
    impl->server.listen_after_bind();
    impl->listen_returned = true;
  });
  // httplib's stop() does nothing until the accept loop runs: wait for it, so that a stop()
  // right after start() cannot leave the thread listening forever. httplib offers no signal
  // for it; the loop starts within microseconds.
  while (!server.is_running() && !impl->listen_returned) std::this_thread::sleep_for(1ms);
  if (impl->listen_returned) {
    const std::string where = bound_;
    stop();
    return Status::io_error(options_.key + ": the server on " + where + " stopped as it started");
  }
  return Status::ok();
}

void LocalHttpServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
  if (is_unix_socket() && !bound_.empty()) ::unlink(bound_.c_str());
  bound_.clear();
}

}  // namespace edgesync::agent
