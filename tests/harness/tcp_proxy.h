// A fault-injecting TCP forwarder on 127.0.0.1 for the bad-link tests: the agent connects to
// the proxy, the proxy to the real broker, and the test switches what the link does at runtime.
// TLS passes through unchanged (the proxy never looks at the bytes).
//
// One thread and poll(2): it sleeps until a socket is ready, a delayed chunk is due or a command
// arrives, so an idle or blackholed link costs nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace edgesync::test {

class TcpProxy {
 public:
  enum class Mode {
    // Bytes flow both ways, each chunk held back by the configured latency.
    kPass,
    // A half-open link: every connection, existing and new, stays open but whatever either end
    // sends is swallowed and nothing comes back. New connections are accepted (the listener is
    // local) and never reach the broker. Leaving this mode resets every connection that lived
    // through it: like a NAT entry that was lost, they never carry data again.
    kBlackhole,
    // A broker that accepts TCP and never answers: new connections are accepted and read, and
    // what they send is thrown away; nothing connects upstream. Existing ones keep forwarding.
    kNoAnswer,
    // Nothing listens: new connections are accepted and reset at once (ECONNREFUSED-like).
    kRefuse,
  };

  struct Stats {
    uint64_t accepted = 0;       // connections accepted, in every mode
    uint64_t resets = 0;         // connections reset by reset_all(), kRefuse or leaving kBlackhole
    uint64_t bytes_up = 0;       // forwarded client -> broker
    uint64_t bytes_down = 0;     // forwarded broker -> client
    uint64_t bytes_swallowed = 0;
    int open = 0;                // connections open now
  };

  // Listens on a free 127.0.0.1 port and forwards to 127.0.0.1:upstream_port. Throws
  // std::runtime_error if the listener or the thread cannot be set up.
  explicit TcpProxy(int upstream_port);
  // Stops the thread and closes every socket.
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  // "ssl://127.0.0.1:<port>".
  std::string uri() const;

  // Any thread. Takes effect on the proxy thread within a poll round (microseconds).
  void set_mode(Mode mode);
  Mode mode() const;
  // Added to every chunk in each direction (kPass only); order is kept.
  void set_latency(std::chrono::milliseconds each_way);
  // Resets every open connection now (RST via SO_LINGER 0 on both sides). Blocks until done.
  void reset_all();
  Stats stats() const;

  struct Impl;

 private:
  int port_ = 0;
  std::unique_ptr<Impl> impl_;
};

const char* tcp_proxy_mode_name(TcpProxy::Mode mode);

}  // namespace edgesync::test
