// `edgesync export`: a consistent copy of the outbox a technician can carry away, taken while
// the agent runs (storage/outbox_export.h), with a summary beside it (FILE.summary.json,
// config/contracts/export-summary.schema.json).
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/cli.h"
#include "agent/cli_format.h"
#include "agent/config_tools.h"
#include "agent/state_file.h"
#include "agent/version.h"
#include "events/json_nesting.h"
#include "events/json_text.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "storage/outbox_export.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;

// The summary's format, raised when a field changes meaning or goes.
constexpr int kSummaryFormat = 1;

// The agent's state file as it is (agent/state_file.h), or null if it cannot be read: whoever
// reads the export learns whether the agent ran and how its hub connection stood.
json agent_state_copy(const std::string& path) {
  auto text = platform::read_file(path);
  if (!text) return nullptr;
  // As text when nested deeper than the agent writes it: the summary's dump() recurses per level.
  if (events::nesting_depth(*text) > kMaxStateFileNesting) return json(*text);
  json j = json::parse(*text, nullptr, false);
  return j.is_discarded() ? json(*text) : j;
}

json summary_json(const Config& config, const std::string& out, const std::string& since,
                  std::optional<int64_t> cutoff_ms, int64_t now, const storage::ExportFigures& f) {
  const bool any = f.events > 0;
  return {
      {"format", kSummaryFormat},
      {"file", out},
      {"exported_at", platform::format_rfc3339_ms(now)},
      {"edgesync_version", kVersion},
      {"device_id", config.device.id},
      {"store_id", config.device.store_id},
      {"source", config.storage.path},
      {"incarnation", f.incarnation},
      {"schema_version", f.schema_version},
      {"since", since.empty() ? json(nullptr) : json(since)},
      {"since_cutoff", cutoff_ms ? json(platform::format_rfc3339_ms(*cutoff_ms)) : json(nullptr)},
      {"events",
       {{"first_seq", any ? json(f.first_seq) : json(nullptr)},
        {"last_seq", any ? json(f.last_seq) : json(nullptr)},
        {"count", f.events},
        {"pending", f.pending},
        {"delivered", f.delivered}}},
      {"dead_letters", f.dead_letters},
      {"delivered_seq", f.delivered_seq},
      {"removed_by_since",
       {{"events", f.removed_events}, {"dead_letters", f.removed_dead_letters}}},
      {"bytes", f.bytes},
      {"quick_check", f.quick_check},
      {"agent_state_file", config.state_file()},
      {"agent_state", agent_state_copy(config.state_file())},
  };
}

void print_summary(const json& j, const std::string& summary_path) {
  const auto& ev = j["events"];
  print_field("exported", j["file"].get<std::string>() + " (" +
                              human_bytes(j["bytes"].get<int64_t>()) + ", mode 0600)");
  print_field("summary", summary_path);
  print_field("device", j["store_id"].get<std::string>() + "/" + j["device_id"].get<std::string>());
  print_field("incarnation", j["incarnation"].get<std::string>());
  print_field("schema version", std::to_string(j["schema_version"].get<int64_t>()));
  print_field("exported at", j["exported_at"].get<std::string>());
  std::string events = std::to_string(ev["count"].get<int64_t>());
  if (!ev["first_seq"].is_null()) {
    events += ", seq " + std::to_string(ev["first_seq"].get<int64_t>()) + ".." +
              std::to_string(ev["last_seq"].get<int64_t>());
  }
  events += " (" + std::to_string(ev["pending"].get<int64_t>()) + " pending, " +
            std::to_string(ev["delivered"].get<int64_t>()) + " delivered)";
  print_field("events", events);
  print_field("dead letters", std::to_string(j["dead_letters"].get<int64_t>()));
  print_field("last delivered", "seq " + std::to_string(j["delivered_seq"].get<int64_t>()));
  if (j["since"].is_null()) {
    print_field("since", "- (everything the outbox kept)");
  } else {
    const auto& removed = j["removed_by_since"];
    print_field("since",
                j["since"].get<std::string>() + ": received (dead letters: failed) since " +
                    j["since_cutoff"].get<std::string>() + "; " +
                    std::to_string(removed["events"].get<int64_t>()) + " older events and " +
                    std::to_string(removed["dead_letters"].get<int64_t>()) +
                    " dead letters left out");
  }
  print_field("quick check", j["quick_check"].get<std::string>());
  const json& state = j["agent_state"];
  if (state.is_object()) {
    std::string agent = state.value("running", false)
                            ? "was running (pid " + std::to_string(state.value("pid", 0L)) + ")"
                            : "was stopped";
    if (state.contains("hub") && state["hub"].is_object()) {
      agent += ", hub " + state["hub"].value("state", std::string("?"));
    }
    print_field("agent state", agent + " (copied into the summary)");
  } else {
    print_field("agent state", "- (" + j["agent_state_file"].get<std::string>() + " not readable)");
  }
}

}  // namespace

int cli_export(const Config& config, const std::string& out, const std::string& since,
               bool as_json) {
  const char* me = "edgesync export: ";
  if (out.empty()) {
    std::cerr << me << "--out FILE is required\n";
    return 2;
  }
  const int64_t now = platform::unix_ms();
  std::optional<int64_t> cutoff;
  if (!since.empty()) {
    auto d = parse_duration_ms(since);
    if (!d) {
      std::cerr << me << "--since: " << d.status().message() << "\n";
      return 2;
    }
    cutoff = now - *d;
  }
  const std::string summary_path = out + ".summary.json";
  // Checked before the copy, which may take a while; the copy's own file is created exclusively.
  if (platform::path_exists(summary_path)) {
    std::cerr << me << summary_path << " exists; refusing to overwrite it\n";
    return 2;
  }

  storage::ExportOptions options;
  options.source = config.storage.path;
  options.out = out;
  options.keep_since_ms = cutoff;
  auto figures = storage::export_outbox(options);
  if (!figures) {
    std::cerr << me << figures.status().to_string() << "\n";
    return figures.status().code() == Status::Code::kInvalidArgument ? 2 : 1;
  }

  const json summary = summary_json(config, out, since, cutoff, now, *figures);
  Status s = storage::write_new_private_file(summary_path, events::json_text(summary, 2) + "\n");
  if (!s) {
    std::cerr << me << "the copy " << out
              << " is complete, but its summary is not: " << s.to_string() << "\n";
    return 1;
  }
  if (as_json) {
    std::cout << events::json_text(summary, 2) << "\n";
  } else {
    print_summary(summary, summary_path);
  }
  if (figures->quick_check != "ok") {
    std::cerr << me << "the copy did not pass PRAGMA quick_check (kept for inspection): "
              << figures->quick_check << "\n";
    return 1;
  }
  return 0;
}

}  // namespace edgesync::agent
