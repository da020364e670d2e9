// The client certificate's validity, as the agent reports it (status, hub status message, log).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/config.h"

namespace edgesync::agent {

// A certificate this close to its end is reported as expiring.
inline constexpr int64_t kCertificateWarningDays = 30;

struct CertificateFacts {
  bool configured = false;  // hub.cert_file is set
  // "ok", "expiring" (within kCertificateWarningDays), "expired", "not_yet_valid",
  // "unreadable"; empty when not configured.
  std::string state;
  int64_t not_before_ms = 0;
  int64_t not_after_ms = 0;
  int64_t days_left = 0;  // whole days until not_after (negative once expired)
  std::string subject;
  std::string detail;  // why it is unreadable
};

CertificateFacts certificate_facts(const Config& config, int64_t now_ms);

// {"file","state","not_after","days_left","subject"} (or {"file","state","detail"}); null when
// no client certificate is configured.
nlohmann::json certificate_json(const Config& config, const CertificateFacts& facts);

// One line for the log and the technician, empty when there is nothing to say (ok or none).
std::string certificate_warning(const Config& config, const CertificateFacts& facts);

}  // namespace edgesync::agent
