// A blocking client of the agent's ingest socket (a Unix stream socket): request lines out, one
// reply line per request back, in order.
//
// The bench's producers call read_line() in lock step and pay for nothing but the recv(); the
// tests wait with a timeout. write_all() may run on one thread while another reads (pipelined
// producers); everything else belongs to one thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace edgesync::test {

class IngestClient {
 public:
  // Connects; throws std::runtime_error on failure.
  explicit IngestClient(const std::string& socket_path);
  ~IngestClient();
  IngestClient(const IngestClient&) = delete;
  IngestClient& operator=(const IngestClient&) = delete;

  // Writes all of bytes; throws std::runtime_error if a write fails.
  void write_all(const std::string& bytes);
  // One reply line without its '\n'. Blocks; throws std::runtime_error on EOF or error.
  std::string read_line();
  // One line without its '\n'; nullopt on timeout or EOF (eof() tells which).
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Bytes received but not yet returned as a line (for error messages).
  std::string pending() const;
  bool eof() const { return eof_; }

  // Half-close (no more requests); both directions (unblocks a writer on another thread);
  // full close.
  void shutdown_write();
  void shutdown();
  void close();

 private:
  std::optional<std::string> take_line();
  // One recv() into the buffer; false (and eof_ set) on EOF or error.
  bool receive();

  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;  // start of the first line not yet returned
  bool eof_ = false;
};

}  // namespace edgesync::test
