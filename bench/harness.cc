#include "bench/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace edgesync::bench {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/usr/local/sbin:/sbin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string full = dir + "/" + name;
    if (::access(full.c_str(), X_OK) == 0) return full;
  }
  throw std::runtime_error("executable not found: " + name);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

namespace {

std::vector<char*> c_argv(std::vector<std::string>& args) {
  std::vector<char*> v;
  for (auto& a : args) v.push_back(a.data());
  v.push_back(nullptr);
  return v;
}

}  // namespace

Child::~Child() {
  if (running()) {
    signal(SIGKILL);
    wait(std::chrono::seconds(5));
  }
}

void Child::spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<std::string> args = argv;
  args[0] = find_executable(args[0]);
  auto cargv = c_argv(args);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in >= 0) ::dup2(in, 0);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    ::execve(cargv[0], cargv.data(), environ);
    _exit(127);
  }
  pid_ = pid;
}

bool Child::running() {
  if (pid_ <= 0) return false;
  int st;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = -1;
    return false;
  }
  return true;
}

void Child::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

bool Child::wait(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (running()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void Child::stop(std::chrono::milliseconds timeout) {
  if (!running()) return;
  signal(SIGTERM);
  if (!wait(timeout)) {
    signal(SIGKILL);
    wait(std::chrono::seconds(5));
  }
}

bool CommandResult::ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  std::vector<std::string> args = argv;
  args[0] = find_executable(args[0]);
  auto cargv = c_argv(args);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(fds[1], 1);
    ::dup2(null, 2);
    ::execve(cargv[0], cargv.data(), environ);
    _exit(127);
  }
  ::close(fds[1]);
  CommandResult r;
  auto deadline = Clock::now() + timeout;
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n <= 0) continue;
    ssize_t k = ::read(fds[0], buf, sizeof buf);
    if (k <= 0) break;
    r.out.append(buf, k);
  }
  ::close(fds[0]);
  ::waitpid(pid, &r.status, 0);
  return r;
}

TempDir::TempDir(const std::string& base, bool keep) : keep_(keep) {
  std::string tmpl = base + "/esb-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed under " + base);
  path_ = tmpl;
  ::chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  if (keep_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string filesystem_type(const std::string& path) {
  struct statfs s;
  if (::statfs(path.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x794c7630: return "overlayfs";
    case 0x2fc12fc1: return "zfs";
    case 0xF2F52010: return "f2fs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(s.f_type));
      return buf;
    }
  }
}

namespace {

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

void openssl(std::vector<std::string> args) {
  args.insert(args.begin(), "openssl");
  if (!run_command(args).ok()) {
    std::string cmd;
    for (auto& a : args) cmd += a + " ";
    throw std::runtime_error("openssl failed: " + cmd);
  }
}

}  // namespace

Tls Tls::generate(const std::string& dir) {
  const std::string cnf = dir + "/openssl.cnf";
  write_file(cnf, kOpensslConfig);
  auto key = [](const std::string& path) {
    openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path});
  };
  Tls t;
  t.ca_file = dir + "/ca.pem";
  const std::string ca_key = dir + "/ca.key";
  key(ca_key);
  openssl({"req", "-new", "-x509", "-config", cnf, "-key", ca_key, "-subj", "/CN=edgesync bench CA",
           "-days", "2", "-sha256", "-extensions", "ca_ext", "-out", t.ca_file});
  int serial = 1000;
  auto sign = [&](const std::string& name, const std::string& cn, const std::string& ext) {
    const std::string k = dir + "/" + name + ".key", csr = dir + "/" + name + ".csr",
                      pem = dir + "/" + name + ".pem";
    key(k);
    openssl({"req", "-new", "-config", cnf, "-key", k, "-subj", "/CN=" + cn, "-out", csr});
    openssl({"x509", "-req", "-in", csr, "-CA", t.ca_file, "-CAkey", ca_key, "-set_serial",
             std::to_string(++serial), "-days", "2", "-sha256", "-extfile", cnf, "-extensions",
             ext, "-out", pem});
  };
  sign("server", "localhost", "server_ext");
  sign("client", "edgesync-bench", "client_ext");
  t.server_cert = dir + "/server.pem";
  t.server_key = dir + "/server.key";
  t.client_cert = dir + "/client.pem";
  t.client_key = dir + "/client.key";
  for (const auto& f : {t.ca_file, ca_key, t.server_cert, t.server_key, t.client_cert, t.client_key}) {
    ::chmod(f.c_str(), 0644);
  }
  return t;
}

