#include "agent/control_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <iostream>

#include "agent/control_protocol.h"
#include "events/json_nesting.h"
#include "events/json_text.h"
#include "platform/clock.h"
#include "platform/log.h"
#include "platform/files.h"

namespace edgesync::agent {

using asio::local::stream_protocol;
using nlohmann::json;

// One client: request lines in, one reply line each, in order (a repair's reply may come later,
// so the next request is read only once it has gone out).
class ControlConnection : public std::enable_shared_from_this<ControlConnection> {
 public:
  ControlConnection(ControlServer& server, stream_protocol::socket socket)
      : server_(server), socket_(std::move(socket)), in_(kMaxControlLine) {}

  void read() {
    asio::async_read_until(socket_, in_, '\n',
                           [self = shared_from_this()](asio::error_code ec, size_t n) {
                             self->on_line(ec, n);
                           });
  }

  void close() {
    asio::error_code ec;
    socket_.close(ec);
  }

 private:
  void on_line(asio::error_code ec, size_t n) {
    if (ec) {
      if (ec == asio::error::not_found) {  // no newline within kMaxControlLine
        write(error_reply("bad_request", "request line over " +
                                             std::to_string(kMaxControlLine) + " bytes"),
              /*then_close=*/true);
        return;
      }
      finish();
      return;
    }
    std::string line(asio::buffers_begin(in_.data()), asio::buffers_begin(in_.data()) + n);
    in_.consume(n);
    server_.handle(line, [self = shared_from_this()](json reply) {
      self->write(std::move(reply), /*then_close=*/false);
    });
  }

  void write(const json& reply, bool then_close) {
    out_ = events::json_text(reply) + "\n";
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), then_close](asio::error_code ec, size_t) {
                        if (ec || then_close || self->server_.stopped_) {
                          self->finish();
                          return;
                        }
                        self->read();
                      });
  }

  void finish() {
    close();
    server_.connections_.erase(shared_from_this());
  }

  ControlServer& server_;
  stream_protocol::socket socket_;
  asio::streambuf in_;
  std::string out_;
};

ControlServer::ControlServer(asio::io_context& io, std::string socket_path,
                             storage::Outbox& outbox, Handlers handlers)
    : io_(io),
      path_(std::move(socket_path)),
      outbox_(outbox),
      handlers_(std::move(handlers)),
      acceptor_(io) {}

ControlServer::~ControlServer() { stop(); }

Status ControlServer::start() {
  Status s = platform::ensure_parent_dir(path_, 0755);
  if (!s) return s;
  struct stat st;
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::invalid_argument("control.socket: " + path_ +
                                      " exists and is not a socket; remove it or pick another path");
    }
    stream_protocol::socket probe(io_);
    asio::error_code ec;
    probe.connect(stream_protocol::endpoint(path_), ec);
    if (!ec) return Status::unavailable("another edgesync agent answers on " + path_);
    ::unlink(path_.c_str());  // stale socket from a crashed agent
  }
  asio::error_code ec;
  acceptor_.open(stream_protocol(), ec);
  if (!ec) acceptor_.bind(stream_protocol::endpoint(path_), ec);
  if (!ec) acceptor_.listen(16, ec);
  if (ec) return Status::io_error("cannot listen on " + path_ + ": " + ec.message());
  // The agent's own group, not the directory's (which is the producers' under systemd).
  if (::chown(path_.c_str(), static_cast<uid_t>(-1), ::getegid()) != 0 ||
      ::chmod(path_.c_str(), 0660) != 0) {
    ::unlink(path_.c_str());
    return Status::io_error("cannot set the owner and mode of " + path_);
  }
  accept();
  return Status::ok();
}

void ControlServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ec;
  acceptor_.close(ec);
  ::unlink(path_.c_str());
  auto conns = connections_;
  for (const auto& c : conns) c->close();
}

void ControlServer::accept() {
  acceptor_.async_accept([this](asio::error_code ec, stream_protocol::socket socket) {
    if (stopped_) return;
    if (!ec) {
      auto c = std::make_shared<ControlConnection>(*this, std::move(socket));
      connections_.insert(c);
      c->read();
    }
    accept();
  });
}

// A request is a flat object: this leaves room, and keeps dump() and value() from recursing deep.
constexpr int kMaxRequestNesting = 16;

void ControlServer::handle(const std::string& line, std::function<void(json)> reply) {
  if (events::nesting_depth(line) > kMaxRequestNesting) {
    reply(error_reply("bad_request", "a request nests deeper than " +
                                         std::to_string(kMaxRequestNesting) + " levels"));
    return;
  }
  json request = json::parse(line, nullptr, false);
  if (!request.is_object()) {
    reply(error_reply("bad_request", "a request is one JSON object on one line"));
    return;
  }
  try {
    dispatch(request, reply);
  } catch (const json::exception& e) {
    // A member of the wrong type ("cmd": 1): value() throws. Refused; the agent runs on.
    reply(error_reply("bad_request", std::string("a member has the wrong type: ") + e.what()));
  }
}

void ControlServer::dispatch(const json& request, std::function<void(json)> reply) {
  const auto v = request.find("v");
  if (v != request.end() && (!v->is_number_integer() || v->get<int>() != kControlProtocolVersion)) {
    reply(error_reply("bad_request", "protocol version " + v->dump() + " is not supported (this "
                                     "agent speaks " + std::to_string(kControlProtocolVersion) +
                                     ")"));
    return;
  }
  const std::string cmd = request.value("cmd", "");
  if (cmd == "status") {
    if (!handlers_.status) {
      reply(error_reply("failed", "no status here"));
      return;
    }
    handlers_.status([reply](json status) { reply({{"ok", true}, {"status", std::move(status)}}); });
    return;
  }
  if (cmd == "log_level") {
    // Until the next start or reload: the file's log.level is the lasting setting.
    auto level = platform::parse_log_level(request.value("level", ""));
    if (!level) {
      reply(error_reply("bad_request", level.status().message()));
      return;
    }
    const char* before = platform::log_level_name(platform::log_level());
    platform::set_log_level(*level);
    platform::log(platform::LogLevel::kNotice, "log_level",
                  std::string("log level ") + before + " -> " + platform::log_level_name(*level) +
                      " (by the control socket, until the next start or reload)");
    reply({{"ok", true}, {"level", platform::log_level_name(*level)}, {"was", before}});
    return;
  }
  auto repair = parse_repair_request(request, platform::unix_ms());
  if (!repair) {
    const bool unknown = repair.status().code() == Status::Code::kNotFound;
    reply(error_reply(unknown ? "unknown_command" : "bad_request", repair.status().message()));
    return;
  }
  const storage::RepairRequest req = *repair;
  outbox_.repair(*repair, [this, req, reply](const storage::RepairResult& r) {
    json j = repair_reply(req, r);
    if (r.status) {
      platform::log(platform::LogLevel::kNotice, "repair", "control: " + repair_summary(req, r));
      const bool wakes = req.kind == storage::RepairRequest::Kind::kRelease || !r.retried.empty();
      if (wakes && handlers_.delivery_changed) handlers_.delivery_changed();
    }
    reply(std::move(j));
  });
}

}  // namespace edgesync::agent
