// `edgesync send --http` in a build without cpp-httplib (EDGESYNC_METRICS=OFF, or a cross build
// whose target has no libcpp-httplib-dev): refused with the reason, never sent another way.
#include <iostream>

#include "agent/cli.h"

namespace edgesync::agent {

int cli_send_http(const std::string&, const std::string&) {
  std::cerr << "edgesync send: --http: this build has no HTTP client (cpp-httplib was not "
               "available); use the ingest socket (--socket or --config)\n";
  return 2;
}

}  // namespace edgesync::agent
