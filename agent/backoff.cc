#include "agent/backoff.h"

#include <algorithm>

namespace edgesync::agent {

int64_t backoff_cap_ms(int attempt, int64_t initial_ms, int64_t max_ms) {
  int64_t cap = initial_ms;
  for (int i = 0; i < attempt && cap < max_ms; ++i) cap *= 2;
  return std::min(cap, max_ms);
}

std::chrono::milliseconds backoff_delay(int attempt, int64_t initial_ms, int64_t max_ms,
                                        std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> pick(initial_ms,
                                              backoff_cap_ms(attempt + 1, initial_ms, max_ms));
  return std::chrono::milliseconds(pick(rng));
}

std::chrono::milliseconds delay_after_loss(int attempt, int64_t initial_ms, int64_t max_ms,
                                           int64_t spread_ms, std::mt19937_64& rng) {
  const int64_t usual = backoff_cap_ms(attempt + 1, initial_ms, max_ms);
  const int64_t window = std::max(initial_ms, std::min(spread_ms, max_ms));
  std::uniform_int_distribution<int64_t> pick(initial_ms, std::max(usual, window));
  return std::chrono::milliseconds(pick(rng));
}

}  // namespace edgesync::agent
