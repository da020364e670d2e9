#include "agent/control_protocol.h"

#include "platform/clock.h"

namespace edgesync::agent {

using nlohmann::json;
using Kind = storage::RepairRequest::Kind;

Result<storage::RepairRequest> parse_repair_request(const json& request, int64_t now_ms) {
  storage::RepairRequest r;
  const std::string cmd = request.value("cmd", "");
  if (cmd == "hold") {
    r.kind = Kind::kHold;
  } else if (cmd == "release") {
    r.kind = Kind::kRelease;
  } else if (cmd == "retry_dead_letters") {
    r.kind = Kind::kRetryDeadLetters;
    const bool all = request.value("all", false);
    auto seqs = request.find("seqs");
    if (all == (seqs != request.end())) {
      return Status::invalid_argument("retry_dead_letters: give either \"seqs\" or \"all\": true");
    }
    if (!all) {
      if (!seqs->is_array() || seqs->empty()) {
        return Status::invalid_argument("seqs: must be a non-empty array of sequence numbers");
      }
      for (const auto& s : *seqs) {
        if (!s.is_number_integer() || s.get<int64_t>() < 1) {
          return Status::invalid_argument("seqs: each must be an integer of at least 1");
        }
        r.seqs.push_back(s.get<int64_t>());
      }
    }
  } else if (cmd == "purge_dead_letters") {
    r.kind = Kind::kPurgeDeadLetters;
    auto older = request.find("older_than_s");
    if (older == request.end() || !older->is_number_integer() || older->get<int64_t>() < 0) {
      return Status::invalid_argument("older_than_s: required, a whole number of seconds >= 0");
    }
    r.failed_before_ms = now_ms - older->get<int64_t>() * 1000;
  } else {
    return Status::not_found("unknown command \"" + cmd + "\"");
  }
  return r;
}

json repair_request_json(const storage::RepairRequest& r, int64_t older_than_s) {
  json j = {{"v", kControlProtocolVersion}};
  switch (r.kind) {
    case Kind::kHold: j["cmd"] = "hold"; break;
    case Kind::kRelease: j["cmd"] = "release"; break;
    case Kind::kRetryDeadLetters:
      j["cmd"] = "retry_dead_letters";
      if (r.seqs.empty()) {
        j["all"] = true;
      } else {
        j["seqs"] = r.seqs;
      }
      break;
    case Kind::kPurgeDeadLetters:
      j["cmd"] = "purge_dead_letters";
      j["older_than_s"] = older_than_s;
      break;
  }
  return j;
}

json repair_reply(const storage::RepairRequest& request, const storage::RepairResult& result) {
  if (!result.status) return error_reply("failed", result.status.to_string());
  json j = {{"ok", true}};
  switch (request.kind) {
    case Kind::kHold:
    case Kind::kRelease:
      j["held_since"] = result.held_since_ms > 0
                            ? json(platform::format_rfc3339_ms(result.held_since_ms))
                            : json(nullptr);
      break;
    case Kind::kRetryDeadLetters: {
      json retried = json::array();
      for (const auto& [seq, new_seq] : result.retried) {
        retried.push_back({{"seq", seq}, {"new_seq", new_seq}});
      }
      j["retried"] = std::move(retried);
      j["skipped"] = result.skipped;
      break;
    }
    case Kind::kPurgeDeadLetters:
      j["purged"] = result.purged;
      break;
  }
  return j;
}

std::string repair_summary(const storage::RepairRequest& request,
                           const storage::RepairResult& result) {
  if (!result.status) return result.status.to_string();
  switch (request.kind) {
    case Kind::kHold:
      return "delivery held since " + platform::format_rfc3339_ms(result.held_since_ms);
    case Kind::kRelease:
      return "delivery released";
    case Kind::kRetryDeadLetters: {
      std::string s = std::to_string(result.retried.size()) +
                      (result.retried.size() == 1 ? " dead letter" : " dead letters") +
                      " put back into delivery";
      for (size_t i = 0; i < result.retried.size(); ++i) {
        s += (i == 0 ? ": seq " : ", seq ") + std::to_string(result.retried[i].first) + " as " +
             std::to_string(result.retried[i].second);
        if (i == 9 && result.retried.size() > 10) {
          s += ", ...";
          break;
        }
      }
      if (!result.skipped.empty()) s += "; " + std::to_string(result.skipped.size()) + " skipped";
      return s;
    }
    case Kind::kPurgeDeadLetters:
      return std::to_string(result.purged) +
             (result.purged == 1 ? " dead letter purged" : " dead letters purged");
  }
  return {};
}

json error_reply(const std::string& code, const std::string& message) {
  return {{"ok", false}, {"error", code}, {"message", message}};
}

}  // namespace edgesync::agent
