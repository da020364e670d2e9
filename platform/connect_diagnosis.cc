#include "platform/connect_diagnosis.h"

#include <chrono>

#include "platform/tls_probe.h"

namespace edgesync::platform {

namespace {
constexpr auto kLookupTimeout = std::chrono::milliseconds(2000);
constexpr auto kTcpTimeout = std::chrono::milliseconds(2000);
constexpr auto kTlsTimeout = std::chrono::milliseconds(3000);
}  // namespace

std::string diagnose_connect_failure(const MqttOptions& options) {
  const std::string head = "cannot connect to " + options.uri + ": ";
  auto endpoint = parse_hub_endpoint(options.uri);
  if (!endpoint) return head + endpoint.status().message();
  std::vector<std::string> addresses{endpoint->host};
  if (!is_ip_literal(endpoint->host)) {
    auto resolved = resolve_host(endpoint->host, kLookupTimeout);
    if (!resolved) {
      return head + "the name " + endpoint->host + " does not resolve (" +
             resolved.status().message() + "): check hub.uri and the box's DNS";
    }
    addresses = *resolved;
  }
  TcpProbeOutcome tcp = tcp_connect(addresses, endpoint->port, kTcpTimeout);
  if (!tcp.ok()) {
    if (tcp.refused) {
      return head + "connection refused (" + tcp.error +
             "): the broker is not running there, or hub.uri names the wrong port";
    }
    if (tcp.timed_out) {
      return head + "no answer within " + std::to_string(kTcpTimeout.count() / 1000) + " s (" +
             tcp.error + "): the host is down or a firewall drops the connection";
    }
    return head + tcp.error;
  }
  if (endpoint->tls) {
    TlsProbeOptions tls;
    tls.host = endpoint->host;
    tls.ca_file = options.ca_file;
    tls.cert_file = options.cert_file;
    tls.key_file = options.key_file;
    tls.timeout = kTlsTimeout;
    TlsProbeOutcome shake = tls_handshake(tcp.connection, tls);
    if (!shake.ok()) {
      std::string why = shake.error;
      if (shake.hub_cert_expired) why = "the broker's certificate has expired (" + why + ")";
      if (shake.hub_cert_untrusted) {
        why = "the broker's certificate is not signed by hub.ca_file (" + why + ")";
      }
      if (shake.hub_cert_name_mismatch) {
        why = "the broker's certificate is for " +
              (shake.hub_names.empty() ? shake.hub_subject : shake.hub_names) + ", not " +
              endpoint->host + " (" + why + ")";
      }
      return head + "the TLS handshake failed: " + why +
             " (check hub.ca_file, hub.cert_file and hub.key_file; `edgesync doctor` shows the "
             "certificates)";
    }
  }
  return head + "the port takes connections" + (endpoint->tls ? " and TLS handshakes" : "") +
         " but no MQTT connection was made within " + std::to_string(options.connect_timeout_s) +
         " s (an overloaded or misconfigured broker; `edgesync doctor` checks its MQTT answer)";
}

}  // namespace edgesync::platform
