#include "tests/harness/postgres_server.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/harness/net_util.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Debian's layout: the versioned binaries are not all on PATH (postgres and initdb never are).
const char* const kBinDir = "/usr/lib/postgresql/15/bin";
const char* const kServerAccount = "postgres";
// postmaster.pid: the pid on the first line, the postmaster's status ("starting", "ready") on
// the eighth.
const size_t kStatusLine = 7;

std::string pg_bin(const std::string& name) { return std::string(kBinDir) + "/" + name; }

bool running_as_root() { return ::geteuid() == 0; }

// PostgreSQL will not run as root, so as root its commands run as the postgres account.
// setpriv execs in place (runuser and su fork and wait), so the pid the test signals is the
// server's own. Changing the user clears the parent-death signal the harness set, which would
// leave a server behind a crashed test; --pdeathsig keep puts it back.
std::vector<std::string> as_server_account(std::vector<std::string> argv) {
  if (!running_as_root()) return argv;
  std::vector<std::string> wrapped{"setpriv",
                                   std::string("--reuid=") + kServerAccount,
                                   std::string("--regid=") + kServerAccount,
                                   "--init-groups",
                                   "--pdeathsig",
                                   "keep"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

// initdb creates pgdata inside dir and the server puts its socket there, both as the postgres
// account.
void hand_to_server_account(const std::string& dir) {
  const passwd* pw = ::getpwnam(kServerAccount);
  if (pw == nullptr) {
    throw std::runtime_error(std::string("running as root but there is no '") + kServerAccount +
                             "' account to run PostgreSQL as");
  }
  if (::chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    throw std::runtime_error("cannot chown " + dir + " to " + kServerAccount + ": " +
                             std::strerror(errno));
  }
}

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const auto first = s.find_first_not_of(ws);
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(ws) - first + 1);
}

// The end of a log: a failed start-up's reason is at the end, and a whole log can be long.
std::string tail(const std::string& text, size_t max_lines) {
  size_t start = text.size();
  size_t lines = 0;
  for (; start > 0; --start) {
    // A newline before the last character starts a line.
    if (text[start - 1] == '\n' && start != text.size() && ++lines == max_lines) break;
  }
  return text.substr(start);
}

std::string quote_identifier(const std::string& name) {
  std::string q = "\"";
  for (char c : name) q += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// A conninfo value: bare when it can be, else single-quoted with \ and ' escaped.
std::string conninfo_value(const std::string& v) {
  if (!v.empty() && v.find_first_of(" \t\n'\\") == std::string::npos) return v;
  std::string q = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') q += '\\';
    q += c;
  }
  return q + "'";
}

// Processes of process group pgid that have not exited yet. Zombies count as gone: they hold
// no shared memory and no files, and nobody may reap them (an init that does not).
std::vector<pid_t> live_group_members(pid_t pgid) {
  std::vector<pid_t> live;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    pid_t ppid = 0, pgrp = 0;
    if (!(rest >> state >> ppid >> pgrp)) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') live.push_back(std::stoi(name));
  }
  return live;
}

// A restart while an old backend is still attached to the old shared memory fails ("pre-existing
// shared memory block is still in use"), so kill() and stop() wait for every one of them.
void wait_for_group_exit(pid_t pgid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const auto live = live_group_members(pgid);
    if (live.empty()) return;
    if (Clock::now() > deadline) {
      std::string pids;
      for (pid_t p : live) {
        pids += ' ';
        pids += std::to_string(p);
      }
      throw std::runtime_error("postgres processes still running after SIGKILL:" + pids);
    }
    std::this_thread::sleep_for(5ms);
  }
}

}  // namespace

PostgresServer::PostgresServer(std::string dir) : dir_(std::move(dir)) {}

PostgresServer::~PostgresServer() {
  try {
    if (child_ && child_->running()) kill();
  } catch (const std::exception&) {
    // Nothing more to do from a destructor; the parent-death signal still covers a crash.
  }
}

pid_t PostgresServer::pid() const { return child_ ? child_->pid() : 0; }

bool PostgresServer::running() { return child_ && child_->running(); }

std::string PostgresServer::data_dir() const { return dir_ + "/pgdata"; }

std::string PostgresServer::log_path() const { return dir_ + "/postgres.log"; }

std::string PostgresServer::log() const { return read_file(log_path()); }

std::string PostgresServer::conninfo(const std::string& db) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + kServerAccount +
         " dbname=" + conninfo_value(db);
}

std::string PostgresServer::failure(const std::string& what) const {
  return what + "; postgres log (" + log_path() + "):\n" + tail(log(), 80);
}

