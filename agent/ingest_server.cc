#include "agent/ingest_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <iostream>

#include "platform/files.h"
#include "platform/log.h"

namespace edgesync::agent {

using asio::local::stream_protocol;

namespace {
// Per connection, for its whole life: 64 producers must not cost megabytes.
constexpr size_t kReadChunk = 16 * 1024;
// Replies a connection may hold before we stop reading its socket: waiting for their commit, or
// ready but not yet written because the producer does not read. This bounds the memory a
// producer that pipelines without reading can cost (about 100 bytes a reply); 1,024 in flight is
// far more than group commit needs to form full batches.
constexpr size_t kMaxUnwrittenReplies = 1024;
// Request bytes read but not yet committed, per connection and over all connections, before
// reading pauses. The reply bound alone let one producer park 1,024 lines of up to
// ingest.max_line_bytes (256 MiB at the default) in the agent while a slow sync held commits;
// a 256 MB store box cannot afford that. Group commit needs far less to form full batches.
constexpr size_t kMaxPendingBytesPerConnection = size_t{4} << 20;
constexpr size_t kMaxPendingBytesTotal = size_t{32} << 20;
constexpr std::chrono::milliseconds kAcceptRetry{200};
// A connection is closed for a waiting producer only after it has been idle this long: a
// producer between two requests is not "idle".
constexpr std::chrono::milliseconds kEvictAfterIdle{500};
using Clock = std::chrono::steady_clock;
}  // namespace

class IngestConnection : public std::enable_shared_from_this<IngestConnection> {
 public:
  IngestConnection(IngestServer& server, stream_protocol::socket socket)
      : server_(server),
        socket_(std::move(socket)),
        chunk_(kReadChunk),
        midline_timer_(server.io_),
        last_active_(Clock::now()) {}

  void start() { read(); }
  void resume_reading() {
    waiting_for_memory_ = false;
    read();
  }

  // Nothing outstanding: no request waits for its commit or its reply. Closing it loses nothing
  // (a partial line was never a request).
  bool evictable() const {
    return !closed_ && outstanding_ == 0 && replies_.empty() && !writing_;
  }
  Clock::time_point last_active() const { return last_active_; }

  // Closes the connection both ways; the producer sees end of file and reconnects.
  void evict() {
    stop_reading_ = true;
    midline_timer_.cancel();
    asio::error_code ec;
    socket_.shutdown(stream_protocol::socket::shutdown_both, ec);
    socket_.cancel(ec);
    maybe_close();
  }

  void stop_reading() {
    stop_reading_ = true;
    asio::error_code ec;
    socket_.shutdown(stream_protocol::socket::shutdown_receive, ec);
    maybe_close();
  }

 private:
  struct Reply {
    bool ready = false;
    std::string text;          // once ready
    PendingReply pending;      // until ready
    size_t request_bytes = 0;  // held until the commit completes
  };

  void read() {
    if (reading_ || stop_reading_ || eof_ || write_failed_) return;
    // Resumed once replies are written (the write handler) or completed (complete()).
    if (replies_.size() >= kMaxUnwrittenReplies) return;
    if (pending_bytes_ >= kMaxPendingBytesPerConnection) return;  // resumed by complete()
    if (server_.pending_bytes_over_bound()) {
      if (!waiting_for_memory_) server_.wait_for_memory(shared_from_this());
      waiting_for_memory_ = true;  // resumed by release_bytes()
      return;
    }
    reading_ = true;
    socket_.async_read_some(asio::buffer(chunk_),
                            [self = shared_from_this()](asio::error_code ec, size_t n) {
                              self->reading_ = false;
                              self->on_read(ec, n);
                            });
  }

  void on_read(asio::error_code ec, size_t n) {
    if (ec) {
      // EOF or error: a partial last line is dropped (it was never a request). Replies for the
      // complete lines are still written if the producer keeps its read side open.
      eof_ = true;
      maybe_close();
      return;
    }
    last_active_ = Clock::now();
    consume(chunk_.data(), n);
    if (!line_.empty() || discarding_) watch_partial_line();
    flush();
    read();
  }

