// `edgesync reconcile`: reads the hub's messages (a capture file, or a live MQTT subscription)
// into the reconciliation (agent/reconcile.h) and prints what it proves per box and incarnation.
//
// A capture is NDJSON, one message a line: {"topic": "...", "payload": <the payload as a JSON
// string, or as the JSON value itself>}; other keys are ignored, blank lines skipped. `--save`
// writes the same format (payload as the string received), so a live run can be kept and read
// again.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>

#include "agent/cli.h"
#include "agent/cli_format.h"
#include "agent/reconcile.h"
#include "events/json_text.h"
#include "platform/clock.h"
#include "platform/mqtt_transport.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxRangesShown = 20;
constexpr size_t kMaxDeadLettersShown = 20;

volatile sig_atomic_t g_stop = 0;
void request_stop(int) { g_stop = 1; }

// SIGINT and SIGTERM end a live run early: what arrived so far is reported.
void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = request_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// ---- captures ----

Status read_capture(const std::string& path, Reconciler* r) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return Status::io_error("cannot read " + path + ": " + std::strerror(errno));
    in = &file;
  }
  std::string line;
  for (int64_t n = 1; std::getline(*in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    const std::string where = "line " + std::to_string(n);
    if (!record.is_object()) {
      r->add_problem(where + ": not a JSON object");
      continue;
    }
    auto topic = record.find("topic");
    auto payload = record.find("payload");
    if (topic == record.end() || !topic->is_string() || payload == record.end()) {
      r->add_problem(where + ": needs \"topic\" (a string) and \"payload\"");
      continue;
    }
    if (payload->is_string()) {
      r->add(topic->get<std::string>(), std::string_view(payload->get_ref<const std::string&>()));
    } else {
      r->add_json(topic->get<std::string>(), *payload);
    }
  }
  if (in->bad()) return Status::io_error("cannot read " + (path == "-" ? "standard input" : path));
  return Status::ok();
}

// --save: a new file (never one that exists: a capture may be the only record), mode 0600 since
// the events carry the stores' data, written line by line so an interrupted run keeps what came.
class CaptureWriter {
 public:
  ~CaptureWriter() {
    if (file_) std::fclose(file_);
  }
  Status open(const std::string& path) {
    path_ = path;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST) return Status::unavailable(path + " already exists");
      return Status::io_error("cannot create " + path + ": " + std::strerror(errno));
    }
    file_ = ::fdopen(fd, "w");
    if (!file_) {
      ::close(fd);
      return Status::io_error("cannot open " + path);
    }
    return Status::ok();
  }
  void write(const std::string& topic, const std::string& payload) {
    if (!file_) return;
    // A payload that is not UTF-8 is kept with U+FFFD in place of the bad bytes: it was not an
    // edgesync message (the agent sends only JSON), so nothing the reconciliation reads changes.
    const std::string line = events::json_text(json{{"topic", topic}, {"payload", payload}});
    std::fputs(line.c_str(), file_);
    std::fputc('\n', file_);
  }
  Status close() {
    if (!file_) return Status::ok();
    const bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok || !closed) return Status::io_error("cannot write " + path_);
    return Status::ok();
  }
  void flush() {
    if (file_) std::fflush(file_);
  }

 private:
  std::string path_;
  FILE* file_ = nullptr;
};

// ---- live ----

std::string client_id() {
  char host[64] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string id = "edgesync-reconcile-";
  if (host[0] != '\0') id.append(host).push_back('-');
  return id + std::to_string(::getpid());
}

