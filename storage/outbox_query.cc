#include "storage/outbox_query.h"

#include <sys/stat.h>

#include <algorithm>

#include "storage/event_rows.h"
#include "storage/schema.h"

namespace edgesync::storage {
namespace {

// Events a tail poll returns at most; the rest come with the next polls.
constexpr int64_t kTailRowsPerPoll = 1000;

Result<std::unique_ptr<Database>> open_read_only(const std::string& path, int busy_timeout_ms) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::not_found("no outbox database at " + path +
                             " (has the agent run with this config?)");
  }
  Database::Options o;
  o.read_only = true;
  o.busy_timeout_ms = busy_timeout_ms;
  auto db = Database::open(path, o);
  if (!db) return db.status();
  Status s = check_schema_readable(**db);
  if (!s) return s;
  return db;
}

// REQUIRES: inside the caller's read transaction, so the figures match the rows read with them.
Status read_position(Database& db, OutboxPosition* p) {
  auto delivered = db.query_int64("SELECT value FROM state WHERE key = 'delivered_seq'", 0);
  if (!delivered) return delivered.status();
  // min() and max() of the rowid are one B-tree descent each.
  auto max_seq = db.query_int64("SELECT max(seq) FROM events", 0);
  if (!max_seq) return max_seq.status();
  auto min_seq = db.query_int64("SELECT min(seq) FROM events", 0);
  if (!min_seq) return min_seq.status();
  auto held = db.query_int64("SELECT value FROM state WHERE key = 'delivery_held_since'", 0);
  if (!held) return held.status();
  auto incarnation = read_incarnation(db);
  if (!incarnation) return incarnation.status();
  p->incarnation = std::move(*incarnation);
  p->delivered_seq = *delivered;
  p->next_seq = std::max(*max_seq, *delivered) + 1;
  p->oldest_stored_seq = *min_seq;
  p->held_since_ms = *held;
  return Status::ok();
}

// Runs `body` in one read transaction (one snapshot) and ends it whatever happened.
template <typename Body>
Status in_snapshot(Database& db, Body body) {
  Status s = db.exec("BEGIN");
  if (!s) return s;
  s = body();
  db.exec("COMMIT");
  return s;
}

// The first row of `q` (already bound) into `e`; false when there is none.
Result<bool> first_event(Statement& q, StoredEvent* e) {
  auto row = q.step();
  if (!row) return row.status();
  if (*row) read_event(q, e);
  q.reset();
  return *row;
}

Result<bool> first_dead_letter(Statement& q, DeadLetter* d) {
  auto row = q.step();
  if (!row) return row.status();
  if (*row) read_dead_letter(q, d);
  q.reset();
  return *row;
}

Status look_up(Database& db, int64_t seq, const std::string& id, EventLookup* out) {
  Status s = read_position(db, &out->position);
  if (!s) return s;
  const bool by_id = !id.empty();
  auto q = db.prepare(by_id ? "SELECT " EDGESYNC_EVENT_COLUMNS
                              "FROM events e LEFT JOIN dead_letters d ON d.seq = e.seq "
                              "WHERE e.id = ?"
                            : "SELECT " EDGESYNC_EVENT_COLUMNS
                              "FROM events e LEFT JOIN dead_letters d ON d.seq = e.seq "
                              "WHERE e.seq = ?");
  if (!q) return q.status();
  if (by_id) {
    (*q)->bind_text(1, id);
  } else {
    (*q)->bind(1, seq);
  }
  auto found = first_event(**q, &out->event);
  if (!found) return found.status();

  const int64_t delivered = out->position.delivered_seq;
  if (*found) {
    const StoredEvent& e = out->event;
    if (!e.dead_reason.empty()) {
      out->state = EventLookup::State::kDeadLettered;
      out->reason = e.dead_reason;
      out->failed_ms = e.dead_ms;
      out->announced = e.seq <= delivered;
    } else if (e.seq <= delivered) {
      out->state = EventLookup::State::kDelivered;
    } else {
      out->state = EventLookup::State::kPending;
      // A range of the primary key: as long as the queue in front of it, no longer.
      auto ahead = db.prepare("SELECT count(*) FROM events WHERE seq > ? AND seq < ?");
      if (!ahead) return ahead.status();
      (*ahead)->bind(1, delivered);
      (*ahead)->bind(2, e.seq);
      auto row = (*ahead)->step();
      if (!row) return row.status();
      out->ahead = *row ? (*ahead)->column_int64(0) : 0;
    }
    return Status::ok();
  }

  // A dead letter outlives its event's row, which is pruned with the delivered history. By id
  // this reads the whole dead-letter table (no index on its id): at most
  // storage.max_dead_letters rows, once, for one technician's command.
  auto dq = db.prepare(by_id ? "SELECT " EDGESYNC_DEAD_LETTER_COLUMNS
                               "FROM dead_letters WHERE id = ? ORDER BY seq DESC LIMIT 1"
                             : "SELECT " EDGESYNC_DEAD_LETTER_COLUMNS "FROM dead_letters WHERE seq = ?");
  if (!dq) return dq.status();
  if (by_id) {
    (*dq)->bind_text(1, id);
  } else {
    (*dq)->bind(1, seq);
  }
  DeadLetter d;
  auto dead = first_dead_letter(**dq, &d);
  if (!dead) return dead.status();
  if (*dead) {
    out->state = EventLookup::State::kDeadLettered;
    out->event = std::move(d.event);
    out->reason = std::move(d.reason);
    out->failed_ms = d.failed_ms;
    // A request refused on arrival (below zero) was never in the stream: nothing announced.
    out->announced = out->event.seq > 0 && out->event.seq <= delivered;
    return Status::ok();
  }

  out->state = EventLookup::State::kNotFound;
  const OutboxPosition& p = out->position;
  if (by_id) {
    out->absence = EventLookup::Absence::kUnknownId;
  } else if (seq < 1 || seq >= p.next_seq) {
    out->absence = EventLookup::Absence::kNotYet;
  } else if (p.oldest_stored_seq == 0 || seq < p.oldest_stored_seq) {
    out->absence = EventLookup::Absence::kPruned;
  } else {
    out->absence = EventLookup::Absence::kRemoved;
  }
  return Status::ok();
}

}  // namespace

