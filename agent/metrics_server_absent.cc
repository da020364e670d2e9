// MetricsServer in a build without cpp-httplib (EDGESYNC_METRICS=OFF, or a cross build whose
// target has no libcpp-httplib-dev): metrics.listen is refused at start, never ignored, so
// an operator who asked for metrics learns at once that this binary has none.
#include "agent/metrics_server.h"

namespace edgesync::agent {

struct MetricsServer::Impl {};

MetricsServer::MetricsServer(std::string listen, Provider provider)
    : listen_(std::move(listen)), provider_(std::move(provider)) {}

MetricsServer::~MetricsServer() = default;

Status MetricsServer::start() {
  return Status::unavailable(
      "metrics.listen: this edgesync was built without the metrics "
      "endpoint (no cpp-httplib); remove metrics.listen, or install a "
      "build that has it");
}

void MetricsServer::stop() {}

}  // namespace edgesync::agent
