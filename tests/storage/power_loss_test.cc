// Power loss at any write or sync: what the outbox acknowledged is still there after the
// reboot, the database is sound, and the outbox carries on from where it was.
//
// Each iteration opens an outbox on the crash VFS (tests/storage/crash_vfs.h) in a fresh
// directory, runs concurrent producers and a publisher-like thread moving the watermark, cuts
// the power at a write or sync chosen at random, closes the outbox on the dead disk, rewrites
// the files as the disk could have left them, and reopens with SQLite's default VFS.
//
// EDGESYNC_POWER_LOSS_ITERATIONS: how many (default 150, about 40 s on a two-core ARM box with
// an ext4 disk: the time goes to real fsyncs);
// EDGESYNC_POWER_LOSS_SEED: the first iteration's seed (each next one adds 1). A failure names
// its iteration's seed: rerun it alone with that seed and ITERATIONS=1.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/outbox.h"
#include "storage/sqlite.h"
#include "tests/storage/crash_vfs.h"
#include "tests/storage/outbox_test_util.h"

namespace edgesync::test {
namespace {

using Outcome = storage::AppendResult::Outcome;
using Clock = std::chrono::steady_clock;

constexpr int kProducers = 3;
constexpr int kEventsPerProducer = 40;
// Nothing in the outbox may take this long on a dead disk; past it the test gives up.
constexpr auto kHangLimit = std::chrono::seconds(20);

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : fallback;
}

// A hang cannot be recovered from inside the process: say which seed, then stop.
[[noreturn]] void hung(const char* what, uint64_t seed) {
  std::fprintf(stderr,
               "power loss test: %s did not return within %llds (seed %llu: rerun with "
               "EDGESYNC_POWER_LOSS_SEED=%llu EDGESYNC_POWER_LOSS_ITERATIONS=1)\n",
               what, static_cast<long long>(kHangLimit.count()),
               static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stderr);
  std::abort();
}

struct Sent {
  std::string type;
  std::string data;
};

// What producers were told, as they would remember it.
struct Ledger {
  std::mutex mu;
  std::map<std::string, int64_t> acked;  // id -> seq: kStored or kDuplicate
  std::set<int64_t> acked_seqs;
  int64_t contiguous = 0;  // every seq 1..contiguous was acknowledged
  int64_t refused = 0;
  std::vector<std::string> errors;

  void record(const std::string& id, const storage::AppendResult& r) {
    std::lock_guard<std::mutex> lock(mu);
    if (r.outcome != Outcome::kStored && r.outcome != Outcome::kDuplicate) {
      ++refused;
      return;
    }
    auto [it, fresh] = acked.emplace(id, r.seq);
    if (!fresh && it->second != r.seq) {
      errors.push_back(id + " acknowledged with seq " + std::to_string(it->second) + " and " +
                       std::to_string(r.seq));
    }
    if (fresh && !acked_seqs.insert(r.seq).second) {
      errors.push_back("seq " + std::to_string(r.seq) + " acknowledged for two ids");
    }
    while (acked_seqs.count(contiguous + 1)) ++contiguous;
  }
};

struct Figures {
  int64_t iterations = 0;
  int64_t boots = 0;  // each ends in a power cut
  int64_t acknowledged = 0;
  int64_t lost = 0;
  int64_t unacknowledged_on_disk = 0;  // refused or in flight at the cut, found after reboot
  int64_t cut_at_write = 0;
  int64_t cut_at_sync = 0;
  int64_t cut_after_run = 0;  // the planned point was not reached
  int64_t cut_during_open = 0;
  int64_t transient_sync_failures = 0;  // a failed sync the outbox lived through before the cut
  int64_t torn_pages = 0;
  int64_t entries_lost = 0;
  int64_t sectors_dropped = 0;
  int64_t watermark_moved = 0;  // iterations whose reboot found a watermark above 0
};

struct Plan {
  CrashVfs::CutAt at = CrashVfs::CutAt::kNever;
  int64_t n = 0;
  int64_t transient_sync_failure = 0;  // this sync fails once before the cut (0: none)

