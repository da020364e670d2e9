// Smoke test of the integration harness itself, independent of the agent: a real mosquitto
// with mutual TLS, our paho subscriber with a persistent session, mosquitto_pub as publisher.
#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/harness/mosquitto_broker.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/tls_material.h"
#include "tests/support/events.h"
#include "tests/support/hub_subscriber.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;

class BrokerHarnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tls_ = TlsMaterial::generate(dir_.path().string());
    broker_ = std::make_unique<MosquittoBroker>(dir_.path().string(), tls_);
    broker_->start();
  }
  void TearDown() override {
    if (HasFailure() && broker_) std::cerr << "broker log:\n" << tail_lines(broker_->log(), 60);
  }

  SubscriberOptions sub_options(const std::string& id) {
    SubscriberOptions o;
    o.uri = broker_->uri();
    o.ca_file = tls_.ca_file;
    o.cert_file = tls_.client_cert_file;
    o.key_file = tls_.client_key_file;
    o.client_id = id + "-" + std::to_string(::getpid());
    o.topic_filter = "edgesync/v1/#";
    return o;
  }

  // mosquitto_pub over TLS with the client certificate, MQTT v5, QoS 1.
  CommandResult pub(const std::string& topic, const std::string& payload, bool retain = false,
                    std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{"mosquitto_pub",
                                  "-h",
                                  "127.0.0.1",
                                  "-p",
                                  std::to_string(broker_->port()),
                                  "--cafile",
                                  tls_.ca_file,
                                  "--cert",
                                  tls_.client_cert_file,
                                  "--key",
                                  tls_.client_key_file,
                                  "-V",
                                  "mqttv5",
                                  "-q",
                                  "1",
                                  "-t",
                                  topic,
                                  "-m",
                                  payload};
    if (retain) argv.push_back("-r");
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_command(argv, "", 20s);
  }

  TempDir dir_;
  TlsMaterial tls_;
  std::unique_ptr<MosquittoBroker> broker_;
};

TEST_F(BrokerHarnessTest, TlsPublishReachesSubscriberWithProperties) {
  HubSubscriber sub(sub_options("smoke"));
  sub.connect();
  auto r = pub("edgesync/v1/s/d/events/a.b", R"({"x":1})", false,
               {"-D", "publish", "user-property", "id", "abc", "-D", "publish", "user-property",
                "seq", "7", "-D", "publish", "content-type", "application/json"});
  ASSERT_TRUE(r.exited_ok()) << r.describe();
  ASSERT_TRUE(sub.wait_for_count(1, 10s));
  auto m = sub.messages().at(0);
  EXPECT_EQ(m.topic, "edgesync/v1/s/d/events/a.b");
  EXPECT_EQ(m.payload, R"({"x":1})");
  EXPECT_EQ(m.qos, 1);
  EXPECT_FALSE(m.retained);
  EXPECT_EQ(m.content_type, "application/json");
  EXPECT_EQ(m.prop_id.value_or("<none>"), "abc");
  EXPECT_EQ(m.prop_seq.value_or("<none>"), "7");
  EXPECT_EQ(sub.distinct_seq_count(), 1u);
}

TEST_F(BrokerHarnessTest, ClientWithoutCertificateIsRejected) {
  auto r = run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker_->port()),
                        "--cafile", tls_.ca_file, "-t", "edgesync/v1/x", "-m", "y"},
                       "", 20s);
  EXPECT_FALSE(r.exited_ok()) << r.describe();
}

TEST_F(BrokerHarnessTest, ServerCertificateIsVerified) {
  // The server certificate carries IP:127.0.0.1 as well as DNS:localhost.
  auto ok = run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker_->port()),
                         "--cafile", tls_.ca_file, "--cert", tls_.client_cert_file, "--key",
                         tls_.client_key_file, "-t", "edgesync/v1/x", "-m", "y"},
                        "", 20s);
  EXPECT_TRUE(ok.exited_ok()) << ok.describe();
  // A client trusting another CA must refuse the broker.
  TempDir other;
  TlsMaterial other_tls = TlsMaterial::generate(other.path().string());
  auto bad = run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker_->port()),
                          "--cafile", other_tls.ca_file, "--cert", tls_.client_cert_file, "--key",
                          tls_.client_key_file, "-t", "edgesync/v1/x", "-m", "y"},
                         "", 20s);
  EXPECT_FALSE(bad.exited_ok()) << bad.describe();
}

TEST_F(BrokerHarnessTest, RetainedMessageSeenByNewSubscriber) {
  ASSERT_TRUE(pub("edgesync/v1/s/d/status", R"({"online":true})", true).exited_ok());
  HubSubscriber sub(sub_options("retained"));
  sub.connect();
  ASSERT_TRUE(sub.wait_for_count(1, 10s));
  EXPECT_TRUE(sub.messages().at(0).retained);
  EXPECT_EQ(sub.messages().at(0).payload, R"({"online":true})");
}

