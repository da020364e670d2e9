#include "tests/harness/ejabberd_cluster.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/harness/net_util.h"
#include "tests/harness/process.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ejabberdctl runs the node as this account (its INSTALLUSER) and refuses every other user but
// root.
const char* const kAccount = "ejabberd";

bool running_as_root() { return ::geteuid() == 0; }

std::chrono::milliseconds left_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, std::chrono::milliseconds(1000));
}

// The end of a log: a failed start-up's reason is at the end, and a whole log can be long.
std::string tail(const std::string& text, size_t max_lines) {
  size_t start = text.size();
  size_t lines = 0;
  for (; start > 0; --start) {
    if (text[start - 1] == '\n' && start != text.size() && ++lines == max_lines) break;
  }
  return text.substr(start);
}

std::string random_cookie() {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::random_device rd;
  std::string s;
  for (int i = 0; i < 24; ++i) s += kChars[rd() % (sizeof kChars - 1)];
  return s;
}

// The process's arguments; empty if it is gone or not readable.
std::vector<std::string> cmdline_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
  return args;
}

// A zombie counts as gone: the detached VM's parent is init, which need not reap it at once.
bool alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  const char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

// Whether args are an Erlang VM started as node `name` (ejabberdctl passes -sname for a host
// part without a dot, -name otherwise).
bool is_beam_of(const std::vector<std::string>& args, const std::string& name) {
  if (args.empty() || args[0].find("beam") == std::string::npos) return false;
  for (size_t k = 0; k + 1 < args.size(); ++k) {
    if ((args[k] == "-sname" || args[k] == "-name") && args[k + 1] == name) return true;
  }
  return false;
}

// The live VMs of these node names, found by their command line (nothing else on the machine
// carries these names: they hold the test process's pid and a counter).
std::vector<pid_t> beams_of(const std::vector<std::string>& names) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string p = entry.path().filename().string();
    if (p.empty() || p.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(p);
    const auto args = cmdline_of(pid);
    for (const auto& name : names) {
      if (is_beam_of(args, name) && alive(pid)) found.push_back(pid);
    }
  }
  return found;
}

pid_t beam_of(const std::string& name) {
  const auto pids = beams_of({name});
  return pids.empty() ? 0 : pids.front();
}

bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (alive(pid)) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// `epmd -names`: the short names registered now, or nullopt if no epmd answers.
std::optional<std::vector<std::string>> epmd_names() {
  const CommandResult r = run_command({"epmd", "-names"}, "", 10s);
  if (!r.exited_ok()) return std::nullopt;
  std::vector<std::string> names;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("name ", 0) != 0) continue;
    std::istringstream words(line.substr(5));
    std::string name;
    if (words >> name) names.push_back(name);
  }
  return names;
}

bool epmd_lists(const std::string& node_name) {
  const auto names = epmd_names();
  if (!names) return false;
  const std::string short_name = node_name.substr(0, node_name.find('@'));
  for (const auto& n : *names) {
    if (n == short_name) return true;
  }
  return false;
}

// A VM killed with SIGKILL is unregistered when epmd sees its connection close; a start before
// that would find the name taken.
void wait_unregistered(const std::string& node_name, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (epmd_lists(node_name) && Clock::now() < deadline) std::this_thread::sleep_for(100ms);
}

// The first VM started epmd for everyone on the machine; it goes only when no Erlang node is
// left registered with it (as `ejabberdctl stopped` does), so another cluster, a test running
// beside this one or a machine-wide node keeps it.
void stop_epmd_if_unused() {
  const auto names = epmd_names();
  if (names && names->empty()) run_command({"epmd", "-kill"}, "", 10s);
}

void chown_tree(const std::filesystem::path& root, uid_t uid, gid_t gid) {
  auto one = [&](const std::filesystem::path& p) {
    if (::lchown(p.c_str(), uid, gid) != 0) {
      throw std::runtime_error("cannot chown " + p.string() + " to " + kAccount + ": " +
                               std::strerror(errno));
    }
  };
  one(root);
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) one(entry.path());
}

std::string yaml_quote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

// The guard process's script ($1 epmd, then the node names). `read` returns at end of file: when
// the destructor closes the pipe (the nodes are gone by then) or the test process dies. Then every
// VM of these node names is killed, and epmd too if nothing else is registered with it. The
// script's own command line holds the names, never after "-sname", so it cannot match itself.
const char* const kGuardScript = R"(epmd=$1; shift
read _
killed=
for p in /proc/[0-9]*; do
  cmd=$( { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null ) || continue
  for n in "$@"; do
    case "$cmd" in
      *beam*" -sname $n "*|*beam*" -name $n "*) kill -9 "${p#/proc/}" 2>/dev/null && killed=1 ;;
    esac
  done
