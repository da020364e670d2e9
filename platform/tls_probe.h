// The hub link taken apart step by step, for `edgesync doctor`: name resolution, a TCP
// connection, and a TLS handshake made with mbedTLS, each with its own deadline, each failure
// told in words a technician can act on.
//
// paho does the agent's own TLS (with OpenSSL) and says only "connect failed" when a handshake
// fails. This probe exists to say why: which check of the hub's certificate failed (mbedTLS's
// verify flags), or which TLS alert the hub sent back about this box's certificate. It makes
// one connection and sends no MQTT.
//
// Blocking calls on the caller's thread; nothing here is shared between threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "platform/status.h"

namespace edgesync::platform {

// hub.uri split up: ssl://host:port, mqtts://host:port, tcp://host:port, mqtt://host:port;
// an IPv6 address in brackets ([::1]:8883). The port is required.
struct HubEndpoint {
  std::string host;
  int port = 0;
  bool tls = false;  // ssl:// or mqtts://
};
// InvalidArgument naming what is wrong with `uri`.
Result<HubEndpoint> parse_hub_endpoint(const std::string& uri);

// True iff `host` is an IPv4 or IPv6 address literal (nothing to resolve).
bool is_ip_literal(const std::string& host);

// The numeric addresses `host` resolves to (getaddrinfo, TCP), in the resolver's order.
// NotFound with the resolver's message when the name does not resolve, Unavailable when no
// answer came within `timeout` (the lookup is then abandoned on its own thread).
Result<std::vector<std::string>> resolve_host(const std::string& host,
                                              std::chrono::milliseconds timeout);

// A connected TCP socket; closed when destroyed.
class TcpConnection {
 public:
  TcpConnection() = default;
  TcpConnection(int fd, std::string address) : fd_(fd), address_(std::move(address)) {}
  ~TcpConnection();
  TcpConnection(TcpConnection&& other) noexcept;
  TcpConnection& operator=(TcpConnection&& other) noexcept;
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  int fd() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }
  const std::string& address() const { return address_; }  // "127.0.0.1:8883", "[::1]:8883"

 private:
  int fd_ = -1;
  std::string address_;
};

struct TcpProbeOutcome {
  TcpConnection connection;  // open iff some address accepted
  bool refused = false;      // some address answered with a reset: nothing listens on the port
  bool timed_out = false;  // some address did not answer in time (a firewall dropping, a host down)
  // Every address tried with its error: "127.0.0.1:8883: Connection refused; ...".
  std::string error;
  bool ok() const { return connection.is_open(); }
};
// Connects to each of `addresses` (numeric, from resolve_host) on `port` in turn until one
// accepts, all within `timeout`.
TcpProbeOutcome tcp_connect(const std::vector<std::string>& addresses, int port,
                            std::chrono::milliseconds timeout);

struct TlsProbeOptions {
  // The name the hub's certificate must carry (a DNS name, or an IP address matched against
  // the certificate's IP subjectAltNames).
  std::string host;
  std::string ca_file;    // PEM: the CAs the hub's certificate must chain to
  std::string cert_file;  // optional: this box's certificate, offered when the hub asks
  std::string key_file;
  std::chrono::milliseconds timeout{5000};  // the whole handshake
};

// What became of a handshake.
struct TlsProbeOutcome {
  enum class Failure {
    kNone,            // handshake completed: the hub's certificate verified, ours accepted
    kLocalFiles,      // ca_file, cert_file or key_file could not be loaded
    kHubCertificate,  // the hub's certificate failed verification (see the flags)
    kAlert,           // the hub ended the handshake with a TLS alert (see alert)
    kTimeout,         // no complete handshake within the timeout
    kConnection,      // the connection closed or failed during the handshake
    kOther,           // any other mbedTLS error (a protocol or cipher-suite mismatch)
  };
  Failure failure = Failure::kNone;
  // Exact text of the failure: mbedTLS's verify messages ("The certificate validity has
  // expired"), the alert's name and number, the error code.
  std::string error;

  // kHubCertificate: which checks failed.
  bool hub_cert_expired = false;
  bool hub_cert_not_yet_valid = false;
  bool hub_cert_untrusted = false;      // not signed by a CA of ca_file
  bool hub_cert_name_mismatch = false;  // issued for another name than `host`

  // kAlert: the TLS alert description the hub sent (handshake_failure is 40, ...).
  int alert = 0;
  std::string alert_name;  // "handshake_failure", "certificate_expired", ...

  // The hub's certificate as presented (set whenever one was received).
  std::string hub_subject;
  std::string hub_issuer;
  std::string hub_names;  // its subjectAltNames, "DNS:hub.example.net, IP:10.0.0.5"
  int64_t hub_not_before_ms = 0;
  int64_t hub_not_after_ms = 0;

  // kNone: what was negotiated.
  std::string version;      // "TLSv1.2"
  std::string ciphersuite;  // "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"

  bool ok() const { return failure == Failure::kNone; }
};

// A TLS client handshake over `connection`, then close_notify. The connection is used up.
TlsProbeOutcome tls_handshake(TcpConnection& connection, const TlsProbeOptions& options);

}  // namespace edgesync::platform
