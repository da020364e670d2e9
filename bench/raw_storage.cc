#include "bench/raw_storage.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench/events.h"
#include "bench/harness.h"
#include "bench/disk_io.h"
#include "storage/checkpoint_policy.h"
#include "storage/outbox.h"
#include "storage/outbox_database.h"

namespace edgesync::bench {
namespace {

double thread_cpu_s() {
  struct rusage u {};
  ::getrusage(RUSAGE_THREAD, &u);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

void check(const Status& s, const char* what) {
  if (!s) throw std::runtime_error(std::string("raw sqlite ") + what + ": " + s.message());
}

}  // namespace

SyncResult raw_fdatasync(const std::string& path, double seconds) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  std::string rec(300, 'r');
  std::vector<double> lat;
  auto t0 = Clock::now();
  while (seconds_since(t0) < seconds) {
    auto a = Clock::now();
    if (::write(fd, rec.data(), rec.size()) != static_cast<ssize_t>(rec.size()) ||
        ::fdatasync(fd) != 0) {
      ::close(fd);
      throw std::runtime_error("write/fdatasync failed on " + path);
    }
    lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
  }
  double elapsed = seconds_since(t0);
  ::close(fd);
  SyncResult r;
  r.n = static_cast<int64_t>(lat.size());
  r.per_s = r.n / elapsed;
  r.p50_ms = percentile(lat, 0.50);
  r.p99_ms = percentile(lat, 0.99);
  return r;
}

void SqliteResult::merge(const SqliteResult& o) {
  rows += o.rows;
  cpu_s += o.cpu_s;
  elapsed_s += o.elapsed_s;
  counted_bytes = o.counted_bytes;
  written_bytes = written_bytes < 0 || o.written_bytes < 0 ? -1 : written_bytes + o.written_bytes;
  rows_per_s = rows / elapsed_s;
}

namespace {

// A database opened as the agent opens its outbox, inserting the bench's events one
// transaction at a time and checkpointing when the agent's writer would.
class RawOutbox {
 public:
  RawOutbox(const std::string& path, const std::string& id_prefix, int id_runs = 1)
      : events_{id_prefix},
        id_runs_(id_runs),
        // Same threshold as the agent's writer; the page size is set below.
        checkpoints_(storage::Outbox::Options{}.checkpoint_bytes) {
    auto opened = storage::open_outbox_database(path, "");
    if (!opened) {
      throw std::runtime_error("raw sqlite open " + path + ": " + opened.status().message());
    }
    db_ = std::move(*opened);
    auto prepared = db_->prepare(storage::kInsertEventSql);
    if (!prepared) throw std::runtime_error("raw sqlite prepare: " + prepared.status().message());
    insert_ = std::move(*prepared);
    auto page_size = db_->query_int64("PRAGMA page_size", 4096);
    if (!page_size) {
      throw std::runtime_error("raw sqlite page_size: " + page_size.status().message());
    }
    checkpoints_.set_page_size(*page_size);
  }

  int64_t counted_size() const { return events_.counted_size(); }

  // BEGIN IMMEDIATE, `rows` inserts, COMMIT (synced: WAL, synchronous=FULL), then a PASSIVE
  // checkpoint if one is due.
  void commit(int rows) {
    check(db_->exec("BEGIN IMMEDIATE"), "begin");
    for (int i = 0; i < rows; ++i, ++seq_) {
      // Alive until run() returns: bound without a copy.
      const int64_t k = seq_ - 1;
      const std::string id = events_.id(k % id_runs_, k / id_runs_);
      insert_->bind(1, seq_);
      insert_->bind_text(2, id);
      insert_->bind_text(3, kType);
      insert_->bind_text(4, kOccurredAt);
      insert_->bind(5, 1714566896789 + seq_);
      insert_->bind_blob(6, events_.data);
      check(insert_->run(), "insert");
    }
    check(db_->exec("COMMIT"), "commit");
    if (checkpoints_.due(*db_)) check(checkpoints_.run(*db_), "checkpoint");
  }

 private:
  EventFactory events_;
  // Rows take the ids of this many producers in turn, one each, as they reach the agent.
  int id_runs_;
  storage::CheckpointPolicy checkpoints_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<storage::Statement> insert_;  // after db_: destroyed before its database
  int64_t seq_ = 1;
};

// The calling thread's CPU and the process's write_bytes, from construction to finish().
class CostMeter {
 public:
  CostMeter() : cpu0_(thread_cpu_s()), written0_(proc_write_bytes(::getpid())) {}
  void finish(SqliteResult* r) const {
    r->cpu_s = thread_cpu_s() - cpu0_;
    const int64_t written1 = proc_write_bytes(::getpid());
    if (written0_ >= 0 && written1 >= 0) r->written_bytes = written1 - written0_;
  }

 private:
  double cpu0_;
  int64_t written0_;
};

}  // namespace

SqliteResult raw_sqlite(const std::string& path, int rows_per_txn, double seconds,
                        int64_t max_rows, int id_runs) {
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "sq%04d", rows_per_txn);
  RawOutbox db(path, prefix, id_runs);
  SqliteResult r;
  r.counted_bytes = db.counted_size();
  const CostMeter cost;
  auto t0 = Clock::now();
  while (seconds_since(t0) < seconds && r.rows < max_rows) {
    db.commit(rows_per_txn);
    r.rows += rows_per_txn;
  }
  r.elapsed_s = seconds_since(t0);
  r.rows_per_s = r.rows / r.elapsed_s;
  cost.finish(&r);
  return r;
}

SqliteResult raw_sqlite_paced(const std::string& path, int rate, double seconds) {
  RawOutbox db(path, "sqpaced");
  SqliteResult r;
  r.counted_bytes = db.counted_size();
  const int64_t n = std::max<int64_t>(1, std::llround(rate * seconds));
  const auto period = std::chrono::nanoseconds(1000000000LL / rate);
  const CostMeter cost;
  const auto start = Clock::now();
  for (int64_t i = 0; i < n; ++i) {
    // Slots from the steady clock, so a slow commit does not shift every later one.
    std::this_thread::sleep_until(start + i * period);
    db.commit(1);
    ++r.rows;
  }
  r.elapsed_s = seconds_since(start);
  r.rows_per_s = r.rows / r.elapsed_s;
  cost.finish(&r);
  return r;
}

double SqliteResult::cpu_us_per_row() const { return rows > 0 ? 1e6 * cpu_s / rows : -1; }

}  // namespace edgesync::bench
