// Commits the messages of every consumer connection in shared PostgreSQL transactions.
//
// Each callback hands its message here and waits; one thread takes every message waiting (up to
// max_batch) and commits them in one transaction. A connection reads nothing more while its
// callback waits here, and its PUBACK leaves only when the callback returns: nothing is
// acknowledged before it is committed (docs/HUB.md, "Acknowledgement").
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "hub/hub_store.h"

namespace edgesync::hub {

struct CommitterFigures {
  int64_t messages = 0;
  int64_t batches = 0;
  int64_t events_new = 0;
  int64_t events_repeated = 0;
  int64_t rejected = 0;
  int64_t failures = 0;  // transactions that failed (each retried until it commits)
};

class BatchCommitter {
 public:
  // `apply` commits one batch (HubStore::apply); `on_commit` (optional) hears of each commit.
  using ApplyFn = std::function<Status(const std::vector<InboundMessage>&, BatchOutcome*)>;
  BatchCommitter(ApplyFn apply, int max_batch,
                 std::function<void(const BatchOutcome&)> on_commit = nullptr);
  ~BatchCommitter();  // stop()s

  // Blocks until `m` is committed. Returns false only when the committer stopped first: the
  // message is not committed and must not be acknowledged (the caller must not return to the MQTT client).
  bool commit(InboundMessage m);

  // Ends the thread once the batch in progress is done; waiting callers get false.
  void stop();
  CommitterFigures figures() const;

 private:
  struct Waiting {
    InboundMessage message;
    bool done = false;
    bool ok = false;
  };
  void run();

  ApplyFn apply_;
  size_t max_batch_;
  std::function<void(const BatchOutcome&)> on_commit_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::deque<Waiting*> queue_;
  bool stopping_ = false;
  CommitterFigures figures_;
  std::thread thread_;
};

}  // namespace edgesync::hub