Result<EventLookup> find_event(const std::string& path, int64_t seq, const std::string& id) {
  auto db = open_read_only(path, 5000);
  if (!db) return db.status();
  EventLookup out;
  Status s = in_snapshot(**db, [&] { return look_up(**db, seq, id, &out); });
  if (!s) return s;
  return out;
}

Status list_events(const std::string& path, const EventFilter& filter,
                   std::vector<StoredEvent>* out, OutboxPosition* position) {
  out->clear();
  auto db = open_read_only(path, 5000);
  if (!db) return db.status();
  return in_snapshot(**db, [&]() -> Status {
    OutboxPosition p;
    Status s = read_position(**db, &p);
    if (!s) return s;
    if (position) *position = p;
    // The seq range is the primary key. type and received_ms have no index (storage/schema.cc):
    // with --type or --since every row after the start seq is read, at most the pending events
    // plus storage.keep_delivered of history. Acceptable for a technician's command, and a
    // read-only connection never holds up the agent's writer. A NULL parameter is a filter not
    // asked for.
    auto q = (*db)->prepare("SELECT " EDGESYNC_EVENT_COLUMNS
                            "FROM events e LEFT JOIN dead_letters d ON d.seq = e.seq "
                            "WHERE e.seq > ?1 "
                            "AND (?2 IS NULL OR e.type = ?2) "
                            "AND (?3 IS NULL OR substr(e.type, 1, length(?3)) = ?3) "
                            "AND (?4 IS NULL OR e.received_ms >= ?4) "
                            "ORDER BY e.seq LIMIT ?5");
    if (!q) return q.status();
    Statement& st = **q;
    st.bind(1, filter.pending_only ? p.delivered_seq : 0);
    if (filter.type.empty()) {
      st.bind_null(2);
      st.bind_null(3);
    } else if (filter.type_is_prefix) {
      st.bind_null(2);
      st.bind_text(3, filter.type);
    } else {
      st.bind_text(2, filter.type);
      st.bind_null(3);
    }
    if (filter.received_since_ms) {
      st.bind(4, *filter.received_since_ms);
    } else {
      st.bind_null(4);
    }
    st.bind(5, static_cast<int64_t>(filter.limit));
    while (true) {
      auto row = st.step();
      if (!row) return row.status();
      if (!*row) return Status::ok();
      out->emplace_back();
      read_event(st, &out->back());
    }
  });
}

// ---- OutboxTail ----

Status OutboxTail::skip_dead_letters_already_there(Database& db) {
  // Those the hub was told of: below the floor, never read. Those still being announced: seen.
  auto delivered = db.query_int64("SELECT value FROM state WHERE key = 'delivered_seq'", 0);
  if (!delivered) return delivered.status();
  dead_floor_ = *delivered;
  auto dq = db.prepare("SELECT seq FROM dead_letters WHERE seq > ?");
  if (!dq) return dq.status();
  (*dq)->bind(1, *delivered);
  while (true) {
    auto r = (*dq)->step();
    if (!r) return r.status();
    if (!*r) return Status::ok();
    dead_reported_.insert((*dq)->column_int64(0));
  }
}

OutboxTail::OutboxTail(std::string path, size_t backlog)
    : path_(std::move(path)), backlog_(backlog) {}

OutboxTail::~OutboxTail() { close(); }

void OutboxTail::close() {
  query_.reset();  // statements before their connection
  db_.reset();
}

OutboxTail::Poll OutboxTail::poll() {
  Poll poll;
  struct stat st;
  const bool there = ::stat(path_.c_str(), &st) == 0;
  if (db_ && (!there || st.st_dev != dev_ || st.st_ino != ino_)) {
    // Moved aside or replaced: this connection still reads the old file, under its new name.
    close();
  }
  if (!there) {
    // Whatever appears here later is a new file: followed from its first event.
    from_start_ = true;
    poll.kind = Poll::Kind::kMissing;
    return poll;
  }
  if (!db_) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    Status s = open(&poll);
    if (!s) {
      close();
      poll.kind = Poll::Kind::kError;
      poll.error = s;
      return poll;
    }
  } else {
    poll.kind = Poll::Kind::kFollowing;
  }
  poll.incarnation = incarnation_;
  Status s = read(&poll);
  if (!s) {
    close();
    poll.kind = Poll::Kind::kError;
    poll.error = s;
    poll.accepted.clear();
    poll.dead_letters.clear();
    poll.delivered_through.reset();
  }
  return poll;
}

