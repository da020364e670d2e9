#include "platform/status.h"

namespace edgesync {

std::string Status::to_string() const {
  const char* name = "ok";
  switch (code_) {
    case Code::kOk: return "ok";
    case Code::kNotFound: name = "not found"; break;
    case Code::kCorruption: name = "corruption"; break;
    case Code::kIoError: name = "io error"; break;
    case Code::kInvalidArgument: name = "invalid argument"; break;
    case Code::kUnavailable: name = "unavailable"; break;
    case Code::kFull: name = "full"; break;
  }
  return std::string(name) + ": " + message_;
}

}  // namespace edgesync
