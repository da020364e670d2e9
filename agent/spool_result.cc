#include "agent/spool_result.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/event_contract.h"
#include "platform/clock.h"
#include "platform/files.h"

namespace edgesync::agent {
namespace {
// Written out once this much is buffered.
constexpr size_t kFlushBytes = 64 * 1024;

Status errno_status(const std::string& what) {
  const int e = errno;
  const std::string msg = what + ": " + std::strerror(e);
  if (e == ENOSPC || e == EDQUOT) return Status::full(msg);
  return Status::io_error(msg);
}
}  // namespace

std::string printable_name(std::string_view name) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : name) {
    if (c >= 0x20 && c <= 0x7e && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

SpoolResult::~SpoolResult() {
  if (fd_ >= 0) abandon();
}

Status SpoolResult::begin(const std::string& dir, std::string_view name,
                          std::string_view format) {
  temp_path_ = dir + "/" + kResultTempName;
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd_ < 0) return errno_status("cannot create " + temp_path_);
  buf_.clear();
  first_line_ = true;
  totals_ = {};
  buf_ += "{\"file\":";
  append_json_string(&buf_, printable_name(name));
  if (!format.empty()) {
    buf_ += ",\"format\":";
    append_json_string(&buf_, format);
  }
  buf_ += ",\"started_at\":";
  append_json_string(&buf_, platform::format_rfc3339_ms(platform::unix_ms()));
  buf_ += ",\n\"lines\":[";
  return Status::ok();
}

Status SpoolResult::add(int64_t number, std::string_view id, bool ok, std::string_view reply) {
  if (!reply.empty() && reply.back() == '\n') reply.remove_suffix(1);
  ++totals_.requests;
  if (!ok) {
    ++totals_.refused;
  } else if (reply.find("\"duplicate\":true") != std::string_view::npos) {
    ++totals_.duplicate;
  } else {
    ++totals_.stored;
  }
  buf_ += first_line_ ? "\n" : ",\n";
  first_line_ = false;
  buf_ += "{\"line\":";
  buf_ += std::to_string(number);
  if (!ok && !id.empty()) {
    buf_ += ",\"id\":";
    append_json_string(&buf_, id);
  }
  // The reply's own members follow: it is an object, '{' ... '}'.
  if (reply.size() >= 2 && reply.front() == '{') {
    buf_ += ',';
    buf_.append(reply.substr(1));
  } else {
    buf_ += '}';
  }
  return buf_.size() >= kFlushBytes ? flush() : Status::ok();
}

Status SpoolResult::flush() {
  const char* p = buf_.data();
  size_t left = buf_.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("cannot write " + temp_path_);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  buf_.clear();
  return Status::ok();
}

Status SpoolResult::finish(std::string_view outcome, std::string_view reason,
                           std::string_view moved_to, const std::string& path) {
  buf_ += first_line_ ? "],\n" : "\n],\n";
  buf_ += "\"totals\":{\"requests\":" + std::to_string(totals_.requests) +
          ",\"ok\":" + std::to_string(totals_.stored + totals_.duplicate) +
          ",\"stored\":" + std::to_string(totals_.stored) +
          ",\"duplicate\":" + std::to_string(totals_.duplicate) +
          ",\"refused\":" + std::to_string(totals_.refused) + "},\n\"outcome\":";
  append_json_string(&buf_, outcome);
  if (!reason.empty()) {
    buf_ += ",\"reason\":";
    append_json_string(&buf_, reason);
  }
  buf_ += ",\"moved_to\":";
  append_json_string(&buf_, moved_to);
  buf_ += ",\"finished_at\":";
  append_json_string(&buf_, platform::format_rfc3339_ms(platform::unix_ms()));
  buf_ += "}\n";
  Status s = flush();
  // Synced before the rename: after a power cut the name never shows a short file.
  if (s && ::fsync(fd_) != 0) s = errno_status("cannot sync " + temp_path_);
  if (!s) {
    abandon();
    return s;
  }
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_path_.c_str(), path.c_str()) != 0) {
    s = errno_status("cannot rename " + temp_path_ + " to " + path);
    ::unlink(temp_path_.c_str());
    return s;
  }
  return platform::sync_dir(platform::dirname_of(path));
}

void SpoolResult::abandon() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  ::unlink(temp_path_.c_str());
}

}  // namespace edgesync::agent
