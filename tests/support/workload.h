// Generated event streams for the tests, and helpers to drive several producers at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgesync::test {

struct SentEvent {
  std::string id;  // "" when the request carries no id (the agent generates one)
  std::string type;
  nlohmann::json data;
  std::string occurred_at;  // "" when absent
  std::string trace_id;     // "" when absent
  std::string line;         // the request line as sent
};

// n events with ids "<id_prefix>-<i>" (every `no_id_every`-th without an id if > 0), a few
// different types, and data covering strings with escapes and non-ASCII text, nested objects
// and arrays, big and negative integers, fractions, booleans and null. Every fourth carries a
// trace_id.
std::vector<SentEvent> make_events(const std::string& id_prefix, size_t n, size_t no_id_every = 0);

std::vector<std::string> lines_of(const std::vector<SentEvent>& events);

// Counts replies across threads; wait_for(n) blocks until at least n were counted.
class ReplyCounter {
 public:
  void add(size_t k = 1) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      n_ += k;
    }
    cv_.notify_all();
  }
  size_t value() const {
    std::lock_guard<std::mutex> lock(mu_);
    return n_;
  }
  bool wait_for(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return n_ >= n; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t n_ = 0;
};

// One pipelined producer per element of `streams`, each on its own thread and connection.
// Returns the replies per stream (fewer than sent if the connection ended; none if it could not
// connect). counter, if given, is bumped once per reply as replies arrive.
std::vector<std::vector<nlohmann::json>> send_concurrently(
    const std::string& socket_path, const std::vector<std::vector<std::string>>& streams,
    std::chrono::milliseconds timeout, ReplyCounter* counter = nullptr);

}  // namespace edgesync::test
