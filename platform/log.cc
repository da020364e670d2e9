#include "platform/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "platform/clock.h"

#ifdef EDGESYNC_HAVE_SYSTEMD
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#endif

namespace edgesync::platform {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};

// JSON string contents: the messages carry paths, broker errors and ids.
void append_json_string(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          *out += buf;
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

// Whole lines with one write(2): lines from several threads never interleave.
void write_line(const std::string& line) {
  size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// systemd sets JOURNAL_STREAM to the device and inode of the stream it connected stderr to.
bool stderr_is_journal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (!js) return false;
  struct stat st;
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) &&
         ino == static_cast<unsigned long long>(st.st_ino);
}

#ifdef EDGESYNC_HAVE_SYSTEMD
void send_journal(LogLevel level, std::string_view event, const std::string& message,
                  LogFields fields) {
  std::vector<std::string> parts;
  parts.reserve(4 + fields.size());
  parts.push_back("MESSAGE=" + message);
  parts.push_back("PRIORITY=" + std::to_string(static_cast<int>(level)));
  parts.push_back("SYSLOG_IDENTIFIER=edgesync");
  parts.push_back("EDGESYNC_EVENT=" + std::string(event));
  for (const auto& [name, value] : fields) {
    std::string key = "EDGESYNC_";
    for (char c : name) key.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    parts.push_back(key + "=" + value);
  }
  std::vector<iovec> iov;
  iov.reserve(parts.size());
  for (auto& p : parts) iov.push_back({p.data(), p.size()});
  if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) < 0) {
    write_line("edgesync: " + message + "\n");  // the journal is away: stderr still reaches it
  }
}
#endif

}  // namespace

Result<LogLevel> parse_log_level(std::string_view name) {
  if (name == "error") return LogLevel::kError;
  if (name == "warning") return LogLevel::kWarning;
  if (name == "notice") return LogLevel::kNotice;
  if (name == "info") return LogLevel::kInfo;
  if (name == "debug") return LogLevel::kDebug;
  return Status::invalid_argument("log level must be error, warning, notice, info or debug");
}

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kNotice: return "notice";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "info";
}

Result<LogFormat> parse_log_format(std::string_view name) {
  if (name == "auto") return LogFormat::kAuto;
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  if (name == "journal") return LogFormat::kJournal;
  return Status::invalid_argument("log format must be auto, text, json or journal");
}

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

void set_log_format(LogFormat format) {
  if (format == LogFormat::kAuto) {
    // A technician running the agent by hand reads text; anything else collecting stderr (a
    // file, a container runtime, a log shipper) gets lines it can parse.
    format = stderr_is_journal()         ? LogFormat::kJournal
             : ::isatty(STDERR_FILENO) == 1 ? LogFormat::kText
                                          : LogFormat::kJson;
  }
#ifndef EDGESYNC_HAVE_SYSTEMD
  if (format == LogFormat::kJournal) format = LogFormat::kJson;
#endif
  g_format = static_cast<int>(format);
}

bool log_enabled(LogLevel level) { return static_cast<int>(level) <= g_level.load(); }

void log(LogLevel level, std::string_view event, const std::string& message, LogFields fields) {
  if (!log_enabled(level)) return;
  switch (static_cast<LogFormat>(g_format.load())) {
    case LogFormat::kJournal:
#ifdef EDGESYNC_HAVE_SYSTEMD
      send_journal(level, event, message, fields);
      return;
#else
      [[fallthrough]];
#endif
    case LogFormat::kJson: {
      std::string line = "{\"ts\":";
      append_json_string(&line, format_rfc3339_ms(unix_ms()));
      line += ",\"level\":";
      append_json_string(&line, log_level_name(level));
      line += ",\"event\":";
      append_json_string(&line, event);
      line += ",\"msg\":";
      append_json_string(&line, message);
      for (const auto& [name, value] : fields) {
        line.push_back(',');
        append_json_string(&line, name);
        line.push_back(':');
        append_json_string(&line, value);
      }
      line += "}\n";
      write_line(line);
      return;
    }
    case LogFormat::kAuto:
    case LogFormat::kText:
      write_line("edgesync: " + message + "\n");
      return;
  }
}

}  // namespace edgesync::platform
