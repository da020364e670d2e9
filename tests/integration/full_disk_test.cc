// A full disk, for real where the machine allows it: the outbox on a 4 MiB tmpfs, a filler file
// taking the rest, the real agent binary and a real producer on its socket. New events are
// refused with storage_error (saying the disk is full), nothing accepted is lost or damaged (all
// of it reaches the hub; PRAGMA integrity_check is ok), and once the filler is removed the same
// agent (no restart) accepts again, seq going on without a gap.
//
// Mounting needs root with CAP_SYS_ADMIN. Where mount(2) is refused (an unprivileged container)
// the test falls back to the in-process form: the ingest server and the outbox on the fault VFS,
// whose writes return SQLITE_FULL (what SQLite makes of ENOSPC). It prints which form ran.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <asio.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include "agent/config.h"
#include "agent/ingest_server.h"
#include "storage/outbox.h"
#include "storage/sqlite.h"
#include "tests/storage/fault_vfs.h"
#include "tests/support/hub_fixture.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

// A small tmpfs, unmounted (lazily: the agent may still hold a file) on destruction.
class SmallDisk {
 public:
  // An empty `dir` mounts nothing.
  explicit SmallDisk(const std::string& dir) : dir_(dir) {
    if (dir_.empty()) {
      error_ = "not tried (EDGESYNC_FULL_DISK_FORM=fault-vfs)";
      return;
    }
    fs::create_directories(dir_);
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=4m,mode=0755") == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

// Writes `path` until the file system says ENOSPC (large chunks, then small ones: the last
// free blocks too). Returns the bytes written.
size_t fill_disk(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  size_t total = 0;
  for (size_t chunk : {size_t{64} << 10, size_t{4} << 10, size_t{512}, size_t{1}}) {
    std::string buf(chunk, 'F');
    while (::write(fd, buf.data(), buf.size()) == static_cast<ssize_t>(buf.size())) total += chunk;
  }
  ::fsync(fd);
  ::close(fd);
  return total;
}

std::string sale(const std::string& id, size_t pad) {
  return make_request(id, "sale.completed",
                      json{{"total_cents", 1299}, {"pad", std::string(pad, 'p')}});
}

bool says_disk_full(const json& reply) {
  const std::string error = reply.value("error", "");
  const std::string message = reply.value("message", "");
  return (error == "storage_error" || error == "outbox_full") &&
         (message.find("full") != std::string::npos || message.find("disk") != std::string::npos);
}

class FullDiskTest : public HubFixture {
 protected:
  void real_disk(const std::string& disk);
  void fault_vfs();
};

TEST_F(FullDiskTest, RefusesDamagesNothingAndRecoversWithoutARestart) {
  const std::string disk = dir_->file("disk");
  // EDGESYNC_FULL_DISK_FORM=fault-vfs runs the fallback where mounting would work (to check it).
  const char* form = std::getenv("EDGESYNC_FULL_DISK_FORM");
  const bool forced_vfs = form != nullptr && std::string(form) == "fault-vfs";
  SmallDisk small(forced_vfs ? "" : disk);
  if (small.mounted()) {
    std::printf("[ full-disk ] form: 4 MiB tmpfs, real ENOSPC, real agent binary\n");
    RecordProperty("full_disk_form", "tmpfs");
    real_disk(disk);
  } else {
    std::printf(
        "[ full-disk ] form: fault VFS (SQLITE_FULL on writes), in process; "
        "mount(2): %s\n",
        small.error().c_str());
    RecordProperty("full_disk_form", "fault-vfs");
    fault_vfs();
  }
}

void FullDiskTest::real_disk(const std::string& disk) {
  agent_->config().storage_path = disk + "/outbox.db";
  agent_->start();
  const pid_t pid = agent_->pid();
  Producer p(agent_->socket_path());

  int64_t accepted = 0;
  for (int i = 0; i < 200; ++i) {
    json r = p.request(sale("before-" + std::to_string(i), 200), 20s);
    ASSERT_EQ(r.value("ok", false), true) << r.dump();
    ASSERT_EQ(r.value("seq", 0), ++accepted);
  }
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(200, 30s));

  const size_t filler = fill_disk(disk + "/filler");
  std::printf("filler: %zu bytes\n", filler);
  // What is already allocated to the WAL may still take a few events; then the disk is full.
  json refused;
  std::string refused_id;
  for (int i = 0; i < 3000 && refused.is_null(); ++i) {
    const std::string id = "during-" + std::to_string(i);
    json r = p.request(sale(id, 2000), 20s);
    ASSERT_TRUE(r.is_object()) << r.dump();
    if (r.value("ok", false)) {
      ASSERT_EQ(r.value("seq", 0), ++accepted) << r.dump();
    } else {
      refused = r;
      refused_id = id;
    }
  }
  ASSERT_FALSE(refused.is_null()) << "a full 4 MiB disk never refused an event";
  std::printf("accepted %lld events in all; refused with: %s\n", static_cast<long long>(accepted),
              refused.dump().c_str());
  EXPECT_TRUE(says_disk_full(refused)) << refused.dump();
  // Still full: refused again, at once, and the connection stays usable.
  json again = p.request(sale(refused_id, 2000), 20s);
  EXPECT_TRUE(says_disk_full(again)) << again.dump();

  // Nothing accepted is lost: every one reaches the hub while the disk is full.
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(static_cast<size_t>(accepted), 60s))
      << hub_->distinct_seq_count() << " of " << accepted << "\n"
      << agent_->log();
  {
    storage::Database::Options ro;
    ro.read_only = true;
    auto db = storage::Database::open(disk + "/outbox.db", ro);
    ASSERT_TRUE(db.is_ok()) << db.status().to_string();
    auto count = (*db)->query_int64("SELECT count(*) FROM events", -1);
    ASSERT_TRUE(count.is_ok()) << count.status().to_string();
    EXPECT_EQ(*count, accepted);
    auto q = (*db)->prepare("PRAGMA integrity_check");
    ASSERT_TRUE(q.is_ok());
    ASSERT_TRUE(*(*q)->step());
    EXPECT_EQ((*q)->column_text(0), "ok");
  }

