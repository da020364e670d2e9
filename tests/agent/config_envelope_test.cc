#include "agent/config_envelope.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "platform/clock.h"
#include "platform/crypto.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;
namespace crypto = platform::crypto;

constexpr int64_t kIssued = 1796029200000;   // 2026-11-30T09:00:00Z
constexpr int64_t kExpires = 1796634000000;  // 2026-12-07T09:00:00Z
const std::string kPayload = R"({"hub":{"linger_ms":50},"storage":{"max_bytes":2147483648}})";

// One key pair for the whole file: generating one per test adds nothing.
const crypto::KeyPairPem& key() {
  static const crypto::KeyPairPem k = [] {
    auto made = crypto::generate_p256_key();
    if (!made) std::abort();
    return *made;
  }();
  return k;
}

const crypto::KeyPairPem& other_key() {
  static const crypto::KeyPairPem k = [] {
    auto made = crypto::generate_p256_key();
    if (!made) std::abort();
    return *made;
  }();
  return k;
}

TrustedKeys trusted() { return {{"ops-2026", key().public_pem}}; }

std::string signed_text(int64_t version = 7, int64_t expires = kExpires,
                        const std::string& payload = kPayload,
                        const std::string& private_pem = key().private_pem,
                        const std::string& key_id = "ops-2026") {
  auto text = sign_envelope(private_pem, key_id, "store-042/pos-01", version, kIssued, expires, payload);
  EXPECT_TRUE(text) << text.status().message();
  return text ? *text : std::string();
}

// The message after a change to its members; the signature is left as it was.
std::string edited(const std::string& text, const std::function<void(json&)>& edit) {
  json j = json::parse(text);
  edit(j);
  return j.dump();
}

Status verify_text(const std::string& text, int64_t now_ms = kIssued) {
  auto e = parse_envelope(text);
  if (!e) return e.status();
  return verify_envelope(*e, trusted(), now_ms);
}

// The parse error of `text`, or "" if it parsed.
std::string parse_error(const std::string& text) {
  auto e = parse_envelope(text);
  if (e) return "";
  EXPECT_EQ(e.status().code(), Status::Code::kInvalidArgument);
  return e.status().message();
}

bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// A valid unsigned-looking envelope, for the structural checks (the signature bytes are not
// checked by parse_envelope).
json structural() {
  return {{"version", 3},
          {"issued_at", "2026-11-30T09:00:00Z"},
          {"expires_at", "2026-12-07T09:00:00Z"},
          {"payload", crypto::base64_encode("{}")},
          {"key_id", "ops-2026"},
          {"target", "store-042"},
          {"sig", crypto::base64_encode("not a signature")}};
}

TEST(ConfigEnvelope, SignedEnvelopeParsesAndVerifies) {
  const std::string text = signed_text();
  EXPECT_EQ(text.find('\n'), std::string::npos) << "one line";
  auto e = parse_envelope(text);
  ASSERT_TRUE(e) << e.status().message();
  EXPECT_EQ(e->version, 7);
  EXPECT_EQ(e->issued_at, "2026-11-30T09:00:00Z");
  EXPECT_EQ(e->issued_at_ms, kIssued);
  EXPECT_EQ(e->expires_at, "2026-12-07T09:00:00Z");
  ASSERT_TRUE(e->expires_at_ms.has_value());
  EXPECT_EQ(*e->expires_at_ms, kExpires);
  EXPECT_EQ(e->payload, kPayload);
  EXPECT_EQ(e->key_id, "ops-2026");
  EXPECT_FALSE(e->signature.empty());
  EXPECT_EQ(e->canonical.find("\"sig\""), std::string::npos);
  Status s = verify_envelope(*e, trusted(), kIssued);
  EXPECT_TRUE(s) << s.message();
}

