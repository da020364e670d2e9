#include "platform/tls_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>

namespace edgesync::platform {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string seconds_text(milliseconds d) {
  const auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// "text (-0x2700)": the code lets one look the error up in mbedTLS's headers.
std::string mbedtls_text(int ret) {
  std::array<char, 200> text{};
  mbedtls_strerror(ret, text.data(), text.size());
  std::array<char, 16> code{};
  std::snprintf(code.data(), code.size(), "-0x%04x", static_cast<unsigned>(-ret));
  return std::string(text.data()) + " (" + code.data() + ")";
}

std::string endpoint_text(const std::string& address, int port) {
  if (address.find(':') != std::string::npos) return "[" + address + "]:" + std::to_string(port);
  return address + ":" + std::to_string(port);
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

std::string dn_text(const mbedtls_x509_name* dn) {
  std::array<char, 1024> buf{};
  if (mbedtls_x509_dn_gets(buf.data(), buf.size(), dn) < 0) return "(unprintable name)";
  return buf.data();
}

// subjectAltName entries are context-specific tags: [2] dNSName, [7] iPAddress.
constexpr unsigned char kSanDns = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2;
constexpr unsigned char kSanIp = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7;

std::string san_text(const mbedtls_x509_crt& crt) {
  std::string out;
  for (const mbedtls_x509_sequence* s = &crt.subject_alt_names; s && s->buf.p; s = s->next) {
    std::string entry;
    if (s->buf.tag == kSanDns) {
      entry = "DNS:" + std::string(reinterpret_cast<const char*>(s->buf.p), s->buf.len);
    } else if (s->buf.tag == kSanIp && (s->buf.len == 4 || s->buf.len == 16)) {
      std::array<char, INET6_ADDRSTRLEN> text{};
      ::inet_ntop(s->buf.len == 4 ? AF_INET : AF_INET6, s->buf.p, text.data(), text.size());
      entry = std::string("IP:") + text.data();
    } else {
      continue;
    }
    if (!out.empty()) out += ", ";
    out += entry;
  }
  return out;
}

// mbedTLS 2.28 lists iPAddress entries but matches the expected name only against DNS names
// and the CN, so a hub.uri with an IP address would always read as a name mismatch; the
// address is compared here instead (as OpenSSL, and so the agent, does).
bool san_has_ip(const mbedtls_x509_crt& crt, const std::string& ip) {
  std::array<unsigned char, 16> want{};
  size_t want_len = 0;
  if (::inet_pton(AF_INET, ip.c_str(), want.data()) == 1) {
    want_len = 4;
  } else if (::inet_pton(AF_INET6, ip.c_str(), want.data()) == 1) {
    want_len = 16;
  } else {
    return false;
  }
  for (const mbedtls_x509_sequence* s = &crt.subject_alt_names; s && s->buf.p; s = s->next) {
    if (s->buf.tag == kSanIp && s->buf.len == want_len &&
        std::memcmp(s->buf.p, want.data(), want_len) == 0) {
      return true;
    }
  }
  return false;
}

const char* alert_name(int alert) {
  switch (alert) {
    case MBEDTLS_SSL_ALERT_MSG_CLOSE_NOTIFY:
      return "close_notify";
    case MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE:
      return "unexpected_message";
    case MBEDTLS_SSL_ALERT_MSG_BAD_RECORD_MAC:
      return "bad_record_mac";
    case MBEDTLS_SSL_ALERT_MSG_RECORD_OVERFLOW:
      return "record_overflow";
    case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE:
      return "handshake_failure";
    case MBEDTLS_SSL_ALERT_MSG_BAD_CERT:
      return "bad_certificate";
    case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT:
      return "unsupported_certificate";
    case MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED:
      return "certificate_revoked";
    case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED:
      return "certificate_expired";
    case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN:
      return "certificate_unknown";
    case MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER:
      return "illegal_parameter";
    case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA:
      return "unknown_ca";
    case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED:
      return "access_denied";
    case MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR:
      return "decode_error";
    case MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR:
      return "decrypt_error";
    case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION:
      return "protocol_version";
    case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY:
      return "insufficient_security";
    case MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR:
      return "internal_error";
    case MBEDTLS_SSL_ALERT_MSG_UNRECOGNIZED_NAME:
      return "unrecognized_name";
    case MBEDTLS_SSL_ALERT_MSG_NO_APPLICATION_PROTOCOL:
      return "no_application_protocol";
    case 116:
      return "certificate_required";  // TLS 1.3 (RFC 8446); no mbedTLS 2.28 constant
    default:
      return "unknown alert";
  }
}

// Blocking socket I/O for mbedTLS on a non-blocking descriptor, bounded by one deadline for the
// whole handshake: a hub that accepts TCP and then says nothing cannot hold doctor.
struct Bio {
  int fd = -1;
  Clock::time_point deadline;
  bool timed_out = false;
  int error = 0;  // errno of a failed send or recv

  // 1 ready, 0 deadline passed, -1 poll failed.
  int wait(short events) {
    for (;;) {
      pollfd p{fd, events, 0};
      int n = ::poll(&p, 1, remaining_ms(deadline));
      if (n > 0) return 1;
      if (n == 0) {
        timed_out = true;
        return 0;
      }
      if (errno != EINTR) {
        error = errno;
        return -1;
      }
    }
  }

  static int send(void* self, const unsigned char* buf, size_t len) {
    auto* b = static_cast<Bio*>(self);
    int w = b->wait(POLLOUT);
    if (w == 0) return MBEDTLS_ERR_SSL_TIMEOUT;
    if (w < 0) return MBEDTLS_ERR_NET_SEND_FAILED;
    ssize_t n = ::send(b->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      return MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    b->error = errno;
    return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                 : MBEDTLS_ERR_NET_SEND_FAILED;
  }

  static int recv(void* self, unsigned char* buf, size_t len) {
    auto* b = static_cast<Bio*>(self);
    int w = b->wait(POLLIN);
    if (w == 0) return MBEDTLS_ERR_SSL_TIMEOUT;
    if (w < 0) return MBEDTLS_ERR_NET_RECV_FAILED;
    ssize_t n = ::recv(b->fd, buf, len, 0);
    if (n >= 0) return static_cast<int>(n);  // 0: the hub closed the connection
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      return MBEDTLS_ERR_SSL_WANT_READ;
    }
    b->error = errno;
    return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
  }
};

// A hub that refuses this box's certificate sends its alert and closes at once, while the box
// may still be writing the rest of its flight: the write then fails with a reset before mbedTLS
// reads the alert. What is left to read is that alert record (type 21, version, length 2,
// level, description) in plaintext, since the handshake never finished.
int pending_alert(int fd) {
  std::array<unsigned char, 7> rec{};
  ssize_t n = ::recv(fd, rec.data(), rec.size(), MSG_DONTWAIT);
  if (n == 7 && rec[0] == 21 && rec[3] == 0 && rec[4] == 2) return rec[6];
  return -1;
}

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

using CrtContext = Context<mbedtls_x509_crt, mbedtls_x509_crt_init, mbedtls_x509_crt_free>;
using PkContext = Context<mbedtls_pk_context, mbedtls_pk_init, mbedtls_pk_free>;
using SslConfig = Context<mbedtls_ssl_config, mbedtls_ssl_config_init, mbedtls_ssl_config_free>;
using SslContext = Context<mbedtls_ssl_context, mbedtls_ssl_init, mbedtls_ssl_free>;
using Entropy = Context<mbedtls_entropy_context, mbedtls_entropy_init, mbedtls_entropy_free>;
using Drbg = Context<mbedtls_ctr_drbg_context, mbedtls_ctr_drbg_init, mbedtls_ctr_drbg_free>;

// What the certificate verification callback learns about the hub's certificate.
struct Verify {
  std::string ip_host;  // hub.uri's host when it is an address: matched here
  TlsProbeOutcome* out = nullptr;

  static int callback(void* self, mbedtls_x509_crt* crt, int depth, uint32_t* flags) {
    auto* v = static_cast<Verify*>(self);
    if (depth != 0) return 0;
    v->out->hub_subject = dn_text(&crt->subject);
    v->out->hub_issuer = dn_text(&crt->issuer);
    v->out->hub_names = san_text(*crt);
    v->out->hub_not_before_ms = unix_ms(crt->valid_from);
    v->out->hub_not_after_ms = unix_ms(crt->valid_to);
    if (!v->ip_host.empty() && !san_has_ip(*crt, v->ip_host)) {
      *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    }
    return 0;
  }
};

std::string verify_text(uint32_t flags) {
  std::array<char, 1024> buf{};
  mbedtls_x509_crt_verify_info(buf.data(), buf.size(), "", flags);
  std::string text = buf.data();
  // One line per failed check: joined for a one-line detail.
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) {
      if (!out.empty()) out += "; ";
      out += text.substr(start, end - start);
    }
    start = end + 1;
  }
  return out;
}

TlsProbeOutcome local_failure(std::string error) {
  TlsProbeOutcome out;
  out.failure = TlsProbeOutcome::Failure::kLocalFiles;
  out.error = std::move(error);
  return out;
}

void set_alert(TlsProbeOutcome& out, int alert) {
  out.failure = TlsProbeOutcome::Failure::kAlert;
  out.alert = alert;
  out.alert_name = alert_name(alert);
  out.error = "the hub ended the handshake with TLS alert " + out.alert_name + " (" +
              std::to_string(alert) + ")";
}

}  // namespace

