// File-system helpers the agent needs around its database and socket.
#pragma once

#include <string>

#include "platform/status.h"

namespace edgesync::platform {

// Creates the parent directory of `path` (and its parents) with `mode` if missing.
Status ensure_parent_dir(const std::string& path, unsigned mode = 0750);

// Writes `contents` to `path` so that a reader sees either the old or the new file, also after
// power loss: temp file, fsync, rename, fsync of the directory.
Status write_file_atomic(const std::string& path, const std::string& contents);

Result<std::string> read_file(const std::string& path);

// Directory part of `path` ("." if none).
std::string dirname_of(const std::string& path);

// True iff a process with this pid exists (signal 0).
bool process_alive(long pid);

// Raises this process's soft limit on open files to its hard limit (a service's soft limit is
// often 1,024 while each producer connection takes one). Returns the soft limit now in force.
long raise_open_file_limit();

}  // namespace edgesync::platform
