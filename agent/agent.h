// Wires the agent together: outbox, ingest server, publisher, signals, watchdog.
//
// Threads: one io_context thread owns everything here; the outbox's writer thread and paho's
// threads only post work to it.
#pragma once

#include "agent/remote_config.h"

namespace edgesync::agent {

// Runs until SIGTERM or SIGINT; returns the process exit code (0 after a clean stop).
// `config_path` is re-read on SIGHUP; pushed layers are merged onto `local` (RemoteConfig).
int run_agent(const std::string& config_path, LocalConfig local);

}  // namespace edgesync::agent