TEST(ConfigEnvelope, SignPutsSigLastAndSortsTheRest) {
  json j = json::parse(signed_text());
  // The text as signed: sorted members then "sig" (checked on the raw text, since nlohmann sorts).
  const std::string text = signed_text();
  size_t prev = 0;
  for (const char* member : {"\"expires_at\"", "\"issued_at\"", "\"key_id\"", "\"payload\"",
                             "\"version\"", "\"sig\""}) {
    size_t at = text.find(member);
    ASSERT_NE(at, std::string::npos) << member;
    EXPECT_GT(at, prev) << member << " out of order in " << text;
    prev = at;
  }
  EXPECT_TRUE(j.contains("sig"));
}

TEST(ConfigEnvelope, NoExpiryWhenZero) {
  auto e = parse_envelope(signed_text(7, 0));
  ASSERT_TRUE(e) << e.status().message();
  EXPECT_FALSE(e->expires_at_ms.has_value());
  EXPECT_TRUE(e->expires_at.empty());
  // Never expires, however late the clock reads.
  EXPECT_TRUE(verify_envelope(*e, trusted(), int64_t{4102444800000}));
}

TEST(ConfigEnvelope, SignRoundsTimesDownToWholeSeconds) {
  auto text = sign_envelope(key().private_pem, "k", "fleet", 1, kIssued + 999, kExpires + 1, "{}");
  ASSERT_TRUE(text);
  auto e = parse_envelope(*text);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->issued_at, "2026-11-30T09:00:00Z");
  EXPECT_EQ(e->issued_at_ms, kIssued);
  EXPECT_EQ(*e->expires_at_ms, kExpires);
}

TEST(ConfigEnvelope, CanonicalBytesIgnoreMemberOrderAndWhitespace) {
  const std::string text = signed_text();
  json j = json::parse(text);
  // Members in reverse name order, pretty-printed with spaces and newlines.
  std::string pretty = "{\n";
  std::vector<std::string> names;
  for (const auto& [k, v] : j.items()) names.push_back(k);
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    pretty += "    " + json(*it).dump() + " :\t" + j[*it].dump() +
              (std::next(it) == names.rend() ? "\n" : ",\n");
  }
  pretty += "}\n";
  ASSERT_NE(pretty, text);
  ASSERT_LT(pretty.find("\"version\""), pretty.find("\"expires_at\""));
  auto a = parse_envelope(text);
  auto b = parse_envelope(pretty);
  ASSERT_TRUE(a && b) << pretty;
  EXPECT_EQ(a->canonical, b->canonical);
  Status s = verify_envelope(*b, trusted(), kIssued);
  EXPECT_TRUE(s) << s.message() << "\n" << pretty;
  // And with json's own indentation.
  EXPECT_TRUE(verify_text(j.dump(4)));
}

TEST(ConfigEnvelope, CanonicalBytesAreSortedCompactJson) {
  auto e = parse_envelope(structural().dump(2));
  ASSERT_TRUE(e) << e.status().message();
  EXPECT_EQ(e->canonical,
            "{\"expires_at\":\"2026-12-07T09:00:00Z\",\"issued_at\":\"2026-11-30T09:00:00Z\","
            "\"key_id\":\"ops-2026\",\"payload\":\"" +
                crypto::base64_encode("{}") + "\",\"target\":\"store-042\",\"version\":3}");
}

TEST(ConfigEnvelope, TamperedMembersFailVerification) {
  const std::string text = signed_text();
  ASSERT_TRUE(verify_text(text));
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
  };
  const Case cases[] = {
      {"payload",
       [](json& j) {
         j["payload"] = crypto::base64_encode(R"({"hub":{"linger_ms":51},"storage":{}})");
       }},
      {"version", [](json& j) { j["version"] = 8; }},
      {"issued_at", [](json& j) { j["issued_at"] = "2026-11-30T09:00:01Z"; }},
      {"expires_at", [](json& j) { j["expires_at"] = "2027-12-07T09:00:00Z"; }},
      {"expires_at removed", [](json& j) { j.erase("expires_at"); }},
  };
  for (const auto& c : cases) {
    Status s = verify_text(edited(text, c.edit));
    EXPECT_FALSE(s) << c.what;
    EXPECT_TRUE(contains(s.message(), "bad signature")) << c.what << ": " << s.message();
  }
  // Another key id that is trusted too, with the same public key: the key id is covered.
  TrustedKeys both = {{"ops-2026", key().public_pem}, {"ops-2027", key().public_pem}};
  auto e = parse_envelope(edited(text, [](json& j) { j["key_id"] = "ops-2027"; }));
  ASSERT_TRUE(e);
  Status s = verify_envelope(*e, both, kIssued);
  EXPECT_FALSE(s);
  EXPECT_TRUE(contains(s.message(), "bad signature")) << s.message();
  EXPECT_TRUE(contains(s.message(), "ops-2027")) << s.message();
}

