// An HTTP server for programs on this box (cpp-httplib), shared by the metrics endpoint and
// HTTP ingest: where it listens (HOST:PORT, or an absolute path for a Unix socket), on a thread
// of its own with a bounded pool of workers, cut-off timeouts for silent clients, and a clean
// stop. Included only by the translation units built with cpp-httplib.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <ctime>
#include <memory>
#include <string>
#include <thread>

#include "platform/status.h"

namespace edgesync::agent {

class LocalHttpServer {
 public:
  struct Options {
    std::string key;  // the config key named in errors, e.g. "metrics.listen"
    // Requests served at once. Connections beyond it wait: first `workers` more, accepted,
    // then in the kernel's listen queue; none costs a thread.
    size_t workers = 2;
    time_t io_timeout_s = 5;      // a client silent this long mid-request is cut off
    size_t keep_alive_requests = 1;
    time_t keep_alive_s = 1;      // an idle kept-alive connection frees its worker after this
    size_t max_body_bytes = 4096;  // larger: 413 before any handler runs
    const char* thread_name = "http";
    int nice_steps = 0;  // lower the server's threads' priority by this much (0: as the agent)
  };

  // `listen`: HOST:PORT (the host a name, an IPv4 address or a bracketed IPv6 one) or an
  // absolute path, a Unix socket (mode 0660: the agent's group).
  LocalHttpServer(std::string listen, Options options);
  ~LocalHttpServer();  // stop()
  LocalHttpServer(const LocalHttpServer&) = delete;
  LocalHttpServer& operator=(const LocalHttpServer&) = delete;

  // Routes are added here before start().
  httplib::Server& server();

  // Binds and starts serving. On failure nothing listens and the Status names the key and
  // the reason. A TCP address that is not loopback is served with a warning in the log.
  Status start();
  // "127.0.0.1:9465", "[::1]:8788" or the socket's path; empty before start().
  const std::string& bound() const { return bound_; }
  bool is_unix_socket() const { return !listen_.empty() && listen_.front() == '/'; }
  // Stops accepting, lets requests in progress finish, joins the threads. Idempotent. Not
  // from a thread a handler waits on.
  void stop();

 private:
  struct Impl;
  Status bind_tcp();
  Status bind_unix();

  std::string listen_;
  Options options_;
  std::string bound_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgesync::agent
