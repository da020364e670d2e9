#include "tests/support/schema_check.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace edgesync::test {

std::vector<std::string> schema_violations(const std::string& schema_file,
                                           const nlohmann::json& doc) {
  const char* src = std::getenv("EDGESYNC_SOURCE_DIR");
  const std::string path = std::string(src ? src : ".") + "/config/contracts/" + schema_file;
  std::ifstream in(path);
  if (!in) return {"cannot read " + path};
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json schema_doc = nlohmann::json::parse(text.str(), nullptr, false);
  if (schema_doc.is_discarded()) return {path + ": not JSON"};
  valijson::Schema schema;
  try {
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter schema_adapter(schema_doc);
    parser.populateSchema(schema_adapter, schema);
  } catch (const std::exception& e) {
    return {path + ": not a usable schema: " + e.what()};
  }
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter doc_adapter(doc);
  std::vector<std::string> out;
  if (validator.validate(schema, doc_adapter, &results)) return out;
  valijson::ValidationResults::Error error;
  while (results.popError(error)) {
    std::string where;
    for (const auto& p : error.context) where += p;
    out.push_back(where + ": " + error.description);
  }
  return out;
}

}  // namespace edgesync::test
