#include "storage/pending_reader.h"

#include "storage/event_rows.h"

namespace edgesync::storage {

Result<std::unique_ptr<PendingReader>> PendingReader::open(const std::string& path,
                                                           const std::string& vfs) {
  Database::Options ro;
  ro.vfs = vfs;
  ro.create = false;
  auto reader = Database::open(path, ro);
  if (!reader) return reader.status();
  // A small page cache: the reader walks the pending events once, front to back, and SQLite
  // drops a reader's cache whenever the writer has committed since, so a big one only costs RSS.
  Status cs = (*reader)->exec("PRAGMA cache_size=-256");
  if (!cs) return cs;
  auto stmt = (*reader)->prepare(kSelectEventsAfterSql);
  if (!stmt) return stmt.status();
  std::unique_ptr<PendingReader> r(new PendingReader());
  r->db_ = std::move(*reader);
  r->stmt_ = std::move(*stmt);
  return r;
}

Status PendingReader::read(int64_t after_seq, size_t limit, std::vector<StoredEvent>* out) {
  stmt_->bind(1, after_seq);
  stmt_->bind(2, static_cast<int64_t>(limit));
  // Reuse the strings already in `out` so a steady stream allocates nothing new.
  size_t n = 0;
  Status status;
  while (true) {
    auto row = stmt_->step();
    if (!row) {
      status = row.status();
      n = 0;
      break;
    }
    if (!*row) break;
    if (n == out->size()) out->emplace_back();
    read_event(*stmt_, &(*out)[n]);
    ++n;
  }
  out->resize(n);
  stmt_->reset();
  return status;
}

}  // namespace edgesync::storage
