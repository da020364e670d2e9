// edgesync benchmark: this machine's raw limits (fdatasync, SQLite WAL synchronous=FULL, a bare
// paho MQTT v5 TLS publisher) and the real agent's figures measured against them, in one run.
//
//   edgesync_bench --agent PATH [--quick] [--dir BASE] [--keep]
//
// Everything runs under a scratch directory below BASE ($TMPDIR or /tmp by default): the
// databases, the fdatasync file, the broker config and logs, the agent's socket. The exit code
// is 0 whenever the bench could run; targets are reported as PASS/MISS, not asserted.
#include <fcntl.h>
#include <mqtt/async_client.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/harness.h"

namespace edgesync::bench {
namespace {

struct Options {
  std::string agent_bin;
  std::string base_dir;
  bool quick = false;
  bool keep = false;
  bool raw_only = false;     // stop after the raw limits (for repeated runs)
  bool ingest_only = false;  // stop after the ingest cases (for repeated runs)
  int load_producers = 0;    // --load N: only N producers for ingest_seconds (for profiling)
  bool hub_down = false;     // --load with the broker stopped
  // Durations (s) and counts; --quick shrinks them.
  double raw_seconds = 3;
  double ingest_seconds = 6;  // per producer case, split into `rounds` slices
  int rounds = 3;
  int64_t paho_messages = 30000;    // per delivery round
  int64_t delivery_backlog = 30000;  // per delivery round
  int64_t backlog_small = 10000;
  int64_t backlog_large = 100000;
  double idle_seconds = 5;
};

// ------------------------------------------------------------------------------------------
// Event shapes shared by every measurement.

constexpr const char* kDevice = "pos-01";
constexpr const char* kStore = "store-042";
constexpr const char* kType = "sale.completed";
constexpr const char* kOccurredAt = "2024-05-01T12:34:56.789Z";
constexpr size_t kRequestBytes = 300;

// The `data` object of a ~300-byte request line (padded so the whole line is kRequestBytes with
// an id of the bench's usual length).
std::string event_data(size_t id_len) {
  std::string data =
      "{\"register\":7,\"cashier\":\"c-0142\",\"items\":[{\"sku\":\"4006381333931\",\"qty\":2,"
      "\"price_cents\":1299},{\"sku\":\"5012345678900\",\"qty\":1,\"price_cents\":450}],"
      "\"total_cents\":3048,\"currency\":\"EUR\",\"note\":\"";
  const std::string head = std::string("{\"id\":\"\",\"type\":\"") + kType +
                           "\",\"occurred_at\":\"" + kOccurredAt + "\",\"data\":";
  size_t fixed = head.size() + id_len + data.size() + 3;  // "\"}" + "}"
  if (fixed < kRequestBytes) data.append(kRequestBytes - fixed, 'x');
  data += "\"}";
  return data;
}

struct EventFactory {
  std::string prefix;  // unique per run and case
  std::string data = event_data(20);
  std::string line(int64_t thread, int64_t i) const {
    char id[96];
    std::snprintf(id, sizeof id, "%s-%03" PRId64 "-%09" PRId64, prefix.c_str(), thread, i);
    std::string out;
    out.reserve(kRequestBytes + 8);
    out.append("{\"id\":\"").append(id).append("\",\"type\":\"").append(kType);
    out.append("\",\"occurred_at\":\"").append(kOccurredAt).append("\",\"data\":");
    out.append(data).append("}\n");
    return out;
  }
};

// The payload the agent publishes for such an event (agent/hub_message.cc's layout), for the
// bare paho publisher.
std::string hub_payload(const std::string& id, int64_t seq, const std::string& data) {
  return "{\"id\":\"" + id + "\",\"seq\":" + std::to_string(seq) + ",\"type\":\"" + kType +
         "\",\"device_id\":\"" + kDevice + "\",\"store_id\":\"" + kStore +
         "\",\"occurred_at\":\"" + kOccurredAt +
         "\",\"received_at\":\"2024-05-01T12:34:57.001Z\",\"data\":" + data + "}";
}

// ------------------------------------------------------------------------------------------
// Raw limits.

struct SyncResult {
  double per_s = 0, p50_ms = 0, p99_ms = 0;
  int64_t n = 0;
};

SyncResult raw_fdatasync(const std::string& path, double seconds) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  std::string rec(300, 'r');
  std::vector<double> lat;
  auto t0 = Clock::now();
  while (seconds_since(t0) < seconds) {
    auto a = Clock::now();
    if (::write(fd, rec.data(), rec.size()) != static_cast<ssize_t>(rec.size()) ||
        ::fdatasync(fd) != 0) {
      ::close(fd);
      throw std::runtime_error("write/fdatasync failed on " + path);
    }
    lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
  }
  double elapsed = seconds_since(t0);
  ::close(fd);
  SyncResult r;
  r.n = static_cast<int64_t>(lat.size());
  r.per_s = r.n / elapsed;
  r.p50_ms = percentile(lat, 0.50);
  r.p99_ms = percentile(lat, 0.99);
  return r;
}

void sql(sqlite3* db, const char* text) {
  char* err = nullptr;
  if (sqlite3_exec(db, text, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error(std::string("sqlite: ") + text + ": " + m);
  }
}

struct SqliteResult {
  double rows_per_s = 0;
  int64_t rows = 0;
  double elapsed_s = 0;
  size_t row_bytes = 0;
  double cpu_s = 0;  // the inserting thread's CPU (user + system)

  void merge(const SqliteResult& o) {
    rows += o.rows;
    cpu_s += o.cpu_s;
    elapsed_s += o.elapsed_s;
    row_bytes = o.row_bytes;
    rows_per_s = rows / elapsed_s;
  }
};

double thread_cpu_s() {
  struct rusage u {};
  ::getrusage(RUSAGE_THREAD, &u);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// The agent's events table and pragmas (storage/schema.cc, storage/outbox.cc), one prepared
// INSERT per row, `rows_per_txn` rows per BEGIN IMMEDIATE ... COMMIT.
SqliteResult raw_sqlite(const std::string& path, int rows_per_txn, double seconds,
                        int64_t max_rows) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("sqlite open " + path);
  sql(db, "PRAGMA journal_mode=WAL");
  sql(db, "PRAGMA synchronous=FULL");
  sql(db, "PRAGMA journal_size_limit=67108864");
  sql(db, "PRAGMA wal_autocheckpoint=1000");
  sql(db,
      "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
      " type TEXT NOT NULL, occurred_at TEXT, received_ms INTEGER NOT NULL, data BLOB NOT NULL)");
  sqlite3_stmt* ins = nullptr;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO events(seq, id, type, occurred_at, received_ms, data) "
                         "VALUES(?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING",
                         -1, &ins, nullptr) != SQLITE_OK) {
    throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
  }
  const std::string data = event_data(20);
  SqliteResult r;
  char id[64];
  std::snprintf(id, sizeof id, "sq%04d-%03d-%09d", rows_per_txn, 0, 0);
  r.row_bytes = 8 + std::strlen(id) + std::strlen(kType) + std::strlen(kOccurredAt) + 8 + data.size();
  int64_t seq = 1;
  const double cpu0 = thread_cpu_s();
  auto t0 = Clock::now();
  while (seconds_since(t0) < seconds && r.rows < max_rows) {
    sql(db, "BEGIN IMMEDIATE");
    for (int i = 0; i < rows_per_txn; ++i, ++seq) {
      std::snprintf(id, sizeof id, "sq%04d-%03d-%09" PRId64, rows_per_txn, 0, seq);
      sqlite3_bind_int64(ins, 1, seq);
      sqlite3_bind_text(ins, 2, id, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(ins, 3, kType, -1, SQLITE_STATIC);
      sqlite3_bind_text(ins, 4, kOccurredAt, -1, SQLITE_STATIC);
      sqlite3_bind_int64(ins, 5, 1714566896789 + seq);
      sqlite3_bind_blob(ins, 6, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
      if (sqlite3_step(ins) != SQLITE_DONE) {
        throw std::runtime_error(std::string("sqlite insert: ") + sqlite3_errmsg(db));
      }
      sqlite3_reset(ins);
    }
    sql(db, "COMMIT");
    r.rows += rows_per_txn;
  }
  r.elapsed_s = seconds_since(t0);
  r.rows_per_s = r.rows / r.elapsed_s;
  r.cpu_s = thread_cpu_s() - cpu0;
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return r;
}

// A bare paho.mqtt.cpp publisher: MQTT v5, QoS 1, TLS, no persistence, `window` in flight,
// content type and user properties id/seq as the agent sends them.
struct PahoResult {
  double msgs_per_s = 0;
  int64_t n = 0;
  int64_t failures = 0;
  size_t payload_bytes = 0;
  double elapsed_s = 0;

  void merge(const PahoResult& o) {
    n += o.n;
    failures += o.failures;
    payload_bytes = o.payload_bytes;
    elapsed_s += o.elapsed_s;
    msgs_per_s = n / elapsed_s;
  }
};

// Completions arrive on paho's thread. It wakes the publishing thread at most once per wait (a
// wake-up per PUBACK would cost paho's receive thread a futex call each), and the woken thread
// refills the window in one burst, as the agent's publisher does.
class CountingListener : public mqtt::iaction_listener {
 public:
  void on_success(const mqtt::token&) override { done(false); }
  void on_failure(const mqtt::token&) override { done(true); }
  void wait_below(int64_t window) {
    std::unique_lock<std::mutex> lock(mu_);
    while (inflight_ >= window) {
      waiting_ = true;
      notified_ = false;
      cv_.wait(lock);
      waiting_ = false;
    }
    ++inflight_;
  }
  void wait_zero() {
    std::unique_lock<std::mutex> lock(mu_);
    while (inflight_ > 0) {
      waiting_ = true;
      notified_ = false;
      cv_.wait(lock);
      waiting_ = false;
    }
  }
  int64_t failures() const { return failures_.load(); }

 private:
  void done(bool failed) {
    if (failed) ++failures_;
    bool wake = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --inflight_;
      if (waiting_ && !notified_) wake = notified_ = true;
    }
    if (wake) cv_.notify_one();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t inflight_ = 0;
  bool waiting_ = false;
  bool notified_ = false;
  std::atomic<int64_t> failures_{0};
};

PahoResult raw_paho(const Broker& broker, int64_t n, int64_t window) {
  mqtt::create_options create(MQTTVERSION_5);
  create.set_send_while_disconnected(false);
  mqtt::async_client client(broker.uri(), "edgesync-bench-bare", create, nullptr);
  auto ssl = mqtt::ssl_options_builder()
                 .trust_store(broker.tls().ca_file)
                 .key_store(broker.tls().client_cert)
                 .private_key(broker.tls().client_key)
                 .enable_server_cert_auth(true)
                 .verify(true)
                 .finalize();
  auto conn = mqtt::connect_options_builder()
                  .mqtt_version(MQTTVERSION_5)
                  .clean_start(true)
                  .keep_alive_interval(std::chrono::seconds(30))
                  .ssl(std::move(ssl))
                  .finalize();
  client.connect(conn)->wait();
  const std::string topic =
      std::string("edgesync/v1/") + kStore + "/" + kDevice + "/events/" + kType;
  const std::string data = event_data(20);
  CountingListener listener;
  PahoResult r;
  char id[64];
  auto t0 = Clock::now();
  for (int64_t seq = 1; seq <= n; ++seq) {
    std::snprintf(id, sizeof id, "paho-%03d-%09" PRId64, 0, seq);
    std::string payload = hub_payload(id, seq, data);
    r.payload_bytes = payload.size();
    mqtt::properties props;
    props.add({mqtt::property::CONTENT_TYPE, "application/json"});
    props.add({mqtt::property::USER_PROPERTY, "id", std::string(id)});
    props.add({mqtt::property::USER_PROPERTY, "seq", std::to_string(seq)});
    auto msg = mqtt::message::create(topic, payload.data(), payload.size(), 1, false, props);
    listener.wait_below(window);
    client.publish(msg, nullptr, listener);
  }
  listener.wait_zero();
  double elapsed = seconds_since(t0);
  r.n = n;
  r.failures = listener.failures();
  r.elapsed_s = elapsed;
  r.msgs_per_s = n / elapsed;
  client.disconnect()->wait();
  return r;
}

// ------------------------------------------------------------------------------------------
// The agent as a child process.

class Agent {
 public:
  Agent(const Options& opt, const std::string& dir, const Broker& broker)
      : opt_(opt), dir_(dir) {
    nlohmann::json c = {
        {"device", {{"id", kDevice}, {"store_id", kStore}}},
        {"storage", {{"path", dir + "/outbox.db"}}},
        {"ingest", {{"socket", dir + "/ingest.sock"}}},
        {"hub",
         {{"uri", broker.uri()},
          {"ca_file", broker.tls().ca_file},
          {"cert_file", broker.tls().client_cert},
          {"key_file", broker.tls().client_key},
          {"keepalive_s", 30},
          {"max_inflight", 64}}},
        // Short backoff so the agent finds the hub soon after it comes back.
        {"retry", {{"initial_ms", 50}, {"max_ms", 200}}},
    };
    config_ = dir + "/agent.json";
    write_file(config_, c.dump(2) + "\n");
  }
  ~Agent() { child_.stop(); }

  void start() {
    child_.spawn({opt_.agent_bin, "agent", "--config", config_}, dir_ + "/agent.log");
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (!unix_socket_accepts(socket())) {
      if (!child_.running() || Clock::now() > deadline) {
        throw std::runtime_error("agent did not start; log:\n" + read_file(dir_ + "/agent.log"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  void stop() { child_.stop(); }
  pid_t pid() const { return child_.pid(); }
  std::string socket() const { return dir_ + "/ingest.sock"; }
  std::string db() const { return dir_ + "/outbox.db"; }

  // `edgesync status --config F --json`.
  nlohmann::json status() const {
    auto r = run_command({opt_.agent_bin, "status", "--config", config_, "--json"});
    try {
      return nlohmann::json::parse(r.out);
    } catch (const std::exception&) {
      throw std::runtime_error("edgesync status --json: unexpected output: " + r.out);
    }
  }
  bool wait_hub_connected(std::chrono::seconds timeout) const {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto s = status();
      if (s["hub"]["state"] == "connected") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

 private:
  const Options& opt_;
  std::string dir_;
  std::string config_;
  Child child_;
};

// Cheap poll of the persisted delivered watermark (what `edgesync status` reports as
// outbox.last_delivered_seq), without starting a process ten times a second.
class WatermarkReader {
 public:
  explicit WatermarkReader(const std::string& db_path) {
    if (sqlite3_open_v2(db_path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      throw std::runtime_error("cannot open " + db_path + " read-only");
    }
    sqlite3_busy_timeout(db_, 1000);
    if (sqlite3_prepare_v2(db_, "SELECT value FROM state WHERE key = 'delivered_seq'", -1, &q_,
                           nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("watermark query: ") + sqlite3_errmsg(db_));
    }
  }
  ~WatermarkReader() {
    sqlite3_finalize(q_);
    sqlite3_close(db_);
  }
  int64_t read() {
    int64_t v = -1;
    if (sqlite3_step(q_) == SQLITE_ROW) v = sqlite3_column_int64(q_, 0);
    sqlite3_reset(q_);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* q_ = nullptr;
};

struct IngestResult {
  int producers = 0;
  int64_t accepted = 0;
  int64_t errors = 0;
  double elapsed_s = 0;
  double per_s = 0, p50_ms = 0, p99_ms = 0;
  std::string first_error;
  std::vector<double> lat_ms;
  // CPU (utime+stime, in clock ticks) used during the case by the agent, by the producers (this
  // process) and by the broker: where the cores went.
  int64_t agent_ticks = 0, producer_ticks = 0, broker_ticks = 0;

  // Adds another slice of the same case.
  void merge(IngestResult&& o) {
    producers = o.producers;
    accepted += o.accepted;
    agent_ticks += o.agent_ticks;
    producer_ticks += o.producer_ticks;
    broker_ticks += o.broker_ticks;
    errors += o.errors;
    elapsed_s += o.elapsed_s;
    if (first_error.empty()) first_error = o.first_error;
    lat_ms.insert(lat_ms.end(), o.lat_ms.begin(), o.lat_ms.end());
    per_s = accepted / elapsed_s;
    p50_ms = percentile(lat_ms, 0.50);
    p99_ms = percentile(lat_ms, 0.99);
  }
};

// Flushes every dirty page to disk and lets the device go idle, so the next measurement does not
// pay for the previous one's write-back.
void settle() {
  ::sync();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

// `producers` threads, each with its own connection, one request at a time.
IngestResult ingest_closed_loop(const std::string& socket, int producers, double seconds,
                                const std::string& prefix) {
  EventFactory f{prefix};
  std::vector<std::vector<double>> lat(producers);
  std::vector<int64_t> errors(producers, 0);
  std::vector<std::string> first_error(producers);
  std::vector<std::unique_ptr<IngestClient>> clients;
  for (int t = 0; t < producers; ++t) clients.push_back(std::make_unique<IngestClient>(socket));
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < producers; ++t) {
    threads.emplace_back([&, t] {
      lat[t].reserve(1 << 16);
      while (!go.load()) std::this_thread::yield();
      for (int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        std::string line = f.line(t, i);
        auto a = Clock::now();
        try {
          clients[t]->write_all(line);
          std::string reply = clients[t]->read_line();
          double ms = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
          if (reply.rfind("{\"ok\":true", 0) == 0) {
            lat[t].push_back(ms);
          } else {
            if (errors[t]++ == 0) first_error[t] = reply;
          }
        } catch (const std::exception& e) {
          if (errors[t]++ == 0) first_error[t] = e.what();
          break;
        }
      }
    });
  }
  auto t0 = Clock::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  double elapsed = seconds_since(t0);
  IngestResult r;
  r.producers = producers;
  std::vector<double> all;
  for (int t = 0; t < producers; ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    r.errors += errors[t];
    if (r.first_error.empty()) r.first_error = first_error[t];
  }
  r.accepted = static_cast<int64_t>(all.size());
  r.elapsed_s = elapsed;
  r.per_s = r.accepted / elapsed;
  r.p50_ms = percentile(all, 0.50);
  r.p99_ms = percentile(all, 0.99);
  r.lat_ms = std::move(all);
  return r;
}

int64_t self_cpu_ticks() {
  struct rusage u {};
  ::getrusage(RUSAGE_SELF, &u);
  auto us = [](const timeval& t) { return int64_t{t.tv_sec} * 1000000 + t.tv_usec; };
  return (us(u.ru_utime) + us(u.ru_stime)) * ::sysconf(_SC_CLK_TCK) / 1000000;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// ingest_closed_loop() with the CPU each side used.
IngestResult ingest_case(const Agent& agent, Broker& broker, int producers, double seconds,
                         const std::string& prefix) {
  const bool hub = broker.running();
  const int64_t a0 = proc_cpu_ticks(agent.pid()), p0 = self_cpu_ticks();
  const int64_t b0 = hub ? proc_cpu_ticks(broker.pid()) : 0;
  IngestResult r = ingest_closed_loop(agent.socket(), producers, seconds, prefix);
  r.agent_ticks = proc_cpu_ticks(agent.pid()) - a0;
  r.producer_ticks = self_cpu_ticks() - p0;
  r.broker_ticks = hub ? proc_cpu_ticks(broker.pid()) - b0 : 0;
  return r;
}

// "agent 41 us, producers 22 us, broker 9 us CPU per event"
std::string cpu_per_event(const IngestResult& r) {
  if (r.accepted == 0) return "";
  const double us_per_tick = 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  auto per = [&](int64_t ticks) { return fmt("%.0f", ticks * us_per_tick / r.accepted); };
  return "CPU/event: agent " + per(r.agent_ticks) + " us, producers " + per(r.producer_ticks) +
         " us, broker " + per(r.broker_ticks) + " us";
}

// Fills the outbox fast: `connections` pipelined producers, `depth` requests per write.
double fill_backlog(const std::string& socket, int64_t n, const std::string& prefix,
                    int connections = 8, int depth = 256) {
  EventFactory f{prefix};
  std::atomic<int64_t> errors{0};
  std::string first_error;
  std::mutex mu;
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      int64_t mine = n / connections + (t < n % connections ? 1 : 0);
      try {
        IngestClient c(socket);
        std::string chunk;
        for (int64_t i = 0; i < mine;) {
          int64_t k = std::min<int64_t>(depth, mine - i);
          chunk.clear();
          for (int64_t j = 0; j < k; ++j) chunk += f.line(t, i + j);
          c.write_all(chunk);
          for (int64_t j = 0; j < k; ++j) {
            std::string reply = c.read_line();
            if (reply.rfind("{\"ok\":true", 0) != 0 && errors++ == 0) {
              std::lock_guard<std::mutex> lock(mu);
              first_error = reply;
            }
          }
          i += k;
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mu);
        if (errors++ == 0) first_error = e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  if (errors > 0) {
    throw std::runtime_error("backlog fill: " + std::to_string(errors.load()) +
                             " requests failed, first: " + first_error);
  }
  return n / seconds_since(t0);
}

struct BacklogResult {
  int64_t events = 0;
  double fill_per_s = 0;
  int64_t rss_kb_backlog = 0;  // VmRSS with the backlog waiting, hub down
  double drain_s = 0;          // hub start -> pending == 0
  double deliver_per_s = 0;    // steady part of the drain (10% -> 90% of the backlog)
  int64_t deliver_events = 0;  // the events and seconds that rate is made of
  double deliver_s = 0;
  int64_t hwm_kb = 0;          // VmHWM after the drain
  int64_t rss_kb_after = 0;    // VmRSS after the drain
  int64_t idle_ticks = -1;     // utime+stime over idle_seconds, hub connected, no events
  double idle_seconds = 0;
  std::string status_line;
};

BacklogResult backlog_run(const Options& opt, const std::string& root, const std::string& name,
                          Broker& broker, int64_t n, bool measure_idle) {
  std::string dir = root + "/" + name;
  std::filesystem::create_directories(dir);
  if (broker.running()) broker.stop();
  Agent agent(opt, dir, broker);
  agent.start();
  BacklogResult r;
  r.events = n;
  r.fill_per_s = fill_backlog(agent.socket(), n, name);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  r.rss_kb_backlog = proc_status_kb(agent.pid(), "VmRSS");

  WatermarkReader wm(agent.db());
  const int64_t lo = n / 10, hi = n - n / 10;
  double t_lo = -1, t_hi = -1;
  int64_t d_lo = 0, d_hi = 0;
  auto t0 = Clock::now();
  broker.start();
  while (true) {
    int64_t d = wm.read();
    double t = seconds_since(t0);
    if (t_lo < 0 && d >= lo) t_lo = t, d_lo = d;
    if (t_hi < 0 && d >= hi) t_hi = t, d_hi = d;
    if (d >= n) {
      r.drain_s = t;
      break;
    }
    if (t > 600) throw std::runtime_error("backlog not drained after 600 s (delivered " +
                                          std::to_string(d) + " of " + std::to_string(n) + ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (t_hi > t_lo && t_lo >= 0) {
    r.deliver_events = d_hi - d_lo;
    r.deliver_s = t_hi - t_lo;
    r.deliver_per_s = r.deliver_events / r.deliver_s;
  }
  auto st = agent.status();
  r.status_line = "pending=" + st["outbox"]["pending"].dump() +
                  " last_delivered_seq=" + st["outbox"]["last_delivered_seq"].dump() +
                  " hub=" + st["hub"]["state"].get<std::string>();
  if (st["outbox"]["pending"] != 0) {
    throw std::runtime_error("edgesync status disagrees with the drained watermark: " +
                             st.dump());
  }
  r.hwm_kb = proc_status_kb(agent.pid(), "VmHWM");
  r.rss_kb_after = proc_status_kb(agent.pid(), "VmRSS");
  if (measure_idle) {
    // Let the watermark flush and any last acks settle first.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    int64_t a = proc_cpu_ticks(agent.pid());
    auto ti = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(opt.idle_seconds));
    int64_t b = proc_cpu_ticks(agent.pid());
    r.idle_seconds = seconds_since(ti);
    r.idle_ticks = b - a;
  }
  agent.stop();
  return r;
}

// ------------------------------------------------------------------------------------------
// Report.

void print_row(const std::string& a, const std::string& b, const std::string& c = "") {
  std::printf("  %-58s %16s  %s\n", a.c_str(), b.c_str(), c.c_str());
}

struct Target {
  std::string what;
  std::string measured;
  std::string goal;
  bool pass;
};

void progress(const std::string& what) {
  std::fprintf(stderr, "  ... %s\n", what.c_str());
}

// Warm-up events delivered, then `events` more through agent.socket(): a store's agent
// has delivered more than storage.keep_delivered (default 10000) events within hours, and from
// then on every commit also prunes history.
void warm_up(const Agent& agent, int64_t events) {
  fill_backlog(agent.socket(), events, "warm");
  WatermarkReader wm(agent.db());
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (wm.read() < events) {
    if (Clock::now() > deadline) throw std::runtime_error("warm-up events not delivered");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// --load N: one producer case on its own, for a profiler attached to the agent (its pid is
// printed, then the load starts after 2 s).
int load_only(const Options& opt, TempDir& root, Broker& broker) {
  std::string dir = root.file("load");
  std::filesystem::create_directories(dir);
  Agent agent(opt, dir, broker);
  agent.start();
  if (!agent.wait_hub_connected(std::chrono::seconds(20))) {
    throw std::runtime_error("agent did not connect to the hub");
  }
  warm_up(agent, 12000);
  if (opt.hub_down) broker.stop();
  std::printf("agent pid %d, broker pid %d; load starts in 2 s\n", agent.pid(),
              opt.hub_down ? 0 : broker.pid());
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  settle();
  auto r = ingest_case(agent, broker, opt.load_producers, opt.ingest_seconds, "load");
  std::printf("%d producers%s: %.0f ev/s, p50 %.2f ms, p99 %.2f ms, %s\n", r.producers,
              opt.hub_down ? " (hub down)" : "", r.per_s, r.p50_ms, r.p99_ms,
              cpu_per_event(r).c_str());
  return 0;
}

int run(Options opt) {
  struct utsname u {};
  ::uname(&u);
  const std::string fs = filesystem_type(opt.base_dir);
  std::printf("edgesync bench%s: %s %s, %ld CPUs, scratch dir %s (%s)\n",
              opt.quick ? " (--quick)" : "", u.sysname, u.release,
              ::sysconf(_SC_NPROCESSORS_ONLN), opt.base_dir.c_str(), fs.c_str());
  if (fs == "tmpfs") {
    std::printf("  WARNING: the scratch dir is on tmpfs: fdatasync is free there, so the durability\n"
                "  figures are meaningless. Use --dir on the disk the outbox will live on.\n");
  }
  double load_start[3] = {0, 0, 0}, load_end[3] = {0, 0, 0};
  ::getloadavg(load_start, 3);
  std::fflush(stdout);
  TempDir root(opt.base_dir, opt.keep);
  if (opt.keep) std::printf("  keeping %s\n", root.path().c_str());

  std::filesystem::create_directories(root.file("tls"));
  std::filesystem::create_directories(root.file("broker"));
  progress("generating TLS material, starting mosquitto");
  Tls tls = Tls::generate(root.file("tls"));
  Broker broker(root.file("broker"), tls);
  broker.start();
  if (opt.load_producers > 0) return load_only(opt, root, broker);

  // ---- raw limits measured on their own
  progress("fdatasync loop");
  auto fsync = raw_fdatasync(root.file("fdatasync.dat"), opt.raw_seconds);
  if (opt.raw_only) {
    auto paho = raw_paho(broker, opt.paho_messages, 64);
    auto sq1 = raw_sqlite(root.file("raw1.db"), 1, opt.raw_seconds, INT64_MAX);
    auto sq1000 = raw_sqlite(root.file("raw1000.db"), 1000, opt.raw_seconds, 2000000);
    std::printf("fdatasync %.0f/s p99 %.2f ms | sqlite 1/txn %.0f | 1000/txn %.0f | paho %.0f\n",
                fsync.per_s, fsync.p99_ms, sq1.rows_per_s, sq1000.rows_per_s, paho.msgs_per_s);
    return 0;
  }

  // ---- ingest, with the hub connected (the normal state of a store). Each agent case is
  // measured in slices alternating with its raw SQLite counterpart, so that a disk or CPU
  // disturbance from other work on the machine hits both sides of the ratio alike.
  SqliteResult sq1, sq1000, sq64;
  IngestResult one, eight, many, many_hub_down, one_hub_down;
  {
    std::string dir = root.file("ingest");
    std::filesystem::create_directories(dir);
    Agent agent(opt, dir, broker);
    agent.start();
    if (!agent.wait_hub_connected(std::chrono::seconds(20))) {
      throw std::runtime_error("agent did not connect to the hub; log:\n" +
                               read_file(dir + "/agent.log"));
    }
    progress("warm-up: 12000 events delivered (past keep_delivered)");
    warm_up(agent, 12000);
    const double slice = opt.ingest_seconds / opt.rounds;
    for (int round = 0; round < opt.rounds; ++round) {
      const std::string r = std::to_string(round);
      progress("round " + std::to_string(round + 1) + "/" + std::to_string(opt.rounds) +
               ": SQLite 1 row/txn, agent 1 producer, SQLite 1000 rows/txn, agent 64 "
               "producers, SQLite 64 rows/txn, agent 8 producers");
      // Each slice starts on a quiet disk: without settle(), the write-back of the slice
      // before it (a raw SQLite run leaves megabytes dirty) lands in the next one's syncs.
      settle();
      sq1.merge(raw_sqlite(root.file("raw1-" + r + ".db"), 1, slice, INT64_MAX));
      settle();
      one.merge(ingest_case(agent, broker, 1, slice, "p1r" + r));
      settle();
      sq1000.merge(raw_sqlite(root.file("raw1000-" + r + ".db"), 1000, slice, 2000000));
      settle();
      many.merge(ingest_case(agent, broker, 64, slice, "p64r" + r));
      settle();
      // The largest batch 64 one-at-a-time producers can form: for the reading, not a target.
      sq64.merge(raw_sqlite(root.file("raw64-" + r + ".db"), 64, slice, 2000000));
      settle();
      eight.merge(ingest_case(agent, broker, 8, slice, "p8r" + r));
      std::filesystem::remove(root.file("raw1-" + r + ".db"));
      std::filesystem::remove(root.file("raw1000-" + r + ".db"));
      std::filesystem::remove(root.file("raw64-" + r + ".db"));
    }
    // For the reading: the same 64-producer load without the publisher's share of the CPU.
    progress("agent 64 producers with the hub down");
    broker.stop();
    many_hub_down = ingest_case(agent, broker, 64, slice, "p64down");
    settle();
    one_hub_down = ingest_case(agent, broker, 1, slice, "p1down");
    agent.stop();
  }
  if (opt.ingest_only) {
    std::printf("SQLite 1 row/txn CPU %.0f us/row, 1000 rows/txn %.1f us/row\n",
                1e6 * sq1.cpu_s / sq1.rows, 1e6 * sq1000.cpu_s / sq1000.rows);
    std::printf("SQLite 1 row/txn %.0f rows/s | agent 1 producer %.0f ev/s (%.1f%%), p50 %.2f ms, "
                "p99 %.2f ms | hub down %.0f ev/s, p50 %.2f ms\n",
                sq1.rows_per_s, one.per_s, 100 * one.per_s / sq1.rows_per_s, one.p50_ms,
                one.p99_ms, one_hub_down.per_s, one_hub_down.p50_ms);
    std::printf("SQLite 1000 rows/txn %.0f, 64 rows/txn %.0f | agent 64 producers %.0f ev/s "
                "(%.1f%%), hub down %.0f | 8 producers %.0f\n",
                sq1000.rows_per_s, sq64.rows_per_s, many.per_s,
                100 * many.per_s / sq1000.rows_per_s, many_hub_down.per_s, eight.per_s);
    for (const auto* c : {&one, &one_hub_down, &eight, &many, &many_hub_down}) {
      std::printf("  %2d producers%s: %s\n", c->producers, c == &one_hub_down || c == &many_hub_down ? " hub down" : "", cpu_per_event(*c).c_str());
    }
    return 0;
  }

  // ---- backlogs built with the hub down, then drained
  progress("backlog of " + std::to_string(opt.backlog_small) + " events: fill, drain");
  auto small = backlog_run(opt, root.path(), "b10k", broker, opt.backlog_small, false);
  progress("backlog of " + std::to_string(opt.backlog_large) + " events: fill, drain, idle");
  auto large = backlog_run(opt, root.path(), "b100k", broker, opt.backlog_large, true);
  // Delivery: rounds alternating the bare paho publisher with the agent draining a backlog of
  // the same size, so that load from other work hits both sides of the ratio alike.
  PahoResult paho;
  int64_t delivered_events = 0;
  double delivered_s = 0;
  for (int round = 0; round < opt.rounds; ++round) {
    progress("delivery round " + std::to_string(round + 1) + "/" + std::to_string(opt.rounds) +
             ": bare paho publisher, agent drain of " + std::to_string(opt.delivery_backlog));
    if (!broker.running()) broker.start();
    paho.merge(raw_paho(broker, opt.paho_messages, 64));
    auto d = backlog_run(opt, root.path(), "d" + std::to_string(round), broker,
                         opt.delivery_backlog, false);
    delivered_events += d.deliver_events;
    delivered_s += d.deliver_s;
  }
  const double deliver_per_s = delivered_events / delivered_s;
  broker.stop();
  ::getloadavg(load_end, 3);

  // ---- report
  std::printf("\nRaw limits\n");
  print_row("1. write 300 B + fdatasync", fmt("%.0f /s", fsync.per_s),
            "p50 " + fmt("%.2f", fsync.p50_ms) + " ms, p99 " + fmt("%.2f", fsync.p99_ms) + " ms");
  print_row("2a. SQLite WAL FULL, 1 row/txn", fmt("%.0f rows/s", sq1.rows_per_s),
            "row ~" + std::to_string(sq1.row_bytes) + " B, " + std::to_string(sq1.rows) +
                " rows, CPU " + fmt("%.0f", 1e6 * sq1.cpu_s / sq1.rows) + " us/row");
  print_row("2b. SQLite WAL FULL, 1000 rows/txn", fmt("%.0f rows/s", sq1000.rows_per_s),
            std::to_string(sq1000.rows) + " rows, CPU " +
                fmt("%.1f", 1e6 * sq1000.cpu_s / sq1000.rows) + " us/row");
  print_row("   (SQLite WAL FULL, 64 rows/txn, for comparison)", fmt("%.0f rows/s", sq64.rows_per_s),
            std::to_string(sq64.rows) + " rows");
  print_row("3. bare paho v5 QoS1 TLS, window 64", fmt("%.0f msg/s", paho.msgs_per_s),
            std::to_string(paho.n) + " msgs of " + std::to_string(paho.payload_bytes) + " B" +
                (paho.failures ? ", " + std::to_string(paho.failures) + " FAILED" : ""));

  std::printf("\nAgent (the edgesync binary as a child process, mosquitto over TLS on loopback)\n");
  auto ingest_row = [](const std::string& label, const IngestResult& r) {
    print_row(label, fmt("%.0f ev/s", r.per_s),
              "ack p50 " + fmt("%.2f", r.p50_ms) + " ms, p99 " + fmt("%.2f", r.p99_ms) + " ms" +
                  (r.errors ? ", " + std::to_string(r.errors) + " ERRORS: " + r.first_error : ""));
    print_row("", "", cpu_per_event(r));
  };
  ingest_row("4. accepted, 1 producer (request, wait, repeat)", one);
  ingest_row("   (1 producer with the hub down, for comparison)", one_hub_down);
  ingest_row("4. accepted, 8 producers", eight);
  ingest_row("4. accepted, 64 producers", many);
  ingest_row("   (64 producers with the hub down, for comparison)", many_hub_down);
  print_row("   backlog fill: 8 pipelined producers, hub down", fmt("%.0f ev/s", large.fill_per_s),
            std::to_string(large.events) + " events");
  print_row("5. delivered to the hub (drains, 10%..90% of each backlog)",
            fmt("%.0f ev/s", deliver_per_s),
            std::to_string(opt.rounds) + " drains of " + std::to_string(opt.delivery_backlog) +
                "; in the " + std::to_string(large.events) + " drain: " +
                fmt("%.0f ev/s", large.deliver_per_s));
  print_row("6. drain " + std::to_string(large.events) + "-event backlog (hub start -> pending 0)",
            fmt("%.2f s", large.drain_s), large.status_line);
  for (const BacklogResult* b : {&small, &large}) {
    print_row("7. VmHWM after draining " + std::to_string(b->events) + " events",
              fmt("%.1f MiB", b->hwm_kb / 1024.0),
              "VmRSS with the backlog waiting " + fmt("%.1f", b->rss_kb_backlog / 1024.0) +
                  " MiB, after the drain " + fmt("%.1f", b->rss_kb_after / 1024.0) + " MiB");
  }
  long hz = ::sysconf(_SC_CLK_TCK);
  print_row("8. idle CPU (utime+stime), hub connected, no events",
            std::to_string(large.idle_ticks) + " ticks",
            "over " + fmt("%.1f", large.idle_seconds) + " s (" + std::to_string(hz) + " ticks/s)");

  double r64 = many.per_s / sq1000.rows_per_s;
  double r1 = one.per_s / sq1.rows_per_s;
  double rd = deliver_per_s / paho.msgs_per_s;
  int64_t growth_kb = large.hwm_kb - small.hwm_kb;
  std::vector<Target> targets = {
      {"64-producer rate / SQLite 1000 rows/txn",
       fmt("%.0f", many.per_s) + " / " + fmt("%.0f", sq1000.rows_per_s) + " = " +
           fmt("%.1f%%", 100 * r64),
       ">= 60%", r64 >= 0.60},
      {"1-producer rate / SQLite 1 row/txn",
       fmt("%.0f", one.per_s) + " / " + fmt("%.0f", sq1.rows_per_s) + " = " +
           fmt("%.1f%%", 100 * r1),
       ">= 80%", r1 >= 0.80},
      {"delivery rate / bare paho rate",
       fmt("%.0f", deliver_per_s) + " / " + fmt("%.0f", paho.msgs_per_s) + " = " +
           fmt("%.1f%%", 100 * rd),
       ">= 90%", rd >= 0.90},
      {"VmHWM after the " + std::to_string(large.events) + " backlog",
       fmt("%.1f MiB", large.hwm_kb / 1024.0) + " (" + fmt("%.1f MB", large.hwm_kb * 1.024e-3) + ")",
       "< 20 MB", large.hwm_kb * 1024 < 20000000},
      {"VmHWM growth, " + std::to_string(small.events) + " -> " + std::to_string(large.events),
       fmt("%+.1f MiB", growth_kb / 1024.0), "< 4 MiB", growth_kb < 4096},
      {"idle CPU over " + fmt("%.0f", large.idle_seconds) + " s",
       std::to_string(large.idle_ticks) + " ticks", "<= 1 tick",
       large.idle_ticks >= 0 && large.idle_ticks <= 1},
  };
  std::printf("\nTargets\n");
  std::printf("  %-42s %-36s %-9s %s\n", "figure", "measured", "target", "result");
  for (const auto& t : targets) {
    std::printf("  %-42s %-36s %-9s %s\n", t.what.c_str(), t.measured.c_str(), t.goal.c_str(),
                t.pass ? "PASS" : "MISS");
  }
  std::printf("\nload average: %.2f at start, %.2f at end (%ld CPUs). Other work on the machine\n"
              "moves these figures; the ratios compare slices measured alternately.\n",
              load_start[0], load_end[0], ::sysconf(_SC_NPROCESSORS_ONLN));
  return 0;
}


}  // namespace
}  // namespace edgesync::bench

int main(int argc, char** argv) {
  using edgesync::bench::Options;
  Options opt;
  const char* tmp = std::getenv("TMPDIR");
  opt.base_dir = tmp && *tmp ? tmp : "/tmp";
  if (const char* bin = std::getenv("EDGESYNC_BIN")) opt.agent_bin = bin;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--agent") {
      opt.agent_bin = value();
    } else if (a == "--dir") {
      opt.base_dir = value();
    } else if (a == "--quick") {
      opt.quick = true;
    } else if (a == "--keep") {
      opt.keep = true;
    } else if (a == "--raw-only") {
      opt.raw_only = true;
    } else if (a == "--ingest-only") {
      opt.ingest_only = true;
    } else if (a == "--load") {
      opt.load_producers = std::atoi(value().c_str());
    } else if (a == "--seconds") {
      opt.ingest_seconds = std::atof(value().c_str());
    } else if (a == "--hub-down") {
      opt.hub_down = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s --agent PATH [--quick] [--dir BASE] [--keep] [--raw-only] [--ingest-only]\n"
                   "       [--load N [--seconds S] [--hub-down]]\n"
                   "  --agent  the edgesync binary (default: $EDGESYNC_BIN)\n"
                   "  --quick  smaller counts and shorter runs (about a minute)\n"
                   "  --dir    where the scratch dir goes (default: $TMPDIR or /tmp); put it on\n"
                   "           the disk the outbox lives on: fdatasync is what is measured\n"
                   "  --keep   keep the scratch dir (logs, databases)\n"
                   "  --raw-only  only the raw limits\n"
                   "  --ingest-only  only the raw limits and the producer cases\n"
                   "  --load N [--seconds S] [--hub-down]  only N producers for S seconds (6),\n"
                   "           printing the agent's pid first: for a profiler\n",
                   argv[0]);
      return 2;
    }
  }
  if (opt.agent_bin.empty()) {
    std::fprintf(stderr, "edgesync_bench: --agent PATH (or EDGESYNC_BIN) is required\n");
    return 2;
  }
  if (opt.quick) {
    opt.raw_seconds = 1;
    opt.ingest_seconds = 2;
    opt.rounds = 2;
    opt.paho_messages = 10000;
    opt.delivery_backlog = 10000;
    opt.backlog_small = 2000;
    opt.backlog_large = 20000;
    opt.idle_seconds = 3;
  }
  try {
    return edgesync::bench::run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edgesync_bench: could not run: %s\n", e.what());
    return 1;
  }
}
