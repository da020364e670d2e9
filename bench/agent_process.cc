#include "bench/agent_process.h"

#include <csignal>
#include <stdexcept>
#include <thread>

#include "bench/events.h"
#include "bench/harness.h"
#include "tests/harness/net_util.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::bench {

Agent::Agent(const Options& opt, const std::string& dir, const test::MosquittoBroker& broker,
             const nlohmann::json& patch)
    : opt_(opt), dir_(dir) {
  nlohmann::json c = {
      {"device", {{"id", kDevice}, {"store_id", kStore}}},
      {"storage", {{"path", db()}}},
      // Contracts off: the bench's events are of its own types (docs/PERFORMANCE.md).
      {"ingest", {{"socket", socket()}, {"contracts_dir", ""}, {"unknown_types", "accept"}}},
      {"hub",
       {{"uri", broker.uri()},
        {"ca_file", broker.tls().ca_file},
        {"cert_file", broker.tls().client_cert_file},
        {"key_file", broker.tls().client_key_file},
        {"keepalive_s", 30},
        {"max_inflight", 64}}},
      // Short backoff so the agent finds the hub soon after it comes back.
      {"retry", {{"initial_ms", 50}, {"max_ms", 200}, {"reconnect_spread_ms", 0}}},
  };
  c.merge_patch(patch);
  config_ = dir + "/agent.json";
  test::write_file(config_, c.dump(2) + "\n");
}

Agent::~Agent() { stop(); }

void Agent::start() {
  child_.spawn({opt_.agent_bin, "agent", "--config", config_}, log());
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!test::unix_socket_accepts(socket())) {
    if (!child_.running() || Clock::now() > deadline) {
      throw std::runtime_error("agent did not start; log:\n" + test::read_file(log()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void Agent::stop() {
  resume();  // a stopped process would hold SIGTERM pending until the SIGKILL
  child_.stop(std::chrono::seconds(20));
}

void Agent::pause() { child_.signal(SIGSTOP); }

void Agent::resume() { child_.signal(SIGCONT); }

nlohmann::json Agent::status() const {
  auto r = test::run_command({opt_.agent_bin, "status", "--config", config_, "--json"});
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception&) {
    throw std::runtime_error("edgesync status --json: unexpected output: " + r.out);
  }
}

bool Agent::wait_hub_connected(std::chrono::seconds timeout) const {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto s = status();
    if (s["hub"]["state"] == "connected") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

WatermarkReader::WatermarkReader(const std::string& db_path) {
  storage::Database::Options o;
  o.read_only = true;
  o.busy_timeout_ms = 1000;
  auto db = storage::Database::open(db_path, o);
  if (!db) throw std::runtime_error("cannot open " + db_path + ": " + db.status().message());
  db_ = std::move(*db);
  auto q = db_->prepare("SELECT value FROM state WHERE key = 'delivered_seq'");
  if (!q) throw std::runtime_error("watermark query: " + q.status().message());
  query_ = std::move(*q);
}

WatermarkReader::~WatermarkReader() {
  query_.reset();  // before the database it belongs to
}

int64_t WatermarkReader::read() {
  int64_t v = -1;
  auto row = query_->step();
  if (row && *row) v = query_->column_int64(0);
  query_->reset();
  return v;
}

}  // namespace edgesync::bench
