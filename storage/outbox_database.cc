#include "storage/outbox_database.h"

#include "storage/schema.h"

namespace edgesync::storage {
namespace {

constexpr int64_t kPageSize = 1024;
constexpr const char* kSetPageSize = "PRAGMA page_size=1024";  // kPageSize
// An outbox up to this size made with other pages is rewritten at start (a second or two on an
// SD card); a larger one keeps its pages rather than delay the start and need its size again
// in free space.
constexpr int64_t kMaxRewriteBytes = int64_t{16} << 20;

Result<std::string> set_journal_mode(Database& d, const char* sql) {
  auto mode = d.prepare(sql);
  if (!mode) return mode.status();
  auto row = (*mode)->step();
  if (!row) return row.status();
  std::string got = *row ? std::string((*mode)->column_text(0)) : std::string();
  mode->reset();
  return got;
}

// Best effort: an outbox created by an earlier release has 4 KiB pages, and SQLite can change
// the page size of an existing database only by rewriting it (VACUUM) outside WAL mode. If
// anything here fails (another process holds the file, the disk is full), the outbox keeps its
// pages and works as before; VACUUM is atomic, so a crash in it changes nothing either.
void adopt_page_size(Database& d) {
  auto page = d.query_int64("PRAGMA page_size", kPageSize);
  auto count = d.query_int64("PRAGMA page_count", 0);
  if (!page || !count || *page == kPageSize || *count == 0) return;
  if (*page * *count > kMaxRewriteBytes) return;
  auto mode = set_journal_mode(d, "PRAGMA journal_mode=DELETE");
  if (!mode || *mode != "delete") return;
  if (d.exec(kSetPageSize)) d.exec("VACUUM");
}

}  // namespace

const char* const kInsertEventSql =
    "INSERT INTO events(seq, id, type, occurred_at, received_ms, data, trace_id, contract_v) "
    "VALUES(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING";

Result<std::unique_ptr<Database>> open_outbox_database(const std::string& path,
                                                       const std::string& vfs) {
  Database::Options dbo;
  dbo.vfs = vfs;
  auto opened = Database::open(path, dbo);
  if (!opened) return opened.status();
  auto& d = **opened;
  // 1 KiB pages, set before anything is written (a database keeps the page size it was created
  // with; a small one made by an earlier release is rewritten, see adopt_page_size). Each
  // commit of a lone event appends its changed pages to the WAL as frames of page size + 24
  // bytes, and every frame dirties
  // whole 4 KiB pages of the file: with 4 KiB pages a single event's commit (a table leaf, an
  // id-index leaf, now and then a parent) wrote ~14.5 KB, with 1 KiB pages ~7.9 KB. Smaller
  // pages did not help further (more leaves and parents per row). See docs/PERFORMANCE.md.
  Status ps = d.exec(kSetPageSize);
  if (!ps) return ps;
  adopt_page_size(d);
  auto mode = set_journal_mode(d, "PRAGMA journal_mode=WAL");
  if (!mode) return mode.status();
  if (*mode != "wal") return Status::io_error("cannot switch " + path + " to WAL mode");
  // FULL: the WAL is synced at every commit, so a commit that returned survives power loss.
  // No "PRAGMA wal_autocheckpoint" here: it would replace the WAL hook Database installed,
  // which already turned SQLite's auto-checkpoint off (the outbox checkpoints itself).
  // cache_size: 256 KiB (SQLite's default is 2 MiB): appends touch the right edge of the seq
  // B-tree and the id index's path to one leaf, and a page the cache misses is read from the
  // kernel's page cache. With random ids against an index of 500,000 a bigger cache (1 MiB)
  // saved no measurable CPU and cost 0.8 MiB of RSS (docs/PERFORMANCE.md).
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA journal_size_limit=67108864",
                             "PRAGMA cache_size=-256"}) {
    Status s = d.exec(pragma);
    if (!s) return s;
  }
  Status s = migrate_schema(d);
  if (!s) return s;
  return opened;
}

}  // namespace edgesync::storage
