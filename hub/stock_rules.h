// What an event does to a store's stock, decided from its type, contract version and data alone.
// The hub stores every event it receives; these rules say which of them move stock and by how
// much, so the database code only has to apply the effects. Pure: no I/O, no clock, no state.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace edgesync::hub {

// What one event does to a store's stock, line by line.
struct StockEffect {
  enum class Kind { kDelta, kLevel };  // kDelta: add qty; kLevel: the absolute level counted
  Kind kind = Kind::kDelta;
  std::string sku;
  int64_t qty = 0;     // delta (signed) or level (>= 0)
  int line_index = 0;  // position of the line in data.lines (0-based), for idempotent keys
};

struct StockRuling {
  std::vector<StockEffect> effects;  // in line order
  // true when these rules know the event's type at its contract version, whether or not it
  // moves stock (a void or a price change is known and has no effect).
  bool known_type = false;
  // Empty when the event was handled as its contract says. Otherwise why it, or some of its
  // lines, changed no stock: an unknown type or version, data that is not the contract's shape,
  // a line skipped (named by index and sku). Lines of a return marked "restock": false are
  // ordinary write-offs and are not mentioned. Bounded in length whatever the input.
  std::string note;
};

// type: the event type; v: the contract version (0 = none/unknown); data: the event's data object.
//
//  pos.sale.completed v1, v2   each line: kDelta -qty
//  pos.return.completed v1     each line: kDelta +qty, unless "restock": false (absent = true)
//  inventory.adjusted v1       each line: kDelta +delta (signed)
//  inventory.received v1       each line: kDelta +qty
//  inventory.counted v1        each line: kLevel on_hand
//  pos.void v1, price.changed v1: known, no effect
//
// Any other type or version, v 0 included (an event the agent accepted without a contract),
// is not known: no effects, and a note. Lines with the same sku stay separate effects: the
// caller sums them (for a count, the same sku counted in two bins adds up to one level).
//
// The data may not have been validated, so nothing is assumed about its shape. A line is
// skipped, and named in the note, when it is not an object, its sku is not a string of 1 to 64
// characters (valid UTF-8, no NUL), its quantity is not a JSON integer, is beyond +-10^12, or is
// outside what the contract allows (below 1 for a sale, return or delivery, 0 for an
// adjustment, negative for a count), or a return line's restock is not true or false. Never
// throws on any JSON value.
StockRuling stock_effects(std::string_view type, int v, const nlohmann::json& data);

}  // namespace edgesync::hub
