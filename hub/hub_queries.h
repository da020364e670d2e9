// What the central team asks the hub's database: stock levels, each device's lag, and the gaps
// in its streams. Read-only; each answer is JSON (the commands print it as is with --json, or
// as a table).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "platform/status.h"

namespace pqxx {
class transaction_base;
}

namespace edgesync::hub {

// A connection string (key=value or a postgres:// URI) gets a 5 s connect timeout unless it has
// one: the hub, its page or a look for gaps must not hang for minutes on a database host that
// does not answer.
std::string with_connect_timeout(std::string conninfo);

// [{"store_id","sku","on_hand","changed_at","counted_at"|null,"counted_level"|null}], by sku.
// `sku` empty: every sku of the store.
Result<nlohmann::json> query_stock(const std::string& conninfo, const std::string& store,
                                   const std::string& sku);

// Per device (its newest incarnation): [{"store_id","device_id","incarnation","last_seq",
// "events","dead_letters","newest_event_age_s","last_commit_age_s","online"|null,
// "status_age_s"|null,"pending"|null}] by store and device. "pending": what the device's last
// health message said was waiting in its outbox.
Result<nlohmann::json> query_lag(const std::string& conninfo);
// The same rows read in a transaction the caller holds (the page, on its pooled connections).
nlohmann::json lag_rows(pqxx::transaction_base& t);

// Per device and incarnation, the seq ranges neither received nor announced as dead letters:
// [{"store_id","device_id","incarnation","from","to","where","state","reason"}] by store,
// device, incarnation and seq. "where": "hole" below the hub's highest seq of that incarnation,
// "tail" above it, up to the highest_delivered_seq of the box's last health message (the box
// holds the broker's acknowledgement for them). "state": "missing" (the hub asks the box for
// them again, docs/HUB.md "Resend"), or "gone": the box said it no longer has them ("reason").
Result<nlohmann::json> query_gaps(const std::string& conninfo);
nlohmann::json gap_rows(pqxx::transaction_base& t);

}  // namespace edgesync::hub
