// The event contracts: one JSON Schema per event type and version, checked against an event's
// `data` before the agent accepts it (docs/CONTRACTS.md). Files are named
// <type>.v<N>.schema.json; the shipped ones are in config/contracts/events/, installed to
// /usr/share/edgesync/contracts/events/, and operators may add folders of their own.
//
// Validation is valijson's (Debian's libvalijson-dev): a maintained implementation of JSON
// Schema draft 7, instead of a validator of our own, reading events in place
// (ordered_json_adapter.h). What this file adds is the translation of
// its findings into what a POS integrator can act on: a JSON pointer into the request, the rule
// broken and what the contract expected.
//
// A registry is not changed once loaded (a reload builds a new one and swaps it in whole), but
// validate() caches compiled patterns: one thread validates at a time.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "platform/status.h"

namespace edgesync::events {

// One broken rule: {"path": "/data/lines/0/qty", "rule": "type", "expected": "integer"}.
struct Violation {
  std::string path;         // JSON pointer into the request (starts with /data)
  std::string rule;         // the JSON Schema keyword, e.g. type, required, minimum, pattern
  nlohmann::json expected;  // what the contract wanted there; null when it cannot say
  // {"path", "rule", "expected"}, in that order (as the integrator reads them).
  nlohmann::ordered_json to_json() const;
};

// Most violations reported for one event: enough to fix a payload, bounded for a hostile one.
constexpr size_t kMaxViolations = 32;

struct ContractInfo {
  std::string type;
  int version = 0;
  std::string file;
  std::string title;
};

class ContractRegistry {
 public:
  ~ContractRegistry();
  ContractRegistry(const ContractRegistry&) = delete;
  ContractRegistry& operator=(const ContractRegistry&) = delete;

  // Loads every <type>.v<N>.schema.json in `dirs`, in order. A folder that does not exist, a
  // file that is not JSON or not a usable schema, a badly formed name, or the same type and
  // version in two files are errors naming the file: an integrator's broken contract must stop
  // the start, not let events through unchecked. Other files in the folders are ignored.
  static Result<std::shared_ptr<const ContractRegistry>> load(const std::vector<std::string>& dirs);
  // A registry with no contracts (every type unknown).
  static std::shared_ptr<const ContractRegistry> empty();

  // The newest version of `type`; 0 when the type has no contract.
  int newest(const std::string& type) const;
  // Whether `type` has a contract of `version`.
  bool has(const std::string& type, int version) const;
  // The versions `type` has, ascending.
  std::vector<int> versions(const std::string& type) const;
  // Checks `data` against the contract (type, version), which must exist (has()). Returns true
  // when it conforms; otherwise fills `violations` (at most kMaxViolations, in valijson's order:
  // a value's own findings before its parent's; one unknown property per object). Without
  // `details` it stops at the first failure and says only that (large events: listing every
  // violation of a 200 KB array costs tens of milliseconds and megabytes).
  // Not for concurrent calls: each contract caches its compiled patterns (the ingest thread
  // is the one caller in the agent).
  // `data` is the tree the agent parses events into (key order kept); valijson reads it in place.
  bool validate(const std::string& type, int version, const nlohmann::ordered_json& data,
                std::vector<Violation>* violations, bool details = true) const;
  std::vector<ContractInfo> list() const;
  size_t size() const { return contracts_.size(); }

 private:
  struct Contract;
  ContractRegistry();
  std::map<std::pair<std::string, int>, std::unique_ptr<Contract>> contracts_;
};

// Parses "<type>.v<N>.schema.json"; false when the name is not of that form.
bool parse_contract_file_name(const std::string& name, std::string* type, int* version);

// Checks one schema document as the registry would load it (the same errors), for
// `edgesync contracts diff` and tests.
Status check_contract_schema(const nlohmann::json& schema);

}  // namespace edgesync::events