done
if [ -n "$killed" ]; then
  sleep 1
  "$epmd" -names 2>/dev/null | grep -q '^name ' || "$epmd" -kill >/dev/null 2>&1
fi
exit 0
)";

}  // namespace

std::string EjabberdCluster::unavailable_reason() {
  for (const char* tool : {"ejabberdctl", "erl", "epmd"}) {
    try {
      find_executable(tool);
    } catch (const std::exception&) {
      return std::string(tool) + " not found (Debian package ejabberd)";
    }
  }
  const passwd* pw = ::getpwnam(kAccount);
  if (pw == nullptr) return std::string("no '") + kAccount + "' account to run ejabberd as";
  if (!running_as_root() && ::geteuid() != pw->pw_uid) {
    return std::string("ejabberdctl runs only as root or as '") + kAccount + "'";
  }
  return "";
}

EjabberdCluster::EjabberdCluster(std::string dir, TlsMaterial tls, int nodes)
    : dir_(std::move(dir)), tls_(std::move(tls)), cookie_(random_cookie()) {
  if (nodes < 1) throw std::invalid_argument("an ejabberd cluster needs at least one node");
  static std::atomic<int> clusters{0};
  const std::string tag = std::to_string(::getpid()) + "_" + std::to_string(++clusters);
  std::vector<int> taken;
  auto fresh_port = [&] {
    int p;
    do {
      p = pick_free_port();
    } while (std::find(taken.begin(), taken.end(), p) != taken.end());
    taken.push_back(p);
    return p;
  };
  for (int i = 1; i <= nodes; ++i) {
    Node n;
    n.name = "ejabberd" + std::to_string(i) + "_" + tag + "@localhost";
    n.dir = dir_ + "/ejabberd" + std::to_string(i);
    n.port = fresh_port();
    n.plain_port = fresh_port();
    nodes_.push_back(std::move(n));
  }
}

EjabberdCluster::~EjabberdCluster() {
  try {
    // The nodes shut down side by side: each ctl command boots a VM of its own, seconds apiece.
    std::vector<std::thread> stopping;
    for (auto& n : nodes_) {
      if (n.beam_pid <= 0 || !alive(n.beam_pid)) continue;
      stopping.emplace_back([this, &n] {
        try {
          ctl(n, {"stop"}, 20s);
          wait_gone(n.beam_pid, 30s);
        } catch (const std::exception&) {
          // Killed below.
        }
      });
    }
    for (auto& t : stopping) t.join();
    kill_leftovers(10s);
    stop_epmd_if_unused();
  } catch (...) {
    // Nothing more to do from a destructor; the guard still kills what is left.
  }
  stop_guard();
}

const EjabberdCluster::Node& EjabberdCluster::node(int i) const {
  if (i < 1 || i > nodes()) {
    throw std::out_of_range("ejabberd node " + std::to_string(i) + " of " +
                            std::to_string(nodes()) + " (nodes count from 1)");
  }
  return nodes_[static_cast<size_t>(i - 1)];
}

EjabberdCluster::Node& EjabberdCluster::node(int i) {
  return const_cast<Node&>(static_cast<const EjabberdCluster*>(this)->node(i));
}

std::string EjabberdCluster::node_name(int i) const { return node(i).name; }
int EjabberdCluster::port(int i) const { return node(i).port; }
int EjabberdCluster::plain_port(int i) const { return node(i).plain_port; }
std::string EjabberdCluster::node_dir(int i) const { return node(i).dir; }

std::string EjabberdCluster::uri(int i) const {
  return "ssl://127.0.0.1:" + std::to_string(node(i).port);
}

std::string EjabberdCluster::plain_uri(int i) const {
  return "tcp://127.0.0.1:" + std::to_string(node(i).plain_port);
}

std::string EjabberdCluster::log(int i) const {
  const Node& n = node(i);
  return read_file(n.dir + "/logs/ejabberd.log") + "\n--- ejabberdctl (" + n.dir +
         "/ejabberdctl.log) ---\n" + read_file(n.dir + "/ejabberdctl.log");
}

