#include "tests/support/source_files.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace edgesync::test {

std::string source_dir() {
  const char* src = std::getenv("EDGESYNC_SOURCE_DIR");
  return src ? src : ".";
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str(), nullptr, false);
}

}  // namespace edgesync::test
