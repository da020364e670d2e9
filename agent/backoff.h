// Reconnect delays: exponential backoff with full jitter.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace edgesync::agent {

// The cap after `attempt` failures: initial_ms * 2^attempt, at most max_ms.
int64_t backoff_cap_ms(int attempt, int64_t initial_ms, int64_t max_ms);

// The delay before retry number `attempt` (0 = the first after a loss): drawn uniformly from
// [initial_ms, backoff_cap_ms(attempt + 1, ...)]. Full jitter, so a fleet that lost its hub at
// the same moment does not come back in lockstep, already on the first retry (spread over
// [initial_ms, 2 * initial_ms]); the floor of initial_ms keeps a box from hammering the hub.
std::chrono::milliseconds backoff_delay(int attempt, int64_t initial_ms, int64_t max_ms,
                                        std::mt19937_64& rng);

// The delay before reconnecting after an established connection was lost (attempt as for
// backoff_delay: 0 after a connection that stayed up, more after one that dropped soon): drawn
// uniformly from [initial_ms, max(backoff_cap_ms(attempt + 1, ...), min(spread_ms, max_ms))].
// A broker restart drops the whole fleet in the same second, and one that is back within a
// second would otherwise take nearly every box's reconnect, TLS handshake and backlog in one
// second; over a window of spread_ms the peak is about fleet / (spread_ms / 1000) per second,
// a second restart soon after included. max_ms stays the bound of every wait; spread_ms 0
// leaves the usual backoff.
std::chrono::milliseconds delay_after_loss(int attempt, int64_t initial_ms, int64_t max_ms,
                                           int64_t spread_ms, std::mt19937_64& rng);

}  // namespace edgesync::agent
