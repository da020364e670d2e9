#include "agent/certificate_check.h"

#include "platform/clock.h"
#include "platform/crypto.h"

namespace edgesync::agent {

CertificateFacts certificate_facts(const Config& config, int64_t now_ms) {
  CertificateFacts f;
  if (config.hub.cert_file.empty()) return f;
  f.configured = true;
  auto cert = platform::crypto::read_certificate(config.hub.cert_file);
  if (!cert) {
    f.state = "unreadable";
    f.detail = cert.status().message();
    return f;
  }
  f.subject = cert->subject;
  f.not_before_ms = cert->not_before_ms;
  f.not_after_ms = cert->not_after_ms;
  const int64_t left_ms = cert->not_after_ms - now_ms;
  f.days_left = left_ms >= 0 ? left_ms / 86400000 : -((-left_ms + 86399999) / 86400000);
  if (now_ms >= cert->not_after_ms) {
    f.state = "expired";
  } else if (now_ms < cert->not_before_ms) {
    f.state = "not_yet_valid";
  } else if (left_ms < kCertificateWarningDays * 86400000) {
    f.state = "expiring";
  } else {
    f.state = "ok";
  }
  return f;
}

nlohmann::json certificate_json(const Config& config, const CertificateFacts& f) {
  if (!f.configured) return nullptr;
  nlohmann::json j = {{"file", config.hub.cert_file}, {"state", f.state}};
  if (f.state == "unreadable") {
    j["detail"] = f.detail;
    return j;
  }
  j["subject"] = f.subject;
  j["not_before"] = platform::format_rfc3339_ms(f.not_before_ms);
  j["not_after"] = platform::format_rfc3339_ms(f.not_after_ms);
  j["days_left"] = f.days_left;
  return j;
}

std::string certificate_warning(const Config& config, const CertificateFacts& f) {
  const std::string& file = config.hub.cert_file;
  if (f.state == "expired") {
    return "ERROR: the client certificate " + file + " expired at " +
           platform::format_rfc3339_ms(f.not_after_ms) +
           ": the hub will refuse the connection; install a renewed certificate (edgesync "
           "enroll makes a new key and signing request)";
  }
  if (f.state == "expiring") {
    return "WARNING: the client certificate " + file + " expires in " +
           std::to_string(f.days_left) + " day(s), at " +
           platform::format_rfc3339_ms(f.not_after_ms) + ": renew it before then";
  }
  if (f.state == "not_yet_valid") {
    return "WARNING: the client certificate " + file + " is valid only from " +
           platform::format_rfc3339_ms(f.not_before_ms) +
           ": the box's clock may be wrong, or the certificate was issued for later";
  }
  if (f.state == "unreadable") return "ERROR: the client certificate: " + f.detail;
  return {};
}

}  // namespace edgesync::agent
