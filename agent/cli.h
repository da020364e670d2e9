// The `edgesync` subcommands other than `agent`. Each returns the process exit code.
#pragma once

#include <cstddef>
#include <string>

#include "agent/config.h"

namespace edgesync::agent {

int cli_send(const std::string& socket_path, const std::string& input_file);
int cli_status(const Config& config, bool json);
int cli_outbox_list(const Config& config, bool all, size_t limit, bool json);
int cli_dead_letters(const Config& config, size_t limit, bool json);

}  // namespace edgesync::agent
