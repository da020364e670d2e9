// Crash at every sync point: the release agent is SIGKILLed right before and right after each of
// its first syncs of the outbox (the database file and its WAL), by an LD_PRELOAD shim
// (tests/support/kill_at_sync.c) so the binary under test is the one that ships. After a restart
// without the shim the contract must hold: every acknowledged event is in the outbox with its
// seq, seqs are gap-free, a resent id is a duplicate with its original seq, the hub gets every
// acknowledged event, an event in flight at the kill is there once or not at all, and an ok
// reply never precedes the sync of the commit that holds the event.
//
// Each kill point runs a fresh agent (own directory and device id) against the fixture's broker:
//   startup     the syncs made while the outbox is created, before the socket accepts;
//   lockstep    one producer, one event at a time: each reply ends one commit (one sync), so
//               the sync to be killed belongs to the event on the wire;
//   watermark   1.3 s without appends: the delivered watermark is committed on its own;
//   concurrent  3 producers at once, each waiting for its reply: commits of one to three events;
//   shutdown    SIGTERM: the watermark is committed and the WAL checkpointed into the database
//               file; the kill comes at that file's sync;
//   checkpoint  big events until the WAL passes 8 MiB: the sync of the database file when the
//               WAL is checkpointed into it (EDGESYNC_CRASH_SYNC_CHECKPOINT=0 leaves it out).
// EDGESYNC_CRASH_SYNC_POINTS=N kills at syncs 1..N of the whole run (up to the last sync at
// shutdown) instead of the default span (startup, the lock-step commits, the watermark and a few
// group commits); the number of group commits varies, so a point near the end that a run does
// not reach is reported, not failed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/hub_fixture.h"
#include "tests/support/workload.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kLockstepEvents = 3;
constexpr size_t kProducers = 3;
constexpr size_t kEventsPerProducer = 40;
// ~200 KB each: the outbox checkpoints its WAL at 8 MiB, near the 40th.
constexpr size_t kMaxBigEvents = 150;
// Counted syncs: the database file, its rollback journal while it is created, and its WAL.
constexpr const char* kOutboxFiles = "outbox.db";
constexpr const char* kDatabaseFile = "/outbox.db$";

// The counted syncs in the shim's log so far, and whether (and where) it killed.
struct SyncLog {
  long syncs = 0;
  long killed_at = 0;
  std::string kill_when;
  std::vector<std::string> lines;
};

bool is_database_file(const std::string& log_line) {
  return log_line.size() >= 10 && log_line.compare(log_line.size() - 10, 10, "/outbox.db") == 0;
}

SyncLog read_sync_log(const std::string& path) {
  SyncLog log;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("kill ", 0) == 0) {
      std::istringstream ss(line.substr(5));
      ss >> log.killed_at >> log.kill_when;
    } else if (!line.empty()) {
      ++log.syncs;
      log.lines.push_back(line);
    }
  }
  return log;
}

struct KillPoint {
  std::string match = kOutboxFiles;
  long at = 0;  // 0: count only (the trace run)
  bool after = false;
  bool big_events = false;  // run the checkpoint phase
  bool must_reach = true;   // a run that ends before this sync is a failure
};

// What one run saw, for the checks and the summary.
struct RunResult {
  std::string phase;  // where the kill came (the phases above)
  bool killed = false;
  std::map<std::string, int64_t> acked;  // id -> seq from ok replies
  std::vector<SentEvent> unanswered;     // sent, no reply
  std::string killed_commit_id;          // lock-step: the event whose commit was killed
  // Sync counts at the phase boundaries (trace run).
  long after_start = 0, after_lockstep = 0, after_idle = 0, after_concurrent = 0, after_big = 0;
  size_t unacked_found = 0;
  size_t lost = 0;
  size_t big_events = 0;                       // sent in the checkpoint phase
  std::set<std::string> stored_after_restart;  // ids in the outbox after the restart
};

class CrashAtSyncTest : public HubFixture {
 protected:
  void SetUp() override {
    if (const char* w = std::getenv("EDGESYNC_BIN_WRAPPER"); w && *w) {
      GTEST_SKIP() << "the agent runs under " << w
                   << ": LD_PRELOAD would load the sync shim into the emulator, not the agent";
    }
    HubFixture::SetUp();
  }

