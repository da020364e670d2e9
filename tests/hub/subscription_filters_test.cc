// What the hub subscribes to, for each way of splitting the fleet over instances.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "hub/hub_config.h"

namespace edgesync::hub {
namespace {

using Filters = std::vector<std::string>;

TEST(SubscriptionFilters, OneInstanceTakesEveryStoresFourKinds) {
  HubConfig c;
  c.topic_prefix = "acme";
  EXPECT_EQ(subscription_filters(c),
            (Filters{"acme/+/+/events/#", "acme/+/+/deadletter", "acme/+/+/status",
                     "acme/+/+/health"}));
}

// Events and dead letters are spread over the group; status and health are retained last
// values: a shared subscription would get no retained copy at start, and splitting one device's
// reports over instances could let an older one be written last.
TEST(SubscriptionFilters, ASharedGroupSharesEventsButEveryInstanceSeesStatusAndHealth) {
  HubConfig c;
  c.topic_prefix = "acme";
  c.subscription.shared_group = "hubs";
  EXPECT_EQ(subscription_filters(c),
            (Filters{"$share/hubs/acme/+/+/events/#", "$share/hubs/acme/+/+/deadletter",
                     "acme/+/+/status", "acme/+/+/health"}));
}

TEST(SubscriptionFilters, APartitionByStoreNamesEachStore) {
  HubConfig c;
  c.topic_prefix = "acme";
  c.subscription.stores = {"s1", "s2"};
  EXPECT_EQ(subscription_filters(c),
            (Filters{"acme/s1/+/events/#", "acme/s1/+/deadletter", "acme/s1/+/status",
                     "acme/s1/+/health", "acme/s2/+/events/#", "acme/s2/+/deadletter",
                     "acme/s2/+/status", "acme/s2/+/health"}));
}

}  // namespace
}  // namespace edgesync::hub
