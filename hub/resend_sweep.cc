#include "hub/resend_sweep.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>
#include <pqxx/pqxx>

#include "hub/hub_queries.h"
#include "platform/clock.h"
#include "platform/log.h"

namespace edgesync::hub {

namespace {

using nlohmann::json;

// The parts of `r` that are in `set`.
std::vector<events::SeqRange> overlap(const events::SeqRanges& set, const events::SeqRange& r) {
  std::vector<events::SeqRange> out;
  int64_t cur = r.first;
  for (const events::SeqRange& hole : set.missing(r.first, r.last)) {
    if (hole.first > cur) out.push_back({cur, hole.first - 1});
    cur = hole.last + 1;
  }
  if (cur <= r.last) out.push_back({cur, r.last});
  return out;
}

}  // namespace

std::vector<PlannedResend> ResendPlanner::look(const json& gaps) {
  std::map<Stream, Seen> now;
  for (const json& row : gaps) {
    if (row.value("state", "") != "missing") continue;
    Seen& seen = now[{row["store_id"].get<std::string>(), row["device_id"].get<std::string>(),
                      row["incarnation"].get<std::string>()}];
    const int64_t from = row["from"].get<int64_t>();
    seen.missing.insert_range(from, row["to"].get<int64_t>());
    // A tail split by gone pieces starts at its first piece.
    if (row.value("where", "") == "tail" && (seen.tail_from == 0 || from < seen.tail_from)) {
      seen.tail_from = from;
    }
  }
  // What is no longer missing needs no count of asks.
  for (auto it = asked_.begin(); it != asked_.end();) {
    it = now.count(it->first) ? std::next(it) : asked_.erase(it);
  }
  std::vector<PlannedResend> out;
  for (const auto& [stream, seen] : now) {
    auto before = previous_.find(stream);
    if (before == previous_.end()) continue;  // first seen missing now: wait one look
    // A tail whose start moved: the hub's highest seq grew since, the stream is catching up.
    const bool tail_settled = seen.tail_from != 0 && seen.tail_from == before->second.tail_from;
    auto& asked = asked_[stream];
    PlannedResend p{stream.store_id, stream.device_id, {}, {}};
    p.request.incarnation = stream.incarnation;
    int64_t budget = max_seqs_;
    for (const events::SeqRange& r : seen.missing.ranges()) {
      for (events::SeqRange part : overlap(before->second.missing, r)) {
        if (seen.tail_from != 0 && !tail_settled) {
          if (part.first >= seen.tail_from) continue;
          part.last = std::min(part.last, seen.tail_from - 1);
        }
        for (events::SeqRange q : asked[kMaxAsks - 1].missing(part.first, part.last)) {
          if (budget <= 0 || p.request.ranges.size() >= events::kMaxResendRanges) break;
          q.last = std::min(q.last, q.first + budget - 1);
          budget -= q.size();
          p.request.ranges.push_back(q);
        }
      }
    }
    if (p.request.ranges.empty()) continue;
    // Count the asks: from the highest count down, so one ask adds one.
    for (const events::SeqRange& q : p.request.ranges) {
      for (int i = kMaxAsks - 1; i > 0; --i) {
        for (const events::SeqRange& o : overlap(asked[i - 1], q)) {
          asked[i].insert_range(o.first, o.last);
          if (i == kMaxAsks - 1) p.last_ask.push_back(o);
        }
      }
      asked[0].insert_range(q.first, q.last);
    }
    out.push_back(std::move(p));
  }
  previous_ = std::move(now);
  return out;
}

struct ResendSweeper::Connection {
  explicit Connection(const std::string& conninfo) : db(conninfo) {}
  pqxx::connection db;
};

ResendSweeper::ResendSweeper(const HubConfig& config, Publish publish,
                             std::function<bool()> connected)
    : config_(config),
      publish_(std::move(publish)),
      connected_(std::move(connected)),
      planner_(config.resend.max_seqs) {}

ResendSweeper::~ResendSweeper() { stop(); }

void ResendSweeper::start() {
  if (config_.resend.interval_s <= 0 || thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void ResendSweeper::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ResendSweeper::run() {
  const auto interval = std::chrono::seconds(config_.resend.interval_s);
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, interval, [this] { return stop_; })) return;
    }
    if (!sweep_once()) {
      db_.reset();
      planner_.forget();
    }
  }
}

bool ResendSweeper::sweep_once() {
  if (!connected_()) {
    // Requests could not go out: let an instance that can send them hold the lock.
    db_.reset();
    planner_.forget();
    return true;
  }
  json gaps;
  std::set<std::pair<std::string, std::string>> online;
  try {
    if (!db_) {
      db_ = std::make_unique<Connection>(with_connect_timeout(config_.database));
      pqxx::nontransaction n(db_->db);
      // A look that hangs must not hold the hub's stop for long.
      n.exec("SET statement_timeout = '20s'");
      // Held by this session until it ends: one instance asks, the others stand by.
      if (!n.exec1("SELECT pg_try_advisory_lock(hashtext('edgesync-hub resend'))")[0].as<bool>()) {
        db_.reset();
        planner_.forget();
        return true;
      }
    }
    pqxx::read_transaction t(db_->db);
    gaps = gap_rows(t);
    for (const auto& row : t.exec("SELECT store_id, device_id FROM hub_devices WHERE online")) {
      online.emplace(row[0].c_str(), row[1].c_str());
    }
  } catch (const pqxx::undefined_table&) {
    return true;  // no events yet
  } catch (const std::exception& e) {
    platform::log(platform::LogLevel::kWarning, "resend_sweep_failed",
                  std::string("looking for gaps to ask boxes about: ") + e.what());
    return false;
  }
  // Boxes that can hear a request (a box's session is clean: one sent while it is offline is
  // lost), of this instance's stores.
  const auto& stores = config_.subscription.stores;
  json asked_for = json::array();
  for (json& row : gaps) {
    const std::string store = row["store_id"].get<std::string>();
    if (!stores.empty() && std::find(stores.begin(), stores.end(), store) == stores.end()) continue;
    if (!online.count({store, row["device_id"].get<std::string>()})) continue;
    asked_for.push_back(std::move(row));
  }
  for (PlannedResend& p : planner_.look(asked_for)) {
    p.request.request_id = config_.broker.client_id + "-" + std::to_string(platform::unix_ms()) +
                           "-" + std::to_string(++requests_);
    const std::string topic =
        events::resend_request_topic(config_.topic_prefix, p.store_id, p.device_id);
    const bool sent = publish_(topic, events::build_resend_request(p.request));
    platform::log(sent ? platform::LogLevel::kNotice : platform::LogLevel::kWarning,
                  "resend_request",
                  std::string(sent ? "asked " : "could not ask (not connected) ") + p.store_id +
                      "/" + p.device_id + " for seqs " +
                      events::format_ranges(p.request.ranges) + " of incarnation " +
                      p.request.incarnation + " again (request " + p.request.request_id + ")");
    if (!p.last_ask.empty()) {
      platform::log(platform::LogLevel::kWarning, "resend_given_up",
                    p.store_id + "/" + p.device_id + ": seqs " +
                        events::format_ranges(p.last_ask) + " asked for " +
                        std::to_string(ResendPlanner::kMaxAsks) +
                        " times; not asked for again until the hub restarts (see the hub's "
                        "rejected messages and the box's log)");
    }
  }
  return true;
}

}  // namespace edgesync::hub
