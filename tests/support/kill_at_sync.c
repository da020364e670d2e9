// An LD_PRELOAD shim for the crash tests: it kills the process it is loaded into (the release
// agent binary, unchanged) with SIGKILL right before or right after its N-th sync of a chosen
// file, the moments where a crash tells whether an acknowledgement waited for the disk.
//
// Environment (read once, when the shim is loaded):
//   EDGESYNC_KILL_SYNC_MATCH  which files count: a substring of the path behind the descriptor
//                             (/proc/self/fd/N); a trailing '$' anchors it at the end of the
//                             path ("outbox.db$": the database file, not its WAL). Unset or
//                             empty: every file.
//   EDGESYNC_KILL_AT_SYNC     N >= 1: SIGKILL at the N-th counted sync. Unset or 0: count only.
//   EDGESYNC_KILL_WHEN        "before" (the default: the sync never runs) or "after" (the sync
//                             returned, the caller has not seen it yet).
//   EDGESYNC_KILL_SYNC_LOG    a file that gets one line per counted sync, "<n> <call> <path>",
//                             written before the sync, and "kill <n> <when>" just before SIGKILL,
//                             so a test can tell how far the process got.
//
// fsync and fdatasync are wrapped (SQLite uses fdatasync where it exists); the real calls are
// found with dlsym(RTLD_NEXT) when the shim is loaded. Around a sync the wrapper writes its log
// line with open/write/close and takes no lock, so it adds no waits of its own to the agent's.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*sync_fn)(int);

static sync_fn real_fsync;
static sync_fn real_fdatasync;
static atomic_long counted;
static char match[512];
static size_t match_len;
static int match_at_end;
static long kill_at;
static int kill_after;
static char log_path[1024];

// Before main(): the agent's threads only ever read what is set here.
__attribute__((constructor)) static void configure(void) {
  real_fsync = (sync_fn)dlsym(RTLD_NEXT, "fsync");
  real_fdatasync = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
  const char* m = getenv("EDGESYNC_KILL_SYNC_MATCH");
  if (m) {
    snprintf(match, sizeof match, "%s", m);
    match_len = strlen(match);
    if (match_len > 0 && match[match_len - 1] == '$') {
      match[--match_len] = '\0';
      match_at_end = 1;
    }
  }
  const char* at = getenv("EDGESYNC_KILL_AT_SYNC");
  kill_at = at ? strtol(at, NULL, 10) : 0;
  const char* when = getenv("EDGESYNC_KILL_WHEN");
  kill_after = when && strcmp(when, "after") == 0;
  const char* lp = getenv("EDGESYNC_KILL_SYNC_LOG");
  if (lp) snprintf(log_path, sizeof log_path, "%s", lp);
}

static int path_matches(const char* path) {
  if (match_len == 0) return 1;
  if (!match_at_end) return strstr(path, match) != NULL;
  size_t n = strlen(path);
  return n >= match_len && memcmp(path + n - match_len, match, match_len) == 0;
}

static void log_line(const char* line) {
  if (!log_path[0]) return;
  int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t ignored = write(fd, line, strlen(line));
  (void)ignored;
  close(fd);
}

static void die(long n) {
  char line[64];
  snprintf(line, sizeof line, "kill %ld %s\n", n, kill_after ? "after" : "before");
  log_line(line);
  raise(SIGKILL);
  _exit(137);  // not reached: SIGKILL cannot be caught
}

static int wrapped(const char* name, sync_fn real, int fd) {
  char link[64];
  char path[1024];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t len = readlink(link, path, sizeof path - 1);
  if (len < 0) len = 0;
  path[len] = '\0';
  if (!path_matches(path)) return real(fd);
  const long n = atomic_fetch_add(&counted, 1) + 1;
  char line[1200];
  snprintf(line, sizeof line, "%ld %s %s\n", n, name, path);
  log_line(line);
  if (n == kill_at && !kill_after) die(n);
  int rc = real(fd);
  if (n == kill_at && kill_after) die(n);
  return rc;
}

int fsync(int fd) { return wrapped("fsync", real_fsync, fd); }

int fdatasync(int fd) { return wrapped("fdatasync", real_fdatasync, fd); }