Result<HubEndpoint> parse_hub_endpoint(const std::string& uri) {
  HubEndpoint ep;
  size_t sep = uri.find("://");
  if (sep == std::string::npos) {
    return Status::invalid_argument("hub.uri: " + uri + " has no scheme (ssl://host:port)");
  }
  const std::string scheme = uri.substr(0, sep);
  if (scheme == "ssl" || scheme == "mqtts") {
    ep.tls = true;
  } else if (scheme != "tcp" && scheme != "mqtt") {
    return Status::invalid_argument("hub.uri: unknown scheme " + scheme + "://");
  }
  std::string rest = uri.substr(sep + 3);
  if (size_t slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  std::string port_text;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return Status::invalid_argument("hub.uri: " + uri + ": expected [address]:port");
    }
    ep.host = rest.substr(1, close - 1);
    port_text = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos) {
      return Status::invalid_argument("hub.uri: " + uri + " has no port (ssl://host:8883)");
    }
    ep.host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
  }
  if (ep.host.empty()) return Status::invalid_argument("hub.uri: " + uri + " has no host");
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return Status::invalid_argument("hub.uri: " + uri + ": the port is not a number");
  }
  ep.port = std::stoi(port_text);
  if (ep.port < 1 || ep.port > 65535) {
    return Status::invalid_argument("hub.uri: " + uri + ": port out of range");
  }
  return ep;
}

