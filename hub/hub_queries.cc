#include "hub/hub_queries.h"

#include <algorithm>
#include <pqxx/pqxx>
#include <map>
#include <tuple>
#include <vector>

#include "events/seq_ranges.h"

namespace edgesync::hub {

namespace {

using nlohmann::json;

json text_or_null(const pqxx::field& f) { return f.is_null() ? json() : json(f.c_str()); }
json int_or_null(const pqxx::field& f) { return f.is_null() ? json() : json(f.as<long long>()); }
json real_or_null(const pqxx::field& f) { return f.is_null() ? json() : json(f.as<double>()); }

// Runs `body` in a read-only transaction on a fresh connection. A database the hub has not
// run on yet has no tables: that is an empty answer, not an error (and a read never creates
// them: the page asks every 2 s).
template <typename Body>
Result<json> read(const std::string& conninfo, Body body) {
  try {
    pqxx::connection db(conninfo);
    pqxx::read_transaction t(db);
    return body(t);
  } catch (const pqxx::undefined_table&) {
    return json::array();
  } catch (const std::exception& e) {
    return Status::unavailable(std::string("PostgreSQL: ") + e.what());
  }
}

}  // namespace

std::string with_connect_timeout(std::string conninfo) {
  if (conninfo.find("connect_timeout") != std::string::npos) return conninfo;
  if (conninfo.rfind("postgres", 0) == 0) {  // a URI: a query parameter
    return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=5";
  }
  return conninfo + (conninfo.empty() ? "" : " ") + "connect_timeout=5";
}

Result<json> query_stock(const std::string& conninfo, const std::string& store,
                         const std::string& sku) {
  return read(conninfo, [&](pqxx::read_transaction& t) {
    pqxx::result r = t.exec_params(
        "SELECT store_id, sku, on_hand, to_char(changed_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), to_char(counted_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), counted_level FROM hub_stock "
        "WHERE store_id = $1 AND ($2 = '' OR sku = $2) ORDER BY sku",
        store, sku);
    json out = json::array();
    for (const auto& row : r) {
      out.push_back({{"store_id", row[0].c_str()},
                     {"sku", row[1].c_str()},
                     {"on_hand", row[2].as<long long>()},
                     {"changed_at", row[3].c_str()},
                     {"counted_at", text_or_null(row[4])},
                     {"counted_level", int_or_null(row[5])}});
    }
    return out;
  });
}

json lag_rows(pqxx::transaction_base& t) {
  pqxx::result r = t.exec(R"SQL(
    SELECT DISTINCT ON (s.store_id, s.device_id)
      s.store_id, s.device_id, s.incarnation, s.last_seq, s.events, s.dead_letters,
      extract(epoch FROM clock_timestamp() - s.newest_received_at),
      extract(epoch FROM clock_timestamp() - s.last_committed_at),
      d.online, extract(epoch FROM clock_timestamp() - d.status_at),
      (d.health -> 'outbox' ->> 'pending')::bigint
    FROM hub_streams s LEFT JOIN hub_devices d USING (store_id, device_id)
    ORDER BY s.store_id, s.device_id, s.last_committed_at DESC)SQL");
  json out = json::array();
  for (const auto& row : r) {
    out.push_back({{"store_id", row[0].c_str()},
                   {"device_id", row[1].c_str()},
                   {"incarnation", row[2].c_str()},
                   {"last_seq", row[3].as<long long>()},
                   {"events", row[4].as<long long>()},
                   {"dead_letters", row[5].as<long long>()},
                   {"newest_event_age_s", real_or_null(row[6])},
                   {"last_commit_age_s", real_or_null(row[7])},
                   {"online", row[8].is_null() ? json() : json(row[8].as<bool>())},
                   {"status_age_s", real_or_null(row[9])},
                   {"pending", int_or_null(row[10])}});
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return std::tie(a["store_id"].get_ref<const std::string&>(),
                    a["device_id"].get_ref<const std::string&>()) <
           std::tie(b["store_id"].get_ref<const std::string&>(),
                    b["device_id"].get_ref<const std::string&>());
  });
  return out;
}

Result<json> query_lag(const std::string& conninfo) {
  return read(conninfo, [](pqxx::read_transaction& t) { return lag_rows(t); });
}

namespace {

struct Stream {
  std::string store_id;
  std::string device_id;
  std::string incarnation;
  bool operator<(const Stream& o) const {
    return std::tie(store_id, device_id, incarnation) <
           std::tie(o.store_id, o.device_id, o.incarnation);
  }
};
struct Gap {
  events::SeqRange range;
  const char* where;  // "hole": below the hub's highest seq; "tail": above it
};
struct Loss {
  events::SeqRange range;
  std::string reason;
};

// The reason the box gave for the loss that holds `seq`.
const std::string& reason_for(const std::vector<Loss>& losses, int64_t seq) {
  static const std::string kNone = "the box no longer has them";
  for (const Loss& l : losses) {
    if (seq >= l.range.first && seq <= l.range.last) return l.reason;
  }
  return kNone;
}

}  // namespace

