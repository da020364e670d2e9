// The real agent against a hub it must not or cannot talk to: an expired server certificate, a
// certificate for another host name, a server signed by a CA the agent does not trust, and a
// broker that refuses the CONNECT (wrong password). For each the agent keeps running and keeps
// acknowledging producers, `edgesync status --json` shows the hub not connected with the
// reason, the log says it, and attempts are spaced by the retry backoff (no spin, no crash).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "tests/harness/mosquitto_broker.h"
#include "tests/harness/net_util.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"
#include "tests/support/hub_fixture.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr int kRetryInitialMs = 200;
constexpr int kRetryMaxMs = 2000;
constexpr auto kObserve = 10s;

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

std::string first_line_with(const std::string& text, const std::string& needle) {
  size_t pos = text.find(needle);
  if (pos == std::string::npos) return "";
  size_t begin = text.rfind('\n', pos);
  begin = begin == std::string::npos ? 0 : begin + 1;
  size_t end = text.find('\n', pos);
  return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

struct Case {
  std::string name;
  TlsMaterial broker_tls;
  BrokerOptions broker_options;
  std::string agent_ca_file;  // "" = the test CA
  std::string username;
  std::string password;
};

// The fixture's broker and subscriber stay as they are; each case runs its own broker (the
// bad one) and an agent pointed at it, with a config AgentProcess cannot write (credentials).
class TlsFailureTest : public HubFixture {
 protected:
  struct Outcome {
    json status;
    std::string log;
    size_t attempts = 0;
    std::string error_line;
  };

  Outcome run_case(const Case& c) {
    Outcome out;
    const std::string dir = dir_->path().string() + "/" + c.name;
    std::filesystem::create_directories(dir);
    MosquittoBroker bad(dir, c.broker_tls, c.broker_options);
    bad.start();

    AgentConfig cfg = AgentConfig::for_test(dir, bad);
    if (!c.agent_ca_file.empty()) cfg.ca_file = c.agent_ca_file;
    cfg.keepalive_s = 5;
    cfg.retry_initial_ms = kRetryInitialMs;
    cfg.retry_max_ms = kRetryMaxMs;
    json j = cfg.to_json();
    if (!c.username.empty()) {
      j["hub"]["username"] = c.username;
      j["hub"]["password"] = c.password;
    }
    const std::string config_path = dir + "/agent.json";
    write_file(config_path, j.dump(2) + "\n");
    const std::string log_path = dir + "/agent.log";
    ChildProcess agent;
    agent.spawn(edgesync_argv({"agent", "--config", config_path}), log_path);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!unix_socket_accepts(cfg.socket_path) && agent.running() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    if (!unix_socket_accepts(cfg.socket_path)) {
      ADD_FAILURE() << c.name << ": agent did not start; log:\n" << read_file(log_path);
      return out;
    }
    // Producers are still acknowledged: acks need only the disk.
    {
      Producer p(cfg.socket_path);
      auto r = p.send_all(lines_of(make_events(c.name, 20)), 30s);
      EXPECT_EQ(r.size(), 20u) << c.name;
      for (const auto& x : r) EXPECT_EQ(x.value("ok", false), true) << c.name << ": " << x.dump();
    }
    std::this_thread::sleep_for(kObserve);

    CommandResult r =
        AgentProcess::run_cli({"status", "--config", config_path, "--json"}, "", 20s);
    // The hub is unreachable: DEGRADED (exit 1) once past the reconnect grace, or still OK.
    EXPECT_TRUE(r.exit_code() == 0 || r.exit_code() == 1) << c.name << ": " << r.describe();
    out.status = json::parse(r.out, nullptr, false);
    out.log = read_file(log_path);
    const std::string marker = "edgesync: hub " + cfg.hub_uri + ": ";
    out.attempts = count_of(out.log, marker);
    out.error_line = first_line_with(out.log, marker);
    EXPECT_TRUE(agent.running()) << c.name << ": the agent exited; log:\n" << out.log;
    auto st = agent.stop(15s);
    EXPECT_TRUE(st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0)
        << c.name << ": agent did not stop cleanly ("
        << (st ? describe_wait_status(*st) : std::string("timeout")) << "); log:\n"
        << out.log;
    bad.stop();

    std::cerr << "[tls-failure] " << c.name << ": " << out.attempts << " failed attempts in "
              << std::chrono::duration_cast<std::chrono::seconds>(kObserve).count()
              << " s (retry " << kRetryInitialMs << " ms .. " << kRetryMaxMs << " ms); status hub "
              << (out.status.is_object() && out.status.contains("hub") ? out.status["hub"].dump()
                                                                        : r.out)
              << "; log: " << out.error_line << "\n";
    if (out.status.is_object() && out.status.contains("hub")) {
      EXPECT_NE(out.status["hub"].value("state", ""), "connected") << c.name;
      EXPECT_FALSE(out.status["hub"].value("last_error", "").empty())
          << c.name << ": no reason in status: " << out.status.dump();
    } else {
      ADD_FAILURE() << c.name << ": status --json has no hub object: " << r.describe();
    }
    EXPECT_FALSE(out.error_line.empty()) << c.name << ": no log line; log:\n" << out.log;
    // paho gives no cause for a failed TLS handshake ("-1"): the agent's own look names it.
    if (c.password.empty()) {
      const std::string err = out.status["hub"].value("last_error", "");
      EXPECT_NE(err.find("hub.ca_file"), std::string::npos) << c.name << ": " << err;
      const std::map<std::string, std::string> cause = {
          {"expired", "the broker's certificate has expired"},
          {"wrong-host", "the broker's certificate is for DNS:hub.example.net, not 127.0.0.1"},
          {"wrong-ca", "the broker's certificate is not signed by hub.ca_file"},
          {"latin1-name", "the broker's certificate is for CN=M?ller hub, not 127.0.0.1"}};
      if (auto it = cause.find(c.name); it != cause.end()) {
        EXPECT_NE(err.find(it->second), std::string::npos) << c.name << ": " << err;
      }
    }
    // Full-jitter backoff from 200 ms up to 2 s: a handful of attempts, not hundreds.
    EXPECT_GE(out.attempts, 2u) << c.name << ": the agent stopped retrying";
    EXPECT_LE(out.attempts, 30u) << c.name << ": retrying in a spin";
    EXPECT_EQ(count_of(out.log, "connected to"), 0u) << c.name << ": must not connect";
    return out;
  }
};

TEST_F(TlsFailureTest, ExpiredServerCertificate) {
  ServerCertOptions o;
  o.expired = true;
  Case c{"expired", TlsMaterial::with_server_cert(tls_, dir_->path().string(), "expired", o), {},
         "", "", ""};
  run_case(c);
}

TEST_F(TlsFailureTest, ServerCertificateForAnotherHostName) {
  ServerCertOptions o;
  o.common_name = "hub.example.net";
  o.subject_alt_names = "DNS:hub.example.net";
  Case c{"wrong-host", TlsMaterial::with_server_cert(tls_, dir_->path().string(), "wronghost", o),
         {}, "", "", ""};
  run_case(c);
}

// A certificate named only by its subject, written by an old CA in Latin-1 (a T61String): the
// name's bytes are not UTF-8. The reason the agent gives goes into JSON (status, the health
// message, the control socket's replies); it must not take the agent down, and still says which
// name the certificate has (mbedTLS prints a byte outside printable ASCII as '?').
TEST_F(TlsFailureTest, ServerCertificateWithALatin1NameForAnotherHost) {
  ServerCertOptions o;
  o.common_name = "M\xFCller hub";
  o.subject_alt_names = "";
  o.legacy_string_types = true;
  Case c{"latin1-name", TlsMaterial::with_server_cert(tls_, dir_->path().string(), "latin1", o),
         {}, "", "", ""};
  run_case(c);
}

TEST_F(TlsFailureTest, ServerSignedByAnotherCa) {
  const std::string other = dir_->path().string() + "/other-ca";
  std::filesystem::create_directories(other);
  TlsMaterial foreign = TlsMaterial::generate(other);
  // The broker presents a server certificate from a CA the agent does not trust (and trusts
  // the test CA for client certificates, so only the agent's check can fail).
  TlsMaterial broker_tls = tls_;
  broker_tls.server_cert_file = foreign.server_cert_file;
  broker_tls.server_key_file = foreign.server_key_file;
  Case c{"wrong-ca", broker_tls, {}, "", "", ""};
  run_case(c);
}

TEST_F(TlsFailureTest, ConnectRefusedForBadCredentials) {
  const std::string pw = dir_->path().string() + "/passwd";
  CommandResult r = run_command({"mosquitto_passwd", "-c", "-b", pw, "pos-01", "right-password"});
  ASSERT_TRUE(r.exited_ok()) << r.describe();
  ::chmod(pw.c_str(), 0644);
  BrokerOptions bo;
  // Later settings win: anonymous clients are refused, the password file decides.
  bo.extra_config = "allow_anonymous false\npassword_file " + pw;
  Case c{"bad-credentials", tls_, bo, "", "pos-01", "wrong-password"};
  auto out = run_case(c);
  // mosquitto answers a wrong password with CONNACK reason 0x87 (135, not authorized): the
  // technician reads the code, its meaning, and where to look.
  const std::string err = out.status.is_object() && out.status.contains("hub")
                              ? out.status["hub"].value("last_error", "")
                              : "";
  EXPECT_NE(err.find("135 (not authorized)"), std::string::npos) << "last_error: " << err;
  EXPECT_NE(err.find("hub.password"), std::string::npos) << "last_error: " << err;
}

}  // namespace
}  // namespace edgesync::test
