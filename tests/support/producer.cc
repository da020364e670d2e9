#include "tests/support/producer.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace edgesync::test {
namespace {

using Clock = std::chrono::steady_clock;

bool write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t w = ::send(fd, data, len, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    len -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

Producer::Producer(const std::string& socket_path) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof addr.sun_path) {
    throw std::runtime_error("socket path too long: " + socket_path);
  }
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket() failed");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect(" + socket_path + ") failed: " + std::strerror(e));
  }
}

Producer::~Producer() { close(); }

void Producer::send_raw(const std::string& bytes) {
  if (fd_ < 0 || !write_all(fd_, bytes.data(), bytes.size())) {
    throw std::runtime_error(std::string("write to ingest socket failed: ") + std::strerror(errno));
  }
}

void Producer::send_line(const std::string& line) { send_raw(line + "\n"); }

std::optional<std::string> Producer::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (eof_ || fd_ < 0) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;  // re-check the deadline
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      eof_ = true;
    }
  }
}

nlohmann::json Producer::read_reply(std::chrono::milliseconds timeout) {
  auto line = read_line(timeout);
  if (!line) {
    throw std::runtime_error(eof_ ? "ingest connection closed before a reply (partial: '" + buf_ +
                                        "')"
                                  : "no reply within timeout (partial: '" + buf_ + "')");
  }
  auto j = nlohmann::json::parse(*line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw std::runtime_error("reply is not JSON: '" + *line + "'");
  return j;
}

nlohmann::json Producer::request(const std::string& line, std::chrono::milliseconds timeout) {
  send_line(line);
  return read_reply(timeout);
}

std::vector<nlohmann::json> Producer::send_all(
    const std::vector<std::string>& lines, std::chrono::milliseconds timeout,
    const std::function<void(const nlohmann::json&)>& on_reply) {
  std::atomic<bool> stop{false};
  const int fd = fd_;
  std::thread writer([&] {
    std::string chunk;
    for (size_t i = 0; i < lines.size() && !stop.load(); ++i) {
      chunk += lines[i];
      chunk += '\n';
      if (chunk.size() >= 16384 || i + 1 == lines.size()) {
        if (!write_all(fd, chunk.data(), chunk.size())) return;
        chunk.clear();
      }
    }
  });
  std::vector<nlohmann::json> replies;
  replies.reserve(lines.size());
  const auto deadline = Clock::now() + timeout;
  while (replies.size() < lines.size()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    auto line = read_line(left);
    if (!line) break;
    auto j = nlohmann::json::parse(*line, nullptr, false);
    replies.push_back(j.is_discarded() ? nlohmann::json(*line) : std::move(j));
    if (on_reply) on_reply(replies.back());
  }
  if (replies.size() < lines.size()) {
    // Unblock a writer stuck on a peer that stopped reading.
    stop = true;
    ::shutdown(fd, SHUT_RDWR);
  }
  writer.join();
  return replies;
}

void Producer::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void Producer::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace edgesync::test
