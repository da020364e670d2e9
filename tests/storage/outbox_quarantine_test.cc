// A damaged or foreign outbox file at start is moved aside byte for byte and a fresh outbox is
// started (the agent used to exit at every start instead, for ever); faults that are not damage
// (a busy file, another agent, a path that is not a file) never move a file. The fixtures are
// made here, by hand, from a real outbox: truncated, zeroed pages, random bytes, another
// application's database, a newer schema, one page overwritten, a WAL without its database.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

#include "platform/files.h"
#include "storage/outbox.h"
#include "storage/sqlite.h"
#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {
namespace {

namespace fs = std::filesystem;
constexpr size_t kPage = 1024;  // the outbox's page size (storage/outbox_database.cc)

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void put_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string marker(int i) { return "MARK-" + std::to_string(100000 + i); }

// A real outbox with `n` pending events of ~300 bytes, closed and checkpointed (everything in
// the database file, no WAL). Returns its incarnation.
std::string make_outbox(const std::string& path, int n) {
  std::string incarnation;
  {
    storage::Outbox::Options o;
    o.path = path;
    auto box = storage::Outbox::open(o, inline_dispatch());
    EXPECT_TRUE(box.is_ok()) << box.status().to_string();
    incarnation = (*box)->incarnation();
    // All queued at once: group commits, a few syncs instead of one per event.
    std::vector<std::future<storage::AppendResult>> done;
    for (int i = 1; i <= n; ++i) {
      auto p = std::make_shared<std::promise<storage::AppendResult>>();
      done.push_back(p->get_future());
      (*box)->append(
          event("ev-" + std::to_string(i), "{\"m\":\"" + marker(i) + std::string(260, 'x') + "\"}"),
          [p](const storage::AppendResult& r) { p->set_value(r); });
    }
    for (auto& f : done) EXPECT_EQ(f.get().outcome, storage::AppendResult::Outcome::kStored);
  }
  auto db = storage::Database::open(path, {});
  EXPECT_TRUE((*db)->exec("PRAGMA wal_checkpoint(TRUNCATE)"));
  return incarnation;
}

// The page of the database file holding `needle`, counted from 0.
size_t page_holding(const std::string& bytes, const std::string& needle) {
  size_t at = bytes.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  return at / kPage;
}

std::vector<std::string> quarantined_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.find(".quarantined-") != std::string::npos) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class QuarantineTest : public ::testing::Test {
 protected:
  std::string path() const { return dir_.file("outbox.db"); }
  std::string dir() const { return platform::dirname_of(path()); }

  // Opens the outbox on whatever lies at path() and checks what the user relies on: the agent
  // opens, the old bytes are kept under the quarantined name, the new outbox takes events from
  // seq 1 under a new incarnation, and the incident is recorded (open, inspect, reopen).
  void expect_quarantined(const std::string& original, const std::string& reason_part) {
    storage::Outbox::Options o;
    o.path = path();
    std::string incarnation;
    {
      auto box = storage::Outbox::open(o, inline_dispatch());
      ASSERT_TRUE(box.is_ok()) << box.status().to_string();
      const auto& q = (*box)->quarantine();
      ASSERT_TRUE(q.has_value());
      EXPECT_NE(q->reason.find(reason_part), std::string::npos) << q->reason;
      EXPECT_TRUE(std::regex_match(q->file, std::regex(".*/outbox\\.db\\.quarantined-"
                                                       "[0-9]{8}T[0-9]{6}Z")))
          << q->file;
      EXPECT_GT(q->at_ms, 1700000000000);
      EXPECT_EQ(bytes_of(q->file), original) << "the quarantined file must be the old bytes";
      EXPECT_NE((*box)->incarnation(), q->incarnation);
      incarnation = (*box)->incarnation();
      auto r = append_wait(**box, event("after-quarantine"));
      EXPECT_EQ(r.outcome, storage::AppendResult::Outcome::kStored);
      EXPECT_EQ(r.seq, 1);
      EXPECT_FALSE((*box)->corruption_seen().has_value());
    }
    ASSERT_EQ(quarantined_files(dir()).size(), 1u);
    auto st = storage::Outbox::inspect(path());
    ASSERT_TRUE(st.is_ok()) << st.status().to_string();
    ASSERT_TRUE(st->quarantine.has_value());
    EXPECT_EQ(st->quarantine->file, quarantined_files(dir())[0]);
    EXPECT_EQ(st->pending, 1);
    // A restart keeps the new outbox and its record, and moves nothing else aside.
    auto again = storage::Outbox::open(o, inline_dispatch());
    ASSERT_TRUE(again.is_ok()) << again.status().to_string();
    EXPECT_EQ((*again)->incarnation(), incarnation);
    ASSERT_TRUE((*again)->quarantine().has_value());
    EXPECT_EQ(quarantined_files(dir()).size(), 1u);
    EXPECT_EQ((*again)->stats().next_seq, 2);
  }

  TempPath dir_;
};

