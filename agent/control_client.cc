#include "agent/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/control_protocol.h"

namespace edgesync::agent {
namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits for `events` on `fd` until `deadline`; false on timeout or error.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

Result<nlohmann::json> control_request(const std::string& socket_path,
                                       const nlohmann::json& request,
                                       std::chrono::milliseconds timeout, bool* sent) {
  if (sent) *sent = false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    return Status::invalid_argument("control socket path too long: " + socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Status::io_error(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    if (e == ENOENT) return Status::not_found("no control socket at " + socket_path);
    if (e == ECONNREFUSED) return Status::unavailable("nothing answers on " + socket_path);
    if (e == EACCES || e == EPERM) {
      return Status::io_error("permission denied on " + socket_path +
                              ": run as root or as the agent's user (sudo -u edgesync)");
    }
    return Status::io_error("cannot connect to " + socket_path + ": " + std::strerror(e));
  }
  const auto deadline = Clock::now() + timeout;
  const std::string line = request.dump() + "\n";
  for (size_t off = 0; off < line.size();) {
    if (!wait_for(fd.get(), POLLOUT, deadline)) {
      return Status::io_error("the agent did not take the request within its time");
    }
    const ssize_t n = ::send(fd.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Status::io_error(std::string("sending the request: ") + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  if (sent) *sent = true;
  std::string reply;
  char buf[4096];
  while (reply.find('\n') == std::string::npos) {
    if (!wait_for(fd.get(), POLLIN, deadline)) {
      return Status::io_error("the agent did not answer within " +
                              std::to_string(timeout.count() / 1000) + " s");
    }
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::io_error("the agent closed the control connection without a reply");
    reply.append(buf, static_cast<size_t>(n));
    if (reply.size() > 16 * kMaxControlLine) return Status::io_error("the reply is too long");
  }
  auto j = nlohmann::json::parse(reply.substr(0, reply.find('\n')), nullptr, false);
  if (!j.is_object()) return Status::io_error("the agent's reply is not a JSON object");
  return j;
}

}  // namespace edgesync::agent
