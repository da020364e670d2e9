// `edgesync doctor` against the real agent and a real mosquitto over mutual TLS: every check
// passes on a healthy box (exit 0, --json in the shape of config/contracts/doctor.schema.json,
// the running agent's session untouched), and each kind of breakage a technician meets fails
// its own check with exit 1, the exact cause and the fix: an invalid configuration file, a
// damaged outbox, the broker down, a hub name that does not resolve, a CA file that is no
// certificate or is missing, a CA that did not sign the hub's certificate, a hub certificate for
// another name or expired, no client certificate where the hub wants one, an expired client
// certificate, a broker that refuses the CONNECT, a wrong ingest socket mode, a stopped agent.
// Warnings (a client certificate about to expire, a broker packet limit below the ingest limit, a
// disk too small for the budget) keep exit 0.
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "storage/sqlite.h"
#include "tests/harness/mosquitto_broker.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"
#include "tests/support/hub_fixture.h"
#include "tests/support/schema_check.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::vector<std::string> kCheckOrder = {
    "config",      "clock",      "database", "disk", "agent", "socket", "control", "ca",
    "client_cert", "client_key", "dns",      "tcp",  "tls",   "mqtt"};

// Certificate extensions for the long-lived test CA and client certificate below.
constexpr const char* kOpensslExtensions = R"(
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
)";

void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = run_command(argv, "", 30s);
  ASSERT_TRUE(r.exited_ok()) << r.describe();
}

struct Doctor {
  CommandResult run;
  json report;  // --json runs
  std::map<std::string, json> by_name;

  std::string result(const std::string& name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? "(missing)" : it->second.value("result", "(none)");
  }
  std::string detail(const std::string& name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? "" : it->second.value("detail", "");
  }
  std::string fix(const std::string& name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? "" : it->second.value("fix", "");
  }
  std::string describe() const { return run.describe(); }
};

Doctor run_doctor(const std::string& config_path, std::vector<std::string> extra = {"--json"}) {
  std::vector<std::string> args{"doctor", "--config", config_path, "--timeout", "3"};
  args.insert(args.end(), extra.begin(), extra.end());
  Doctor d;
  d.run = AgentProcess::run_cli(args, "", 60s);
  EXPECT_FALSE(d.run.timed_out) << d.run.describe();
  d.report = json::parse(d.run.out, nullptr, false);
  if (d.report.is_object() && d.report.contains("checks") && d.report["checks"].is_array()) {
    for (const auto& c : d.report["checks"]) {
      if (c.is_object()) d.by_name[c.value("name", "")] = c;
    }
  }
  return d;
}

