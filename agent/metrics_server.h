// The metrics endpoint (metrics.listen): GET /metrics answers the Prometheus text page over
// plain HTTP, meant for a scraper on the same box (loopback). Off unless configured.
//
// Runs on threads of its own (an accept thread and a pool of two workers): a scrape never
// runs on, or waits for, the ingest or delivery threads. A slow or silent client is cut off by
// read and write timeouts, and a connection serves one request, so a scraper cannot hold the
// workers. Built without cpp-httplib (EDGESYNC_METRICS=OFF), start() refuses metrics.listen.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "platform/status.h"

namespace edgesync::agent {

class MetricsServer {
 public:
  // The page, or nullopt when it cannot be had in time (answered 503). Called on a worker
  // thread, at most two at once.
  using Provider = std::function<std::optional<std::string>()>;

  // `listen` is metrics.listen: HOST:PORT, the host a name, an IPv4 address or a bracketed
  // IPv6 one ([::1]:9465).
  MetricsServer(std::string listen, Provider provider);
  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Resolves the host (a name binds its first IPv4 address, else its first), binds and starts
  // serving. On failure nothing listens and the Status names metrics.listen and the reason.
  Status start();
  // The address actually bound, e.g. "127.0.0.1:9465"; empty before start().
  const std::string& bound() const { return bound_; }
  // Stops accepting, lets a request in progress finish (at most the provider's wait), joins.
  // Idempotent.
  void stop();

 private:
  struct Impl;
  std::string listen_;
  Provider provider_;
  std::string bound_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgesync::agent