bool EjabberdCluster::node_running(int i) const {
  const Node& n = node(i);
  // The pid is checked against the node name: a pid from before a crash may have been reused.
  return n.beam_pid > 0 && alive(n.beam_pid) && is_beam_of(cmdline_of(n.beam_pid), n.name);
}

std::string EjabberdCluster::failure(const Node& n, const std::string& what) const {
  const int i = static_cast<int>(&n - nodes_.data()) + 1;
  return "ejabberd node " + n.name + ": " + what + "; log (" + n.dir + "/logs, tail):\n" +
         tail(log(i), 80);
}

void EjabberdCluster::write_config(const Node& n) const {
  namespace fs = std::filesystem;
  for (const char* sub : {"", "/spool", "/logs", "/modules", "/modules.d"}) {
    fs::create_directories(n.dir + sub);
  }
  // ejabberd takes the certificate, its chain and the key from one PEM (top-level certfiles;
  // mod_mqtt's TLS listener uses the default certificate, it has no certfile of its own).
  const std::string pem = read_file(tls_.server_cert_file) + read_file(tls_.ca_file) +
                          read_file(tls_.server_key_file);
  write_file(n.dir + "/server.pem", pem);
  ::chmod((n.dir + "/server.pem").c_str(), 0600);

  std::ostringstream y;
  y << "# One node of a loopback-only ejabberd test cluster, written by the test harness.\n"
    << "hosts: [localhost]\n"
    << "loglevel: info\n"
    << "certfiles: [" << yaml_quote(n.dir + "/server.pem") << "]\n"
    // Anonymous: an MQTT client must send a user name; any password is accepted.
    << "auth_method: anonymous\n"
    << "anonymous_protocol: login_anon\n"
    << "listen:\n"
    << "  - port: " << n.plain_port << "\n"
    << "    ip: \"127.0.0.1\"\n"
    << "    module: mod_mqtt\n"
    << "    backlog: 1000\n"
    << "  - port: " << n.port << "\n"
    << "    ip: \"127.0.0.1\"\n"
    << "    module: mod_mqtt\n"
    << "    backlog: 1000\n"
    << "    tls: true\n"
    // ejabberdctl's commands (status, join_cluster, stop) go through this.
    << "api_permissions:\n"
    << "  \"console commands\":\n"
    << "    from: [ejabberd_ctl]\n"
    << "    who: all\n"
    << "    what: \"*\"\n"
    << "modules:\n"
    << "  mod_mqtt:\n"
    // A disconnected persistent session (and its queued QoS 1 messages) is kept this long.
    << "    session_expiry: 1h\n";
  write_file(n.dir + "/ejabberd.yml", y.str());

  // Sourced by ejabberdctl. Everything a node would otherwise take from the machine's own
  // installation (spool, logs, pid file, contributed modules, the cookie in the account's home)
  // points into the node's directory or is given here.
  std::ostringstream c;
  c << "# Written by the test harness.\n"
    << "ERLANG_NODE=" << n.name << "\n"
    << "INET_DIST_INTERFACE=127.0.0.1\n"
    << "ERL_EPMD_ADDRESS=127.0.0.1\n"
    << "SPOOL_DIR=" << n.dir << "/spool\n"
    << "LOGS_DIR=" << n.dir << "/logs\n"
    << "EJABBERD_PID_PATH=" << n.dir << "/ejabberd.pid\n"
    << "CONTRIB_MODULES_PATH=" << n.dir << "/modules\n"
    << "CONTRIB_MODULES_CONF_DIR=" << n.dir << "/modules.d\n"
    // The ctl commands read this file too, so they carry the same cookie as the nodes.
    << "ERL_OPTIONS=\"-env ERL_CRASH_DUMP_BYTES 0 -setcookie " << cookie_ << "\"\n";
  write_file(n.dir + "/ejabberdctl.cfg", c.str());
  // Erlang's resolver for the nodes: localhost from the file, as Debian's /etc/ejabberd/inetrc.
  write_file(n.dir + "/inetrc",
             "{lookup,[\"file\",\"native\"]}.\n{host,{127,0,0,1}, [\"localhost\"]}.\n"
             "{file, resolv, \"/etc/resolv.conf\"}.\n");

  if (running_as_root()) {
    const passwd* pw = ::getpwnam(kAccount);
    if (pw == nullptr) {
      throw std::runtime_error(std::string("running as root but there is no '") + kAccount +
                               "' account to run ejabberd as");
    }
    chown_tree(n.dir, pw->pw_uid, pw->pw_gid);
    // A parent the account cannot traverse fails deep inside the VM's start-up; say it here.
    const CommandResult r =
        run_command({"setpriv", std::string("--reuid=") + kAccount,
                     std::string("--regid=") + kAccount, "--init-groups", "test", "-r",
                     n.dir + "/server.pem", "-a", "-w", n.dir + "/spool"},
                    "", 10s);
    if (!r.exited_ok()) {
      throw std::runtime_error("the '" + std::string(kAccount) + "' account cannot use " + n.dir +
                               " (its parents must be reachable by it)\n" + r.describe());
    }
  }
}