  Clock::time_point idle_deadline() const {
    return last_active_ + std::chrono::seconds(server_.config_.ingest.idle_timeout_s);
  }

  // A partial line must be completed within ingest.idle_timeout_s of the last byte received.
  void watch_partial_line() {
    if (midline_armed_) return;
    midline_armed_ = true;
    midline_timer_.expires_at(idle_deadline());
    midline_timer_.async_wait([self = shared_from_this()](asio::error_code ec) {
      self->midline_armed_ = false;
      if (ec || self->closed_ || (self->line_.empty() && !self->discarding_)) return;
      if (Clock::now() < self->idle_deadline()) {
        self->watch_partial_line();  // more bytes came meanwhile
        return;
      }
      platform::log(platform::LogLevel::kWarning, "producer_idle",
                    "closing a producer connection that sent part of a line and nothing for " +
                        std::to_string(self->server_.config_.ingest.idle_timeout_s) +
                        " s (ingest.idle_timeout_s)");
      self->line_.clear();
      self->discarding_ = false;
      self->stop_reading_ = true;
      asio::error_code e;
      self->socket_.shutdown(stream_protocol::socket::shutdown_receive, e);
      self->socket_.cancel(e);
      self->maybe_close();
    });
  }

  void consume(const char* p, size_t n) {
    const size_t max_line = static_cast<size_t>(server_.config_.ingest.max_line_bytes);
    const char* end = p + n;
    while (p < end) {
      const char* nl = static_cast<const char*>(memchr(p, '\n', end - p));
      if (discarding_) {
        if (!nl) return;
        discarding_ = false;
        p = nl + 1;
        continue;
      }
      size_t take = (nl ? nl : end) - p;
      if (line_.size() + take > max_line) {
        line_.clear();
        add_error(IngestError::kTooLarge,
                  "line longer than ingest.max_line_bytes (" + std::to_string(max_line) +
                      " bytes); the event was discarded");
        if (!nl) {
          discarding_ = true;
          return;
        }
        p = nl + 1;
        continue;
      }
      line_.append(p, take);
      if (!nl) return;
      p = nl + 1;
      handle_line();
      line_.clear();
    }
  }

  void handle_line() {
    std::string_view text(line_);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == std::string_view::npos) return;  // blank: no request
    storage::AppendRequest req;
    PendingReply pending;
    IngestReply refused;
    if (!server_.core_.admit(text, &req, &pending, &refused)) {
      Reply& r = replies_.emplace_back();
      r.ready = true;
      r.text = std::move(refused.text);
      return;
    }
    uint64_t index = first_index_ + replies_.size();
    Reply& slot = replies_.emplace_back();
    slot.pending = std::move(pending);
    slot.request_bytes = text.size();
    pending_bytes_ += text.size();
    server_.hold_bytes(text.size());
    ++outstanding_;
    // [this, index] fits std::function's inline storage: no allocation per event. The
    // connection outlives every outstanding append (see maybe_close).
    server_.core_.outbox().append_deferred(std::move(req),
                                           [this, index](const storage::AppendResult& r) {
                                             complete(index, r);
                                           });
    server_.core_.schedule_commit();
  }

  void add_error(IngestError e, const std::string& message) {
    server_.core_.counters().count_refused(e);
    Reply& r = replies_.emplace_back();
    r.ready = true;
    append_error_reply(&r.text, e, message);
  }

  void complete(uint64_t index, const storage::AppendResult& result) {
    Reply& r = replies_[index - first_index_];
    r.ready = true;
    pending_bytes_ -= r.request_bytes;
    server_.release_bytes(r.request_bytes);
    r.request_bytes = 0;
    IngestReply reply;
    server_.core_.finish(result, r.pending, &reply);
    r.text = std::move(reply.text);
    --outstanding_;
    flush();
    read();
    maybe_close();
  }

