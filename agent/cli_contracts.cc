// `edgesync contracts list|check|diff`: the event contracts for a POS integrator, before going
// live (docs/CONTRACTS.md).
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/cli.h"
#include "agent/contract_diff.h"
#include "agent/event_contract.h"
#include "events/json_text.h"
#include "platform/clock.h"

namespace edgesync::agent {
namespace {

// Output objects keep their keys in the order written (what a reader expects first, first).
using json = nlohmann::ordered_json;

Result<std::shared_ptr<const ContractRegistry>> load_registry(const ContractsCliOptions& o,
                                                              const Config* config) {
  std::vector<std::string> dirs = o.dirs;
  if (dirs.empty() && config) dirs = config->ingest.contract_dirs();
  return ContractRegistry::load(dirs);
}

}  // namespace

int cli_contracts_list(const ContractsCliOptions& options, const Config* config, bool as_json) {
  auto reg = load_registry(options, config);
  if (!reg) {
    std::cerr << "edgesync contracts list: " << reg.status().message() << "\n";
    return 2;
  }
  const auto contracts = (*reg)->list();
  if (as_json) {
    json arr = json::array();
    for (const auto& c : contracts) {
      arr.push_back({{"type", c.type},
                     {"v", c.version},
                     {"newest", (*reg)->newest(c.type) == c.version},
                     {"title", c.title},
                     {"file", c.file}});
    }
    std::cout << events::json_text(
                     json({{"contracts", arr},
                           {"unknown_types", config ? config->ingest.unknown_types : "reject"}}),
                     2)
              << "\n";
    return 0;
  }
  std::printf("%-28s %-4s %-6s %s\n", "TYPE", "V", "NEWEST", "TITLE");
  for (const auto& c : contracts) {
    std::printf("%-28s %-4d %-6s %s\n", c.type.c_str(), c.version,
                (*reg)->newest(c.type) == c.version ? "yes" : "", c.title.c_str());
  }
  std::printf("(%zu contracts; unknown types are %s)\n", contracts.size(),
              config && config->ingest.unknown_types == "accept"
                  ? "accepted unchecked (ingest.unknown_types: accept)"
                  : "refused");
  return 0;
}

int cli_contracts_check(const ContractsCliOptions& options, const Config* config,
                        const std::string& file, bool as_json) {
  auto reg = load_registry(options, config);
  if (!reg) {
    std::cerr << "edgesync contracts check: " << reg.status().message() << "\n";
    return 2;
  }
  std::ifstream in_file;
  std::istream* in = &std::cin;
  if (!file.empty() && file != "-") {
    in_file.open(file);
    if (!in_file) {
      std::cerr << "edgesync contracts check: cannot read " << file << "\n";
      return 2;
    }
    in = &in_file;
  }
  const ContractCheck check{reg->get(),
                            config != nullptr && config->ingest.unknown_types == "accept"};
  IdGenerator ids;
  json results = json::array();
  size_t lines = 0, failed = 0;
  std::string line;
  for (size_t number = 1; std::getline(*in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    ++lines;
    storage::AppendRequest req;
    ParseFailure failure;
    bool checked = false;
    const bool ok = parse_event(line, platform::unix_ms(), ids, check, &req, &failure, &checked);
    if (!ok) ++failed;
    if (as_json) {
      json r = {{"line", number}, {"ok", ok}};
      if (ok) {
        r["type"] = req.type;
        r["v"] = checked ? json(req.contract_version) : json(nullptr);
      } else {
        r["error"] = error_code_name(failure.error);
        r["message"] = failure.message;
        json v = json::array();
        for (const auto& x : failure.violations) v.push_back(x.to_json());
        r["violations"] = v;
      }
      results.push_back(r);
      continue;
    }
    if (ok) {
      std::cout << "line " << number << ": ok " << req.type
                << (checked ? " v" + std::to_string(req.contract_version)
                            : std::string(" (no contract: passed on unchecked)"))
                << "\n";
    } else {
      std::cout << "line " << number << ": " << error_code_name(failure.error) << ": "
                << failure.message << "\n";
      for (const auto& v : failure.violations) {
        std::cout << "    " << v.path << ": " << v.rule;
        if (!v.expected.is_null()) std::cout << " (expected " << v.expected.dump() << ")";
        std::cout << "\n";
      }
    }
  }
  if (as_json) {
    std::cout << events::json_text(
                     json({{"lines", lines}, {"failed", failed}, {"results", results}}), 2)
              << "\n";
  } else {
    std::cout << lines << " lines, " << failed << " refused\n";
  }
  return failed == 0 ? 0 : 1;
}

int cli_contracts_diff(const std::string& old_file, const std::string& new_file, bool as_json) {
  auto read = [](const std::string& path) -> Result<nlohmann::json> {
    std::ifstream in(path);
    if (!in) return Status::io_error("cannot read " + path);
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, false);
    if (doc.is_discarded()) return Status::invalid_argument(path + ": not valid JSON");
    Status s = check_contract_schema(doc);
    if (!s) return Status::invalid_argument(path + ": " + s.message());
    return doc;
  };
  auto before = read(old_file);
  auto after = read(new_file);
  for (const auto* r : {&before, &after}) {
    if (!*r) {
      std::cerr << "edgesync contracts diff: " << r->status().message() << "\n";
      return 2;
    }
  }
  const std::vector<ContractChange> changes = diff_contracts(*before, *after);
  size_t breaking = 0;
  for (const auto& c : changes) breaking += c.breaking ? 1 : 0;
  if (as_json) {
    json arr = json::array();
    for (const auto& c : changes) {
      arr.push_back({{"path", c.path}, {"breaking", c.breaking}, {"what", c.what}});
    }
    std::cout << events::json_text(json({{"changes", arr}, {"breaking", breaking}}), 2) << "\n";
  } else {
    for (const auto& c : changes) {
      std::cout << (c.breaking ? "BREAKING   " : "compatible ") << c.path << ": " << c.what << "\n";
    }
    std::cout << changes.size() << " changes, " << breaking
              << (breaking == 1 ? " breaking" : " breaking")
              << (breaking > 0 ? ": events the old contract accepted would be refused" : "")
              << "\n";
  }
  return breaking == 0 ? 0 : 1;
}

}  // namespace edgesync::agent
