// A GoogleTest fixture with the real parts wired together: a temp dir, generated TLS
// material, a mosquitto broker with a mutual-TLS listener, a persistent hub subscriber on
// "edgesync/v1/#", and an agent (configured, not started: tests adjust config() first).
// On failure TearDown prints the tails of the agent and broker logs.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/harness/mosquitto_broker.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/tls_material.h"
#include "tests/support/agent_process.h"
#include "tests/support/events.h"
#include "tests/support/hub_subscriber.h"
#include "tests/support/producer.h"

namespace edgesync::test {

class HubFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // A test may give its broker other settings.
  virtual BrokerOptions broker_options() const { return {}; }

  // A new subscriber with this fixture's TLS material (connected).
  std::unique_ptr<HubSubscriber> make_subscriber(const std::string& topic_filter, bool persistent);
  // Events received so far under the agent's topic base.
  std::vector<HubEvent> events() const;
  // Runs `edgesync status --config <agent config> --json` and parses stdout.
  nlohmann::json status_json();

  std::unique_ptr<TempDir> dir_;
  TlsMaterial tls_;
  std::unique_ptr<MosquittoBroker> broker_;
  std::unique_ptr<HubSubscriber> hub_;
  std::unique_ptr<AgentProcess> agent_;
};

}  // namespace edgesync::test
