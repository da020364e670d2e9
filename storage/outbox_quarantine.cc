#include "storage/outbox_quarantine.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <utility>
#include <vector>

#include "platform/files.h"
#include "storage/schema.h"

namespace edgesync::storage {
namespace {

struct TableShape {
  int since_version;  // the shape holds from this schema version...
  int until_version;  // ...through this one
  const char* name;
  const char* columns;  // in order, comma-separated
};

// The outbox's tables and the schema version that added each (storage/schema.cc).
constexpr TableShape kTables[] = {
    {1, 3, "events", "seq,id,type,occurred_at,received_ms,data"},
    {4, kSchemaVersion, "events", "seq,id,type,occurred_at,received_ms,data,trace_id,contract_v"},
    {1, kSchemaVersion, "state", "key,value"},
    {2, 3, "dead_letters", "seq,id,type,occurred_at,received_ms,data,reason,failed_ms"},
    {4, kSchemaVersion, "dead_letters",
     "seq,id,type,occurred_at,received_ms,data,reason,failed_ms,trace_id,contract_v"},
    {3, kSchemaVersion, "meta", "key,value"},
};

OutboxFileCheck quarantine_for(std::string reason) {
  OutboxFileCheck c;
  c.quarantine = true;
  c.reason = std::move(reason);
  return c;
}

// Corruption as SQLite reports it (SQLITE_CORRUPT, SQLITE_NOTADB) means quarantine; any other
// failure means "cannot tell" and is returned as it is.
Result<OutboxFileCheck> judge(const Status& s, const char* what) {
  if (s.code() == Status::Code::kCorruption) {
    return quarantine_for(std::string("damaged (") + what + "): " + s.message());
  }
  return s;
}

Result<std::string> query_text(Database& db, const char* sql, std::string_view param) {
  auto q = db.prepare(sql);
  if (!q) return q.status();
  if (!param.empty()) (*q)->bind_text(1, param);
  auto row = (*q)->step();
  if (!row) return row.status();
  std::string out = *row ? std::string((*q)->column_text(0)) : std::string();
  (*q)->reset();
  return out;
}

std::string utc_stamp(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

Result<OutboxFileCheck> examine_outbox_file(const std::string& path, const std::string& vfs) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::io_error("cannot stat " + path);
    for (const char* suffix : {"-wal", "-journal"}) {
      if (platform::path_exists(path + suffix)) {
        return quarantine_for(std::string("a ") + (suffix + 1) +
                              " file without its database (an interrupted quarantine, or the "
                              "database deleted by hand); SQLite would replay it into a new one");
      }
    }
    return OutboxFileCheck{};
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::invalid_argument(path +
                                    " is not a regular file; remove it or change "
                                    "storage.path");
  }
  // Read-write, as the writer opens it: a WAL left by a crash is replayed first, so the checks
  // see every committed event.
  Database::Options o;
  o.create = false;
  o.vfs = vfs;
  auto opened = Database::open(path, o);
  if (!opened) return judge(opened.status(), "open");
  Database& db = **opened;

