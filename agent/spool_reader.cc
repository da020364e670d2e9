#include "agent/spool_reader.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace edgesync::agent {
namespace {
// One read: small enough to cost nothing on a store box, large enough that a big file takes
// few system calls.
constexpr size_t kReadChunk = 64 * 1024;
// Brackets an array element may nest. The ingest core refuses events nested deeper than 65
// levels anyway; past this the file is taken for hostile and refused whole.
constexpr size_t kMaxScanDepth = 1024;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
}  // namespace

SpoolReader::SpoolReader(int fd, size_t max_bytes)
    : fd_(fd), max_bytes_(max_bytes), buf_(kReadChunk) {}

bool SpoolReader::fill() {
  if (eof_) return false;
  for (;;) {
    const ssize_t n = ::pread(fd_, buf_.data(), buf_.size(), offset_);
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = std::string("cannot read the file: ") + std::strerror(errno);
      return false;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    pos_ = 0;
    len_ = static_cast<size_t>(n);
    offset_ += n;
    return true;
  }
}

bool SpoolReader::open() {
  // The form: the first byte that is not white space.
  bool decided = false;
  while (!decided && fill()) {
    for (; pos_ < len_; ++pos_) {
      if (is_space(buf_[pos_])) continue;
      format_ = buf_[pos_] == '[' ? Format::kJsonArray : Format::kNdjson;
      decided = true;
      break;
    }
  }
  if (!error_.empty()) return false;
  auto rewind = [this] {
    pos_ = len_ = 0;
    offset_ = 0;
    eof_ = false;
    state_ = ArrayState::kBeforeArray;
    element_ = 0;
  };
  rewind();
  if (format_ == Format::kNdjson) return true;
  // A first pass over the whole array, keeping nothing: a damaged file is refused before any
  // of its events is committed.
  Request scratch;
  for (;;) {
    const Next n = next_element(&scratch, false);
    if (n == Next::kError) return false;
    if (n == Next::kEnd) break;
  }
  rewind();
  return true;
}

SpoolReader::Next SpoolReader::next(Request* out) {
  if (!error_.empty()) return Next::kError;
  return format_ == Format::kNdjson ? next_line(out) : next_element(out, true);
}

SpoolReader::Next SpoolReader::next_line(Request* out) {
  out->text.clear();
  out->too_large = false;
  bool have = false;  // bytes of the current line seen
  // A complete line: true if it is a request, false if blank (skipped, its number counted).
  auto finish = [&] {
    out->number = line_;
    if (out->too_large) return true;
    if (!out->text.empty() && out->text.back() == '\r') out->text.pop_back();
    return out->text.find_first_not_of(" \t") != std::string::npos;
  };
  for (;;) {
    if (pos_ == len_ && !fill()) {
      if (!error_.empty()) return Next::kError;
      if (!have) return Next::kEnd;
      ++line_;  // the last line, without its '\n'
      return finish() ? Next::kRequest : Next::kEnd;
    }
    const char* start = buf_.data() + pos_;
    const size_t avail = len_ - pos_;
    const char* nl = static_cast<const char*>(std::memchr(start, '\n', avail));
    const size_t take = nl ? static_cast<size_t>(nl - start) : avail;
    if (take > 0) have = true;
    if (!out->too_large) {
      if (out->text.size() + take > max_bytes_) {
        out->too_large = true;
        std::string().swap(out->text);  // the memory goes back now, not at the next request
      } else {
        out->text.append(start, take);
      }
    }
    pos_ += take + (nl ? 1 : 0);
    if (!nl) continue;
    ++line_;
    if (finish()) return Next::kRequest;
    out->text.clear();
    have = false;
  }
}

SpoolReader::Next SpoolReader::next_element(Request* out, bool keep) {
  out->text.clear();
  out->too_large = false;
  for (;;) {
    if (pos_ == len_ && !fill()) {
      if (!error_.empty()) return Next::kError;
      if (state_ == ArrayState::kAfterArray) return Next::kEnd;
      structure_error("the array is not closed: the file ends inside it (cut short?)");
      return Next::kError;
    }
    const char c = buf_[pos_++];
    bool failed = false;
    if (scan_array_byte(c, out, keep, &failed)) return Next::kRequest;
    if (failed) return Next::kError;
  }
}

bool SpoolReader::structure_error(const std::string& what) {
  const int64_t at = offset_ - static_cast<int64_t>(len_) + static_cast<int64_t>(pos_);
  error_ = "not a well-formed JSON array: " + what + " (at byte " + std::to_string(at) + ")";
  return false;
}

bool SpoolReader::scan_array_byte(char c, Request* out, bool keep, bool* failed) {
  auto fail = [&](const std::string& what) {
    *failed = true;
    return structure_error(what);
  };
  switch (state_) {
    case ArrayState::kBeforeArray:
      if (is_space(c)) return false;
      if (c != '[') return fail("expected [");
      state_ = ArrayState::kBeforeFirst;
      return false;
    case ArrayState::kAfterArray:
      if (is_space(c)) return false;
      return fail("text after the array's closing ]");
    case ArrayState::kBeforeFirst:
    case ArrayState::kBeforeElement:
      if (is_space(c)) return false;
      if (c == ']' && state_ == ArrayState::kBeforeFirst) {
        state_ = ArrayState::kAfterArray;  // []
        return false;
      }
      if (c == ']' || c == ',') return fail("an empty element (a comma too many)");
      state_ = ArrayState::kInElement;
      ++element_;
      element_bytes_ = 0;
      stack_.clear();
      in_string_ = escaped_ = false;
      break;  // c is the element's first byte
    case ArrayState::kInElement:
      break;
  }
  if (in_string_) {
    if (escaped_) {
      escaped_ = false;
    } else if (c == '\\') {
      escaped_ = true;
    } else if (c == '"') {
      in_string_ = false;
    }
  } else if (stack_.empty() && (c == ',' || c == ']')) {
    // The element ends here.
    out->number = element_;
    while (!out->text.empty() && is_space(out->text.back())) out->text.pop_back();
    state_ = c == ',' ? ArrayState::kBeforeElement : ArrayState::kAfterArray;
    return true;
  } else if (c == '"') {
    in_string_ = true;
  } else if (c == '{' || c == '[') {
    if (stack_.size() >= kMaxScanDepth) {
      return fail("nested deeper than " + std::to_string(kMaxScanDepth) + " levels");
    }
    stack_.push_back(c == '{' ? '}' : ']');
  } else if (c == '}' || c == ']') {
    if (stack_.empty() || stack_.back() != c) return fail(std::string("an unmatched ") + c);
    stack_.pop_back();
  }
  ++element_bytes_;
  if (keep && !out->too_large) {
    if (element_bytes_ > max_bytes_) {
      out->too_large = true;
      std::string().swap(out->text);
    } else {
      out->text.push_back(c);
    }
  }
  return false;
}

}  // namespace edgesync::agent
