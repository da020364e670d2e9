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
