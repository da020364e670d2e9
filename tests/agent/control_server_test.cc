// The control socket (agent/control_server.h) answers with text passed on from elsewhere: the
// status carries the hub's last error, which may come from a broker or a certificate and need
// not be UTF-8. Such a reply is sent with U+FFFD in place of the bad bytes; it must not throw in
// the I/O callback that writes it, where nothing would catch it and the agent would end.
#include "agent/control_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio.hpp>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {
namespace {

using nlohmann::json;

// One request line and its reply line, over a blocking client socket.
class ControlClient {
 public:
  explicit ControlClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~ControlClient() { ::close(fd_); }
  bool connected() const { return connected_; }

  // The reply's text, "" if none came within 10 s.
  std::string ask(const std::string& line) {
    const std::string out = line + "\n";
    if (::write(fd_, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return "";
    std::string reply;
    char c;
    while (::read(fd_, &c, 1) == 1) {
      if (c == '\n') return reply;
      reply += c;
    }
    return "";
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// The control server's loop on a thread of its own, as the agent's ingest loop: what a handler
// throws ends the loop and is kept, as it would end the agent. Stopped and joined on
// destruction, also when an ASSERT returns early.
class ServerLoop {
 public:
  explicit ServerLoop(asio::io_context& io)
      : io_(io), thread_([this] {
          auto guard = asio::make_work_guard(io_);
          try {
            io_.run();
          } catch (const std::exception& e) {
            thrown_ = e.what();
          }
        }) {}
  ~ServerLoop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  // What a handler threw ("" if nothing), once the loop has ended.
  std::string thrown() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
    return thrown_;
  }

 private:
  asio::io_context& io_;
  std::string thrown_;
  std::thread thread_;
};

TEST(ControlServer, AStatusThatIsNotUtf8IsAnsweredWithReplacementCharacters) {
  TempPath dir;
  auto box = open_box(options(dir));
  ASSERT_TRUE(box);
  asio::io_context io;
  agent::ControlServer::Handlers handlers;
  // As the agent answers: the figures come back later, posted from the delivery thread, outside
  // the request's own handling.
  handlers.status = [&io](std::function<void(json)> reply) {
    asio::post(io, [reply] {
      reply({{"hub", {{"last_error", "the broker's certificate is for CN=M\xFCller hub"}}}});
    });
  };
  agent::ControlServer server(io, dir.file("control.sock"), *box, handlers);
  ASSERT_TRUE(server.start());
  ServerLoop loop(io);

  ControlClient client(dir.file("control.sock"));
  ASSERT_TRUE(client.connected());
  const std::string text = client.ask(R"({"cmd":"status"})");
  const json reply = json::parse(text, nullptr, false);
  ASSERT_TRUE(reply.is_object()) << "no reply, or not JSON: \"" << text
                                 << "\"; the loop ended on: " << loop.thrown();
  EXPECT_EQ(reply.value("/status/hub/last_error"_json_pointer, std::string()),
            "the broker's certificate is for CN=M\xEF\xBF\xBDller hub");
  // The connection, and the agent, carry on.
  const json again = json::parse(client.ask(R"({"cmd":"nothing"})"), nullptr, false);
  ASSERT_TRUE(again.is_object());
  EXPECT_EQ(again.value("error", ""), "unknown_command") << again.dump();
  EXPECT_EQ(loop.thrown(), "");
}

}  // namespace
}  // namespace edgesync::test
