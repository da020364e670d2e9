// Child processes for the integration tests and the bench: long-running ones (broker, agent,
// the bench's echo server) and short commands whose output is captured (the CLI, openssl).
//
// Children are started with fork+execve and PR_SET_PDEATHSIG(SIGKILL), so they die with the
// test or bench process even if it crashes. Start them from a thread that outlives them (the
// main thread): the death signal is tied to the thread that forked.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace edgesync::test {

// Full path of an executable: argv0 itself if it contains '/', else searched in $PATH and the
// sbin directories (mosquitto lives in /usr/sbin). Throws std::runtime_error if not found.
std::string find_executable(const std::string& name);

// Human-readable wait status: "exit 0", "signal 9 (Killed)".
std::string describe_wait_status(int status);

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();  // SIGKILLs and reaps a child that is still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv[0] (resolved with find_executable) with stdin from /dev/null and stdout and
  // stderr appended to log_path. Throws std::runtime_error if the child cannot be started.
  void spawn(const std::vector<std::string>& argv, const std::string& log_path);

  pid_t pid() const { return pid_; }
  // True while the child has been started and not yet reaped.
  bool running();
  void signal(int sig);
  // Waits for the child to exit; returns its wait status, or nullopt on timeout (child left
  // running). Returns the remembered status if it was already reaped.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // SIGTERM, and SIGKILL if the child has not exited within timeout; reaps it either way.
  // Returns its wait status; nullopt if it was never started.
  std::optional<int> stop(std::chrono::milliseconds timeout);
  // Last reaped wait status, if any.
  std::optional<int> exit_status() const { return status_; }

 private:
  bool try_reap();
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct CommandResult {
  int status = -1;               // raw wait status
  bool timed_out = false;        // killed because it overran the timeout
  std::string out;               // captured stdout
  std::string err;               // captured stderr
  bool exited_ok() const;        // exited normally with status 0
  int exit_code() const;         // WEXITSTATUS, or -1 if it did not exit normally
  std::string describe() const;  // status + both outputs, for failure messages
};

// Runs a command to completion, feeding stdin_text and capturing stdout/stderr. Kills it
// with SIGKILL after timeout.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& stdin_text = "",
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace edgesync::test
