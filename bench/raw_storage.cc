#include "bench/raw_storage.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <stdexcept>
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

SqliteResult raw_sqlite(const std::string& path, int rows_per_txn, double seconds,
                        int64_t max_rows) {
  auto opened = storage::open_outbox_database(path, "");
  if (!opened) throw std::runtime_error("raw sqlite open " + path + ": " + opened.status().message());
  storage::Database& db = **opened;
  auto prepared = db.prepare(storage::kInsertEventSql);
  if (!prepared) throw std::runtime_error("raw sqlite prepare: " + prepared.status().message());
  storage::Statement& ins = **prepared;
  // Checkpoints when the agent's writer would (same threshold, same page size).
  storage::CheckpointPolicy checkpoints(storage::Outbox::Options{}.checkpoint_bytes);
  auto page_size = db.query_int64("PRAGMA page_size", 4096);
  if (!page_size) throw std::runtime_error("raw sqlite page_size: " + page_size.status().message());
  checkpoints.set_page_size(*page_size);

  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "sq%04d", rows_per_txn);
  EventFactory f{prefix};
  SqliteResult r;
  r.counted_bytes = f.counted_size();
  int64_t seq = 1;
  const double cpu0 = thread_cpu_s();
  const int64_t written0 = proc_write_bytes(::getpid());
  auto t0 = Clock::now();
  while (seconds_since(t0) < seconds && r.rows < max_rows) {
    check(db.exec("BEGIN IMMEDIATE"), "begin");
    for (int i = 0; i < rows_per_txn; ++i, ++seq) {
      const std::string id = f.id(0, seq);  // alive until run() returns: bound without a copy
      ins.bind(1, seq);
      ins.bind_text(2, id);
      ins.bind_text(3, kType);
      ins.bind_text(4, kOccurredAt);
      ins.bind(5, 1714566896789 + seq);
      ins.bind_blob(6, f.data);
      check(ins.run(), "insert");
    }
    check(db.exec("COMMIT"), "commit");
    r.rows += rows_per_txn;
    if (checkpoints.due(db)) check(checkpoints.run(db), "checkpoint");
  }
  r.elapsed_s = seconds_since(t0);
  r.rows_per_s = r.rows / r.elapsed_s;
  r.cpu_s = thread_cpu_s() - cpu0;
  const int64_t written1 = proc_write_bytes(::getpid());
  if (written0 >= 0 && written1 >= 0) r.written_bytes = written1 - written0;
  return r;
}

}  // namespace edgesync::bench
