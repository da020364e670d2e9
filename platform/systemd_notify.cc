#include "platform/systemd_notify.h"

#include <cstdint>
#include <string>

#if defined(EDGESYNC_HAVE_SYSTEMD) && EDGESYNC_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#define EDGESYNC_SD_NOTIFY 1
#else
#define EDGESYNC_SD_NOTIFY 0
#endif

namespace edgesync::platform {

namespace {

void send(const char* state) {
#if EDGESYNC_SD_NOTIFY
  // unset_environment=0: keep NOTIFY_SOCKET so later calls still reach systemd. Returns 0
  // when NOTIFY_SOCKET is unset (not under systemd) and <0 on error; both are ignored.
  (void)sd_notify(0, state);
#else
  (void)state;
#endif
}

}  // namespace

void notify_ready() { send("READY=1"); }

void notify_stopping() { send("STOPPING=1"); }

void notify_watchdog() { send("WATCHDOG=1"); }

void notify_status(std::string_view text) {
#if EDGESYNC_SD_NOTIFY
  std::string msg = "STATUS=";
  msg.reserve(msg.size() + text.size());
  for (char c : text) msg.push_back(c == '\n' || c == '\r' ? ' ' : c);
  send(msg.c_str());
#else
  (void)text;
#endif
}

std::chrono::microseconds watchdog_interval() {
#if EDGESYNC_SD_NOTIFY
  uint64_t usec = 0;
  // >0: enabled and meant for this PID; 0: not enabled; <0: malformed environment.
  if (sd_watchdog_enabled(0, &usec) > 0) return std::chrono::microseconds(usec);
#endif
  return std::chrono::microseconds(0);
}

}  // namespace edgesync::platform
