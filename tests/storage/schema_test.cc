// Schema migration: an outbox written by the previous schema opens, migrates and keeps its
// events; a newer schema than this build knows (a downgrade) is moved aside untouched for that
// release, and a fresh outbox takes over (tests/storage/outbox_quarantine_test.cc has the rest).
#include <gtest/gtest.h>

#include <regex>

#include "storage/outbox.h"
#include "storage/schema.h"
#include "storage/sqlite.h"
#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {
namespace {

// The exact layout release 0.1.0-dev wrote (schema version 1).
void make_v1_database(const std::string& path) {
  auto db = storage::Database::open(path, {});
  ASSERT_TRUE(db.is_ok());
  ASSERT_TRUE((*db)->exec("PRAGMA journal_mode=WAL"));
  ASSERT_TRUE((*db)->exec(
      "CREATE TABLE events(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,"
      " occurred_at TEXT, received_ms INTEGER NOT NULL, data BLOB NOT NULL);"
      "CREATE TABLE state(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
      "INSERT INTO state(key, value) VALUES('delivered_seq', 1);"
      "INSERT INTO events VALUES(1, 'old-1', 'pos.sale', NULL, 1700000000000, '{\"a\":1}');"
      "INSERT INTO events VALUES(2, 'old-2', 'pos.sale', NULL, 1700000000001, '{\"a\":2}');"
      "PRAGMA user_version = 1;"));
}

TEST(Schema, PreviousVersionIsMigratedAndKeepsItsEvents) {
  TempPath dir;
  std::string path = dir.file("outbox.db");
  make_v1_database(path);
  storage::Outbox::Options o;
  o.path = path;
  auto box = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(box.is_ok()) << box.status().to_string();
  EXPECT_EQ((*box)->delivered_seq(), 1);
  std::vector<storage::StoredEvent> got;
  ASSERT_TRUE((*box)->read_pending(1, 10, &got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "old-2");
  EXPECT_EQ(append_wait(**box, event("new")).seq, 3);
  // The table added by version 2 works.
  (*box)->dead_letter(got[0], "test");
  (*box)->mark_delivered(2);
  (*box)->close();
  std::vector<storage::DeadLetter> dead;
  ASSERT_TRUE(storage::Outbox::list_dead_letters(path, 10, &dead));
  EXPECT_EQ(dead.size(), 1u);
  auto db = storage::Database::open(path, {});
  EXPECT_EQ(*(*db)->query_int64("PRAGMA user_version", 0), storage::kSchemaVersion);
}

TEST(Schema, NewerVersionIsMovedAsideUntouched) {
  TempPath dir;
  std::string path = dir.file("outbox.db");
  make_v1_database(path);
  {
    auto db = storage::Database::open(path, {});
    ASSERT_TRUE((*db)->exec("PRAGMA user_version = 99"));
  }
  storage::Outbox::Options o;
  o.path = path;
  std::string kept;
  {
    auto box = storage::Outbox::open(o, inline_dispatch());
    ASSERT_TRUE(box.is_ok()) << box.status().to_string();
    ASSERT_TRUE((*box)->quarantine().has_value());
    EXPECT_NE((*box)->quarantine()->reason.find("newer than this edgesync"), std::string::npos)
        << (*box)->quarantine()->reason;
    kept = (*box)->quarantine()->file;
  }
  auto db = storage::Database::open(kept, {});
  EXPECT_EQ(*(*db)->query_int64("PRAGMA user_version", 0), 99);
  EXPECT_EQ(*(*db)->query_int64("SELECT count(*) FROM events", 0), 2);
  // The CLI's read-only view refuses the kept file with the same reason.
  auto stats = storage::Outbox::inspect(kept);
  ASSERT_FALSE(stats.is_ok());
  EXPECT_NE(stats.status().message().find("newer"), std::string::npos);
}

TEST(Schema, NotADatabaseIsMovedAside) {
  TempPath dir;
  std::string path = dir.file("outbox.db");
  FILE* f = fopen(path.c_str(), "w");
  fputs("this is not a database file, it is a text file of some length........", f);
  fclose(f);
  storage::Outbox::Options o;
  o.path = path;
  auto box = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(box.is_ok()) << box.status().to_string();
  ASSERT_TRUE((*box)->quarantine().has_value());
  EXPECT_NE((*box)->quarantine()->reason.find("damaged"), std::string::npos);
}

// The hub keys events on (device, incarnation, seq): seq restarts at 1 in a new file, so the
// incarnation must differ between files and never change for one.
TEST(Schema, EveryOutboxHasItsOwnIncarnationThatSurvivesReopening) {
  TempPath dir;
  const std::regex uuid_v4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  storage::Outbox::Options a;
  a.path = dir.file("a.db");
  std::string first;
  {
    auto box = storage::Outbox::open(a, inline_dispatch());
    ASSERT_TRUE(box.is_ok()) << box.status().to_string();
    first = (*box)->incarnation();
  }
  EXPECT_TRUE(std::regex_match(first, uuid_v4)) << first;
  {
    auto box = storage::Outbox::open(a, inline_dispatch());
    ASSERT_TRUE(box.is_ok());
    EXPECT_EQ((*box)->incarnation(), first);
  }
  auto inspected = storage::Outbox::inspect(a.path);
  ASSERT_TRUE(inspected.is_ok()) << inspected.status().to_string();
  EXPECT_EQ(inspected->incarnation, first);

  storage::Outbox::Options b;
  b.path = dir.file("b.db");
  auto other = storage::Outbox::open(b, inline_dispatch());
  ASSERT_TRUE(other.is_ok());
  EXPECT_TRUE(std::regex_match((*other)->incarnation(), uuid_v4));
  EXPECT_NE((*other)->incarnation(), first);
}

TEST(Schema, AnOutboxFromAnEarlierReleaseGetsAnIncarnationWhenMigrated) {
  TempPath dir;
  std::string path = dir.file("outbox.db");
  make_v1_database(path);
  storage::Outbox::Options o;
  o.path = path;
  auto box = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(box.is_ok()) << box.status().to_string();
  EXPECT_EQ((*box)->incarnation().size(), 36u);
}

}  // namespace
}  // namespace edgesync::test
