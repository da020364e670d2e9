#include "hub/hub_store.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <thread>

#include "events/json_nesting.h"
#include "events/resend.h"
#include "events/wire.h"
#include "hub/hub_queries.h"
#include "hub/stock_rules.h"
#include "platform/log.h"

namespace edgesync::hub {

namespace {

using events::TopicKind;

// Prepared once per connection; the names are what the code below calls.
void prepare_statements(pqxx::connection_base& db) {
  db.prepare("insert_event", R"SQL(
    INSERT INTO hub_events (device_id, incarnation, seq, store_id, event_id, type, v,
                            occurred_at, received_at, effective_at, trace_id, data, stock_note)
    VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, 0), NULLIF($8, '')::timestamptz,
            $9::timestamptz, COALESCE(NULLIF($10, '')::timestamptz, clock_timestamp()),
            NULLIF($11, ''), $12::jsonb, NULLIF($13, ''))
    ON CONFLICT DO NOTHING
    RETURNING effective_at::text)SQL");
  db.prepare("bump_stream", R"SQL(
    INSERT INTO hub_streams AS s (device_id, incarnation, store_id, last_seq, events,
                                  dead_letters, newest_received_at, last_committed_at)
    VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, '')::timestamptz, clock_timestamp())
    ON CONFLICT (device_id, incarnation) DO UPDATE SET
      store_id = EXCLUDED.store_id,
      last_seq = greatest(s.last_seq, EXCLUDED.last_seq),
      events = s.events + EXCLUDED.events,
      dead_letters = s.dead_letters + EXCLUDED.dead_letters,
      newest_received_at = greatest(s.newest_received_at, EXCLUDED.newest_received_at),
      last_committed_at = EXCLUDED.last_committed_at)SQL");
  db.prepare("insert_dead_letter", R"SQL(
    INSERT INTO hub_dead_letters (device_id, incarnation, seq, store_id, event_id, type, v,
                                  reason, failed_at)
    VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, 0), $8, NULLIF($9, '')::timestamptz)
    ON CONFLICT DO NOTHING
    RETURNING seq)SQL");
  // A stock row exists before it is locked or changed: a count must lock it (below), and a
  // row another transaction is inserting is waited for here rather than missed.
  db.prepare("ensure_stock", R"SQL(
    INSERT INTO hub_stock (store_id, sku, on_hand, changed_at)
    VALUES ($1, $2, 0, clock_timestamp()) ON CONFLICT DO NOTHING)SQL");
  db.prepare("insert_movement", R"SQL(
    INSERT INTO hub_movements (device_id, incarnation, seq, line_index, store_id, sku,
                               effective_at, delta)
    VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz, $8) ON CONFLICT DO NOTHING)SQL");
  // A delta counts only when it happened after the count the level rests on: a count already
  // includes what happened before it, whatever order the two arrived in.
  db.prepare("apply_delta", R"SQL(
    UPDATE hub_stock SET on_hand = on_hand + $3, changed_at = clock_timestamp()
    WHERE store_id = $1 AND sku = $2 AND (counted_at IS NULL OR counted_at < $4::timestamptz))SQL");
  db.prepare("lock_stock", R"SQL(
    SELECT counted_at IS NULL OR counted_at <= $3::timestamptz
    FROM hub_stock WHERE store_id = $1 AND sku = $2 FOR UPDATE)SQL");
  // Run after lock_stock, in a statement of its own: its snapshot then sees every movement
  // committed by a transaction that held the row before this one.
  db.prepare("apply_level", R"SQL(
    UPDATE hub_stock SET
      on_hand = $3 + (SELECT COALESCE(sum(delta), 0) FROM hub_movements
                      WHERE store_id = $1 AND sku = $2 AND effective_at > $4::timestamptz),
      counted_at = $4::timestamptz, counted_level = $3, changed_at = clock_timestamp()
    WHERE store_id = $1 AND sku = $2)SQL");
  db.prepare("device_status", R"SQL(
    INSERT INTO hub_devices AS d (device_id, store_id, online, status, status_at)
    VALUES ($1, $2, $3, $4::jsonb, clock_timestamp())
    ON CONFLICT (store_id, device_id) DO UPDATE SET
      online = EXCLUDED.online, status = EXCLUDED.status, status_at = EXCLUDED.status_at)SQL");
  db.prepare("insert_loss", R"SQL(
    INSERT INTO hub_losses AS l (device_id, incarnation, first_seq, last_seq, store_id, reason)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (device_id, incarnation, first_seq) DO UPDATE SET
      last_seq = greatest(l.last_seq, EXCLUDED.last_seq), reason = EXCLUDED.reason)SQL");
  db.prepare("device_health", R"SQL(
    INSERT INTO hub_devices AS d (device_id, store_id, health, health_at)
    VALUES ($1, $2, $3::jsonb, clock_timestamp())
    ON CONFLICT (store_id, device_id) DO UPDATE SET
      health = EXCLUDED.health, health_at = EXCLUDED.health_at)SQL");
  db.prepare("insert_rejected", R"SQL(
    INSERT INTO hub_rejected (topic, payload, reason) VALUES ($1, $2, $3))SQL");
}