json gap_rows(pqxx::transaction_base& t) {
  std::map<Stream, std::vector<Gap>> gaps;
  // Holes: each seq's predecessor among those known (events and dead letters); a jump of more
  // than one is a gap. Seqs start at 1 in every incarnation. Only streams whose counts do not
  // add up to their highest seq can have one: the rest are not read (a look every
  // resend.interval_s stays cheap however long the history).
  pqxx::result holes = t.exec(R"SQL(
    WITH open AS (
      SELECT device_id, incarnation FROM hub_streams WHERE events + dead_letters <> last_seq)
    SELECT k.store_id, k.device_id, k.incarnation, k.prev + 1, k.seq - 1
    FROM (
      SELECT store_id, device_id, incarnation, seq,
             lag(seq, 1, 0::bigint) OVER (PARTITION BY device_id, incarnation ORDER BY seq) AS prev
      FROM (SELECT e.store_id, e.device_id, e.incarnation, e.seq
            FROM hub_events e JOIN open o USING (device_id, incarnation)
            UNION ALL
            SELECT d.store_id, d.device_id, d.incarnation, d.seq
            FROM hub_dead_letters d JOIN open o USING (device_id, incarnation)) known
    ) k
    WHERE k.seq > k.prev + 1)SQL");
  for (const auto& row : holes) {
    gaps[{row[0].c_str(), row[1].c_str(), row[2].c_str()}].push_back(
        {{row[3].as<int64_t>(), row[4].as<int64_t>()}, "hole"});
  }
  // Tails: a box's last health message says the broker acknowledged every seq up to
  // highest_delivered_seq of its current incarnation; what the hub lacks above its own highest
  // seq of it was lost after the broker took it (or is still on its way to the hub).
  pqxx::result tails = t.exec(R"SQL(
    SELECT d.store_id, d.device_id, h.inc, coalesce(s.last_seq, 0) + 1, h.delivered
    FROM hub_devices d
    CROSS JOIN LATERAL (
      SELECT d.health -> 'outbox' ->> 'incarnation' AS inc,
             CASE WHEN jsonb_typeof(d.health -> 'outbox' -> 'highest_delivered_seq') = 'number'
                  THEN (d.health -> 'outbox' ->> 'highest_delivered_seq')::bigint END AS delivered
    ) h
    LEFT JOIN hub_streams s ON s.device_id = d.device_id AND s.incarnation = h.inc
    WHERE h.inc IS NOT NULL AND h.delivered > coalesce(s.last_seq, 0))SQL");
  for (const auto& row : tails) {
    gaps[{row[0].c_str(), row[1].c_str(), row[2].c_str()}].push_back(
        {{row[3].as<int64_t>(), row[4].as<int64_t>()}, "tail"});
  }
  std::map<Stream, std::vector<Loss>> losses;
  pqxx::result lost = t.exec(
      "SELECT store_id, device_id, incarnation, first_seq, last_seq, reason FROM hub_losses");
  for (const auto& row : lost) {
    losses[{row[0].c_str(), row[1].c_str(), row[2].c_str()}].push_back(
        {{row[3].as<int64_t>(), row[4].as<int64_t>()}, row[5].c_str()});
  }

  json out = json::array();
  for (auto& [key, list] : gaps) {
    const Stream& stream = key;  // a lambda may not capture a structured binding (clang 14)
    std::sort(list.begin(), list.end(),
              [](const Gap& a, const Gap& b) { return a.range.first < b.range.first; });
    events::SeqRanges gone;
    const std::vector<Loss>& known = losses[stream];
    for (const Loss& l : known) gone.insert_range(l.range.first, l.range.last);
    auto emit = [&](const events::SeqRange& r, const char* where, const std::string* reason) {
      out.push_back({{"store_id", stream.store_id},
                     {"device_id", stream.device_id},
                     {"incarnation", stream.incarnation},
                     {"from", r.first},
                     {"to", r.last},
                     {"where", where},
                     {"state", reason ? "gone" : "missing"},
                     {"reason", reason ? json(*reason) : json()}});
    };
    for (const Gap& g : list) {
      // The parts of the gap the box said it no longer has are gone; the rest is missing.
      int64_t cur = g.range.first;
      for (const events::SeqRange& m : gone.missing(g.range.first, g.range.last)) {
        if (m.first > cur) emit({cur, m.first - 1}, g.where, &reason_for(known, cur));
        emit(m, g.where, nullptr);
        cur = m.last + 1;
      }
      if (cur <= g.range.last) emit({cur, g.range.last}, g.where, &reason_for(known, cur));
    }
  }
  return out;
}

Result<json> query_gaps(const std::string& conninfo) {
  return read(conninfo, [](pqxx::read_transaction& t) { return gap_rows(t); });
}

}  // namespace edgesync::hub
