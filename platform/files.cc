#include "platform/files.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace edgesync::platform {
namespace {

Status errno_status(const std::string& what) {
  int e = errno;
  std::string msg = what + ": " + std::strerror(e);
  if (e == ENOSPC || e == EDQUOT) return Status::full(msg);
  if (e == ENOENT) return Status::not_found(msg);
  return Status::io_error(msg);
}

int sync_fd(int fd) {
#if defined(EDGESYNC_HAVE_FDATASYNC)
  return ::fdatasync(fd);
#else
  return ::fsync(fd);
#endif
}

}  // namespace

std::string dirname_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status ensure_parent_dir(const std::string& path, unsigned mode) {
  std::string dir = dirname_of(path);
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) {
      return errno_status("cannot create directory " + partial);
    }
  }
  return Status::ok();
}

Status write_file_atomic(const std::string& path, const std::string& contents) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("cannot create " + tmp);
  const char* p = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = errno_status("cannot write " + tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (sync_fd(fd) != 0) {
    Status s = errno_status("cannot sync " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_status("cannot rename to " + path);
  // Without syncing the directory the rename itself may be lost at power loss.
  int dfd = ::open(dirname_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno_status("cannot open directory of " + path);
  int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) return errno_status("cannot sync directory of " + path);
  return Status::ok();
}

Status rename_no_replace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return Status::ok();
  }
  if (errno == EEXIST) return Status::unavailable(to + " exists; not replacing it");
  if (errno != EINVAL && errno != ENOSYS) {
    return errno_status("cannot rename " + from + " to " + to);
  }
  // A file system without RENAME_NOREPLACE: link() fails rather than replace, then the old
  // name goes. A crash in between leaves both names for one file, never a lost one.
  if (::link(from.c_str(), to.c_str()) != 0) {
    if (errno == EEXIST) return Status::unavailable(to + " exists; not replacing it");
    return errno_status("cannot link " + from + " to " + to);
  }
  if (::unlink(from.c_str()) != 0) return errno_status("cannot remove " + from);
  return Status::ok();
}

Status sync_dir(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno_status("cannot open directory " + dir);
  int rc = ::fsync(dfd);
  Status s = rc == 0 ? Status::ok() : errno_status("cannot sync directory " + dir);
  ::close(dfd);
  return s;
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Result<std::unique_ptr<FileLock>> FileLock::acquire(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return errno_status("cannot open lock file " + path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    Status s = errno == EWOULDBLOCK
                   ? Status::unavailable(path + " is locked by another process")
                   : errno_status("cannot lock " + path);
    ::close(fd);
    return s;
  }
  return std::unique_ptr<FileLock>(new FileLock(fd));
}

FileLock::~FileLock() { ::close(fd_); }

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_status("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

long raise_open_file_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur == RLIM_INFINITY ? -1 : static_cast<long>(lim.rlim_cur);
}

bool process_alive(long pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

Result<int64_t> free_disk_bytes(const std::string& path) {
  struct statvfs fs;
  if (::statvfs(path.c_str(), &fs) != 0) {
    const int e = errno;
    std::string msg = "statvfs " + path + ": " + std::strerror(e);
    if (e == ENOENT) return Status::not_found(msg);
    return Status::io_error(msg);
  }
  return static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
}

}  // namespace edgesync::platform
