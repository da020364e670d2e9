#include "agent/ingest_core.h"

#include "platform/clock.h"

namespace edgesync::agent {

IngestCore::IngestCore(asio::io_context& io, const Config& config, storage::Outbox& outbox)
    : io_(io),
      config_(config),
      outbox_(outbox),
      max_line_bytes_(static_cast<size_t>(config.ingest.max_line_bytes)) {}

bool IngestCore::admit(std::string_view line, storage::AppendRequest* req,
                       PendingReply* pending, IngestReply* reply) {
  ParseFailure failure;
  const ContractCheck check{contracts_.get(), config_.ingest.unknown_types == "accept"};
  bool checked = false;
  if (!parse_event(line, platform::unix_ms(), ids_, check, req, &failure, &checked)) {
    counters_->count_refused(failure.error);
    *reply = error_reply(failure.error, failure.message, failure.violations);
    return false;
  }
  pending->id = req->id;
  pending->version = checked ? req->contract_version : 0;
  pending->unchecked = !checked;
  return true;
}

void IngestCore::finish(const storage::AppendResult& result, const PendingReply& pending,
                        IngestReply* reply) {
  using Outcome = storage::AppendResult::Outcome;
  AgentCounters& counters = *counters_;
  switch (result.outcome) {
    case Outcome::kStored:
      reply->ok = true;
      append_ok_reply(&reply->text, pending.id, result.seq, false, pending.version);
      counters.accepted.fetch_add(1, AgentCounters::kRelaxed);
      if (pending.unchecked) counters.unchecked.fetch_add(1, AgentCounters::kRelaxed);
      counters.accepted_window.add(platform::unix_ms());
      break;
    case Outcome::kDuplicate:
      reply->ok = true;
      append_ok_reply(&reply->text, pending.id, result.seq, true, pending.version);
      counters.duplicates.fetch_add(1, AgentCounters::kRelaxed);
      break;
    case Outcome::kOutboxFull:
    case Outcome::kStorageError: {
      const IngestError e = result.outcome == Outcome::kOutboxFull ? IngestError::kOutboxFull
                                                                   : IngestError::kStorageError;
      *reply = error_reply(e, result.message);
      counters.count_refused(e);
      break;
    }
  }
}

void IngestCore::submit(std::string_view line, std::function<void(IngestReply)> done) {
  storage::AppendRequest req;
  PendingReply pending;
  IngestReply reply;
  if (!admit(line, &req, &pending, &reply)) {
    done(std::move(reply));
    return;
  }
  outbox_.append_deferred(std::move(req), [this, pending = std::move(pending),
                                           done = std::move(done)](
                                              const storage::AppendResult& r) {
    IngestReply reply;
    finish(r, pending, &reply);
    done(std::move(reply));
  });
  schedule_commit();
}

void IngestCore::schedule_commit() {
  if (commit_scheduled_) return;
  commit_scheduled_ = true;
  // Runs after the handlers of every socket that was readable with this one, so their events
  // share one commit.
  asio::post(io_, [this] {
    commit_scheduled_ = false;
    outbox_.commit_queued();
  });
}

}  // namespace edgesync::agent
