// `edgesync send`: a producer for technicians and scripts. Sends NDJSON lines through the
// ingest socket and prints each reply line; the reading, printing and exit rule here serve
// `--http` as well (agent/cli_send_http.cc). Exit 0 iff every event was accepted.
#include "agent/cli_send.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/cli.h"

namespace edgesync::agent {

bool SendInput::open(const std::string& input_file) {
  if (input_file.empty() || input_file == "-") {
    in_ = &std::cin;
    return true;
  }
  file_.open(input_file);
  if (!file_) {
    std::cerr << "edgesync send: cannot read " << input_file << "\n";
    return false;
  }
  in_ = &file_;
  return true;
}

bool SendInput::next(std::string* line) {
  while (in_ != nullptr && std::getline(*in_, *line)) {
    ++line_number_;
    if (line->find_first_not_of(" \t\r") != std::string::npos) return true;
  }
  return false;
}

void SendTally::reply(std::string_view text) {
  std::cout << text << "\n";
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.value("ok", false)) ++refused_;
  ++replies_;
}

int SendTally::exit_code(size_t sent, std::string_view why) const {
  std::cout.flush();
  if (replies_ < sent) {
    std::cerr << "edgesync send: " << sent - replies_ << " events got no reply (" << why
              << "); they may or may not be stored: resend them with the same id\n";
    return 1;
  }
  return refused_ == 0 ? 0 : 1;
}

int cli_send(const std::string& socket_path, const std::string& input_file) {
  SendInput input;
  if (!input.open(input_file)) return 2;
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
    while (input.next(&line)) {
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
  SendTally tally;
  std::string pending;
  char chunk[65536];
  while (true) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(chunk, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = pending.find('\n', start)) != std::string::npos) {
      tally.reply(std::string_view(pending.data() + start, nl - start));
      start = nl + 1;
    }
    pending.erase(0, start);
  }
  writer.join();
  ::close(fd);
  return tally.exit_code(sent, "connection closed");
}

}  // namespace edgesync::agent