bool resolves(const char* name) {
  addrinfo* list = nullptr;
  if (::getaddrinfo(name, nullptr, nullptr, &list) != 0) return false;
  ::freeaddrinfo(list);
  return true;
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

class DoctorTest : public HubFixture {
 protected:
  // The broker announces limits in its CONNACK that doctor must report.
  BrokerOptions broker_options() const override {
    BrokerOptions o;
    o.extra_config = "max_inflight_messages 20\nmax_packet_size 1048576";
    return o;
  }

  void SetUp() override {
    HubFixture::SetUp();
    // The harness's certificates last three days: doctor rightly warns about them. A healthy box
    // has a CA and a client certificate valid for long: the same CA key and name, re-issued for
    // ten years (what the broker's copy verifies stays valid), and a client certificate for 400
    // days signed with it.
    const std::string dir = dir_->path().string();
    const std::string ca_key = std::filesystem::path(tls_.ca_file).parent_path() / "ca.key";
    const std::string cnf = dir + "/doctor-ext.cnf";
    write_file(cnf, kOpensslExtensions);
    long_ca_ = dir + "/long-ca.pem";
    ASSERT_NO_FATAL_FAILURE(openssl({"req", "-new", "-x509", "-config", cnf, "-key", ca_key,
                                     "-subj", "/CN=edgesync test CA", "-days", "3650", "-sha256",
                                     "-extensions", "ca_ext", "-out", long_ca_}));
    long_client_key_ = dir + "/long-client.key";
    long_client_cert_ = dir + "/long-client.pem";
    ASSERT_NO_FATAL_FAILURE(openssl({"genpkey", "-algorithm", "EC", "-pkeyopt",
                                     "ec_paramgen_curve:P-256", "-out", long_client_key_}));
    ::chmod(long_client_key_.c_str(), 0600);
    ASSERT_NO_FATAL_FAILURE(openssl({"req", "-new", "-config", cnf, "-key", long_client_key_,
                                     "-subj", "/CN=pos-01", "-out", dir + "/long-client.csr"}));
    ASSERT_NO_FATAL_FAILURE(
        openssl({"x509", "-req", "-in", dir + "/long-client.csr", "-CA", long_ca_, "-CAkey", ca_key,
                 "-set_serial", "4242", "-days", "400", "-sha256", "-extfile", cnf, "-extensions",
                 "client_ext", "-out", long_client_cert_}));
    agent_->config().ca_file = long_ca_;
    agent_->config().cert_file = long_client_cert_;
    agent_->config().key_file = long_client_key_;
  }

  // The agent's configuration with `patch` merged in (JSON merge patch), as another file in
  // the same directory: the same outbox, socket and agent state unless the patch says otherwise.
  std::string config_with(const std::string& name, const json& patch) {
    json j = agent_->config().to_json();
    j.merge_patch(patch);
    const std::string path = dir_->file(name);
    write_file(path, j.dump(2) + "\n");
    return path;
  }

  void start_agent_and_send(size_t n) {
    agent_->start();
    Producer p(agent_->socket_path());
    auto replies = p.send_all(lines_of(make_events("doc", n)), 60s);
    ASSERT_EQ(replies.size(), n);
    for (const auto& r : replies) ASSERT_EQ(r.value("ok", false), true) << r.dump();
  }

  // The checks other than `except` are ok, or skipped where that is the healthy answer (dns:
  // the test hub's URI is an address).
  void expect_others_healthy(const Doctor& d, const std::set<std::string>& except) {
    for (const auto& name : kCheckOrder) {
      if (except.count(name)) continue;
      const std::string want = name == "dns" ? "skipped" : "ok";
      EXPECT_EQ(d.result(name), want) << name << ": " << d.detail(name) << "\n" << d.describe();
    }
  }

  std::string long_ca_;
  std::string long_client_key_;
  std::string long_client_cert_;
};

TEST_F(DoctorTest, AllChecksPassOnAHealthyBox) {
  ASSERT_NO_FATAL_FAILURE(start_agent_and_send(20));
  ASSERT_TRUE(hub_->wait_for_distinct_seqs(20, 30s));

  Doctor d = run_doctor(agent_->config_path());
  EXPECT_EQ(d.run.exit_code(), 0) << d.describe();
  ASSERT_TRUE(d.report.is_object()) << d.describe();
  for (const auto& e : schema_violations("doctor.schema.json", d.report)) {
    ADD_FAILURE() << "doctor.schema.json: " << e;
  }
  EXPECT_EQ(d.report.value("version", 0), 1);
  EXPECT_EQ(d.report.value("ok", false), true);
  std::vector<std::string> names;
  for (const auto& c : d.report["checks"]) names.push_back(c.value("name", ""));
  EXPECT_EQ(names, kCheckOrder);
  expect_others_healthy(d, {});
  for (const auto& [name, c] : d.by_name) EXPECT_EQ(c.value("fix", "?"), "") << name;
  // What the broker's CONNACK announced, against the configuration.
  EXPECT_TRUE(contains(d.detail("mqtt"), "Receive Maximum 20")) << d.detail("mqtt");
  EXPECT_TRUE(contains(d.detail("mqtt"), "not hub.max_inflight 64")) << d.detail("mqtt");
  EXPECT_TRUE(contains(d.detail("mqtt"), "Maximum Packet Size 1048576")) << d.detail("mqtt");
  EXPECT_TRUE(contains(d.detail("mqtt"), "edgesync-store-042-pos-01-doctor")) << d.detail("mqtt");
  EXPECT_TRUE(contains(d.detail("tls"), "verified")) << d.detail("tls");
  EXPECT_TRUE(contains(d.detail("socket"), "mode 0660")) << d.detail("socket");
  EXPECT_TRUE(contains(d.detail("control"), "the agent answers")) << d.detail("control");
  EXPECT_TRUE(contains(d.detail("database"), "quick_check ok")) << d.detail("database");

  // The human form, piped: no colour, one aligned line per check, a summary.
  Doctor text = run_doctor(agent_->config_path(), {});
  EXPECT_EQ(text.run.exit_code(), 0) << text.describe();
  EXPECT_FALSE(contains(text.run.out, "\033[")) << "colour codes on a pipe:\n" << text.run.out;
  std::istringstream lines(text.run.out);
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  ASSERT_EQ(rows.size(), kCheckOrder.size() + 2) << text.run.out;
  EXPECT_EQ(rows.front(), "edgesync doctor: " + agent_->config_path());
  EXPECT_EQ(rows.back(), "0 failed, 0 warnings, 13 ok, 1 skipped");
  size_t width = 0;
  for (const auto& n : kCheckOrder) width = std::max(width, n.size());
  for (size_t i = 0; i < kCheckOrder.size(); ++i) {
    const std::string& row = rows[i + 1];
    const std::string label = kCheckOrder[i] == "dns" ? "skipped" : "ok";
    EXPECT_EQ(row.substr(0, label.size()), label) << row;
    EXPECT_EQ(row.substr(9, kCheckOrder[i].size()), kCheckOrder[i]) << row;
    ASSERT_GT(row.size(), 9 + width + 2) << row;
    EXPECT_EQ(row.substr(9 + width, 2), "  ") << row;
    EXPECT_NE(row[9 + width + 2], ' ') << "detail not aligned: " << row;
  }

  // By name: resolved, and matched against the certificate's DNS name. (A minimal root
  // without an /etc/hosts entry for localhost cannot resolve it: then only the address form.)
  if (resolves("localhost")) {
    Doctor named = run_doctor(config_with(
        "named.json", {{"hub", {{"uri", "ssl://localhost:" + std::to_string(broker_->port())}}}}));
    EXPECT_EQ(named.run.exit_code(), 0) << named.describe();
    EXPECT_EQ(named.result("dns"), "ok") << named.describe();
    EXPECT_EQ(named.result("tls"), "ok") << named.describe();
  }

  // The probe used a client id of its own: the agent kept its one connection.
  json st = status_json();
  EXPECT_EQ(st["hub"].value("state", ""), "connected") << st.dump();
  const std::string log = agent_->log();
  size_t connects = 0;
  for (size_t pos = log.find("connected to"); pos != std::string::npos;
       pos = log.find("connected to", pos + 1)) {
    ++connects;
  }
  EXPECT_EQ(connects, 1u) << "the agent reconnected while doctor ran:\n" << log;
}

TEST_F(DoctorTest, WarningsKeepExitZero) {
  ASSERT_NO_FATAL_FAILURE(start_agent_and_send(1));
  // Events the agent takes but the broker's packet limit does not, and a budget the disk cannot
  // hold; and the harness's own client certificate, which expires in three days.
  const std::string path = config_with(
      "warn.json",
      {{"ingest", {{"max_line_bytes", 2 * 1048576}}},
       {"storage", {{"max_bytes", int64_t{1} << 50}}},
       {"hub", {{"cert_file", tls_.client_cert_file}, {"key_file", tls_.client_key_file}}}});
  Doctor d = run_doctor(path);
  EXPECT_EQ(d.run.exit_code(), 0) << d.describe();
  EXPECT_EQ(d.report.value("ok", false), true) << d.describe();
  EXPECT_EQ(d.result("mqtt"), "warn") << d.detail("mqtt");
  EXPECT_TRUE(contains(d.detail("mqtt"), "dead-lettered")) << d.detail("mqtt");
  EXPECT_TRUE(contains(d.fix("mqtt"), "ingest.max_line_bytes to at most 1047552")) << d.fix("mqtt");
  EXPECT_EQ(d.result("disk"), "warn") << d.detail("disk");
  EXPECT_TRUE(contains(d.fix("disk"), "storage.max_bytes")) << d.fix("disk");
  EXPECT_EQ(d.result("client_cert"), "warn") << d.detail("client_cert");
  EXPECT_TRUE(contains(d.detail("client_cert"), "expires in 2 day(s)")) << d.detail("client_cert");
  EXPECT_TRUE(contains(d.fix("client_cert"), "edgesync enroll")) << d.fix("client_cert");
  expect_others_healthy(d, {"mqtt", "disk", "client_cert"});
}

TEST(DoctorConfigTest, InvalidConfigFileFailsAndSkipsWhatNeedsIt) {
  TempDir dir;
  const std::string bad = dir.file("bad.json");
  write_file(bad, R"({"device": {"id": "pos-01", "store_id": "store-042"},
                      "storage": {"max_bytes": "lots"}})");
  Doctor d = run_doctor(bad);
  EXPECT_EQ(d.run.exit_code(), 1) << d.describe();
  EXPECT_EQ(d.report.value("ok", true), false) << d.describe();
  EXPECT_EQ(d.result("config"), "fail");
  EXPECT_TRUE(contains(d.detail("config"), "storage.max_bytes")) << d.detail("config");
  EXPECT_TRUE(contains(d.detail("config"), "hub: required")) << d.detail("config");
  EXPECT_TRUE(contains(d.fix("config"), "edgesync check-config --config " + bad))
      << d.fix("config");
  EXPECT_EQ(d.result("clock"), "ok") << d.detail("clock");
  for (size_t i = 2; i < kCheckOrder.size(); ++i) {
    EXPECT_EQ(d.result(kCheckOrder[i]), "skipped") << kCheckOrder[i];
    EXPECT_TRUE(contains(d.detail(kCheckOrder[i]), "see config")) << d.detail(kCheckOrder[i]);
  }

  // Not JSON at all, and no file: the same verdict with the loader's words.
  write_file(bad, "{ this is not json");
  Doctor garbage = run_doctor(bad);
  EXPECT_EQ(garbage.run.exit_code(), 1) << garbage.describe();
  EXPECT_EQ(garbage.result("config"), "fail") << garbage.describe();
  Doctor missing = run_doctor(dir.file("missing.json"), {});
  EXPECT_EQ(missing.run.exit_code(), 1) << missing.describe();
  EXPECT_TRUE(contains(missing.run.out, "cannot read config file")) << missing.describe();
  EXPECT_TRUE(contains(missing.run.out, "fix: ")) << missing.describe();

  // Bad usage is not a finding.
  CommandResult usage = AgentProcess::run_cli({"doctor", "--timeout", "0"}, "", 20s);
  EXPECT_EQ(usage.exit_code(), 2) << usage.describe();
}

