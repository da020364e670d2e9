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
  // 1 KiB pages, set before anything is written (a database keeps the page size it was created
  // with; one made by an earlier release keeps its 4 KiB). Each commit of a lone event appends
  // its changed pages to the WAL as frames of page size + 24 bytes, and every frame dirties
  // whole 4 KiB pages of the file: with 4 KiB pages a single event's commit (a table leaf, an
  // id-index leaf, now and then a parent) wrote ~14.5 KB, with 1 KiB pages ~7.9 KB. Smaller
  // pages did not help further (more leaves and parents per row). See docs/PERFORMANCE.md.
  Status ps = d.exec("PRAGMA page_size=1024");
  if (!ps) return ps;
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
