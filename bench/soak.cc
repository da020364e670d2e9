// The soak: the real agent at a steady event rate for a long time while its hub broker is
// restarted and the agent itself is SIGKILLed on a schedule. Run with `bash bench/soak.sh`.
//
// Producers pace events over the ingest socket and resend every event not yet acknowledged
// (after a kill) with the same id, as a POS app does; the agent answers a resent id with its
// original seq. A hub subscriber with a persistent session counts distinct seqs. At the end:
// acknowledged, delivered, lost (acknowledged but never delivered: must be 0), duplicates, and
// the agent's RSS and open descriptors, sampled every 10 s, per agent life.
#include <dirent.h>
#include <mqtt/async_client.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/ingest_client.h"
#include "tests/harness/mosquitto_broker.h"
#include "tests/harness/net_util.h"
#include "tests/harness/proc_stats.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/tls_material.h"

namespace edgesync::soak {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using nlohmann::json;

struct Options {
  std::string agent;
  double minutes = 60;
  double rate = 500;  // events per second, all producers together
  int producers = 4;
  double broker_restart_s = -1;  // -1: 120 s scaled by minutes / 60
  double agent_kill_s = -1;      // -1: 600 s scaled by minutes / 60
  double sample_s = 10;
  double drain_s = 180;  // how long delivery may take after the producers stop
  std::string base;      // scratch directory base ("" = $TMPDIR or /tmp)
  bool keep = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "edgesync_soak: " << why << "\n"
            << "usage: edgesync_soak --agent PATH [--minutes M] [--rate R] [--producers N]\n"
            << "         [--broker-restart-s S] [--agent-kill-s S] [--sample-s S] [--drain-s S]\n"
            << "         [--dir BASE] [--keep]\n";
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--agent")
      o.agent = value();
    else if (a == "--minutes")
      o.minutes = std::stod(value());
    else if (a == "--rate")
      o.rate = std::stod(value());
    else if (a == "--producers")
      o.producers = std::stoi(value());
    else if (a == "--broker-restart-s")
      o.broker_restart_s = std::stod(value());
    else if (a == "--agent-kill-s")
      o.agent_kill_s = std::stod(value());
    else if (a == "--sample-s")
      o.sample_s = std::stod(value());
    else if (a == "--drain-s")
      o.drain_s = std::stod(value());
    else if (a == "--dir")
      o.base = value();
    else if (a == "--keep")
      o.keep = true;
    else
      usage("unknown option " + a);
  }
  if (o.agent.empty()) usage("--agent is required");
  if (o.minutes <= 0 || o.rate <= 0 || o.producers <= 0) usage("minutes, rate, producers > 0");
  const double scale = o.minutes / 60.0;
  if (o.broker_restart_s < 0) o.broker_restart_s = 120 * scale;
  if (o.agent_kill_s < 0) o.agent_kill_s = 600 * scale;
  return o;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int open_fds(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

// Event ids are "s<producer>-<n>": the key packs both, so the hub side needs no strings.
uint64_t key_of(uint64_t producer, uint64_t n) { return (producer << 40) | n; }
std::optional<uint64_t> key_of_id(const std::string& id) {
  unsigned long long k = 0, n = 0;
  if (std::sscanf(id.c_str(), "s%llu-%llu", &k, &n) != 2) return std::nullopt;
  return key_of(k, n);
}

// Seq -> key of the first arrival of each seq, and a duplicate count.
class HubCounter {
 public:
  void on_event(const std::string& payload) {
    json j = json::parse(payload, nullptr, false);
    if (!j.is_object() || !j.contains("seq") || !j["seq"].is_number_integer()) {
      ++malformed_;
      return;
    }
    const int64_t seq = j["seq"].get<int64_t>();
    const auto key = key_of_id(j.value("id", ""));
    std::lock_guard<std::mutex> lock(mu_);
    if (seq <= 0) {
      ++malformed_;
      return;
    }
    if (static_cast<size_t>(seq) >= by_seq_.size()) by_seq_.resize(seq * 2, 0);
    uint64_t& slot = by_seq_[seq];
    if (slot != 0) {
      ++duplicates_;
      return;
    }
    slot = key ? *key + 1 : 1;  // +1: 0 means not seen
    ++distinct_;
  }
  // The key delivered under seq (nullopt if none).
  std::optional<uint64_t> at(int64_t seq) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (seq <= 0 || static_cast<size_t>(seq) >= by_seq_.size() || by_seq_[seq] == 0) {
      return std::nullopt;
    }
    return by_seq_[seq] - 1;
  }
  size_t distinct() const {
    std::lock_guard<std::mutex> lock(mu_);
    return distinct_;
  }
  size_t duplicates() const {
    std::lock_guard<std::mutex> lock(mu_);
    return duplicates_;
  }
  size_t malformed() const { return malformed_.load(); }

 private:
  mutable std::mutex mu_;
  std::vector<uint64_t> by_seq_;
  size_t distinct_ = 0;
  size_t duplicates_ = 0;
  std::atomic<size_t> malformed_{0};
};

// Hub side: MQTT v5, persistent session, QoS 1, paho's automatic reconnect across restarts.
class Hub {
 public:
  Hub(const std::string& uri, const test::TlsMaterial& tls, HubCounter& counter)
      : client_(uri, "es-soak-hub-" + std::to_string(::getpid()),
                mqtt::create_options(MQTTVERSION_5)) {
    client_.set_message_callback([&counter](mqtt::const_message_ptr m) {
      if (m && m->get_topic().find("/events/") != std::string::npos) {
        counter.on_event(m->get_payload_str());
      }
    });
    client_.set_connected_handler([this](const std::string&) {
      try {
        client_.subscribe("edgesync/v1/#", 1);
      } catch (const std::exception&) {
        // The next reconnect subscribes again; the session normally keeps it anyway.
      }
    });
    auto ssl = mqtt::ssl_options_builder()
                   .trust_store(tls.ca_file)
                   .key_store(tls.client_cert_file)
                   .private_key(tls.client_key_file)
                   .enable_server_cert_auth(true)
                   .verify(true)
                   .finalize();
    mqtt::properties props;
    props.add(mqtt::property(mqtt::property::SESSION_EXPIRY_INTERVAL, 24 * 3600));
    auto opts = mqtt::connect_options_builder()
                    .mqtt_version(MQTTVERSION_5)
                    .clean_start(false)
                    .properties(props)
                    .keep_alive_interval(10s)
                    .connect_timeout(5s)
                    .automatic_reconnect(1s, 2s)
                    .ssl(ssl)
                    .finalize();
    client_.connect(opts)->wait();
    client_.subscribe("edgesync/v1/#", 1)->wait();
  }
  ~Hub() {
    try {
      client_.disconnect()->wait_for(5s);
    } catch (const std::exception&) {
    }
    client_.set_message_callback(nullptr);
    client_.set_connected_handler(nullptr);
  }

