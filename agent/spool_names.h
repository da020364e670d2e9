// The spool folder's rules for file names and event ids: which names are left alone (a producer
// still writing), which are refused, and the id a request without one is given,
// "<file name>:<line>", which makes taking a file again after a crash store nothing twice.
#pragma once

#include <cstdint>
#include <string>

namespace edgesync::agent {

// Longest file name taken: "<name>:<line>" must stay a valid event id (1-128 printable ASCII)
// with room for a 19-digit line number, and result names must fit the file system's 255.
inline constexpr size_t kMaxSpoolNameLength = 100;

// Names a producer is still writing (a dot-name, or ending in .tmp): left alone until renamed.
bool spool_name_ignored(const std::string& name);

// Why a file may not be taken under this name ("" if it may): a result's suffix, characters
// outside printable ASCII, longer than kMaxSpoolNameLength.
std::string spool_name_problem(const std::string& name);

// A request ready to hand to the ingest core: its text with the id rule applied.
struct SpoolRequest {
  std::string text;
  std::string id;  // the producer's id or the one given; "" if the request has none to tell
};

// A JSON object without "id" gets "<name>:<number>", inserted after its opening brace (the
// rest of the text stays as the producer wrote it). Anything else goes on unchanged, for the
// ingest core to refuse with its usual reply. The top level is read without building the
// document (the request may be large; the ingest core parses it again).
SpoolRequest apply_spool_id_rule(std::string text, const std::string& name, int64_t number);

}  // namespace edgesync::agent
