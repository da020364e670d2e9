// `edgesync outbox` (the filtered listing), `outbox show` and `outbox tail`: the outbox as a
// technician looks into it. Read-only (storage/outbox_query.h): they work while the agent runs
// and when it is stopped, and never hold up its writer.
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/cli.h"
#include "agent/cli_format.h"
#include "agent/config_tools.h"
#include "agent/remote_config.h"
#include "agent/remote_config_state.h"
#include "events/json_text.h"
#include "platform/clock.h"
#include "storage/outbox_query.h"

namespace edgesync::agent {
namespace {

using nlohmann::json;
using storage::EventLookup;

json text_or_null(const std::string& text) { return text.empty() ? json(nullptr) : json(text); }

// What the agent runs with: pushed layers may change storage.keep_delivered. An unreadable
// state of pushed configuration reads as none (the figure is only for the explanation).
int64_t keep_delivered_in_effect(const Config& local) {
  auto state = read_remote_config_state(remote_config_state_path(local));
  return state ? effective_config(local, *state).storage.keep_delivered
               : local.storage.keep_delivered;
}

// ---- the listing ----

// "pos.*" -> prefix "pos."; "sale.completed" -> exact. Any other '*' is refused: types do not
// contain one, and a pattern language beyond the one trailing wildcard would need explaining.
bool parse_type_filter(const std::string& text, storage::EventFilter* f, std::string* error) {
  const bool prefix = text.size() >= 2 && text.compare(text.size() - 2, 2, ".*") == 0;
  const std::string stem = prefix ? text.substr(0, text.size() - 1) : text;
  if (stem.find('*') != std::string::npos) {
    *error = "--type: '" + text + "': an exact type, or a prefix ending in .* (pos.*)";
    return false;
  }
  f->type = stem;
  f->type_is_prefix = prefix;
  return true;
}

std::string state_of(const storage::StoredEvent& e, int64_t delivered_seq) {
  if (!e.dead_reason.empty()) return "dead_letter";
  return e.seq <= delivered_seq ? "delivered" : "pending";
}

// ---- show ----

std::string state_name(EventLookup::State s) {
  switch (s) {
    case EventLookup::State::kPending:
      return "pending";
    case EventLookup::State::kDelivered:
      return "delivered";
    case EventLookup::State::kDeadLettered:
      return "dead_letter";
    case EventLookup::State::kNotFound:
      return "not_found";
  }
  return "not_found";
}

std::string absence_name(EventLookup::Absence a) {
  switch (a) {
    case EventLookup::Absence::kNotYet:
      return "never_stored";
    case EventLookup::Absence::kPruned:
      return "pruned";
    case EventLookup::Absence::kRemoved:
      return "removed";
    case EventLookup::Absence::kUnknownId:
      return "unknown_id";
  }
  return "unknown_id";
}

std::string oldest_kept(const storage::OutboxPosition& p) {
  return p.oldest_stored_seq > 0 ? "the oldest kept is seq " + std::to_string(p.oldest_stored_seq)
                                 : "no event is kept now";
}

// Why nothing was found, for people.
std::string absence_text(const EventLookup& r, const std::string& what, int64_t keep) {
  const auto& p = r.position;
  const std::string history = "the delivered history keeps the newest " + std::to_string(keep) +
                              " delivered events (storage.keep_delivered)";
  switch (r.absence) {
    case EventLookup::Absence::kNotYet:
      return what + " not found: never stored (" +
             (p.next_seq > 1 ? "the newest event is seq " + std::to_string(p.next_seq - 1)
                             : std::string("the outbox has no events yet")) +
             ")";
    case EventLookup::Absence::kPruned:
      return what + " not found: delivered and pruned; " + history + ", and " + oldest_kept(p);
    case EventLookup::Absence::kRemoved:
      return what +
             " not found: no longer stored. A dead letter put back with edgesync dead-letters "
             "retry leaves its old seq empty: look the event up by its id";
    case EventLookup::Absence::kUnknownId:
      if (p.next_seq == 1 || p.oldest_stored_seq == 1) {
        // Nothing was ever pruned from the front: it cannot have been stored and pruned.
        return what + " not found: never stored by this outbox (incarnation " + p.incarnation +
               "; none of its events has been pruned yet)";
      }
      return what + " not found: never stored by this outbox (incarnation " + p.incarnation +
             "), or delivered and pruned since; " + history + ", and " + oldest_kept(p);
  }
  return what + " not found";
}

std::string state_text(const EventLookup& r, int64_t now) {
  const auto& p = r.position;
  switch (r.state) {
    case EventLookup::State::kPending: {
      std::string s = "pending: " + std::to_string(r.ahead) +
                      (r.ahead == 1 ? " event" : " events") + " ahead of it (last delivered seq " +
                      std::to_string(p.delivered_seq) + ")";
      if (p.held_since_ms > 0) {
        s += "; delivery HELD since " + platform::format_rfc3339_ms(p.held_since_ms) +
             " (edgesync outbox release)";
      }
      return s;
    }
    case EventLookup::State::kDelivered:
      return "delivered (last delivered seq " + std::to_string(p.delivered_seq) + ")";
    case EventLookup::State::kDeadLettered:
      if (r.event.seq < 0) {  // never an event of the stream: nothing to announce
        return "refused on arrival " + platform::format_rfc3339_ms(r.failed_ms) + " (" +
               human_age((now - r.failed_ms) / 1000.0) + " ago): " + r.reason;
      }
      return "dead-lettered " + platform::format_rfc3339_ms(r.failed_ms) + " (" +
             human_age((now - r.failed_ms) / 1000.0) + " ago): " + r.reason +
             (r.announced ? "; the hub has its notice"
                          : "; its notice is not yet announced to the hub");
    case EventLookup::State::kNotFound:
      break;
  }
  return "not found";
}

// ---- tail ----

volatile sig_atomic_t g_stop = 0;
void request_stop(int) { g_stop = 1; }

// SIGINT and SIGTERM end the tail at its next wake-up; no SA_RESTART, so the sleep ends at once.
void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = request_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void sleep_unless_stopped(int ms) {
  struct timespec ts {
    0, ms * 1000000L
  };
  while (!g_stop && nanosleep(&ts, &ts) != 0) {
  }
}

// One line, flushed at once: the reader may be a pipe or a file (a tail into a log).
void emit(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

class TailPrinter {
 public:
  TailPrinter(std::string path, bool as_json) : path_(std::move(path)), json_(as_json) {}

  void print(const storage::OutboxTail::Poll& poll) {
    using Kind = storage::OutboxTail::Poll::Kind;
    if (poll.kind != Kind::kError) last_error_.clear();
    switch (poll.kind) {
      case Kind::kMissing:
        if (!missing_) {
          say("waiting", {{"path", path_}},
              "waiting for the outbox at " + path_ +
                  (ever_opened_ ? ": it is gone (moved aside?)"
                                : ": not there yet (has the agent started?)"));
        }
        missing_ = true;
        return;
      case Kind::kError:
        if (poll.error.message() != last_error_) {
          last_error_ = poll.error.message();
          say("error", {{"message", last_error_}},
              "cannot read the outbox: " + poll.error.to_string() + " (trying again)");
        }
        return;
      case Kind::kOpened:
        say("following",
            {{"path", path_},
             {"incarnation", poll.incarnation},
             {"delivered_seq", poll.delivered_through.value_or(0)}},
            "following " + path_ + ", incarnation " + poll.incarnation +
                ", delivered through seq " + std::to_string(poll.delivered_through.value_or(0)) +
                " (Ctrl-C ends)");
        break;
      case Kind::kNewIncarnation:
        say("new_incarnation",
            {{"path", path_},
             {"incarnation", poll.incarnation},
             {"delivered_seq", poll.delivered_through.value_or(0)}},
            "the outbox at " + path_ + " was replaced: new incarnation " + poll.incarnation +
                " (the old file was moved aside: edgesync status); following it from its start");
        break;
      case Kind::kFollowing:
        break;
    }
    missing_ = false;
    ever_opened_ = true;
    for (const auto& e : poll.accepted) {
      char line[512];
      std::snprintf(line, sizeof line, "accepted    seq %-10lld %-24s %-26s %s",
                    static_cast<long long>(e.seq),
                    platform::format_rfc3339_ms(e.received_ms).c_str(), e.type.c_str(),
                    e.id.c_str());
      say("accepted",
          {{"seq", e.seq},
           {"id", e.id},
           {"type", e.type},
           {"received_at", platform::format_rfc3339_ms(e.received_ms)}},
          line);
    }
    for (const auto& d : poll.dead_letters) {
      say("dead_letter",
          {{"seq", d.event.seq},
           {"id", d.event.id},
           {"type", d.event.type},
           {"reason", d.reason},
           {"failed_at", platform::format_rfc3339_ms(d.failed_ms)}},
          "dead letter seq " + std::to_string(d.event.seq) + " " + d.event.type + " " + d.event.id +
              ": " + d.reason);
    }
    // At open the watermark is in the "following" line; after that, one line per poll that
    // moved it.
    if (poll.kind == Kind::kFollowing && poll.delivered_through) {
      say("delivered", {{"through_seq", *poll.delivered_through}},
          "delivered through seq " + std::to_string(*poll.delivered_through));
    }
  }

 private:
  void say(const char* event, json fields, const std::string& text) {
    if (json_) {
      json j = {{"event", event}};
      j.update(fields);
      emit(events::json_text(j));
    } else {
      emit(text);
    }
  }

  std::string path_;
  bool json_;
  bool missing_ = false;
  bool ever_opened_ = false;
  std::string last_error_;
};

}  // namespace

int cli_outbox_list(const Config& config, bool all, size_t limit, bool as_json) {
  OutboxListOptions o;
  o.all = all;
  o.limit = limit;
  return cli_outbox_list(config, o, as_json);
}

int cli_outbox_list(const Config& config, const OutboxListOptions& options, bool as_json) {
  const char* me = "edgesync outbox: ";
  storage::EventFilter filter;
  filter.pending_only = !options.all;
  filter.limit = options.limit;
  std::string error;
  if (!options.type.empty() && !parse_type_filter(options.type, &filter, &error)) {
    std::cerr << me << error << "\n";
    return 2;
  }
  if (!options.since.empty()) {
    auto d = parse_duration_ms(options.since);
    if (!d) {
      std::cerr << me << "--since: " << d.status().message() << "\n";
      return 2;
    }
    filter.received_since_ms = platform::unix_ms() - *d;
  }
  std::vector<storage::StoredEvent> events;
  storage::OutboxPosition pos;
  Status s = storage::list_events(config.storage.path, filter, &events, &pos);
  if (!s) {
    std::cerr << me << s.to_string() << "\n";
    return 1;
  }
  if (as_json) {
    json arr = json::array();
    for (const auto& e : events) {
      arr.push_back({{"seq", e.seq},
                     {"id", e.id},
                     {"type", e.type},
                     {"occurred_at", text_or_null(e.occurred_at)},
                     {"received_at", platform::format_rfc3339_ms(e.received_ms)},
                     {"trace_id", text_or_null(e.trace_id)},
                     {"delivered", e.seq <= pos.delivered_seq},
                     {"state", state_of(e, pos.delivered_seq)},
                     {"data", data_json(e.data)}});
    }
    std::cout << events::json_text(arr, 2) << "\n";
    return 0;
  }
  std::printf("%-10s %-11s %-24s %-26s %s\n", "SEQ", "STATE", "RECEIVED", "TYPE", "ID");
  for (const auto& e : events) {
    std::printf("%-10lld %-11s %-24s %-26s %s\n", static_cast<long long>(e.seq),
                state_of(e, pos.delivered_seq).c_str(),
                platform::format_rfc3339_ms(e.received_ms).c_str(), e.type.c_str(), e.id.c_str());
  }
  std::string filters;
  if (!options.type.empty()) filters += " of type " + options.type;
  if (filter.received_since_ms) {
    filters += " received since " + platform::format_rfc3339_ms(*filter.received_since_ms);
  }
  const int64_t pending = pos.next_seq - 1 - pos.delivered_seq;
  std::printf("(%zu shown%s; %lld pending, last delivered seq %lld)\n", events.size(),
              filters.c_str(), static_cast<long long>(pending),
              static_cast<long long>(pos.delivered_seq));
  return 0;
}

int cli_outbox_show(const Config& config, const std::string& what, bool as_json) {
  const char* me = "edgesync outbox show: ";
  if (what.empty()) {
    std::cerr << me << "give a seq (digits only) or an event id\n";
    return 2;
  }
  int64_t seq = 0;
  std::string id;
  const bool digits =
      std::all_of(what.begin(), what.end(), [](unsigned char c) { return std::isdigit(c); });
  if (digits) {
    if (what.size() > 18) {
      std::cerr << me << what << ": no seq is that large\n";
      return 2;
    }
    seq = std::stoll(what);
  } else {
    id = what;
  }
  auto r = storage::find_event(config.storage.path, seq, id);
  if (!r) {
    std::cerr << me << r.status().to_string() << "\n";
    return 1;
  }
  const auto& p = r->position;
  const int64_t now = platform::unix_ms();
  const std::string subject = digits ? "seq " + what : "id " + what;

  if (r->state == EventLookup::State::kNotFound) {
    const int64_t keep = keep_delivered_in_effect(config);
    const std::string text = absence_text(*r, subject, keep);
    if (as_json) {
      json j = {{"found", false},
                {"reason", absence_name(r->absence)},
                {"message", text},
                {"delivered_seq", p.delivered_seq},
                {"next_seq", p.next_seq},
                {"oldest_stored_seq",
                 p.oldest_stored_seq > 0 ? json(p.oldest_stored_seq) : json(nullptr)},
                {"keep_delivered", keep},
                {"incarnation", p.incarnation}};
      if (digits) {
        j["seq"] = seq;
      } else {
        j["id"] = id;
      }
      std::cout << events::json_text(j, 2) << "\n";
    } else {
      std::cout << text << "\n";
    }
    return 1;
  }

  const auto& e = r->event;
  if (as_json) {
    json j = {{"found", true},
              {"seq", e.seq},
              {"id", e.id},
              {"type", e.type},
              {"occurred_at", text_or_null(e.occurred_at)},
              {"received_at", platform::format_rfc3339_ms(e.received_ms)},
              {"trace_id", text_or_null(e.trace_id)},
              {"state", state_name(r->state)},
              {"data", data_json(e.data)},
              {"delivered_seq", p.delivered_seq},
              {"next_seq", p.next_seq},
              {"incarnation", p.incarnation}};
    if (r->state == EventLookup::State::kPending) {
      j["pending_ahead"] = r->ahead;
      j["delivery_held_since"] =
          p.held_since_ms > 0 ? json(platform::format_rfc3339_ms(p.held_since_ms)) : json(nullptr);
    }
    if (r->state == EventLookup::State::kDeadLettered) {
      j["dead_letter"] = {{"reason", r->reason},
                          {"failed_at", platform::format_rfc3339_ms(r->failed_ms)},
                          {"announced", r->announced},
                          {"refused_on_arrival", e.seq < 0}};
    }
    std::cout << events::json_text(j, 2) << "\n";
    return 0;
  }
  print_field("seq", std::to_string(e.seq));
  print_field("id", e.id);
  print_field("type", e.type);
  print_field("occurred at",
              e.occurred_at.empty() ? "- (not given by the producer)" : e.occurred_at);
  print_field("received at", platform::format_rfc3339_ms(e.received_ms) + " (" +
                                 human_age((now - e.received_ms) / 1000.0) + " ago)");
  if (!e.trace_id.empty()) print_field("trace id", e.trace_id);
  print_field("state", state_text(*r, now));
  print_field("incarnation", p.incarnation);
  std::cout << "data\n" << events::json_text(data_json(e.data), 2) << "\n";
  return 0;
}

int cli_outbox_tail(const Config& config, bool as_json) {
  catch_stop_signals();
  // Ten of the newest first, as tail(1) does: what was going on just before.
  storage::OutboxTail tail(config.storage.path, 10);
  TailPrinter printer(config.storage.path, as_json);
  // 200 ms: a person sees events as they happen, and a poll (a stat and one indexed query) is
  // far below a millisecond of the box's time.
  constexpr int kPollMs = 200;
  while (!g_stop) {
    printer.print(tail.poll());
    sleep_unless_stopped(kPollMs);
  }
  return 0;
}

}  // namespace edgesync::agent
