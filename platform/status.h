// Errors as values for the platform and storage layers.
//
// A Status is either ok or carries a code and a message that names what failed and, where it
// can, what to do about it. Result<T> is a value or a non-ok Status. Exceptions from
// third-party libraries are caught in the adapter that calls them and turned into these.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace edgesync {

class Status {
 public:
  enum class Code { kOk, kNotFound, kCorruption, kIoError, kInvalidArgument, kUnavailable, kFull };

  Status() = default;
  static Status ok() { return Status(); }
  static Status not_found(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status io_error(std::string msg) { return Status(Code::kIoError, std::move(msg)); }
  static Status invalid_argument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status full(std::string msg) { return Status(Code::kFull, std::move(msg)); }

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "io error: fsync failed on /var/lib/..." style text for logs and users.
  std::string to_string() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T& operator*() { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace edgesync