  std::string describe() const {
    std::string d = at == CrashVfs::CutAt::kWrite  ? "power cut at write " + std::to_string(n)
                    : at == CrashVfs::CutAt::kSync ? "power cut at sync " + std::to_string(n)
                                                   : std::string("power cut after the run");
    if (transient_sync_failure) {
      d += ", sync " + std::to_string(transient_sync_failure) + " failing once before";
    }
    return d;
  }
};

// What one iteration accumulates over its boots.
struct History {
  std::map<std::string, Sent> sent;
  Ledger ledger;
  int64_t max_marked = 0;
};

class PowerLoss : public ::testing::Test {
 protected:
  // One iteration in a fresh directory: one boot, or two (the second crashing an outbox that
  // recovered from the first), each ending in a power cut and reboot; then verify().
  // `calibration`: one boot whose power goes only after the producers are done, to measure
  // span_.
  void run_iteration(uint64_t seed, Figures* fig, bool calibration = false);
  void boot(uint64_t seed, int number, const std::string& path, const Plan& plan,
            std::mt19937_64& rng, History& h, Figures* fig);
  void verify(const std::string& path, uint64_t seed, History& h, Figures* fig);

  CrashVfs::Counters span_;  // writes and syncs of a whole boot
};

void PowerLoss::run_iteration(uint64_t seed, Figures* fig, bool calibration) {
  SCOPED_TRACE("seed " + std::to_string(seed) + (calibration ? " (a calibration run)" : "") +
               ": rerun with EDGESYNC_POWER_LOSS_SEED=" + std::to_string(seed) +
               " EDGESYNC_POWER_LOSS_ITERATIONS=1");
  std::mt19937_64 rng(seed);
  TempPath dir;
  const std::string path = dir.file("outbox.db");
  History h;
  const int boots = calibration || rng() % 3 ? 1 : 2;
  for (int b = 0; b < boots && !HasFailure(); ++b) {
    Plan plan;
    if (!calibration) {
      plan.at = rng() % 2 ? CrashVfs::CutAt::kWrite : CrashVfs::CutAt::kSync;
      const int64_t range = plan.at == CrashVfs::CutAt::kWrite ? span_.writes : span_.syncs;
      plan.n = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(std::max<int64_t>(range, 1)));
      if (rng() % 4 == 0) {
        plan.transient_sync_failure =
            1 +
            static_cast<int64_t>(rng() % static_cast<uint64_t>(std::max<int64_t>(span_.syncs, 1)));
      }
    }
    boot(seed, b, path, plan, rng, h, fig);
  }
  ++fig->iterations;
  if (!HasFailure()) verify(path, seed, h, fig);
}

