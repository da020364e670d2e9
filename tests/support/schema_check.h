// Checks a JSON document against one of the schemas shipped in config/contracts/, with a
// maintained validator (valijson): the tests hold the agent's messages to the same contract the
// integrators read.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgesync::test {

// Every violation of config/contracts/<schema_file> by `doc`, each as "<path>: <what>"; empty
// when it conforms. The schema's own problems (unreadable, not a schema) come back as one.
std::vector<std::string> schema_violations(const std::string& schema_file,
                                           const nlohmann::json& doc);

}  // namespace edgesync::test
