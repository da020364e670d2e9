// File-system helpers the agent needs around its database and socket.
#pragma once

#include <memory>
#include <string>

#include "platform/status.h"

namespace edgesync::platform {

// Creates the parent directory of `path` (and its parents) with `mode` if missing.
Status ensure_parent_dir(const std::string& path, unsigned mode = 0750);

// Writes `contents` to `path` so that a reader sees either the old or the new file, also after
// power loss: temp file, fsync, rename, fsync of the directory.
Status write_file_atomic(const std::string& path, const std::string& contents);

Result<std::string> read_file(const std::string& path);

// Renames `from` to `to` only if `to` does not exist: an earlier file is never replaced.
// NotFound if `from` does not exist, Unavailable if `to` does. Does not sync the directory.
Status rename_no_replace(const std::string& from, const std::string& to);

// fsync of a directory: makes renames, creations and removals in it survive power loss.
Status sync_dir(const std::string& dir);

// True iff something (file, directory, socket) exists at `path` (lstat).
bool path_exists(const std::string& path);

// An exclusive advisory lock (flock) on a lock file, created if missing, held until the object
// is destroyed or the process ends (also by SIGKILL: the kernel releases it). Independent of
// SQLite's own POSIX locks, which closing any other descriptor of a database file would drop.
class FileLock {
 public:
  // Unavailable if another open file description holds it (another process, usually).
  static Result<std::unique_ptr<FileLock>> acquire(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

// Directory part of `path` ("." if none).
std::string dirname_of(const std::string& path);

// True iff a process with this pid exists (signal 0).
bool process_alive(long pid);

// Bytes an unprivileged process may still write on the file system holding `path` (statvfs's
// f_bavail); NotFound/IoError when it cannot be read.
Result<int64_t> free_disk_bytes(const std::string& path);

// Raises this process's soft limit on open files to its hard limit (a service's soft limit is
// often 1,024 while each producer connection takes one). Returns the soft limit now in force.
long raise_open_file_limit();

}  // namespace edgesync::platform
