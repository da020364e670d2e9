// The `edgesync` subcommands other than `agent`. Each returns the process exit code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/config.h"

namespace edgesync::agent {

int cli_send(const std::string& socket_path, const std::string& input_file);
int cli_status(const Config& config, bool json);
int cli_outbox_list(const Config& config, bool all, size_t limit, bool json);
int cli_dead_letters(const Config& config, size_t limit, bool json);

// Pushed configuration (docs/FLEET.md). Exit codes: 0 done, 1 a verdict or state that is not
// ok (an invalid envelope, an unreadable state file), 2 refused input (bad options, a layer a
// box would refuse, a file that would be overwritten).
int cli_keys_generate(const std::string& out_dir, const std::string& name);
int cli_enroll(const Config& config, const std::string& out_dir);

struct ConfigSignOptions {
  std::string key_file;
  std::string key_id;
  std::string target;  // fleet, STORE_ID or STORE_ID/DEVICE_ID: the one topic it is for
  int64_t version = 0;
  bool expires_given = false;  // false: no expiry
  std::string expires;         // "30d", "12h", "90m", "3600s"
  std::string file;     // the layer's JSON; "" or "-": standard input
};
int cli_config_sign(const ConfigSignOptions& options);
// `scope` is empty or fleet|store|device; `envelope_file` "" or "-" reads standard input.
int cli_config_verify(const std::string& keys_dir, const std::string& scope,
                      const std::string& envelope_file, bool json);

enum class ConfigView { kSummary, kEffective, kHistory };
int cli_config_show(const std::string& config_path, ConfigView view, bool json);

}  // namespace edgesync::agent
