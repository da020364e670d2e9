// The one translation unit that sees cpp-httplib.
#include "agent/metrics_server.h"

#include "agent/local_http.h"
#include "agent/metrics_text.h"
#include "platform/threads.h"

namespace edgesync::agent {

struct MetricsServer::Impl {
  explicit Impl(const std::string& listen)
      : http(listen, LocalHttpServer::Options{
                         "metrics.listen",
                         2,  // one scraper, and one more to spare
                         5,  // a client silent this long is cut off
                         // One request per connection, and a connection that sends nothing
                         // frees its worker after 1 s: a scraper (or anything else on the
                         // box) cannot hold the two workers.
                         1, 1,
                         4096,  // a scrape sends no body
                         "metrics",
                         // A scrape gives way to ingest as delivery does.
                         platform::kDeliveryNiceSteps}) {}
  LocalHttpServer http;
};

MetricsServer::MetricsServer(std::string listen, Provider provider)
    : listen_(std::move(listen)), provider_(std::move(provider)) {}

MetricsServer::~MetricsServer() { stop(); }

Status MetricsServer::start() {
  impl_ = std::make_unique<Impl>(listen_);
  httplib::Server& server = impl_->http.server();
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::optional<std::string> page = provider_ ? provider_() : std::nullopt;
    if (!page) {
      res.status = 503;
      res.set_header("Retry-After", "5");
      res.set_content("the agent did not answer in time\n", "text/plain; charset=utf-8");
      return;
    }
    res.set_content(*page, kMetricsContentType);
  });
  auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
  };
  server.Post("/metrics", not_allowed);
  server.Put("/metrics", not_allowed);
  server.Patch("/metrics", not_allowed);
  server.Delete("/metrics", not_allowed);
  server.Options("/metrics", not_allowed);
  server.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (res.status != 404) return httplib::Server::HandlerResponse::Unhandled;
        res.set_content("not found: the metrics are at /metrics\n", "text/plain; charset=utf-8");
        return httplib::Server::HandlerResponse::Handled;
      }));
  Status s = impl_->http.start();
  if (!s) {
    impl_.reset();
    return s;
  }
  bound_ = impl_->http.bound();
  return Status::ok();
}

void MetricsServer::stop() {
  if (!impl_) return;
  impl_->http.stop();
  impl_.reset();
}

}  // namespace edgesync::agent
