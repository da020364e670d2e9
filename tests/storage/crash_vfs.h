// A SQLite VFS for power-loss tests, after SQLite's src/test6.c and leveldb's
// FaultInjectionTestEnv::DropUnsyncedFileData(): it wraps the default VFS and remembers, per
// file, what a power cut would take away.
//
// Writes reach the real file at once (the process and its other connections see them, as they
// would see the kernel's page cache), but the VFS keeps, for every 512-byte sector written or
// truncated since the file's last successful xSync, what the sector held when it was last
// synced. At a chosen point (the Nth write or the Nth sync, counted over all files) the power
// is cut: that call and every later write, sync, truncate, delete and file creation fail with
// SQLITE_IOERR (or SQLITE_CANTOPEN), so the code under test sees a dying disk while it shuts
// down. reboot() then rewrites each file as a disk could leave it: synced data stays; each
// unsynced sector holds either its new or its synced content (all dropped, all kept, a prefix
// kept, or a random subset: pages and WAL frames can be torn at sector boundaries); a file's
// unsynced size change may or may not have happened.
//
// Directory entries: a file created since its directory was last synced may vanish (newest
// first, as a journaling file system replays its log). The directory counts as synced when a
// WAL or rollback journal that SQLite opened with SQLITE_OPEN_CREATE is first synced: that is
// when the unix VFS fsyncs the directory (UNIXFILE_DIRSYNC in os_unix.c). The -shm index is
// not durable at all: reboot() deletes it. Deletions are taken as durable (a deleted rollback
// journal coming back is not modelled; the outbox runs in WAL mode).
//
// One run at a time per process: arm(), use the VFS, close every file, reboot().
#pragma once

#include <cstdint>
#include <random>

namespace edgesync::test {

class CrashVfs {
 public:
  static constexpr const char* kName = "edgesync-crash";
  static constexpr int kSectorSize = 512;

  enum class CutAt { kNever, kWrite, kSync };
  // What becomes of a file's unsynced sectors at the cut. kChoose: one of the others at random,
  // per file.
  enum class Loss { kChoose, kDropAll, kKeepAll, kPrefix, kRandomSectors };

  struct Counters {
    int64_t writes = 0;  // xWrite calls on tracked files since arm()
    int64_t syncs = 0;   // xSync calls on tracked files since arm()
  };

  struct RebootReport {
    bool cut_by_plan = false;     // the power went at the planned write or sync
    int files_with_unsynced = 0;  // files that had unsynced sectors or size
    int64_t sectors_kept = 0;     // unsynced sectors that reached the disk
    int64_t sectors_dropped = 0;  // unsynced sectors that did not
    int torn_pages = 0;           // database pages and WAL frames left part new, part old
    int entries_lost = 0;         // new files whose directory entry did not survive
  };

  // Registers the VFS under kName (once per process; not the default).
  static CrashVfs& get();

  // Starts a run: forgets every file and counts from zero; the power goes at the `n`th write
  // (kWrite) or sync (kSync), 1-based, or never (kNever: cut_power() by hand).
  // REQUIRES: no file open on this VFS.
  void arm(CutAt at, int64_t n);
  // Cuts the power now, if it is still on.
  void cut_power();
  bool power_is_cut() const;
  // The `n`th sync from now fails with SQLITE_IOERR_FSYNC and syncs nothing, once; the power
  // stays on (a transient fault: later syncs work and make the earlier writes durable).
  void fail_sync_once(int64_t n);

  Counters counters() const;
  int open_files() const;

  // Power comes back: every file written since arm() is rewritten as described above, choices
  // drawn from `rng`; -shm files are deleted. Ends the run (the power is on again).
  // REQUIRES: no file open on this VFS.
  RebootReport reboot(std::mt19937_64& rng, Loss loss = Loss::kChoose);

 private:
  CrashVfs() = default;
};

}  // namespace edgesync::test
