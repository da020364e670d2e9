// A POS-app stand-in for the tests: the harness's IngestClient with timeouts and JSON replies.
//
// Requests are newline-delimited JSON; the agent answers each with one reply line, in order.
// send_all() pipelines: one thread writes every line while the caller reads the replies.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/harness/ingest_client.h"

namespace edgesync::test {

class Producer {
 public:
  // Connects to the socket; throws std::runtime_error on failure.
  explicit Producer(const std::string& socket_path);

  // Writes line + '\n'. Throws std::runtime_error if the write fails.
  void send_line(const std::string& line);
  // Writes bytes as they are (no newline added). Throws on failure.
  void send_raw(const std::string& bytes);
  // Reads one reply line and parses it. Throws std::runtime_error on timeout, EOF or a reply
  // that is not JSON (the message contains what was read).
  nlohmann::json read_reply(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // One line without its '\n'; nullopt on timeout or EOF (eof() tells which).
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // send_line + read_reply.
  nlohmann::json request(const std::string& line,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Pipelined: a writer thread sends every line (each + '\n') while this thread reads
  // replies in order. Returns the replies received: all of them, or fewer if the connection
  // ended or timeout passed. A reply line that is not valid JSON is returned as a JSON string
  // holding the raw text (so an is_object() check fails with the text visible).
  // on_reply, if set, is called with each reply as it arrives (for progress tracking).
  std::vector<nlohmann::json> send_all(
      const std::vector<std::string>& lines,
      std::chrono::milliseconds timeout = std::chrono::seconds(120),
      const std::function<void(const nlohmann::json&)>& on_reply = nullptr);

  // Half-close (no more requests) and full close.
  void shutdown_write() { client_.shutdown_write(); }
  void close() { client_.close(); }
  bool eof() const { return client_.eof(); }

 private:
  IngestClient client_;
};

}  // namespace edgesync::test
