// Small loopback networking helpers shared by the harness.
#pragma once

#include <chrono>
#include <string>

namespace edgesync::test {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int pick_free_port();

// True if a TCP connection to 127.0.0.1:port succeeds right now.
bool tcp_port_accepts(int port);

// True if a stream connection to the Unix socket at path succeeds right now.
bool unix_socket_accepts(const std::string& path);

}  // namespace edgesync::test
