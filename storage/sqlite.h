// A thin RAII layer over SQLite so that sqlite3.h appears in exactly one translation unit.
//
// Errors come back as Status: SQLITE_FULL -> kFull, SQLITE_IOERR* -> kIoError,
// SQLITE_CORRUPT/NOTADB -> kCorruption, SQLITE_BUSY/LOCKED -> kUnavailable.
// A Database and its Statements belong to one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "platform/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace edgesync::storage {

class Statement {
 public:
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based as in SQLite. Text and blobs are copied by SQLite only when the
  // statement outlives the caller's buffer; callers keep the buffer alive until step() is done.
  void bind(int index, int64_t value);
  void bind_text(int index, std::string_view text);
  void bind_blob(int index, std::string_view bytes);
  void bind_null(int index);

  // Returns true when a row is ready, false when the statement has finished.
  Result<bool> step();
  // Runs a statement that returns no rows to completion and resets it.
  Status run();
  void reset();

  int64_t column_int64(int index) const;
  bool column_is_null(int index) const;
  // Views stay valid until the next step() or reset().
  std::string_view column_text(int index) const;
  std::string_view column_blob(int index) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  sqlite3_stmt* stmt_;
  sqlite3* db_;
};

class Database {
 public:
  struct Options {
    bool read_only = false;
    bool create = true;
    std::string vfs;  // empty: SQLite's default; tests register a fault-injecting VFS by name
    int busy_timeout_ms = 5000;
  };

  static Result<std::unique_ptr<Database>> open(const std::string& path, const Options& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status exec(const char* sql);
  Result<std::unique_ptr<Statement>> prepare(const char* sql);
  // Value of the first column of the first row of `sql`, or `fallback` if no row or NULL.
  Result<int64_t> query_int64(const char* sql, int64_t fallback);
  int changes() const;
  bool in_transaction() const;
  // Frames in the write-ahead log after this connection's last commit (WAL mode only).
  int wal_frames() const { return wal_frames_; }
  // Copies this connection's database into `dest` with SQLite's online backup, at most
  // `pages_per_step` pages per step and `pause` between steps. Run it inside a read
  // transaction of this connection (BEGIN and a read): the copy is then that snapshot, and
  // commits by other processes meanwhile do not restart it (outside one, every commit by the
  // writer would restart the copy at the next step, for ever under a steady stream).
  // `dest` is overwritten. Returns the number of pages copied.
  Result<int64_t> backup_into(Database& dest, int pages_per_step, std::chrono::milliseconds pause);

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  int wal_frames_ = 0;
};

}  // namespace edgesync::storage
