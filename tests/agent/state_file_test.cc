// The agent's status file (agent/state_file.h): written by the agent, read by the CLI and at
// every start. A damaged or hand-edited file reads as damaged; it never ends the reader.
#include "agent/state_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace edgesync::agent {
namespace {

class StateFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/edgesync-state-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& text) {
    const std::string path = dir_ + "/agent-state.json";
    std::ofstream(path, std::ios::trunc) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(StateFile, WhatIsWrittenReadsBack) {
  AgentState s;
  s.pid = 42;
  s.running = true;
  s.hub_state = "connected";
  s.hub_uri = "ssl://hub.example.net:8883";
  s.totals = {{"accepted", 7}};
  const std::string path = dir_ + "/agent-state.json";
  ASSERT_TRUE(write_agent_state(path, s));
  auto r = read_agent_state(path);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->pid, 42);
  EXPECT_TRUE(r->running);
  EXPECT_EQ(r->hub_state, "connected");
  EXPECT_EQ(r->totals["accepted"], 7);
}

// value() threw on a member of the wrong type, and the start that read the file ended with it.
TEST_F(StateFile, AMemberOfTheWrongTypeReadsAsDamaged) {
  for (const char* text : {R"({"pid": "one"})", R"({"hub": {"state": 3}})",
                           R"({"running": "yes"})"}) {
    auto r = read_agent_state(write(text));
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << text;
  }
}

// "totals" is copied, which recurses once per level: 100,000 levels overflowed the stack.
TEST_F(StateFile, AFileNestedTooDeepReadsAsDamaged) {
  auto r = read_agent_state(
      write(R"({"pid": 1, "totals": {"x": )" + std::string(100000, '[') +
            std::string(100000, ']') + "}}"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
}

// The hub's last error is text the agent passes on (a broker's, a certificate's): bytes that are
// not UTF-8 are written as U+FFFD, not thrown on in the middle of a state change.
TEST_F(StateFile, ALastErrorThatIsNotUtf8IsWrittenWithReplacementCharacters) {
  AgentState s;
  s.hub_state = "disconnected";
  s.last_error = "the broker's certificate is for CN=M\xFCller hub";
  const std::string path = dir_ + "/agent-state.json";
  ASSERT_TRUE(write_agent_state(path, s));
  auto r = read_agent_state(path);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->last_error, "the broker's certificate is for CN=M\xEF\xBF\xBDller hub");
}

}  // namespace
}  // namespace edgesync::agent