  // Space comes back: the same agent takes the refused event with the next seq.
  fs::remove(disk + "/filler");
  json stored;
  for (int i = 0; i < 100; ++i) {
    stored = p.request(sale(refused_id, 2000), 20s);
    if (stored.value("ok", false)) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(stored.value("ok", false), true) << stored.dump() << "\n" << agent_->log();
  EXPECT_EQ(stored.value("seq", 0), accepted + 1) << "a refused event must not use up a seq";
  ++accepted;
  for (int i = 0; i < 10; ++i) {
    json r = p.request(sale("after-" + std::to_string(i), 200), 20s);
    ASSERT_EQ(r.value("seq", 0), ++accepted) << r.dump();
  }
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(static_cast<size_t>(accepted), 30s));
  EXPECT_TRUE(first_arrivals_gap_free(events()));
  EXPECT_TRUE(agent_->running());
  EXPECT_EQ(agent_->pid(), pid) << "recovered without a restart";
  ASSERT_TRUE(agent_->terminate().has_value());
}

void FullDiskTest::fault_vfs() {
  FaultSwitches& sw = register_fault_vfs();
  sw.fail_write = false;
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  agent::Config config;
  config.ingest.socket = dir_->file("vfs-ingest.sock");
  config.ingest.unknown_types = "accept";  // no contracts: the path is under test
  storage::Outbox::Options o;
  o.path = dir_->file("vfs-outbox.db");
  o.vfs = "edgesync-fault";
  o.retry_after = 200ms;
  auto box =
      storage::Outbox::open(o, [&io](std::function<void()> fn) { asio::post(io, std::move(fn)); });
  ASSERT_TRUE(box.is_ok()) << box.status().to_string();
  auto core = std::make_unique<agent::IngestCore>(io, config, **box);
  auto server = std::make_unique<agent::IngestServer>(*core);
  ASSERT_TRUE(server->start());
  std::thread loop([&] { io.run(); });
  auto stop = [&] {
    std::promise<void> stopped;
    asio::post(io, [&] { server->stop([&] { stopped.set_value(); }); });
    stopped.get_future().wait_for(10s);
    work.reset();
    loop.join();
    sw.fail_write = false;
  };

  Producer p(config.ingest.socket);
  for (int i = 1; i <= 20; ++i) {
    json r = p.request(sale("before-" + std::to_string(i), 200), 10s);
    EXPECT_EQ(r.value("seq", 0), i) << r.dump();
  }
  sw.fail_write = true;
  json refused = p.request(sale("during", 200), 10s);
  EXPECT_TRUE(says_disk_full(refused)) << refused.dump();
  std::vector<storage::StoredEvent> rows;
  EXPECT_TRUE((*box)->read_pending(0, 100, &rows));
  EXPECT_EQ(rows.size(), 20u) << "what was accepted is intact";
  sw.fail_write = false;
  json stored;
  for (int i = 0; i < 50; ++i) {
    stored = p.request(sale("during", 200), 10s);
    if (stored.value("ok", false)) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(stored.value("seq", 0), 21) << stored.dump();
  stop();
}

}  // namespace
}  // namespace edgesync::test
