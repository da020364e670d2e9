// A real mosquitto broker child process with a mutual-TLS listener on a free loopback port.
//
// By default (the tests' broker) it keeps its persistence database and log in the given
// directory, so a subscriber's persistent session (and its queued QoS 1 messages) survives
// stop()/start(). The listener requires a client certificate signed by the test CA. restart()
// reuses the same ports.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "tests/harness/process.h"
#include "tests/harness/tls_material.h"

namespace edgesync::test {

struct BrokerOptions {
  bool plain_listener = false;  // also listen without TLS on plain_port()
  std::string extra_config;     // more global settings, one per line (e.g. message_size_limit)
  // Not empty: the text of an acl_file (mosquitto's "topic read|write|readwrite|deny <topic>"
  // lines; the clients here are anonymous), written to <dir>/acl.
  std::string acl;
  bool require_client_certificate = true;  // false: server-authenticated TLS only
  // Sessions and queued messages saved to <dir>/mosquitto.db (autosave every 5 s and on a clean
  // stop). The bench turns it off: no broker database writes in its disk figures.
  bool persistence = true;
  // Per-client queue; mosquitto drops what does not fit without telling anyone, and reads 0 as
  // "no queue", so "no limit" has to be a large number.
  int64_t max_queued_messages = 1000000;
  // log_type information besides error, warning and notice (start-up, autosaves).
  bool log_information = true;
};

class MosquittoBroker {
 public:
  // dir: where mosquitto.conf, the persistence db and mosquitto.log go (must exist).
  MosquittoBroker(std::string dir, TlsMaterial tls, BrokerOptions options = {});
  ~MosquittoBroker();
  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  // Starts the broker and waits until the TLS port accepts TCP connections. Throws
  // std::runtime_error (with the broker log) if it exits or is not listening within timeout.
  void start(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // SIGTERM and wait (mosquitto saves its persistence db on a clean stop).
  void stop();
  // SIGKILL and wait: no chance to save anything.
  void kill();
  // stop() then start() on the same ports.
  void restart();
  // Settings from the next start() on (a hub "fixed" between two runs of a test).
  void set_options(BrokerOptions options) { options_ = std::move(options); }
  bool running();

  // The broker's process id; 0 before the first start().
  pid_t pid() const;
  int port() const { return port_; }
  int plain_port() const { return plain_port_; }  // 0 unless options.plain_listener
  // "ssl://127.0.0.1:<port>": verified against the certificate's IP SAN, so a machine
  // without an /etc/hosts entry for localhost (a minimal root) works too.
  std::string uri() const;
  const TlsMaterial& tls() const { return tls_; }
  std::string log_path() const;
  std::string log() const;

 private:
  std::string write_config() const;
  std::string dir_;
  TlsMaterial tls_;
  BrokerOptions options_;
  int port_ = 0;
  int plain_port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace edgesync::test
