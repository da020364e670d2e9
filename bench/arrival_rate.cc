#include "bench/arrival_rate.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench/events.h"
#include "bench/harness.h"
#include "bench/subscriber.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::bench {

void ArrivalRate::merge(const ArrivalRate& o) {
  expected += o.expected;
  arrived += o.arrived;
  early += o.early;
  duplicates += o.duplicates;
  events += o.events;
  seconds += o.seconds;
  if (unmeasured.empty()) unmeasured = o.unmeasured;
}

namespace {

volatile std::sig_atomic_t g_stop = 0;

// The handler only raises a flag; the counting process's main thread acts on it.
void on_sigterm(int) { g_stop = 1; }

// Written whole or not at all: the other process polls for the file.
void write_atomically(const std::string& path, const std::string& text) {
  test::write_file(path + ".tmp", text);
  std::filesystem::rename(path + ".tmp", path);
}

// The counting itself, on paho's callback thread of the subscriber process.
class Tally {
 public:
  Tally(const std::string& id_prefix, int64_t n)
      : prefix_("{\"id\":\"" + id_prefix),
        n_(n),
        lo_(n / 10),
        hi_(n - n / 10),
        seen_(static_cast<size_t>(n) + 1, 0) {}

  void on_message(const char* payload, size_t size, int64_t t) {
    // The prefix straight from the payload's first bytes: this runs for every message, and the
    // subscriber must not be what limits the rate it measures.
    if (size < prefix_.size() || std::memcmp(payload, prefix_.data(), prefix_.size()) != 0) return;
    const int64_t seq = payload_seq(payload, size);
    if (seq < 1 || seq > n_) return;  // not this run's
    if (seen_[static_cast<size_t>(seq)]) {
      ++duplicates_;
      return;
    }
    seen_[static_cast<size_t>(seq)] = 1;
    const int64_t k = arrived_.load(std::memory_order_relaxed) + 1;
    if (k == lo_) lo_ns_ = t;
    if (k == hi_) hi_ns_ = t;
    arrived_.store(k);  // after the stamps: whoever sees k >= hi_ sees hi_ns_
  }

  int64_t arrived() const { return arrived_.load(); }

  nlohmann::json report() const {
    ArrivalRate r;
    r.expected = n_;
    r.arrived = arrived();
    r.duplicates = duplicates_.load();
    while (r.arrived > 0 && !seen_[static_cast<size_t>(r.early) + 1]) ++r.early;
    if (lo_ < 1 || hi_ <= lo_) {
      r.unmeasured = std::to_string(n_) + " events are too few for a 10%..90% window";
    } else if (r.arrived < hi_) {
      r.unmeasured = "only " + std::to_string(r.arrived) + " of " + std::to_string(n_) +
                     " events arrived at the subscriber";
    } else if (hi_ns_.load() <= lo_ns_.load()) {
      r.unmeasured = "the 10% and 90% arrivals carry the same time stamp";
    } else {
      r.events = hi_ - lo_;
      r.seconds = (hi_ns_.load() - lo_ns_.load()) / 1e9;
    }
    return {{"expected", r.expected},     {"arrived", r.arrived}, {"early", r.early},
            {"duplicates", r.duplicates}, {"events", r.events},   {"seconds", r.seconds},
            {"unmeasured", r.unmeasured}};
  }

 private:
  const std::string prefix_;
  const int64_t n_, lo_, hi_;  // the 10 % and 90 % marks, in distinct arrivals
  std::vector<uint8_t> seen_;  // by seq; paho's callback thread only
  std::atomic<int64_t> arrived_{0}, duplicates_{0}, lo_ns_{0}, hi_ns_{0};
};

}  // namespace

int arrival_counter_main(const std::string& dir) {
  struct sigaction sa {};
  sa.sa_handler = on_sigterm;
  ::sigaction(SIGTERM, &sa, nullptr);
  try {
    const auto cfg = nlohmann::json::parse(test::read_file(dir + "/subscriber.json"));
    test::TlsMaterial tls;
    tls.ca_file = cfg.at("ca_file");
    tls.client_cert_file = cfg.at("cert_file");
    tls.client_key_file = cfg.at("key_file");
    Tally tally(cfg.at("id_prefix"), cfg.at("n"));
    std::optional<EventSubscriber> sub;
    // The broker may still be starting: the bench starts it after this process.
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (!sub) {
      try {
        sub.emplace(cfg.at("uri"), tls, cfg.at("client_id"),
                    [&tally](const char* p, size_t n, int64_t t) { tally.on_message(p, n, t); });
      } catch (const std::exception&) {
        if (Clock::now() > deadline || g_stop) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    write_atomically(dir + "/ready", "");
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // The publisher is done; its acks may have come before the last arrivals here.
    const int64_t n = cfg.at("n");
    int64_t last = -1;
    auto since = Clock::now();
    while (tally.arrived() < n && Clock::now() - since < std::chrono::seconds(1)) {
      if (tally.arrived() != last) last = tally.arrived(), since = Clock::now();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    sub.reset();  // disconnected: no more callbacks into the tally
    write_atomically(dir + "/result.json", tally.report().dump() + "\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "arrival counter: %s\n", e.what());
    return 1;
  }
}

ArrivalCounter::ArrivalCounter(const Options& opt, const std::string& dir,
                               const test::MosquittoBroker& broker, const std::string& client_id,
                               const std::string& id_prefix, int64_t n)
    : dir_(dir), n_(n) {
  std::filesystem::create_directories(dir);
  const nlohmann::json cfg = {
      {"uri", broker.uri()},
      {"ca_file", broker.tls().ca_file},
      {"cert_file", broker.tls().client_cert_file},
      {"key_file", broker.tls().client_key_file},
      {"client_id", client_id},
      {"id_prefix", id_prefix},
      {"n", n},
  };
  test::write_file(dir + "/subscriber.json", cfg.dump(2) + "\n");
  child_.spawn({opt.self_exe, "--count-arrivals", dir}, dir + "/subscriber.log");
}

ArrivalCounter::~ArrivalCounter() { child_.stop(std::chrono::seconds(5)); }

void ArrivalCounter::wait_ready() {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!std::filesystem::exists(dir_ + "/ready")) {
    if (!child_.running() || Clock::now() > deadline) {
      throw std::runtime_error("the subscriber did not subscribe (log " + dir_ +
                               "/subscriber.log)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

ArrivalRate ArrivalCounter::finish() {
  auto status = child_.stop(std::chrono::seconds(15));
  ArrivalRate r;
  r.expected = n_;
  const std::string text = test::read_file(dir_ + "/result.json");
  if (text.empty()) {
    r.unmeasured = "the subscriber process reported nothing (" +
                   (status ? test::describe_wait_status(*status) : std::string("not started")) +
                   "; log " + dir_ + "/subscriber.log)";
    return r;
  }
  const auto j = nlohmann::json::parse(text);
  r.arrived = j.at("arrived");
  r.early = j.at("early");
  r.duplicates = j.at("duplicates");
  r.events = j.at("events");
  r.seconds = j.at("seconds");
  r.unmeasured = j.at("unmeasured");
  return r;
}

}  // namespace edgesync::bench
