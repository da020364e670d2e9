// The agent's control socket: technicians' requests (agent/control_protocol.h) answered by the
// running agent, so that repairs go through its one writer. Mode 0660 with the agent's own
// group: the POS software, which may write events, may not hold or repair delivery.
//
// Runs on the ingest thread (the outbox's owner); repairs complete through the outbox's
// dispatcher on the same thread. A slow or silent client holds nothing but its connection.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "platform/status.h"
#include "storage/outbox.h"

namespace edgesync::agent {

class ControlConnection;

class ControlServer {
 public:
  struct Handlers {
    // The live figures for {"cmd": "status"}: called on the ingest thread; `reply` must be
    // called on it too, once, when they are ready.
    std::function<void(std::function<void(nlohmann::json)> reply)> status;
    // After a release or dead letters put back: delivery has something to do.
    std::function<void()> delivery_changed;
  };
  ControlServer(asio::io_context& io, std::string socket_path, storage::Outbox& outbox,
                Handlers handlers);
  ~ControlServer();

  // Binds (replacing a stale socket file, refusing if another agent listens there), sets the
  // mode and group, and starts accepting.
  Status start();
  void stop();

 private:
  friend class ControlConnection;
  void accept();
  // Answers one request line; `reply` gets the reply, possibly later (repairs).
  void handle(const std::string& line, std::function<void(nlohmann::json)> reply);
  // The same for a parsed request object; throws json::exception on a member of the wrong type.
  void dispatch(const nlohmann::json& request, std::function<void(nlohmann::json)> reply);

  asio::io_context& io_;
  const std::string path_;
  storage::Outbox& outbox_;
  Handlers handlers_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::set<std::shared_ptr<ControlConnection>> connections_;
  bool stopped_ = false;
};

}  // namespace edgesync::agent
