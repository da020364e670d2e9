// A SQLite VFS for tests that wraps the default one and fails on demand, the way a dying disk
// or a full file system would: syncs return SQLITE_IOERR_FSYNC, writes return SQLITE_FULL;
// and slows syncs down the way a cheap SD card does.
// SQLite's own test6.c does the same to simulate crashes at sync.
#pragma once

#include <atomic>

namespace edgesync::test {

struct FaultSwitches {
  std::atomic<bool> fail_sync{false};
  std::atomic<bool> fail_write{false};
  std::atomic<int> syncs{0};
  std::atomic<int> sync_delay_ms{0};  // every sync takes this long (a slow SD card)
};

// Registers the VFS under `name` (once per process) and returns its switches.
FaultSwitches& register_fault_vfs(const char* name = "edgesync-fault");

}  // namespace edgesync::test