  std::string run_dir(int index) {
    auto d = dir_->path() / ("run-" + std::to_string(index));
    std::filesystem::create_directories(d);
    return d.string();
  }

  AgentConfig config_for(int index, const std::string& dir) {
    AgentConfig c = AgentConfig::for_test(dir, *broker_);
    c.device_id = "pos-" + std::to_string(index);
    return c;
  }

  bool wait_online(AgentProcess& agent, std::chrono::milliseconds timeout) {
    const std::string topic = agent.config().topic_base() + "/status";
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline && agent.running()) {
      if (hub_->wait_for(
              [&](const HubSubscriber::Messages& ms) {
                for (const auto& m : ms) {
                  if (m.topic == topic && m.payload.find("\"online\":true") != std::string::npos) {
                    return true;
                  }
                }
                return false;
              },
              200ms)) {
        return true;
      }
    }
    return false;
  }

  static void note_reply(const SentEvent& e, const json& r, RunResult* out) {
    if (r.is_object() && r.value("ok", false) == true) {
      const int64_t seq = r.value("seq", int64_t{-1});
      auto [it, inserted] = out->acked.emplace(e.id, seq);
      EXPECT_EQ(it->second, seq) << "id " << e.id << " changed seq";
    } else {
      ADD_FAILURE() << e.line << " -> " << r.dump();
    }
  }

  // Starts the agent with the shim and drives the workload until the agent dies or the workload
  // ends. `sent` collects every request written.
  RunResult drive(AgentProcess& agent, const KillPoint& kp, const std::string& sync_log,
                  const std::string& prefix, std::vector<SentEvent>* sent) {
    RunResult out;
    std::vector<std::string> env = preload_environment(EDGESYNC_KILL_AT_SYNC_SO);
    env.insert(env.end(), {"EDGESYNC_KILL_SYNC_MATCH=" + kp.match,
                           "EDGESYNC_KILL_AT_SYNC=" + std::to_string(kp.at),
                           std::string("EDGESYNC_KILL_WHEN=") + (kp.after ? "after" : "before"),
                           "EDGESYNC_KILL_SYNC_LOG=" + sync_log});
    agent.set_environment(std::move(env));
    auto syncs = [&] { return read_sync_log(sync_log).syncs; };
    // The shim logs its kill before raising it, and a killed process can take a moment to be
    // reaped (a thread of it inside a write or sync finishes that first): once the log shows
    // the kill, wait for the death so the next phase does not run against a dying agent.
    auto died = [&] {
      if (read_sync_log(sync_log).killed_at == 0) return !agent.running();
      const auto deadline = Clock::now() + 20s;
      while (agent.running() && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
      return true;
    };
    out.phase = "startup";
    try {
      agent.start(15s);
    } catch (const std::exception&) {
      // Killed while creating the outbox; anything else is the test's failure to start it.
      if (agent.running() || read_sync_log(sync_log).killed_at == 0) throw;
      return out;
    }
    out.after_start = syncs();
    // Deliveries move the watermark: the agent must be connected to have one to write.
    if (!wait_online(agent, 30s) || died()) return out;

    out.phase = "lockstep";
    try {
      Producer p(agent.socket_path());
      auto events = make_events(prefix + "a", kLockstepEvents);
      for (const auto& e : events) {
        const long before = syncs();
        sent->push_back(e);
        p.send_line(e.line);
        if (kp.match == kOutboxFiles && kp.at == before + 1) out.killed_commit_id = e.id;
        auto line = p.read_line(10s);
        if (!line) {
          out.unanswered.push_back(e);
          return out;
        }
        note_reply(e, json::parse(*line, nullptr, false), &out);
      }
    } catch (const std::exception&) {
      return out;  // the agent died under a write
    }
    if (died()) return out;
    out.after_lockstep = syncs();

    out.phase = "watermark";
    std::this_thread::sleep_for(1300ms);
    if (died()) return out;
    out.after_idle = syncs();

    out.phase = "concurrent";
    {
      // Each producer waits for its reply before the next event, so commits hold one to three
      // events and the span of kill points meets several of them.
      std::vector<std::vector<SentEvent>> streams;
      for (size_t k = 0; k < kProducers; ++k) {
        streams.push_back(make_events(prefix + "c" + std::to_string(k), kEventsPerProducer));
      }
      std::vector<std::vector<json>> replies(kProducers);
      std::vector<size_t> written(kProducers, 0);
      std::atomic<bool> cut{false};
      std::vector<std::thread> threads;
      for (size_t k = 0; k < kProducers; ++k) {
        threads.emplace_back([&, k] {
          try {
            Producer p(agent.socket_path());
            for (const auto& e : streams[k]) {
              ++written[k];
              p.send_line(e.line);
              auto line = p.read_line(10s);
              if (!line) break;
              replies[k].push_back(json::parse(*line, nullptr, false));
            }
          } catch (const std::exception&) {
            // the agent died under a write
          }
          if (replies[k].size() < streams[k].size()) cut = true;
        });
      }
      for (auto& t : threads) t.join();
      for (size_t k = 0; k < kProducers; ++k) {
        for (size_t i = 0; i < written[k]; ++i) {
          sent->push_back(streams[k][i]);
          if (i < replies[k].size()) {
            note_reply(streams[k][i], replies[k][i], &out);
          } else {
            out.unanswered.push_back(streams[k][i]);
          }
        }
      }
      // The connections ended before the process was reaped: it died here.
      if (cut) return out;
    }
    if (died()) return out;
    out.after_concurrent = syncs();

    if (kp.big_events) {
      // The connection ends before the process is reaped: a cut means it died here.
      const bool cut = drive_big_events(agent, prefix, sync_log, kp.at > 0, sent, &out);
      if (cut || died()) return out;
      out.after_big = syncs();
    }
    // A clean stop commits the watermark and checkpoints the WAL into the database file.
    if (kp.at > 0) {
      out.phase = "shutdown";
      agent.signal(SIGTERM);
    }
    return out;
  }

  // Big events, one at a time, until the database file is synced (the checkpoint) or
  // kMaxBigEvents were sent; out->big_events counts them. Returns true if the agent closed the
  // connection (it died).
  bool drive_big_events(AgentProcess& agent, const std::string& prefix, const std::string& sync_log,
                        bool kill_expected, std::vector<SentEvent>* sent, RunResult* out_ptr) {
    RunResult& out = *out_ptr;
    out.phase = "checkpoint";
    auto db_syncs = [&] {
      long n = 0;
      for (const auto& l : read_sync_log(sync_log).lines) n += is_database_file(l);
      return n;
    };
    const long before = db_syncs();
    try {
      Producer p(agent.socket_path());
      const std::string blob(200000, 'x');
      for (size_t i = 0; i < kMaxBigEvents && db_syncs() == before; ++i) {
        SentEvent e;
        e.id = prefix + "b-" + std::to_string(i);
        e.type = "inventory.snapshot";
        e.data = json{{"blob", blob}, {"i", i}};
        e.line = make_request(e.id, e.type, e.data);
        sent->push_back(e);
        ++out.big_events;
        p.send_line(e.line);
        auto line = p.read_line(10s);
        if (!line) {
          out.unanswered.push_back(e);
          return true;
        }
        note_reply(e, json::parse(*line, nullptr, false), &out);
      }
    } catch (const std::exception&) {
      return true;
    }
    // The checkpoint runs after the round's replies were sent. Once its sync is seen, a kill
    // aimed at it can still take seconds to end the process: a thread of it inside a write or
    // sync of a loaded disk finishes that first.
    auto deadline = Clock::now() + 3s;
    while (agent.running() && db_syncs() == before && Clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    if (kill_expected) deadline = Clock::now() + 20s;
    while (agent.running() && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
    return false;
  }

  // One kill point: drive, check the death, restart without the shim and check the contract.
  RunResult run_kill_point(int index, const KillPoint& kp) {
    const std::string dir = run_dir(index);
    AgentProcess agent(dir, config_for(index, dir));
    const std::string sync_log = dir + "/syncs.log";
    std::vector<SentEvent> sent;
    const std::string prefix = "r" + std::to_string(index);
    RunResult r = drive(agent, kp, sync_log, prefix, &sent);
    const std::string what = std::string("kill ") + (kp.after ? "after" : "before") + " sync " +
                             std::to_string(kp.at) + " of " + kp.match + " (" + r.phase + ")";

    // The agent must die by the shim's SIGKILL at exactly that sync.
    const auto deadline = Clock::now() + 10s;
    while (agent.running() && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
    if (agent.running()) {
      if (kp.must_reach) {
        ADD_FAILURE() << what << ": the workload ended before that sync; shim log:\n"
                      << tail_lines(read_file(sync_log), 20);
      }
      r.phase = "not reached";
      agent.kill9();
      return r;
    }
    auto status = agent.terminate();
    EXPECT_TRUE(status && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
        << what << ": " << (status ? describe_wait_status(*status) : "no status") << "\n"
        << tail_lines(agent.log(), 30);
    const SyncLog slog = read_sync_log(sync_log);
    EXPECT_EQ(slog.killed_at, kp.at) << what << ": shim log:\n"
                                     << tail_lines(read_file(sync_log), 20);
    r.killed = true;
    if (kp.match == kDatabaseFile) {
      EXPECT_EQ(r.phase, kp.big_events ? "checkpoint" : "shutdown")
          << what << ": not the checkpoint meant; shim log:\n"
          << read_file(sync_log) << "agent log:\n"
          << tail_lines(agent.log(), 30);
    }

    // The killed commit of a lock-step event: its reply may only follow the sync.
    if (!r.killed_commit_id.empty()) {
      EXPECT_EQ(r.acked.count(r.killed_commit_id), 0u)
          << what << ": " << r.killed_commit_id
          << " was acknowledged although the sync of its commit never returned";
    }

    agent.set_environment({});
    agent.start(20s);
    check_contract(agent, what, sent, &r);
    if (kp.after && !r.killed_commit_id.empty()) {
      EXPECT_GT(r.stored_after_restart.count(r.killed_commit_id), 0u)
          << what << ": " << r.killed_commit_id << " is gone although its commit was synced";
    }
    agent.terminate(20s);
    return r;
  }

  void check_contract(AgentProcess& agent, const std::string& what,
                      const std::vector<SentEvent>& sent, RunResult* r) {
    CommandResult list = AgentProcess::run_cli(
        {"outbox", "--config", agent.config_path(), "--all", "--json", "--limit", "1000000"}, "",
        30s);
    ASSERT_TRUE(list.exited_ok()) << what << ": " << list.describe();
    json rows = json::parse(list.out, nullptr, false);
    ASSERT_TRUE(rows.is_array()) << what << ": " << list.describe();
    std::map<int64_t, std::string> id_of_seq;
    std::map<std::string, int64_t> seq_of_id;
    for (const auto& row : rows) {
      const int64_t seq = row.value("seq", int64_t{-1});
      const std::string id = row.value("id", "");
      EXPECT_TRUE(id_of_seq.emplace(seq, id).second) << what << ": seq " << seq << " twice";
      EXPECT_TRUE(seq_of_id.emplace(id, seq).second) << what << ": id " << id << " stored twice";
    }
    // Gap-free: exactly 1..n.
    int64_t expect = 1;
    for (const auto& [seq, id] : id_of_seq) {
      EXPECT_EQ(seq, expect) << what << ": seqs in the outbox are not 1..n";
      expect = seq + 1;
    }
    std::set<std::string> sent_ids;
    for (const auto& e : sent) sent_ids.insert(e.id);
    for (const auto& [id, seq] : seq_of_id) {
      EXPECT_TRUE(sent_ids.count(id)) << what << ": the outbox holds an event never sent: " << id;
    }
    for (const auto& [id, seq] : r->acked) {
      auto it = seq_of_id.find(id);
      if (it == seq_of_id.end() || it->second != seq) {
        ++r->lost;
        ADD_FAILURE() << what << ": acknowledged " << id << " (seq " << seq << ") is "
                      << (it == seq_of_id.end() ? "missing"
                                                : "at seq " + std::to_string(it->second));
      }
    }
    for (const auto& e : r->unanswered) r->unacked_found += seq_of_id.count(e.id);
    for (const auto& [id, seq] : seq_of_id) r->stored_after_restart.insert(id);

    // Resending every id: what is stored is a duplicate with its seq, the rest is new and
    // numbered on from the highest seq.
    std::map<std::string, int64_t> expected = seq_of_id;
    int64_t highest = id_of_seq.empty() ? 0 : id_of_seq.rbegin()->first;
    if (!sent.empty()) {
      Producer p(agent.socket_path());
      auto replies = p.send_all(lines_of(sent), 60s);
      ASSERT_EQ(replies.size(), sent.size()) << what;
      for (size_t i = 0; i < sent.size(); ++i) {
        const json& rep = replies[i];
        ASSERT_EQ(rep.value("ok", false), true) << what << ": " << rep.dump();
        const int64_t seq = rep.value("seq", int64_t{-1});
        auto it = seq_of_id.find(sent[i].id);
        if (it != seq_of_id.end()) {
          EXPECT_EQ(rep.value("duplicate", false), true) << what << ": " << rep.dump();
          EXPECT_EQ(seq, it->second) << what << ": resent " << sent[i].id << " -> " << rep.dump();
        } else {
          EXPECT_EQ(rep.value("duplicate", true), false) << what << ": " << rep.dump();
          EXPECT_EQ(seq, highest + 1) << what << ": " << rep.dump();
          highest = seq;
          expected.emplace(sent[i].id, seq);
          seq_of_id.emplace(sent[i].id, seq);
        }
      }
    }

    // The publisher resumes: the hub gets every seq, first arrivals in order, each id with its
    // seq (redeliveries of what was published before the kill allowed).
    const std::string base = agent.config().topic_base();
    const bool all_there = hub_->wait_for(
        [&](const HubSubscriber::Messages& ms) {
          std::set<int64_t> seqs;
          for (const auto& ev : hub_events(ms, base)) seqs.insert(ev.seq);
          return static_cast<int64_t>(seqs.size()) >= highest;
        },
        60s);
    ASSERT_TRUE(all_there) << what << ": the hub did not get all " << highest << " events";
    const auto evs = hub_events(hub_->messages(), base);
    int64_t hub_highest = 0;
    EXPECT_TRUE(first_arrivals_gap_free(evs, &hub_highest)) << what;
    EXPECT_EQ(hub_highest, highest) << what;
    const auto first = first_arrival_ids(evs);
    for (const auto& [id, seq] : expected) {
      auto it = first.find(seq);
      EXPECT_TRUE(it != first.end() && it->second == id)
          << what << ": " << id << " (seq " << seq << ") reached the hub as "
          << (it == first.end() ? std::string("nothing") : it->second);
    }
  }
};

TEST_F(CrashAtSyncTest, EveryAcknowledgedEventSurvivesAKillAtEachSync) {
  const auto t0 = Clock::now();
  const char* cp = std::getenv("EDGESYNC_CRASH_SYNC_CHECKPOINT");
  const bool checkpoint = !(cp && std::string(cp) == "0");
  int index = 0;

  // A trace run without a kill: how many syncs each phase makes, and the files they go to.
  const std::string trace_dir = run_dir(index);
  KillPoint trace;
  trace.big_events = checkpoint;
  RunResult tr;
  std::vector<SentEvent> trace_sent;
  {
    AgentProcess agent(trace_dir, config_for(index, trace_dir));
    tr = drive(agent, trace, trace_dir + "/syncs.log", "t", &trace_sent);
    ASSERT_TRUE(agent.running()) << "the trace run's agent died:\n" << tail_lines(agent.log(), 40);
    agent.terminate(20s);
  }
  ++index;
  const SyncLog tlog = read_sync_log(trace_dir + "/syncs.log");
  std::cerr << "[crash-at-sync] trace: " << tr.after_start << " syncs at startup, "
            << tr.after_lockstep << " after " << kLockstepEvents << " lock-step events, "
            << tr.after_idle << " after the idle second, " << tr.after_concurrent
            << " after the concurrent producers";
  if (checkpoint) {
    std::cerr << ", " << tr.after_big << " after " << tr.big_events << " big events";
  }
  std::cerr << ", " << tlog.syncs << " after SIGTERM; the database file's:";
  for (const auto& l : tlog.lines) {
    if (is_database_file(l)) {
      std::cerr << " " << l.substr(0, l.find(' '));
    }
  }
  std::cerr << "\n";
  // The lock-step mapping (one commit, one sync per event) and a watermark of its own.
  ASSERT_EQ(tr.after_lockstep - tr.after_start, static_cast<long>(kLockstepEvents))
      << read_file(trace_dir + "/syncs.log");
  ASSERT_GT(tr.after_idle, tr.after_lockstep) << "no watermark sync in the idle second";
  ASSERT_EQ(tr.acked.size(), trace_sent.size());

  // Default span: startup, the lock-step commits, the watermark and 4 commits of the concurrent
  // producers.
  long points = std::min(tr.after_idle + 4, tr.after_concurrent);
  const char* long_run = std::getenv("EDGESYNC_CRASH_SYNC_POINTS");
  if (long_run) points = std::max(1L, std::min(std::atol(long_run), tlog.syncs));
  std::vector<KillPoint> kps;
  for (long at = 1; at <= points; ++at) {
    for (bool after : {false, true}) {
      KillPoint kp;
      kp.at = at;
      kp.after = after;
      kp.big_events = long_run && checkpoint;
      kp.must_reach = at <= std::min(tr.after_idle + 4, tr.after_concurrent);
      kps.push_back(kp);
    }
  }
  // The database file itself is synced when the outbox is created and when a checkpoint has
  // copied the WAL into it: the first after startup is the checkpoint of a clean stop, or with
  // the big events the one at 8 MiB of WAL.
  long db_at_start = 0, db_in_workload = 0;
  for (size_t i = 0; i < tlog.lines.size(); ++i) {
    const std::string& l = tlog.lines[i];
    if (!is_database_file(l)) continue;
    const long n = static_cast<long>(i) + 1;
    if (n <= tr.after_start) {
      ++db_at_start;
    } else if (n <= (checkpoint ? tr.after_big : tr.after_concurrent)) {
      ++db_in_workload;
    }
  }
  if (checkpoint) {
    EXPECT_GT(db_in_workload, 0) << "the big events did not cause a checkpoint";
  }
  for (bool big : {false, true}) {
    if (big && !checkpoint) continue;
    for (bool after : {false, true}) {
      KillPoint kp;
      kp.match = kDatabaseFile;
      kp.at = db_at_start + 1;
      kp.after = after;
      kp.big_events = big;
      kps.push_back(kp);
    }
  }

  std::map<std::string, int> by_phase;
  size_t acked = 0, lost = 0, found = 0, unanswered = 0, killed = 0;
  for (const auto& kp : kps) {
    RunResult r = run_kill_point(index++, kp);
    by_phase[r.phase]++;
    if (r.phase == "not reached") continue;
    if (kp.big_events && kp.match == kDatabaseFile) {
      std::cerr << "[crash-at-sync] checkpoint " << (kp.after ? "after" : "before")
                << " its database sync: killed after " << r.big_events << " big events\n";
    }
    killed += r.killed;
    acked += r.acked.size();
    lost += r.lost;
    found += r.unacked_found;
    unanswered += r.unanswered.size();
    if (HasFatalFailure()) break;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::cerr << "[crash-at-sync] " << killed << " kill points (syncs 1.." << points
            << " of the outbox and the database file's first sync after startup, "
            << (checkpoint ? "at shutdown and at 8 MiB of WAL" : "at shutdown")
            << "; before and after each):";
  for (const auto& [phase, n] : by_phase) std::cerr << " " << phase << " " << n;
  std::cerr << "\n[crash-at-sync] " << acked << " events acknowledged, " << lost << " lost, "
            << unanswered << " unanswered of which " << found << " found after restart; " << secs
            << " s\n";
  EXPECT_EQ(killed + static_cast<size_t>(by_phase["not reached"]), kps.size());
  EXPECT_EQ(lost, 0u);
}

}  // namespace
}  // namespace edgesync::test