TEST_F(DoctorTest, DamagedOutboxCopyFailsTheDatabaseCheck) {
  ASSERT_NO_FATAL_FAILURE(start_agent_and_send(1500));
  // A consistent copy of the live outbox, taken beside the running agent, then pages in its
  // middle overwritten as a failing flash card would leave them.
  const std::string copy = dir_->file("outbox-copy.db");
  {
    storage::Database::Options o;
    o.read_only = true;
    auto db = storage::Database::open(agent_->config().storage_path, o);
    ASSERT_TRUE(db) << db.status().to_string();
    ASSERT_TRUE((*db)->exec(("VACUUM INTO '" + copy + "'").c_str())) << "VACUUM INTO failed";
  }
  const auto size = std::filesystem::file_size(copy);
  ASSERT_GT(size, 40u * 4096) << "too small an outbox to damage its middle";
  {
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 3 / 4096 * 4096));
    const std::string junk(size / 3, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    ASSERT_TRUE(f.good());
  }
  Doctor d = run_doctor(config_with("copy.json", {{"storage", {{"path", copy}}}}));
  EXPECT_EQ(d.run.exit_code(), 1) << d.describe();
  EXPECT_EQ(d.result("database"), "fail") << d.describe();
  EXPECT_TRUE(contains(d.detail("database"), copy + " is damaged")) << d.detail("database");
  EXPECT_TRUE(contains(d.fix("database"), "systemctl restart edgesync")) << d.fix("database");
  EXPECT_TRUE(contains(d.fix("database"), copy + ".quarantined-")) << d.fix("database");
  expect_others_healthy(d, {"database"});
}

