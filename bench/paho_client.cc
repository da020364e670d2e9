#include "bench/paho_client.h"

#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "bench/events.h"
#include "bench/harness.h"

namespace edgesync::bench {
namespace {

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

}  // namespace

mqtt::connect_options tls_connect_options(const test::TlsMaterial& tls) {
  auto ssl = mqtt::ssl_options_builder()
                 .trust_store(tls.ca_file)
                 .key_store(tls.client_cert_file)
                 .private_key(tls.client_key_file)
                 .enable_server_cert_auth(true)
                 .verify(true)
                 .finalize();
  return mqtt::connect_options_builder()
      .mqtt_version(MQTTVERSION_5)
      .clean_start(true)
      .keep_alive_interval(std::chrono::seconds(30))
      .ssl(std::move(ssl))
      .finalize();
}

void PahoResult::merge(const PahoResult& o) {
  n += o.n;
  failures += o.failures;
  payload_bytes = o.payload_bytes;
  elapsed_s += o.elapsed_s;
  msgs_per_s = n / elapsed_s;
}

PahoResult raw_paho(const test::MosquittoBroker& broker, int64_t n, int64_t window) {
  mqtt::create_options create(MQTTVERSION_5);
  create.set_send_while_disconnected(false);
  mqtt::async_client client(broker.uri(), "edgesync-bench-bare", create, nullptr);
  client.connect(tls_connect_options(broker))->wait();
  const std::string topic = event_topic();
  const EventFactory f{"paho"};
  CountingListener listener;
  PahoResult r;
  auto t0 = Clock::now();
  for (int64_t seq = 1; seq <= n; ++seq) {
    const std::string id = f.id(0, seq);
    std::string payload = hub_payload(id, seq, f.data);
    r.payload_bytes = payload.size();
    mqtt::properties props;
    props.add({mqtt::property::CONTENT_TYPE, "application/json"});
    props.add({mqtt::property::USER_PROPERTY, "id", id});
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

}  // namespace edgesync::bench
