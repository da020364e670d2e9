// What `edgesync send` does the same whichever way in it uses (the ingest socket,
// agent/cli_send.cc; HTTP, agent/cli_send_http.cc): the request lines it reads, the reply lines
// it prints and the exit code they make, so that both ways can be tested with one tool.
#pragma once

#include <cstddef>
#include <fstream>
#include <istream>
#include <string>
#include <string_view>

namespace edgesync::agent {

// The request lines of a file or of standard input.
class SendInput {
 public:
  // `input_file` "" or "-": standard input. False, after saying why on stderr, when the file
  // cannot be read.
  bool open(const std::string& input_file);
  // The next line that is not blank (blank lines are no requests), without its '\n'; false at
  // the end of the input.
  bool next(std::string* line);
  // The input's line number of the line next() returned last, from 1, blank lines counted.
  size_t line_number() const { return line_number_; }

 private:
  std::ifstream file_;
  std::istream* in_ = nullptr;
  size_t line_number_ = 0;
};

// The agent's replies, printed as they came, and what they add up to.
class SendTally {
 public:
  // Prints one event's reply line (the agent's text, without its '\n').
  void reply(std::string_view text);
  size_t replies() const { return replies_; }
  size_t refused() const { return refused_; }
  // The exit code once `sent` events were sent: 0 iff each got a reply and every reply says
  // accepted (stored now or before); else 1, and events without a reply are named on stderr
  // with `why` they got none.
  int exit_code(size_t sent, std::string_view why) const;

 private:
  size_t replies_ = 0;
  size_t refused_ = 0;
};

}  // namespace edgesync::agent
