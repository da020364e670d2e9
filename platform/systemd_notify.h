// Service-manager notifications (sd_notify protocol) for running under systemd.
//
// The shipped unit is Type=notify with WatchdogSec=, so the agent must:
//   - call notify_ready() once it can do its job: config loaded, outbox open (migrations
//     done), ingest socket listening. systemd counts the start as failed (and restarts the
//     service) if READY=1 does not arrive within TimeoutStartSec=.
//   - call notify_watchdog() from its event loop, at least every watchdog_interval() / 2.
//     Ping from the loop itself (a timer on the same io_context that serves ingest and
//     publishing), never from a helper thread: the point is that a hung loop stops the pings
//     and systemd kills and restarts the agent (Restart=on-failure).
//   - call notify_stopping() when it starts an orderly shutdown (SIGTERM).
//   - optionally call notify_status() with a one-line human summary ("connected, 12 pending"),
//     which `systemctl status edgesync` shows.
//
// Outside systemd (tests, a shell, no NOTIFY_SOCKET in the environment) every call is a
// cheap no-op and watchdog_interval() returns 0, so callers need no "am I under systemd"
// check. The same holds when the agent was built without libsystemd. Calls are thread-safe,
// never throw and never block for long (one datagram on a local socket); failures to deliver
// are ignored, since there is nothing useful the agent could do about them.
#pragma once

#include <chrono>
#include <string_view>

namespace edgesync::platform {

// READY=1: startup finished; systemd now considers the service started.
void notify_ready();

// STOPPING=1: orderly shutdown has begun.
void notify_stopping();

// WATCHDOG=1: the event loop is alive. Send at least every watchdog_interval() / 2.
void notify_watchdog();

// STATUS=<text>: free-form one-line status for `systemctl status`. Newlines in `text` are
// replaced by spaces (the protocol is newline-separated).
void notify_status(std::string_view text);

// The watchdog timeout systemd enforces for this process (WatchdogSec= via WATCHDOG_USEC,
// only when WATCHDOG_PID is this process), or 0 if no watchdog is enabled. Read it once at
// startup and schedule notify_watchdog() at half this period.
std::chrono::microseconds watchdog_interval();

}  // namespace edgesync::platform
