// Test PKI generated with the openssl CLI: a CA, a server certificate for localhost
// (subjectAltName DNS:localhost, IP:127.0.0.1) and a client certificate, all EC P-256 and
// signed by the CA. Files are world-readable so a broker that drops privileges can load them.
#pragma once

#include <string>

namespace edgesync::test {

struct TlsMaterial {
  std::string ca_file;           // PEM CA certificate
  std::string server_cert_file;  // PEM, CN=localhost
  std::string server_key_file;
  std::string client_cert_file;  // PEM, CN=<client_cn>
  std::string client_key_file;

  // Generates everything into dir (which must exist). Throws std::runtime_error with the
  // openssl output if a step fails.
  static TlsMaterial generate(const std::string& dir,
                              const std::string& client_cn = "edgesync-test-client");
};

}  // namespace edgesync::test
