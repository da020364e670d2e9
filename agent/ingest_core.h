// What every way in (the Unix socket, HTTP, the spool folder) does with one request line:
// parse it, check it against its contract, append it to the outbox, and turn the commit's
// outcome into the reply object. One core per agent, so every way in shares the event ids, the
// contracts, the counters and the group commit. Runs on the agent's io_context (ingest) thread
// only: the contract validator and the outbox's deferred appends are not for other threads.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "agent/agent_counters.h"
#include "agent/config.h"
#include "agent/event_contract.h"
#include "storage/outbox.h"

namespace edgesync::agent {

// A request waiting for its commit: what its reply will need.
struct PendingReply {
  std::string id;
  int version = 0;         // the contract version checked; 0: none
  bool unchecked = false;  // an unknown type passed on (ingest.unknown_types: accept)
};

class IngestCore {
 public:
  IngestCore(asio::io_context& io, const Config& config, storage::Outbox& outbox);

  asio::io_context& io() { return io_; }
  const Config& config() const { return config_; }
  storage::Outbox& outbox() { return outbox_; }

  // Before the first request: where ingest counts what it does (default: figures of its own).
  void set_counters(AgentCounters* counters) { counters_ = counters; }
  AgentCounters& counters() { return *counters_; }
  // The event contracts checked from the next request on (at start and on reload). Until
  // set: none, so every type is unknown.
  void set_contracts(std::shared_ptr<const ContractRegistry> contracts) {
    contracts_ = std::move(contracts);
  }

  // Any thread: ingest.max_line_bytes as of the last apply (the HTTP workers' bound on an
  // event; they may not read the config, which the ingest thread replaces on reload).
  size_t max_line_bytes() const { return max_line_bytes_.load(std::memory_order_relaxed); }
  // Ingest thread, with every apply of a config.
  void set_max_line_bytes(int64_t n) {
    max_line_bytes_.store(static_cast<size_t>(n), std::memory_order_relaxed);
  }

  // Parses and checks one line. Accepted: fills `req` and `pending` and returns true. Refused:
  // counts the refusal, appends the error reply line to `reply` (and, when asked, says why in
  // `why`) and returns false.
  bool admit(std::string_view line, storage::AppendRequest* req, PendingReply* pending,
             IngestReply* reply, ParseFailure* why = nullptr);
  // The reply for an admitted request once its append has an outcome; counts it.
  void finish(const storage::AppendResult& result, const PendingReply& pending,
              IngestReply* reply);

  // admit, append and, after the commit, finish: `done` runs on this thread, at once for a
  // refusal. For the ways in whose requests are not on the hot path (HTTP, spool); the socket
  // keeps its own bookkeeping around admit/finish to avoid a closure per event.
  void submit(std::string_view line, std::function<void(IngestReply)> done);

  // submit() for the spool folder: a refused request is also kept as a dead letter (the
  // outbox's refused_reason) under `source_id`, its reason naming `where` (e.g. "spool file
  // F line N"), and answered with its refusal once that is committed. If the dead letter cannot
  // be committed the answer is the storage's refusal instead, so the file is taken again.
  void submit_keeping_refusal(std::string_view line, std::string source_id, std::string where,
                              std::function<void(IngestReply)> done);
  // The same for a request refused before it reached the core (too long to be read): `refusal`
  // is its answer, already counted; the dead letter keeps no data.
  void keep_refusal(IngestReply refusal, const ParseFailure& why, std::string source_id,
                    std::string where, std::function<void(IngestReply)> done);

  // Commits the events appended by this round of handlers once they have all run, so events
  // read together share one commit.
  void schedule_commit();

 private:
  // An admitted request's append; `done` gets finish()'s reply after the commit.
  void append_admitted(storage::AppendRequest req, PendingReply pending,
                       std::function<void(IngestReply)> done);
  // A refused request as the outbox's dead letter (refused_reason), and its append.
  storage::AppendRequest refusal_request(std::string_view line, const ParseFailure& why,
                                         std::string source_id, const std::string& where);
  void append_refusal(storage::AppendRequest refused, IngestReply refusal,
                      std::function<void(IngestReply)> done);

  asio::io_context& io_;
  const Config& config_;
  storage::Outbox& outbox_;
  AgentCounters own_counters_;
  AgentCounters* counters_ = &own_counters_;
  IdGenerator ids_;
  std::shared_ptr<const ContractRegistry> contracts_ = ContractRegistry::empty();
  bool commit_scheduled_ = false;
  std::atomic<size_t> max_line_bytes_;
};

}  // namespace edgesync::agent
