// The agent's log lines: whole JSON objects with the event's fields, the text form technicians
// and the tests read, and the level filter.
#include "platform/log.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace edgesync::platform {
namespace {

// What log() wrote to stderr while `fn` ran.
template <typename Fn>
std::string captured(Fn fn) {
  char path[] = "/tmp/edgesync-log-XXXXXX";
  const int fd = ::mkstemp(path);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  fn();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::string out;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  ::unlink(path);
  return out;
}

class LogTest : public ::testing::Test {
 protected:
  void TearDown() override {
    set_log_format(LogFormat::kText);
    set_log_level(LogLevel::kInfo);
  }
};

TEST_F(LogTest, JsonLinesCarryTheEventItsFieldsAndEscapedText) {
  set_log_format(LogFormat::kJson);
  const std::string out = captured([] {
    log(LogLevel::kWarning, "dead_letter", "seq 7 dead-lettered: \"too big\"\n",
        {{"seq", "7"}, {"reason", "packet too large"}});
  });
  ASSERT_EQ(out.back(), '\n');
  ASSERT_EQ(out.find('\n'), out.size() - 1) << "one line: " << out;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["event"], "dead_letter");
  EXPECT_EQ(j["msg"], "seq 7 dead-lettered: \"too big\"\n");
  EXPECT_EQ(j["seq"], "7");
  EXPECT_EQ(j["reason"], "packet too large");
  EXPECT_FALSE(j["ts"].get<std::string>().empty());
}

TEST_F(LogTest, TextLinesAreWhatATechnicianReads) {
  set_log_format(LogFormat::kText);
  const std::string out =
      captured([] { log(LogLevel::kNotice, "hub_connected", "connected to ssl://hub:8883"); });
  EXPECT_EQ(out, "edgesync: connected to ssl://hub:8883\n");
}

TEST_F(LogTest, LinesBelowTheLevelAreNotWrittenAndTheLevelChangesAtRunTime) {
  set_log_format(LogFormat::kText);
  set_log_level(LogLevel::kWarning);
  EXPECT_EQ(captured([] { log(LogLevel::kInfo, "x", "hidden"); }), "");
  set_log_level(LogLevel::kDebug);
  EXPECT_EQ(captured([] { log(LogLevel::kDebug, "x", "shown"); }), "edgesync: shown\n");
}

// Outside systemd, stderr collected by anything (a file here) gets JSON lines it can parse.
TEST_F(LogTest, AutoIsJsonOutsideSystemdWhenStderrIsNotATerminal) {
  ::unsetenv("JOURNAL_STREAM");
  const std::string out = captured([] {
    set_log_format(LogFormat::kAuto);
    log(LogLevel::kError, "x", "collected");
  });
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << out;
  EXPECT_EQ(j["msg"], "collected");
}

// A technician who runs the agent by hand on a terminal reads plain lines.
TEST_F(LogTest, AutoIsTextOnATerminal) {
  ::unsetenv("JOURNAL_STREAM");
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const int terminal = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(terminal, 0);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(terminal, STDERR_FILENO);
  set_log_format(LogFormat::kAuto);
  log(LogLevel::kError, "x", "plain");
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(terminal);
  char buf[256];
  const ssize_t n = ::read(master, buf, sizeof buf);
  ::close(master);
  ASSERT_GT(n, 0);
  // The terminal's line discipline turns "\n" into "\r\n".
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "edgesync: plain\r\n");
}

TEST_F(LogTest, NamesParseAndBadOnesAreRefused) {
  EXPECT_EQ(*parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_FALSE(parse_log_level("verbose"));
  EXPECT_EQ(*parse_log_format("json"), LogFormat::kJson);
  EXPECT_FALSE(parse_log_format("xml"));
}

}  // namespace
}  // namespace edgesync::platform