// A refusal that concerns this message alone (its content), as opposed to the connection or
// a conflict with another transaction, which concern the whole batch.
struct MessageRefused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// SQLSTATE class 22 (data exception: a NUL in a text, a time out of range, bad JSON for jsonb)
// and 23 (integrity) are the message's own fault; anything else is the batch's.
bool is_data_error(const pqxx::sql_error& e) {
  const std::string& s = e.sqlstate();
  return s.rfind("22", 0) == 0 || s.rfind("23", 0) == 0;
}

// Sums per sku: a count of the same sku in two bins is one level, and one UPDATE per sku keeps
// each event's row locks in sku order (fewer deadlocks between instances).
std::map<std::string, int64_t> per_sku(const std::vector<StockEffect>& effects,
                                       StockEffect::Kind kind) {
  std::map<std::string, int64_t> out;
  for (const StockEffect& e : effects) {
    if (e.kind == kind) out[e.sku] += e.qty;
  }
  return out;
}

class BatchApplier {
 public:
  BatchApplier(pqxx::work& w, const std::string& prefix, BatchOutcome* outcome)
      : w_(w), prefix_(prefix), outcome_(outcome) {}

  void apply(const InboundMessage& m) {
    events::TopicParts topic = events::parse_topic(prefix_, m.topic);
    if (topic.kind == TopicKind::kOther) {
      ++outcome_->ignored;
      return;
    }
    try {
      pqxx::subtransaction sub(w_, "message");
      switch (topic.kind) {
        case TopicKind::kEvent: event(sub, topic, m.payload); break;
        case TopicKind::kDeadLetter: dead_letter(sub, topic, m.payload); break;
        case TopicKind::kStatus:
        case TopicKind::kHealth: device_report(sub, topic, m.payload); break;
        case TopicKind::kResendReply: resend_reply(sub, topic, m.payload); break;
        case TopicKind::kOther: break;
      }
      sub.commit();
    } catch (const MessageRefused& e) {
      reject(m, e.what());
    } catch (const pqxx::sql_error& e) {
      if (!is_data_error(e)) throw;
      reject(m, std::string("PostgreSQL refused it: ") + e.what());
    } catch (const pqxx::failure&) {
      throw;  // the connection, a deadlock, a commit in doubt: the whole batch's
    } catch (const std::exception& e) {
      // Anything else is this message's content (a field of an unexpected JSON type): kept
      // apart, so that one strange message never stops the hub.
      reject(m, std::string("cannot be applied: ") + e.what());
    }
  }