bool is_ip_literal(const std::string& host) {
  std::array<unsigned char, 16> buf{};
  return ::inet_pton(AF_INET, host.c_str(), buf.data()) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

Result<std::vector<std::string>> resolve_host(const std::string& host, milliseconds timeout) {
  // getaddrinfo has no timeout of its own: it runs on a thread of its own, which is left to
  // finish by itself (and then frees everything) if the answer is late.
  struct Lookup {
    std::mutex mu;
    std::condition_variable done_cv;
    bool done = false;
    int rc = 0;
    std::vector<std::string> addresses;
  };
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, host] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
    std::vector<std::string> found;
    for (addrinfo* a = list; rc == 0 && a; a = a->ai_next) {
      std::array<char, NI_MAXHOST> text{};
      if (::getnameinfo(a->ai_addr, a->ai_addrlen, text.data(), text.size(), nullptr, 0,
                        NI_NUMERICHOST) != 0) {
        continue;
      }
      std::string s = text.data();
      bool seen = false;
      for (const auto& f : found) seen = seen || f == s;
      if (!seen) found.push_back(std::move(s));
    }
    if (list) ::freeaddrinfo(list);
    std::lock_guard<std::mutex> lock(lookup->mu);
    lookup->rc = rc;
    lookup->addresses = std::move(found);
    lookup->done = true;
    lookup->done_cv.notify_all();
  }).detach();

  std::unique_lock<std::mutex> lock(lookup->mu);
  if (!lookup->done_cv.wait_for(lock, timeout, [&] { return lookup->done; })) {
    return Status::unavailable("no answer from the resolver for " + host + " within " +
                               seconds_text(timeout));
  }
  if (lookup->rc != 0) {
    return Status::not_found("cannot resolve " + host + ": " + ::gai_strerror(lookup->rc));
  }
  if (lookup->addresses.empty()) {
    return Status::not_found("cannot resolve " + host + ": no address");
  }
  return lookup->addresses;
}