void PowerLoss::boot(uint64_t seed, int number, const std::string& path, const Plan& plan,
                     std::mt19937_64& rng, History& h, Figures* fig) {
  SCOPED_TRACE("boot " + std::to_string(number + 1) + ": " + plan.describe());
  CrashVfs& vfs = CrashVfs::get();

  // The events, made up front so that what was sent is known exactly.
  std::vector<std::vector<storage::AppendRequest>> work(kProducers);
  for (int p = 0; p < kProducers; ++p) {
    for (int i = 0; i < kEventsPerProducer; ++i) {
      storage::AppendRequest r;
      r.id = "s" + std::to_string(seed) + "-b" + std::to_string(number) + "-p" + std::to_string(p) +
             "-" + std::to_string(i);
      r.type = rng() % 2 ? "pos.sale" : "inventory.adjusted";
      r.received_ms = 1700000000000 + i;
      // Mostly small, now and then larger than a page (overflow pages, several WAL frames).
      const size_t size = rng() % 5 == 0 ? 600 + rng() % 3000 : 1 + rng() % 200;
      r.data.resize(size);
      for (auto& c : r.data) c = static_cast<char>(rng());
      h.sent[r.id] = {r.type, r.data};
      work[p].push_back(std::move(r));
    }
  }

  storage::Outbox::Options o;
  o.path = path;
  o.vfs = CrashVfs::kName;
  // Small checkpoints so the cut also lands inside checkpoints and WAL restarts.
  const int64_t checkpoints[] = {16 << 10, 64 << 10, 256 << 10, 8 << 20};
  o.checkpoint_bytes = checkpoints[rng() % 4];
  o.watermark_flush = std::chrono::milliseconds(2 + rng() % 15);
  o.retry_after = std::chrono::milliseconds(10 + rng() % 100);
  const uint64_t thread_seed = rng();

  vfs.arm(plan.at, plan.n);
  if (plan.transient_sync_failure) vfs.fail_sync_once(plan.transient_sync_failure);
  auto opened = storage::Outbox::open(o, inline_dispatch());
  if (!opened && !vfs.power_is_cut() && plan.transient_sync_failure) {
    // The failed sync stopped the start; the service manager starts the agent again.
    opened = storage::Outbox::open(o, inline_dispatch());
  }
  Ledger& ledger = h.ledger;
  if (!opened) {
    // The power went while the database was being created or opened.
    ASSERT_TRUE(vfs.power_is_cut()) << opened.status().to_string();
    ++fig->cut_during_open;
  } else {
    std::unique_ptr<storage::Outbox> box = std::move(*opened);
    std::atomic<bool> producers_done{false};
    std::vector<std::thread> threads;
    for (int p = 0; p < kProducers; ++p) {
      threads.emplace_back([&, p] {
        std::mt19937_64 prng(thread_seed + p);
        std::vector<std::string> mine;
        auto append = [&](const storage::AppendRequest& req) {
          auto done = std::make_shared<std::promise<storage::AppendResult>>();
          auto f = done->get_future();
          auto cb = [done](const storage::AppendResult& r) { done->set_value(r); };
          if (p == 0) {
            // The agent's event loop: queue, then commit (a lone event on this thread).
            box->append_deferred(req, cb);
            box->commit_queued();
          } else {
            box->append(req, cb);
          }
          if (f.wait_for(kHangLimit) != std::future_status::ready) hung("append", seed);
          auto r = f.get();
          ledger.record(req.id, r);
          return r;
        };
        for (const auto& req : work[p]) {
          if (!mine.empty() && prng() % 10 == 0) {
            // A producer that resends: the outbox must answer with the first seq.
            append(work[p][prng() % mine.size()]);
          }
          // A refused event is resent a little later, as producers do, while the disk lives.
          for (int attempt = 0; attempt < 3; ++attempt) {
            if (append(req).outcome != Outcome::kStorageError || vfs.power_is_cut()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(5 + prng() % 40));
          }
          mine.push_back(req.id);
        }
      });
    }
    std::thread publisher([&] {
      // Marks delivered only what producers were told is stored, as the hub would ack it.
      std::mt19937_64 wrng(thread_seed ^ 0x9e3779b97f4a7c15ULL);
      std::vector<storage::StoredEvent> got;
      while (!producers_done) {
        std::this_thread::sleep_for(std::chrono::microseconds(500 + wrng() % 3000));
        int64_t prefix;
        {
          std::lock_guard<std::mutex> lock(ledger.mu);
          prefix = ledger.contiguous;
        }
        if (prefix > h.max_marked) {
          h.max_marked += 1 + static_cast<int64_t>(wrng() % (prefix - h.max_marked));
          box->mark_delivered(h.max_marked);
        }
        box->read_pending(h.max_marked, 32, &got);  // the publisher's reader, while it can
      }
    });
    for (auto& t : threads) t.join();
    producers_done = true;
    publisher.join();

    vfs.cut_power();  // if the planned point was not reached
    auto closed = std::async(std::launch::async, [&box] { box->close(); });
    if (closed.wait_for(kHangLimit) != std::future_status::ready) hung("close", seed);
    box.reset();
  }
  if (plan.at == CrashVfs::CutAt::kNever) {
    const auto used = vfs.counters();
    span_.writes = span_.writes ? std::min(span_.writes, used.writes) : used.writes;
    span_.syncs = span_.syncs ? std::min(span_.syncs, used.syncs) : used.syncs;
  }
  ASSERT_EQ(vfs.open_files(), 0) << "a connection on the crash VFS outlived the outbox";

  const bool transient_hit =
      plan.transient_sync_failure && vfs.counters().syncs >= plan.transient_sync_failure;
  CrashVfs::RebootReport report = vfs.reboot(rng);
  ++fig->boots;
  if (!report.cut_by_plan) {
    ++fig->cut_after_run;
  } else if (plan.at == CrashVfs::CutAt::kWrite) {
    ++fig->cut_at_write;
  } else {
    ++fig->cut_at_sync;
  }
  if (transient_hit) ++fig->transient_sync_failures;
  fig->torn_pages += report.torn_pages;
  fig->entries_lost += report.entries_lost;
  fig->sectors_dropped += report.sectors_dropped;
  std::lock_guard<std::mutex> lock(ledger.mu);
  for (const auto& e : ledger.errors) ADD_FAILURE() << "during the run: " << e;
  ledger.errors.clear();
}

