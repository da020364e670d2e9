#include "platform/crypto.h"

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace edgesync::platform::crypto {
namespace {

// mbedTLS contexts are C structs with init/free pairs; these wrappers free them on every path.
// Not movable: a CTR-DRBG keeps a pointer to its entropy context, a CSR writer to its key.
template <typename T, void (*Init)(T*), void (*Free)(T*)>
class Context {
 public:
  Context() { Init(&ctx_); }
  ~Context() { Free(&ctx_); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  T* get() { return &ctx_; }

 private:
  T ctx_;
};

using PkContext = Context<mbedtls_pk_context, mbedtls_pk_init, mbedtls_pk_free>;
using CrtContext = Context<mbedtls_x509_crt, mbedtls_x509_crt_init, mbedtls_x509_crt_free>;
using CsrWriter =
    Context<mbedtls_x509write_csr, mbedtls_x509write_csr_init, mbedtls_x509write_csr_free>;

// "what: <mbedTLS's text> (-0x...)": the code lets one look the error up in mbedTLS's headers.
std::string mbedtls_message(const std::string& what, int ret) {
  std::array<char, 200> text{};
  mbedtls_strerror(ret, text.data(), text.size());
  std::array<char, 16> code{};
  std::snprintf(code.data(), code.size(), "-0x%04x", static_cast<unsigned>(-ret));
  return what + ": " + text.data() + " (" + code.data() + ")";
}

Status mbedtls_error(const std::string& what, int ret) {
  return Status::invalid_argument(mbedtls_message(what, ret));
}

// A CTR-DRBG seeded from the system's entropy. One per call rather than a shared generator:
// nothing is shared between threads, and key generation and signing are rare.
class Random {
 public:
  Random() {
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
  }
  ~Random() {
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
  }
  Random(const Random&) = delete;
  Random& operator=(const Random&) = delete;

  // `purpose` is the personalization string: distinct callers get distinct streams even if the
  // entropy source were ever to repeat.
  Status seed(std::string_view purpose) {
    int ret = mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_,
                                    reinterpret_cast<const unsigned char*>(purpose.data()),
                                    purpose.size());
    if (ret != 0)
      return Status::unavailable(mbedtls_message("cannot seed the random generator", ret));
    return Status::ok();
  }
  static int generate(void* self, unsigned char* out, size_t len) {
    return mbedtls_ctr_drbg_random(&static_cast<Random*>(self)->drbg_, out, len);
  }

 private:
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
};

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

using Digest = std::array<unsigned char, 32>;

Status sha256(std::string_view data, Digest& out) {
  int ret = mbedtls_sha256_ret(bytes(data), data.size(), out.data(), /*is224=*/0);
  if (ret != 0) return Status::io_error(mbedtls_message("SHA-256 failed", ret));
  return Status::ok();
}

bool is_p256(mbedtls_pk_context* pk) {
  return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY &&
         mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

bool looks_like_pem(const std::string& text) {
  return text.find("-----BEGIN ") != std::string::npos;
}

// Parses a PEM private key and insists on P-256: a config-signing or device key of another kind
// is a deployment mistake to report, not something to sign with.
Status parse_p256_private(const std::string& pem, PkContext& pk) {
  if (!looks_like_pem(pem)) return Status::invalid_argument("private key is not PEM");
  // mbedTLS recognises PEM only with the terminating NUL counted in the length.
  int ret = mbedtls_pk_parse_key(pk.get(), bytes(pem), pem.size() + 1, nullptr, 0);
  if (ret != 0) return mbedtls_error("cannot parse private key", ret);
  if (!is_p256(pk.get())) {
    return Status::invalid_argument(std::string("not a P-256 private key (it is ") +
                                    mbedtls_pk_get_name(pk.get()) + ")");
  }
  return Status::ok();
}

Result<std::string> public_pem_of(PkContext& pk) {
  std::array<unsigned char, 1024> buf{};
  int ret = mbedtls_pk_write_pubkey_pem(pk.get(), buf.data(), buf.size());
  if (ret != 0) return mbedtls_error("cannot write public key", ret);
  return std::string(reinterpret_cast<const char*>(buf.data()));
}

int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// mbedtls_base64_decode skips line breaks and spaces and ignores the unused bits of the last
// group, so the same bytes could arrive under several spellings. A signature or key travels in
// exactly one: check that here first.
Status check_canonical_base64(std::string_view text) {
  if (text.size() % 4 != 0) {
    return Status::invalid_argument("base64: length " + std::to_string(text.size()) +
                                    " is not a multiple of 4");
  }
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  for (size_t i = 0; i + pad < text.size(); ++i) {
    if (value_of(text[i]) < 0) {
      return Status::invalid_argument("base64: invalid character at offset " + std::to_string(i));
    }
  }
  if (pad == 0) return Status::ok();
  // The bits below the last encoded byte must be zero: 4 of them before "==", 2 before "=".
  int last = value_of(text[text.size() - 1 - pad]);
  int unused_mask = pad == 2 ? 0x0f : 0x03;
  if ((last & unused_mask) != 0) return Status::invalid_argument("base64: non-zero padding bits");
  return Status::ok();
}

std::string escape_dn_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == ',') out += '\\';
    out += c;
  }
  return out;
}

