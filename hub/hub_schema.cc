#include <pqxx/pqxx>

#include "hub/hub_store.h"

namespace edgesync::hub {

namespace {

// Tables are created if missing, so an upgrade adds what is new; a change to an existing table
// will need a numbered migration (hub_schema_version is there for it).
constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS hub_schema_version (version integer NOT NULL);
-- Every event received, once: the key is the event's identity for ever.
CREATE TABLE IF NOT EXISTS hub_events (
  device_id    text        NOT NULL,
  incarnation  text        NOT NULL,
  seq          bigint      NOT NULL,
  store_id     text        NOT NULL,
  event_id     text        NOT NULL,
  type         text        NOT NULL,
  v            integer,
  occurred_at  timestamptz,
  received_at  timestamptz NOT NULL,
  effective_at timestamptz NOT NULL,
  trace_id     text,
  data         jsonb       NOT NULL,
  stock_note   text,
  committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (device_id, incarnation, seq)
);
CREATE INDEX IF NOT EXISTS hub_events_store_time ON hub_events (store_id, committed_at);
-- The places of events that will never come (refused by the hub broker, the box kept the data).
CREATE TABLE IF NOT EXISTS hub_dead_letters (
  device_id    text        NOT NULL,
  incarnation  text        NOT NULL,
  seq          bigint      NOT NULL,
  store_id     text        NOT NULL,
  event_id     text        NOT NULL,
  type         text        NOT NULL,
  v            integer,
  reason       text        NOT NULL,
  failed_at    timestamptz,
  committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (device_id, incarnation, seq)
);
-- Per device and outbox incarnation: how far its stream has come.
CREATE TABLE IF NOT EXISTS hub_streams (
  device_id          text        NOT NULL,
  incarnation        text        NOT NULL,
  store_id           text        NOT NULL,
  last_seq           bigint      NOT NULL,
  events             bigint      NOT NULL DEFAULT 0,
  dead_letters       bigint      NOT NULL DEFAULT 0,
  newest_received_at timestamptz,
  last_committed_at  timestamptz NOT NULL,
  PRIMARY KEY (device_id, incarnation)
);
-- The last status (online/offline) and health message of each device. A device id is unique
-- within its store (every store may have a "pos-01").
CREATE TABLE IF NOT EXISTS hub_devices (
  store_id  text NOT NULL,
  device_id text NOT NULL,
  online    boolean,
  status    jsonb,
  status_at timestamptz,
  health    jsonb,
  health_at timestamptz,
  PRIMARY KEY (store_id, device_id)
);
-- Live stock per store and sku. counted_at: the time of the count the level rests on (null: no
-- count yet, the level is the sum of movements from zero).
CREATE TABLE IF NOT EXISTS hub_stock (
  store_id      text        NOT NULL,
  sku           text        NOT NULL,
  on_hand       bigint      NOT NULL,
  counted_at    timestamptz,
  counted_level bigint,
  changed_at    timestamptz NOT NULL,
  PRIMARY KEY (store_id, sku)
);
-- Every change by delta, kept so that a count can be re-based: level at the count plus the
-- movements after it, whatever order they arrived in.
CREATE TABLE IF NOT EXISTS hub_movements (
  device_id    text        NOT NULL,
  incarnation  text        NOT NULL,
  seq          bigint      NOT NULL,
  line_index   integer     NOT NULL,
  store_id     text        NOT NULL,
  sku          text        NOT NULL,
  effective_at timestamptz NOT NULL,
  delta        bigint      NOT NULL,
  PRIMARY KEY (device_id, incarnation, seq, line_index)
);
CREATE INDEX IF NOT EXISTS hub_movements_sku ON hub_movements (store_id, sku, effective_at);
-- Seqs a box said it no longer has when the hub asked for them again (a resend reply): losses
-- the hub knows of and stops asking for. `gaps` shows them as gone.
CREATE TABLE IF NOT EXISTS hub_losses (
  device_id    text        NOT NULL,
  incarnation  text        NOT NULL,
  first_seq    bigint      NOT NULL,
  last_seq     bigint      NOT NULL,
  store_id     text        NOT NULL,
  reason       text        NOT NULL,
  reported_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (device_id, incarnation, first_seq)
);
-- Messages the hub could not take (not JSON, a field missing, text PostgreSQL refuses): kept,
-- acknowledged, and shown, never a reason to stop.
CREATE TABLE IF NOT EXISTS hub_rejected (
  id           bigserial   PRIMARY KEY,
  topic        text        NOT NULL,
  payload      bytea       NOT NULL,
  reason       text        NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO hub_schema_version (version) SELECT 1 WHERE NOT EXISTS (SELECT FROM hub_schema_version);
)SQL";

}  // namespace

Status ensure_hub_schema(pqxx::connection_base& db) {
  try {
    pqxx::work w(db);
    // Two instances starting together would race on CREATE TABLE IF NOT EXISTS (a unique
    // violation in the catalogue): one at a time.
    w.exec("SELECT pg_advisory_xact_lock(hashtext('edgesync-hub schema'))");
    w.exec(kSchema);
    w.commit();
    return Status::ok();
  } catch (const std::exception& e) {
    return Status::unavailable(std::string("creating the hub's tables: ") + e.what());
  }
}

}  // namespace edgesync::hub