Status OutboxTail::open(Poll* poll) {
  // A short busy timeout: a poll must not hang behind a lock (the agent's WAL recovery at
  // start); the next poll tries again.
  auto db = open_read_only(path_, 200);
  if (!db) return db.status();
  auto incarnation = read_incarnation(**db);
  if (!incarnation) return incarnation.status();
  // One statement, three primary-key ranges (state's key, events' seq, dead_letters' seq).
  auto q = (*db)->prepare(
      "SELECT 0, value, NULL, NULL, NULL, NULL, NULL FROM state WHERE key = 'delivered_seq' "
      "UNION ALL SELECT * FROM (SELECT 1, seq, id, type, received_ms, NULL, NULL FROM events "
      "WHERE seq > ?1 ORDER BY seq LIMIT ?2) "
      "UNION ALL SELECT 2, seq, id, type, received_ms, reason, failed_ms FROM dead_letters "
      "WHERE seq > ?3");
  if (!q) return q.status();

  const bool same = !incarnation_.empty() && *incarnation == incarnation_;
  if (same) {
    // The same outbox reopened (after a read error, or a copy put back): carry on.
    poll->kind = Poll::Kind::kFollowing;
  } else {
    const bool replaced = !incarnation_.empty();
    poll->kind = replaced ? Poll::Kind::kNewIncarnation : Poll::Kind::kOpened;
    delivered_ = -1;
    dead_floor_ = 0;
    dead_reported_.clear();
    after_seq_ = 0;
    if (!replaced && !from_start_ && backlog_ > 0) {
      // Start at the backlog-th newest event: dead letters and events before it are old news.
      auto nth = (*db)->prepare("SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?");
      if (!nth) return nth.status();
      (*nth)->bind(1, static_cast<int64_t>(backlog_ - 1));
      auto row = (*nth)->step();
      if (!row) return row.status();
      // Fewer than backlog_ stored: all of them (after_seq_ stays 0).
      if (*row) after_seq_ = (*nth)->column_int64(0) - 1;
      Status old = skip_dead_letters_already_there(**db);
      if (!old) return old;
    } else if (!replaced && !from_start_) {
      // No backlog wanted: from the current end, dead letters included.
      Status old = skip_dead_letters_already_there(**db);
      if (!old) return old;
      auto max_seq = (*db)->query_int64("SELECT max(seq) FROM events", 0);
      if (!max_seq) return max_seq.status();
      after_seq_ = *max_seq;
    }
  }
  incarnation_ = std::move(*incarnation);
  from_start_ = false;
  db_ = std::move(*db);
  query_ = std::move(*q);
  return Status::ok();
}

Status OutboxTail::read(Poll* poll) {
  Statement& q = *query_;
  q.bind(1, after_seq_);
  q.bind(2, kTailRowsPerPoll);
  // Dead letters above the watermark as last seen: a new one cannot lie at or below it.
  q.bind(3, std::max<int64_t>({delivered_, dead_floor_, 0}));
  int64_t watermark = delivered_;
  std::vector<DeadLetter> dead;
  Status s = Status::ok();
  while (true) {
    auto row = q.step();
    if (!row) {
      s = row.status();
      break;
    }
    if (!*row) break;
    const int64_t kind = q.column_int64(0);
    if (kind == 0) {
      watermark = q.column_int64(1);
      continue;
    }
    StoredEvent e;
    e.seq = q.column_int64(1);
    e.id.assign(q.column_text(2));
    e.type.assign(q.column_text(3));
    e.received_ms = q.column_int64(4);
    if (kind == 1) {
      poll->accepted.push_back(std::move(e));
    } else {
      DeadLetter& d = dead.emplace_back();
      d.event = std::move(e);
      d.reason.assign(q.column_text(5));
      d.failed_ms = q.column_int64(6);
    }
  }
  // Ends the statement's read transaction: nothing is held between polls.
  q.reset();
  if (!s) return s;

  std::sort(poll->accepted.begin(), poll->accepted.end(),
            [](const StoredEvent& a, const StoredEvent& b) { return a.seq < b.seq; });
  if (!poll->accepted.empty()) after_seq_ = poll->accepted.back().seq;
  for (DeadLetter& d : dead) {
    if (dead_reported_.insert(d.event.seq).second) poll->dead_letters.push_back(std::move(d));
  }
  if (watermark != delivered_) {
    poll->delivered_through = watermark;
    delivered_ = watermark;
  }
  // Those the watermark has passed can no longer come back from the query.
  dead_reported_.erase(dead_reported_.begin(), dead_reported_.upper_bound(delivered_));
  return Status::ok();
}

}  // namespace edgesync::storage