 private:
  void event(pqxx::transaction_base& t, const events::TopicParts& topic,
             const std::string& payload) {
    auto parsed = events::parse_event_message(payload);
    if (!parsed) throw MessageRefused(parsed.status().message());
    const events::WireEvent& e = *parsed;
    same_source(topic, e.store_id, e.device_id);
    if (e.type != topic.type) {
      throw MessageRefused("the topic says type " + topic.type + ", the message " + e.type);
    }
    StockRuling ruling = stock_effects(e.type, e.v, e.data);
    // The time the event's stock effect is placed at: when it happened at the till, else when
    // the agent took it; if the box's clock was not set either, when it reached the hub.
    std::string effective = e.occurred_at.value_or(e.received_at_trusted ? e.received_at : "");
    pqxx::result r = t.exec_prepared(
        "insert_event", e.device_id, e.incarnation, static_cast<long long>(e.seq), e.store_id,
        e.id, e.type, e.v, e.occurred_at.value_or(""), e.received_at, effective, e.trace_id,
        e.data.dump(), ruling.note);
    const bool is_new = !r.empty();
    t.exec_prepared("bump_stream", e.device_id, e.incarnation, e.store_id,
                    static_cast<long long>(e.seq), is_new ? 1 : 0, 0, e.received_at);
    if (!is_new) {
      ++outcome_->events_repeated;
      return;
    }
    ++outcome_->events_new;
    const std::string at = r[0][0].c_str();
    for (const StockEffect& d : ruling.effects) {
      if (d.kind != StockEffect::Kind::kDelta) continue;
      t.exec_prepared("insert_movement", e.device_id, e.incarnation,
                      static_cast<long long>(e.seq), d.line_index, e.store_id, d.sku, at,
                      static_cast<long long>(d.qty));
    }
    for (const auto& [sku, delta] : per_sku(ruling.effects, StockEffect::Kind::kDelta)) {
      t.exec_prepared("ensure_stock", e.store_id, sku);
      t.exec_prepared("apply_delta", e.store_id, sku, static_cast<long long>(delta), at);
    }
    for (const auto& [sku, level] : per_sku(ruling.effects, StockEffect::Kind::kLevel)) {
      t.exec_prepared("ensure_stock", e.store_id, sku);
      pqxx::result newer = t.exec_prepared("lock_stock", e.store_id, sku, at);
      // A count older than the one the level rests on changes nothing (stored all the same).
      if (newer.empty() || !newer[0][0].as<bool>()) continue;
      t.exec_prepared("apply_level", e.store_id, sku, static_cast<long long>(level), at);
    }
  }

  void dead_letter(pqxx::transaction_base& t, const events::TopicParts& topic,
                   const std::string& payload) {
    auto parsed = events::parse_dead_letter_notice(payload);
    if (!parsed) throw MessageRefused(parsed.status().message());
    const events::WireDeadLetter& d = *parsed;
    same_source(topic, d.store_id, d.device_id);
    pqxx::result r = t.exec_prepared("insert_dead_letter", d.device_id, d.incarnation,
                                     static_cast<long long>(d.seq), d.store_id, d.id, d.type, d.v,
                                     d.reason, d.failed_at);
    t.exec_prepared("bump_stream", d.device_id, d.incarnation, d.store_id,
                    static_cast<long long>(d.seq), 0, r.empty() ? 0 : 1, "");
    ++outcome_->dead_letters;
  }

  void device_report(pqxx::transaction_base& t, const events::TopicParts& topic,
                     const std::string& payload) {
    // An empty retained message clears the topic: nothing to record.
    if (payload.empty()) return;
    // Measured before the parse: the message is dumped whole below, which recurses once per
    // level, and a forged one nested far deeper than any box sends would overflow the stack.
    if (events::nesting_depth(payload) > events::kMaxEventNesting) {
      throw MessageRefused("nests deeper than " + std::to_string(events::kMaxEventNesting) +
                           " levels");
    }
    nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw MessageRefused("not a JSON object");
    if (topic.kind == TopicKind::kStatus) {
      auto it = j.find("online");
      if (it == j.end() || !it->is_boolean()) throw MessageRefused("\"online\" must be true or false");
      bool online = it->get<bool>();
      t.exec_prepared("device_status", topic.device_id, topic.store_id, online, j.dump());
    } else {
      t.exec_prepared("device_health", topic.device_id, topic.store_id, j.dump());
    }
    ++outcome_->device_reports;
  }

  // What a box answered when asked to send seqs again: the ones it no longer has are losses.
  void resend_reply(pqxx::transaction_base& t, const events::TopicParts& topic,
                    const std::string& payload) {
    auto parsed = events::parse_resend_reply(payload);
    if (!parsed) throw MessageRefused(parsed.status().message());
    const events::ResendReply& r = *parsed;
    same_source(topic, r.store_id, r.device_id);
    for (const events::SeqRange& gone : r.gone) {
      t.exec_prepared("insert_loss", r.device_id, r.incarnation,
                      static_cast<long long>(gone.first), static_cast<long long>(gone.last),
                      r.store_id, r.gone_reason);
    }
    platform::log(platform::LogLevel::kInfo, "resend_reply",
                  r.store_id + "/" + r.device_id + " answered resend request " + r.request_id +
                      ": sent again " + events::format_ranges(r.resent) + "; gone " +
                      events::format_ranges(r.gone) +
                      (r.gone.empty() ? std::string() : " (" + r.gone_reason + ")"));
    ++outcome_->device_reports;
  }

