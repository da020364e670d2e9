// How deep JSON nests, counted without recursion, and how deep the agent and the hub let it.
//
// nlohmann's parser and destructor are iterative, but copying a value, dump(), comparing, a
// schema validator and our own walkers recurse once per level of nesting: a document of a few
// tens of KB of brackets nests tens of thousands deep and overflows the stack. A stack overflow
// is no exception, nothing catches it: the process ends. So whatever arrives from outside is
// measured before anything recursive touches it, and refused with a message when too deep.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string_view>

namespace edgesync::events {

// An event's JSON, its own object included: a producer's request line at ingest, and the
// event message a box publishes ("data" one level down in both), so 64 levels for "data".
inline constexpr int kMaxEventNesting = 65;

// The deepest nesting of objects and arrays in the JSON text `json`, without recursion.
// Exact for valid JSON (brackets inside strings are skipped); for text that is not JSON the
// figure means nothing, and the parse that follows refuses it. Not for a parse that allows
// comments (a quote in a comment would hide the brackets after it): measure the parsed value.
int nesting_depth(std::string_view json);

// The same for a parsed value (a scalar: 0). Counting stops past `stop_above`: the answer is
// then stop_above + 1.
int json_nesting(const nlohmann::json& j, int stop_above);

}  // namespace edgesync::events
