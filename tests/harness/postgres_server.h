// A real PostgreSQL 15 server child process on a free loopback port, for the hub's tests.
//
// The cluster is made by initdb on the first start() and kept in <dir>/pgdata, so what a test
// committed survives stop()/start() and kill()/start(): the hub's durability claims are checked
// against the real server, with fsync on. Clients connect over TCP on 127.0.0.1 as the superuser
// "postgres" with trust authentication; the Unix socket goes in <dir> (not /var/run/postgresql,
// which a second server or a missing package directory would make a problem).
//
// PostgreSQL refuses to run as root. When the test runs as root (CI), initdb and the server run as
// the "postgres" account and <dir> is handed to it, so <dir>'s parents must be reachable by that
// account (a TempDir under /tmp is).
//
// The server runs in its own process group, so kill() takes the backends down with the
// postmaster, as a crash of the machine would, and restart() never finds an orphaned backend
// still holding the old shared memory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/harness/process.h"

namespace edgesync::test {

class PostgresServer {
 public:
  // dir: must exist; gets pgdata/, postgres.log and the server's Unix socket.
  explicit PostgresServer(std::string dir);
  ~PostgresServer();  // SIGKILLs a server that is still running
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Runs initdb if the cluster does not exist yet, picks a port the first time, starts the
  // server and waits until it accepts connections (after a kill(), that includes crash
  // recovery). Throws std::runtime_error (with initdb's output or the server log) if initdb
  // fails, the server exits, or it is not accepting connections within timeout.
  void start(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Fast shutdown (SIGINT: backends are ended, a shutdown checkpoint is written) and wait; a
  // server that has not exited in 30 s is killed.
  void stop();
  // SIGKILL to the postmaster and every backend at once, and wait until they are gone: no
  // shutdown checkpoint, the next start() runs crash recovery from the WAL. (The kernel's page
  // cache survives, so this proves what a commit put in the WAL, not that fsync reached the disk.)
  void kill();
  // stop() then start() on the same port.
  void restart();
  bool running();

  // The postmaster's process id; 0 before the first start().
  pid_t pid() const;
  // 0 before the first start(); then the same port for the server's whole life.
  int port() const { return port_; }
  // "host=127.0.0.1 port=<port> user=postgres dbname=<db>", for libpq and psql.
  std::string conninfo(const std::string& db = "postgres") const;

  // CREATE DATABASE name (through psql). Throws std::runtime_error if it fails.
  void create_database(const std::string& name);
  // Runs sql with psql on db (unaligned, tuples only, stopping at the first error) and returns
  // its stdout with surrounding whitespace trimmed: one row per line, fields separated by '|'.
  // Throws std::runtime_error with psql's stderr if psql fails.
  std::string psql(const std::string& sql, const std::string& db = "postgres");

  std::string data_dir() const;
  std::string log_path() const;
  std::string log() const;

 private:
  void init_cluster(std::chrono::milliseconds timeout);
  std::vector<std::string> server_argv() const;
  std::vector<std::string> postmaster_pid_lines() const;
  void wait_until_ready(std::chrono::steady_clock::time_point deadline);
  bool accepting_connections() const;
  void check_postmaster_pid();
  std::string failure(const std::string& what) const;

  std::string dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace edgesync::test