TEST(ConfigEnvelope, CorruptSignatureFails) {
  const std::string text = signed_text();
  std::string sig = *crypto::base64_decode(json::parse(text)["sig"].get<std::string>());
  sig[sig.size() / 2] ^= 0x01;
  Status s = verify_text(edited(text, [&](json& j) { j["sig"] = crypto::base64_encode(sig); }));
  EXPECT_FALSE(s);
  EXPECT_TRUE(contains(s.message(), "bad signature")) << s.message();
}

TEST(ConfigEnvelope, UnknownKeyIdIsNamed) {
  auto e = parse_envelope(signed_text(7, kExpires, kPayload, key().private_pem, "ops-1999"));
  ASSERT_TRUE(e);
  Status s = verify_envelope(*e, trusted(), kIssued);
  EXPECT_FALSE(s);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(contains(s.message(), "unknown key id \"ops-1999\"")) << s.message();
  // No keys at all.
  EXPECT_FALSE(verify_envelope(*e, TrustedKeys{}, kIssued));
}

TEST(ConfigEnvelope, SignedByAnotherKeyUnderTheSameIdFails) {
  auto e = parse_envelope(signed_text(7, kExpires, kPayload, other_key().private_pem));
  ASSERT_TRUE(e);
  Status s = verify_envelope(*e, trusted(), kIssued);
  EXPECT_FALSE(s);
  EXPECT_TRUE(contains(s.message(), "bad signature for key id \"ops-2026\"")) << s.message();
  // Trusted with the right key, it verifies: the failure was the key.
  EXPECT_TRUE(verify_envelope(*e, {{"ops-2026", other_key().public_pem}}, kIssued));
}

TEST(ConfigEnvelope, TrustedKeyThatIsNotAKeyFailsVerification) {
  auto e = parse_envelope(signed_text());
  ASSERT_TRUE(e);
  Status s = verify_envelope(*e, {{"ops-2026", "not a pem"}}, kIssued);
  EXPECT_FALSE(s);
  EXPECT_TRUE(contains(s.message(), "bad signature")) << s.message();
}

TEST(ConfigEnvelope, ExpiryIsCheckedAgainstNow) {
  auto e = parse_envelope(signed_text());
  ASSERT_TRUE(e);
  EXPECT_TRUE(verify_envelope(*e, trusted(), kExpires - 1));
  for (int64_t now : {kExpires, kExpires + 1, kExpires + 86400000}) {
    Status s = verify_envelope(*e, trusted(), now);
    EXPECT_FALSE(s) << now;
    EXPECT_TRUE(contains(s.message(), "expired at 2026-12-07T09:00:00Z")) << s.message();
    EXPECT_TRUE(contains(s.message(), platform::format_rfc3339_ms(now))) << s.message();
  }
}

TEST(ConfigEnvelope, SignatureIsCheckedBeforeExpiry) {
  // A forged envelope that is also expired is reported as forged.
  const std::string text = signed_text();
  Status s = verify_text(edited(text, [](json& j) { j["version"] = 9; }), kExpires + 1);
  EXPECT_TRUE(contains(s.message(), "bad signature")) << s.message();
}

