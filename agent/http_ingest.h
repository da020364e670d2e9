// HTTP ingest (ingest.http.listen): for producers that cannot speak the Unix socket (Java
// tills, apps under Wine, scripts with curl). POST /v1/events takes one event or an array and
// answers, only after the commit, with the socket's reply objects (agent/http_body.h has the
// status codes); GET /v1/health says whether the agent takes events. Off unless configured.
//
// The server's own threads (cpp-httplib) read and answer requests; every event goes through
// the ingest core on the agent's ingest thread, the same path as the socket's, and a worker
// waits for its batch's commit without holding anything the commit path needs. Bounded: a
// request body (ingest.http.max_body_bytes), requests served at once
// (ingest.http.max_connections; more wait in the listen queue), a silent client (cut off after
// 5 s). Built without cpp-httplib, start() refuses ingest.http.listen.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "agent/ingest_core.h"
#include "platform/status.h"

namespace edgesync::agent {

class HttpIngest {
 public:
  explicit HttpIngest(IngestCore& core);
  ~HttpIngest();  // stop()
  HttpIngest(const HttpIngest&) = delete;
  HttpIngest& operator=(const HttpIngest&) = delete;

  // Binds ingest.http.listen and starts serving. Before the ingest thread runs is fine: a
  // request's events wait for it.
  Status start();
  // "127.0.0.1:8788" or the socket's path; empty before start().
  const std::string& bound() const;
  // Stops accepting and answers the requests in progress once their events are committed,
  // then joins. Not on the ingest thread: the commits it waits for run there.
  void stop();
  // Requests still waiting are answered 503 at once (their events' outcome unknown to the
  // client): for an agent that stops without its ingest thread, so stop() cannot hang.
  void abandon();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgesync::agent
