// The spool folder (ingest.spool_dir): the way in for software that can only drop files. A file
// of requests (NDJSON, or one JSON array) renamed into the folder is ingested through the
// ingest core, exactly as its lines would be over the socket; once every request has its
// outcome committed, a result file is written beside it and the file is moved to done/ (every
// request accepted, now or before) or failed/ (anything refused, or the file unusable).
//
// Crash safety comes from the ids: a request without "id" is given "<file name>:<line>", so a
// file taken again after a crash (it is still in the folder until its move is synced) has its
// committed events answered as duplicates, never stored twice, and still ends in done/.
//
// A thread of its own does the file work (inotify, reading, the result file, renames and
// syncs) and hands requests to the ingest (io_context) thread in batches, at most a bounded
// number in flight: the ingest thread never reads a file or waits for a disk, and a big file
// costs bounded memory. Files are taken one at a time; a file whose requests were refused for
// a reason that clears (outbox_full, storage_error), or that could not be moved, is taken again
// later, with backoff. docs/PROTOCOL.md ("Spool folder") is the producer's side of this.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "agent/ingest_core.h"
#include "platform/status.h"

namespace edgesync::agent {

class SpoolIngest {
 public:
  // Requests go through `core`; the folder is core.config().ingest.spool_dir (off when empty).
  explicit SpoolIngest(IngestCore& core);
  ~SpoolIngest();  // stops the thread at once (a file in progress is taken again next start)
  SpoolIngest(const SpoolIngest&) = delete;
  SpoolIngest& operator=(const SpoolIngest&) = delete;

  // Ingest thread. Creates the folder, done/ and failed/ if missing, checks the agent may
  // write them, watches the folder and starts on the files already in it. Off: does nothing.
  Status start();
  // Ingest thread. Takes no new file and no new request; `done` runs on the ingest thread once
  // the requests already handed over have their outcomes (the file they belong to stays in the
  // folder, to be taken again at the next start). Off: `done` runs at once.
  void stop(std::function<void()> done);

  // Any thread: files moved to done/ and to failed/ since start (the core's counters).
  uint64_t files_done() const;
  uint64_t files_failed() const;

 private:
  struct Worker;  // the thread's state (spool_ingest.cc)

  IngestCore& core_;
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
};

}  // namespace edgesync::agent
