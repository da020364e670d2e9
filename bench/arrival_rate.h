// The delivery rate as the hub sees it: a QoS 1 subscriber counts the distinct events of one run
// as they arrive, and the rate is taken between the 10 % and the 90 % arrival (the steady part:
// no connect at the start, no tail at the end). It depends on nothing the publisher persists, and
// the agent and the bare paho publisher are measured by the same code at the same broker.
//
// The subscriber runs in a process of its own (the bench re-executed with --count-arrivals):
// paho runs every client of a process on the same two threads, so a subscriber inside the bench
// would share them with the bare publisher (and halve its rate) but not with the agent.
#pragma once

#include <cstdint>
#include <string>

#include "bench/options.h"
#include "tests/harness/mosquitto_broker.h"
#include "tests/harness/process.h"

namespace edgesync::bench {

struct ArrivalRate {
  int64_t expected = 0;    // events the run published
  int64_t arrived = 0;     // distinct ones the subscriber saw
  int64_t early = 0;       // seqs below the first one seen: published before it had subscribed
  int64_t duplicates = 0;  // the same seq again (a re-send after a reconnect)
  int64_t events = 0;      // arrivals between the 10 % and the 90 % arrival
  double seconds = 0;      // time between them
  std::string unmeasured;  // why no rate could be taken; empty when it was

  bool measured() const { return unmeasured.empty() && events > 0 && seconds > 0; }
  double per_s() const { return measured() ? events / seconds : 0; }
  // Adds another run of the same case; unmeasured if either is.
  void merge(const ArrivalRate& o);
};

// The hidden `--count-arrivals DIR` mode: reads DIR/subscriber.json, subscribes (retrying until
// the broker is up), creates DIR/ready, counts until SIGTERM, then waits for stragglers and writes
// DIR/result.json. Returns an exit code.
int arrival_counter_main(const std::string& dir);

// Counts the events with ids "<id_prefix>..." and seqs 1..n (hub payload fields) arriving at a
// subscriber in a child process whose files go to `dir` (created).
class ArrivalCounter {
 public:
  // Starts the subscriber; it connects on its own once the broker is up.
  ArrivalCounter(const Options& opt, const std::string& dir, const test::MosquittoBroker& broker,
                 const std::string& client_id, const std::string& id_prefix, int64_t n);
  ~ArrivalCounter();
  ArrivalCounter(const ArrivalCounter&) = delete;
  ArrivalCounter& operator=(const ArrivalCounter&) = delete;

  // Returns once the subscription is granted: every event published after that is counted.
  // Throws std::runtime_error (naming the subscriber's log) if it is not within 20 s.
  void wait_ready();
  // Once the publisher is done: the subscriber waits for the last arrivals (until all n arrived
  // or none came for a second), reports and exits.
  ArrivalRate finish();

 private:
  std::string dir_;
  int64_t n_;
  test::ChildProcess child_;
};

}  // namespace edgesync::bench
