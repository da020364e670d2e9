// `edgesync dead-letters retry|purge`, `edgesync outbox hold|release`: repairs through the
// running agent's control socket, so its writer stays the only one; on the database itself only
// when no agent runs (the outbox's lock file refuses a second writer either way).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <iostream>

#include "agent/cli.h"
#include "agent/control_client.h"
#include "agent/control_protocol.h"
#include "agent/state_file.h"
#include "events/json_text.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "storage/outbox.h"
#include "storage/outbox_quarantine.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

// Root repairing a stopped agent's outbox works as the file's owner: files SQLite or the lock
// create (the WAL, its index, the lock) must stay the agent's, or it could not open them.
class ActAsOwner {
 public:
  explicit ActAsOwner(const std::string& path) {
    struct stat st;
    if (::geteuid() != 0 || ::stat(path.c_str(), &st) != 0 || st.st_uid == 0) return;
    if (::setegid(st.st_gid) == 0 && ::seteuid(st.st_uid) == 0) switched_ = true;
  }
  ~ActAsOwner() {
    if (!switched_) return;
    if (::seteuid(0) != 0 || ::setegid(0) != 0) {
      std::cerr << "edgesync: could not return to root after the repair\n";
    }
  }

 private:
  bool switched_ = false;
};

// The repair on the outbox file itself: the agent is not running.
json repair_directly(const Config& config, const storage::RepairRequest& request) {
  if (!std::filesystem::exists(config.storage.path)) {
    return error_reply("failed", "no outbox at " + config.storage.path + ": nothing to repair");
  }
  // Opening the outbox would quarantine a damaged or foreign file and start a fresh one: that is
  // the agent's decision at its start, never a side effect of a technician's repair.
  auto check = storage::examine_outbox_file(config.storage.path, "");
  if (!check) {
    return error_reply("failed", "cannot examine " + config.storage.path + ": " +
                                     check.status().message() + "; nothing was changed");
  }
  if (check->quarantine) {
    return error_reply("failed", config.storage.path + " is " + check->reason +
                                     ". Start the agent: it keeps the file aside and starts a "
                                     "fresh outbox. Nothing was changed");
  }
  ActAsOwner owner(config.storage.path);
  storage::Outbox::Options o;
  o.path = config.storage.path;
  o.max_bytes = config.storage.max_bytes;
  o.keep_delivered = config.storage.keep_delivered;
  o.max_dead_letters = config.storage.max_dead_letters;
  o.dead_letter_max_age = std::chrono::hours(24 * config.storage.dead_letter_days);
  auto box = storage::Outbox::open(o, [](std::function<void()> fn) { fn(); });
  if (!box) return error_reply("failed", box.status().to_string() + "; nothing was changed");
  std::promise<storage::RepairResult> done;
  (*box)->repair(request, [&done](const storage::RepairResult& r) { done.set_value(r); });
  const storage::RepairResult r = done.get_future().get();
  (*box)->close();
  return repair_reply(request, r);
}

void print_human(const storage::RepairRequest& request, const json& reply, bool via_agent) {
  if (!reply.value("ok", false)) {
    std::cerr << "edgesync: " << reply.value("message", "the repair failed") << "\n";
    return;
  }
  using Kind = storage::RepairRequest::Kind;
  switch (request.kind) {
    case Kind::kHold:
      std::cout << "delivery held since " << reply["held_since"].get<std::string>()
                << ": events are still accepted and kept; edgesync outbox release resumes "
                   "delivery\n";
      break;
    case Kind::kRelease:
      std::cout << "delivery released\n";
      break;
    case Kind::kRetryDeadLetters:
      for (const auto& r : reply["retried"]) {
        std::cout << "seq " << r["seq"] << " put back into delivery as seq " << r["new_seq"]
                  << "\n";
      }
      for (const auto& s : reply["skipped"]) {
        std::cout << "skipped " << s.get<std::string>() << "\n";
      }
      std::cout << "(" << reply["retried"].size() << " put back, " << reply["skipped"].size()
                << " skipped)\n";
      break;
    case Kind::kPurgeDeadLetters:
      std::cout << reply["purged"] << " dead letters purged\n";
      break;
  }
  if (!via_agent) std::cout << "(the agent is not running: the outbox file was changed directly)\n";
}

}  // namespace

int cli_repair(const Config& config, const storage::RepairRequest& request, int64_t older_than_s,
               bool as_json) {
  const std::string socket = config.control_socket();
  bool sent = false;
  auto reply = control_request(socket, repair_request_json(request, older_than_s),
                               std::chrono::seconds(30), &sent);
  bool via_agent = true;
  json answer;
  if (reply) {
    answer = std::move(*reply);
  } else {
    const auto code = reply.status().code();
    auto state = read_agent_state(config.state_file());
    const bool running = state && state->running && platform::process_alive(state->pid);
    if (sent) {
      // The agent has the request: it may have done it, or do it later.
      answer = error_reply("unknown", reply.status().message() +
                                          ": the agent received the request and may have applied "
                                          "it (or will); check with edgesync status and "
                                          "edgesync dead-letters before repeating it");
    } else if ((code != Status::Code::kNotFound && code != Status::Code::kUnavailable) ||
               running) {
      // An agent may be writing the outbox: never a second writer beside it.
      std::string why = reply.status().message();
      if (running) {
        why = "the agent runs (pid " + std::to_string(state->pid) +
              ") but its control socket does not answer: " + why;
      }
      answer = error_reply("failed", why + "; nothing was changed");
    } else {
      via_agent = false;
      answer = repair_directly(config, request);
    }
  }
  const bool ok = answer.value("ok", false);
  if (as_json) {
    answer["via"] = via_agent ? "agent" : "database";
    std::cout << events::json_text(answer, 2) << "\n";
  } else {
    print_human(request, answer, via_agent);
  }
  if (!ok) return 1;
  // Something asked for was left as it was: a script must notice.
  return answer.contains("skipped") && !answer["skipped"].empty() ? 1 : 0;
}

int cli_log_level(const Config& config, const std::string& level, bool as_json) {
  auto reply = control_request(config.control_socket(),
                               {{"v", kControlProtocolVersion}, {"cmd", "log_level"}, {"level", level}},
                               std::chrono::seconds(10));
  if (!reply) {
    std::cerr << "edgesync log-level: " << reply.status().message()
              << " (no running agent to change; log.level in the configuration file sets the "
                 "level at start)\n";
    return 1;
  }
  if (as_json) {
    std::cout << events::json_text(*reply, 2) << "\n";
  } else if (reply->value("ok", false)) {
    std::cout << "log level " << reply->value("was", "?") << " -> " << reply->value("level", "?")
              << " until the agent restarts or reloads its configuration\n";
  } else {
    std::cerr << "edgesync log-level: " << reply->value("message", "refused") << "\n";
  }
  return reply->value("ok", false) ? 0 : (reply->value("error", "") == "bad_request" ? 2 : 1);
}

}  // namespace edgesync::agent
