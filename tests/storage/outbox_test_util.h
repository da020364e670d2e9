// Shared helpers for the outbox tests: a temp directory and a blocking append.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <future>
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
