#include "tests/support/producer.h"

#include <atomic>
#include <stdexcept>
#include <thread>

namespace edgesync::test {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

Producer::Producer(const std::string& socket_path) : client_(socket_path) {}

void Producer::send_raw(const std::string& bytes) { client_.write_all(bytes); }

void Producer::send_line(const std::string& line) { send_raw(line + "\n"); }

std::optional<std::string> Producer::read_line(std::chrono::milliseconds timeout) {
  return client_.read_line(timeout);
}

nlohmann::json Producer::read_reply(std::chrono::milliseconds timeout) {
  auto line = read_line(timeout);
  if (!line) {
    const std::string what =
        eof() ? "ingest connection closed before a reply" : "no reply within timeout";
    throw std::runtime_error(what + " (partial: '" + client_.pending() + "')");
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
  std::thread writer([&] {
    std::string chunk;
    for (size_t i = 0; i < lines.size() && !stop.load(); ++i) {
      chunk += lines[i];
      chunk += '\n';
      if (chunk.size() >= 16384 || i + 1 == lines.size()) {
        try {
          client_.write_all(chunk);
        } catch (const std::exception&) {
          return;  // the reader below sees the connection end
        }
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
    client_.shutdown();
  }
  writer.join();
  return replies;
}

}  // namespace edgesync::test
