// `edgesync-hub run`: the consumer connections, the committer and PostgreSQL wired together,
// until SIGTERM or SIGINT.
#pragma once

#include "hub/hub_config.h"

namespace edgesync::hub {

// Returns the process's exit status (0 after a signal; 1 when it cannot start).
int run_hub(const HubConfig& config);

}  // namespace edgesync::hub
