// When and how the outbox writer checkpoints the WAL into the database.
//
// SQLite's auto-checkpoint is off (Database's WAL hook replaces it): it would run inside a
// commit and make that round's replies wait. The writer checkpoints after it has sent a round's
// replies instead, when due() says so.
//
// REQUIRES: called by whoever holds the writer token, on the writer's connection.
#pragma once

#include "platform/status.h"
#include "storage/sqlite.h"

namespace edgesync::storage {

class CheckpointPolicy {
 public:
  // `frames`: Outbox::Options::checkpoint_frames.
  explicit CheckpointPolicy(int frames) : frames_(frames) {}

  // Copies the WAL back into the database once it has grown past checkpoint_frames.
  bool due(const Database& db) const { return db.wal_frames() >= frames_; }

  // PASSIVE: it never waits for readers (the publisher, the CLI); what it cannot copy now waits
  // for the next. On failure the caller fails the writer, as after any failed write or sync.
  Status run(Database& db) const { return db.exec("PRAGMA wal_checkpoint(PASSIVE)"); }

 private:
  int frames_;
};

}  // namespace edgesync::storage