TEST_F(QuarantineTest, TruncatedFile) {
  make_outbox(path(), 600);
  std::string bytes = bytes_of(path());
  ASSERT_GT(bytes.size(), 100 * kPage);
  bytes.resize(bytes.size() * 2 / 5);
  put_bytes(path(), bytes);
  expect_quarantined(bytes, "damaged");
}

TEST_F(QuarantineTest, ZeroedPagesInTheMiddle) {
  make_outbox(path(), 600);
  std::string bytes = bytes_of(path());
  const size_t first = page_holding(bytes, marker(300));
  std::fill(bytes.begin() + first * kPage, bytes.begin() + (first + 8) * kPage, '\0');
  put_bytes(path(), bytes);
  expect_quarantined(bytes, "damaged");
}

TEST_F(QuarantineTest, RandomBytes) {
  std::mt19937 rng(42);
  std::string bytes(64 * 1024, '\0');
  for (auto& c : bytes) c = static_cast<char>(rng());
  put_bytes(path(), bytes);
  expect_quarantined(bytes, "damaged");
}

TEST_F(QuarantineTest, AnotherApplicationsDatabase) {
  {
    auto db = storage::Database::open(path(), {});
    ASSERT_TRUE(
        (*db)->exec("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);"
                    "INSERT INTO customers(name) VALUES('Ada'), ('Grace');"));
  }
  expect_quarantined(bytes_of(path()), "not an outbox");
}

TEST_F(QuarantineTest, OurVersionNumberOnSomeoneElsesTables) {
  {
    auto db = storage::Database::open(path(), {});
    ASSERT_TRUE(
        (*db)->exec("CREATE TABLE events(x);CREATE TABLE state(k, v);"
                    "PRAGMA user_version = 2;"));
  }
  expect_quarantined(bytes_of(path()), "table events has columns x");
}

// A downgrade: the newer release's file is kept whole for it, capture goes on meanwhile.
TEST_F(QuarantineTest, NewerSchemaVersion) {
  const std::string old_incarnation = make_outbox(path(), 20);
  {
    auto db = storage::Database::open(path(), {});
    ASSERT_TRUE((*db)->exec("PRAGMA user_version = 99"));
  }
  const std::string bytes = bytes_of(path());
  expect_quarantined(bytes, "newer than this edgesync");
  auto st = storage::Outbox::inspect(path());
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->quarantine->incarnation, old_incarnation);
  // Nothing of the kept file changed: its 20 events are there for the newer release.
  auto kept = storage::Database::open(st->quarantine->file, {});
  EXPECT_EQ(*(*kept)->query_int64("SELECT count(*) FROM events", 0), 20);
}

TEST_F(QuarantineTest, OneDamagedPageFoundByQuickCheck) {
  const std::string old_incarnation = make_outbox(path(), 600);
  std::string bytes = bytes_of(path());
  const size_t page = page_holding(bytes, marker(300));
  // A table leaf's header (type 0x0D, free-block offset, cell count) overwritten with junk:
  // nothing reads it at open, only a walk of the table or quick_check finds it.
  for (size_t i = 0; i < 8; ++i) bytes[page * kPage + i] = static_cast<char>(0xA5);
  put_bytes(path(), bytes);
  expect_quarantined(bytes, "quick_check");
  auto st = storage::Outbox::inspect(path());
  EXPECT_EQ(st->quarantine->incarnation, old_incarnation);
}

TEST_F(QuarantineTest, WalWithoutItsDatabase) {
  make_outbox(path(), 5);
  const std::string wal = path() + "-wal";
  put_bytes(wal, "stale wal bytes");
  fs::remove(path());
  storage::Outbox::Options o;
  o.path = path();
  auto box = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(box.is_ok()) << box.status().to_string();
  ASSERT_TRUE((*box)->quarantine().has_value());
  EXPECT_EQ(bytes_of((*box)->quarantine()->file + "-wal"), "stale wal bytes");
  EXPECT_EQ(append_wait(**box, event("x")).seq, 1);
}

TEST_F(QuarantineTest, AnEarlierQuarantinedFileIsNeverReplaced) {
  put_bytes(path(), std::string(4096, 'a'));
  storage::Outbox::Options o;
  o.path = path();
  std::string first;
  {
    auto box = storage::Outbox::open(o, inline_dispatch());
    ASSERT_TRUE(box.is_ok());
    first = (*box)->quarantine()->file;
  }
  // Damaged again within the same second: the name is taken, a suffix is added.
  fs::remove(path());
  fs::remove(path() + "-wal");
  fs::remove(path() + "-shm");
  put_bytes(path(), std::string(4096, 'b'));
  auto box = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(box.is_ok()) << box.status().to_string();
  const std::string second = (*box)->quarantine()->file;
  EXPECT_NE(second, first);
  EXPECT_EQ(bytes_of(first), std::string(4096, 'a'));
  EXPECT_EQ(bytes_of(second), std::string(4096, 'b'));
}

// --- What must not be quarantined -------------------------------------------------------------

