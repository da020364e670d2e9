// HttpIngest in a build without cpp-httplib (EDGESYNC_METRICS=OFF, or a cross build whose
// target has no libcpp-httplib-dev): ingest.http.listen is refused at start, never ignored, so
// an integrator who configured HTTP learns at once that this binary has none.
#include "agent/http_ingest.h"

namespace edgesync::agent {

struct HttpIngest::Impl {
  std::string bound;
};

HttpIngest::HttpIngest(IngestCore&) : impl_(std::make_unique<Impl>()) {}

HttpIngest::~HttpIngest() = default;

Status HttpIngest::start() {
  return Status::unavailable(
      "ingest.http.listen: this edgesync was built without HTTP (no cpp-httplib); remove "
      "ingest.http.listen and use the ingest socket, or install a build that has it");
}

const std::string& HttpIngest::bound() const { return impl_->bound; }

void HttpIngest::stop() {}

void HttpIngest::abandon() {}

}  // namespace edgesync::agent
