// The metrics endpoint (metrics.listen) of the real agent, scraped over HTTP as Prometheus would:
// the figures follow events from acceptance to delivery and the hub going away; only GET
// /metrics is served; nothing listens unless configured; a metrics.listen that cannot be bound
// stops the agent at start with a message that names it.
#include <gtest/gtest.h>
#include <httplib.h>

#include <ctime>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "tests/harness/net_util.h"
#include "tests/support/hub_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct Scrape {
  int status = 0;  // 0: no answer
  std::string content_type;
  std::string body;
};

Scrape http(int port, const std::string& method, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  httplib::Result r =
      method == "POST" ? client.Post(path.c_str(), "x", "text/plain") : client.Get(path.c_str());
  if (!r) return {};
  return {r->status, r->get_header_value("Content-Type"), r->body};
}

// The value of the sample `series` (name, with its labels when it has some), or nullopt.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

// Polls `pred` until it holds or `timeout` passes.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

class MetricsTest : public HubFixture {
 protected:
  // Scrapes until `series` reads `value` (or the timeout passes); returns the last page.
  std::string scrape_until(const std::string& series, double value,
                           std::chrono::milliseconds timeout) {
    std::string last;
    eventually(
        [&] {
          Scrape s = http(port_, "GET", "/metrics");
          last = s.body;
          return s.status == 200 && sample(s.body, series) == value;
        },
        timeout);
    return last;
  }

  int port_ = pick_free_port();
};

TEST_F(MetricsTest, FiguresFollowEventsFromAcceptanceToDeliveryAndTheHubGoingAway) {
  agent_->config().extra["metrics"] = {{"listen", "127.0.0.1:" + std::to_string(port_)}};
  agent_->start();
  const std::string url = "http://127.0.0.1:" + std::to_string(port_) + "/metrics";
  ASSERT_TRUE(
      eventually([&] { return agent_->log().find("metrics on " + url) != std::string::npos; }, 10s))
      << agent_->log();

  // Connected, nothing sent yet.
  std::string page = scrape_until("edgesync_hub_connected", 1, 30s);
  ASSERT_EQ(sample(page, "edgesync_hub_connected"), 1) << page;
  EXPECT_EQ(sample(page, "edgesync_up"), 1) << page;
  EXPECT_EQ(sample(page, "edgesync_hub_connects_total"), 1) << page;
  Scrape first = http(port_, "GET", "/metrics");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.content_type, "text/plain; version=0.0.4; charset=utf-8");

  constexpr int kEvents = 25;
  Producer producer(agent_->socket_path());
  for (int i = 0; i < kEvents; ++i) {
    json r = producer.request(make_request("m-" + std::to_string(i), "sale.completed", {{"n", i}}));
    ASSERT_EQ(r.value("seq", 0), i + 1) << r.dump();
  }
  json again = producer.request(make_request("m-0", "sale.completed", {{"n", 0}}));
  ASSERT_TRUE(again.value("duplicate", false)) << again.dump();
  json bad = producer.request("{not json");
  ASSERT_EQ(bad.value("error", ""), "bad_json") << bad.dump();

  page = scrape_until("edgesync_events_delivered_total", kEvents, 30s);
  ASSERT_EQ(sample(page, "edgesync_events_delivered_total"), kEvents) << page;
  EXPECT_EQ(sample(page, "edgesync_events_accepted_total{result=\"stored\"}"), kEvents) << page;
  EXPECT_EQ(sample(page, "edgesync_events_accepted_total{result=\"duplicate\"}"), 1) << page;
  EXPECT_EQ(sample(page, "edgesync_events_refused_total{code=\"bad_json\"}"), 1) << page;
  for (const char* code : {"invalid_event", "too_large", "outbox_full", "storage_error"}) {
    EXPECT_EQ(sample(page, "edgesync_events_refused_total{code=\"" + std::string(code) + "\"}"), 0)
        << code << " should be there, at 0: " << page;
  }
  EXPECT_EQ(sample(page, "edgesync_outbox_highest_accepted_seq"), kEvents) << page;
  EXPECT_EQ(sample(page, "edgesync_outbox_highest_delivered_seq"), kEvents) << page;
  EXPECT_EQ(sample(page, "edgesync_outbox_pending_events"), 0) << page;
  EXPECT_EQ(sample(page, "edgesync_outbox_oldest_pending_age_seconds"), 0) << page;
  // Every delivery is in both histograms, and within their buckets.
  for (const std::string h :
       {"edgesync_ack_latency_seconds", "edgesync_event_age_at_delivery_seconds"}) {
    EXPECT_EQ(sample(page, h + "_count"), kEvents) << page;
    EXPECT_EQ(sample(page, h + "_bucket{le=\"+Inf\"}"), kEvents) << page;
    EXPECT_EQ(sample(page, h + "_bucket{le=\"600\"}"), kEvents) << page;
    EXPECT_GT(sample(page, h + "_sum").value_or(-1), 0) << page;
  }
  // The hub's client certificate is configured: its expiry is in the future.
  EXPECT_GT(sample(page, "edgesync_certificate_expiry_timestamp_seconds").value_or(0),
            static_cast<double>(std::time(nullptr)))
      << page;

  // Only GET /metrics.
  EXPECT_EQ(http(port_, "GET", "/").status, 404);
  EXPECT_EQ(http(port_, "GET", "/metrics/x").status, 404);
  EXPECT_EQ(http(port_, "POST", "/metrics").status, 405);

  // The hub goes away: the page says so, and what comes in waits.
  broker_->stop();
  page = scrape_until("edgesync_hub_connected", 0, 60s);
  ASSERT_EQ(sample(page, "edgesync_hub_connected"), 0) << page;
  json late = producer.request(make_request("m-late", "sale.completed", {{"n", 99}}));
  ASSERT_EQ(late.value("seq", 0), kEvents + 1) << late.dump();
  page = scrape_until("edgesync_outbox_pending_events", 1, 10s);
  EXPECT_EQ(sample(page, "edgesync_outbox_pending_events"), 1) << page;
  EXPECT_EQ(sample(page, "edgesync_events_delivered_total"), kEvents) << page;

  // A stopped agent stops serving.
  ASSERT_EQ(agent_->terminate(20s), 0);
  EXPECT_EQ(http(port_, "GET", "/metrics").status, 0) << "still answering after the agent stopped";
}