TEST_F(QuarantineTest, AGoodOutboxIsOpenedAsItIs) {
  const std::string incarnation = make_outbox(path(), 50);
  storage::Outbox::Options o;
  o.path = path();
  auto box = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(box.is_ok()) << box.status().to_string();
  EXPECT_FALSE((*box)->quarantine().has_value());
  EXPECT_EQ((*box)->incarnation(), incarnation);
  EXPECT_EQ((*box)->stats().pending, 50);
  EXPECT_TRUE(quarantined_files(dir()).empty());
}

// Another agent on the same outbox: refused, and a damaged file it holds is not moved away
// under it.
TEST_F(QuarantineTest, AnotherAgentHoldingTheOutboxIsNotCorruption) {
  make_outbox(path(), 10);
  storage::Outbox::Options o;
  o.path = path();
  auto first = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(first.is_ok());
  auto second = storage::Outbox::open(o, inline_dispatch());
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.status().code(), Status::Code::kUnavailable) << second.status().to_string();
  EXPECT_NE(second.status().message().find("another edgesync agent"), std::string::npos);
  EXPECT_EQ(append_wait(**first, event("still-mine")).seq, 11);
  first->reset();

  put_bytes(path(), std::string(8192, 'z'));
  auto held = platform::FileLock::acquire(path() + ".lock");
  ASSERT_TRUE(held.is_ok());
  auto refused = storage::Outbox::open(o, inline_dispatch());
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(bytes_of(path()), std::string(8192, 'z'));
  EXPECT_TRUE(quarantined_files(dir()).empty());
}

// A process outside the agent (a technician's sqlite3 shell) holding an exclusive lock: the
// outbox cannot be read for now, which is no reason to move it.
TEST_F(QuarantineTest, ABusyFileIsNotCorruption) {
  make_outbox(path(), 10);
  const std::string before = bytes_of(path());
  auto other = storage::Database::open(path(), {});
  ASSERT_TRUE(other.is_ok());
  ASSERT_TRUE((*other)->exec("PRAGMA locking_mode=EXCLUSIVE"));
  ASSERT_TRUE((*other)->exec("BEGIN EXCLUSIVE"));
  storage::Outbox::Options o;
  o.path = path();
  auto box = storage::Outbox::open(o, inline_dispatch());  // waits out the 5 s busy timeout
  ASSERT_FALSE(box.is_ok());
  EXPECT_EQ(box.status().code(), Status::Code::kUnavailable) << box.status().to_string();
  EXPECT_TRUE(quarantined_files(dir()).empty());
  (*other)->exec("COMMIT");
  other->reset();
  EXPECT_EQ(bytes_of(path()), before);
  auto later = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(later.is_ok()) << later.status().to_string();
  EXPECT_EQ((*later)->stats().pending, 10);
}

TEST_F(QuarantineTest, APathThatIsNotAFileIsNotCorruption) {
  fs::create_directory(path());
  storage::Outbox::Options o;
  o.path = path();
  auto box = storage::Outbox::open(o, inline_dispatch());
  ASSERT_FALSE(box.is_ok());
  EXPECT_NE(box.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(fs::is_directory(path()));
  EXPECT_TRUE(quarantined_files(dir()).empty());
}

// --- Damage met while running -----------------------------------------------------------------

// A page that goes bad after the start: read_pending reports it as corruption (once per call,
// no retry loop inside storage), the outbox says so (corruption_seen), appends still go in
// where the file can be written, and the next start quarantines the file.
TEST_F(QuarantineTest, DamagedPageMetByReadPendingWhileRunning) {
  make_outbox(path(), 600);
  storage::Outbox::Options o;
  o.path = path();
  auto box = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(box.is_ok()) << box.status().to_string();
  ASSERT_FALSE((*box)->quarantine().has_value());

  const size_t page = page_holding(bytes_of(path()), marker(300));
  int fd = ::open(path().c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const std::string junk(8, static_cast<char>(0xA5));
  ASSERT_EQ(::pwrite(fd, junk.data(), junk.size(), static_cast<off_t>(page * kPage)), 8);
  ::close(fd);

  std::vector<storage::StoredEvent> got;
  ASSERT_TRUE((*box)->read_pending(0, 100, &got));  // before the damage: fine
  EXPECT_EQ(got.size(), 100u);
  Status s = (*box)->read_pending(250, 100, &got);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("quarantined"), std::string::npos) << s.message();
  EXPECT_TRUE(got.empty());
  ASSERT_TRUE((*box)->corruption_seen().has_value());
  EXPECT_EQ(append_wait(**box, event("after-damage")).seq, 601);
  box->reset();

  auto reopened = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(reopened.is_ok()) << reopened.status().to_string();
  ASSERT_TRUE((*reopened)->quarantine().has_value());
  EXPECT_NE((*reopened)->quarantine()->reason.find("quick_check"), std::string::npos);
  EXPECT_EQ(quarantined_files(dir()).size(), 1u);
}

}  // namespace
}  // namespace edgesync::test