TEST_F(BrokerHarnessTest, PersistentSessionSurvivesBrokerRestart) {
  HubSubscriber sub(sub_options("persist"));
  sub.connect();
  ASSERT_TRUE(pub("edgesync/v1/s/d/events/a.b", "before").exited_ok());
  ASSERT_TRUE(sub.wait_for_count(1, 10s));
  const int port = broker_->port();

  // Subscriber offline: messages queue in its session on the broker.
  sub.disconnect();
  ASSERT_TRUE(pub("edgesync/v1/s/d/events/a.b", "queued-1").exited_ok());
  ASSERT_TRUE(pub("edgesync/v1/s/d/events/a.b", "queued-2").exited_ok());
  broker_->restart();
  EXPECT_EQ(broker_->port(), port);
  sub.connect();
  ASSERT_TRUE(sub.wait_for_count(3, 15s)) << "got " << sub.count() << " messages";
  auto msgs = sub.messages();
  EXPECT_EQ(msgs[1].payload, "queued-1");
  EXPECT_EQ(msgs[2].payload, "queued-2");

  // Automatic reconnect after a broker restart under a connected subscriber.
  const int before = sub.connections();
  broker_->restart();
  ASSERT_TRUE(pub("edgesync/v1/s/d/events/a.b", "after-restart").exited_ok());
  ASSERT_TRUE(sub.wait_for(
      [](const HubSubscriber::Messages& m) {
        return !m.empty() && m.back().payload == "after-restart";
      },
      20s))
      << "subscriber did not reconnect; connections=" << sub.connections();
  EXPECT_GT(sub.connections(), before);
}

TEST(BrokerHarnessPlain, OptionalPlainListenerAcceptsMqttWithoutTls) {
  TempDir dir;
  TlsMaterial tls = TlsMaterial::generate(dir.path().string());
  MosquittoBroker broker(dir.path().string(), tls, BrokerOptions{.plain_listener = true});
  broker.start();
  ASSERT_NE(broker.plain_port(), 0);
  ASSERT_NE(broker.plain_port(), broker.port());
  auto r =
      run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker.plain_port()),
                   "-V", "mqttv5", "-q", "1", "-t", "edgesync/v1/plain", "-m", "p"},
                  "", 20s);
  EXPECT_TRUE(r.exited_ok()) << r.describe();
  broker.kill();
  EXPECT_FALSE(broker.running());
}

// The arrival-order checker used by the agent tests must catch what it claims to catch.
TEST(EventChecks, FirstArrivalsCheckerDetectsGapsReorderingAndConflicts) {
  auto ev = [](int64_t seq, const std::string& id) {
    ReceivedMessage m;
    m.topic = "edgesync/v1/s/d/events/a.b";
    m.payload = nlohmann::json{{"id", id}, {"seq", seq}}.dump();
    return m;
  };
  auto check = [](const HubSubscriber::Messages& ms, int64_t* highest = nullptr) {
    return first_arrivals_gap_free(hub_events(ms, "edgesync/v1/s/d"), highest);
  };
  int64_t highest = 0;
  EXPECT_TRUE(check({ev(1, "a"), ev(2, "b"), ev(1, "a"), ev(2, "b"), ev(3, "c")}, &highest));
  EXPECT_EQ(highest, 3);
  EXPECT_FALSE(check({ev(1, "a"), ev(3, "c")}));              // gap
  EXPECT_FALSE(check({ev(2, "b"), ev(1, "a")}));              // reordered
  EXPECT_FALSE(check({ev(1, "a"), ev(2, "b"), ev(2, "x")}));  // seq reused by another id
  EXPECT_FALSE(check({ev(1, "a"), ev(2, "a")}));              // id with two seqs
  ReceivedMessage junk = ev(1, "a");
  junk.payload = "not json";
  EXPECT_FALSE(check({junk}));
  ReceivedMessage status = ev(5, "s");
  status.topic = "edgesync/v1/s/d/status";  // not an event: ignored
  EXPECT_TRUE(check({status, ev(1, "a")}));
}

TEST(ProcessHarness, RunCommandCapturesOutputAndStatus) {
  auto r = run_command({"sh", "-c", "cat; echo err >&2; exit 3"}, "hello\n", 10s);
  EXPECT_EQ(r.exit_code(), 3);
  EXPECT_EQ(r.out, "hello\n");
  EXPECT_EQ(r.err, "err\n");
  auto t = run_command({"sleep", "30"}, "", 300ms);
  EXPECT_TRUE(t.timed_out);
  EXPECT_FALSE(t.exited_ok());
}

}  // namespace
}  // namespace edgesync::test