// Subscribes with a clean start and reads for the duration. Returns 0, or 2 with the reason on
// standard error (no report: a window with a hole in it would show seqs as missing that the
// hub has).
int listen(const ReconcileCliOptions& o, const std::string& prefix, Reconciler* r,
           CaptureWriter* save) {
  platform::MqttOptions mo;
  mo.uri = o.hub_uri;
  mo.client_id = client_id();
  mo.ca_file = o.ca_file;
  mo.cert_file = o.cert_file;
  mo.key_file = o.key_file;
  mo.username = o.username;
  mo.password = o.password;

  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;
  auto transport = platform::MqttTransport::create(mo, [&] {
    std::lock_guard<std::mutex> lock(mu);
    woken = true;
    cv.notify_one();
  });
  if (!transport) {
    std::cerr << "edgesync reconcile: " << transport.status().message() << "\n";
    return 2;
  }
  platform::MqttTransport& t = **transport;
  const std::vector<std::string> filters = {prefix + "/+/+/events/#", prefix + "/+/+/deadletter",
                                            prefix + "/+/+/health"};
  const uint64_t generation = t.connect();
  // The connect and the SUBACK get 30 s together; paho's own connect timeout (10 s) is inside.
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
  bool listening = false;
  std::string failure;
  std::vector<platform::MqttEvent> events;
  while (failure.empty() && !g_stop && Clock::now() < deadline) {
    {
      std::unique_lock<std::mutex> lock(mu);
      // Wakes at least every 200 ms to see a signal.
      cv.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(200)),
                    [&] { return woken; });
      woken = false;
    }
    t.take_events(&events);
    for (auto& e : events) {
      if (e.generation != generation) continue;
      using Kind = platform::MqttEvent::Kind;
      switch (e.kind) {
        case Kind::kConnected: {
          Status s = t.subscribe(filters);
          if (!s) failure = "cannot subscribe: " + s.message();
          break;
        }
        case Kind::kConnectFailed:
          failure = "cannot connect to " + o.hub_uri + ": " + e.detail;
          break;
        case Kind::kSubscribed:
          if (!listening) {
            listening = true;
            deadline = Clock::now() + std::chrono::seconds(o.duration_s);
          }
          break;
        case Kind::kSubscribeFailed:
          failure = e.detail + " (let this client read " + prefix +
                    "/+/+/events/#, deadletter and health)";
          break;
        case Kind::kConnectionLost:
          failure = e.detail + (listening ? ": the window has a hole, so no report" : "");
          break;
        case Kind::kMessage:
          r->add(e.topic, std::string_view(e.payload));
          if (save) save->write(e.topic, e.payload);
          break;
        case Kind::kPublishDone:
          break;
      }
    }
    if (save) save->flush();
  }
  t.disconnect(std::chrono::milliseconds(1000));
  if (failure.empty() && !listening) {
    failure = g_stop ? "interrupted before the subscription was in place"
                     : "no answer from " + o.hub_uri + " within 30 s";
  }
  if (!failure.empty()) {
    std::cerr << "edgesync reconcile: " << failure << "\n";
    return 2;
  }
  return 0;
}

// ---- output ----

std::string shown_ranges(const std::vector<SeqRange>& ranges) {
  if (ranges.size() <= kMaxRangesShown) return format_ranges(ranges);
  std::vector<SeqRange> head(ranges.begin(), ranges.begin() + kMaxRangesShown);
  return format_ranges(head) + " ... and " + std::to_string(ranges.size() - kMaxRangesShown) +
         " more ranges (--json lists all)";
}

std::string age_or_dash(const std::optional<double>& s) {
  if (!s) return "-";
  return human_age(std::max(0.0, *s));
}

