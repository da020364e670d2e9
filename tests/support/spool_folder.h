// A producer's side of the agent's spool folder (ingest.spool_dir): files written beside the
// folder and renamed in, and the result the agent writes beside each file it has moved.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace edgesync::test {

// Waits for `path` to exist (a symbolic link counts); false on timeout. The agent moves a file
// and puts a result in place with one rename each: either is there whole or not at all.
bool wait_for_path(const std::filesystem::path& path, std::chrono::milliseconds timeout);

class SpoolFolder {
 public:
  // `spool`: the agent's ingest.spool_dir; `staging`: a folder on the same file system where
  // files are written before their rename (created if missing).
  SpoolFolder(std::filesystem::path spool, std::filesystem::path staging);

  const std::filesystem::path& path() const { return spool_; }

  // As a producer should: written beside the folder, then renamed in.
  void drop(const std::string& name, const std::string& text) const;

  // Waits for `name` to be moved to `folder` ("done" or "failed") and returns its result; a
  // test failure and null if it never came.
  nlohmann::json await_result(const std::string& folder, const std::string& name,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  // Whether `folder` ("done", "failed") has nothing in it (nor its results).
  bool empty(const std::string& folder) const;

 private:
  std::filesystem::path spool_;
  std::filesystem::path staging_;
};

}  // namespace edgesync::test
