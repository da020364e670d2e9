#include "storage/outbox_database.h"

#include "storage/schema.h"

namespace edgesync::storage {

const char* const kInsertEventSql =
    "INSERT INTO events(seq, id, type, occurred_at, received_ms, data) "
    "VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING";

Result<std::unique_ptr<Database>> open_outbox_database(const std::string& path,
                                                       const std::string& vfs) {
  Database::Options dbo;
  dbo.vfs = vfs;
  auto opened = Database::open(path, dbo);
  if (!opened) return opened.status();
  auto& d = **opened;
  auto mode = d.prepare("PRAGMA journal_mode=WAL");
  if (!mode) return mode.status();
  auto row = (*mode)->step();
  if (!row) return row.status();
  if (!*row || (*mode)->column_text(0) != "wal") {
    return Status::io_error("cannot switch " + path + " to WAL mode");
  }
  mode->reset();
  // FULL: the WAL is synced at every commit, so a commit that returned survives power loss.
  // No "PRAGMA wal_autocheckpoint" here: it would replace the WAL hook Database installed,
  // which already turned SQLite's auto-checkpoint off (the outbox checkpoints itself).
  // cache_size: 1 MiB (SQLite's default is 2): appends touch the right edge of the seq
  // B-tree and a few id-index leaves; the rest of the RSS budget is the agent's.
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA journal_size_limit=67108864",
                             "PRAGMA cache_size=-1024"}) {
    Status s = d.exec(pragma);
    if (!s) return s;
  }
  Status s = migrate_schema(d);
  if (!s) return s;
  return opened;
}

}  // namespace edgesync::storage
