#include "storage/outbox_export.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "platform/files.h"
#include "storage/schema.h"
#include "storage/sqlite.h"

namespace edgesync::storage {
namespace {

// Creates `path` empty, exclusively, mode exactly 0600 (whatever the umask).
Status create_private_file(const std::string& path, int* fd_out) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::invalid_argument(path +
                                      " exists; refusing to overwrite it (choose another "
                                      "name, or move it away first)");
    }
    return Status::io_error("cannot create " + path + ": " + std::strerror(errno));
  }
  if (::fchmod(fd, 0600) != 0) {
    Status s = Status::io_error("cannot set mode 0600 on " + path + ": " + std::strerror(errno));
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  }
  *fd_out = fd;
  return Status::ok();
}

// The copy and whatever SQLite left beside it, after a failure.
void remove_copy(const std::string& path) {
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
    ::unlink((path + suffix).c_str());
  }
}

// Copies the live outbox, in one read snapshot, into the empty file at options.out.
Result<int64_t> copy_snapshot(const ExportOptions& options, Database& dest) {
  Database::Options o;
  o.read_only = true;
  auto source = Database::open(options.source, o);
  if (!source) return source.status();
  Database& src = **source;
  Status s = check_schema_readable(src);
  if (!s) return s;
  // BEGIN alone takes no snapshot; the first read does, and the backup then runs inside it.
  s = src.exec("BEGIN");
  if (!s) return s;
  auto first_read = src.query_int64("SELECT count(*) FROM state", 0);
  if (!first_read) {
    src.exec("COMMIT");
    return first_read.status();
  }
  auto pages = src.backup_into(dest, options.pages_per_step, options.pause);
  src.exec("COMMIT");
  return pages;
}

Status trim(Database& db, int64_t keep_since_ms, ExportFigures* f) {
  Status s = db.exec("BEGIN IMMEDIATE");
  if (!s) return s;
  auto run = [&db](const char* sql, int64_t value, int64_t* removed) {
    auto q = db.prepare(sql);
    if (!q) return q.status();
    (*q)->bind(1, value);
    Status r = (*q)->run();
    if (r) *removed = db.changes();
    return r;
  };
  s = run("DELETE FROM events WHERE received_ms < ?", keep_since_ms, &f->removed_events);
  if (s) {
    s = run("DELETE FROM dead_letters WHERE failed_ms < ?", keep_since_ms,
            &f->removed_dead_letters);
  }
  if (s) s = db.exec("COMMIT");
  if (!s) {
    db.exec("ROLLBACK");
    return s;
  }
  // The deleted rows' pages would otherwise stay in the file, readable by anyone with it.
  return db.exec("VACUUM");
}

Status read_figures(Database& db, ExportFigures* f) {
  auto version = db.query_int64("PRAGMA user_version", 0);
  if (!version) return version.status();
  f->schema_version = *version;
  auto incarnation = read_incarnation(db);
  if (!incarnation) return incarnation.status();
  f->incarnation = std::move(*incarnation);
  auto delivered = db.query_int64("SELECT value FROM state WHERE key = 'delivered_seq'", 0);
  if (!delivered) return delivered.status();
  f->delivered_seq = *delivered;
  auto q = db.prepare(
      "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0), count(*), "
      "coalesce(sum(seq > ?), 0) FROM events");
  if (!q) return q.status();
  (*q)->bind(1, f->delivered_seq);
  auto row = (*q)->step();
  if (!row) return row.status();
  if (*row) {
    f->first_seq = (*q)->column_int64(0);
    f->last_seq = (*q)->column_int64(1);
    f->events = (*q)->column_int64(2);
    f->pending = (*q)->column_int64(3);
    f->delivered = f->events - f->pending;
  }
  (*q)->reset();
  auto dead = db.query_int64("SELECT count(*) FROM dead_letters", 0);
  if (!dead) return dead.status();
  f->dead_letters = *dead;

  auto check = db.prepare("PRAGMA quick_check(20)");
  if (!check) return check.status();
  f->quick_check.clear();
  while (true) {
    auto r = (*check)->step();
    if (!r) {
      // An error reading the copy is a finding too, not a failure of the export.
      if (!f->quick_check.empty()) f->quick_check += "\n";
      f->quick_check += r.status().to_string();
      break;
    }
    if (!*r) break;
    if (!f->quick_check.empty()) f->quick_check += "\n";
    f->quick_check += std::string((*check)->column_text(0));
  }
  return Status::ok();
}

Result<ExportFigures> make_copy(const ExportOptions& options) {
  ExportFigures f;
  Database::Options o;
  o.create = false;  // the file made above, empty
  auto dest = Database::open(options.out, o);
  if (!dest) return dest.status();
  auto pages = copy_snapshot(options, **dest);
  if (!pages) return pages.status();
  f.pages_copied = *pages;
  // The source is in WAL mode and the backup copies that into the header: one self-contained
  // file is what travels, so the copy goes back to a rollback journal (deleted after use).
  Status s = (*dest)->exec("PRAGMA journal_mode=DELETE");
  if (!s) return s;
  if (options.keep_since_ms) {
    s = trim(**dest, *options.keep_since_ms, &f);
    if (!s) return s;
  }
  s = read_figures(**dest, &f);
  if (!s) return s;
  dest->reset();
  struct stat st;
  if (::stat(options.out.c_str(), &st) == 0) f.bytes = st.st_size;
  // The copy's name survives a power cut as well as its pages (SQLite synced those).
  s = platform::sync_dir(platform::dirname_of(options.out));
  if (!s) return s;
  return f;
}

}  // namespace

Status write_new_private_file(const std::string& path, const std::string& text) {
  int fd = -1;
  Status s = create_private_file(path, &fd);
  if (!s) return s;
  size_t done = 0;
  while (s && done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = Status::io_error("cannot write " + path + ": " + std::strerror(errno));
    } else {
      done += static_cast<size_t>(n);
    }
  }
  if (s && ::fsync(fd) != 0) {
    s = Status::io_error("cannot sync " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (!s) ::unlink(path.c_str());
  return s;
}

Result<ExportFigures> export_outbox(const ExportOptions& options) {
  struct stat st;
  if (::stat(options.source.c_str(), &st) != 0) {
    return Status::not_found("no outbox database at " + options.source +
                             " (has the agent run with this config?)");
  }
  int fd = -1;
  Status s = create_private_file(options.out, &fd);
  if (!s) return s;
  ::close(fd);
  auto figures = make_copy(options);
  if (!figures) remove_copy(options.out);
  return figures;
}

}  // namespace edgesync::storage
