// The outbox database as the agent opens it for writing: WAL, synchronous=FULL, the page size,
// cache and journal limits below, and the schema migrated to the current version.
//
// One place for these settings so that everything measuring "what SQLite alone can do" (the
// benchmark's raw loops) opens its database exactly as the agent does.
#pragma once

#include <memory>
#include <string>

#include "platform/status.h"
#include "storage/sqlite.h"

namespace edgesync::storage {

// Opens (creating and migrating as needed) a read-write connection with the outbox's settings.
// `vfs` empty: SQLite's default; tests pass a fault-injecting VFS by name.
Result<std::unique_ptr<Database>> open_outbox_database(const std::string& path,
                                                       const std::string& vfs);

// Stores one event. Parameters: seq, id, type, occurred_at (NULL if absent), received_ms, data,
// trace_id (NULL if absent), contract_v (NULL if none).
// An id already stored changes nothing (changes() == 0).
extern const char* const kInsertEventSql;

}  // namespace edgesync::storage
