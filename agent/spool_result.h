// The result file of one spool file: what happened to each of its requests, written as the
// outcomes come (so a file of millions of lines costs no more memory than one), then put in
// place atomically beside the file it describes.
//
//   {"file":"sales-0001.ndjson","format":"ndjson","started_at":"...",
//    "lines":[{"line":1,"ok":true,"id":"sales-0001.ndjson:1","seq":42,"duplicate":false,"v":1},
//             {"line":2,"id":"sales-0001.ndjson:2","ok":false,"error":"invalid_event",
//              "message":"...","violations":[...]}],
//    "totals":{"requests":2,"ok":1,"stored":1,"duplicate":0,"refused":1},
//    "outcome":"failed","reason":"1 of 2 requests refused","moved_to":"failed/sales-0001.ndjson",
//    "finished_at":"..."}
//
// Each entry of "lines" is the reply the socket would have given, with the request's number
// (and, for a refusal, the id the event had or was given) in front. The file is written under
// a temporary name (kResultTempName) in done/, synced, renamed to its place
// and the folder synced: a reader sees no result or a whole one, also after a power cut.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "platform/status.h"

namespace edgesync::agent {

// Suffix of result files; spool file names ending in it are refused, so a file can never take a
// result's name.
inline constexpr std::string_view kResultSuffix = ".result.json";
// The temporary result file's name (a dot-name) in done/ while one is written; one left by a
// crash is removed at start.
inline constexpr const char* kResultTempName = ".spool.result.tmp";

class SpoolResult {
 public:
  struct Totals {
    int64_t requests = 0;
    int64_t stored = 0;
    int64_t duplicate = 0;
    int64_t refused = 0;
  };

  SpoolResult() = default;
  ~SpoolResult();  // abandon() unless finished
  SpoolResult(const SpoolResult&) = delete;
  SpoolResult& operator=(const SpoolResult&) = delete;

  // Starts the temporary file in `dir` for the spool file `name`; `format` is "ndjson",
  // "json_array", or "" when the file was not read. One result at a time per folder: the
  // temporary name is fixed (kResultTempName).
  Status begin(const std::string& dir, std::string_view name, std::string_view format);

  // One request's outcome, in order. `reply` is the reply line (with or without its '\n') and
  // `ok` whether it accepted the event (stored now or before); `id` is the event's id, written
  // for a refusal (whose reply has none) when not empty.
  Status add(int64_t number, std::string_view id, bool ok, std::string_view reply);
  const Totals& totals() const { return totals_; }

  // Ends the document (`reason` empty: none), syncs it, renames it to `path` (in the same
  // file system) and syncs that folder. The temporary file is gone either way.
  Status finish(std::string_view outcome, std::string_view reason, std::string_view moved_to,
                const std::string& path);
  // Removes the temporary file (a file left for a later attempt).
  void abandon();

 private:
  Status flush();

  int fd_ = -1;
  std::string temp_path_;
  std::string buf_;
  bool first_line_ = true;
  Totals totals_;
};

// A file name as text for a log line or a result: bytes outside printable ASCII as \xNN.
std::string printable_name(std::string_view name);

}  // namespace edgesync::agent
