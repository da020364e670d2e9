#include "storage/sqlite.h"

#include <sqlite3.h>

#include <thread>

namespace edgesync::storage {
namespace {

Status status_from(int rc, sqlite3* db, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_FULL: return Status::full(msg + " (disk or database full)");
    case SQLITE_IOERR: return Status::io_error(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Status::corruption(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Status::unavailable(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM: return Status::io_error(msg);
    default: return Status::io_error(msg);
  }
}

}  // namespace

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
void Statement::bind_text(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}
void Statement::bind_blob(int index, std::string_view bytes) {
  // A zero-length blob must still be a blob, not NULL: give SQLite a non-null pointer.
  sqlite3_bind_blob(stmt_, index, bytes.empty() ? "" : bytes.data(),
                    static_cast<int>(bytes.size()), SQLITE_STATIC);
}
void Statement::bind_null(int index) { sqlite3_bind_null(stmt_, index); }

Result<bool> Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status s = status_from(rc, db_, "sqlite step");
  sqlite3_reset(stmt_);
  return s;
}

Status Statement::run() {
  auto r = step();
  sqlite3_reset(stmt_);
  if (!r) return r.status();
  return Status::ok();
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::column_int64(int index) const { return sqlite3_column_int64(stmt_, index); }
bool Statement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}
std::string_view Statement::column_text(int index) const {
  const unsigned char* p = sqlite3_column_text(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  return p ? std::string_view(reinterpret_cast<const char*>(p), n) : std::string_view();
}
std::string_view Statement::column_blob(int index) const {
  const void* p = sqlite3_column_blob(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  return p ? std::string_view(static_cast<const char*>(p), n) : std::string_view();
}

Result<std::unique_ptr<Database>> Database::open(const std::string& path,
                                                 const Options& options) {
  int flags = SQLITE_OPEN_NOMUTEX;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create) flags |= SQLITE_OPEN_CREATE;
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags,
                           options.vfs.empty() ? nullptr : options.vfs.c_str());
  if (rc != SQLITE_OK) {
    Status s = status_from(rc, db, "cannot open database " + path);
    sqlite3_close(db);
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  std::unique_ptr<Database> database(new Database(db));
  // Replaces SQLite's auto-checkpoint hook (so there is no checkpoint inside a commit): the
  // owner decides when to checkpoint, reading the WAL's size from here. PRAGMA
  // wal_autocheckpoint would remove this hook again.
  sqlite3_wal_hook(
      db,
      [](void* self, sqlite3*, const char*, int frames) {
        static_cast<Database*>(self)->wal_frames_ = frames;
        return SQLITE_OK;
      },
      database.get());
  return database;
}

Database::~Database() {
  // close_v2: if a Statement of this connection is still alive (an owner that destroys them in
  // the wrong order), the connection is freed when the last one is finalized instead of staying
  // open for ever, with its file descriptors and cache. The hook must not outlive this object.
  sqlite3_wal_hook(db_, nullptr, nullptr);
  sqlite3_close_v2(db_);
}

Status Database::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::ok();
  sqlite3_free(err);
  return status_from(rc, db_, "sqlite exec");
}

Result<std::unique_ptr<Statement>> Database::prepare(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return status_from(rc, db_, std::string("sqlite prepare '") + sql + "'");
  return std::unique_ptr<Statement>(new Statement(stmt, db_));
}

Result<int64_t> Database::query_int64(const char* sql, int64_t fallback) {
  auto stmt = prepare(sql);
  if (!stmt) return stmt.status();
  auto row = (*stmt)->step();
  if (!row) return row.status();
  if (!*row || (*stmt)->column_is_null(0)) return fallback;
  return (*stmt)->column_int64(0);
}

int Database::changes() const { return sqlite3_changes(db_); }
bool Database::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

Result<int64_t> Database::backup_into(Database& dest, int pages_per_step,
                                      std::chrono::milliseconds pause) {
  sqlite3_backup* backup = sqlite3_backup_init(dest.db_, "main", db_, "main");
  if (!backup) return status_from(sqlite3_errcode(dest.db_), dest.db_, "sqlite backup");
  int rc;
  int busy_in_a_row = 0;
  while (true) {
    rc = sqlite3_backup_step(backup, pages_per_step);
    if (rc == SQLITE_DONE) break;
    // BUSY or LOCKED: a lock held for a moment (WAL recovery by another connection); try
    // again after the pause, but not for ever.
    const bool busy = rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
    busy_in_a_row = busy ? busy_in_a_row + 1 : 0;
    if ((rc != SQLITE_OK && !busy) || busy_in_a_row > 500) break;
    std::this_thread::sleep_for(pause);
  }
  const int64_t pages = sqlite3_backup_pagecount(backup);
  // finish() reports a step's lasting error, but not BUSY or LOCKED, given up on above.
  const int finished = sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) return status_from(rc, nullptr, "sqlite backup");
  if (finished != SQLITE_OK) return status_from(finished, dest.db_, "sqlite backup");
  return pages;
}

}  // namespace edgesync::storage
