// The outbox database schema and its forward migrations.
//
// The schema version lives in PRAGMA user_version. Opening runs every migration from the file's
// version up to kSchemaVersion inside one transaction, so a crash mid-migration leaves the old
// schema intact. A file with a newer version than this build knows is refused, untouched.
#pragma once

#include <string>

#include "platform/status.h"
#include "storage/sqlite.h"

namespace edgesync::storage {

inline constexpr int kSchemaVersion = 4;

// REQUIRES: db is open read-write and not inside a transaction.
Status migrate_schema(Database& db);

// The outbox's incarnation id (schema version 3 on).
Result<std::string> read_incarnation(Database& db);

// Checks a database opened read-only: ok if its version is one this build can read.
Status check_schema_readable(Database& db);

}  // namespace edgesync::storage
