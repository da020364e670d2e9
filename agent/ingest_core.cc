#include "agent/ingest_core.h"

#include <nlohmann/json.hpp>

#include "platform/clock.h"

namespace edgesync::agent {

IngestCore::IngestCore(asio::io_context& io, const Config& config, storage::Outbox& outbox)
    : io_(io),
      config_(config),
      outbox_(outbox),
      max_line_bytes_(static_cast<size_t>(config.ingest.max_line_bytes)) {}

bool IngestCore::admit(std::string_view line, storage::AppendRequest* req,
                       PendingReply* pending, IngestReply* reply, ParseFailure* why) {
  ParseFailure own_failure;
  ParseFailure& failure = why ? *why : own_failure;
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
  append_admitted(std::move(req), std::move(pending), std::move(done));
}

void IngestCore::append_admitted(storage::AppendRequest req, PendingReply pending,
                                 std::function<void(IngestReply)> done) {
  outbox_.append_deferred(std::move(req), [this, pending = std::move(pending),
                                           done = std::move(done)](
                                              const storage::AppendResult& r) {
    IngestReply reply;
    finish(r, pending, &reply);
    done(std::move(reply));
  });
  schedule_commit();
}

void IngestCore::submit_keeping_refusal(std::string_view line, std::string source_id,
                                        std::string where,
                                        std::function<void(IngestReply)> done) {
  storage::AppendRequest req;
  PendingReply pending;
  IngestReply reply;
  ParseFailure why;
  if (admit(line, &req, &pending, &reply, &why)) {
    append_admitted(std::move(req), std::move(pending), std::move(done));
    return;
  }
  storage::AppendRequest refused = refusal_request(line, why, std::move(source_id), where);
  append_refusal(std::move(refused), std::move(reply), std::move(done));
}

void IngestCore::keep_refusal(IngestReply refusal, const ParseFailure& why,
                              std::string source_id, std::string where,
                              std::function<void(IngestReply)> done) {
  storage::AppendRequest refused = refusal_request({}, why, std::move(source_id), where);
  append_refusal(std::move(refused), std::move(refusal), std::move(done));
}

storage::AppendRequest IngestCore::refusal_request(std::string_view line, const ParseFailure& why,
                                                   std::string source_id,
                                                   const std::string& where) {
  storage::AppendRequest r;
  r.id = std::move(source_id);
  r.received_ms = platform::unix_ms();
  // What a technician needs to see what was wrong, bounded: these rows are outside
  // storage.max_bytes, and a producer decides how long its lines are.
  constexpr size_t kKeptBytes = 4096;
  r.data.assign(line.substr(0, kKeptBytes));
  // The type when the line names one, so the listing shows what it was meant to be.
  const auto doc = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object()) {
    const auto type = doc.find("type");
    if (type != doc.end() && type->is_string()) r.type = type->get<std::string>();
  }
  r.refused_reason = "refused on arrival (" + where + "): " + error_code_name(why.error) + ": " +
                     why.message;
  for (const Violation& v : why.violations) {
    r.refused_reason += "; " + v.path + " " + v.rule;
    if (!v.expected.is_null()) r.refused_reason += " (expected " + v.expected.dump() + ")";
  }
  if (line.size() > kKeptBytes) {
    r.refused_reason += " [data: its first " + std::to_string(kKeptBytes) + " of " +
                        std::to_string(line.size()) + " bytes]";
  }
  return r;
}

void IngestCore::append_refusal(storage::AppendRequest refused, IngestReply refusal,
                                std::function<void(IngestReply)> done) {
  outbox_.append_deferred(
      std::move(refused), [this, refusal = std::move(refusal),
                           done = std::move(done)](const storage::AppendResult& r) mutable {
        using Outcome = storage::AppendResult::Outcome;
        if (r.outcome == Outcome::kStored || r.outcome == Outcome::kDuplicate) {
          done(std::move(refusal));
          return;
        }
        const IngestError e = r.outcome == Outcome::kOutboxFull ? IngestError::kOutboxFull
                                                                : IngestError::kStorageError;
        counters_->count_refused(e);
        done(error_reply(e, "the refusal could not be recorded: " + r.message));
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