std::string plural(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

void print_table(const ReconcileReport& report) {
  std::printf("%-28s %-8s  %-11s %9s %9s %10s %7s %6s %8s %5s  %-10s %s\n", "DEVICE", "INCARN.",
              "STATE", "ACCEPTED", "DELIVERED", "CONTIGUOUS", "LAG", "LOST", "PENDING", "DEAD",
              "HEALTH AGE", "NEWEST EVENT");
  for (const auto& d : report.devices) {
    const std::string device = d.store_id + "/" + d.device_id;
    for (const auto& i : d.incarnations) {
      const std::string accepted = i.has_health ? std::to_string(i.highest_accepted_seq) : "-";
      const std::string delivered = i.has_health ? std::to_string(i.highest_delivered_seq) : "-";
      std::printf("%-28s %-8s  %-11s %9s %9s %10lld %7lld %6lld %8lld %5zu  %-10s %s\n",
                  device.c_str(), i.incarnation.substr(0, 8).c_str(), reconcile_state_name(i.state),
                  accepted.c_str(), delivered.c_str(),
                  static_cast<long long>(i.highest_contiguous_seq), static_cast<long long>(i.lag),
                  static_cast<long long>(seq_count(i.lost)),
                  static_cast<long long>(seq_count(i.pending)), i.dead_letters.size(),
                  age_or_dash(i.health_age_s).c_str(), age_or_dash(i.newest_event_age_s).c_str());
    }
  }
}

void print_details(const DeviceReport& d, const IncarnationReport& i) {
  std::printf("\n%s/%s incarnation %s: %s\n", d.store_id.c_str(), d.device_id.c_str(),
              i.incarnation.c_str(), reconcile_state_name(i.state));
  print_field("  received", shown_ranges(i.received) + " (" +
                                plural(i.received_count, "seq", "seqs") + ", " +
                                plural(i.duplicates, "duplicate", "duplicates") + ")");
  if (i.dead_letters.empty()) {
    print_field("  dead letters", "none");
  } else {
    print_field("  dead letters", std::to_string(i.dead_letters.size()) + " announced");
    for (size_t k = 0; k < i.dead_letters.size() && k < kMaxDeadLettersShown; ++k) {
      const auto& n = i.dead_letters[k];
      std::printf("    seq %lld %s: %s\n", static_cast<long long>(n.seq), n.id.c_str(),
                  n.reason.c_str());
    }
    if (i.dead_letters.size() > kMaxDeadLettersShown) {
      std::printf("    ... and %zu more (--json lists all)\n",
                  i.dead_letters.size() - kMaxDeadLettersShown);
    }
  }
  if (i.has_health) {
    std::string h = "accepted through " + std::to_string(i.highest_accepted_seq) +
                    ", hub acknowledged through " + std::to_string(i.highest_delivered_seq);
    if (!i.health_at.empty()) {
      h += ", at " + i.health_at + " (" + age_or_dash(i.health_age_s) + " ago)";
    }
    if (!i.verdict_line.empty()) h += ": " + i.verdict_line;
    print_field("  health", h);
  } else {
    print_field("  health", "none for this incarnation: nothing can be proven lost");
  }
  print_field("  checked", "seqs " + std::to_string(i.checked_from) + " to " +
                               std::to_string(i.checked_to) + ", contiguous through " +
                               std::to_string(i.highest_contiguous_seq) + ", lag " +
                               std::to_string(i.lag));
  print_field("  lost", i.lost.empty() ? "none"
                                       : shown_ranges(i.lost) + " (" +
                                             plural(seq_count(i.lost), "seq", "seqs") +
                                             " the hub acknowledged to the box but is missing)");
  print_field("  pending", i.pending.empty()
                               ? "none"
                               : shown_ranges(i.pending) + " (" +
                                     plural(seq_count(i.pending), "seq", "seqs") +
                                     " not yet acknowledged: still in the box's outbox)");
  if (!i.newest_event_at.empty()) {
    print_field("  newest event",
                i.newest_event_at + " (" + age_or_dash(i.newest_event_age_s) + " ago)");
  }
  if (!i.superseded_by.empty()) {
    print_field("  superseded by",
                i.superseded_by +
                    ": the box started a new outbox; this one's pending seqs stay "
                    "in the file it moved aside");
  }
}

void print_human(const ReconcileReport& report, const std::string& source) {
  std::printf("%s: %s, %s, %s (%lld ignored, %lld unreadable)\n", source.c_str(),
              plural(report.events, "event", "events").c_str(),
              plural(report.dead_letters, "dead-letter notice", "dead-letter notices").c_str(),
              plural(report.health, "health message", "health messages").c_str(),
              static_cast<long long>(report.ignored), static_cast<long long>(report.unreadable));
  for (const auto& p : report.problems) std::printf("  unreadable: %s\n", p.c_str());
  if (report.devices.empty()) {
    std::printf(
        "no events, dead-letter notices or health messages: nothing to reconcile "
        "(is --topic-prefix right?)\n");
    return;
  }
  std::printf("checked from %s\n\n", report.from_first_seen
                                         ? "the first seq seen of each incarnation"
                                         : "seq 1 of each incarnation");
  print_table(report);
  for (const auto& d : report.devices) {
    for (const auto& i : d.incarnations) print_details(d, i);
  }
  const int64_t lost = report.lost_seqs();
  std::printf("\n");
  if (lost > 0) {
    std::printf("LOST: %s the boxes hold the hub's acknowledgement for, missing here\n",
                plural(lost, "seq", "seqs").c_str());
  } else {
    std::printf(
        "nothing lost: every seq the boxes say the hub acknowledged was received or "
        "announced\n");
  }
}

}  // namespace