// A name component mbedTLS's subject parser can carry: it knows only "\," as an escape.
Status check_name(const char* what, const std::string& value) {
  if (value.empty()) return Status::invalid_argument(std::string(what) + " is empty");
  if (value.find('\\') != std::string::npos || value.find('\0') != std::string::npos) {
    return Status::invalid_argument(std::string(what) + " contains a backslash or NUL: " + value);
  }
  return Status::ok();
}

int64_t unix_ms(const mbedtls_x509_time& t) {
  std::tm tm{};
  tm.tm_year = t.year - 1900;
  tm.tm_mon = t.mon - 1;
  tm.tm_mday = t.day;
  tm.tm_hour = t.hour;
  tm.tm_min = t.min;
  tm.tm_sec = t.sec;
  return static_cast<int64_t>(::timegm(&tm)) * 1000;
}

std::string dn_string(const mbedtls_x509_name* dn) {
  std::array<char, 1024> buf{};
  int ret = mbedtls_x509_dn_gets(buf.data(), buf.size(), dn);
  if (ret < 0) return "(unprintable: " + mbedtls_message("name", ret) + ")";
  return buf.data();
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  Digest digest{};
  // Cannot fail with mbedTLS's software SHA-256; an empty string would make any fault obvious.
  if (!sha256(data, digest).is_ok()) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 0x0f];
  }
  return out;
}

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');  // + the NUL mbedTLS writes
  size_t written = 0;
  mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &written,
                        bytes(data), data.size());
  out.resize(written);
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (Status s = check_canonical_base64(text); !s.is_ok()) return s;
  std::string out(text.size() / 4 * 3, '\0');
  size_t written = 0;
  int ret = mbedtls_base64_decode(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                                  &written, bytes(text), text.size());
  if (ret != 0) return mbedtls_error("base64", ret);
  out.resize(written);
  return out;
}

Result<KeyPairPem> generate_p256_key() {
  Random rng;
  if (Status s = rng.seed("edgesync p256 keygen"); !s.is_ok()) return s;
  PkContext pk;
  int ret = mbedtls_pk_setup(pk.get(), mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (ret != 0) return mbedtls_error("cannot set up key", ret);
  ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk.get()), Random::generate,
                            &rng);
  if (ret != 0) return mbedtls_error("cannot generate P-256 key", ret);

  std::array<unsigned char, 1024> buf{};
  ret = mbedtls_pk_write_key_pem(pk.get(), buf.data(), buf.size());
  if (ret != 0) return mbedtls_error("cannot write private key", ret);
  KeyPairPem pair;
  pair.private_pem = reinterpret_cast<const char*>(buf.data());
  // The private key must not linger in freed stack memory.
  mbedtls_platform_zeroize(buf.data(), buf.size());

  auto pub = public_pem_of(pk);
  if (!pub.is_ok()) return pub.status();
  pair.public_pem = std::move(*pub);
  return pair;
}

Result<std::string> sign_p256(const std::string& private_key_pem, std::string_view data) {
  PkContext pk;
  if (Status s = parse_p256_private(private_key_pem, pk); !s.is_ok()) return s;
  Digest digest{};
  if (Status s = sha256(data, digest); !s.is_ok()) return s;
  // With MBEDTLS_ECDSA_DETERMINISTIC the nonce comes from the key and hash (RFC 6979); the
  // generator is still needed to blind the computation.
  Random rng;
  if (Status s = rng.seed("edgesync p256 sign"); !s.is_ok()) return s;
  std::array<unsigned char, MBEDTLS_PK_SIGNATURE_MAX_SIZE> sig{};
  size_t sig_len = 0;
  int ret = mbedtls_pk_sign(pk.get(), MBEDTLS_MD_SHA256, digest.data(), digest.size(), sig.data(),
                            &sig_len, Random::generate, &rng);
  if (ret != 0) return mbedtls_error("cannot sign", ret);
  return std::string(reinterpret_cast<const char*>(sig.data()), sig_len);
}

Status verify_p256(const std::string& public_key_pem, std::string_view data,
                   std::string_view der_signature) {
  if (!looks_like_pem(public_key_pem)) return Status::invalid_argument("public key is not PEM");
  PkContext pk;
  int ret = mbedtls_pk_parse_public_key(pk.get(), bytes(public_key_pem), public_key_pem.size() + 1);
  if (ret != 0) return mbedtls_error("not a P-256 public key", ret);
  if (!is_p256(pk.get())) {
    return Status::invalid_argument(std::string("not a P-256 public key (it is ") +
                                    mbedtls_pk_get_name(pk.get()) + ")");
  }
  Digest digest{};
  if (Status s = sha256(data, digest); !s.is_ok()) return s;
  ret = mbedtls_pk_verify(pk.get(), MBEDTLS_MD_SHA256, digest.data(), digest.size(),
                          bytes(der_signature), der_signature.size());
  if (ret != 0) return mbedtls_error("signature does not verify", ret);
  return Status::ok();
}