  void flush() {
    if (writing_) return;
    out_.clear();
    while (!replies_.empty() && replies_.front().ready) {
      out_.append(replies_.front().text);
      replies_.pop_front();
      ++first_index_;
    }
    if (out_.empty() || write_failed_) return;
    writing_ = true;
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](asio::error_code ec, size_t) {
                        self->writing_ = false;
                        self->last_active_ = Clock::now();
                        if (ec) self->write_failed_ = true;
                        self->flush();
                        self->read();
                        self->maybe_close();
                      });
  }

  // Closes once nothing more can come in and nothing is left to write or wait for.
  void maybe_close() {
    if (closed_) return;
    bool input_done = eof_ || stop_reading_ || write_failed_;
    bool output_done = !writing_ && (replies_.empty() || write_failed_);
    if (!input_done || !output_done || outstanding_ > 0 || reading_) return;
    closed_ = true;
    midline_timer_.cancel();
    asio::error_code ec;
    socket_.close(ec);
    server_.connection_closed(this);
  }

  IngestServer& server_;
  stream_protocol::socket socket_;
  std::vector<char> chunk_;
  std::string line_;
  bool discarding_ = false;
  std::deque<Reply> replies_;
  uint64_t first_index_ = 0;
  size_t outstanding_ = 0;
  size_t pending_bytes_ = 0;  // request bytes of the replies still waiting for their commit
  bool waiting_for_memory_ = false;  // in the server's list until the total drops
  std::string out_;
  bool reading_ = false;
  bool writing_ = false;
  bool eof_ = false;
  bool stop_reading_ = false;
  bool write_failed_ = false;
  bool closed_ = false;
  asio::steady_timer midline_timer_;
  bool midline_armed_ = false;
  Clock::time_point last_active_;  // last bytes read or reply written
};

IngestServer::IngestServer(IngestCore& core)
    : core_(core),
      io_(core.io()),
      config_(core.config()),
      acceptor_(core.io()),
      accept_retry_(core.io()) {}

IngestServer::~IngestServer() = default;

Status IngestServer::start() {
  const std::string& path = config_.ingest.socket;
  Status s = platform::ensure_parent_dir(path, 0755);
  if (!s) return s;
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::invalid_argument("ingest.socket: " + path +
                                      " exists and is not a socket; remove it or pick another path");
    }
    stream_protocol::socket probe(io_);
    asio::error_code ec;
    probe.connect(stream_protocol::endpoint(path), ec);
    if (!ec) {
      return Status::unavailable("another edgesync agent is already listening on " + path);
    }
    ::unlink(path.c_str());  // stale socket from a crashed agent
  }
  asio::error_code ec;
  acceptor_.open(stream_protocol(), ec);
  if (!ec) acceptor_.bind(stream_protocol::endpoint(path), ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::io_error("cannot listen on " + path + ": " + ec.message());
  // Producers get in through group membership (edgesync-producers), never world access.
  ::chmod(path.c_str(), 0660);
  accept();
  return Status::ok();
}

void IngestServer::accept() {
  if (stopping_) return;
  if (connections_.size() >= static_cast<size_t>(config_.ingest.max_connections)) {
    accepting_paused_ = true;  // resumed when a connection closes
    make_room_when_a_producer_waits();
    return;
  }
  evicting_logged_ = false;
  acceptor_.async_accept([this](asio::error_code ec, stream_protocol::socket socket) {
    if (stopping_) return;
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      if (!accept_failing_) {
        platform::log(platform::LogLevel::kError, "accept_failed",
                      "accepting a producer connection failed: " + ec.message() + " (" +
                          std::to_string(connections_.size()) + " connected); retrying every " +
                          std::to_string(kAcceptRetry.count()) + " ms");
      }
      accept_failing_ = true;
      accept_retry_.expires_after(kAcceptRetry);
      accept_retry_.async_wait([this](asio::error_code ec) {
        if (!ec) accept();
      });
      return;
    }
    if (accept_failing_) {
      platform::log(platform::LogLevel::kNotice, "accept_resumed",
                    "accepting producer connections again");
      accept_failing_ = false;
    }
    auto c = std::make_shared<IngestConnection>(*this, std::move(socket));
    connections_.insert(c);
    c->start();
    accept();
  });
}

