// `edgesync send`: a producer for technicians and scripts. Sends NDJSON lines through the
// ingest socket and prints each reply line. Exit 0 iff every event was accepted.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/cli.h"

namespace edgesync::agent {

int cli_send(const std::string& socket_path, const std::string& input_file) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (!input_file.empty() && input_file != "-") {
    file.open(input_file);
    if (!file) {
      std::cerr << "edgesync send: cannot read " << input_file << "\n";
      return 2;
    }
    in = &file;
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::cerr << "edgesync send: cannot connect to " << socket_path << ": "
              << std::strerror(errno) << " (is the agent running?)\n";
    if (fd >= 0) ::close(fd);
    return 2;
  }
  // Write everything from one thread while this one prints replies: producers may pipeline.
  size_t sent = 0;
  std::thread writer([&] {
    std::string line;
    while (std::getline(*in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      line.push_back('\n');
      const char* p = line.data();
      size_t left = line.size();
      while (left > 0) {
        ssize_t n = ::send(fd, p, left, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EINTR) continue;
          ::shutdown(fd, SHUT_WR);
          return;
        }
        p += n;
        left -= static_cast<size_t>(n);
      }
      ++sent;
    }
    ::shutdown(fd, SHUT_WR);
  });
  size_t replies = 0, failed = 0;
  std::string buf, pending;
  char chunk[65536];
  while (true) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(chunk, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = pending.find('\n', start)) != std::string::npos) {
      std::string_view reply(pending.data() + start, nl - start);
      std::cout << reply << "\n";
      auto j = nlohmann::json::parse(reply, nullptr, false);
      if (j.is_discarded() || !j.value("ok", false)) ++failed;
      ++replies;
      start = nl + 1;
    }
    pending.erase(0, start);
  }
  writer.join();
  ::close(fd);
  if (replies < sent) {
    std::cerr << "edgesync send: " << sent - replies
              << " events got no reply (connection closed); they may or may not be stored: "
                 "resend them with the same id\n";
    return 1;
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace edgesync::agent