  auto version = db.query_int64("PRAGMA user_version", 0);
  if (!version) return judge(version.status(), "header");
  OutboxFileCheck result;
  if (*version >= 3) {
    auto inc = query_text(db, "SELECT value FROM meta WHERE key = 'incarnation'", "");
    if (inc) result.incarnation = *inc;  // best effort: for the incident record only
  }
  auto judge_with_incarnation = [&result](const Status& s, const char* what) {
    auto j = judge(s, what);
    if (j) j->incarnation = result.incarnation;
    return j;
  };
  if (*version > kSchemaVersion) {
    OutboxFileCheck c = quarantine_for(
        "schema version " + std::to_string(*version) + " is newer than this edgesync (" +
        std::to_string(kSchemaVersion) +
        "): a downgrade. The kept file holds that release's pending events; reinstall it and "
        "move the file back to deliver them");
    c.incarnation = result.incarnation;
    return c;
  }
  auto tables = db.query_int64(
      "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'", 0);
  if (!tables) return judge(tables.status(), "schema");
  if (*version == 0) {
    if (*tables == 0) return result;  // empty: the writer creates the schema
    return quarantine_for("not an outbox: a database with other tables and no schema version");
  }
  for (const TableShape& t : kTables) {
    if (*version < t.since_version || *version > t.until_version) continue;
    auto columns =
        query_text(db,
                   "SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_table_info(?1) "
                   "ORDER BY cid)",
                   t.name);
    if (!columns) return judge(columns.status(), "schema");
    if (*columns != t.columns) {
      return quarantine_for("not an outbox of schema version " + std::to_string(*version) +
                            ": table " + t.name +
                            (columns->empty() ? " is missing" : " has columns " + *columns));
    }
  }
  // Every page of every table and index, read once (a second or so per 100 MB on an SD card);
  // the cheaper "quick" variant skips only the index-versus-table cross-checks.
  auto q = db.prepare("PRAGMA quick_check(5)");
  if (!q) return judge_with_incarnation(q.status(), "quick_check");
  std::string problems;
  while (true) {
    auto row = (*q)->step();
    if (!row) return judge_with_incarnation(row.status(), "quick_check");
    if (!*row) break;
    std::string_view line = (*q)->column_text(0);
    if (line == "ok") continue;
    if (!problems.empty()) problems += "; ";
    problems += line;
  }
  if (!problems.empty()) {
    OutboxFileCheck c = quarantine_for("damaged (PRAGMA quick_check): " + problems);
    c.incarnation = result.incarnation;
    return c;
  }
  return result;
}

Result<QuarantineIncident> quarantine_outbox_file(const std::string& path,
                                                  const OutboxFileCheck& check, int64_t now_ms) {
  const std::string base = path + ".quarantined-" + utc_stamp(now_ms);
  // A name none of whose three files exists: an earlier quarantine is never replaced.
  std::string target;
  for (int n = 1; target.empty(); ++n) {
    std::string candidate = n == 1 ? base : base + "-" + std::to_string(n);
    if (!platform::path_exists(candidate) && !platform::path_exists(candidate + "-wal") &&
        !platform::path_exists(candidate + "-journal")) {
      target = candidate;
    }
  }
  // The database first: should a crash come between, the WAL left behind is moved aside on the
  // next start (examine_outbox_file) instead of being replayed into the fresh database.
  for (const char* suffix : {"", "-wal", "-journal"}) {
    Status s = platform::rename_no_replace(path + suffix, target + suffix);
    if (!s && s.code() != Status::Code::kNotFound) return s;
  }
  if (::unlink((path + "-shm").c_str()) != 0 && errno != ENOENT) {
    return Status::io_error("cannot remove " + path + "-shm");
  }
  Status s = platform::sync_dir(platform::dirname_of(path));
  if (!s) return s;
  QuarantineIncident incident;
  incident.file = target;
  incident.reason = check.reason;
  incident.at_ms = now_ms;
  incident.incarnation = check.incarnation;
  return incident;
}

Status record_quarantine(Database& db, const QuarantineIncident& incident) {
  auto q = db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)");
  if (!q) return q.status();
  const std::pair<const char*, std::string> rows[] = {
      {"quarantined_file", incident.file},
      {"quarantine_reason", incident.reason},
      {"quarantined_ms", std::to_string(incident.at_ms)},
      {"quarantined_incarnation", incident.incarnation},
  };
  Status s = db.exec("BEGIN IMMEDIATE");
  for (const auto& [key, value] : rows) {
    if (!s) break;
    (*q)->bind_text(1, key);
    (*q)->bind_text(2, value);
    s = (*q)->run();
  }
  if (s) s = db.exec("COMMIT");
  if (!s && db.in_transaction()) db.exec("ROLLBACK");
  return s;
}

std::optional<QuarantineIncident> read_quarantine(Database& db) {
  auto q = db.prepare("SELECT key, value FROM meta WHERE key LIKE 'quarantine%'");
  if (!q) return std::nullopt;
  QuarantineIncident incident;
  while (true) {
    auto row = (*q)->step();
    if (!row || !*row) break;
    std::string_view key = (*q)->column_text(0);
    std::string value((*q)->column_text(1));
    if (key == "quarantined_file") incident.file = value;
    if (key == "quarantine_reason") incident.reason = value;
    if (key == "quarantined_ms") incident.at_ms = std::strtoll(value.c_str(), nullptr, 10);
    if (key == "quarantined_incarnation") incident.incarnation = value;
  }
  if (incident.file.empty()) return std::nullopt;
  return incident;
}

}  // namespace edgesync::storage