 private:
  mqtt::async_client client_;
};

// The agent as a child process; each start is a new life with its own samples.
struct Life {
  int number = 0;
  double started_s = 0;
  std::vector<int64_t> rss_kb;
  std::vector<int> fds;
};

class Agent {
 public:
  Agent(const Options& o, const std::string& dir, const test::MosquittoBroker& broker)
      : bin_(o.agent), dir_(dir) {
    json cfg = {
        {"device", {{"id", "pos-soak"}, {"store_id", "store-soak"}}},
        {"storage", {{"path", dir + "/outbox.db"}}},
        {"ingest", {{"socket", socket()}, {"contracts_dir", ""}, {"unknown_types", "accept"}}},
        {"hub",
         {{"uri", broker.uri()},
          {"ca_file", broker.tls().ca_file},
          {"cert_file", broker.tls().client_cert_file},
          {"key_file", broker.tls().client_key_file}}},
    };
    config_ = dir + "/agent.json";
    test::write_file(config_, cfg.dump(2) + "\n");
  }
  std::string socket() const { return dir_ + "/ingest.sock"; }
  std::string log() const { return dir_ + "/agent.log"; }
  void start() {
    child_ = std::make_unique<test::ChildProcess>();
    child_->spawn({bin_, "agent", "--config", config_}, log());
    const auto deadline = Clock::now() + 30s;
    while (!test::unix_socket_accepts(socket())) {
      if (!child_->running()) throw std::runtime_error("agent exited at start; see " + log());
      if (Clock::now() > deadline) throw std::runtime_error("agent not accepting; see " + log());
      std::this_thread::sleep_for(20ms);
    }
  }
  void kill9() {
    child_->signal(SIGKILL);
    child_->wait(10s);
  }
  void stop() { child_->stop(20s); }
  pid_t pid() const { return child_ ? child_->pid() : 0; }
  bool running() { return child_ && child_->running(); }

