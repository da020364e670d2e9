// Bytes written: by one process (/proc/PID/io write_bytes: what it handed to the block layer,
// counted when pages are dirtied, all threads) and by the whole block device holding a path
// (/sys/dev/block/MAJ:MIN/stat, sectors written; device-wide, so other work on the machine
// shows up in it too).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace edgesync::bench {

// write_bytes of /proc/PID/io; -1 if unreadable (it needs the bench to be root or the owner).
int64_t proc_write_bytes(pid_t pid);

class BlockDevice {
 public:
  // The device the file system holding `path` lives on.
  explicit BlockDevice(const std::string& path);
  bool readable() const { return written_bytes() >= 0; }
  const std::string& name() const { return name_; }  // "254:0 (vda)"
  // Sectors written x 512 since boot; -1 if unreadable.
  int64_t written_bytes() const;

 private:
  std::string stat_path_;
  std::string name_;
};

struct IoDelta {
  int64_t process_bytes = -1;  // -1: not readable
  int64_t device_bytes = -1;
};

// Brackets a measurement: both counters at construction, the difference at finish().
class IoMeter {
 public:
  IoMeter(pid_t pid, const BlockDevice& device);
  IoDelta finish() const;

 private:
  pid_t pid_;
  const BlockDevice& device_;
  int64_t process0_, device0_;
};

}  // namespace edgesync::bench