TEST_F(DoctorTest, BrokerDownFailsTcpAndSkipsTlsAndMqtt) {
  agent_->start();
  hub_->disconnect();
  broker_->stop();
  Doctor d = run_doctor(agent_->config_path());
  EXPECT_EQ(d.run.exit_code(), 1) << d.describe();
  EXPECT_EQ(d.result("tcp"), "fail") << d.describe();
  EXPECT_TRUE(contains(d.detail("tcp"), "Connection refused")) << d.detail("tcp");
  EXPECT_TRUE(contains(d.fix("tcp"), "broker is down")) << d.fix("tcp");
  EXPECT_EQ(d.result("tls"), "skipped");
  EXPECT_TRUE(contains(d.detail("tls"), "see tcp")) << d.detail("tls");
  EXPECT_EQ(d.result("mqtt"), "skipped");
  expect_others_healthy(d, {"tcp", "tls", "mqtt"});
}

TEST_F(DoctorTest, UntrustedCaGivesTheExactTlsError) {
  agent_->start();
  // A CA of another PKI: valid itself, but it did not sign the hub's certificate.
  const std::string dir = dir_->path().string();
  ASSERT_NO_FATAL_FAILURE(openssl({"genpkey", "-algorithm", "EC", "-pkeyopt",
                                   "ec_paramgen_curve:P-256", "-out", dir + "/other-ca.key"}));
  write_file(dir + "/other.cnf", kOpensslExtensions);
  ASSERT_NO_FATAL_FAILURE(
      openssl({"req", "-new", "-x509", "-config", dir + "/other.cnf", "-key", dir + "/other-ca.key",
               "-subj", "/CN=some other CA", "-days", "3650", "-extensions", "ca_ext", "-out",
               dir + "/other-ca.pem"}));
  Doctor d =
      run_doctor(config_with("other-ca.json", {{"hub", {{"ca_file", dir + "/other-ca.pem"}}}}));
  EXPECT_EQ(d.run.exit_code(), 1) << d.describe();
  EXPECT_EQ(d.result("ca"), "ok") << d.detail("ca");
  EXPECT_EQ(d.result("tls"), "fail") << d.describe();
  EXPECT_TRUE(
      contains(d.detail("tls"), "The certificate is not correctly signed by the trusted CA"))
      << d.detail("tls");
  EXPECT_TRUE(contains(d.detail("tls"), "issued by CN=edgesync test CA")) << d.detail("tls");
  EXPECT_TRUE(contains(d.fix("tls"), "hub.ca_file")) << d.fix("tls");
  EXPECT_EQ(d.result("mqtt"), "skipped");
  expect_others_healthy(d, {"tls", "mqtt"});
}

