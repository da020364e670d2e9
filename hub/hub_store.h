// The hub's state in PostgreSQL: every event received, keyed by (device_id, incarnation, seq),
// the dead-letter notices that stand in for events that will never come, each device's last
// status and health, and the stock levels the events move (docs/HUB.md has the rules).
//
// apply() takes a batch of MQTT messages and commits their effects in one transaction: an event
// seen before (the same key) changes nothing, so a message the broker sends again after a hub
// crash is harmless. A message that cannot be read, or that PostgreSQL refuses (a NUL in a text),
// is kept in `rejected` with the reason and does not hold the others back.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "platform/status.h"

namespace pqxx {
class connection_base;
}

namespace edgesync::hub {

struct InboundMessage {
  std::string topic;
  std::string payload;
};

// What one apply() did, message by message summed.
struct BatchOutcome {
  int events_new = 0;
  int events_repeated = 0;  // already stored: no effect
  int dead_letters = 0;
  int device_reports = 0;   // status and health messages
  int rejected = 0;
  int ignored = 0;          // topics that are not the agents' (e.g. config)
};

class HubStore {
 public:
  // Connects and brings the schema up to date (idempotent; several instances may race on it).
  static Result<std::unique_ptr<HubStore>> open(const std::string& conninfo,
                                                const std::string& topic_prefix);
  ~HubStore();

  // One transaction for the whole batch. On a lost connection it reconnects once and tries
  // again; on a deadlock with another instance it tries again. A non-ok status means nothing of
  // the batch was committed (the caller waits and calls again: the broker still holds them).
  Status apply(const std::vector<InboundMessage>& batch, BatchOutcome* outcome);

 private:
  HubStore(std::string conninfo, std::string prefix);
  Status connect();
  Status apply_once(const std::vector<InboundMessage>& batch, BatchOutcome* outcome);
  std::string conninfo_;
  std::string prefix_;
  struct Connection;  // pqxx::connection, kept out of this header
  std::unique_ptr<Connection> db_;
};

// The schema, created if missing (CREATE ... IF NOT EXISTS): for open() and the query commands.
Status ensure_hub_schema(pqxx::connection_base& db);

}  // namespace edgesync::hub
