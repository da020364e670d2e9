// Application cryptography with mbedTLS: the only code that includes it.
//
// What the fleet needs from it: ECDSA P-256 keys (the central team's config-signing keys and
// each device's own key), SHA-256 signatures over config envelopes, certificate signing
// requests for a device's identity, and the validity dates of the client certificate. paho does
// the TLS of the hub link itself (with OpenSSL); nothing here touches that connection.
//
// Signatures are DER-encoded ECDSA (what `openssl dgst -sha256 -sign` writes), so an operator
// can check one with the openssl CLI as well.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "platform/status.h"

namespace edgesync::platform::crypto {

// SHA-256 of `data`, 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

// Standard base64 (RFC 4648, with padding).
std::string base64_encode(std::string_view data);
// Strict: any character outside the alphabet, wrong padding or embedded whitespace is an error.
Result<std::string> base64_decode(std::string_view text);

struct KeyPairPem {
  std::string private_pem;  // PKCS#8 or SEC1 "EC PRIVATE KEY" PEM
  std::string public_pem;   // "PUBLIC KEY" (SubjectPublicKeyInfo) PEM
};
// A new P-256 key pair from mbedTLS's CTR-DRBG seeded by the system's entropy.
Result<KeyPairPem> generate_p256_key();

// The ECDSA P-256 signature (DER) of SHA-256(data). InvalidArgument if the key is not a P-256
// private key in PEM.
Result<std::string> sign_p256(const std::string& private_key_pem, std::string_view data);

// Ok iff `der_signature` is a valid ECDSA signature of SHA-256(data) by this P-256 public key
// (PEM). InvalidArgument naming the reason otherwise ("signature does not verify", "not a P-256
// public key", ...).
Status verify_p256(const std::string& public_key_pem, std::string_view data,
                   std::string_view der_signature);

// The public key (PEM) of a P-256 private key (PEM).
Result<std::string> public_key_of(const std::string& private_key_pem);

// A PKCS#10 certificate signing request (PEM), signed with the P-256 private key (PEM), subject
// "CN=<common_name>,O=<organization>", SHA-256. A comma inside a name stays part of it.
// InvalidArgument if the key is not P-256, or a name is empty or holds a backslash or NUL.
Result<std::string> make_csr(const std::string& private_key_pem, const std::string& common_name,
                             const std::string& organization);

struct CertificateInfo {
  std::string subject;  // as mbedTLS prints it: "CN=..., O=..."
  std::string issuer;
  int64_t not_before_ms = 0;  // Unix time (UTC)
  int64_t not_after_ms = 0;
};
// The first certificate of a PEM (or DER) file. NotFound if the file cannot be read,
// InvalidArgument if it is not a certificate or any certificate of a PEM bundle fails to parse
// (the first one parsed might then not be the file's first).
Result<CertificateInfo> read_certificate(const std::string& path);

// Ok unless group or others have any permission on the private key file (mode & 077; the
// target of a symlink counts): InvalidArgument naming the file, its mode and the fix
// ("chmod 600 FILE"). NotFound if it cannot be stat'ed.
Status check_private_key_mode(const std::string& path);

// Ok iff the private key file `key_path` (PEM or DER, not encrypted) is the key of the first
// certificate in `cert_path`: a box installed with a renewed certificate and its old key, or
// another box's key, fails every TLS handshake with the hub. NotFound if a file cannot be
// read, InvalidArgument naming the file if it does not parse or the two do not belong together.
Status check_key_matches_certificate(const std::string& key_path, const std::string& cert_path);

}  // namespace edgesync::platform::crypto