TEST_F(MetricsTest, OffByDefault) {
  agent_->start();
  Producer producer(agent_->socket_path());
  ASSERT_EQ(producer.request(make_request("d-1", "sale.completed", {{"n", 1}})).value("seq", 0), 1);
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(1, 30s));
  EXPECT_EQ(agent_->log().find("metrics on"), std::string::npos) << agent_->log();
  EXPECT_FALSE(tcp_port_accepts(port_));
}

// Each bad metrics.listen stops the agent at start, naming the setting and why.
TEST_F(MetricsTest, AListenAddressThatCannotBeBoundIsRefusedAtStart) {
  struct Case {
    std::string listen;
    std::string expect;
  };
  const Case cases[] = {
      // The broker holds this port.
      {"127.0.0.1:" + std::to_string(broker_->port()), "Address already in use"},
      // A documentation address (RFC 5737), on no interface here.
      {"192.0.2.1:9465", "Cannot assign requested address"},
      {"127.0.0.1", "metrics.listen: must be HOST:PORT"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.listen);
    AgentConfig config = agent_->config();
    config.extra["metrics"] = {{"listen", c.listen}};
    const std::string path = dir_->file("bad-metrics.json");
    write_file(path, config.to_text());
    CommandResult r = AgentProcess::run_cli({"agent", "--config", path}, "", 20s);
    EXPECT_FALSE(r.timed_out) << "the agent kept running: " << r.describe();
    EXPECT_TRUE(WIFEXITED(r.status) && r.exit_code() != 0)
        << "should exit, not crash: " << r.describe();
    EXPECT_NE(r.err.find("metrics.listen"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.describe();
  }
}

}  // namespace
}  // namespace edgesync::test