void IngestServer::make_room_when_a_producer_waits() {
  if (waiting_for_room_ || stopping_) return;
  waiting_for_room_ = true;
  acceptor_.async_wait(stream_protocol::acceptor::wait_read, [this](asio::error_code ec) {
    waiting_for_room_ = false;
    if (ec || stopping_ || !accepting_paused_) return;
    // A producer waits. The connection idle the longest, with nothing outstanding, gives way.
    std::shared_ptr<IngestConnection> victim;
    const auto now = Clock::now();
    for (const auto& c : connections_) {
      if (!c->evictable() || now - c->last_active() < kEvictAfterIdle) continue;
      if (!victim || c->last_active() < victim->last_active()) victim = c;
    }
    if (victim) {
      if (!evicting_logged_) {
        platform::log(platform::LogLevel::kWarning, "connections_full",
                      "all " + std::to_string(connections_.size()) +
                          " producer connections (ingest.max_connections) are in use and a "
                          "producer waits: closing the ones idle the longest");
        evicting_logged_ = true;
      }
      victim->evict();  // its close resumes accepting (connection_closed)
      return;
    }
    // Every connection is busy: look again shortly (the waiting producer keeps the acceptor
    // readable, so waiting on it again at once would spin).
    waiting_for_room_ = true;
    accept_retry_.expires_after(kAcceptRetry);
    accept_retry_.async_wait([this](asio::error_code e) {
      waiting_for_room_ = false;
      if (!e && accepting_paused_) make_room_when_a_producer_waits();
    });
  });
}

bool IngestServer::pending_bytes_over_bound() const {
  return pending_bytes_ >= kMaxPendingBytesTotal;
}

void IngestServer::hold_bytes(size_t n) {
  pending_bytes_ += n;
  if (pending_bytes_ > peak_pending_bytes_) peak_pending_bytes_ = pending_bytes_;
}

void IngestServer::release_bytes(size_t n) {
  pending_bytes_ -= n;
  if (pending_bytes_over_bound() || waiting_for_memory_.empty()) return;
  auto waiting = std::move(waiting_for_memory_);
  waiting_for_memory_.clear();
  // Not from inside complete(): each resumed connection starts its read from the loop.
  asio::post(io_, [waiting = std::move(waiting)] {
    for (const auto& w : waiting) {
      if (auto c = w.lock()) c->resume_reading();
    }
  });
}

void IngestServer::wait_for_memory(std::shared_ptr<IngestConnection> c) {
  waiting_for_memory_.push_back(c);
}

void IngestServer::connection_closed(IngestConnection* c) {
  // Destroy later: we are inside one of the connection's own handlers.
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (it->get() == c) {
      auto keep = *it;
      connections_.erase(it);
      asio::post(io_, [keep] {});
      break;
    }
  }
  if (accepting_paused_ && !stopping_) {
    accepting_paused_ = false;
    accept();
  }
  maybe_finish_stop();
}

void IngestServer::stop(std::function<void()> done) {
  stopping_ = true;
  stopped_ = std::move(done);
  asio::error_code ec;
  acceptor_.close(ec);
  accept_retry_.cancel();
  ::unlink(config_.ingest.socket.c_str());
  auto conns = connections_;
  for (const auto& c : conns) c->stop_reading();
  maybe_finish_stop();
}

void IngestServer::maybe_finish_stop() {
  if (stopping_ && connections_.empty() && stopped_) {
    auto done = std::move(stopped_);
    stopped_ = nullptr;
    done();
  }
}

}  // namespace edgesync::agent
