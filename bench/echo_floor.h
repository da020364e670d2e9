// The floor for lock-step producers on a Unix socket: a minimal epoll server that answers each
// request line with a fixed reply line (no parsing, no disk) in its own process. What it
// sustains with 64 lock-step clients is the socket round trip's share of the agent's 64-producer
// case; SQLite's 64-rows-per-transaction rate is the storage share; both in series give the
// floor 1 / (1/echo + 1/sqlite64).
#pragma once

#include <string>

#include "tests/harness/process.h"

namespace edgesync::bench {

// The hidden `--echo-server SOCKET` mode: serves until killed. Returns an exit code.
int echo_server_main(const std::string& socket_path);

// The bench re-executing itself in that mode.
class EchoServer {
 public:
  EchoServer(const std::string& self_exe, const std::string& dir);
  ~EchoServer();
  const std::string& socket() const { return socket_; }
  pid_t pid() const { return child_.pid(); }

 private:
  std::string socket_;
  test::ChildProcess child_;
};

}  // namespace edgesync::bench
