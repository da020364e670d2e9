// When and how the outbox writer checkpoints the WAL into the database.
//
// SQLite's auto-checkpoint is off (Database's WAL hook replaces it): it would run inside a
// commit and make that round's replies wait. The writer checkpoints after it has sent a round's
// replies instead, when due() says so.
//
// REQUIRES: called by whoever holds the writer token, on the writer's connection.
#pragma once

#include <algorithm>
#include <cstdint>

#include "platform/status.h"
#include "storage/sqlite.h"

namespace edgesync::storage {

class CheckpointPolicy {
 public:
  // `bytes`: Outbox::Options::checkpoint_bytes.
  explicit CheckpointPolicy(int64_t bytes) : bytes_(bytes) {}

  // The database's page size, read when the writer opens it: a WAL frame is a page plus a
  // 24-byte header.
  void set_page_size(int64_t page_size) {
    frames_ = std::max<int64_t>(1, bytes_ / (std::max<int64_t>(page_size, 512) + 24));
  }

  // Copies the WAL back into the database once it has grown past checkpoint_bytes.
  bool due(const Database& db) const { return db.wal_frames() >= frames_; }

  // PASSIVE: it never waits for readers (the publisher, the CLI); what it cannot copy now waits
  // for the next. On failure the caller fails the writer, as after any failed write or sync.
  Status run(Database& db) const { return db.exec("PRAGMA wal_checkpoint(PASSIVE)"); }

 private:
  int64_t bytes_;
  int64_t frames_ = 1000;
};

}  // namespace edgesync::storage
