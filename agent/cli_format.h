// Text helpers shared by the technician's commands (status, outbox, export): sizes and ages as
// people read them, and the "label   value" lines of their reports.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace edgesync::agent {

// "512 B", "3.4 KiB", "12.0 MiB", "1.5 GiB"
std::string human_bytes(int64_t bytes);
// Colour on standard output: only on a terminal, never with NO_COLOR set (no-color.org) or
// TERM=dumb.
bool use_colour();
// "42.0 s", "3.5 min", "2.1 h"
std::string human_age(double seconds);
// Stored data as JSON when it is JSON (it always is for an event the agent accepted), else as
// its text: a request refused on arrival may be anything, bytes that are not UTF-8 included
// (shown as U+FFFD, so printing it cannot fail).
nlohmann::json data_json(const std::string& data);
// One "label              value" line on standard output (labels padded to 18 columns).
void print_field(const char* label, const std::string& value);

}  // namespace edgesync::agent