int pick_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a free port");
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool tcp_port_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

bool unix_socket_accepts(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

Broker::Broker(std::string dir, Tls tls) : dir_(std::move(dir)), tls_(std::move(tls)) {
  port_ = pick_free_port();
}

void Broker::start() {
  std::ostringstream c;
  if (::geteuid() == 0) c << "user root\n";
  c << "per_listener_settings false\n"
    << "allow_anonymous true\n"
    << "max_inflight_messages 100\n"
    // mosquitto 2: 0 would mean "no queue"; a large number so nothing is dropped silently.
    << "max_queued_messages 10000000\n"
    << "max_queued_bytes 0\n"
    << "persistence false\n"
    << "set_tcp_nodelay true\n"
    << "log_dest file " << dir_ << "/mosquitto.log\n"
    << "log_type error\nlog_type warning\nlog_type notice\n"
    << "listener " << port_ << " 127.0.0.1\n"
    << "cafile " << tls_.ca_file << "\n"
    << "certfile " << tls_.server_cert << "\n"
    << "keyfile " << tls_.server_key << "\n"
    << "require_certificate true\n";
  const std::string conf = dir_ + "/mosquitto.conf";
  write_file(conf, c.str());
  child_.spawn({"mosquitto", "-c", conf}, dir_ + "/mosquitto.out");
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!tcp_port_accepts(port_)) {
    if (!child_.running() || Clock::now() > deadline) {
      throw std::runtime_error("mosquitto did not start; log:\n" + read_file(dir_ + "/mosquitto.log") +
                               read_file(dir_ + "/mosquitto.out"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void Broker::stop() { child_.stop(std::chrono::seconds(10)); }

int64_t proc_status_kb(pid_t pid, const char* field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string want = std::string(field) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(want, 0) == 0) return std::atoll(line.c_str() + want.size());
  }
  return -1;
}

namespace {

// utime + stime from a /proc/.../stat file; -1 if unreadable.
int64_t stat_cpu_ticks(const std::string& path) {
  std::string s = read_file(path);
  size_t close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(s.substr(close + 2));
  // Fields after "(comm)": state(3) ... utime(14) stime(15).
  std::string tok;
  int64_t utime = 0, stime = 0;
  for (int field = 3; field <= 15 && (in >> tok); ++field) {
    if (field == 14) utime = std::atoll(tok.c_str());
    if (field == 15) stime = std::atoll(tok.c_str());
  }
  return utime + stime;
}

}  // namespace

int64_t proc_cpu_ticks(pid_t pid) {
  return stat_cpu_ticks("/proc/" + std::to_string(pid) + "/stat");
}

std::map<std::string, int64_t> proc_thread_cpu_ticks(pid_t pid) {
  std::map<std::string, int64_t> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(dir, ec)) {
    const std::string path = task.path().string();
    std::string name = read_file(path + "/comm");
    if (!name.empty() && name.back() == '\n') name.pop_back();
    const int64_t ticks = stat_cpu_ticks(path + "/stat");
    if (ticks >= 0) out[name] += ticks;
  }
  return out;
}

IngestClient::IngestClient(const std::string& socket_path) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, socket_path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd_);
    throw std::runtime_error("cannot connect to " + socket_path + ": " + std::strerror(errno));
  }
}

IngestClient::~IngestClient() {
  if (fd_ >= 0) ::close(fd_);
}

void IngestClient::write_all(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("ingest write failed: ") + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
}

std::string IngestClient::read_line() {
  while (true) {
    size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      std::string line = buf_.substr(pos_, nl - pos_);
      pos_ = nl + 1;
      if (pos_ > 65536) {
        buf_.erase(0, pos_);
        pos_ = 0;
      }
      return line;
    }
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("ingest connection closed");
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace edgesync::bench