  // A message whose body names another device than its topic: one box publishing as another.
  static void same_source(const events::TopicParts& topic, const std::string& store,
                          const std::string& device) {
    if (topic.store_id != store || topic.device_id != device) {
      throw MessageRefused("the topic names " + topic.store_id + "/" + topic.device_id +
                           ", the message " + store + "/" + device);
    }
  }

  void reject(const InboundMessage& m, const std::string& reason) {
    w_.exec_prepared("insert_rejected", m.topic,
                     pqxx::binarystring(m.payload.data(), m.payload.size()), reason);
    ++outcome_->rejected;
    platform::log(platform::LogLevel::kWarning, "message_rejected",
                  "kept apart, not applied: " + m.topic + ": " + reason);
  }

  pqxx::work& w_;
  const std::string& prefix_;
  BatchOutcome* outcome_;
};

}  // namespace

struct HubStore::Connection {
  explicit Connection(const std::string& conninfo) : db(conninfo) {}
  pqxx::connection db;
};

HubStore::HubStore(std::string conninfo, std::string prefix)
    : conninfo_(std::move(conninfo)), prefix_(std::move(prefix)) {}

HubStore::~HubStore() = default;

Result<std::unique_ptr<HubStore>> HubStore::open(const std::string& conninfo,
                                                 const std::string& topic_prefix) {
  std::unique_ptr<HubStore> store(new HubStore(conninfo, topic_prefix));
  Status s = store->connect();
  if (!s) return s;
  return store;
}

Status HubStore::connect() {
  db_.reset();
  try {
    // A database host that does not answer fails the attempt in seconds (the committer
    // retries), rather than after the kernel's TCP timeout.
    auto db = std::make_unique<Connection>(with_connect_timeout(conninfo_));
    Status s = ensure_hub_schema(db->db);
    if (!s) return s;
    prepare_statements(db->db);
    db_ = std::move(db);
    return Status::ok();
  } catch (const std::exception& e) {
    return Status::unavailable(std::string("PostgreSQL: ") + e.what());
  }
}

Status HubStore::apply_once(const std::vector<InboundMessage>& batch, BatchOutcome* outcome) {
  if (!db_) {
    Status s = connect();
    if (!s) return s;
  }
  BatchOutcome tally;
  pqxx::work w(db_->db);
  BatchApplier applier(w, prefix_, &tally);
  for (const InboundMessage& m : batch) applier.apply(m);
  // Wakes the pages (hub/web_server.cc) that LISTEN, whichever instance they run in. PostgreSQL
  // delivers it at commit, so a woken page reads what this transaction changed. Once per batch
  // with a new event: a superset of the batches that moved stock, which costs a page one read.
  if (tally.events_new > 0) w.exec("NOTIFY edgesync_hub_stock");
  w.commit();
  *outcome = tally;
  return Status::ok();
}

Status HubStore::apply(const std::vector<InboundMessage>& batch, BatchOutcome* outcome) {
  for (int attempt = 1;; ++attempt) {
    try {
      return apply_once(batch, outcome);
    } catch (const pqxx::transaction_rollback& e) {
      // A deadlock with another instance, or a serialization failure: the whole batch again, at
      // once, on the same connection.
      if (attempt >= 5) return Status::unavailable(std::string("PostgreSQL: ") + e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt));
    } catch (const pqxx::in_doubt_error& e) {
      // The commit may or may not have happened: applying again is safe (every effect is keyed).
      db_.reset();
      if (attempt >= 3) return Status::unavailable(std::string("PostgreSQL: ") + e.what());
    } catch (const pqxx::broken_connection& e) {
      db_.reset();
      if (attempt >= 2) return Status::unavailable(std::string("PostgreSQL: ") + e.what());
    } catch (const pqxx::sql_error& e) {
      // Another instance holds rows this batch needs in the other order, or the database is
      // shutting down: the whole batch again.
      const std::string& state = e.sqlstate();
      bool transient = state == "40P01" || state == "40001" || state.rfind("57P", 0) == 0 ||
                       state.rfind("08", 0) == 0;
      if (state.rfind("57P", 0) == 0 || state.rfind("08", 0) == 0) db_.reset();
      if (!transient || attempt >= 5) {
        return Status::unavailable(std::string("PostgreSQL: ") + e.what());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10 * attempt));
    } catch (const std::exception& e) {
      db_.reset();
      return Status::unavailable(std::string("PostgreSQL: ") + e.what());
    }
  }
}

}  // namespace edgesync::hub