void PostgresServer::init_cluster(std::chrono::milliseconds timeout) {
  if (running_as_root()) hand_to_server_account(dir_);
  // --no-sync: a crash during initdb only fails that test run; the server itself keeps fsync on.
  const CommandResult r = run_command(
      as_server_account({pg_bin("initdb"), "-D", data_dir(), "-A", "trust", "-U", kServerAccount,
                         "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"}),
      "", timeout);
  if (!r.exited_ok()) {
    std::string msg = "initdb failed for " + data_dir();
    if (running_as_root()) {
      msg += std::string(" (run as '") + kServerAccount + "', which must be able to reach it)";
    }
    throw std::runtime_error(msg + ":\n" + r.describe());
  }
}

std::vector<std::string> PostgresServer::server_argv() const {
  // setsid: its own process group, for kill(). It execs in place here (it forks only when
  // already a group leader), so the pid stays the postmaster's; check_postmaster_pid() holds
  // it to that.
  std::vector<std::string> argv{"setsid"};
  const auto server = as_server_account(
      {pg_bin("postgres"), "-D", data_dir(), "-p", std::to_string(port_), "-k", dir_, "-c",
       "listen_addresses=127.0.0.1", "-c", "fsync=on", "-c", "synchronous_commit=on"});
  argv.insert(argv.end(), server.begin(), server.end());
  return argv;
}

bool PostgresServer::accepting_connections() const {
  // pg_isready rather than a bare TCP connect: the port opens before crash recovery is done,
  // and a connect without a startup packet puts a line in the server log.
  const CommandResult r =
      run_command({pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", std::to_string(port_), "-U",
                   kServerAccount, "-d", "postgres", "-t", "2"},
                  "", 5s);
  return r.exited_ok();
}

std::vector<std::string> PostgresServer::postmaster_pid_lines() const {
  std::vector<std::string> lines;
  std::ifstream in(data_dir() + "/postmaster.pid");
  for (std::string line; std::getline(in, line);) lines.push_back(trim(line));
  return lines;
}

void PostgresServer::wait_until_ready(Clock::time_point deadline) {
  while (true) {
    if (!child_->running()) {
      throw std::runtime_error(failure("postgres exited during start-up (" +
                                       describe_wait_status(*child_->exit_status()) + ")"));
    }
    // The status line of postmaster.pid first: each pg_isready refused during start-up or
    // crash recovery is a FATAL line in the server log. (After a kill() the old file still says
    // ready until the new postmaster rewrites it; pg_isready has the last word.)
    const auto lines = postmaster_pid_lines();
    if (lines.size() > kStatusLine && lines[kStatusLine] == "ready" && accepting_connections()) {
      check_postmaster_pid();
      return;
    }
    if (Clock::now() > deadline) {
      throw std::runtime_error(failure("postgres not accepting connections on port " +
                                       std::to_string(port_) + " after start-up timeout"));
    }
    std::this_thread::sleep_for(20ms);
  }
}

// Signals go to child_->pid(): if a wrapper in front of the server forked instead of exec'ing,
// stop() and kill() would hit the wrapper and the server would live on.
void PostgresServer::check_postmaster_pid() {
  const auto lines = postmaster_pid_lines();
  const std::string recorded = lines.empty() ? "" : lines[0];
  if (recorded != std::to_string(child_->pid())) {
    throw std::runtime_error(failure("postmaster.pid says '" + recorded +
                                     "' but the started process is " +
                                     std::to_string(child_->pid())));
  }
}

void PostgresServer::start(std::chrono::milliseconds timeout) {
  if (running()) throw std::runtime_error("postgres already running");
  const auto deadline = Clock::now() + timeout;
  if (!std::filesystem::exists(data_dir() + "/PG_VERSION")) init_cluster(timeout);
  if (port_ == 0) port_ = pick_free_port();
  child_ = std::make_unique<ChildProcess>();
  child_->spawn(server_argv(), log_path());
  wait_until_ready(deadline);
}

void PostgresServer::stop() {
  if (!running()) return;
  // SIGINT is the fast shutdown; SIGTERM (what ChildProcess::stop sends) would wait for every
  // client to disconnect on its own.
  child_->signal(SIGINT);
  if (!child_->wait(30s)) {
    kill();
    return;
  }
  wait_for_group_exit(child_->pid(), 10s);
}

void PostgresServer::kill() {
  if (!running()) return;
  const pid_t pgid = child_->pid();
  // One signal to the whole group: the postmaster gets no chance to notice a dead backend and
  // start a recovery cycle of its own.
  ::kill(-pgid, SIGKILL);
  child_->wait(10s);
  wait_for_group_exit(pgid, 10s);
}

void PostgresServer::restart() {
  stop();
  start();
}

void PostgresServer::create_database(const std::string& name) {
  psql("CREATE DATABASE " + quote_identifier(name), "postgres");
}

std::string PostgresServer::psql(const std::string& sql, const std::string& db) {
  const CommandResult r = run_command(
      {pg_bin("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo(db), "-c", sql});
  if (!r.exited_ok()) {
    throw std::runtime_error(
        failure("psql failed on database " + db + " running: " + sql + "\n" + r.describe()));
  }
  return trim(r.out);
}

}  // namespace edgesync::test