TEST(ConfigEnvelope, MissingMembersAreNamed) {
  for (const char* member : {"version", "issued_at", "payload", "key_id", "target", "sig"}) {
    json j = structural();
    j.erase(member);
    const std::string error = parse_error(j.dump());
    EXPECT_TRUE(contains(error, std::string(member) + ": required")) << member << ": " << error;
  }
  // expires_at is optional.
  json j = structural();
  j.erase("expires_at");
  EXPECT_EQ(parse_error(j.dump()), "");
}

TEST(ConfigEnvelope, WrongTypesAreNamed) {
  struct Case {
    const char* member;
    json value;
  };
  const Case cases[] = {
      {"issued_at", 1796029200},  {"issued_at", nullptr},     {"expires_at", true},
      {"payload", json::array()}, {"payload", ""},            {"key_id", 7},
      {"key_id", ""},             {"sig", json::object()},    {"sig", ""},
      {"target", 5},              {"target", ""},
      {"version", "7"},           {"version", true},          {"version", nullptr},
      {"version", json::array({7})},
  };
  for (const auto& c : cases) {
    json j = structural();
    j[c.member] = c.value;
    const std::string error = parse_error(j.dump());
    EXPECT_TRUE(contains(error, std::string(c.member) + ": ")) << c.member << " = "
                                                               << c.value.dump() << ": " << error;
  }
}

TEST(ConfigEnvelope, VersionMustBeAPositiveInt64) {
  for (const char* bad : {"0", "-1", "-9223372036854775808", "1.5", "7.0", "1e3",
                          "9223372036854775808", "18446744073709551615", "1e400"}) {
    std::string text = structural().dump();
    const std::string from = "\"version\":3";
    text.replace(text.find(from), from.size(), std::string("\"version\":") + bad);
    const std::string error = parse_error(text);
    EXPECT_NE(error, "") << bad;
    EXPECT_TRUE(contains(error, "version") || contains(error, "JSON")) << bad << ": " << error;
    if (std::string(bad) != "1e400") {
      EXPECT_TRUE(contains(error, "version: must be an integer of at least 1"))
          << bad << ": " << error;
    }
  }
  for (const char* good : {"1", "9223372036854775807"}) {
    std::string text = structural().dump();
    const std::string from = "\"version\":3";
    text.replace(text.find(from), from.size(), std::string("\"version\":") + good);
    auto e = parse_envelope(text);
    ASSERT_TRUE(e) << good << ": " << e.status().message();
    EXPECT_EQ(std::to_string(e->version), good);
  }
}

TEST(ConfigEnvelope, DatesMustBeRfc3339) {
  for (const char* member : {"issued_at", "expires_at"}) {
    for (const char* bad : {"2026-11-30", "2026-11-30 09:00:00Z", "2026-11-30T09:00:00",
                            "2026-02-30T09:00:00Z", "1796029200", "yesterday",
                            "2026-11-30T09:00:00+0100"}) {
      json j = structural();
      j[member] = bad;
      const std::string error = parse_error(j.dump());
      EXPECT_TRUE(contains(error, std::string(member) + ": not an RFC 3339 date-time"))
          << member << " = " << bad << ": " << error;
    }
  }
  json j = structural();
  j["issued_at"] = "2026-11-30T10:00:00.250+01:00";
  auto e = parse_envelope(j.dump());
  ASSERT_TRUE(e) << e.status().message();
  EXPECT_EQ(e->issued_at_ms, kIssued + 250);
  EXPECT_EQ(e->issued_at, "2026-11-30T10:00:00.250+01:00") << "kept as sent";
}

TEST(ConfigEnvelope, Base64MustBeValid) {
  for (const char* member : {"payload", "sig"}) {
    for (const char* bad : {"e30", "e30=\n", "e3 0=", "e30*", "====", "e30==="}) {
      json j = structural();
      j[member] = bad;
      const std::string error = parse_error(j.dump());
      EXPECT_TRUE(contains(error, std::string(member) + ": not valid base64"))
          << member << " = " << bad << ": " << error;
    }
  }
}

