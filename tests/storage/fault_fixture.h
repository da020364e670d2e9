// A test fixture for outboxes on the fault-injecting VFS: a temp dir, options pointing at it,
// and the fault switches reset before and after every test.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "storage/outbox.h"
#include "tests/storage/fault_vfs.h"
#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {

class FaultVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    switches_ = &register_fault_vfs();
    switches_->fail_sync = false;
    switches_->fail_write = false;
    switches_->sync_delay_ms = 0;
    options_.path = dir_.file("outbox.db");
    options_.vfs = "edgesync-fault";
    options_.retry_after = std::chrono::milliseconds(100);
  }
  void TearDown() override {
    switches_->fail_sync = false;
    switches_->fail_write = false;
    switches_->sync_delay_ms = 0;
  }
  // Opens box_ with options_ (tests may change options_ first).
  void open_box() {
    auto box = storage::Outbox::open(options_, inline_dispatch());
    ASSERT_TRUE(box.is_ok()) << box.status().to_string();
    box_ = std::move(*box);
  }

  TempPath dir_;
  storage::Outbox::Options options_;
  FaultSwitches* switches_ = nullptr;
  std::unique_ptr<storage::Outbox> box_;
};

}  // namespace edgesync::test
