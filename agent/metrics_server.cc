// The one translation unit that sees cpp-httplib.
#include "agent/metrics_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>

#include "agent/metrics_text.h"
#include "platform/threads.h"
#include "platform/tls_probe.h"

namespace edgesync::agent {

namespace {

using namespace std::chrono_literals;

constexpr auto kResolveTimeout = 5s;
constexpr time_t kIoTimeoutSeconds = 5;  // a client silent this long is cut off
constexpr size_t kWorkers = 2;           // one scraper, and one more to spare

struct HostPort {
  std::string host;
  int port = 0;
};

// metrics.listen is checked by validate() (agent/config.cc); this only takes it apart.
Result<HostPort> split_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::invalid_argument("metrics.listen: must be HOST:PORT, e.g. 127.0.0.1:9465");
  }
  HostPort hp;
  hp.host = listen.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    return Status::invalid_argument("metrics.listen: must be HOST:PORT, e.g. 127.0.0.1:9465");
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

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> listen_returned{false};
};

MetricsServer::MetricsServer(std::string listen, Provider provider)
    : listen_(std::move(listen)), provider_(std::move(provider)) {}

MetricsServer::~MetricsServer() { stop(); }

Status MetricsServer::start() {
  auto hp = split_listen(listen_);
  if (!hp) return hp.status();
  auto resolved = platform::resolve_host(hp->host, kResolveTimeout);
  if (!resolved) {
    return Status::invalid_argument("metrics.listen: " + listen_ + ": " +
                                    resolved.status().message());
  }
  if (resolved->empty()) {
    return Status::invalid_argument("metrics.listen: " + listen_ + ": " + hp->host +
                                    " resolves to no address");
  }
  // One socket: a name that resolves to both families ("localhost") gets its IPv4 address,
  // the one a scraper configured with 127.0.0.1 reaches.
  std::string address = resolved->front();
  for (const auto& a : *resolved) {
    if (a.find(':') == std::string::npos) {
      address = a;
      break;
    }
  }

  impl_ = std::make_unique<Impl>();
  httplib::Server& server = impl_->server;
  server.new_task_queue = [] { return new httplib::ThreadPool(kWorkers); };
  server.set_read_timeout(kIoTimeoutSeconds, 0);
  server.set_write_timeout(kIoTimeoutSeconds, 0);
  // One request per connection, and a connection that sends nothing frees its worker after
  // 1 s: a scraper (or anything else on the box) cannot hold the two workers.
  server.set_keep_alive_max_count(1);
  server.set_keep_alive_timeout(1);
  server.set_payload_max_length(4096);  // a scrape sends no body
  // SO_REUSEADDR only. httplib's default adds SO_REUSEPORT, which would let a second agent on
  // this box bind the same port and take half the scrapes instead of failing to start.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });

  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::optional<std::string> page = provider_ ? provider_() : std::nullopt;
    if (!page) {
      res.status = 503;
      res.set_header("Retry-After", "5");
      res.set_content("the agent did not answer in time\n", "text/plain; charset=utf-8");
      return;
    }
    res.set_content(*page, kMetricsContentType);
  });
  auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
  };
  server.Post("/metrics", not_allowed);
  server.Put("/metrics", not_allowed);
  server.Patch("/metrics", not_allowed);
  server.Delete("/metrics", not_allowed);
  server.Options("/metrics", not_allowed);
  server.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (res.status != 404) return httplib::Server::HandlerResponse::Unhandled;
        res.set_content("not found: the metrics are at /metrics\n", "text/plain; charset=utf-8");
        return httplib::Server::HandlerResponse::Handled;
      }));

  int port = hp->port;
  errno = 0;
  bool bound = false;
  if (port == 0) {
    port = server.bind_to_any_port(address);
    bound = port > 0;
  } else {
    bound = server.bind_to_port(address, port);
  }
  if (!bound) {
    const int err = errno;
    impl_.reset();
    return Status::unavailable(
        "metrics.listen: cannot listen on " + with_port(address, port) +
        (err != 0 ? std::string(": ") + std::strerror(err) : "") +
        "; metrics.listen must name an address of this box and a port no other program uses");
  }
  bound_ = with_port(address, port);
  if (!is_loopback(address)) {
    std::cerr << "edgesync: WARNING: metrics.listen " << listen_ << " is not a loopback address: "
              << "whoever reaches " << bound_ << " reads the metrics, without authentication\n";
  }
  Impl* impl = impl_.get();
  impl->thread = std::thread([impl] {
    platform::set_current_thread_name("metrics");
    // A scrape gives way to ingest as delivery does; the workers, started by the accept loop
    // on this thread, inherit it. Refused, it runs at the agent's priority: no harm.
    platform::lower_current_thread_priority(platform::kDeliveryNiceSteps);
    impl->server.listen_after_bind();
    impl->listen_returned = true;
  });
  // httplib's stop() does nothing until the accept loop runs: wait for it, so that a stop()
  // right after start() cannot leave the thread listening forever. httplib offers no signal
  // for it; the loop starts within microseconds.
  while (!server.is_running() && !impl->listen_returned) std::this_thread::sleep_for(1ms);
  if (impl->listen_returned) {
    stop();
    bound_.clear();
    return Status::io_error("metrics.listen: the server on " + with_port(address, port) +
                            " stopped as it started");
  }
  return Status::ok();
}

void MetricsServer::stop() {
  if (!impl_) return;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_.reset();
}

}  // namespace edgesync::agent
