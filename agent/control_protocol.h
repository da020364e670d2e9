// The control socket's requests and replies (docs/OPERATIONS.md, "Control socket"): one JSON
// object per line each way, in order. Shared by the agent's server and the CLI, which also
// builds the same replies itself when it repairs the outbox of a stopped agent.
//
//   {"v": 1, "cmd": "status"}
//   {"v": 1, "cmd": "hold"} / {"v": 1, "cmd": "release"}
//   {"v": 1, "cmd": "retry_dead_letters", "seqs": [12, 13]} / {..., "all": true}
//   {"v": 1, "cmd": "purge_dead_letters", "older_than_s": 604800}
//   {"v": 1, "cmd": "log_level", "level": "debug"}   (until the next start or reload)
//
// Replies: {"ok": true, ...} or {"ok": false, "error": CODE, "message": TEXT}, CODE one of
// bad_request, unknown_command, failed.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "platform/status.h"
#include "storage/outbox.h"

namespace edgesync::agent {

constexpr int kControlProtocolVersion = 1;
// A request line longer than this is refused and the connection closed.
constexpr size_t kMaxControlLine = 64 * 1024;

// A request the agent's writer runs (hold, release, retry, purge): parsed from `request` with
// `now_ms` for a purge's cutoff. Not ok: bad_request, with what is wrong.
Result<storage::RepairRequest> parse_repair_request(const nlohmann::json& request, int64_t now_ms);
// The request line for `r` (purge: `older_than_s` as given).
nlohmann::json repair_request_json(const storage::RepairRequest& r, int64_t older_than_s);
// The reply for a repair's result: retried [{seq, new_seq}], skipped, purged, held_since.
nlohmann::json repair_reply(const storage::RepairRequest& request,
                            const storage::RepairResult& result);
// One line for the log and the CLI: "delivery held", "2 dead letters put back: seq 5 as 12, ...".
std::string repair_summary(const storage::RepairRequest& request,
                           const storage::RepairResult& result);
nlohmann::json error_reply(const std::string& code, const std::string& message);

}  // namespace edgesync::agent