// A hub name in the reserved .invalid domain (RFC 2606) resolves nowhere, with a network or
// without one: dns fails naming the host, the later hub steps are skipped because of it, and
// doctor ends within its --timeout even where the name server never answers.
TEST_F(DoctorTest, UnresolvableHubNameFailsDns) {
  agent_->start();
  const std::string host = "edgesync-hub.invalid";
  const std::string path =
      config_with("unresolvable.json", {{"hub", {{"uri", "ssl://" + host + ":8883"}}}});
  const auto start = std::chrono::steady_clock::now();
  Doctor d = run_doctor(path);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(d.run.exit_code(), 1) << d.describe();
  EXPECT_EQ(d.report.value("ok", true), false) << d.describe();
  EXPECT_EQ(d.result("dns"), "fail") << d.describe();
  // A resolver says no at once (NXDOMAIN, or no route to a name server: getaddrinfo's words),
  // or does not answer within --timeout 3: each has its own words and fix.
  const std::string detail = d.detail("dns");
  if (contains(detail, "no answer from the resolver")) {
    EXPECT_EQ(detail, "no answer from the resolver for " + host + " within 3 s");
    EXPECT_TRUE(contains(d.fix("dns"), "the name server does not answer")) << d.fix("dns");
  } else {
    const std::string prefix = "cannot resolve " + host + ": ";
    EXPECT_EQ(detail.rfind(prefix, 0), 0u) << detail;
    EXPECT_GT(detail.size(), prefix.size()) << "no reason given: " << detail;
    EXPECT_TRUE(contains(d.fix("dns"), "check the host name in hub.uri (" + path + ")"))
        << d.fix("dns");
  }
  EXPECT_EQ(d.result("tcp"), "skipped") << d.describe();
  EXPECT_EQ(d.detail("tcp"), host + " did not resolve (see dns)");
  EXPECT_EQ(d.result("tls"), "skipped") << d.describe();
  EXPECT_EQ(d.detail("tls"), "no TCP connection (see tcp)");
  EXPECT_EQ(d.result("mqtt"), "skipped") << d.describe();
  EXPECT_EQ(d.detail("mqtt"), "no TLS session with the hub (see tls)");
  expect_others_healthy(d, {"dns", "tcp", "tls", "mqtt"});
  EXPECT_LT(took, 15s) << "doctor took " << std::chrono::duration<double>(took).count() << " s";
}