std::string EjabberdCluster::ctl(const Node& n, const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv{"ejabberdctl", "--config-dir", n.dir};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string line = "$";
  for (const auto& a : argv) line += " " + a;
  const auto t0 = Clock::now();
  const CommandResult r = run_command(argv, "", timeout);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  {
    std::ofstream out(n.dir + "/ejabberdctl.log", std::ios::app);
    out << line << "  (" << describe_wait_status(r.status) << (r.timed_out ? ", timed out" : "")
        << ", " << ms << " ms)\n"
        << r.out << r.err;
  }
  if (!r.exited_ok()) {
    throw std::runtime_error(failure(n, "`ejabberdctl " + args.front() + "` failed:\n" +
                                            r.describe()));
  }
  return r.out;
}

void EjabberdCluster::wait_serving(const Node& n, Clock::time_point deadline) const {
  while (!(tcp_port_accepts(n.port) && tcp_port_accepts(n.plain_port))) {
    if (!alive(n.beam_pid)) throw std::runtime_error(failure(n, "the VM exited during start-up"));
    if (Clock::now() > deadline) {
      throw std::runtime_error(failure(n, "MQTT ports " + std::to_string(n.port) + " and " +
                                              std::to_string(n.plain_port) +
                                              " not accepting after the start-up timeout"));
    }
    std::this_thread::sleep_for(50ms);
  }
}

void EjabberdCluster::launch(Node& n, Clock::time_point deadline) {
  if (node_running(static_cast<int>(&n - nodes_.data()) + 1)) {
    throw std::runtime_error("ejabberd node " + n.name + " already running");
  }
  wait_unregistered(n.name, left_until(deadline));
  // `start` detaches the VM (its stdio goes to /dev/null, so the captured pipes close at once).
  ctl(n, {"start"}, left_until(deadline));
  await_started(n, deadline);
  n.beam_pid = beam_of(n.name);
  if (n.beam_pid == 0) {
    throw std::runtime_error(failure(n, "`ejabberdctl started` succeeded but no VM runs as it"));
  }
}

void EjabberdCluster::await_started(const Node& n, Clock::time_point deadline) const {
  // `started` asks for the node's status every 2 s, for up to 60 s, even after the VM is gone (a
  // port taken, a bad config: ejabberd halts the VM). It runs beside a watch on the VM, so such a
  // start fails at once, with the log that says why.
  const std::string ctl_log = n.dir + "/ejabberdctl.log";
  {
    std::ofstream out(ctl_log, std::ios::app);
    out << "$ ejabberdctl --config-dir " << n.dir << " started\n";
  }
  ChildProcess waiter;
  waiter.spawn({"ejabberdctl", "--config-dir", n.dir, "started"}, ctl_log);
  bool seen = false;
  const auto since = Clock::now();
  while (true) {
    if (const auto status = waiter.wait(200ms)) {
      if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return;
      throw std::runtime_error(failure(n, "`ejabberdctl started` gave up (" +
                                              describe_wait_status(*status) + ")"));
    }
    // The VM may take a moment to appear after `start` returns.
    if (beam_of(n.name) != 0) {
      seen = true;
    } else if (seen || Clock::now() - since > 10s) {
      waiter.stop(1s);
      throw std::runtime_error(failure(n, "the VM exited during start-up"));
    }
    if (Clock::now() > deadline) {
      waiter.stop(1s);
      throw std::runtime_error(failure(n, "not started within the start-up timeout"));
    }
  }
}

