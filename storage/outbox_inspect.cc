// Read-only views of an outbox database for the CLI (Outbox::inspect, list, list_dead_letters):
// their own read-only connection, so they work while the agent writes (WAL lets readers in) and
// when it is stopped.
#include <sys/stat.h>

#include <algorithm>

#include "storage/event_rows.h"
#include "storage/outbox.h"
#include "storage/outbox_quarantine.h"
#include "storage/schema.h"

namespace edgesync::storage {
namespace {

Result<std::unique_ptr<Database>> open_read_only(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::not_found("no outbox database at " + path +
                             " (has the agent run with this config?)");
  }
  Database::Options o;
  o.read_only = true;
  auto db = Database::open(path, o);
  if (!db) return db.status();
  Status s = check_schema_readable(**db);
  if (!s) return s;
  return db;
}

Result<OutboxStats> compute_stats(Database& db) {
  OutboxStats st;
  // One read transaction so every figure comes from the same snapshot.
  Status s = db.exec("BEGIN");
  if (!s) return s;
  auto done = [&db](Status status) -> Result<OutboxStats> {
    db.exec("COMMIT");
    return status;
  };
  auto delivered = db.query_int64("SELECT value FROM state WHERE key = 'delivered_seq'", 0);
  if (!delivered) return done(delivered.status());
  auto max_seq = db.query_int64("SELECT max(seq) FROM events", 0);
  if (!max_seq) return done(max_seq.status());
  auto stored = db.query_int64("SELECT count(*) FROM events", 0);
  if (!stored) return done(stored.status());
  auto dead = db.query_int64("SELECT count(*) FROM dead_letters", 0);
  if (!dead) return done(dead.status());
  auto dead_pruned =
      db.query_int64("SELECT value FROM state WHERE key = 'dead_letters_pruned'", 0);
  if (!dead_pruned) return done(dead_pruned.status());
  st.dead_letters_pruned = *dead_pruned;
  auto held = db.query_int64("SELECT value FROM state WHERE key = 'delivery_held_since'", 0);
  if (!held) return done(held.status());
  st.held_since_ms = *held;
  // The dead-letter table is bounded (storage.max_dead_letters): a scan is cheap enough.
  auto dead_day = db.query_int64(
      "SELECT count(*) FROM dead_letters "
      "WHERE seq > 0 AND failed_ms >= CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 86400000",
      0);
  if (!dead_day) return done(dead_day.status());
  st.dead_letters_last_day = *dead_day;
  auto incarnation = read_incarnation(db);
  if (!incarnation) return done(incarnation.status());
  st.incarnation = std::move(*incarnation);
  st.quarantine = read_quarantine(db);
  st.delivered_seq = *delivered;
  st.next_seq = std::max(*max_seq, *delivered) + 1;
  st.pending = st.next_seq - 1 - st.delivered_seq;
  st.stored_events = *stored;
  st.dead_letters = *dead;

  s = read_pending_figures(db, &st);
  if (!s) return done(s);
  db.exec("COMMIT");
  return st;
}

// Every row of `q` (already bound), read into `out` (cleared first) with `read`.
template <typename T, typename Read>
Status collect_rows(Statement& q, std::vector<T>* out, Read read) {
  out->clear();
  while (true) {
    auto row = q.step();
    if (!row) return row.status();
    if (!*row) return Status::ok();
    out->emplace_back();
    read(q, &out->back());
  }
}

}  // namespace

Result<OutboxStats> Outbox::inspect(const std::string& path) {
  auto db = open_read_only(path);
  if (!db) return db.status();
  return compute_stats(**db);
}

Status Outbox::list(const std::string& path, bool pending_only, size_t limit,
                    std::vector<StoredEvent>* out, OutboxStats* stats) {
  auto db = open_read_only(path);
  if (!db) return db.status();
  auto st = compute_stats(**db);
  if (!st) return st.status();
  if (stats) *stats = *st;
  auto q = (*db)->prepare(kSelectEventsAfterSql);
  if (!q) return q.status();
  (*q)->bind(1, pending_only ? st->delivered_seq : 0);
  (*q)->bind(2, static_cast<int64_t>(limit));
  return collect_rows(**q, out, read_event);
}

Status Outbox::dead_letter_times(const std::string& path, int64_t since_ms,
                                 std::vector<int64_t>* out) {
  auto db = open_read_only(path);
  if (!db) return db.status();
  auto q = (*db)->prepare("SELECT failed_ms FROM dead_letters WHERE seq > 0 AND failed_ms >= ? "
                          "ORDER BY failed_ms");
  if (!q) return q.status();
  (*q)->bind(1, since_ms);
  while (true) {
    auto row = (*q)->step();
    if (!row) return row.status();
    if (!*row) return Status::ok();
    out->push_back((*q)->column_int64(0));
  }
}

Status Outbox::list_dead_letters(const std::string& path, size_t limit,
                                 std::vector<DeadLetter>* out) {
  auto db = open_read_only(path);
  if (!db) return db.status();
  auto q = (*db)->prepare(kSelectDeadLettersSql);
  if (!q) return q.status();
  (*q)->bind(1, static_cast<int64_t>(limit));
  return collect_rows(**q, out, read_dead_letter);
}

}  // namespace edgesync::storage
