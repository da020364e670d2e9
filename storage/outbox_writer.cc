#include "storage/outbox_writer.h"

#include <algorithm>

#include "platform/clock.h"
#include "platform/log.h"
#include "storage/outbox_database.h"
#include "storage/schema.h"

namespace edgesync::storage {

Outbox::Writer::Writer(const Options& o)
    : options(o),
      limits{o.max_bytes, o.keep_delivered, o.max_dead_letters, o.dead_letter_max_age},
      budget(OutboxBudget::Limits{o.max_bytes, o.keep_delivered, o.prune_step}),
      checkpoints(o.checkpoint_bytes) {}

void Outbox::Writer::set_limits(const Limits& l) {
  if (l.max_dead_letters < limits.max_dead_letters ||
      l.dead_letter_max_age < limits.dead_letter_max_age) {
    dead_letter_prune_wanted = true;
  }
  limits = l;
  budget.set_limits(OutboxBudget::Limits{l.max_bytes, l.keep_delivered, options.prune_step});
}

Status Outbox::Writer::open() {
  close();
  Status s = open_connection();
  // Statements first, then the connection: a failed (re)open leaves nothing open. It is retried
  // every retry_after while storage is down; a leak here cost a connection, its descriptors
  // and its cache each time.
  if (!s) close();
  return s;
}

Status Outbox::Writer::open_connection() {
  auto opened = open_outbox_database(options.path, options.vfs);
  if (!opened) return opened.status();
  db = std::move(*opened);
  auto& d = *db;
  auto page_size = d.query_int64("PRAGMA page_size", 4096);
  if (!page_size) return page_size.status();
  checkpoints.set_page_size(*page_size);
  budget.set_page_size(*page_size);
  // Dead letters are found by id: a request refused on arrival is not recorded twice when its
  // file is read again after a crash. An index, not a schema version: an earlier release of
  // the agent (a package rolled back) opens the file as its own and ignores the index.
  Status s = d.exec("CREATE INDEX IF NOT EXISTS dead_letters_id ON dead_letters(id)");
  if (!s) return s;
  s = rows.prepare(d);
  if (!s) return s;
  auto incarnation_r = read_incarnation(d);
  if (!incarnation_r) return incarnation_r.status();
  incarnation = std::move(*incarnation_r);

  auto delivered_r = d.query_int64("SELECT value FROM state WHERE key = 'delivered_seq'", 0);
  if (!delivered_r) return delivered_r.status();
  auto max_seq = d.query_int64("SELECT max(seq) FROM events", 0);
  if (!max_seq) return max_seq.status();
  auto min_seq = d.query_int64("SELECT min(seq) FROM events", 0);
  if (!min_seq) return min_seq.status();
  delivered = *delivered_r;
  auto held = d.query_int64("SELECT value FROM state WHERE key = 'delivery_held_since'", 0);
  if (!held) return held.status();
  held_since_ms = *held;
  next_seq = std::max(*max_seq, delivered) + 1;
  auto refusal_key = rows.next_refusal_key();
  if (!refusal_key) return refusal_key.status();
  next_refusal_key = *refusal_key;
  s = budget.load(rows, delivered, next_seq, *min_seq);
  if (!s) return s;
  if (budget.calibration_due()) {
    s = budget.calibrate(d);
    if (!s) return s;
  }
  // Dead letters past their age go at start too, not only when new ones come.
  s = db->exec("BEGIN IMMEDIATE");
  if (s) s = prune_dead_letters();
  if (s) s = db->exec("COMMIT");
  if (!s) return s;
  dead_letter_prune_wanted = false;
  if (failed) {
    platform::log(platform::LogLevel::kNotice, "storage_recovered",
                  "outbox writable again after: " + failure);
  }
  failed = false;
  return Status::ok();
}

void Outbox::Writer::close() {
  rows.reset();
  db.reset();
}

void Outbox::Writer::fail(const Status& s) {
  if (db && db->in_transaction()) db->exec("ROLLBACK");
  // Drop the connection: after a failed sync the page cache cannot be trusted, and a fresh
  // connection makes SQLite re-read the WAL and discard the uncommitted transaction.
  close();
  // Once per spell of failures: the writer retries every retry_after, each failing the same way.
  if (!failed) {
    platform::log(platform::LogLevel::kError, "storage_error",
                  "outbox write failed, producers get storage_error until it recovers: " +
                      s.to_string(),
                  {{"path", options.path}});
  }
  failed = true;
  corrupt = s.code() == Status::Code::kCorruption;
  failure = s.to_string();
  failed_at = Clock::now();
}

bool Outbox::Writer::writable_now() {
  if (!failed) return true;
  if (Clock::now() - failed_at < options.retry_after) return false;
  if (Status s = open(); !s) {
    fail(s);
    return false;
  }
  return true;
}

namespace {

// Steady traffic commits a few events per round; above this many entries a scratch vector is
// freed after its round.
constexpr size_t kScratchKept = 256;

template <typename T>
void release_if_large(std::vector<T>& v) {
  if (v.empty() && v.capacity() > kScratchKept) std::vector<T>().swap(v);
}

}  // namespace

void Outbox::Writer::release_large_scratch() {
  release_if_large(batch_scratch);
  release_if_large(dead_scratch);
  release_if_large(results_scratch);
  outcomes.clear();
  release_if_large(outcomes);
}

Outbox::Writer::Written Outbox::Writer::write_round(std::vector<Pending>& batch,
                                                    const std::vector<DeadLetter>& dead,
                                                    int64_t watermark,
                                                    std::vector<Completion>* results) {
  results->clear();
  outcomes.clear();
  Written w;
  w.writable = writable_now();
  if (w.writable) {
    Status s = commit(batch, dead, watermark);
    if (s) {
      for (const auto& r : outcomes) w.stored_any |= r.outcome == AppendResult::Outcome::kStored;
    } else {
      fail(s);
      w.writable = false;
    }
  }
  if (w.writable) {
    for (size_t i = 0; i < batch.size(); ++i) {
      results->emplace_back(std::move(batch[i].done), std::move(outcomes[i]));
    }
  } else {
    // Nothing of this round is on disk. Appends fail now (the producer decides whether to
    // retry); dead letters wait for the next attempt, the watermark stays in memory.
    refuse_all(batch, results);
  }
  return w;
}

void Outbox::Writer::refuse_all(std::vector<Pending>& batch, std::vector<Completion>* out) const {
  for (auto& p : batch) {
    AppendResult r;
    r.outcome = AppendResult::Outcome::kStorageError;
    r.message = "storage failed, event not stored (" + failure +
                "); retry later, and check disk space and the agent log";
    out->emplace_back(std::move(p.done), std::move(r));
  }
}

// One transaction for the whole round: appends, dead letters, watermark. On failure nothing of
// it is on disk and the writer's counters are as they were.
Status Outbox::Writer::commit(const std::vector<Pending>& batch,
                              const std::vector<DeadLetter>& dead, int64_t watermark) {
  const int64_t seq_before = next_seq;
  const int64_t refusal_key_before = next_refusal_key;
  const int64_t delivered_before = delivered;
  const OutboxBudget budget_before = budget;
  Status s = db->exec("BEGIN IMMEDIATE");
  // The watermark first: room freed by deliveries counts for this round's appends.
  int64_t freed = 0;
  bool refused_any = false;
  if (s && watermark > delivered) {
    auto moved = rows.sum_between(delivered, watermark);
    if (moved) freed = *moved;
    if (!moved) s = moved.status();
    if (s) s = rows.set_delivered(watermark);
    if (s) {
      delivered = watermark;
      budget.delivered(freed);
    }
  }
  for (size_t i = 0; s && i < batch.size(); ++i) {
    const AppendRequest& req = batch[i].request;
    AppendResult& r = outcomes.emplace_back();
    if (!req.refused_reason.empty()) {
      s = keep_refusal(req, &r);
      refused_any = true;
      continue;
    }
    const int64_t size = counted_size(req);
    if (!budget.fits(size)) {
      auto existing = rows.lookup(req.id);
      if (!existing) {
        s = existing.status();
        break;
      }
      if (*existing > 0) {  // a resubmission is a duplicate, full or not
        r.outcome = AppendResult::Outcome::kDuplicate;
        r.seq = *existing;
        continue;
      }
      s = budget.make_room(rows, delivered, size);
      if (!s) break;
      if (!budget.fits(size)) {
        r.outcome = AppendResult::Outcome::kOutboxFull;
        r.message = budget.full_message();
        continue;
      }
    }
    s = rows.insert(next_seq, req);
    if (!s) break;
    if (db->changes() == 1) {
      r.outcome = AppendResult::Outcome::kStored;
      r.seq = next_seq++;
      budget.stored(size);
    } else {
      auto existing = rows.lookup(req.id);
      if (!existing) {
        s = existing.status();
      } else {
        r.outcome = AppendResult::Outcome::kDuplicate;
        r.seq = *existing;
      }
    }
  }
  for (size_t i = 0; s && i < dead.size(); ++i) s = rows.insert_dead_letter(dead[i]);
  // Refusals are bounded as the others are, by max_dead_letters and dead_letter_max_age.
  if (s && (!dead.empty() || refused_any)) s = prune_dead_letters();
  if (s) s = db->exec("COMMIT");
  if (!s) {
    next_seq = seq_before;
    next_refusal_key = refusal_key_before;
    budget = budget_before;
    delivered = delivered_before;
    outcomes.clear();
    return s;
  }
  // Outside the transaction: a failed reading keeps the last ratio, it loses nothing.
  if (budget.calibration_due()) budget.calibrate(*db);
  return Status::ok();
}

Status Outbox::Writer::keep_refusal(const AppendRequest& req, AppendResult* r) {
  auto existing = rows.lookup_refusal(req.id);
  if (!existing) return existing.status();
  if (*existing < 0) {  // its file read again after a crash before the file was moved
    r->outcome = AppendResult::Outcome::kDuplicate;
    r->seq = *existing;
    return Status::ok();
  }
  DeadLetter d;
  d.event = stored_event(next_refusal_key, req);
  d.reason = req.refused_reason;
  d.failed_ms = req.received_ms;
  Status s = rows.insert_dead_letter(d);
  if (!s) return s;
  r->outcome = AppendResult::Outcome::kStored;
  r->seq = next_refusal_key--;
  return Status::ok();
}

Status Outbox::Writer::prune_dead_letters() {
  const int64_t max_age_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(limits.dead_letter_max_age).count();
  auto pruned = rows.prune_dead_letters(std::max<int64_t>(limits.max_dead_letters, 1),
                                        platform::unix_ms() - max_age_ms);
  return pruned.status();
}

bool Outbox::Writer::prune_due() const { return db && budget.prune_due(delivered); }

void Outbox::Writer::prune(bool producers_waiting) {
  Status s = budget.prune(*db, rows, delivered, producers_waiting);
  if (!s) fail(s);
}

void Outbox::Writer::prune_dead_letters_to_limits() {
  if (!dead_letter_prune_due()) return;
  // A commit of its own, synced as any: a crash before it only brings the dead letters back,
  // and the next prune takes them again.
  Status s = db->exec("BEGIN IMMEDIATE");
  if (s) s = prune_dead_letters();
  if (s) s = db->exec("COMMIT");
  if (!s) {
    fail(s);
    return;
  }
  dead_letter_prune_wanted = false;
}

bool Outbox::Writer::checkpoint_due() const { return db && checkpoints.due(*db); }

void Outbox::Writer::checkpoint() {
  if (!checkpoint_due()) return;
  Status s = checkpoints.run(*db);
  if (!s) fail(s);
}

}  // namespace edgesync::storage
