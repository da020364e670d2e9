// The Unix-socket ingest endpoint: NDJSON requests in, one reply line per request, in order.
//
// A reply is written only once the event's transaction has committed (or failed). A producer may
// pipeline: it can send many lines before reading replies; reading pauses when a connection has
// too many replies outstanding, so memory stays bounded per connection. Runs on the agent's
// io_context thread only.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "agent/config.h"
#include "agent/event_contract.h"
#include "platform/status.h"
#include "storage/outbox.h"

namespace edgesync::agent {

class IngestConnection;

class IngestServer {
 public:
  IngestServer(asio::io_context& io, const Config& config, storage::Outbox& outbox);
  ~IngestServer();

  // Binds the socket (replacing a stale socket file, refusing if another agent listens there)
  // and starts accepting.
  Status start();
  // Stops accepting and reading; `done` runs once every accepted request has its reply
  // written (or its producer has gone).
  void stop(std::function<void()> done);

  size_t connection_count() const { return connections_.size(); }

 private:
  friend class IngestConnection;
  void accept();
  void connection_closed(IngestConnection* c);
  void maybe_finish_stop();
  // Commits the events appended by this round of socket reads, once they have all been read.
  void schedule_commit();

  asio::io_context& io_;
  const Config& config_;
  storage::Outbox& outbox_;
  asio::local::stream_protocol::acceptor acceptor_;
  // After a failed accept (out of file descriptors, say) the next try waits: the pending
  // connection stays in the listen queue and an immediate retry would fail again at once.
  asio::steady_timer accept_retry_;
  bool accept_failing_ = false;  // logged once per spell of failures
  IdGenerator ids_;
  std::set<std::shared_ptr<IngestConnection>> connections_;
  bool stopping_ = false;
  bool accepting_paused_ = false;
  bool commit_scheduled_ = false;
  std::function<void()> stopped_;
};

}  // namespace edgesync::agent
