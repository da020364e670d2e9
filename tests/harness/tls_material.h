// Test PKI generated with the openssl CLI: a CA, a server certificate for localhost
// (subjectAltName DNS:localhost, IP:127.0.0.1) and a client certificate, all EC P-256 and
// signed by the CA. The broker's files are world-readable so a broker that drops privileges can
// load them; the client key is 0600, as the agent requires of its key.
#pragma once

#include <string>

namespace edgesync::test {

// A server certificate other than the default one, for tests of what a client refuses.
struct ServerCertOptions {
  std::string common_name = "localhost";
  // openssl subjectAltName syntax; "" for a certificate without the extension (named by its
  // subject alone, as old ones are).
  std::string subject_alt_names = "DNS:localhost, IP:127.0.0.1";
  bool expired = false;  // valid only from 1 to 2 January 2020
  // The subject's strings in the smallest ASN.1 type that holds them, as old CAs wrote them: a
  // byte above 0x7F in common_name is then a T61String's Latin-1 byte, not UTF-8.
  bool legacy_string_types = false;
};

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
  // A copy of `m` with a new server certificate and key, signed by m's CA (its key is the
  // ca.key that generate() wrote beside ca_file), written to <dir>/<name>.pem and <name>.key.
  // Throws std::runtime_error like generate().
  static TlsMaterial with_server_cert(const TlsMaterial& m, const std::string& dir,
                                      const std::string& name, const ServerCertOptions& options);
};

}  // namespace edgesync::test
