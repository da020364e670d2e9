// The Unix-socket ingest endpoint: NDJSON requests in, one reply line per request, in order.
//
// A reply is written only once the event's transaction has committed (or failed). A producer may
// pipeline: it can send many lines before reading replies; reading pauses when a connection has
// too many replies outstanding, or too many request bytes waiting for their commit (per
// connection and in all), so memory stays bounded however large the lines and slow the disk. Runs on the agent's
// io_context thread only.
//
// Connection slots (ingest.max_connections) cannot be held by idle connections against a
// producer that wants in: when every slot is taken and another producer waits in the listen
// queue, the connection idle the longest with nothing outstanding (no request waiting for its
// reply) is closed to make room; a connection that sent part of a line and then nothing for
// ingest.idle_timeout_s is closed.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/ingest_core.h"
#include "platform/status.h"
#include "storage/outbox.h"

namespace edgesync::agent {

class IngestConnection;

class IngestServer {
 public:
  // Requests go through `core`, which every way in shares.
  explicit IngestServer(IngestCore& core);
  ~IngestServer();

  // Binds the socket (replacing a stale socket file, refusing if another agent listens there)
  // and starts accepting.
  Status start();
  // Stops accepting and reading; `done` runs once every accepted request has its reply
  // written (or its producer has gone).
  void stop(std::function<void()> done);

  size_t connection_count() const { return connections_.size(); }
  // Any thread: the most request bytes that were read but not yet committed at any one time.
  size_t peak_pending_bytes() const { return peak_pending_bytes_; }

 private:
  friend class IngestConnection;
  void accept();
  // Every slot is taken: once a producer waits in the listen queue, close the connection idle
  // the longest, if one is idle and has nothing outstanding; otherwise look again shortly.
  void make_room_when_a_producer_waits();
  void connection_closed(IngestConnection* c);
  void maybe_finish_stop();
  // Request bytes read and not yet committed, over all connections: reading pauses above a
  // bound, and resumes for every connection that waited once commits bring it down.
  bool pending_bytes_over_bound() const;
  void hold_bytes(size_t n);
  void release_bytes(size_t n);
  void wait_for_memory(std::shared_ptr<IngestConnection> c);

  IngestCore& core_;
  asio::io_context& io_;
  const Config& config_;
  asio::local::stream_protocol::acceptor acceptor_;
  // After a failed accept (out of file descriptors, say) the next try waits: the pending
  // connection stays in the listen queue and an immediate retry would fail again at once.
  asio::steady_timer accept_retry_;
  bool accept_failing_ = false;  // logged once per spell of failures
  bool waiting_for_room_ = false;  // an acceptor wait or a room retry is pending
  bool evicting_logged_ = false;   // logged once per spell of full slots
  size_t pending_bytes_ = 0;
  std::atomic<size_t> peak_pending_bytes_{0};
  std::vector<std::weak_ptr<IngestConnection>> waiting_for_memory_;
  std::set<std::shared_ptr<IngestConnection>> connections_;
  bool stopping_ = false;
  bool accepting_paused_ = false;
  std::function<void()> stopped_;
};

}  // namespace edgesync::agent
