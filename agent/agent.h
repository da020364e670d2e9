// Wires the agent together: outbox, ingest server, publisher, signals, watchdog.
//
// Threads: one io_context thread owns everything here; the outbox's writer thread and paho's
// threads only post work to it.
#pragma once

#include "agent/config.h"

namespace edgesync::agent {

// Runs until SIGTERM or SIGINT; returns the process exit code (0 after a clean stop).
int run_agent(const Config& config);

}  // namespace edgesync::agent