void PowerLoss::verify(const std::string& path, uint64_t seed, History& h, Figures* fig) {
  const Ledger& ledger = h.ledger;
  const std::map<std::string, Sent>& sent = h.sent;
  const int64_t max_marked = h.max_marked;
  fig->acknowledged += static_cast<int64_t>(ledger.acked.size());
  if (!std::filesystem::exists(path)) {
    // Only possible while nothing was ever synced.
    EXPECT_TRUE(ledger.acked.empty())
        << "the database file is gone after " << ledger.acked.size() << " acknowledged events";
    fig->lost += static_cast<int64_t>(ledger.acked.size());
  } else {
    // Before the outbox sees the file (it would move a damaged one aside).
    storage::Database::Options dbo;
    dbo.create = false;
    auto db = storage::Database::open(path, dbo);
    ASSERT_TRUE(db.is_ok()) << db.status().to_string();
    auto check = (*db)->prepare("PRAGMA integrity_check");
    ASSERT_TRUE(check.is_ok()) << check.status().to_string();
    std::string verdict;
    while (true) {
      auto row = (*check)->step();
      ASSERT_TRUE(row.is_ok()) << row.status().to_string();
      if (!*row) break;
      verdict += std::string((*check)->column_text(0)) + "\n";
    }
    ASSERT_EQ(verdict, "ok\n") << "PRAGMA integrity_check after the reboot";
  }

  storage::Outbox::Options o;
  o.path = path;
  auto opened = storage::Outbox::open(o, inline_dispatch());
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  auto& box = **opened;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    EXPECT_EQ(entry.path().filename().string().find("quarantined"), std::string::npos)
        << "the outbox moved the rebooted database aside: " << entry.path();
  }

  std::vector<storage::StoredEvent> all;
  ASSERT_TRUE(box.read_pending(0, 1 << 20, &all));
  const auto stats = box.stats();
  const int64_t n = static_cast<int64_t>(all.size());
  std::map<std::string, int64_t> on_disk;
  for (int64_t i = 0; i < n; ++i) {
    const auto& e = all[static_cast<size_t>(i)];
    EXPECT_EQ(e.seq, i + 1) << "seqs must be 1..N without gaps";
    on_disk[e.id] = e.seq;
    auto s = sent.find(e.id);
    if (s == sent.end()) {
      ADD_FAILURE() << "seq " << e.seq << " holds an id never sent: " << e.id;
      continue;
    }
    EXPECT_EQ(e.type, s->second.type) << e.id;
    EXPECT_TRUE(e.data == s->second.data)
        << e.id << ": data differs (" << e.data.size() << " bytes on disk, "
        << s->second.data.size() << " sent)";
    if (!ledger.acked.count(e.id)) ++fig->unacknowledged_on_disk;
  }
  for (const auto& [id, seq] : ledger.acked) {
    auto it = on_disk.find(id);
    if (it == on_disk.end() || it->second != seq) {
      ++fig->lost;
      ADD_FAILURE() << "acknowledged " << id << " seq " << seq << " is "
                    << (it == on_disk.end() ? "missing" : "at seq " + std::to_string(it->second));
    }
  }
  EXPECT_EQ(stats.next_seq, n + 1);

  // The watermark as persisted: never past the events, never past what was marked.
  const int64_t w = stats.delivered_seq;
  EXPECT_LE(w, n);
  EXPECT_LE(w, max_marked);
  EXPECT_GE(w, 0);
  if (w > 0) ++fig->watermark_moved;
  std::vector<storage::StoredEvent> pending;
  ASSERT_TRUE(box.read_pending(w, 1 << 20, &pending));
  ASSERT_EQ(static_cast<int64_t>(pending.size()), std::max<int64_t>(0, n - w));
  for (size_t i = 0; i < pending.size(); ++i) {
    EXPECT_EQ(pending[i].seq, w + 1 + static_cast<int64_t>(i));
    EXPECT_EQ(pending[i].id, all[static_cast<size_t>(w) + i].id);
  }

  // The outbox carries on: a new event continues the seqs, every stored id is a duplicate.
  auto fresh = append_wait(box, event("after-reboot-" + std::to_string(seed)));
  EXPECT_EQ(fresh.outcome, Outcome::kStored) << fresh.message;
  EXPECT_EQ(fresh.seq, n + 1);
  std::vector<std::pair<std::future<storage::AppendResult>, int64_t>> again;
  for (const auto& [id, seq] : on_disk) {
    auto p = std::make_shared<std::promise<storage::AppendResult>>();
    again.emplace_back(p->get_future(), seq);
    const Sent& s = sent.at(id);
    storage::AppendRequest r;
    r.id = id;
    r.type = s.type;
    r.data = s.data;
    box.append(std::move(r), [p](const storage::AppendResult& res) { p->set_value(res); });
  }
  for (auto& [f, seq] : again) {
    if (f.wait_for(kHangLimit) != std::future_status::ready) hung("re-append", seed);
    auto r = f.get();
    EXPECT_EQ(r.outcome, Outcome::kDuplicate) << r.message;
    EXPECT_EQ(r.seq, seq);
  }
  box.close();
}

