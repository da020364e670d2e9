#include "platform/crypto.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace edgesync::platform::crypto {
namespace {

// A fresh directory for key, signature and certificate files; removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/edgesync-crypto-XXXXXX";
    char* made = ::mkdtemp(tmpl);
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

void write(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Exit status of a shell command; its output is discarded.
int run(const std::string& command) {
  int rc = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// stdout of a shell command (stderr discarded).
std::string output_of(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

bool have_openssl() { return run("openssl version") == 0; }

#define REQUIRE_OPENSSL() \
  if (!have_openssl()) GTEST_SKIP() << "the openssl command is not installed"

KeyPairPem new_key() {
  auto key = generate_p256_key();
  EXPECT_TRUE(key.is_ok()) << key.status().to_string();
  return key ? *key : KeyPairPem{};
}

TEST(Sha256, KnownVectors) {
  // FIPS 180-2 appendix B.1 and the empty message.
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded) << plain;
    auto decoded = base64_decode(encoded);
    ASSERT_TRUE(decoded.is_ok()) << encoded << ": " << decoded.status().to_string();
    EXPECT_EQ(*decoded, plain);
  }
}

TEST(Base64, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t len : {size_t{1}, size_t{2}, size_t{3}, size_t{255}, size_t{256}}) {
    std::string data = all.substr(0, len);
    auto back = base64_decode(base64_encode(data));
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(*back, data);
  }
}

TEST(Base64, StrictDecodingRejectsSloppyInput) {
  const std::string bad[] = {
      "Zm9v\n",                 // trailing newline
      "Zm9v\r\nYmFy",           // line break inside
      "Zm 9v",                  // space inside
      " Zm9v",                  // leading space
      "Zm9",                    // missing padding
      "Zg=",                    // short padding
      "Zg",                     // no padding at all
      "Zm9v====",               // too much padding
      "Zm=v",                   // padding in the middle
      "=Zm9",                   // padding first
      "Zm9-",                   // URL-safe alphabet
      "Zm9_",                   // URL-safe alphabet
      "Zm9*",                   // not in any alphabet
      "Zh==",                   // non-zero unused bits: two spellings of "f"
      "Zm9=",                   // non-zero unused bits: two spellings of "fo"
      std::string("Zm\0v", 4),  // embedded NUL
  };
  for (const auto& text : bad) {
    auto r = base64_decode(text);
    EXPECT_FALSE(r.is_ok()) << "accepted \"" << text << "\"";
    if (!r.is_ok()) {
      EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    }
  }
}

TEST(P256, GeneratedKeySignsAndVerifies) {
  KeyPairPem key = new_key();
  EXPECT_NE(key.private_pem.find("-----BEGIN EC PRIVATE KEY-----"), std::string::npos);
  EXPECT_NE(key.public_pem.find("-----BEGIN PUBLIC KEY-----"), std::string::npos);

  auto pub = public_key_of(key.private_pem);
  ASSERT_TRUE(pub.is_ok()) << pub.status().to_string();
  EXPECT_EQ(*pub, key.public_pem);

  const std::string data = R"({"version":7,"config":{"interval_s":30}})";
  auto sig = sign_p256(key.private_pem, data);
  ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();
  EXPECT_EQ(static_cast<unsigned char>((*sig)[0]), 0x30) << "not a DER SEQUENCE";
  Status ok = verify_p256(key.public_pem, data, *sig);
  EXPECT_TRUE(ok.is_ok()) << ok.to_string();
}

TEST(P256, TwoKeysDiffer) {
  KeyPairPem a = new_key();
  KeyPairPem b = new_key();
  EXPECT_NE(a.private_pem, b.private_pem);
  EXPECT_NE(a.public_pem, b.public_pem);
}

TEST(P256, TamperedDataOrSignatureFails) {
  KeyPairPem key = new_key();
  const std::string data = "config envelope v1";
  auto sig = sign_p256(key.private_pem, data);
  ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();

  Status s = verify_p256(key.public_pem, "config envelope v2", *sig);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("signature does not verify"), std::string::npos) << s.message();

