// Small, self-contained helpers for the benchmark: child processes, a scratch directory, test
// TLS material from the openssl CLI, a mosquitto broker tuned for throughput, /proc readings and
// an ingest-socket client.
//
// The bench does not link tests/support on purpose: it must build with
// -DEDGESYNC_BUILD_TESTS=OFF, and its broker differs from the test broker (no persistence, a
// queue limit high enough that nothing is dropped silently).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace edgesync::bench {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0);

// Full path of an executable (argv0 itself if it has a '/', else $PATH and the sbin dirs).
std::string find_executable(const std::string& name);

void write_file(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);

// A child started with fork+execve, stdout/stderr appended to a log file, killed with the
// bench (PR_SET_PDEATHSIG) and on destruction.
class Child {
 public:
  Child() = default;
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void spawn(const std::vector<std::string>& argv, const std::string& log_path);
  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit; false on timeout.
  bool wait(std::chrono::milliseconds timeout);
  // SIGTERM, wait, then SIGKILL if needed.
  void stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));

 private:
  pid_t pid_ = -1;
};

struct CommandResult {
  int status = -1;
  std::string out;
  bool ok() const;
};
// Runs a command to completion and captures stdout (stderr goes to /dev/null).
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A scratch directory (mkdtemp under base), removed on destruction unless keep is set.
class TempDir {
 public:
  TempDir(const std::string& base, bool keep);
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  bool keep_;
};

// "ext4", "tmpfs", ... for the file system holding path (best effort).
std::string filesystem_type(const std::string& path);

struct Tls {
  std::string ca_file, server_cert, server_key, client_cert, client_key;
  static Tls generate(const std::string& dir);
};

int pick_free_port();
bool tcp_port_accepts(int port);
bool unix_socket_accepts(const std::string& path);

// mosquitto on 127.0.0.1:<port> with mutual TLS; the port stays the same across stop/start.
class Broker {
 public:
  Broker(std::string dir, Tls tls);
  void start();
  void stop();
  bool running() { return child_.running(); }
  int port() const { return port_; }
  pid_t pid() const { return child_.pid(); }
  std::string uri() const { return "ssl://127.0.0.1:" + std::to_string(port_); }
  const Tls& tls() const { return tls_; }

 private:
  std::string dir_;
  Tls tls_;
  int port_;
  Child child_;
};

// /proc/<pid>/status field in kB ("VmHWM", "VmRSS"); -1 if unreadable.
int64_t proc_status_kb(pid_t pid, const char* field);
// utime + stime in clock ticks from /proc/<pid>/stat; -1 if unreadable.
int64_t proc_cpu_ticks(pid_t pid);
// utime + stime per thread name from /proc/<pid>/task/*/stat (threads of one name summed).
std::map<std::string, int64_t> proc_thread_cpu_ticks(pid_t pid);

// Blocking client of the agent's ingest socket.
class IngestClient {
 public:
  explicit IngestClient(const std::string& socket_path);  // throws on failure
  ~IngestClient();
  IngestClient(const IngestClient&) = delete;
  IngestClient& operator=(const IngestClient&) = delete;

  void write_all(const std::string& bytes);  // throws on failure
  // One reply line without '\n'; throws on EOF or error.
  std::string read_line();

 private:
  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;
};

// q in [0,1]; sorts v.
double percentile(std::vector<double>& v, double q);

}  // namespace edgesync::bench
