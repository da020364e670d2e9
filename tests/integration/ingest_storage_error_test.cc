// storage_error as a producer sees it: the ingest server and the outbox in one process, on the
// fault-injecting SQLite VFS. A failed sync answers the event with storage_error on the socket,
// the connection stays usable, nothing is stored for it, and once the disk works again the same
// event goes in with the next seq (no gap) while earlier events are untouched.
#include <gtest/gtest.h>

#include <asio.hpp>
#include <future>
#include <thread>

#include "agent/config.h"
#include "agent/ingest_server.h"
#include "tests/storage/fault_fixture.h"
#include "tests/support/events.h"
#include "tests/support/producer.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class IngestStorageErrorTest : public FaultVfsTest {
 protected:
  void SetUp() override {
    FaultVfsTest::SetUp();
    config_.ingest.socket = dir_.file("ingest.sock");
    config_.ingest.unknown_types = "accept";  // no contracts: the path is under test
    // Completions run on the ingest loop's thread, as in the agent.
    auto box = storage::Outbox::open(options_, [this](std::function<void()> fn) {
      asio::post(io_, std::move(fn));
    });
    ASSERT_TRUE(box.is_ok()) << box.status().to_string();
    box_ = std::move(*box);
    core_ = std::make_unique<agent::IngestCore>(io_, config_, *box_);
    server_ = std::make_unique<agent::IngestServer>(*core_);
    Status s = server_->start();
    ASSERT_TRUE(s) << s.to_string();
    loop_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (server_) {
      std::promise<void> stopped;
      asio::post(io_, [&] { server_->stop([&] { stopped.set_value(); }); });
      stopped.get_future().wait_for(10s);
    }
    work_.reset();
    if (loop_.joinable()) loop_.join();
    server_.reset();
    core_.reset();
    box_.reset();
    FaultVfsTest::TearDown();
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  agent::Config config_;
  std::unique_ptr<agent::IngestCore> core_;  // outlives server_
  std::unique_ptr<agent::IngestServer> server_;
  std::thread loop_;
};

std::string sale(const std::string& id) {
  return make_request(id, "sale.completed", json{{"total_cents", 1299}});
}

TEST_F(IngestStorageErrorTest, FailedSyncIsReportedAndTheSameEventGoesInLater) {
  Producer p(config_.ingest.socket);
  json first = p.request(sale("se-1"), 10s);
  ASSERT_EQ(first.value("ok", false), true) << first.dump();
  ASSERT_EQ(first.value("seq", 0), 1);

  switches_->fail_sync = true;
  json refused = p.request(sale("se-2"), 10s);
  EXPECT_EQ(refused.value("ok", true), false) << refused.dump();
  EXPECT_EQ(refused.value("error", std::string()), "storage_error") << refused.dump();
  EXPECT_FALSE(refused.value("message", std::string()).empty()) << refused.dump();
  EXPECT_FALSE(refused.contains("seq")) << refused.dump();
  // Still failing: refused again, and requests that never reach storage are answered as usual.
  json again = p.request(sale("se-2"), 10s);
  EXPECT_EQ(again.value("error", std::string()), "storage_error") << again.dump();
  json bad = p.request("{not json", 10s);
  EXPECT_EQ(bad.value("error", std::string()), "bad_json") << bad.dump();

  // The disk works again: after the retry pause the same event is stored, with the next seq.
  switches_->fail_sync = false;
  json stored;
  for (int i = 0; i < 50; ++i) {
    stored = p.request(sale("se-2"), 10s);
    if (stored.value("ok", false)) break;
    EXPECT_EQ(stored.value("error", std::string()), "storage_error") << stored.dump();
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(stored.value("ok", false), true) << stored.dump();
  EXPECT_EQ(stored.value("seq", 0), 2) << "a refused event must not use up a seq";
  EXPECT_EQ(stored.value("duplicate", true), false) << stored.dump();
  // What was stored before the failure is intact.
  json dup = p.request(sale("se-1"), 10s);
  EXPECT_EQ(dup.value("duplicate", false), true) << dup.dump();
  EXPECT_EQ(dup.value("seq", 0), 1) << dup.dump();
  std::vector<storage::StoredEvent> rows;
  ASSERT_TRUE(box_->read_pending(0, 10, &rows));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].id, "se-1");
  EXPECT_EQ(rows[1].id, "se-2");
}

// Regression: ingest bounded a connection by its number of outstanding replies (1,024) only, so
// while a slow sync held commits, producers pipelining large lines parked hundreds of MB in the
// agent (1,024 x 256 KiB per connection). Now each connection holds at most ~4 MiB of request
// bytes waiting for their commit (and all together at most ~32 MiB); nothing is lost.
TEST_F(IngestStorageErrorTest, PipelinedLargeLinesOnASlowDiskHoldBoundedMemory) {
  switches_->sync_delay_ms = 100;  // a slow SD card
  constexpr int kProducers = 4, kLines = 50;
  const std::string blob(200 * 1024, 'x');
  std::vector<std::thread> threads;
  std::vector<std::vector<json>> replies(kProducers);
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      std::vector<std::string> lines;
      for (int i = 0; i < kLines; ++i) {
        lines.push_back(make_request("big-" + std::to_string(p) + "-" + std::to_string(i),
                                     "inventory.received", json{{"blob", blob}}));
      }
      Producer producer(config_.ingest.socket);
      replies[p] = producer.send_all(lines, 120s);
    });
  }
  for (auto& t : threads) t.join();
  for (int p = 0; p < kProducers; ++p) {
    ASSERT_EQ(replies[p].size(), static_cast<size_t>(kLines)) << "producer " << p;
    for (int i = 0; i < kLines; ++i) {
      EXPECT_EQ(replies[p][i].value("ok", false), true) << replies[p][i].dump().substr(0, 300);
      EXPECT_EQ(replies[p][i].value("id", std::string()),
                "big-" + std::to_string(p) + "-" + std::to_string(i));
    }
  }
  // Per connection: the bound, plus the line that crossed it.
  const size_t bound = kProducers * ((size_t{4} << 20) + 256 * 1024);
  const size_t peak = server_->peak_pending_bytes();
  std::printf("peak request bytes waiting for their commit: %zu (bound %zu, sent %zu)\n", peak,
              bound, size_t{kProducers} * kLines * blob.size());
  EXPECT_LE(peak, bound);
}

}  // namespace
}  // namespace edgesync::test
