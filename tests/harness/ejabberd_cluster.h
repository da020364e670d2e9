// A real ejabberd 23.01 cluster (Debian's package) for the tests: its mod_mqtt speaks MQTT 5, and
// a hub run by a customer may be a cluster of such brokers rather than one mosquitto.
//
// Every node lives on loopback only: its own config directory <dir>/ejabberd<i> (ejabberd.yml,
// ejabberdctl.cfg, inetrc, the server certificate), with its Mnesia spool and logs under it, an
// Erlang node name unique to this cluster object (two test binaries at once, or the leftover of a
// crashed run, share one epmd and would otherwise collide on a fixed name), distribution and epmd
// bound to 127.0.0.1, and a cookie of its own given on the command line (the ejabberd account's
// ~/.erlang.cookie is the machine's and is left alone). Node 1 starts first; every other node
// starts and then joins node 1's cluster.
//
// Each node has two mod_mqtt listeners on free loopback ports: TLS (server-authenticated with the
// test CA's server certificate; no client certificate asked for) and plain TCP. Authentication is
// anonymous: a client must send a user name, and any password is accepted.
//
// ejabberdctl runs the node as the "ejabberd" account, so as root (CI) the node directories are
// handed to it, and <dir>'s parents must be reachable by that account (a TempDir under /tmp is).
// Any other user but "ejabberd" itself cannot run ejabberdctl: see unavailable_reason().
//
// The nodes are daemons (`ejabberdctl start` detaches them), so the parent-death signal the rest
// of the harness relies on does not reach them. A small guard process, started with the first
// node, waits on a pipe from the test process and SIGKILLs this cluster's nodes when the test
// process dies without running the destructor (a crash, a SIGKILL, a ctest timeout).
//
// Node indexes are 1-based, as in the node names: node 1 is the one the others join.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/harness/tls_material.h"

namespace edgesync::test {

class EjabberdCluster {
 public:
  // dir: must exist; gets one directory per node. Ports, node names and the cookie are chosen
  // here; nothing runs until start().
  explicit EjabberdCluster(std::string dir, TlsMaterial tls, int nodes = 2);
  // Stops every node (ejabberdctl stop, side by side, then SIGKILL to any VM of this cluster still
  // running) and the guard; stops epmd too if no other Erlang node is registered with it. Never
  // throws.
  ~EjabberdCluster();
  EjabberdCluster(const EjabberdCluster&) = delete;
  EjabberdCluster& operator=(const EjabberdCluster&) = delete;

  // "" if this machine can run the cluster; else why not (no ejabberdctl, no ejabberd account,
  // not root and not that account), for a test to skip with.
  static std::string unavailable_reason();

  // Writes the configuration, starts node 1, then starts each other node and joins it to node 1,
  // and waits until every node's MQTT ports accept connections and node 1 lists every node in
  // its cluster. Throws std::runtime_error (with the ejabberdctl output and the node's log) if a
  // step fails or the timeout passes.
  void start(std::chrono::milliseconds timeout = std::chrono::seconds(90));
  // `ejabberdctl stop` and wait until the node's VM has exited; the others keep serving. A node
  // that has not gone within 60 s is SIGKILLed.
  void stop_node(int i);
  // Starts a stopped (or killed) node again on the same ports and waits until it serves. It
  // rejoins the cluster on its own: Mnesia on disk remembers the other nodes.
  void start_node(int i, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // SIGKILL to the node's Erlang VM (beam.smp): no chance to tell the other nodes anything.
  void kill_node(int i);
  // True while node i's VM is alive.
  bool node_running(int i) const;

  int nodes() const { return static_cast<int>(nodes_.size()); }
  // "ejabberd<i>_<pid>_<n>@localhost"
  std::string node_name(int i) const;
  int port(int i) const;        // the TLS listener
  int plain_port(int i) const;  // the plain TCP listener
  // "ssl://127.0.0.1:<port>": verified against the certificate's IP SAN, as MosquittoBroker does.
  std::string uri(int i) const;
  // "tcp://127.0.0.1:<plain port>"
  std::string plain_uri(int i) const;
  const TlsMaterial& tls() const { return tls_; }
  // The node's ejabberd.log, then what ejabberdctl printed for it (start-up failures land there,
  // before ejabberd has a log of its own).
  std::string log(int i) const;
  std::string node_dir(int i) const;

 private:
  struct Node {
    std::string name;
    std::string dir;
    int port = 0;
    int plain_port = 0;
    pid_t beam_pid = 0;  // read from the pid file ejabberd writes once it is up
  };
  const Node& node(int i) const;
  Node& node(int i);
  void write_config(const Node& n) const;
  // Runs `ejabberdctl --config-dir <node dir> args...`; its output is also appended to the
  // node's ctl log. Throws unless it exits 0.
  std::string ctl(const Node& n, const std::vector<std::string>& args,
                  std::chrono::milliseconds timeout) const;
  void launch(Node& n, std::chrono::steady_clock::time_point deadline);
  void await_started(const Node& n, std::chrono::steady_clock::time_point deadline) const;
  void wait_serving(const Node& n, std::chrono::steady_clock::time_point deadline) const;
  void start_guard();
  void stop_guard();
  void kill_leftovers(std::chrono::milliseconds timeout);
  std::string failure(const Node& n, const std::string& what) const;

  std::string dir_;
  TlsMaterial tls_;
  std::string cookie_;
  std::vector<Node> nodes_;
  bool configured_ = false;
  pid_t guard_pid_ = 0;
  int guard_fd_ = -1;  // write end of the guard's pipe; closing it (or dying) wakes the guard
};

}  // namespace edgesync::test