TcpConnection::~TcpConnection() {
  if (fd_ >= 0) ::close(fd_);
}

TcpConnection::TcpConnection(TcpConnection&& other) noexcept
    : fd_(other.fd_), address_(std::move(other.address_)) {
  other.fd_ = -1;
}

TcpConnection& TcpConnection::operator=(TcpConnection&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    address_ = std::move(other.address_);
    other.fd_ = -1;
  }
  return *this;
}

TcpProbeOutcome tcp_connect(const std::vector<std::string>& addresses, int port,
                            milliseconds timeout) {
  TcpProbeOutcome out;
  const auto deadline = Clock::now() + timeout;
  auto note = [&out](const std::string& where, const std::string& what) {
    if (!out.error.empty()) out.error += "; ";
    out.error += where + ": " + what;
  };
  for (const auto& address : addresses) {
    const std::string where = endpoint_text(address, port);
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* ai = nullptr;
    if (::getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &ai) != 0 || !ai) {
      note(where, "not a numeric address");
      continue;
    }
    int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      note(where, std::strerror(errno));
      ::freeaddrinfo(ai);
      continue;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    ::freeaddrinfo(ai);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int n;
      do {
        n = ::poll(&p, 1, remaining_ms(deadline));
      } while (n < 0 && errno == EINTR);
      if (n == 0) {
        out.timed_out = true;
        note(where, "no answer within " + seconds_text(timeout));
        ::close(fd);
        continue;
      }
      socklen_t len = sizeof err;
      if (n < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    }
    if (err != 0) {
      if (err == ECONNREFUSED) out.refused = true;
      if (err == ETIMEDOUT) out.timed_out = true;
      note(where, std::strerror(err));
      ::close(fd);
      continue;
    }
    out.connection = TcpConnection(fd, where);
    out.error.clear();
    return out;
  }
  if (addresses.empty()) out.error = "no address to connect to";
  return out;
}

