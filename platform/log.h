// The agent's log: one line per event of interest (connect, disconnect with its reason,
// backoff, dead letter, storage error, configuration applied or refused), never one per event
// at the default level.
//
// Three forms, chosen by log.format (or the environment under "auto"):
//  - journal: under systemd (JOURNAL_STREAM names stderr), sd_journal_send with the priority
//    and fields: EDGESYNC_EVENT=hub_connected, EDGESYNC_SEQ=..., so `journalctl
//    EDGESYNC_EVENT=dead_letter` finds them;
//  - json: one JSON object per line on stderr {"ts","level","event","msg", fields...};
//  - text: "edgesync: <message>" on stderr, for a technician's terminal.
// auto: journal under systemd, text when stderr is a terminal, json otherwise.
// The level can be changed while the agent runs (edgesync log-level). Thread-safe: a line is
// written whole, and settings are atomics.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "platform/status.h"

namespace edgesync::platform {

// syslog priorities, as the journal keeps them.
enum class LogLevel { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };
enum class LogFormat { kAuto, kText, kJson, kJournal };

Result<LogLevel> parse_log_level(std::string_view name);  // error, warning, notice, info, debug
const char* log_level_name(LogLevel level);
Result<LogFormat> parse_log_format(std::string_view name);  // auto, text, json, journal

void set_log_level(LogLevel level);
LogLevel log_level();
// kAuto resolves here, once: journal when stderr is the journal's stream, text when it is a
// terminal, else json.
void set_log_format(LogFormat format);

using LogFields = std::initializer_list<std::pair<std::string_view, std::string>>;
bool log_enabled(LogLevel level);
// `event`: a short snake_case name of what happened; `fields`: name -> value, names in
// snake_case (the journal gets them upper-cased, prefixed EDGESYNC_).
void log(LogLevel level, std::string_view event, const std::string& message, LogFields fields = {});

}  // namespace edgesync::platform