 private:
  std::string bin_;
  std::string dir_;
  std::string config_;
  std::unique_ptr<test::ChildProcess> child_;
};

// One paced producer. Events are sent in small pipelined batches on the schedule
// t0 + n / rate; a batch whose replies do not all come back (the agent was killed) is resent
// from its first unanswered event, same ids, once the socket accepts again.
class Producer {
 public:
  Producer(int index, double rate, std::string socket)
      : index_(index), rate_(rate), socket_(std::move(socket)) {}
  void run(const std::atomic<bool>& stop, Clock::time_point t0) {
    std::unique_ptr<test::IngestClient> conn;
    uint64_t next = 0;  // first event not yet acknowledged
    while (!stop.load()) {
      const auto due = static_cast<uint64_t>(seconds_since(t0) * rate_);
      if (next >= due) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      const uint64_t end = std::min(due, next + 64);
      try {
        if (!conn) conn = std::make_unique<test::IngestClient>(socket_);
        std::string batch;
        for (uint64_t n = next; n < end; ++n) batch += line(n);
        conn->write_all(batch);
        for (; next < end; ++next) {
          auto reply = conn->read_line(30s);
          if (!reply) throw std::runtime_error("no reply");
          json r = json::parse(*reply, nullptr, false);
          if (!r.is_object() || r.value("ok", false) != true || !r.contains("seq")) {
            std::lock_guard<std::mutex> lock(mu_);
            if (rejected_.size() < 5) rejected_.push_back(*reply);
            throw std::runtime_error("rejected");
          }
          std::lock_guard<std::mutex> lock(mu_);
          acked_seq_.push_back(r["seq"].get<int64_t>());
          if (r.value("duplicate", false)) ++resent_duplicates_;
        }
      } catch (const std::exception&) {
        // The agent is gone (or restarting): wait for it and resend from `next`.
        conn.reset();
        ++reconnects_;
        while (!stop.load() && !test::unix_socket_accepts(socket_)) {
          std::this_thread::sleep_for(50ms);
        }
      }
    }
  }
  // acked_seq()[n] is the seq acknowledged for event n.
  std::vector<int64_t> acked_seq() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_seq_;
  }
  size_t acked() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_seq_.size();
  }
  size_t resent_duplicates() const {
    std::lock_guard<std::mutex> lock(mu_);
    return resent_duplicates_;
  }
  size_t reconnects() const { return reconnects_; }
  std::vector<std::string> rejected() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rejected_;
  }
  int index() const { return index_; }

 private:
  std::string line(uint64_t n) const {
    return R"({"id":"s)" + std::to_string(index_) + "-" + std::to_string(n) +
           R"(","type":"pos.sale","data":{"store_total_cents":)" + std::to_string(n * 7 % 100000) +
           R"(,"items":[{"sku":"A-)" + std::to_string(n % 977) + R"(","qty":1}]}})" + "\n";
  }
  int index_;
  double rate_;
  std::string socket_;
  mutable std::mutex mu_;
  std::vector<int64_t> acked_seq_;
  size_t resent_duplicates_ = 0;
  size_t reconnects_ = 0;
  std::vector<std::string> rejected_;
};

