// Wall-clock helpers. All times the agent records are UTC.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgesync::platform {

// Milliseconds since the Unix epoch (64-bit on every architecture, armhf included).
int64_t unix_ms();

// 2025-01-01T00:00:00Z, before this software existed: a wall clock reading earlier than this is
// wrong (a box booted without a real-time clock and not yet synced starts in 1970). Timestamps
// taken from such a clock are marked untrusted where they leave the box.
inline constexpr int64_t kEarliestPlausibleUnixMs = 1735689600000;

// "2026-11-23T08:15:02.123Z"
std::string format_rfc3339_ms(int64_t unix_ms);

// True iff `text` is an RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM),
// with 't'/'z' accepted and field ranges checked (leap second 60 allowed).
bool is_rfc3339(std::string_view text);

// The instant an RFC 3339 date-time names, in Unix milliseconds (fractions below a millisecond
// are dropped); nullopt if `text` is not one (the same rules as is_rfc3339).
std::optional<int64_t> parse_rfc3339_ms(std::string_view text);

}  // namespace edgesync::platform
