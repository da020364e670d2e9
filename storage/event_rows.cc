#include "storage/event_rows.h"

#include "storage/outbox_database.h"

namespace edgesync::storage {
namespace {

// Optional text columns are NULL when absent (a bound value stays bound across resets).
void bind_text_or_null(Statement& st, int index, const std::string& value) {
  if (value.empty()) {
    st.bind_null(index);
  } else {
    st.bind_text(index, value);
  }
}

void bind_int_or_null(Statement& st, int index, int value) {
  if (value == 0) {
    st.bind_null(index);
  } else {
    st.bind(index, int64_t{value});
  }
}

}  // namespace

// counted_size() for rows already stored; both must agree so that the figure is the same after
// a restart (ids, types and timestamps are ASCII: length() counts their bytes).
#define EDGESYNC_STORED_SIZE_SQL \
  "(length(data) + 2 * length(id) + length(type) + coalesce(length(occurred_at), 0) + " \
  "coalesce(length(trace_id), 0) + 40)"

int64_t counted_size(const AppendRequest& r) {
  constexpr int64_t kRowOverhead = 40;  // record header, rowid, received_ms, index entry header
  return static_cast<int64_t>(r.data.size() + 2 * r.id.size() + r.type.size() +
                              r.occurred_at.size() + r.trace_id.size()) +
         kRowOverhead;
}

StoredEvent stored_event(int64_t seq, AppendRequest req) {
  StoredEvent e;
  e.seq = seq;
  e.id = std::move(req.id);
  e.type = std::move(req.type);
  e.occurred_at = std::move(req.occurred_at);
  e.received_ms = req.received_ms;
  e.data = std::move(req.data);
  e.trace_id = std::move(req.trace_id);
  e.contract_version = req.contract_version;
  return e;
}

// The join costs one primary-key probe of dead_letters per event (usually empty).
const char* const kSelectEventsAfterSql =
    "SELECT " EDGESYNC_EVENT_COLUMNS
    "FROM events e LEFT JOIN dead_letters d ON d.seq = e.seq "
    "WHERE e.seq > ? ORDER BY e.seq LIMIT ?";

const char* const kSelectDeadLettersSql =
    "SELECT " EDGESYNC_DEAD_LETTER_COLUMNS "FROM dead_letters ORDER BY seq < 0, abs(seq) LIMIT ?";

void read_event(const Statement& st, StoredEvent* e) {
  e->seq = st.column_int64(0);
  e->id.assign(st.column_text(1));
  e->type.assign(st.column_text(2));
  e->occurred_at.assign(st.column_text(3));
  e->received_ms = st.column_int64(4);
  e->data.assign(st.column_blob(5));
  e->dead_reason.assign(st.column_text(6));
  e->dead_ms = st.column_int64(7);
  e->trace_id.assign(st.column_text(8));
  e->contract_version = static_cast<int>(st.column_int64(9));
}

void read_dead_letter(const Statement& st, DeadLetter* d) {
  read_event(st, &d->event);
  d->event.dead_reason.clear();
  d->event.dead_ms = 0;
  d->reason.assign(st.column_text(6));
  d->failed_ms = st.column_int64(7);
}

Status read_pending_figures(Database& db, OutboxStats* stats) {
  auto q = db.prepare("SELECT coalesce(sum(" EDGESYNC_STORED_SIZE_SQL
                      "), 0), min(received_ms) FROM events "
                      "WHERE seq > ?");
  if (!q) return q.status();
  (*q)->bind(1, stats->delivered_seq);
  auto row = (*q)->step();
  if (!row) return row.status();
  if (*row) {
    stats->pending_bytes = (*q)->column_int64(0);
    if (!(*q)->column_is_null(1)) stats->oldest_pending_received_ms = (*q)->column_int64(1);
  }
  return Status::ok();
}

Status EventRows::prepare(Database& d) {
  db_ = &d;
#define PREPARE(field, sql)    \
  {                            \
    auto p = d.prepare(sql);   \
    if (!p) return p.status(); \
    field = std::move(*p);     \
  }
  PREPARE(insert_, kInsertEventSql);
  PREPARE(find_id_, "SELECT seq FROM events WHERE id = ?");
  PREPARE(bytes_between_, "SELECT coalesce(sum(" EDGESYNC_STORED_SIZE_SQL
                          "), 0) FROM events WHERE seq > ? AND seq <= ?");
  PREPARE(sizes_between_, "SELECT seq, " EDGESYNC_STORED_SIZE_SQL
                          " FROM events WHERE seq > ? AND seq <= ? ORDER BY seq");
  PREPARE(set_delivered_, "UPDATE state SET value = ? WHERE key = 'delivered_seq'");
  PREPARE(insert_dead_,
          "INSERT OR IGNORE INTO dead_letters(seq, id, type, occurred_at, received_ms, data, "
          "reason, failed_ms, trace_id, contract_v) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  PREPARE(find_refusal_, "SELECT seq FROM dead_letters WHERE id = ? AND seq < 0");
  PREPARE(prune_, "DELETE FROM events WHERE seq <= ?");
  // Everything at or below the (keep+1)-th newest; nothing when there are no more than `keep`.
  // The hub's dead letters (seq > 0) and requests refused on arrival (below zero, the newest
  // lowest) are bounded apart: a producer's flood of invalid lines never pushes out what the
  // hub refused.
  PREPARE(prune_dead_count_,
          "DELETE FROM dead_letters WHERE seq > 0 AND seq <= "
          "(SELECT seq FROM dead_letters WHERE seq > 0 ORDER BY seq DESC LIMIT 1 OFFSET ?1)");
  PREPARE(prune_refused_count_,
          "DELETE FROM dead_letters WHERE seq < 0 AND seq >= "
          "(SELECT seq FROM dead_letters WHERE seq < 0 ORDER BY seq ASC LIMIT 1 OFFSET ?1)");
  PREPARE(prune_dead_age_, "DELETE FROM dead_letters WHERE failed_ms < ?");
  PREPARE(add_dead_pruned_,
          "INSERT INTO state(key, value) VALUES('dead_letters_pruned', ?) "
          "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value");
#undef PREPARE
  return Status::ok();
}

void EventRows::reset() {
  insert_.reset();
  find_id_.reset();
  bytes_between_.reset();
  sizes_between_.reset();
  set_delivered_.reset();
  insert_dead_.reset();
  find_refusal_.reset();
  db_ = nullptr;
  prune_dead_count_.reset();
  prune_refused_count_.reset();
  prune_dead_age_.reset();
  add_dead_pruned_.reset();
  prune_.reset();
}

Status EventRows::insert(int64_t seq, const AppendRequest& r) {
  Statement& ins = *insert_;
  ins.bind(1, seq);
  ins.bind_text(2, r.id);
  ins.bind_text(3, r.type);
  bind_text_or_null(ins, 4, r.occurred_at);
  ins.bind(5, r.received_ms);
  ins.bind_blob(6, r.data);
  bind_text_or_null(ins, 7, r.trace_id);
  bind_int_or_null(ins, 8, r.contract_version);
  return ins.run();
}

Result<int64_t> EventRows::lookup(const std::string& id) {
  find_id_->bind_text(1, id);
  auto row = find_id_->step();
  int64_t seq = row && *row ? find_id_->column_int64(0) : 0;
  find_id_->reset();
  if (!row) return row.status();
  return seq;
}

Result<int64_t> EventRows::sum_between(int64_t after, int64_t through) {
  bytes_between_->bind(1, after);
  bytes_between_->bind(2, through);
  auto row = bytes_between_->step();
  int64_t sum = row && *row ? bytes_between_->column_int64(0) : 0;
  bytes_between_->reset();
  if (!row) return row.status();
  return sum;
}

Status EventRows::oldest_for(int64_t after, int64_t through, int64_t want, int64_t* last_seq,
                             int64_t* bytes) {
  sizes_between_->bind(1, after);
  sizes_between_->bind(2, through);
  *last_seq = after;
  *bytes = 0;
  Status s = Status::ok();
  while (*bytes < want) {
    auto row = sizes_between_->step();
    if (!row) {
      s = row.status();
      break;
    }
    if (!*row) break;
    *last_seq = sizes_between_->column_int64(0);
    *bytes += sizes_between_->column_int64(1);
  }
  sizes_between_->reset();
  return s;
}

Status EventRows::delete_through(int64_t seq) {
  prune_->bind(1, seq);
  return prune_->run();
}

Result<int64_t> EventRows::remove(int64_t seq) {
  auto size = db_->prepare("SELECT " EDGESYNC_STORED_SIZE_SQL " FROM events WHERE seq = ?");
  if (!size) return size.status();
  (*size)->bind(1, seq);
  auto row = (*size)->step();
  if (!row) return row.status();
  if (!*row) return int64_t{0};
  const int64_t bytes = (*size)->column_int64(0);
  auto del = db_->prepare("DELETE FROM events WHERE seq = ?");
  if (!del) return del.status();
  (*del)->bind(1, seq);
  Status s = (*del)->run();
  if (!s) return s;
  return bytes;
}

Status EventRows::set_delivered(int64_t seq) {
  set_delivered_->bind(1, seq);
  return set_delivered_->run();
}

Status EventRows::insert_dead_letter(const DeadLetter& d) {
  Statement& st = *insert_dead_;
  st.bind(1, d.event.seq);
  st.bind_text(2, d.event.id);
  st.bind_text(3, d.event.type);
  bind_text_or_null(st, 4, d.event.occurred_at);
  st.bind(5, d.event.received_ms);
  st.bind_blob(6, d.event.data);
  st.bind_text(7, d.reason);
  st.bind(8, d.failed_ms);
  bind_text_or_null(st, 9, d.event.trace_id);
  bind_int_or_null(st, 10, d.event.contract_version);
  return st.run();
}

Result<int64_t> EventRows::lookup_refusal(const std::string& id) {
  find_refusal_->bind_text(1, id);
  auto row = find_refusal_->step();
  int64_t key = row && *row ? find_refusal_->column_int64(0) : 0;
  find_refusal_->reset();
  if (!row) return row.status();
  return key;
}

Result<int64_t> EventRows::next_refusal_key() {
  auto lowest = db_->query_int64("SELECT coalesce(min(seq), 0) FROM dead_letters WHERE seq < 0", 0);
  if (!lowest) return lowest.status();
  return *lowest - 1;
}

Result<int64_t> EventRows::prune_dead_letters(int64_t keep, int64_t failed_before_ms) {
  prune_dead_count_->bind(1, keep);
  Status s = prune_dead_count_->run();
  if (!s) return s;
  int64_t pruned = db_->changes();
  prune_refused_count_->bind(1, keep);
  s = prune_refused_count_->run();
  if (!s) return s;
  pruned += db_->changes();
  prune_dead_age_->bind(1, failed_before_ms);
  s = prune_dead_age_->run();
  if (!s) return s;
  pruned += db_->changes();
  if (pruned > 0) {
    add_dead_pruned_->bind(1, pruned);
    s = add_dead_pruned_->run();
    if (!s) return s;
  }
  return pruned;
}

}  // namespace edgesync::storage