std::string life_line(const Life& l) {
  auto max_of = [](const auto& v) {
    auto m = v.front();
    for (auto x : v) m = std::max(m, x);
    return m;
  };
  std::string s = "  life " + std::to_string(l.number) + " (from " +
                  std::to_string(static_cast<int>(l.started_s)) + " s, " +
                  std::to_string(l.rss_kb.size()) + " samples): ";
  if (l.rss_kb.empty()) return s + "no samples";
  s += "RSS KiB first/max/last " + std::to_string(l.rss_kb.front()) + "/" +
       std::to_string(max_of(l.rss_kb)) + "/" + std::to_string(l.rss_kb.back()) +
       ", fds first/max/last " + std::to_string(l.fds.front()) + "/" +
       std::to_string(max_of(l.fds)) + "/" + std::to_string(l.fds.back());
  return s;
}

// Flat: within a life, the second half of the samples stays within 25% + 8 MiB of the first
// half's peak (RSS) and within 8 descriptors of the first half's peak.
bool life_flat(const Life& l) {
  if (l.rss_kb.size() < 4) return true;
  const size_t half = l.rss_kb.size() / 2;
  int64_t rss1 = 0, rss2 = 0;
  int fd1 = 0, fd2 = 0;
  for (size_t i = 0; i < l.rss_kb.size(); ++i) {
    (i < half ? rss1 : rss2) = std::max(i < half ? rss1 : rss2, l.rss_kb[i]);
    (i < half ? fd1 : fd2) = std::max(i < half ? fd1 : fd2, l.fds[i]);
  }
  return rss2 <= rss1 * 5 / 4 + 8 * 1024 && fd2 <= fd1 + 8;
}