  std::string flipped = *sig;
  flipped[flipped.size() - 1] ^= 0x01;
  EXPECT_FALSE(verify_p256(key.public_pem, data, flipped).is_ok());
  EXPECT_FALSE(verify_p256(key.public_pem, data, sig->substr(0, sig->size() - 1)).is_ok());
  EXPECT_FALSE(verify_p256(key.public_pem, data, *sig + std::string(1, '\0')).is_ok());
  EXPECT_FALSE(verify_p256(key.public_pem, data, "").is_ok());
}

TEST(P256, SignatureByAnotherKeyFails) {
  KeyPairPem signer = new_key();
  KeyPairPem other = new_key();
  auto sig = sign_p256(signer.private_pem, "data");
  ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();
  Status s = verify_p256(other.public_pem, "data", *sig);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("signature does not verify"), std::string::npos) << s.message();
}

TEST(P256, GarbageKeysAreInvalidArgument) {
  KeyPairPem key = new_key();
  EXPECT_EQ(sign_p256("not a key", "x").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(sign_p256(key.public_pem, "x").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(public_key_of("").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(verify_p256("", "x", "y").code(), Status::Code::kInvalidArgument);
  // A private key where the public one belongs.
  auto sig = sign_p256(key.private_pem, "x");
  ASSERT_TRUE(sig.is_ok());
  EXPECT_EQ(verify_p256(key.private_pem, "x", *sig).code(), Status::Code::kInvalidArgument);
}

TEST(P256, RefusesOtherKeyTypes) {
  REQUIRE_OPENSSL();
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string p384 = dir.file("p384.pem");
  const std::string rsa = dir.file("rsa.pem");
  ASSERT_EQ(run("openssl ecparam -name secp384r1 -genkey -noout -out " + p384), 0);
  ASSERT_EQ(run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + rsa), 0);

  for (const std::string& key_file : {p384, rsa}) {
    const std::string sig_file = key_file + ".sig";
    const std::string data_file = dir.file("data");
    write(data_file, "data");
    // A signature that really is by this key over these bytes: only the key type is wrong.
    ASSERT_EQ(run("openssl dgst -sha256 -sign " + key_file + " -out " + sig_file + " " + data_file),
              0);
    std::string pub = output_of("openssl pkey -in " + key_file + " -pubout");
    ASSERT_NE(pub.find("BEGIN PUBLIC KEY"), std::string::npos);
    Status s = verify_p256(pub, "data", read(sig_file));
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << key_file;
    EXPECT_NE(s.message().find("not a P-256 public key"), std::string::npos) << s.message();

    auto signed_by_other = sign_p256(read(key_file), "data");
    EXPECT_FALSE(signed_by_other.is_ok()) << key_file;
    EXPECT_NE(signed_by_other.status().message().find("not a P-256 private key"), std::string::npos)
        << signed_by_other.status().message();
  }
}

TEST(P256, OpensslVerifiesOurSignature) {
  REQUIRE_OPENSSL();
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  KeyPairPem key = new_key();
  const std::string data = "payload signed by edgesync\n";
  auto sig = sign_p256(key.private_pem, data);
  ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();
  write(dir.file("pub.pem"), key.public_pem);
  write(dir.file("data"), data);
  write(dir.file("sig.der"), *sig);
  EXPECT_EQ(run("openssl dgst -sha256 -verify " + dir.file("pub.pem") + " -signature " +
                dir.file("sig.der") + " " + dir.file("data")),
            0);
  // The check can fail: a signature over other bytes does not pass.
  write(dir.file("other"), data + "x");
  EXPECT_NE(run("openssl dgst -sha256 -verify " + dir.file("pub.pem") + " -signature " +
                dir.file("sig.der") + " " + dir.file("other")),
            0);
  // And openssl reads our private key.
  write(dir.file("key.pem"), key.private_pem);
  EXPECT_EQ(output_of("openssl pkey -in " + dir.file("key.pem") + " -pubout"), key.public_pem);
}

TEST(P256, WeVerifyOpensslSignature) {
  REQUIRE_OPENSSL();
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // Both private key encodings openssl writes: SEC1 (ecparam) and PKCS#8 (genpkey).
  const std::string commands[] = {
      "openssl ecparam -name prime256v1 -genkey -noout -out ",
      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ",
  };
  for (const std::string& keygen : commands) {
    const std::string key_file = dir.file("key.pem");
    ASSERT_EQ(run(keygen + key_file), 0) << keygen;
    const std::string data = "payload signed by openssl";
    write(dir.file("data"), data);
    ASSERT_EQ(run("openssl dgst -sha256 -sign " + key_file + " -out " + dir.file("sig") + " " +
                  dir.file("data")),
              0);
    std::string pub = output_of("openssl pkey -in " + key_file + " -pubout");
    Status s = verify_p256(pub, data, read(dir.file("sig")));
    EXPECT_TRUE(s.is_ok()) << keygen << ": " << s.to_string();
    EXPECT_FALSE(verify_p256(pub, data + ".", read(dir.file("sig"))).is_ok());

    // We sign with openssl's key, too, and derive the same public key.
    auto our_pub = public_key_of(read(key_file));
    ASSERT_TRUE(our_pub.is_ok()) << our_pub.status().to_string();
    EXPECT_EQ(*our_pub, pub);
    auto sig = sign_p256(read(key_file), data);
    ASSERT_TRUE(sig.is_ok()) << sig.status().to_string();
    EXPECT_TRUE(verify_p256(pub, data, *sig).is_ok());
  }
}

TEST(Csr, OpensslAcceptsItAndReadsTheSubject) {
  REQUIRE_OPENSSL();
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  KeyPairPem key = new_key();
  auto csr = make_csr(key.private_pem, "device-0042", "Acme Fleet");
  ASSERT_TRUE(csr.is_ok()) << csr.status().to_string();
  EXPECT_NE(csr->find("-----BEGIN CERTIFICATE REQUEST-----"), std::string::npos);
  const std::string file = dir.file("req.pem");
  write(file, *csr);
  EXPECT_EQ(run("openssl req -in " + file + " -noout -verify"), 0);
  std::string subject = output_of("openssl req -in " + file + " -noout -nameopt RFC2253 -subject");
  EXPECT_NE(subject.find("CN=device-0042"), std::string::npos) << subject;
  EXPECT_NE(subject.find("O=Acme Fleet"), std::string::npos) << subject;
  // The request carries this device's key.
  std::string req_pub = output_of("openssl req -in " + file + " -noout -pubkey");
  EXPECT_EQ(req_pub, key.public_pem);
}

TEST(Csr, CommaInANameStaysInsideItsComponent) {
  REQUIRE_OPENSSL();
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  KeyPairPem key = new_key();
  auto csr = make_csr(key.private_pem, "dev-1", "Acme, Inc.");
  ASSERT_TRUE(csr.is_ok()) << csr.status().to_string();
  write(dir.file("req.pem"), *csr);
  std::string subject =
      output_of("openssl req -in " + dir.file("req.pem") + " -noout -nameopt RFC2253 -subject");
  EXPECT_NE(subject.find("O=Acme\\, Inc."), std::string::npos) << subject;
  EXPECT_NE(subject.find("CN=dev-1"), std::string::npos) << subject;
}

TEST(Csr, RefusesUnusableInput) {
  KeyPairPem key = new_key();
  EXPECT_EQ(make_csr(key.private_pem, "", "Acme").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(make_csr(key.private_pem, "a\\b", "Acme").status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(make_csr(key.public_pem, "dev", "Acme").status().code(),
            Status::Code::kInvalidArgument);
}

TEST(Certificate, ReadsSubjectAndValidityInUtc) {
  REQUIRE_OPENSSL();
  if (run("faketime -f '2001-01-01 00:00:00' true") != 0) {
    GTEST_SKIP() << "faketime is not installed: cannot make a certificate with fixed dates";
  }
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string key = dir.file("k.pem");
  const std::string pem = dir.file("c.pem");
  const std::string der = dir.file("c.der");
  ASSERT_EQ(run("openssl ecparam -name prime256v1 -genkey -noout -out " + key), 0);
  // A frozen clock ("-f" without "@"), read as UTC, so the dates are exact.
  ASSERT_EQ(run("TZ=UTC faketime -f '2030-01-01 00:00:00' openssl req -x509 -new -key " + key +
                " -subj '/CN=x/O=Acme' -days 10 -out " + pem),
            0);
  ASSERT_EQ(run("openssl x509 -in " + pem + " -outform DER -out " + der), 0);

  // Dates are UTC whatever the local zone is (timegm, not mktime): read them in a zone that
  // is never UTC.
  const char* old_tz = std::getenv("TZ");
  std::string saved_tz = old_tz != nullptr ? old_tz : "";
  ::setenv("TZ", "EST5", 1);  // POSIX form: needs no zone database
  ::tzset();
  std::vector<Result<CertificateInfo>> infos;
  for (const std::string& file : {pem, der}) infos.push_back(read_certificate(file));
  if (old_tz != nullptr) {
    ::setenv("TZ", saved_tz.c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
  ::tzset();

  for (size_t i = 0; i < infos.size(); ++i) {
    const std::string& file = i == 0 ? pem : der;
    auto& info = infos[i];
    ASSERT_TRUE(info.is_ok()) << file << ": " << info.status().to_string();
    EXPECT_EQ(info->subject, "CN=x, O=Acme");
    EXPECT_EQ(info->issuer, "CN=x, O=Acme");
    EXPECT_EQ(info->not_before_ms, int64_t{1893456000} * 1000);  // 2030-01-01T00:00:00Z
    EXPECT_EQ(info->not_after_ms, int64_t{1894320000} * 1000);   // 2030-01-11T00:00:00Z
  }
}

TEST(Certificate, MissingFileIsNotFoundAndOtherFilesInvalid) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  auto missing = read_certificate(dir.file("nope.pem"));
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.pem"), std::string::npos);

  write(dir.file("key.pem"), new_key().private_pem);
  EXPECT_EQ(read_certificate(dir.file("key.pem")).status().code(), Status::Code::kInvalidArgument);
  write(dir.file("empty.pem"), "");
  EXPECT_EQ(read_certificate(dir.file("empty.pem")).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(PrivateKeyMode, OnlyOwnerAccessPasses) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string key = dir.file("device.key");
  write(key, new_key().private_pem);

  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  Status s = check_private_key_mode(key);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  ASSERT_EQ(::chmod(key.c_str(), 0400), 0);
  EXPECT_TRUE(check_private_key_mode(key).is_ok());

  for (unsigned mode : {0640u, 0604u, 0660u, 0644u}) {
    ASSERT_EQ(::chmod(key.c_str(), mode), 0);
    s = check_private_key_mode(key);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << std::oct << mode;
    char mode_text[16];
    std::snprintf(mode_text, sizeof mode_text, "mode %04o", mode);
    EXPECT_NE(s.message().find(mode_text), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("chmod 600 " + key), std::string::npos) << s.message();
    EXPECT_EQ(s.message().rfind(key, 0), 0u) << "message should start with the file";
  }
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
}

TEST(PrivateKeyMode, MissingFileIsNotFound) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Status s = check_private_key_mode(dir.file("absent.key"));
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_NE(s.message().find("absent.key"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace edgesync::platform::crypto
