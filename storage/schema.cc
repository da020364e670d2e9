#include "storage/schema.h"

#include <string>

namespace edgesync::storage {
namespace {

// Each entry takes the schema from version i to i+1. Never edit a shipped entry: append.
const char* const kMigrations[] = {
    // 0 -> 1: the first released layout (0.1.0 development builds).
    "CREATE TABLE events("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  type TEXT NOT NULL,"
    "  occurred_at TEXT,"
    "  received_ms INTEGER NOT NULL,"
    "  data BLOB NOT NULL);"
    "CREATE TABLE state(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO state(key, value) VALUES('delivered_seq', 0);",

    // 1 -> 2: events that can never be delivered are kept with their reason instead of
    // blocking the stream; the CLI lists them.
    "CREATE TABLE dead_letters("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  occurred_at TEXT,"
    "  received_ms INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  failed_ms INTEGER NOT NULL);",

    // 2 -> 3: the outbox's incarnation, a random UUID (version 4) made with the database and
    // never changed. seq restarts at 1 in a new file (an outbox moved aside, or quarantined),
    // so the hub keys events on (device, incarnation, seq). An outbox migrated from an earlier
    // release gets its incarnation here: the events it sent before carried none.
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta(key, value) SELECT 'incarnation',"
    "  substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-' ||"
    "  substr('89ab', 1 + (unicode(substr(h, 17, 1)) % 4), 1) || substr(h, 18, 3) || '-' ||"
    "  substr(h, 21, 12)"
    "  FROM (SELECT lower(hex(randomblob(16))) AS h);",

    // 3 -> 4: a producer's optional trace_id, carried to the hub so that a sale can be
    // followed from the till to the hub, and the version of the event's contract (docs/
    // CONTRACTS.md), both NULL when absent (adding a column rewrites nothing).
    "ALTER TABLE events ADD COLUMN trace_id TEXT;"
    "ALTER TABLE events ADD COLUMN contract_v INTEGER;"
    "ALTER TABLE dead_letters ADD COLUMN trace_id TEXT;"
    "ALTER TABLE dead_letters ADD COLUMN contract_v INTEGER;",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

Status newer_than_known(int64_t version) {
  return Status::invalid_argument(
      "database schema version " + std::to_string(version) + " is newer than this edgesync (" +
      std::to_string(kSchemaVersion) +
      "); it was written by a later release. Install that release again, or move the file "
      "aside to start an empty outbox.");
}

}  // namespace

Status migrate_schema(Database& db) {
  auto version = db.query_int64("PRAGMA user_version", 0);
  if (!version) return version.status();
  if (*version > kSchemaVersion) return newer_than_known(*version);
  if (*version == kSchemaVersion) return Status::ok();

  Status s = db.exec("BEGIN IMMEDIATE");
  if (!s) return s;
  for (int64_t v = *version; v < kSchemaVersion; ++v) {
    s = db.exec(kMigrations[v]);
    if (!s) {
      db.exec("ROLLBACK");
      return Status::io_error("schema migration " + std::to_string(v) + " -> " +
                              std::to_string(v + 1) + " failed: " + s.message());
    }
  }
  s = db.exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  if (s) s = db.exec("COMMIT");
  if (!s) db.exec("ROLLBACK");
  return s;
}

Result<std::string> read_incarnation(Database& db) {
  auto q = db.prepare("SELECT value FROM meta WHERE key = 'incarnation'");
  if (!q) return q.status();
  auto row = (*q)->step();
  if (!row) return row.status();
  if (!*row) return Status::io_error("the outbox has no incarnation id (meta table is empty)");
  return std::string((*q)->column_text(0));
}

Status check_schema_readable(Database& db) {
  auto version = db.query_int64("PRAGMA user_version", 0);
  if (!version) return version.status();
  if (*version > kSchemaVersion) return newer_than_known(*version);
  if (*version < kSchemaVersion) {
    return Status::unavailable("database schema version " + std::to_string(*version) +
                               " is older than " + std::to_string(kSchemaVersion) +
                               "; start the agent once to migrate it");
  }
  return Status::ok();
}

}  // namespace edgesync::storage
