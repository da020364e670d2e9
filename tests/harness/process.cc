#include "tests/harness/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace edgesync::test {
namespace {

using Clock = std::chrono::steady_clock;

bool is_executable(const std::string& p) { return ::access(p.c_str(), X_OK) == 0; }

// Writing to a pipe or socket whose reader died must be an error, not a fatal signal, for the
// test process. Children get the default disposition back in exec_child.
void ignore_sigpipe() {
  static const bool done = [] {
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

struct ExecArgs {
  std::string path;
  std::vector<std::string> storage;
  std::vector<char*> argv;
};

ExecArgs make_exec_args(const std::vector<std::string>& argv) {
  if (argv.empty()) throw std::runtime_error("empty argv");
  ignore_sigpipe();
  ExecArgs a;
  a.path = find_executable(argv[0]);
  a.storage = argv;
  for (auto& s : a.storage) a.argv.push_back(s.data());
  a.argv.push_back(nullptr);
  return a;
}

// In the child, after fork: only async-signal-safe calls from here on.
[[noreturn]] void exec_child(const ExecArgs& a, pid_t parent, int in_fd, int out_fd, int err_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(126);
  if (in_fd != 0) ::dup2(in_fd, 0);
  if (out_fd != 1) ::dup2(out_fd, 1);
  if (err_fd != 2) ::dup2(err_fd, 2);
  ::syscall(SYS_close_range, 3U, ~0U, 0U);
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(a.path.c_str(), a.argv.data(), environ);
  const char msg[] = "exec failed\n";
  ssize_t ignored = ::write(2, msg, sizeof msg - 1);
  (void)ignored;
  ::_exit(127);
}

// Waits until pid exits or the deadline passes. Uses a pidfd when the kernel has one.
std::optional<int> wait_pid_until(pid_t pid, Clock::time_point deadline) {
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) return status;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(left.count()));
    } else {
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(10)));
    }
    r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (pidfd >= 0) ::close(pidfd);
      return status;
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) return status;
  return std::nullopt;
}

}  // namespace

std::string find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (is_executable(name)) return name;
    throw std::runtime_error("not an executable: " + name);
  }
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    std::string d;
    while (std::getline(ss, d, ':')) {
      if (!d.empty()) dirs.push_back(d);
    }
  }
  for (const char* d : {"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin"}) {
    dirs.push_back(d);
  }
  for (const auto& d : dirs) {
    std::string p = d + "/" + name;
    if (is_executable(p)) return p;
  }
  throw std::runtime_error("executable not found in PATH or sbin: " + name);
}

std::string describe_wait_status(int status) {
  std::ostringstream ss;
  if (WIFEXITED(status)) {
    ss << "exit " << WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    ss << "signal " << WTERMSIG(status) << " (" << ::strsignal(WTERMSIG(status)) << ")";
  } else {
    ss << "status 0x" << std::hex << status;
  }
  return ss.str();
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
}

void ChildProcess::spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  if (pid_ > 0 && !status_) throw std::runtime_error("child already running");
  ExecArgs a = make_exec_args(argv);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_path + ": " + std::strerror(errno));
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) exec_child(a, parent, null_fd, log_fd, log_fd);
  int fork_errno = errno;
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(fork_errno));
  pid_ = pid;
  status_.reset();
}

bool ChildProcess::try_reap() {
  if (pid_ <= 0 || status_) return status_.has_value();
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
  return status_.has_value();
}

bool ChildProcess::running() { return pid_ > 0 && !try_reap(); }

void ChildProcess::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  if (status_) return status_;
  auto st = wait_pid_until(pid_, Clock::now() + timeout);
  if (st) status_ = st;
  return st;
}

std::optional<int> ChildProcess::stop(std::chrono::milliseconds timeout) {
  signal(SIGTERM);
  auto st = wait(timeout);
  if (!st) {
    signal(SIGKILL);
    st = wait(std::chrono::seconds(10));
  }
  return st;
}

bool CommandResult::exited_ok() const {
  return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int CommandResult::exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

std::string CommandResult::describe() const {
  std::ostringstream ss;
  ss << (timed_out ? "TIMED OUT, " : "") << describe_wait_status(status) << "\n--- stdout ---\n"
     << out << "\n--- stderr ---\n"
     << err << "\n--------------";
  return ss.str();
}

CommandResult run_command(const std::vector<std::string>& argv, const std::string& stdin_text,
                          std::chrono::milliseconds timeout) {
  ExecArgs a = make_exec_args(argv);
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) || ::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC)) {
    throw std::runtime_error(std::string("pipe failed: ") + std::strerror(errno));
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) exec_child(a, parent, in_pipe[0], out_pipe[1], err_pipe[1]);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) throw std::runtime_error("fork failed");

  CommandResult res;
  const auto deadline = Clock::now() + timeout;
  int in_fd = in_pipe[1];
  ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
  size_t in_off = 0;
  if (stdin_text.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  char buf[65536];
  while (out_fd >= 0 || err_fd >= 0 || in_fd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      res.timed_out = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    int idx_in = -1, idx_out = -1, idx_err = -1;
    if (in_fd >= 0) {
      idx_in = n;
      fds[n++] = {in_fd, POLLOUT, 0};
    }
    if (out_fd >= 0) {
      idx_out = n;
      fds[n++] = {out_fd, POLLIN, 0};
    }
    if (err_fd >= 0) {
      idx_err = n;
      fds[n++] = {err_fd, POLLIN, 0};
    }
    if (::poll(fds, n, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    if (idx_in >= 0 && fds[idx_in].revents) {
      ssize_t w = ::write(in_fd, stdin_text.data() + in_off, stdin_text.size() - in_off);
      if (w > 0) in_off += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) in_off = stdin_text.size();
      if (in_off >= stdin_text.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
    for (auto [idx, fd, dst] :
         {std::tuple{idx_out, &out_fd, &res.out}, std::tuple{idx_err, &err_fd, &res.err}}) {
      if (idx < 0 || !fds[idx].revents) continue;
      ssize_t r = ::read(*fd, buf, sizeof buf);
      if (r > 0) {
        dst->append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(*fd);
        *fd = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) ::close(fd);
  }
  if (res.timed_out) ::kill(pid, SIGKILL);
  auto st =
      wait_pid_until(pid, Clock::now() + (res.timed_out ? std::chrono::seconds(10) : timeout));
  if (!st) {
    ::kill(pid, SIGKILL);
    st = wait_pid_until(pid, Clock::now() + std::chrono::seconds(10));
    res.timed_out = true;
  }
  res.status = st.value_or(-1);
  return res;
}

}  // namespace edgesync::test
