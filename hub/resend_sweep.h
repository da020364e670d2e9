// Asking boxes for what the hub lacks (events/resend.h, docs/HUB.md "Resend").
//
// ResendPlanner is the decision, pure: fed the missing ranges of each look at the gaps, it asks
// only for seqs that were missing at the previous look too, so an event still on its way (a
// hub working through a queue, instances of a shared group committing out of order) is not asked
// for; and for a tail (seqs above the hub's highest) only while the hub's highest has not moved
// since, i.e. the stream is not catching up by itself. A seq asked for kMaxAsks times that still
// does not arrive (the box sends it and the hub rejects it, say) is not asked for again until the
// hub restarts: `gaps` keeps showing it, and the log says so once.
//
// ResendSweeper runs it: every resend.interval_s, on a thread and a PostgreSQL connection of its
// own, in the one instance that holds the resend lock (a session advisory lock: when that
// instance dies or loses its broker connection it lets go, and another takes over at its next
// look). It asks online boxes only, of its own stores (subscription.stores) when it has a part.
#pragma once

#include <array>
#include <condition_variable>
#include <memory>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "events/resend.h"
#include "hub/hub_config.h"

namespace edgesync::hub {

struct PlannedResend {
  std::string store_id;
  std::string device_id;
  events::ResendRequest request;  // request_id left empty: the sweeper names it
  // Asked for now for the kMaxAsks-th time: not asked for again.
  std::vector<events::SeqRange> last_ask;
};

class ResendPlanner {
 public:
  static constexpr int kMaxAsks = 3;
  explicit ResendPlanner(int64_t max_seqs) : max_seqs_(max_seqs) {}
  // One look: `gaps` as gap_rows() returns them (rows in "gone" state are left alone).
  std::vector<PlannedResend> look(const nlohmann::json& gaps);
  // Another instance is sweeping: what this one saw is stale.
  void forget() {
    previous_.clear();
    asked_.clear();
  }

 private:
  struct Stream {
    std::string store_id, device_id, incarnation;
    bool operator<(const Stream& o) const {
      return std::tie(store_id, device_id, incarnation) <
             std::tie(o.store_id, o.device_id, o.incarnation);
    }
  };
  struct Seen {
    events::SeqRanges missing;
    int64_t tail_from = 0;  // the first seq of the tail (the hub's highest + 1); 0: no tail
  };
  int64_t max_seqs_;
  std::map<Stream, Seen> previous_;
  // Per stream with something missing: asked[i] holds the seqs asked for more than i times.
  std::map<Stream, std::array<events::SeqRanges, kMaxAsks>> asked_;
};

class ResendSweeper {
 public:
  // `publish` sends one request (QoS 1); false when it could not (not connected: asked again
  // at a later look).
  using Publish = std::function<bool(const std::string& topic, const std::string& payload)>;
  // `connected`: whether `publish` can send now; an instance that cannot lets another ask.
  ResendSweeper(const HubConfig& config, Publish publish, std::function<bool()> connected);
  ~ResendSweeper();  // stop()
  void start();
  void stop();

 private:
  void run();
  // One look; false when the database could not be read (the connection is made again).
  bool sweep_once();

  HubConfig config_;
  Publish publish_;
  std::function<bool()> connected_;
  ResendPlanner planner_;
  uint64_t requests_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  struct Connection;
  std::unique_ptr<Connection> db_;
};

}  // namespace edgesync::hub