// hub.ca_file that is no certificate, or that cannot be read: ca fails with mbedTLS's or the
// system's words, and the TLS handshake is not tried with it (nor MQTT after it).
TEST_F(DoctorTest, UnusableCaFileFailsTheCaCheck) {
  agent_->start();
  struct Case {
    std::string name;
    std::string file;
    std::string detail;  // mbedTLS's words for a file it cannot parse, the system's for one it
                         // cannot read
    std::string fix;
  };
  const std::string garbage = dir_->file("garbage-ca.pem");
  write_file(
      garbage,
      "-----BEGIN CERTIFICATE-----\nthis is not base64 at all!\n-----END CERTIFICATE-----\n");
  const std::string missing = dir_->file("no-such-ca.pem");
  const std::string install =
      "install the certificate of the CA that signed the hub's certificate (PEM) as ";
  std::vector<Case> cases = {
      {"garbage", garbage,
       garbage + ": not a certificate: PEM - PEM string is not as expected : BASE64 - Invalid "
                 "character in input (-0x112c)",
       install + garbage},
      {"missing", missing, "cannot read certificate " + missing + ": No such file or directory",
       install + missing},
  };
  // Root reads any file: a mode that keeps the agent's user out shows only for another user.
  if (::geteuid() != 0) {
    const std::string locked = dir_->file("locked-ca.pem");
    std::filesystem::copy_file(long_ca_, locked);
    ASSERT_EQ(::chmod(locked.c_str(), 0), 0);
    cases.push_back({"unreadable", locked,
                     "cannot read certificate " + locked + ": Permission denied",
                     "run doctor as root or as the agent's user"});
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Doctor d = run_doctor(config_with(c.name + "-ca.json", {{"hub", {{"ca_file", c.file}}}}));
    EXPECT_EQ(d.run.exit_code(), 1) << d.describe();
    EXPECT_EQ(d.report.value("ok", true), false) << d.describe();
    EXPECT_EQ(d.result("ca"), "fail") << d.describe();
    EXPECT_EQ(d.detail("ca"), c.detail);
    EXPECT_TRUE(contains(d.fix("ca"), c.fix)) << d.fix("ca");
    EXPECT_EQ(d.result("tls"), "skipped") << d.describe();
    EXPECT_EQ(d.detail("tls"), "hub.ca_file is unusable (see ca)");
    EXPECT_EQ(d.result("mqtt"), "skipped") << d.describe();
    expect_others_healthy(d, {"ca", "tls", "mqtt"});
  }
}

