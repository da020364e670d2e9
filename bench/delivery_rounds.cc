#include "bench/delivery_rounds.h"

#include <exception>

#include "bench/backlog.h"
#include "bench/report.h"

namespace edgesync::bench {
namespace {

// The bare publisher with a subscriber counting its events at the broker.
void paho_round(const Options& opt, const std::string& dir, test::MosquittoBroker& broker,
                DeliveryFigures* f) {
  ArrivalCounter sub(opt, dir, broker, "edgesync-bench-paho-sub", "paho-", opt.paho_messages);
  ArrivalRate not_ready;
  try {
    sub.wait_ready();
  } catch (const std::exception& e) {
    not_ready.expected = opt.paho_messages;
    not_ready.unmeasured = e.what();
  }
  f->paho.merge(raw_paho(broker, opt.paho_messages, 64));
  f->paho_arrivals.merge(not_ready.unmeasured.empty() ? sub.finish() : not_ready);
}

}  // namespace

DeliveryFigures delivery_rounds(const Options& opt, const std::string& root,
                                test::MosquittoBroker& broker) {
  DeliveryFigures f;
  f.rounds = opt.rounds;
  for (int round = 0; round < opt.rounds; ++round) {
    progress("delivery round " + std::to_string(round + 1) + "/" + std::to_string(opt.rounds) +
             ": bare paho publisher, agent drain of " + std::to_string(opt.delivery_backlog) +
             ", each with a QoS 1 subscriber");
    if (!broker.running()) broker.start();
    paho_round(opt, root + "/paho-sub" + std::to_string(round), broker, &f);
    auto d = backlog_run(opt, root, "d" + std::to_string(round), broker, opt.delivery_backlog,
                         false, true);
    f.agent_arrivals.merge(d.arrivals);
  }
  return f;
}

}  // namespace edgesync::bench
