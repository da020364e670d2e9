// What changed between two versions of an event contract, and whether each change would refuse
// events the old version accepted (breaking) or not (compatible): `edgesync contracts diff`,
// and the versioning rules of docs/CONTRACTS.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgesync::agent {

struct ContractChange {
  std::string path;  // where in the event's data: "/data/lines/*/qty" ("*": every item)
  bool breaking = false;
  std::string what;  // "minimum raised from 1 to 2", "optional property added", ...
};

// Compares the keywords the contracts use (type, properties, required, additionalProperties,
// items, bounds, enum, const, pattern), following properties, items and additionalProperties
// schemas; any other keyword's change (not, patternProperties, ...) counts as breaking. A change this does
// not understand is reported as breaking: the cautious answer. Annotations (title, description,
// $schema, $id, $comment, examples, default) are ignored.
std::vector<ContractChange> diff_contracts(const nlohmann::json& before, const nlohmann::json& after);

}  // namespace edgesync::agent
