#include "bench/ingest_rounds.h"

#include <cstdint>
#include <filesystem>
#include <stdexcept>

#include "bench/agent_process.h"
#include "bench/echo_floor.h"
#include "bench/events.h"
#include "bench/report.h"

namespace edgesync::bench {

IngestFigures ingest_rounds(const Options& opt, test::TempDir& root,
                            test::MosquittoBroker& broker) {
  IngestFigures f;
  f.stored_bytes = EventFactory{"p8r0"}.counted_size();
  std::string dir = root.file("ingest");
  std::filesystem::create_directories(dir);
  if (!broker.running()) broker.start();
  EchoServer echo(opt.self_exe, dir);
  Agent agent(opt, dir, broker);
  agent.start();
  if (!agent.wait_hub_connected(std::chrono::seconds(20))) {
    throw std::runtime_error("agent did not connect to the hub; log:\n" +
                             test::read_file(agent.log()));
  }
  progress("warm-up: 12000 events delivered (past keep_delivered)");
  warm_up(agent, 12000);
  const double slice = opt.ingest_seconds / opt.rounds;
  for (int round = 0; round < opt.rounds; ++round) {
    const std::string r = std::to_string(round);
    progress("round " + std::to_string(round + 1) + "/" + std::to_string(opt.rounds) +
             ": SQLite 1 row/txn, agent 1 producer, SQLite 64 rows/txn (two kinds of ids), echo "
             "server 64 "
             "clients, agent 64 producers, SQLite 1000 rows/txn, agent 8 producers");
    // Each slice starts on a quiet disk: without settle(), the write-back of the slice before
    // it (a raw SQLite run leaves megabytes dirty) lands in the next one's syncs.
    settle();
    f.sq1.merge(raw_sqlite(root.file("raw1-" + r + ".db"), 1, slice, INT64_MAX));
    settle();
    f.one.merge(ingest_case(agent, broker, 1, slice, "p1r" + r));
    settle();
    // The largest batch 64 one-at-a-time producers can form, and the socket round trip alone:
    // together the floor for the 64-producer case.
    f.sq64.merge(raw_sqlite(root.file("raw64-" + r + ".db"), 64, slice, 2000000));
    settle();
    f.sq64_producers.merge(
        raw_sqlite(root.file("raw64p-" + r + ".db"), 64, slice, 2000000, /*id_runs=*/64));
    settle();
    f.echo64.merge(echo_case(echo, 64, slice, "e64r" + r));
    settle();
    f.many.merge(ingest_case(agent, broker, 64, slice, "p64r" + r));
    settle();
    f.sq1000.merge(raw_sqlite(root.file("raw1000-" + r + ".db"), 1000, slice, 2000000));
    settle();
    f.eight.merge(ingest_case(agent, broker, 8, slice, "p8r" + r));
    for (const char* kind : {"raw1-", "raw64-", "raw64p-", "raw1000-"}) {
      for (const char* suffix : {".db", ".db-wal", ".db-shm"}) {
        std::error_code ec;
        std::filesystem::remove(root.file(kind + r + suffix), ec);
      }
    }
  }
  // For the reading: the same loads without the publisher's share of the CPU.
  progress("agent 64 and 1 producers with the hub down");
  broker.stop();
  f.many_hub_down = ingest_case(agent, broker, 64, slice, "p64down");
  settle();
  f.one_hub_down = ingest_case(agent, broker, 1, slice, "p1down");
  agent.stop();
  return f;
}

}  // namespace edgesync::bench
