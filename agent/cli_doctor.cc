// `edgesync doctor`: the technician's diagnosis of a box, one line per check with the fix under
// each problem, or --json for scripts (config/contracts/doctor.schema.json). The checks are in
// agent/doctor_checks.h; this file runs them and prints the report.
//
// The configuration is loaded by the checks themselves, not before: a box whose configuration
// is broken is the first one a technician has to diagnose.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/cli.h"
#include "agent/cli_format.h"
#include "agent/doctor_checks.h"
#include "agent/version.h"
#include "events/json_text.h"
#include "platform/clock.h"

namespace edgesync::agent {
namespace {

using doctor::Check;
using doctor::Outcome;

// Human labels: failures and warnings in capitals, so they stand out without colour too.
const char* label(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kWarn:
      return "WARN";
    case Outcome::kFail:
      return "FAIL";
    case Outcome::kSkipped:
      return "skipped";
  }
  return "FAIL";
}

const char* colour_of(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "\033[32m";  // green
    case Outcome::kWarn:
      return "\033[33m";  // yellow
    case Outcome::kFail:
      return "\033[1;31m";  // bold red
    case Outcome::kSkipped:
      return "\033[2m";  // dim
  }
  return "";
}

void print_text(const std::string& config_path, const std::vector<Check>& checks, bool colour) {
  size_t name_width = 0;
  for (const auto& c : checks) name_width = std::max(name_width, c.name.size());
  constexpr int kLabelWidth = 7;  // "skipped"
  std::printf("edgesync doctor: %s\n", config_path.c_str());
  int counts[4] = {0, 0, 0, 0};
  for (const auto& c : checks) {
    ++counts[static_cast<int>(c.result)];
    const char* l = label(c.result);
    // Padding counted on the plain label: the colour codes take no columns.
    std::printf("%s%s%s%*s  %-*s  %s\n", colour ? colour_of(c.result) : "", l,
                colour ? "\033[0m" : "", kLabelWidth - static_cast<int>(std::strlen(l)), "",
                static_cast<int>(name_width), c.name.c_str(), c.detail.c_str());
    if (!c.fix.empty() && (c.result == Outcome::kFail || c.result == Outcome::kWarn)) {
      std::printf("%*s  fix: %s\n", kLabelWidth + 2 + static_cast<int>(name_width), "",
                  c.fix.c_str());
    }
  }
  const int ok = counts[static_cast<int>(Outcome::kOk)];
  const int warn = counts[static_cast<int>(Outcome::kWarn)];
  const int fail = counts[static_cast<int>(Outcome::kFail)];
  const int skip = counts[static_cast<int>(Outcome::kSkipped)];
  std::printf("%d failed, %d warning%s, %d ok, %d skipped\n", fail, warn, warn == 1 ? "" : "s", ok,
              skip);
}

void print_json(const std::vector<Check>& checks, bool ok) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& c : checks) {
    arr.push_back({{"name", c.name},
                   {"result", doctor::outcome_name(c.result)},
                   {"detail", c.detail},
                   {"fix", c.fix}});
  }
  nlohmann::json j = {{"version", 1}, {"ok", ok}, {"checks", std::move(arr)}};
  std::cout << events::json_text(j, 2) << "\n";
}

}  // namespace

int cli_doctor(const std::string& config_path, bool json, int timeout_s) {
  if (timeout_s < 1) {
    std::cerr << "edgesync doctor: --timeout must be at least 1 second\n";
    return 2;
  }
  doctor::Options options;
  options.config_path = config_path;
  options.timeout = std::chrono::seconds(timeout_s);
  options.now_ms = platform::unix_ms();
  options.build_unix_s = kBuildUnixSeconds;
  const std::vector<Check> checks = doctor::run_checks(options);
  const bool ok = std::none_of(checks.begin(), checks.end(),
                               [](const Check& c) { return c.result == Outcome::kFail; });
  if (json) {
    print_json(checks, ok);
  } else {
    print_text(config_path, checks, use_colour());
  }
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace edgesync::agent