// A broker that takes the TLS session but refuses the CONNECT, as tls_failure_test's does
// (a password file, no anonymous clients): mqtt fails with the CONNACK reason code and its
// name, and the fix names the credentials. The right password passes, so it is the refusal
// that fails the check.
TEST_F(DoctorTest, BrokerRefusingTheConnectFailsMqtt) {
  agent_->start();
  const std::string dir = dir_->path().string() + "/passwd-broker";
  std::filesystem::create_directories(dir);
  const std::string pw = dir + "/passwd";
  CommandResult r = run_command({"mosquitto_passwd", "-c", "-b", pw, "pos-01", "right-password"});
  ASSERT_TRUE(r.exited_ok()) << r.describe();
  ::chmod(pw.c_str(), 0644);
  BrokerOptions bo;
  // Later settings win: anonymous clients are refused, the password file decides.
  bo.extra_config = "allow_anonymous false\npassword_file " + pw;
  MosquittoBroker locked(dir, tls_, bo);
  locked.start();

  struct Case {
    std::string name;
    json hub;
  };
  const std::vector<Case> cases = {
      {"wrong-password",
       {{"uri", locked.uri()}, {"username", "pos-01"}, {"password", "wrong-password"}}},
      {"no-credentials", {{"uri", locked.uri()}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Doctor d = run_doctor(config_with(c.name + ".json", {{"hub", c.hub}}));
    EXPECT_EQ(d.run.exit_code(), 1) << d.describe();
    EXPECT_EQ(d.report.value("ok", true), false) << d.describe();
    EXPECT_EQ(d.result("mqtt"), "fail") << d.describe();
    EXPECT_EQ(d.detail("mqtt"),
              "the hub refused the connection: CONNACK reason code 135 (0x87 Not authorized)");
    EXPECT_TRUE(contains(d.fix("mqtt"), "check hub.username and hub.password")) << d.fix("mqtt");
    EXPECT_TRUE(contains(d.fix("mqtt"), "edgesync-store-042-pos-01-doctor")) << d.fix("mqtt");
    expect_others_healthy(d, {"mqtt"});
  }

  Doctor right = run_doctor(config_with(
      "right-password.json",
      {{"hub", {{"uri", locked.uri()}, {"username", "pos-01"}, {"password", "right-password"}}}}));
  EXPECT_EQ(right.run.exit_code(), 0) << right.describe();
  EXPECT_EQ(right.result("mqtt"), "ok") << right.describe();
  locked.stop();
}

TEST_F(DoctorTest, HubCertificateForAnotherNameOrExpiredIsNamed) {
  agent_->start();
  struct Case {
    std::string name;
    ServerCertOptions cert;
    std::string error;  // mbedTLS's words for the failed check
    std::string fix;
  };
  ServerCertOptions other_name;
  other_name.common_name = "hub.example.net";
  other_name.subject_alt_names = "DNS:hub.example.net";
  ServerCertOptions expired;
  expired.expired = true;
  const std::vector<Case> cases = {
      {"wronghost", other_name, "The certificate Common Name (CN) does not match",
       "does not name 127.0.0.1"},
      {"expired", expired, "The certificate validity has expired", "expired on 2020-01-02"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string dir = dir_->path().string() + "/" + c.name;
    std::filesystem::create_directories(dir);
    MosquittoBroker bad(dir, TlsMaterial::with_server_cert(tls_, dir, c.name, c.cert));
    bad.start();
    Doctor d = run_doctor(config_with(c.name + ".json", {{"hub", {{"uri", bad.uri()}}}}));
    EXPECT_EQ(d.run.exit_code(), 1) << d.describe();
    EXPECT_EQ(d.result("tls"), "fail") << d.describe();
    EXPECT_TRUE(contains(d.detail("tls"), c.error)) << d.detail("tls");
    EXPECT_TRUE(contains(d.fix("tls"), c.fix)) << d.fix("tls");
    EXPECT_EQ(d.result("mqtt"), "skipped");
    bad.stop();
  }
}

TEST_F(DoctorTest, HubRefusesABoxWithoutClientCertificate) {
  agent_->start();
  Doctor d = run_doctor(config_with("no-client-cert.json",
                                    {{"hub", {{"cert_file", nullptr}, {"key_file", nullptr}}}}));
  EXPECT_EQ(d.run.exit_code(), 1) << d.describe();
  EXPECT_EQ(d.result("client_cert"), "skipped") << d.detail("client_cert");
  EXPECT_EQ(d.result("tls"), "fail") << d.describe();
  EXPECT_TRUE(contains(d.detail("tls"), "handshake_failure")) << d.detail("tls");
  EXPECT_TRUE(contains(d.fix("tls"), "set hub.cert_file and hub.key_file")) << d.fix("tls");
}

TEST_F(DoctorTest, ExpiredClientCertificateFails) {
  agent_->start();
  // An expired certificate and its key, signed by the test CA. (The harness makes expired ones
  // for servers; what doctor reads of it here, its dates and its key, is the same.)
  const std::string dir = dir_->path().string();
  ServerCertOptions o;
  o.expired = true;
  TlsMaterial old = TlsMaterial::with_server_cert(tls_, dir, "old-client", o);
  ::chmod(old.server_key_file.c_str(), 0600);
  Doctor d = run_doctor(config_with(
      "expired-client.json",
      {{"hub", {{"cert_file", old.server_cert_file}, {"key_file", old.server_key_file}}}}));
  EXPECT_EQ(d.run.exit_code(), 1) << d.describe();
  EXPECT_EQ(d.result("client_cert"), "fail") << d.describe();
  EXPECT_TRUE(contains(d.detail("client_cert"), "expired at 2020-01-02T00:00:00Z"))
      << d.detail("client_cert");
  EXPECT_TRUE(contains(d.fix("client_cert"), "edgesync enroll")) << d.fix("client_cert");
  EXPECT_EQ(d.result("client_key"), "ok") << d.detail("client_key");

  // Another box's key with this certificate: the pair does not match.
  Doctor mixed = run_doctor(config_with(
      "mixed.json",
      {{"hub", {{"cert_file", long_client_cert_}, {"key_file", old.server_key_file}}}}));
  EXPECT_EQ(mixed.run.exit_code(), 1) << mixed.describe();
  EXPECT_EQ(mixed.result("client_key"), "fail") << mixed.describe();
  EXPECT_TRUE(contains(mixed.detail("client_key"), "is not the private key of the certificate"))
      << mixed.detail("client_key");
  EXPECT_EQ(mixed.result("tls"), "skipped") << mixed.detail("tls");
}

TEST_F(DoctorTest, WrongSocketModeFailsAndAStoppedAgentIsNamed) {
  agent_->start();
  ASSERT_EQ(::chmod(agent_->socket_path().c_str(), 0666), 0);
  Doctor d = run_doctor(agent_->config_path());
  EXPECT_EQ(d.run.exit_code(), 1) << d.describe();
  EXPECT_EQ(d.result("socket"), "fail") << d.describe();
  EXPECT_TRUE(contains(d.detail("socket"), "mode 0666")) << d.detail("socket");
  EXPECT_TRUE(contains(d.detail("socket"), "any local user may send events")) << d.detail("socket");
  EXPECT_TRUE(contains(d.fix("socket"), "chmod 0660 " + agent_->socket_path())) << d.fix("socket");
  expect_others_healthy(d, {"socket"});

  // The technician's socket open to every local user: anyone could hold delivery.
  const std::string control = std::filesystem::path(agent_->socket_path()).parent_path() / "control.sock";
  ASSERT_EQ(::chmod(agent_->socket_path().c_str(), 0660), 0);
  ASSERT_EQ(::chmod(control.c_str(), 0666), 0);
  Doctor open_control = run_doctor(agent_->config_path());
  EXPECT_EQ(open_control.result("control"), "fail") << open_control.describe();
  EXPECT_TRUE(contains(open_control.detail("control"), "any local user may hold or repair"))
      << open_control.detail("control");
  expect_others_healthy(open_control, {"control"});

  ASSERT_TRUE(agent_->terminate(20s).has_value());
  Doctor stopped = run_doctor(agent_->config_path());
  EXPECT_EQ(stopped.run.exit_code(), 1) << stopped.describe();
  EXPECT_EQ(stopped.result("agent"), "fail") << stopped.describe();
  EXPECT_TRUE(contains(stopped.fix("agent"), "systemctl start edgesync")) << stopped.fix("agent");
  EXPECT_EQ(stopped.result("socket"), "skipped") << stopped.detail("socket");
  EXPECT_EQ(stopped.result("control"), "skipped") << stopped.detail("control");
  EXPECT_EQ(stopped.result("database"), "ok") << stopped.detail("database");
}

// A port that takes TCP connections and never says a word (the kernel completes the handshake
// for a listening socket nobody accepts on): the TLS step gives up at --timeout, doctor ends.
TEST_F(DoctorTest, SilentPortTimesOutInsteadOfHanging) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string uri = "ssl://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  const auto start = std::chrono::steady_clock::now();
  CommandResult r = AgentProcess::run_cli(
      {"doctor", "--config", config_with("silent.json", {{"hub", {{"uri", uri}}}}), "--json",
       "--timeout", "1"},
      "", 30s);
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  EXPECT_EQ(r.exit_code(), 1) << r.describe();
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.describe();
  json tls;
  for (const auto& c : j["checks"]) {
    if (c.value("name", "") == "tls") tls = c;
  }
  EXPECT_EQ(tls.value("result", ""), "fail") << r.out;
  EXPECT_TRUE(contains(tls.value("detail", ""), "no complete TLS handshake within 1 s")) << r.out;
  EXPECT_LT(took, 10s) << "doctor took " << std::chrono::duration<double>(took).count() << " s";
}

}  // namespace
}  // namespace edgesync::test