TEST_F(PowerLoss, AcknowledgedEventsSurviveAPowerCutAtAnyWriteOrSync) {
  const int64_t iterations = env_int("EDGESYNC_POWER_LOSS_ITERATIONS", 150);
  const uint64_t first_seed = static_cast<uint64_t>(env_int(
      "EDGESYNC_POWER_LOSS_SEED", static_cast<int64_t>(std::random_device()() % 1000000000)));
  std::printf("power loss: %lld iterations from seed %llu\n", static_cast<long long>(iterations),
              static_cast<unsigned long long>(first_seed));
  const auto start = Clock::now();

  // How many writes and syncs a whole boot makes: the cut is drawn from that range (the
  // smaller of two runs: how group commit batches varies from run to run).
  Figures calibration;
  for (int i = 0; i < 2; ++i) {
    run_iteration(first_seed + i, &calibration, /*calibration=*/true);
    ASSERT_FALSE(HasFailure());
  }
  std::printf("power loss: a boot makes about %lld writes and %lld syncs\n",
              static_cast<long long>(span_.writes), static_cast<long long>(span_.syncs));

  Figures fig;
  for (int64_t i = 0; i < iterations && !HasFailure(); ++i) {
    run_iteration(first_seed + static_cast<uint64_t>(i), &fig);
  }

  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  auto ll = [](int64_t v) { return static_cast<long long>(v); };
  std::printf(
      "power loss: %lld iterations (%lld power cuts) in %.1f s; %lld events acknowledged, %lld "
      "lost, %lld unacknowledged found on disk; cut at a write %lld, at a sync %lld, after the "
      "run %lld (during open %lld); %lld transient sync failures lived through before a cut; "
      "%lld torn pages or frames, %lld unsynced sectors dropped, %lld new directory entries "
      "lost; watermark above 0 after %lld iterations\n",
      ll(fig.iterations), ll(fig.boots), secs, ll(fig.acknowledged), ll(fig.lost),
      ll(fig.unacknowledged_on_disk), ll(fig.cut_at_write), ll(fig.cut_at_sync),
      ll(fig.cut_after_run), ll(fig.cut_during_open), ll(fig.transient_sync_failures),
      ll(fig.torn_pages), ll(fig.sectors_dropped), ll(fig.entries_lost), ll(fig.watermark_moved));
  EXPECT_EQ(fig.lost, 0);
  EXPECT_EQ(fig.iterations, iterations);
  // The cut must land where it matters, not only after the run.
  if (iterations >= 50) {
    EXPECT_GT(fig.cut_at_write, iterations / 5);
    EXPECT_GT(fig.cut_at_sync, iterations / 5);
    EXPECT_GT(fig.torn_pages, 0);
  }
}

}  // namespace
}  // namespace edgesync::test
