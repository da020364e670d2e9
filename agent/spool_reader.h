// Reads the requests out of one spool file, one at a time, in bounded memory: whatever the
// file's size, the reader holds one request of at most ingest.max_line_bytes and one read
// buffer.
//
// Two forms, told apart by the file's first byte that is not white space:
//  - NDJSON: one request per line, as on the socket ('\n' ends a line, a trailing '\r' is
//    dropped, blank lines are skipped but counted, so a request's number is its line number in
//    an editor). The last line needs no '\n': the file was complete when it was renamed in.
//  - a JSON array ('['): each element is one request, numbered from 1. The array's structure
//    (brackets, strings, commas) is checked over the whole file before the first element is
//    handed out, so a file cut short or followed by other text is refused whole, not half
//    ingested. Each element is then parsed on its own by the ingest core, as a line would be.
// A request longer than the bound is handed out as too large (its text dropped, its number
// kept), and the reader goes on with the next one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgesync::agent {

class SpoolReader {
 public:
  enum class Format { kNdjson, kJsonArray };
  enum class Next { kRequest, kEnd, kError };
  struct Request {
    int64_t number = 0;      // line number (NDJSON) or element number (array), from 1
    std::string text;        // the request; empty when too_large
    bool too_large = false;  // longer than max_bytes: dropped
  };

  // `fd` stays the caller's; it is read with pread from offset 0.
  SpoolReader(int fd, size_t max_bytes);

  // Finds the form and, for an array, checks its structure. false: the file cannot be read, or
  // is an array that is not well-formed; error() says what and where.
  bool open();
  Format format() const { return format_; }

  // The next request, the end of the file, or an error (read error: error() says which).
  Next next(Request* out);
  const std::string& error() const { return error_; }

 private:
  // Array scanning, one byte at a time; `keep` fills out->text.
  enum class ArrayState { kBeforeArray, kBeforeFirst, kBeforeElement, kInElement, kAfterArray };
  // Reads the next chunk into buf_; false at the end of the file or on an error (error_ set).
  bool fill();
  Next next_line(Request* out);
  Next next_element(Request* out, bool keep);
  // Returns true when an element ended at this byte (out->text holds it unless dropped).
  bool scan_array_byte(char c, Request* out, bool keep, bool* failed);
  bool structure_error(const std::string& what);

  int fd_;
  size_t max_bytes_;
  Format format_ = Format::kNdjson;
  std::vector<char> buf_;
  size_t pos_ = 0;       // next byte of buf_ to look at
  size_t len_ = 0;       // bytes in buf_
  int64_t offset_ = 0;   // file offset of buf_'s end
  bool eof_ = false;
  std::string error_;
  // NDJSON
  int64_t line_ = 0;
  // Array
  ArrayState state_ = ArrayState::kBeforeArray;
  std::string stack_;  // open brackets of the element being scanned
  bool in_string_ = false;
  bool escaped_ = false;
  int64_t element_ = 0;
  size_t element_bytes_ = 0;
};

}  // namespace edgesync::agent