void EjabberdCluster::start(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (const auto& n : nodes_) {
    if (n.beam_pid > 0 && alive(n.beam_pid)) {
      throw std::runtime_error("ejabberd cluster already started");
    }
  }
  if (!configured_) {
    for (const auto& n : nodes_) write_config(n);
    configured_ = true;
  }
  start_guard();
  Node& first = nodes_.front();
  launch(first, deadline);
  wait_serving(first, deadline);
  for (size_t k = 1; k < nodes_.size(); ++k) {
    Node& n = nodes_[k];
    launch(n, deadline);
    // join_cluster restarts ejabberd on the joining node with node 1's Mnesia schema (and
    // drops what it had), and returns once it is started again; the listeners are the last
    // thing up.
    ctl(n, {"join_cluster", first.name}, left_until(deadline));
    wait_serving(n, deadline);
  }
  const std::string members = ctl(first, {"list_cluster"}, left_until(deadline));
  for (const auto& n : nodes_) {
    if (members.find(n.name) == std::string::npos) {
      throw std::runtime_error(failure(n, "not in node 1's list_cluster after joining:\n" +
                                              members));
    }
  }
}

void EjabberdCluster::stop_node(int i) {
  Node& n = node(i);
  if (!node_running(i)) return;
  // `stop` asks the node to shut down and returns. The wait is on the VM itself rather than
  // `ejabberdctl stopped`, which boots a VM of its own every 2 s to ask for a status that fails
  // as soon as distribution is down, possibly before ejabberd has closed everything.
  ctl(n, {"stop"}, 30s);
  if (!wait_gone(n.beam_pid, 60s)) {
    ::kill(n.beam_pid, SIGKILL);
    wait_gone(n.beam_pid, 10s);
  }
  n.beam_pid = 0;
  wait_unregistered(n.name, 10s);
}

void EjabberdCluster::start_node(int i, std::chrono::milliseconds timeout) {
  if (!configured_) throw std::runtime_error("start_node before the cluster's start()");
  const auto deadline = Clock::now() + timeout;
  Node& n = node(i);
  launch(n, deadline);
  wait_serving(n, deadline);
}

void EjabberdCluster::kill_node(int i) {
  Node& n = node(i);
  if (!node_running(i)) return;
  ::kill(n.beam_pid, SIGKILL);
  if (!wait_gone(n.beam_pid, 10s)) {
    throw std::runtime_error(failure(n, "VM " + std::to_string(n.beam_pid) +
                                            " still running 10 s after SIGKILL"));
  }
  n.beam_pid = 0;
  wait_unregistered(n.name, 10s);
}

void EjabberdCluster::start_guard() {
  if (guard_pid_ > 0) return;
  // Everything the child needs is built before fork(): after it, in a threaded test process,
  // only async-signal-safe calls.
  std::vector<std::string> args{"sh", "-c", kGuardScript, "ejabberd-guard", find_executable("epmd")};
  for (const auto& n : nodes_) args.push_back(n.name);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string sh = find_executable("sh");
  int fds[2];
  // Close-on-exec: only the guard holds the read end, and no other child (the agent, a ctl
  // command) keeps the write end open past the test process.
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe failed: ") + std::strerror(errno));
  }
  const int log_fd =
      ::open((dir_ + "/ejabberd-guard.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
             0644);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[0], 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    // Its own session: a Ctrl-C at the terminal ends the test, and the guard outlives it to
    // clean up. No parent-death signal, for the same reason.
    ::setsid();
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(sh.c_str(), argv.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(fds[0]);
  if (log_fd >= 0) ::close(log_fd);
  if (pid < 0) {
    ::close(fds[1]);
    throw std::runtime_error(std::string("fork failed: ") + std::strerror(fork_errno));
  }
  guard_pid_ = pid;
  guard_fd_ = fds[1];
}

void EjabberdCluster::stop_guard() {
  if (guard_fd_ >= 0) {
    ::close(guard_fd_);
    guard_fd_ = -1;
  }
  if (guard_pid_ <= 0) return;
  const auto deadline = Clock::now() + 10s;
  int status = 0;
  while (::waitpid(guard_pid_, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(guard_pid_, SIGKILL);
      ::waitpid(guard_pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  guard_pid_ = 0;
}

void EjabberdCluster::kill_leftovers(std::chrono::milliseconds timeout) {
  std::vector<std::string> names;
  for (const auto& n : nodes_) names.push_back(n.name);
  const auto pids = beams_of(names);
  for (pid_t p : pids) ::kill(p, SIGKILL);
  for (pid_t p : pids) wait_gone(p, timeout);
  for (auto& n : nodes_) n.beam_pid = 0;
}

}  // namespace edgesync::test
