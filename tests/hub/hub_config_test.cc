// The hub's configuration: what it subscribes to for each way of splitting the fleet over
// instances, the broker URIs it accepts, and the settings it refuses together.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "hub/hub_config.h"

namespace edgesync::hub {
namespace {

using Filters = std::vector<std::string>;

TEST(SubscriptionFilters, OneInstanceTakesEveryStoresFiveKinds) {
  HubConfig c;
  c.topic_prefix = "acme";
  EXPECT_EQ(subscription_filters(c),
            (Filters{"acme/+/+/events/#", "acme/+/+/deadletter", "acme/+/+/resend/reply",
                     "acme/+/+/status", "acme/+/+/health"}));
}

// Events, dead letters and resend replies are spread over the group; status and health are
// retained last values: a shared subscription would get no retained copy at start, and splitting one device's
// reports over instances could let an older one be written last.
TEST(SubscriptionFilters, ASharedGroupSharesEventsButEveryInstanceSeesStatusAndHealth) {
  HubConfig c;
  c.topic_prefix = "acme";
  c.subscription.shared_group = "hubs";
  EXPECT_EQ(subscription_filters(c),
            (Filters{"$share/hubs/acme/+/+/events/#", "$share/hubs/acme/+/+/deadletter",
                     "$share/hubs/acme/+/+/resend/reply", "acme/+/+/status",
                     "acme/+/+/health"}));
}

TEST(SubscriptionFilters, APartitionByStoreNamesEachStore) {
  HubConfig c;
  c.topic_prefix = "acme";
  c.subscription.stores = {"s1", "s2"};
  EXPECT_EQ(subscription_filters(c),
            (Filters{"acme/s1/+/events/#", "acme/s1/+/deadletter", "acme/s1/+/resend/reply",
                     "acme/s1/+/status", "acme/s1/+/health", "acme/s2/+/events/#",
                     "acme/s2/+/deadletter", "acme/s2/+/resend/reply", "acme/s2/+/status",
                     "acme/s2/+/health"}));
}

TEST(BrokerUri, SchemesPortsAndDefaults) {
  auto a = parse_broker_uri("ssl://hub.example:8884");
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(a->host, "hub.example");
  EXPECT_EQ(a->port, 8884);
  EXPECT_TRUE(a->tls);
  a = parse_broker_uri("mqtts://hub.example");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->port, 8883);
  a = parse_broker_uri("tcp://127.0.0.1");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->tls);
  EXPECT_EQ(a->port, 1883);
  a = parse_broker_uri("ssl://[::1]:9001");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 9001);
  for (const char* bad : {"hub.example:8883", "http://hub:80", "ssl://:8883", "ssl://hub:0",
                          "ssl://hub:70000", "ssl://hub:88x3", "ssl://[::1"}) {
    EXPECT_FALSE(parse_broker_uri(bad)) << bad;
  }
}

std::string problems_of(const std::string& broker_json) {
  auto c = parse_hub_config(R"({"broker": )" + broker_json +
                            R"(, "database": "dbname=hub", "topic_prefix": "acme"})");
  return c ? std::string() : c.status().message();
}

TEST(HubConfigBroker, RefusesMixedTlsAndPlainBrokersAndAPasswordWithoutAUser) {
  EXPECT_EQ(problems_of(R"({"uris": ["ssl://a:8883", "ssl://b:8883"], "client_id": "hub",
                            "ca_file": "/ca.pem"})"),
            "");
  std::string mixed = problems_of(R"({"uris": ["ssl://a:8883", "tcp://b:1883"],
      "client_id": "hub", "ca_file": "/ca.pem", "allow_insecure": true})");
  EXPECT_NE(mixed.find("all TLS"), std::string::npos) << mixed;
  std::string password = problems_of(R"({"uris": ["ssl://a:8883"], "client_id": "hub",
      "ca_file": "/ca.pem", "password": "secret"})");
  EXPECT_NE(password.find("broker.password"), std::string::npos) << password;
}

}  // namespace
}  // namespace edgesync::hub
