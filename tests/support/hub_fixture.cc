#include "tests/support/hub_fixture.h"

#include <unistd.h>

#include <atomic>
#include <iostream>

namespace edgesync::test {
namespace {

std::string unique_client_id(const std::string& role) {
  static std::atomic<int> counter{0};
  return "es-test-" + role + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

}  // namespace

void HubFixture::SetUp() {
  dir_ = std::make_unique<TempDir>();
  tls_ = TlsMaterial::generate(dir_->path().string());
  broker_ = std::make_unique<MosquittoBroker>(dir_->path().string(), tls_, broker_options());
  broker_->start();
  hub_ = make_subscriber("edgesync/v1/#", /*persistent=*/true);
  agent_ = std::make_unique<AgentProcess>(dir_->path().string(),
                                          AgentConfig::for_test(dir_->path().string(), *broker_));
}

void HubFixture::TearDown() {
  if (HasFailure()) {
    if (agent_) {
      std::cerr << "\n===== agent log (" << agent_->log_path() << ", tail) =====\n"
                << tail_lines(agent_->log(), 150);
    }
    if (broker_) {
      std::cerr << "\n===== broker log (" << broker_->log_path() << ", tail) =====\n"
                << tail_lines(broker_->log(), 60) << "===== end of logs =====\n";
    }
  }
  if (agent_) agent_->terminate(std::chrono::seconds(10));
  if (hub_) hub_->disconnect();
  hub_.reset();
  if (broker_) broker_->stop();
  agent_.reset();
  broker_.reset();
  dir_.reset();
}

std::unique_ptr<HubSubscriber> HubFixture::make_subscriber(const std::string& topic_filter,
                                                           bool persistent) {
  SubscriberOptions o;
  o.uri = broker_->uri();
  o.ca_file = tls_.ca_file;
  o.cert_file = tls_.client_cert_file;
  o.key_file = tls_.client_key_file;
  o.client_id = unique_client_id(persistent ? "hub" : "probe");
  o.topic_filter = topic_filter;
  o.persistent_session = persistent;
  auto s = std::make_unique<HubSubscriber>(o);
  s->connect();
  return s;
}

std::vector<HubEvent> HubFixture::events() const {
  return hub_events(hub_->messages(), agent_->config().topic_base());
}

nlohmann::json HubFixture::status_json() {
  CommandResult r = AgentProcess::run_cli({"status", "--config", agent_->config_path(), "--json"},
                                          "", std::chrono::seconds(20));
  // The exit status is the verdict (0 OK, 1 DEGRADED, 2 DOWN): any of them, with the document
  // on stdout, and the verdict's level says the same.
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << "edgesync status --json did not print a JSON object: "
                             << r.describe();
  static const char* const kLevels[] = {"OK", "DEGRADED", "DOWN"};
  const int code = r.exit_code();
  EXPECT_TRUE(code >= 0 && code <= 2) << "edgesync status --json: " << r.describe();
  if (j.is_object() && code >= 0 && code <= 2) {
    EXPECT_EQ(j["verdict"].value("level", ""), kLevels[code]) << r.describe();
  }
  return j;
}

}  // namespace edgesync::test
