// Shared helpers for the outbox tests: a temp directory, an outbox opened in it and a blocking
// append.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "storage/outbox.h"

namespace edgesync::test {

class TempPath {
 public:
  TempPath() {
    char tmpl[] = "/tmp/edgesync-storage-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~TempPath() { std::filesystem::remove_all(dir_); }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

// Completions run on the writer thread: the tests wait on futures instead of an event loop.
inline storage::Outbox::Dispatcher inline_dispatch() {
  return [](std::function<void()> fn) { fn(); };
}

// An outbox file in `dir`, its watermark flushed soon after each delivery.
inline storage::Outbox::Options options(const TempPath& dir) {
  storage::Outbox::Options o;
  o.path = dir.file("outbox.db");
  o.watermark_flush = std::chrono::milliseconds(10);
  return o;
}

// Opened with completions run on the writer thread; null (and the test failed) if it cannot be.
inline std::unique_ptr<storage::Outbox> open_box(const storage::Outbox::Options& o) {
  auto box = storage::Outbox::open(o, inline_dispatch());
  EXPECT_TRUE(box.is_ok()) << box.status().to_string();
  return box ? std::move(*box) : nullptr;
}

inline storage::AppendRequest event(const std::string& id, const std::string& data = "{\"n\":1}") {
  storage::AppendRequest r;
  r.id = id;
  r.type = "inventory.adjusted";
  r.received_ms = 1700000000000;
  r.data = data;
  return r;
}

inline storage::AppendResult append_wait(storage::Outbox& box, storage::AppendRequest req) {
  auto p = std::make_shared<std::promise<storage::AppendResult>>();
  auto f = p->get_future();
  box.append(std::move(req), [p](const storage::AppendResult& r) { p->set_value(r); });
  return f.get();
}

}  // namespace edgesync::test
