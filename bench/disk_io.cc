#include "bench/disk_io.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/harness/temp_dir.h"

namespace edgesync::bench {

int64_t proc_write_bytes(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/io");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("write_bytes:", 0) == 0) return std::atoll(line.c_str() + 12);
  }
  return -1;
}

BlockDevice::BlockDevice(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  const std::string mm =
      std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  stat_path_ = "/sys/dev/block/" + mm + "/stat";
  name_ = mm;
  char target[256];
  ssize_t n = ::readlink(("/sys/dev/block/" + mm).c_str(), target, sizeof target - 1);
  if (n > 0) {
    std::string t(target, static_cast<size_t>(n));
    name_ += " (" + t.substr(t.rfind('/') + 1) + ")";
  }
}

int64_t BlockDevice::written_bytes() const {
  if (stat_path_.empty()) return -1;
  std::istringstream in(test::read_file(stat_path_));
  // Fields: reads, reads merged, sectors read, ms reading, writes, writes merged,
  // sectors written (7th), ...
  int64_t v = -1;
  for (int field = 1; field <= 7; ++field) {
    if (!(in >> v)) return -1;
  }
  return v * 512;
}

IoMeter::IoMeter(pid_t pid, const BlockDevice& device)
    : pid_(pid),
      device_(device),
      process0_(proc_write_bytes(pid)),
      device0_(device.written_bytes()) {}

IoDelta IoMeter::finish() const {
  IoDelta d;
  int64_t p = proc_write_bytes(pid_);
  int64_t dev = device_.written_bytes();
  if (process0_ >= 0 && p >= 0) d.process_bytes = p - process0_;
  if (device0_ >= 0 && dev >= 0) d.device_bytes = dev - device0_;
  return d;
}

}  // namespace edgesync::bench