int cli_reconcile(const ReconcileCliOptions& o) {
  if (o.capture.empty() == o.hub_uri.empty()) {
    std::cerr << "edgesync reconcile: give --capture FILE or --hub URI (one of them)\n";
    return 2;
  }
  if (!o.hub_uri.empty() && o.ca_file.empty()) {
    std::cerr << "edgesync reconcile: --hub needs --ca (the CA that signed the hub's "
                 "certificate)\n";
    return 2;
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    std::cerr << "edgesync reconcile: --cert and --key go together\n";
    return 2;
  }
  std::string prefix = o.topic_prefix;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (prefix.empty() || prefix.find_first_of("+#") != std::string::npos) {
    std::cerr << "edgesync reconcile: --topic-prefix must be a topic without wildcards, like "
                 "edgesync/v1\n";
    return 2;
  }
  ReconcileOptions ro;
  // A live run with a clean start sees only what arrives while it listens.
  ro.from_first_seen = o.from_first_seen || !o.hub_uri.empty();
  Reconciler reconciler(prefix, ro);

  json source;
  std::string source_line;
  if (!o.capture.empty()) {
    Status s = read_capture(o.capture, &reconciler);
    if (!s) {
      std::cerr << "edgesync reconcile: " << s.message() << "\n";
      return 2;
    }
    source = {{"kind", "capture"}, {"name", o.capture}, {"duration_s", nullptr}};
    source_line = "capture " + (o.capture == "-" ? std::string("(standard input)") : o.capture);
  } else {
    CaptureWriter save;
    if (!o.save.empty()) {
      Status s = save.open(o.save);
      if (!s) {
        std::cerr << "edgesync reconcile: --save: " << s.message() << "\n";
        return 2;
      }
    }
    catch_stop_signals();
    const auto started = Clock::now();
    const int rc = listen(o, prefix, &reconciler, o.save.empty() ? nullptr : &save);
    Status saved = save.close();
    if (!saved) std::cerr << "edgesync reconcile: --save: " << saved.message() << "\n";
    if (rc != 0) return rc;
    const double listened = std::chrono::duration<double>(Clock::now() - started).count();
    source = {{"kind", "hub"}, {"name", o.hub_uri}, {"duration_s", o.duration_s}};
    source_line = "hub " + o.hub_uri + ", listened " + human_age(listened);
  }

  const int64_t now_ms = platform::unix_ms();
  const ReconcileReport report = reconciler.report(now_ms);
  if (o.json) {
    json j = reconcile_json(report);
    j["source"] = source;
    j["generated_at"] = platform::format_rfc3339_ms(now_ms);
    std::cout << events::json_text(j, 2) << "\n";
  } else {
    print_human(report, source_line);
  }
  return report.lost_seqs() > 0 ? 1 : 0;
}

}  // namespace edgesync::agent
