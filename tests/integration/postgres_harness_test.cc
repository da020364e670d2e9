// Smoke test of the PostgreSQL harness itself, independent of the hub: a real server started
// from a fresh cluster, databases and SQL through psql, and a commit that survives the server
// being SIGKILLed (crash recovery from the WAL), which the hub's durability tests rely on.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "tests/harness/postgres_server.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::test {
namespace {

// The real uid of a running process, from /proc.
long process_uid(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}

class PostgresHarnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<PostgresServer>(dir_.path().string());
    server_->start();
  }
  void TearDown() override {
    if (HasFailure() && server_) std::cerr << "postgres log:\n" << server_->log();
    server_.reset();  // before dir_ goes away
  }

  TempDir dir_{"pg"};
  std::unique_ptr<PostgresServer> server_;
};

TEST_F(PostgresHarnessTest, StartsAndRunsSqlInANewDatabase) {
  ASSERT_GT(server_->port(), 0);
  EXPECT_EQ(server_->conninfo("hub"),
            "host=127.0.0.1 port=" + std::to_string(server_->port()) + " user=postgres dbname=hub");
  // Never root: the server would have refused to start.
  EXPECT_NE(process_uid(server_->pid()), 0);

  server_->create_database("hub");
  EXPECT_EQ(server_->psql("select current_database(), current_user", "hub"), "hub|postgres");
  server_->psql(
      "create table t (id int primary key, v text); insert into t values (1, 'a'), (2, 'b')",
      "hub");
  EXPECT_EQ(server_->psql("select id, v from t order by id", "hub"), "1|a\n2|b");
  EXPECT_EQ(server_->psql("show fsync"), "on");

  // Names that need quoting, in SQL and in the conninfo.
  server_->create_database("hub o'test");
  EXPECT_EQ(server_->psql("select current_database()", "hub o'test"), "hub o'test");

  try {
    server_->psql("select * from no_such_table", "hub");
    FAIL() << "psql on a missing table did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_table"), std::string::npos) << e.what();
  }
}

TEST_F(PostgresHarnessTest, CommittedRowSurvivesKillAndRestart) {
  server_->create_database("hub");
  server_->psql("create table t (id int primary key, v text)", "hub");
  server_->psql("insert into t values (42, 'kept')", "hub");
  const int port = server_->port();
  const pid_t old_pid = server_->pid();

  server_->kill();
  EXPECT_FALSE(server_->running());
  server_->restart();
  EXPECT_EQ(server_->port(), port);
  EXPECT_NE(server_->pid(), old_pid);
  // The kill left no shutdown checkpoint: the row came back through WAL replay.
  EXPECT_NE(server_->log().find("automatic recovery in progress"), std::string::npos);
  EXPECT_EQ(server_->psql("select v from t where id = 42", "hub"), "kept");

  // And a clean stop and start keep it too.
  server_->stop();
  EXPECT_FALSE(server_->running());
  server_->start();
  EXPECT_EQ(server_->psql("select count(*) from t", "hub"), "1");
}

}  // namespace
}  // namespace edgesync::test
