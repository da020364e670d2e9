#include "tests/harness/ingest_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace edgesync::test {

IngestClient::IngestClient(const std::string& socket_path) {
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

IngestClient::~IngestClient() { close(); }

void IngestClient::write_all(const std::string& bytes) {
  if (fd_ < 0) throw std::runtime_error("write to ingest socket failed: not connected");
  const char* data = bytes.data();
  size_t len = bytes.size();
  while (len > 0) {
    // MSG_NOSIGNAL: a peer that closed the connection is an error here, not a SIGPIPE.
    ssize_t w = ::send(fd_, data, len, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("write to ingest socket failed: ") +
                               std::strerror(errno));
    }
    data += w;
    len -= static_cast<size_t>(w);
  }
}

std::optional<std::string> IngestClient::take_line() {
  size_t nl = buf_.find('\n', pos_);
  if (nl == std::string::npos) return std::nullopt;
  std::string line = buf_.substr(pos_, nl - pos_);
  pos_ = nl + 1;
  // Returned lines are dropped in bulk, not one by one: pipelined replies come by the thousand.
  if (pos_ > 65536) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return line;
}

bool IngestClient::receive() {
  char tmp[65536];
  ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n > 0) {
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  eof_ = true;
  return false;
}

std::string IngestClient::read_line() {
  while (true) {
    if (auto line = take_line()) return *line;
    if (eof_ || fd_ < 0 || !receive()) throw std::runtime_error("ingest connection closed");
  }
}

std::optional<std::string> IngestClient::read_line(std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (auto line = take_line()) return line;
    if (eof_ || fd_ < 0) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;  // EINTR or the deadline
    receive();
  }
}

std::string IngestClient::pending() const { return buf_.substr(pos_); }

void IngestClient::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void IngestClient::shutdown() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

void IngestClient::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace edgesync::test