TlsProbeOutcome tls_handshake(TcpConnection& connection, const TlsProbeOptions& options) {
  CrtContext ca, own_cert;
  PkContext own_key;
  int ret = mbedtls_x509_crt_parse_file(ca.get(), options.ca_file.c_str());
  if (ret < 0) return local_failure("hub.ca_file " + options.ca_file + ": " + mbedtls_text(ret));
  const bool client_auth = !options.cert_file.empty();
  if (client_auth) {
    ret = mbedtls_x509_crt_parse_file(own_cert.get(), options.cert_file.c_str());
    if (ret < 0) {
      return local_failure("hub.cert_file " + options.cert_file + ": " + mbedtls_text(ret));
    }
    ret = mbedtls_pk_parse_keyfile(own_key.get(), options.key_file.c_str(), nullptr);
    if (ret != 0) {
      return local_failure("hub.key_file " + options.key_file + ": " + mbedtls_text(ret));
    }
  }

  Entropy entropy;
  Drbg drbg;
  static constexpr char kPersonalization[] = "edgesync doctor tls";
  ret = mbedtls_ctr_drbg_seed(drbg.get(), mbedtls_entropy_func, entropy.get(),
                              reinterpret_cast<const unsigned char*>(kPersonalization),
                              sizeof kPersonalization - 1);
  if (ret != 0) return local_failure("cannot seed the random generator: " + mbedtls_text(ret));

  TlsProbeOutcome out;
  Verify verify;
  verify.out = &out;
  SslConfig conf;
  ret = mbedtls_ssl_config_defaults(conf.get(), MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT);
  if (ret != 0) return local_failure("cannot set up TLS: " + mbedtls_text(ret));
  mbedtls_ssl_conf_authmode(conf.get(), MBEDTLS_SSL_VERIFY_REQUIRED);
  mbedtls_ssl_conf_ca_chain(conf.get(), ca.get(), nullptr);
  mbedtls_ssl_conf_rng(conf.get(), mbedtls_ctr_drbg_random, drbg.get());
  mbedtls_ssl_conf_verify(conf.get(), &Verify::callback, &verify);
  if (client_auth) {
    ret = mbedtls_ssl_conf_own_cert(conf.get(), own_cert.get(), own_key.get());
    if (ret != 0) return local_failure("hub.cert_file with hub.key_file: " + mbedtls_text(ret));
  }

  SslContext ssl;
  ret = mbedtls_ssl_setup(ssl.get(), conf.get());
  if (ret != 0) return local_failure("cannot set up TLS: " + mbedtls_text(ret));
  if (is_ip_literal(options.host)) {
    // No SNI for an address (RFC 6066); the name check is the callback's.
    verify.ip_host = options.host;
  } else {
    ret = mbedtls_ssl_set_hostname(ssl.get(), options.host.c_str());
    if (ret != 0) return local_failure("host name " + options.host + ": " + mbedtls_text(ret));
  }
  Bio bio;
  bio.fd = connection.fd();
  bio.deadline = Clock::now() + options.timeout;
  mbedtls_ssl_set_bio(ssl.get(), &bio, &Bio::send, &Bio::recv, nullptr);

  do {
    ret = mbedtls_ssl_handshake(ssl.get());
  } while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);

  using Failure = TlsProbeOutcome::Failure;
  if (ret == 0) {
    out.version = mbedtls_ssl_get_version(ssl.get());
    out.ciphersuite = mbedtls_ssl_get_ciphersuite(ssl.get());
    mbedtls_ssl_close_notify(ssl.get());
    return out;
  }
  if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
    const uint32_t flags = mbedtls_ssl_get_verify_result(ssl.get());
    out.failure = Failure::kHubCertificate;
    out.hub_cert_expired = flags & MBEDTLS_X509_BADCERT_EXPIRED;
    out.hub_cert_not_yet_valid = flags & MBEDTLS_X509_BADCERT_FUTURE;
    out.hub_cert_untrusted = flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED;
    out.hub_cert_name_mismatch = flags & MBEDTLS_X509_BADCERT_CN_MISMATCH;
    out.error = "the hub's certificate failed verification: " + verify_text(flags);
  } else if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
    // mbedTLS 2.28 has no accessor for the alert it received; the record stays in in_msg.
    set_alert(out, ssl.get()->in_msg[1]);
  } else if (ret == MBEDTLS_ERR_SSL_TIMEOUT || bio.timed_out) {
    out.failure = Failure::kTimeout;
    out.error = "no complete TLS handshake within " + seconds_text(options.timeout) +
                " (the port accepts TCP but does not answer as a TLS server)";
  } else if (ret == MBEDTLS_ERR_SSL_CONN_EOF || ret == MBEDTLS_ERR_NET_CONN_RESET ||
             ret == MBEDTLS_ERR_NET_SEND_FAILED || ret == MBEDTLS_ERR_NET_RECV_FAILED) {
    if (int alert = pending_alert(connection.fd()); alert >= 0) {
      set_alert(out, alert);
    } else {
      out.failure = Failure::kConnection;
      out.error =
          "the hub closed the connection during the TLS handshake" +
          (bio.error != 0 ? std::string(" (") + std::strerror(bio.error) + ")" : std::string());
    }
  } else {
    out.failure = Failure::kOther;
    out.error = "TLS handshake failed: " + mbedtls_text(ret);
  }
  return out;
}

}  // namespace edgesync::platform
