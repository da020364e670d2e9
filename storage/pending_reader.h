// The outbox's read connection: pending events in seq order, for the publisher.
//
// A connection of its own beside the writer's: WAL lets it read while the writer commits, and it
// sees only committed events.
//
// REQUIRES: one thread at a time (the reader's: the publisher's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "platform/status.h"
#include "storage/outbox.h"
#include "storage/sqlite.h"

namespace edgesync::storage {

class PendingReader {
 public:
  // Opens the outbox database at `path`, which must exist (the writer created it).
  // `vfs` empty: SQLite's default.
  static Result<std::unique_ptr<PendingReader>> open(const std::string& path,
                                                     const std::string& vfs);

  // Up to `limit` events with seq > after_seq, in seq order. `out` is cleared first; its
  // capacity is reused.
  Status read(int64_t after_seq, size_t limit, std::vector<StoredEvent>* out);

 private:
  PendingReader() = default;

  // `db_` before `stmt_`: the statement is finalized before its connection closes.
  std::unique_ptr<Database> db_;
  std::unique_ptr<Statement> stmt_;
};

}  // namespace edgesync::storage