TEST(ConfigEnvelope, UnknownMemberIsNamed) {
  json j = structural();
  j["signature"] = "x";
  EXPECT_TRUE(contains(parse_error(j.dump()), "unknown member \"signature\""));
  // Even one that would not be covered by the signature may not ride along.
  j = structural();
  j["Version"] = 4;
  EXPECT_TRUE(contains(parse_error(j.dump()), "unknown member \"Version\""));
}

TEST(ConfigEnvelope, NotAnObjectOrNotJsonIsRefused) {
  for (const char* text : {"[]", "7", "\"envelope\"", "null"}) {
    EXPECT_TRUE(contains(parse_error(text), "must be a JSON object")) << text;
  }
  for (const char* text : {"", "{", "{\"version\":1,}", "not json", "{} {}"}) {
    EXPECT_TRUE(contains(parse_error(text), "not valid JSON")) << text;
  }
}

TEST(ConfigEnvelope, LargerThanOneMebibyteIsRefusedUnread) {
  json j = structural();
  // Exactly 1 MiB of text parses (it is a valid envelope).
  const std::string base = j.dump();
  const size_t limit = size_t{1} << 20;
  std::string at_limit = base;
  at_limit.insert(at_limit.size() - 1, limit - base.size(), ' ');
  ASSERT_EQ(at_limit.size(), limit);
  EXPECT_EQ(parse_error(at_limit), "");
  std::string over = at_limit;
  over.insert(over.size() - 1, " ");
  EXPECT_TRUE(contains(parse_error(over), "larger than 1048576 bytes")) << parse_error(over);
}

TEST(ConfigEnvelope, ErrorsStartWithEnvelope) {
  // Every structural problem reads "envelope: ..." so a report says what was wrong with what.
  json j = structural();
  j.erase("sig");
  EXPECT_EQ(parse_error(j.dump()).rfind("envelope: ", 0), 0u);
}

TEST(ConfigEnvelope, LoadTrustedKeysReadsEachFile) {
  char tmpl[] = "/tmp/edgesync-envelope-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    std::ofstream(dir + "/ops.pem") << key().public_pem;
  }
  auto keys = load_trusted_keys({{"ops-2026", dir + "/ops.pem"}});
  ASSERT_TRUE(keys) << keys.status().message();
  EXPECT_EQ(keys->at("ops-2026"), key().public_pem);
  // The keys read verify what they signed.
  auto e = parse_envelope(signed_text());
  ASSERT_TRUE(e);
  EXPECT_TRUE(verify_envelope(*e, *keys, kIssued));

  auto missing = load_trusted_keys({{"ops-2026", dir + "/ops.pem"}, {"old", dir + "/gone.pem"}});
  EXPECT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(contains(missing.status().message(), "remote_config.trusted_keys.old"))
      << missing.status().message();
  EXPECT_TRUE(contains(missing.status().message(), dir + "/gone.pem"))
      << missing.status().message();

  auto none = load_trusted_keys({});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  std::filesystem::remove_all(dir);
}

TEST(ConfigEnvelope, TargetAndKeyIdMustBeNames) {
  for (const char* target : {"fleet", "store-042", "store-042/pos-01"}) {
    json j = structural();
    j["target"] = target;
    EXPECT_EQ(parse_error(j.dump()), "") << target;
  }
  for (const char* target : {"a/b/c", "/x", "x/", "store 042", "a+b", "#"}) {
    json j = structural();
    j["target"] = target;
    EXPECT_TRUE(contains(parse_error(j.dump()), "target:")) << target;
  }
  // A key id with a newline would forge a log line: refused, and the message is escaped.
  json j = structural();
  j["key_id"] = "ops\nedgesync: pushed configuration applied";
  const std::string error = parse_error(j.dump());
  EXPECT_TRUE(contains(error, "key_id:")) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_EQ(printable("a\nb\x01\xff"), "a\\x0ab\\x01\\xff");
}

}  // namespace
}  // namespace edgesync::agent
