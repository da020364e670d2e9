#include "agent/doctor_checks.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "agent/certificate_check.h"
#include "agent/cli_format.h"
#include "agent/config_layers.h"
#include "agent/control_client.h"
#include "agent/remote_config.h"
#include "agent/remote_config_state.h"
#include "agent/state_file.h"
#include "platform/clock.h"
#include "platform/crypto.h"
#include "platform/files.h"
#include "platform/mqtt_probe.h"
#include "platform/tls_probe.h"
#include "storage/sqlite.h"

namespace edgesync::agent::doctor {
namespace {

constexpr int64_t kDayMs = 86400000;

std::string date_of(int64_t unix_ms) { return platform::format_rfc3339_ms(unix_ms).substr(0, 10); }
std::string time_of(int64_t unix_ms) {
  // Seconds are enough for a person: drop ".123" before the Z.
  std::string t = platform::format_rfc3339_ms(unix_ms);
  if (t.size() == 24) t = t.substr(0, 19) + "Z";
  return t;
}

std::string octal_mode(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

std::string user_name(uid_t uid) {
  if (const passwd* p = ::getpwuid(uid)) return p->pw_name;
  return std::to_string(uid);
}
std::string group_name(gid_t gid) {
  if (const group* g = ::getgrgid(gid)) return g->gr_name;
  return std::to_string(gid);
}

// The loader lists one problem per line; a check's detail is one line.
std::string one_line(const std::string& text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n') {
      space = true;
      continue;
    }
    if (space) {
      // "file:\n  a\n  b" reads as "file: a; b".
      if (!out.empty() && out.back() != ':') out += ";";
      out += ' ';
      space = false;
      if (c == ' ') continue;
    }
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

Check make(const char* name, Outcome result, std::string detail, std::string fix = {}) {
  return Check{name, result, std::move(detail), std::move(fix)};
}

Check skipped(const char* name, std::string why) {
  return make(name, Outcome::kSkipped, std::move(why));
}

const std::string kRunAsAgentUser =
    "run doctor as root or as the agent's user (sudo -u edgesync edgesync doctor)";

// The checks in order, with what each learned that a later one needs.
class Doctor {
 public:
  explicit Doctor(const Options& options) : o_(options) {}

  std::vector<Check> run() {
    add(check_config());
    add(judge_clock(o_.now_ms, o_.build_unix_s));
    if (!config_) {
      const std::string why = "needs a valid configuration (see config)";
      for (const char* name : {"database", "disk", "agent", "socket", "control", "ca", "client_cert",
                               "client_key", "dns", "tcp", "tls", "mqtt"}) {
        add(skipped(name, why));
      }
      return std::move(checks_);
    }
    add(check_database());
    add(check_disk());
    add(check_agent());
    add(check_socket());
    add(check_control());
    add(check_ca());
    add(check_client_certificate());
    add(check_client_key());
    add(check_dns());
    add(check_tcp());
    add(check_tls());
    add(check_mqtt());
    return std::move(checks_);
  }

 private:
  void add(Check c) { checks_.push_back(std::move(c)); }
  const Config& config() const { return *config_; }
  const std::string& path() const { return o_.config_path; }

  // ---- configuration ----

  Check check_config() {
    // The TLS files are the certificate checks' business, with their own fixes: checked here
    // they would make the whole configuration unusable for every other check.
    auto local = load_config(path(), FileChecks::kSkip);
    if (!local) {
      const std::string& why = local.status().message();
      if (why.rfind("cannot read", 0) == 0) {
        return make("config", Outcome::kFail, why,
                    "name the box's configuration file with --config FILE (the service uses "
                    "/etc/edgesync/edgesync.json); " +
                        kRunAsAgentUser);
      }
      return make("config", Outcome::kFail, one_line(why),
                  "correct what is named above in " + path() +
                      " (config/edgesync.example.json describes every key), then check it "
                      "with: edgesync check-config --config " +
                      path());
    }
    config_ = *local;
    if (local->remote_config.trusted_keys.empty()) {
      return make("config", Outcome::kOk,
                  path() + " is valid; local file only (remote configuration off)");
    }
    const std::string state_path = remote_config_state_path(*local);
    auto state = read_remote_config_state(state_path);
    if (!state) {
      if (state.status().code() == Status::Code::kNotFound) {
        return make("config", Outcome::kOk, path() + " is valid; nothing pushed to this box yet");
      }
      return make("config", Outcome::kWarn,
                  path() + " is valid, but the pushed configuration's state is unreadable (" +
                      one_line(state.status().message()) + "): checking with the local file alone",
                  "the agent sets a damaged state file aside at its next start (systemctl "
                  "restart edgesync); edgesync config show --history tells what was pushed");
    }
    // What the running agent uses: the local file with the pushed layers (hub, budget, TLS).
    config_ = effective_config(*local, *state);
    std::string layers;
    for (Scope scope : kScopes) {
      auto it = state->applied.find(scope);
      if (it == state->applied.end()) continue;
      if (!layers.empty()) layers += ", ";
      layers += std::string(scope_name(scope)) + " v" + std::to_string(it->second.version);
    }
    return make("config", Outcome::kOk,
                path() + " is valid; " +
                    (layers.empty()
                         ? "nothing pushed applied"
                         : "with pushed layers " + layers + " (edgesync config show --effective)"));
  }

  // ---- the box ----

  Check check_database() {
    const std::string& db_path = config().storage.path;
    struct stat st {};
    if (::stat(db_path.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        return skipped("database", "no outbox at " + db_path +
                                       " yet: the agent creates it when it first starts");
      }
      return make("database", Outcome::kFail,
                  "cannot reach " + db_path + ": " + std::strerror(errno), kRunAsAgentUser);
    }
    storage::Database::Options opts;
    opts.read_only = true;  // beside a running agent: WAL lets a reader in without blocking it
    opts.create = false;
    opts.busy_timeout_ms = static_cast<int>(o_.timeout.count());
    auto db = storage::Database::open(db_path, opts);
    std::vector<std::string> problems;
    Status failed = db ? Status::ok() : db.status();
    if (db) {
      auto q = (*db)->prepare("PRAGMA quick_check(10)");
      if (!q) failed = q.status();
      while (failed.is_ok()) {
        auto row = (*q)->step();
        if (!row) {
          failed = row.status();
          break;
        }
        if (!*row) break;
        // A row may hold several problems, one per line, under a "*** in database main ***"
        // heading.
        std::string text((*q)->column_text(0));
        size_t start = 0;
        while (start < text.size()) {
          size_t end = std::min(text.find('\n', start), text.size());
          std::string line = text.substr(start, end - start);
          if (!line.empty() && line != "ok" && line.rfind("*** ", 0) != 0) {
            problems.push_back(line);
          }
          start = end + 1;
        }
      }
    }
    const std::string damaged_fix =
        "restart the agent (systemctl restart edgesync): at start it moves the damaged file "
        "aside to " +
        db_path +
        ".quarantined-<time> (kept, nothing deleted) and starts a fresh outbox; keep the "
        "quarantined file for analysis";
    if (!problems.empty() || failed.code() == Status::Code::kCorruption) {
      std::string what = problems.empty() ? failed.message() : problems.front();
      // quick_check stops after ten problems.
      if (problems.size() > 1) {
        what += " (and " + std::to_string(problems.size() - 1) +
                (problems.size() >= 10 ? " more, at least)" : " more)");
      }
      return make("database", Outcome::kFail, db_path + " is damaged: " + what, damaged_fix);
    }
    if (failed.code() == Status::Code::kUnavailable) {
      return make("database", Outcome::kWarn,
                  db_path + " was locked for longer than " +
                      std::to_string(o_.timeout.count() / 1000) + " s: " + failed.message(),
                  "run doctor again; if it stays locked, see what holds it: fuser -v " + db_path);
    }
    if (!failed.is_ok()) {
      return make("database", Outcome::kFail, "cannot check " + db_path + ": " + failed.message(),
                  kRunAsAgentUser);
    }
    int64_t bytes = st.st_size;
    struct stat wal {};
    if (::stat((db_path + "-wal").c_str(), &wal) == 0) bytes += wal.st_size;
    return make("database", Outcome::kOk,
                db_path + ": quick_check ok (" + human_bytes(bytes) + " with its WAL)");
  }

  Check check_disk() {
    const std::string& db_path = config().storage.path;
    // The nearest directory that exists: before the first start the outbox's may not.
    std::string dir = platform::dirname_of(db_path);
    while (!platform::path_exists(dir) && dir != "/" && dir != ".") dir = platform::dirname_of(dir);
    struct statvfs vfs {};
    if (::statvfs(dir.c_str(), &vfs) != 0) {
      return make("disk", Outcome::kFail,
                  "cannot read the free space of " + dir + ": " + std::strerror(errno),
                  kRunAsAgentUser);
    }
    DiskFacts facts;
    facts.dir = dir;
    // f_bavail: what an unprivileged user (the agent's) may still use, without root's reserve.
    facts.free_bytes = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
    for (const std::string& f : {db_path, db_path + "-wal"}) {
      struct stat st {};
      if (::stat(f.c_str(), &st) == 0) facts.outbox_bytes += st.st_size;
    }
    return judge_disk(facts, config(), path());
  }

  Check check_agent() {
    const std::string state_path = config().state_file();
    auto state = read_agent_state(state_path);
    const std::string start_fix =
        "start it: systemctl start edgesync; if it stops again, journalctl -u edgesync -n 50 "
        "says why";
    if (!state) {
      if (state.status().code() == Status::Code::kNotFound) {
        return make("agent", Outcome::kFail,
                    "not running (no " + state_path + ": never started with this configuration)",
                    start_fix);
      }
      return make("agent", Outcome::kFail, "cannot tell: " + one_line(state.status().message()),
                  kRunAsAgentUser);
    }
    if (!state->running || !platform::process_alive(state->pid)) {
      std::string detail = "not running";
      if (state->updated_ms > 0) detail += " (last seen " + time_of(state->updated_ms) + ")";
      if (!state->last_error.empty()) detail += "; last hub error: " + state->last_error;
      return make("agent", Outcome::kFail, detail, start_fix);
    }
    agent_running_ = true;
    std::string detail = "running (pid " + std::to_string(state->pid) + ")";
    if (state->started_ms > 0) detail += " since " + time_of(state->started_ms);
    detail += "; hub " + state->hub_state;
    if (state->hub_since_ms > 0) detail += " since " + time_of(state->hub_since_ms);
    if (!state->last_error.empty() && state->hub_state != "connected") {
      detail += " (" + state->last_error + ")";
    }
    if (!state->outbox_error.empty()) {
      return make("agent", Outcome::kFail,
                  detail + "; it found its outbox damaged: " + state->outbox_error,
                  "restart it (systemctl restart edgesync): at start it moves the damaged file "
                  "aside (kept) and starts a fresh outbox");
    }
    return make("agent", Outcome::kOk, detail);
  }

  Check check_socket() {
    const std::string& sock = config().ingest.socket;
    if (!agent_running_) {
      return skipped("socket", "the agent is not running (it makes " + sock + " when it starts)");
    }
    const std::string restart_fix =
        "restart the agent (systemctl restart edgesync): it makes the socket at start";
    struct stat st {};
    if (::lstat(sock.c_str(), &st) != 0) {
      return make("socket", Outcome::kFail,
                  "no " + sock + " (" + std::strerror(errno) +
                      ") although the agent runs: it was deleted, or ingest.socket was changed "
                      "since the agent started",
                  restart_fix);
    }
    if (!S_ISSOCK(st.st_mode)) {
      return make("socket", Outcome::kFail, sock + " is not a socket: the agent will not start",
                  "remove it and restart the agent: rm " + sock + " && systemctl restart edgesync");
    }
    const unsigned mode = st.st_mode & 07777;
    const std::string owner = user_name(st.st_uid) + ":" + group_name(st.st_gid);
    std::string detail = sock + ": socket, owner " + owner + ", mode " + octal_mode(mode);

    // Producers connect by group membership: 0660, as the agent sets it at every start.
    if (mode != 0660) {
      std::string why;
      if (mode & 0007) {
        why = "any local user may send events";
      } else if ((mode & 0060) != 0060) {
        why = "producers in group " + group_name(st.st_gid) + " cannot send events";
      } else {
        why = "the agent sets 0660";
      }
      return make("socket", Outcome::kFail, detail + " (expected 0660: " + why + ")",
                  "chmod 0660 " + sock +
                      " (the agent sets it at every start: systemctl restart edgesync restores "
                      "it too); find what changed it");
    }

    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string listening;
    if (fd >= 0 && sock.size() < sizeof addr.sun_path) {
      std::memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
      int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
      int err = rc == 0 ? 0 : errno;
      if (err == ECONNREFUSED) {
        ::close(fd);
        return make("socket", Outcome::kFail, detail + ", but nothing accepts connections on it",
                    restart_fix + " (this socket was left by an agent that is gone)");
      }
      listening = err == 0 || err == EAGAIN ? ", accepting connections"
                  : err == EACCES           ? " (not tried: no permission to connect)"
                                            : std::string(" (connect: ") + std::strerror(err) + ")";
    }
    if (fd >= 0) ::close(fd);
    detail += listening;

    // The agent makes both; another owner means another agent made one of them (by hand, as
    // root), and the service's agent may not be able to use it.
    struct stat db {};
    if (::stat(config().storage.path.c_str(), &db) == 0 && db.st_uid != st.st_uid) {
      return make("socket", Outcome::kWarn,
                  detail + "; the outbox is owned by " + user_name(db.st_uid) +
                      ": one of them was made by an agent run by another user",
                  "run the agent only as the service (systemctl restart edgesync), not by hand; "
                  "chown " +
                      user_name(db.st_uid) + " files the service cannot use");
    }
    return make("socket", Outcome::kOk, detail);
  }

  // The technician's socket: the agent's group only (producers must not hold or repair
  // delivery), and the agent answers on it (repairs and live status go through it).
  Check check_control() {
    const std::string sock = config().control_socket();
    if (!agent_running_) {
      return skipped("control", "the agent is not running (it makes " + sock + " when it starts)");
    }
    const std::string restart_fix =
        "restart the agent (systemctl restart edgesync): it makes the socket at start";
    struct stat st {};
    if (::lstat(sock.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      return make("control", Outcome::kFail,
                  sock + " is missing or not a socket although the agent runs: edgesync status "
                         "shows no live figures and repairs cannot reach the agent",
                  restart_fix);
    }
    const unsigned mode = st.st_mode & 07777;
    std::string detail = sock + ": owner " + user_name(st.st_uid) + ":" + group_name(st.st_gid) +
                         ", mode " + octal_mode(mode);
    if (mode & 0007) {
      return make("control", Outcome::kFail,
                  detail + " (expected 0660: any local user may hold or repair delivery)",
                  "chmod 0660 " + sock + " (the agent sets it at every start); find what changed it");
    }
    // The agent gives it its own group, which is the outbox file's.
    struct stat db {};
    if (::stat(config().storage.path.c_str(), &db) == 0 && db.st_gid != st.st_gid) {
      return make("control", Outcome::kWarn,
                  detail + ": group " + group_name(st.st_gid) + ", not the agent's (" +
                      group_name(db.st_gid) + ", the outbox's): its members may hold or repair "
                                              "delivery",
                  "chgrp " + group_name(db.st_gid) + " " + sock +
                      " (the agent does it at every start: systemctl restart edgesync)");
    }
    auto reply = control_request(sock, {{"v", 1}, {"cmd", "status"}}, std::chrono::seconds(2));
    if (!reply) {
      if (reply.status().message().find("permission denied") != std::string::npos) {
        return make("control", Outcome::kOk,
                    detail + " (not asked: no permission to connect; run doctor as root)");
      }
      return make("control", Outcome::kFail, detail + ", but " + reply.status().message(),
                  restart_fix + " (an agent that does not answer may be stuck: journalctl -u "
                                "edgesync shows its last lines)");
    }
    return make("control", Outcome::kOk, detail + ", the agent answers");
  }

  // ---- certificates and key ----

  Check check_ca() {
    const std::string& ca = config().hub.ca_file;
    if (ca.empty()) return skipped("ca", "no hub.ca_file: hub.uri is tcp:// (hub.allow_insecure)");
    const std::string install_fix =
        "install the certificate of the CA that signed the hub's certificate (PEM) as " + ca +
        ", readable by the agent's user, or point hub.ca_file at it";
    auto cert = platform::crypto::read_certificate(ca);
    if (!cert) {
      const bool denied = cert.status().message().find(std::strerror(EACCES)) != std::string::npos;
      return make("ca", Outcome::kFail, one_line(cert.status().message()),
                  denied ? kRunAsAgentUser : install_fix);
    }
    ca_usable_ = true;
    const int64_t now = o_.now_ms;
    const std::string who = ca + ": " + cert->subject;
    if (now < cert->not_before_ms) {
      return make("ca", Outcome::kFail, who + ", not valid before " + time_of(cert->not_before_ms),
                  "this box's clock is probably behind (see clock); otherwise " + install_fix);
    }
    if (now >= cert->not_after_ms) {
      return make("ca", Outcome::kFail, who + ", expired at " + time_of(cert->not_after_ms),
                  "install the hub CA's current certificate as hub.ca_file (ask the hub's "
                  "operators)");
    }
    const int64_t days = (cert->not_after_ms - now) / kDayMs;
    if (cert->not_after_ms - now < kCertificateWarningDays * kDayMs) {
      return make("ca", Outcome::kWarn,
                  who + ", expires in " + std::to_string(days) + " day(s), at " +
                      time_of(cert->not_after_ms),
                  "install the hub CA's new certificate as hub.ca_file before then (ask the "
                  "hub's operators)");
    }
    return make("ca", Outcome::kOk,
                who + ", valid until " + date_of(cert->not_after_ms) + " (" + std::to_string(days) +
                    " days)");
  }

  Check check_client_certificate() {
    CertificateFacts f = certificate_facts(config(), o_.now_ms);
    if (!f.configured) {
      client_usable_ = true;
      return skipped("client_cert",
                     "no hub.cert_file: this box does not present a certificate to the hub");
    }
    const std::string& file = config().hub.cert_file;
    const std::string renew =
        "edgesync enroll --out DIR makes a new key and signing request; have the fleet CA sign "
        "it, then install the certificate as hub.cert_file and the key as hub.key_file";
    if (f.state == "unreadable") {
      if (f.detail.find(std::strerror(EACCES)) != std::string::npos) {
        return make("client_cert", Outcome::kFail, one_line(f.detail), kRunAsAgentUser);
      }
      return make("client_cert", Outcome::kFail, one_line(f.detail),
                  "install this box's certificate (PEM) as " + file +
                      ", readable by the agent's user, or correct hub.cert_file; " + renew);
    }
    client_cert_readable_ = true;
    const std::string who = file + ": " + f.subject;
    if (f.state == "expired") {
      return make("client_cert", Outcome::kFail,
                  who + ", expired at " + time_of(f.not_after_ms) + ": the hub refuses this box",
                  "renew it: " + renew);
    }
    if (f.state == "not_yet_valid") {
      return make("client_cert", Outcome::kFail,
                  who + ", valid only from " + time_of(f.not_before_ms),
                  "if this box's clock is right (see clock), the certificate was issued for "
                  "later: ask for one valid now; " +
                      renew);
    }
    if (f.state == "expiring") {
      return make("client_cert", Outcome::kWarn,
                  who + ", expires in " + std::to_string(f.days_left) + " day(s), at " +
                      time_of(f.not_after_ms),
                  "renew it before then: " + renew);
    }
    return make("client_cert", Outcome::kOk,
                who + ", valid until " + date_of(f.not_after_ms) + " (" +
                    std::to_string(f.days_left) + " days)");
  }

  Check check_client_key() {
    const std::string& key = config().hub.key_file;
    const std::string& cert = config().hub.cert_file;
    if (key.empty()) return skipped("client_key", "no hub.key_file (no client certificate)");
    // The agent refuses a key others may read: a copied key is a stolen identity.
    Status mode = platform::crypto::check_private_key_mode(key);
    if (!mode) {
      if (mode.code() == Status::Code::kNotFound) {
        return make("client_key", Outcome::kFail, mode.message(),
                    "install this box's private key as " + key +
                        " (mode 0600, owned by the "
                        "agent's user), or correct hub.key_file");
      }
      return make("client_key", Outcome::kFail, mode.message(),
                  "chmod 600 " + key + " (and chown it to the agent's user, edgesync)");
    }
    if (!client_cert_readable_) {
      return skipped("client_key", key +
                                       ": mode ok; not compared with the certificate, which "
                                       "is unreadable (see client_cert)");
    }
    Status match = platform::crypto::check_key_matches_certificate(key, cert);
    if (!match) {
      if (match.code() == Status::Code::kNotFound) {
        return make("client_key", Outcome::kFail, match.message(),
                    "the key must be readable by the agent's user (chown edgesync " + key + "); " +
                        kRunAsAgentUser);
      }
      const bool mismatch = match.message().find("is not the private key") != std::string::npos;
      return make("client_key", Outcome::kFail, match.message(),
                  mismatch ? "hub.key_file must be the key the certificate was issued for: "
                             "install the certificate and the key of one enrolment together "
                             "(edgesync enroll wrote the key beside its signing request)"
                           : "install this box's private key (PEM, without passphrase) as " + key);
    }
    client_usable_ = true;
    return make("client_key", Outcome::kOk,
                key + ": mode 0600 or stricter, matches the certificate");
  }

  // ---- the hub link, step by step ----

  Check check_dns() {
    auto ep = platform::parse_hub_endpoint(config().hub.uri);
    if (!ep) {
      return make("dns", Outcome::kFail, ep.status().message(),
                  "set hub.uri to ssl://HOST:PORT in " + path());
    }
    endpoint_ = *ep;
    if (platform::is_ip_literal(ep->host)) {
      addresses_ = {ep->host};
      return skipped("dns", "hub.uri names an address (" + ep->host + "): nothing to resolve");
    }
    auto found = platform::resolve_host(ep->host, o_.timeout);
    if (!found) {
      const bool timeout = found.status().code() == Status::Code::kUnavailable;
      return make("dns", Outcome::kFail, found.status().message(),
                  timeout ? "the name server does not answer: check the network and the "
                            "servers in /etc/resolv.conf (resolvectl status)"
                          : "check the host name in hub.uri (" + path() +
                                ") and this box's name resolution (/etc/resolv.conf, "
                                "resolvectl status)");
    }
    addresses_ = *found;
    std::string list;
    for (const auto& a : addresses_) list += (list.empty() ? "" : ", ") + a;
    return make("dns", Outcome::kOk, ep->host + ": " + list);
  }

  Check check_tcp() {
    if (!endpoint_) return skipped("tcp", "hub.uri has no usable host and port (see dns)");
    if (addresses_.empty()) return skipped("tcp", endpoint_->host + " did not resolve (see dns)");
    auto out = platform::tcp_connect(addresses_, endpoint_->port, o_.timeout);
    if (!out.ok()) {
      const std::string where = endpoint_->host + " port " + std::to_string(endpoint_->port);
      std::string fix;
      if (out.refused) {
        fix = "nothing listens on " + where +
              ": the hub's broker is down, or hub.uri names the wrong port; ask the hub's "
              "operators whether it is up";
      } else if (out.timed_out) {
        fix = "no answer from " + where +
              ": a firewall drops the traffic or the host is down; check that this network "
              "lets outgoing TCP to port " +
              std::to_string(endpoint_->port) + " through";
      } else {
        fix = "this box cannot reach " + endpoint_->host +
              ": check its network connection and default route (ip route)";
      }
      return make("tcp", Outcome::kFail, out.error, fix);
    }
    tcp_ok_ = true;
    const std::string detail = "connected to " + out.connection.address();
    // Kept for the TLS handshake; a tcp:// link is probed by the MQTT connect instead.
    if (endpoint_->tls) connection_ = std::move(out.connection);
    return make("tcp", Outcome::kOk, detail);
  }

  Check check_tls() {
    if (!endpoint_) return skipped("tls", "hub.uri has no usable host and port (see dns)");
    if (!endpoint_->tls) {
      return skipped("tls", "hub.uri is tcp:// (hub.allow_insecure): the link is not encrypted");
    }
    if (!connection_.is_open()) return skipped("tls", "no TCP connection (see tcp)");
    if (!ca_usable_) return skipped("tls", "hub.ca_file is unusable (see ca)");
    if (!client_usable_) {
      return skipped("tls",
                     "the client certificate or key is unusable (see client_cert, "
                     "client_key)");
    }
    platform::TlsProbeOptions opts;
    opts.host = endpoint_->host;
    opts.ca_file = config().hub.ca_file;
    opts.cert_file = config().hub.cert_file;
    opts.key_file = config().hub.key_file;
    opts.timeout = o_.timeout;
    auto out = platform::tls_handshake(connection_, opts);
    connection_ = platform::TcpConnection();
    const std::string hub_cert =
        out.hub_subject.empty()
            ? std::string()
            : " [the hub's certificate: " + out.hub_subject + ", issued by " + out.hub_issuer +
                  (out.hub_names.empty() ? "" : ", names " + out.hub_names) + ", valid " +
                  date_of(out.hub_not_before_ms) + " to " + date_of(out.hub_not_after_ms) + "]";
    if (out.ok()) {
      tls_ok_ = true;
      return make("tls", Outcome::kOk,
                  out.version + " " + out.ciphersuite + "; the hub's certificate (" +
                      out.hub_subject + ") verified with hub.ca_file" +
                      (config().hub.cert_file.empty() ? "" : "; this box's certificate accepted"));
    }
    // This probe speaks TLS 1.2 (mbedTLS 2.28); the agent's OpenSSL speaks 1.3 as well. A hub
    // that takes 1.3 only refuses the probe but not the agent: the MQTT connect decides.
    if (out.failure == platform::TlsProbeOutcome::Failure::kAlert &&
        out.alert_name == "protocol_version") {
      tls_ok_ = true;
      return make("tls", Outcome::kWarn,
                  out.error + hub_cert +
                      ": this check speaks TLS 1.2 only, and the hub may take TLS 1.3 only, "
                      "which the agent speaks too (see mqtt)",
                  "if mqtt is ok, nothing (the hub requires TLS 1.3); otherwise ask the hub's "
                  "operators which TLS versions it accepts");
    }
    return make("tls", Outcome::kFail, out.error + hub_cert, tls_fix(out));
  }

  std::string tls_fix(const platform::TlsProbeOutcome& out) const {
    using Failure = platform::TlsProbeOutcome::Failure;
    const Config& c = config();
    std::vector<std::string> fixes;
    switch (out.failure) {
      case Failure::kHubCertificate:
        if (out.hub_cert_untrusted) {
          fixes.push_back("hub.ca_file (" + c.hub.ca_file +
                          ") is not the CA that signed the hub's certificate (issued by " +
                          out.hub_issuer + "): install that CA's certificate as hub.ca_file");
        }
        if (out.hub_cert_name_mismatch) {
          fixes.push_back("the hub's certificate does not name " + endpoint_->host +
                          ": use a name it carries (" +
                          (out.hub_names.empty() ? out.hub_subject : out.hub_names) +
                          ") in hub.uri, or ask the hub's operators for a certificate that "
                          "names " +
                          endpoint_->host);
        }
        if (out.hub_cert_expired) {
          fixes.push_back("the hub's certificate expired on " + date_of(out.hub_not_after_ms) +
                          ": the hub's operators must renew it (if that date is not past, this "
                          "box's clock is wrong: see clock)");
        }
        if (out.hub_cert_not_yet_valid) {
          fixes.push_back("the hub's certificate is valid only from " +
                          time_of(out.hub_not_before_ms) +
                          ": this box's clock is probably behind (see clock)");
        }
        if (fixes.empty()) {
          fixes.push_back("ask the hub's operators for a certificate that passes these checks");
        }
        break;
      case Failure::kAlert:
        if (out.alert_name == "handshake_failure" || out.alert_name == "certificate_required") {
          if (c.hub.cert_file.empty()) {
            fixes.push_back(
                "the hub wants a client certificate: set hub.cert_file and "
                "hub.key_file (edgesync enroll makes the key and a signing request)");
          } else {
            fixes.push_back(
                "the hub refused the handshake: it may not accept this box's "
                "certificate, or share no TLS version or cipher suite with it; the "
                "hub's log tells which");
          }
        } else if (out.alert_name == "insufficient_security") {
          fixes.push_back(
              "the hub and this box share no TLS version or cipher suite: ask the "
              "hub's operators to allow TLS 1.2 with ECDHE");
        } else {
          fixes.push_back("the hub refused this box's certificate (" + c.hub.cert_file +
                          "): it must be current and issued by a CA the hub trusts; "
                          "edgesync enroll makes a new key and signing request");
        }
        break;
      case Failure::kTimeout:
        fixes.push_back("check that hub.uri's port (" + std::to_string(endpoint_->port) +
                        ") is the hub's MQTT-over-TLS port");
        break;
      case Failure::kConnection:
      case Failure::kOther:
        fixes.push_back("check that hub.uri's port (" + std::to_string(endpoint_->port) +
                        ") is the hub's MQTT-over-TLS port; the hub's log tells why it closed "
                        "the connection");
        break;
      case Failure::kLocalFiles:
        fixes.push_back("see ca, client_cert and client_key");
        break;
      case Failure::kNone:
        break;
    }
    std::string out_text;
    for (const auto& f : fixes) out_text += (out_text.empty() ? "" : "; ") + f;
    return out_text;
  }

  Check check_mqtt() {
    if (!endpoint_) return skipped("mqtt", "hub.uri has no usable host and port (see dns)");
    if (endpoint_->tls && !tls_ok_) return skipped("mqtt", "no TLS session with the hub (see tls)");
    if (!endpoint_->tls && !tcp_ok_) return skipped("mqtt", "no TCP connection (see tcp)");
    const Config& c = config();
    platform::MqttProbeOptions opts;
    opts.uri = c.hub.uri;
    // Its own client id: the broker would otherwise end the running agent's session.
    opts.client_id = c.hub.client_id + "-doctor";
    opts.ca_file = c.hub.ca_file;
    opts.cert_file = c.hub.cert_file;
    opts.key_file = c.hub.key_file;
    opts.username = c.hub.username;
    opts.password = c.hub.password;
    opts.keepalive_s = static_cast<int>(c.hub.keepalive_s);
    opts.timeout = o_.timeout;
    auto out = platform::mqtt_probe(opts);
    if (out.connected) {
      return judge_broker_limits({out.receive_maximum, out.maximum_packet_size}, c, path(),
                                 opts.client_id);
    }
    std::string fix;
    switch (out.reason_code) {
      case 0x86:
        fix = "check hub.username and hub.password in " + path();
        break;
      case 0x87:
        fix =
            "the hub does not let this box in: check hub.username and hub.password, this "
            "box's certificate, and the hub's access rules for client id " +
            c.hub.client_id + " (the probe connects as " + opts.client_id + ")";
        break;
      case 0x85:
        fix = "the hub refused the client id " + opts.client_id +
              ": check hub.client_id and the hub's rules for client ids";
        break;
      case 0x8A:
        fix = "the hub has banned this box: ask the hub's operators";
        break;
      case 0x88:
      case 0x89:
        fix = "the hub is unavailable or busy: try again later, and tell the hub's operators";
        break;
      default:
        fix = out.timed_out ? "the hub took the connection but did not answer CONNECT: ask "
                              "the hub's operators to look at its broker"
                            : "the hub's log tells why it refused the connection";
        break;
    }
    return make("mqtt", Outcome::kFail, out.error, fix);
  }

  Options o_;
  std::vector<Check> checks_;
  std::optional<Config> config_;
  bool agent_running_ = false;
  bool ca_usable_ = false;
  bool client_cert_readable_ = false;
  bool client_usable_ = false;  // no client certificate, or one whose key matches
  std::optional<platform::HubEndpoint> endpoint_;
  std::vector<std::string> addresses_;
  bool tcp_ok_ = false;
  platform::TcpConnection connection_;
  bool tls_ok_ = false;
};

}  // namespace

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kWarn:
      return "warn";
    case Outcome::kFail:
      return "fail";
    case Outcome::kSkipped:
      return "skipped";
  }
  return "fail";
}

std::vector<Check> run_checks(const Options& options) { return Doctor(options).run(); }

Check judge_clock(int64_t now_ms, int64_t build_unix_s) {
  const int64_t build_ms = build_unix_s * 1000;
  const std::string now = time_of(now_ms);
  const std::string ntp_fix =
      "turn on network time (timedatectl set-ntp true) and check that an NTP server is "
      "reachable; until the clock is right, certificates look not yet valid and event times "
      "are marked untrusted";
  if (now_ms < build_ms - 365 * kDayMs) {
    return make("clock", Outcome::kFail,
                "the wall clock reads " + now + ", more than a year before this build (" +
                    date_of(build_ms) +
                    "): the box has no battery-backed clock (RTC) or it "
                    "was never set",
                ntp_fix);
  }
  if (now_ms < build_ms) {
    return make("clock", Outcome::kWarn,
                "the wall clock reads " + now + ", before this build's date (" + date_of(build_ms) +
                    "): it is behind",
                ntp_fix);
  }
  return make("clock", Outcome::kOk, now);
}

Check judge_disk(const DiskFacts& d, const Config& config, const std::string& config_path) {
  const int64_t budget = config.storage.max_bytes;
  const int64_t growth = std::max<int64_t>(0, budget - d.outbox_bytes) + kWalAllowanceBytes;
  const std::string facts = human_bytes(d.free_bytes) + " free on " + d.dir + "; the outbox (" +
                            human_bytes(d.outbox_bytes) + " now) may grow to storage.max_bytes " +
                            human_bytes(budget) + " plus ~" + human_bytes(kWalAllowanceBytes) +
                            " of WAL";
  if (d.free_bytes < 2 * config.ingest.max_line_bytes) {
    return make("disk", Outcome::kFail, facts + ": the next events may not fit",
                "free space on the file system of " + d.dir +
                    " (old logs, core dumps, packages); the agent answers producers "
                    "storage_error or outbox_full until there is room");
  }
  if (d.free_bytes < growth) {
    // The largest budget that fits what is free now, in whole MiB.
    const int64_t fits = (d.outbox_bytes + d.free_bytes - kWalAllowanceBytes) >> 20 << 20;
    std::string fix = "free " + human_bytes(growth - d.free_bytes) + " more on " + d.dir;
    if (fits >= std::max<int64_t>(int64_t{1} << 20, 2 * config.ingest.max_line_bytes)) {
      fix +=
          ", or lower storage.max_bytes to at most " + std::to_string(fits) + " in " + config_path;
    }
    return make("disk", Outcome::kWarn,
                facts + ": a long hub outage would fill the disk before the budget", fix);
  }
  return make("disk", Outcome::kOk, facts);
}

Check judge_broker_limits(const BrokerLimits& limits, const Config& config,
                          const std::string& config_path, const std::string& client_id) {
  const int64_t inflight = config.hub.max_inflight;
  std::string detail = "connected as " + client_id + " (MQTT 5); ";
  if (limits.receive_maximum > 0) {
    detail += "Receive Maximum " + std::to_string(limits.receive_maximum);
    detail += limits.receive_maximum < inflight
                  ? " (the agent keeps " + std::to_string(limits.receive_maximum) +
                        " in flight, not hub.max_inflight " + std::to_string(inflight) + ")"
                  : " (hub.max_inflight " + std::to_string(inflight) + " fits)";
  } else {
    detail += "no Receive Maximum (hub.max_inflight " + std::to_string(inflight) + " fits)";
  }
  const int64_t line = config.ingest.max_line_bytes;
  if (limits.maximum_packet_size <= 0) {
    return make("mqtt", Outcome::kOk, detail + "; no Maximum Packet Size");
  }
  detail += "; Maximum Packet Size " + std::to_string(limits.maximum_packet_size) + " bytes";
  if (limits.maximum_packet_size < line + kPublishOverheadBytes) {
    const int64_t largest =
        std::max<int64_t>(0, limits.maximum_packet_size - kPublishOverheadBytes);
    return make("mqtt", Outcome::kWarn,
                detail + ", but ingest.max_line_bytes takes events up to " + std::to_string(line) +
                    " bytes: events over about " + std::to_string(largest) +
                    " bytes are dead-lettered as too large for the hub",
                "lower ingest.max_line_bytes to at most " + std::to_string(largest) + " in " +
                    config_path +
                    " (producers then get too_large at once), or have the hub's operators raise "
                    "its maximum packet size (mosquitto: max_packet_size) to at least " +
                    std::to_string(line + kPublishOverheadBytes));
  }
  detail += " (ingest.max_line_bytes " + std::to_string(line) + " fits)";
  return make("mqtt", Outcome::kOk, detail);
}

}  // namespace edgesync::agent::doctor