int run(const Options& o) {
  test::TempDir dir("es-soak", o.base, o.keep);
  const std::string d = dir.path().string();
  std::cout << "soak: " << o.minutes << " min at " << o.rate << " events/s (" << o.producers
            << " producers), broker restart every " << o.broker_restart_s
            << " s, agent SIGKILL every " << o.agent_kill_s << " s, samples every " << o.sample_s
            << " s; dir " << d << std::endl;

  const auto tls = test::TlsMaterial::generate(d);
  test::BrokerOptions bo;
  bo.log_information = false;
  test::MosquittoBroker broker(d, tls, bo);
  broker.start();
  HubCounter counter;
  Hub hub(broker.uri(), tls, counter);
  Agent agent(o, d, broker);
  agent.start();

  std::vector<Life> lives{Life{1, 0, {}, {}}};
  std::vector<std::unique_ptr<Producer>> producers;
  std::vector<std::thread> threads;
  std::atomic<bool> stop{false};
  const auto t0 = Clock::now();
  for (int k = 0; k < o.producers; ++k) {
    producers.push_back(std::make_unique<Producer>(k, o.rate / o.producers, agent.socket()));
  }
  for (auto& p : producers) {
    threads.emplace_back([&, p = p.get()] { p->run(stop, t0); });
  }
  auto acked_total = [&] {
    size_t n = 0;
    for (auto& p : producers) n += p->acked();
    return n;
  };

  const double duration_s = o.minutes * 60;
  double next_broker = o.broker_restart_s, next_kill = o.agent_kill_s, next_sample = o.sample_s;
  int broker_restarts = 0, agent_kills = 0;
  while (seconds_since(t0) < duration_s) {
    std::this_thread::sleep_for(200ms);
    const double now = seconds_since(t0);
    if (now >= next_sample) {
      next_sample += o.sample_s;
      lives.back().rss_kb.push_back(test::proc_status_kb(agent.pid(), "VmRSS"));
      lives.back().fds.push_back(open_fds(agent.pid()));
      std::cout << "[" << static_cast<int>(now) << " s] acked " << acked_total() << ", delivered "
                << counter.distinct() << ", RSS " << lives.back().rss_kb.back() << " KiB, fds "
                << lives.back().fds.back() << std::endl;
    }
    if (o.broker_restart_s > 0 && now >= next_broker) {
      next_broker += o.broker_restart_s;
      broker.restart();
      ++broker_restarts;
    }
    if (o.agent_kill_s > 0 && now >= next_kill && now + 1 < duration_s) {
      next_kill += o.agent_kill_s;
      agent.kill9();
      ++agent_kills;
      agent.start();
      lives.push_back(Life{static_cast<int>(lives.size()) + 1, seconds_since(t0), {}, {}});
    }
  }
  stop = true;
  for (auto& t : threads) t.join();
  const double ran_s = seconds_since(t0);

  // Every acknowledged event, by seq, with the key it was acknowledged for.
  std::vector<std::pair<int64_t, uint64_t>> acked;
  for (auto& p : producers) {
    const auto seqs = p->acked_seq();
    for (size_t n = 0; n < seqs.size(); ++n) acked.emplace_back(seqs[n], key_of(p->index(), n));
  }
  auto count_lost = [&] {
    size_t lost = 0;
    for (const auto& [seq, key] : acked) {
      auto got = counter.at(seq);
      if (!got || *got != key) ++lost;
    }
    return lost;
  };
  const auto drain_t0 = Clock::now();
  size_t lost = count_lost();
  while (lost > 0 && seconds_since(drain_t0) < o.drain_s) {
    std::this_thread::sleep_for(1s);
    lost = count_lost();
  }
  const double drain_s = seconds_since(drain_t0);
  lives.back().rss_kb.push_back(test::proc_status_kb(agent.pid(), "VmRSS"));
  lives.back().fds.push_back(open_fds(agent.pid()));
  agent.stop();

  size_t resent = 0, reconnects = 0;
  for (auto& p : producers) {
    resent += p->resent_duplicates();
    reconnects += p->reconnects();
  }
  bool flat = true;
  for (const auto& l : lives) flat = flat && life_flat(l);
  const bool pass = lost == 0 && flat && counter.malformed() == 0;

  std::cout << "\n== soak result ==\n"
            << "ran " << static_cast<int>(ran_s) << " s; broker restarts " << broker_restarts
            << ", agent SIGKILLs " << agent_kills << "\n"
            << "events acknowledged " << acked.size() << " (" << acked.size() / ran_s << "/s of "
            << o.rate << "/s asked)\n"
            << "delivered (distinct seqs) " << counter.distinct() << "\n"
            << "lost (acknowledged, not delivered) " << lost << "\n"
            << "duplicates at the hub " << counter.duplicates() << "\n"
            << "resent after a kill and answered as duplicate " << resent
            << "; producer reconnects " << reconnects << "\n"
            << "malformed hub payloads " << counter.malformed() << "\n"
            << "drain after the producers stopped " << drain_s << " s\n"
            << "agent RSS and open fds per life (sampled every " << o.sample_s << " s):\n";
  for (const auto& l : lives)
    std::cout << life_line(l) << (life_flat(l) ? "" : "  NOT FLAT") << "\n";
  for (auto& p : producers) {
    for (const auto& r : p->rejected()) std::cout << "rejected: " << r << "\n";
  }
  std::cout << (pass ? "PASS" : "FAIL") << std::endl;
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace edgesync::soak

int main(int argc, char** argv) {
  try {
    return edgesync::soak::run(edgesync::soak::parse(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "edgesync_soak: " << e.what() << "\n";
    return 1;
  }
}
