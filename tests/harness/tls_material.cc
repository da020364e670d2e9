#include "tests/harness/tls_material.h"

#include <sys/stat.h>

#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::test {
namespace {

// Our own openssl config so the system openssl.cnf's default extensions do not interfere.
constexpr const char* kOpensslConfig = R"(
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
)";

void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = run_command(argv, "", std::chrono::seconds(30));
  if (!r.exited_ok()) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error("openssl failed: " + cmd + "\n" + r.describe());
  }
}

void make_key(const std::string& path) {
  openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path});
}

void sign(const std::string& dir, const std::string& cnf, const std::string& name,
          const std::string& cn, const std::string& ext, const std::string& ca,
          const std::string& ca_key) {
  const std::string key = dir + "/" + name + ".key";
  const std::string csr = dir + "/" + name + ".csr";
  const std::string pem = dir + "/" + name + ".pem";
  make_key(key);
  openssl({"req", "-new", "-config", cnf, "-key", key, "-subj", "/CN=" + cn, "-out", csr});
  openssl({"x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial",
           std::to_string(std::hash<std::string>{}(dir + name) & 0x7fffffffffffULL), "-days", "3",
           "-sha256", "-extfile", cnf, "-extensions", ext, "-out", pem});
}

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

TlsMaterial TlsMaterial::with_server_cert(const TlsMaterial& m, const std::string& dir,
                                          const std::string& name,
                                          const ServerCertOptions& options) {
  const std::string ca_key = parent_dir(m.ca_file) + "/ca.key";
  const std::string cnf = dir + "/" + name + ".cnf";
  const std::string key = dir + "/" + name + ".key";
  const std::string csr = dir + "/" + name + ".csr";
  const std::string pem = dir + "/" + name + ".pem";
  // `openssl ca` is the CLI that takes explicit validity dates (x509 -req only counts days
  // from now); it wants a database and a serial file.
  const std::string db = dir + "/" + name + ".index";
  write_file(db, "");
  // Hex with an even number of digits, as `openssl ca` reads it.
  char serial[32];
  std::snprintf(serial, sizeof serial, "%016llx\n",
                static_cast<unsigned long long>(std::hash<std::string>{}(dir + name) >> 2));
  write_file(dir + "/" + name + ".serial", serial);
  std::string text = kOpensslConfig;
  // A key before the first section is global: `openssl req` and `openssl ca` both read it.
  if (options.legacy_string_types) text = "string_mask = default\n" + text;
  const std::string san = options.subject_alt_names.empty()
                              ? std::string()
                              : "subjectAltName = " + options.subject_alt_names + "\n";
  text += "[ one_server_ext ]\n"
          "basicConstraints = critical, CA:FALSE\n"
          "keyUsage = critical, digitalSignature\n"
          "extendedKeyUsage = serverAuth\n" +
          san +
          "subjectKeyIdentifier = hash\n"
          "authorityKeyIdentifier = keyid\n"
          "[ one_ca ]\n"
          "database = " + db + "\n"
          "new_certs_dir = " + dir + "\n"
          "serial = " + dir + "/" + name + ".serial\n"
          "default_md = sha256\n"
          "policy = any_name\n"
          "unique_subject = no\n"
          "[ any_name ]\n"
          "commonName = supplied\n";
  write_file(cnf, text);
  make_key(key);
  openssl({"req", "-new", "-config", cnf, "-key", key, "-subj", "/CN=" + options.common_name,
           "-out", csr});
  std::vector<std::string> args{"ca", "-batch", "-config", cnf, "-name", "one_ca", "-cert",
                                m.ca_file, "-keyfile", ca_key, "-in", csr, "-out", pem,
                                "-extfile", cnf, "-extensions", "one_server_ext", "-notext"};
  if (options.expired) {
    args.insert(args.end(), {"-startdate", "20200101000000Z", "-enddate", "20200102000000Z"});
  } else {
    args.insert(args.end(), {"-days", "3"});
  }
  openssl(args);
  ::chmod(key.c_str(), 0644);
  ::chmod(pem.c_str(), 0644);
  TlsMaterial out = m;
  out.server_cert_file = pem;
  out.server_key_file = key;
  return out;
}

TlsMaterial TlsMaterial::generate(const std::string& dir, const std::string& client_cn) {
  const std::string cnf = dir + "/openssl-test.cnf";
  write_file(cnf, kOpensslConfig);
  TlsMaterial m;
  m.ca_file = dir + "/ca.pem";
  const std::string ca_key = dir + "/ca.key";
  make_key(ca_key);
  openssl({"req", "-new", "-x509", "-config", cnf, "-key", ca_key, "-subj", "/CN=edgesync test CA",
           "-days", "3", "-sha256", "-extensions", "ca_ext", "-out", m.ca_file});
  sign(dir, cnf, "server", "localhost", "server_ext", m.ca_file, ca_key);
  sign(dir, cnf, "client", client_cn, "client_ext", m.ca_file, ca_key);
  m.server_cert_file = dir + "/server.pem";
  m.server_key_file = dir + "/server.key";
  m.client_cert_file = dir + "/client.pem";
  m.client_key_file = dir + "/client.key";
  for (const auto& f : {m.ca_file, ca_key, m.server_cert_file, m.server_key_file,
                        m.client_cert_file}) {
    ::chmod(f.c_str(), 0644);
  }
  // The agent refuses a private key that others may read, as it should on a box.
  ::chmod(m.client_key_file.c_str(), 0600);
  return m;
}

}  // namespace edgesync::test
