// A scratch directory for one test or one bench run, removed on destruction.
//
// Created with a short name so Unix socket paths inside it stay well below the 108-byte
// sun_path limit. Mode 0755 so a broker that drops privileges can read files in it. Set
// EDGESYNC_KEEP_TEST_DIRS=1 to keep every directory for post-mortem.
#pragma once

#include <filesystem>
#include <string>

namespace edgesync::test {

class TempDir {
 public:
  // Creates "<base>/<prefix>-XXXXXX"; an empty base means $TMPDIR, or /tmp. keep leaves the
  // directory in place on destruction (the bench's --keep). Throws std::runtime_error if it
  // cannot be created.
  explicit TempDir(const std::string& prefix = "es", const std::string& base = "",
                   bool keep = false);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path() / name, as a string.
  std::string file(const std::string& name) const;

 private:
  std::filesystem::path path_;
  bool keep_;
};

// Writes text to a file (truncating), throwing std::runtime_error on failure.
void write_file(const std::filesystem::path& path, const std::string& text);
// Reads a whole file; returns "" if it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace edgesync::test
