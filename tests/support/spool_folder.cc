#include "tests/support/spool_folder.h"

#include <gtest/gtest.h>

#include <system_error>
#include <thread>

#include "tests/harness/temp_dir.h"
#include "tests/support/source_files.h"

namespace edgesync::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool wait_for_path(const fs::path& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(path, ec))) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

SpoolFolder::SpoolFolder(fs::path spool, fs::path staging)
    : spool_(std::move(spool)), staging_(std::move(staging)) {
  fs::create_directories(staging_);
}

void SpoolFolder::drop(const std::string& name, const std::string& text) const {
  write_file(staging_ / name, text);
  fs::rename(staging_ / name, spool_ / name);
}

nlohmann::json SpoolFolder::await_result(const std::string& folder, const std::string& name,
                                         std::chrono::milliseconds timeout) const {
  if (!wait_for_path(spool_ / folder / name, timeout)) {
    ADD_FAILURE() << name << " did not reach " << folder << "/ within " << timeout.count() << " ms";
    return nlohmann::json();
  }
  nlohmann::json r = read_json((spool_ / folder / (name + ".result.json")).string());
  EXPECT_TRUE(r.is_object()) << "no result beside " << folder << "/" << name;
  return r;
}

bool SpoolFolder::empty(const std::string& folder) const {
  std::error_code ec;
  return fs::is_empty(spool_ / folder, ec) && !ec;
}

}  // namespace edgesync::test
