#include "hub/hub_queries.h"

#include <algorithm>
#include <pqxx/pqxx>
#include <tuple>

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

Result<json> query_gaps(const std::string& conninfo) {
  return read(conninfo, [&](pqxx::read_transaction& t) {
    // Each seq's predecessor among those known (events and dead letters); a jump of more than
    // one is a gap. Seqs start at 1 in every incarnation.
    pqxx::result r = t.exec(R"SQL(
      SELECT k.store_id, k.device_id, k.incarnation, k.prev + 1, k.seq - 1
      FROM (
        SELECT store_id, device_id, incarnation, seq,
               lag(seq, 1, 0::bigint) OVER (PARTITION BY device_id, incarnation ORDER BY seq) AS prev
        FROM (SELECT store_id, device_id, incarnation, seq FROM hub_events
              UNION ALL
              SELECT store_id, device_id, incarnation, seq FROM hub_dead_letters) known
      ) k
      WHERE k.seq > k.prev + 1
      ORDER BY k.store_id, k.device_id, k.incarnation, k.seq)SQL");
    json out = json::array();
    for (const auto& row : r) {
      out.push_back({{"store_id", row[0].c_str()},
                     {"device_id", row[1].c_str()},
                     {"incarnation", row[2].c_str()},
                     {"from", row[3].as<long long>()},
                     {"to", row[4].as<long long>()}});
    }
    return out;
  });
}

}  // namespace edgesync::hub
