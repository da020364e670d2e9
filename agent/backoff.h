// Reconnect delays: exponential backoff with full jitter.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace edgesync::agent {

// The cap after `attempt` failures: initial_ms * 2^attempt, at most max_ms.
int64_t backoff_cap_ms(int attempt, int64_t initial_ms, int64_t max_ms);

// A delay drawn uniformly from [initial_ms, backoff_cap_ms(attempt, ...)]: full jitter, so a
// fleet that lost its hub at the same moment does not come back in lockstep, with a floor of
// initial_ms so a box never hammers the hub.
std::chrono::milliseconds backoff_delay(int attempt, int64_t initial_ms, int64_t max_ms,
                                        std::mt19937_64& rng);

}  // namespace edgesync::agent