Result<std::string> public_key_of(const std::string& private_key_pem) {
  PkContext pk;
  if (Status s = parse_p256_private(private_key_pem, pk); !s.is_ok()) return s;
  return public_pem_of(pk);
}

Result<std::string> make_csr(const std::string& private_key_pem, const std::string& common_name,
                             const std::string& organization) {
  if (Status s = check_name("common name", common_name); !s.is_ok()) return s;
  if (Status s = check_name("organization", organization); !s.is_ok()) return s;
  PkContext pk;
  if (Status s = parse_p256_private(private_key_pem, pk); !s.is_ok()) return s;

  CsrWriter csr;
  mbedtls_x509write_csr_set_key(csr.get(), pk.get());
  mbedtls_x509write_csr_set_md_alg(csr.get(), MBEDTLS_MD_SHA256);
  std::string subject =
      "CN=" + escape_dn_value(common_name) + ",O=" + escape_dn_value(organization);
  int ret = mbedtls_x509write_csr_set_subject_name(csr.get(), subject.c_str());
  if (ret != 0) return mbedtls_error("invalid subject \"" + subject + "\"", ret);

  Random rng;
  if (Status s = rng.seed("edgesync csr"); !s.is_ok()) return s;
  std::array<unsigned char, 4096> buf{};
  ret = mbedtls_x509write_csr_pem(csr.get(), buf.data(), buf.size(), Random::generate, &rng);
  if (ret != 0) return mbedtls_error("cannot write CSR", ret);
  return std::string(reinterpret_cast<const char*>(buf.data()));
}

Result<CertificateInfo> read_certificate(const std::string& path) {
  CrtContext crt;
  errno = 0;
  int ret = mbedtls_x509_crt_parse_file(crt.get(), path.c_str());
  if (ret == MBEDTLS_ERR_X509_FILE_IO_ERROR || ret == MBEDTLS_ERR_PK_FILE_IO_ERROR) {
    int e = errno;
    return Status::not_found("cannot read certificate " + path +
                             (e != 0 ? std::string(": ") + std::strerror(e) : std::string()));
  }
  if (ret < 0) return mbedtls_error(path + ": not a certificate", ret);
  // A positive count means some certificates of a PEM bundle were skipped; then the first one
  // parsed may not be the first of the file, and reporting its dates would mislead.
  if (ret > 0) {
    return Status::invalid_argument(path + ": " + std::to_string(ret) +
                                    " certificate(s) in the file could not be parsed");
  }
  const mbedtls_x509_crt* first = crt.get();
  CertificateInfo info;
  info.subject = dn_string(&first->subject);
  info.issuer = dn_string(&first->issuer);
  info.not_before_ms = unix_ms(first->valid_from);
  info.not_after_ms = unix_ms(first->valid_to);
  return info;
}

Status check_private_key_mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::not_found("cannot stat private key " + path + ": " + std::strerror(errno));
  }
  unsigned mode = st.st_mode & 07777;
  if ((mode & 077) == 0) return Status::ok();
  const char* how = (mode & 044) ? "readable" : (mode & 022) ? "writable" : "accessible";
  std::array<char, 8> octal{};
  std::snprintf(octal.data(), octal.size(), "%04o", mode);
  return Status::invalid_argument(path + ": private key is " + how + " by group or others (mode " +
                                  octal.data() + "); run: chmod 600 " + path);
}

Status check_key_matches_certificate(const std::string& key_path, const std::string& cert_path) {
  PkContext key;
  errno = 0;
  int ret = mbedtls_pk_parse_keyfile(key.get(), key_path.c_str(), nullptr);
  if (ret == MBEDTLS_ERR_PK_FILE_IO_ERROR) {
    int e = errno;
    return Status::not_found("cannot read private key " + key_path +
                             (e != 0 ? std::string(": ") + std::strerror(e) : std::string()));
  }
  if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
    return Status::invalid_argument(key_path +
                                    ": the private key is encrypted; the agent needs it without "
                                    "a passphrase");
  }
  if (ret != 0) return mbedtls_error(key_path + ": not a private key", ret);

  CrtContext crt;
  errno = 0;
  ret = mbedtls_x509_crt_parse_file(crt.get(), cert_path.c_str());
  if (ret == MBEDTLS_ERR_X509_FILE_IO_ERROR || ret == MBEDTLS_ERR_PK_FILE_IO_ERROR) {
    int e = errno;
    return Status::not_found("cannot read certificate " + cert_path +
                             (e != 0 ? std::string(": ") + std::strerror(e) : std::string()));
  }
  if (ret < 0) return mbedtls_error(cert_path + ": not a certificate", ret);
  ret = mbedtls_pk_check_pair(&crt.get()->pk, key.get());
  if (ret != 0) {
    return Status::invalid_argument(key_path + " is not the private key of the certificate " +
                                    cert_path + " (" + dn_string(&crt.get()->subject) + ")");
  }
  return Status::ok();
}

}  // namespace edgesync::platform::crypto
