#include "agent/http_ingest.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "agent/http_body.h"
#include "agent/local_http.h"

namespace edgesync::agent {

namespace {

using namespace std::chrono_literals;

constexpr const char* kJson = "application/json";

// One request's events, answered by the ingest thread as their commits complete.
struct Batch {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<IngestReply> replies;
  size_t remaining = 0;

  void set(size_t i, IngestReply r) {
    std::lock_guard<std::mutex> lock(mu);
    replies[i] = std::move(r);
    if (--remaining == 0) cv.notify_all();
  }
};

void answer(httplib::Response& res, int status, std::string body) {
  res.status = status;
  if (const int after = retry_after_seconds(status); after > 0) {
    res.set_header("Retry-After", std::to_string(after));
  }
  res.set_content(std::move(body), kJson);
}

void answer_error(httplib::Response& res, int status, IngestError e, const std::string& message) {
  answer(res, status, answer_body({error_reply(e, message)}, false));
}

}  // namespace

struct HttpIngest::Impl {
  explicit Impl(IngestCore& c)
      : core(c),
        http(c.config().ingest.http.listen,
             LocalHttpServer::Options{
                 "ingest.http.listen",
                 static_cast<size_t>(c.config().ingest.http.max_connections),
                 5,  // a client silent this long mid-request is cut off
                 // Tills send in bursts: a kept-alive connection saves the next sale a
                 // connect, and frees its worker after 2 s idle.
                 100, 2,
                 static_cast<size_t>(c.config().ingest.http.max_body_bytes),
                 "http-ingest",
                 0}) {}  // at the agent's priority: these are producers, as on the socket

  void routes();
  void post_events(const httplib::Request& req, httplib::Response& res);
  void health(httplib::Response& res);
  // Waits for the batch; false once abandoned.
  bool wait(Batch& batch);

  IngestCore& core;
  LocalHttpServer http;
  std::atomic<bool> abandoned{false};
};

void HttpIngest::Impl::routes() {
  httplib::Server& server = http.server();
  server.Post("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
    post_events(req, res);
  });
  server.Get("/v1/health", [this](const httplib::Request&, httplib::Response& res) {
    health(res);
  });
  auto not_allowed = [](const char* allow) {
    return [allow](const httplib::Request&, httplib::Response& res) {
      res.status = 405;
      res.set_header("Allow", allow);
      res.set_content(std::string("{\"ok\":false,\"error\":\"method_not_allowed\",\"message\":"
                                  "\"allowed: ") + allow + "\"}",
                      kJson);
    };
  };
  server.Get("/v1/events", not_allowed("POST"));
  server.Put("/v1/events", not_allowed("POST"));
  server.Delete("/v1/events", not_allowed("POST"));
  server.Patch("/v1/events", not_allowed("POST"));
  server.Post("/v1/health", not_allowed("GET, HEAD"));
  server.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        // Runs for every answer of 400 and up: those from the handlers have their body.
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 413) {
          // The body was over ingest.http.max_body_bytes: refused before any handler ran.
          answer_error(res, 413, IngestError::kTooLarge,
                       "request body longer than ingest.http.max_body_bytes; nothing was "
                       "stored: send fewer events per request");
          return httplib::Server::HandlerResponse::Handled;
        }
        if (res.status == 404) {
          res.set_content("{\"ok\":false,\"error\":\"not_found\",\"message\":\"events go to "
                          "POST /v1/events, health is GET /v1/health\"}",
                          kJson);
          return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
      }));
}

bool HttpIngest::Impl::wait(Batch& batch) {
  std::unique_lock<std::mutex> lock(batch.mu);
  // Woken by the last reply; the timed wait only notices abandon(), for an agent that ends
  // without its ingest thread.
  while (batch.remaining > 0) {
    if (abandoned) return false;
    batch.cv.wait_for(lock, 200ms);
  }
  return true;
}

void HttpIngest::Impl::post_events(const httplib::Request& req, httplib::Response& res) {
  std::optional<std::string> key;
  if (req.has_header("Idempotency-Key")) key = req.get_header_value("Idempotency-Key");
  if (abandoned) {  // the agent is past its stop deadline: no commit will come
    answer_error(res, 503, IngestError::kStorageError, "the agent is stopping; send again later");
    return;
  }
  BodyPlan plan = plan_body(req.body, key, core.max_line_bytes());
  if (plan.refused) {
    core.counters().count_refused(plan.refused->error);
    std::vector<IngestReply> one{std::move(*plan.refused)};
    answer(res, http_status(one), answer_body(one, false));
    return;
  }
  auto batch = std::make_shared<Batch>();
  batch->replies.resize(plan.items.size());
  std::vector<std::pair<size_t, std::string>> lines;
  for (size_t i = 0; i < plan.items.size(); ++i) {
    BodyItem& item = plan.items[i];
    if (item.reply) {
      core.counters().count_refused(item.reply->error);
      batch->replies[i] = std::move(*item.reply);
    } else {
      lines.emplace_back(i, std::move(item.line));
    }
  }
  batch->remaining = lines.size();
  if (!lines.empty()) {
    asio::post(core.io(), [this, batch, lines = std::move(lines)] {
      for (const auto& [i, line] : lines) {
        core.submit(line, [batch, i = i](IngestReply r) { batch->set(i, std::move(r)); });
      }
    });
    if (!wait(*batch)) {
      answer_error(res, 503, IngestError::kStorageError,
                   "the agent stopped before the events' commit was confirmed: their outcome "
                   "is unknown; send them again with the same ids");
      return;
    }
  }
  std::lock_guard<std::mutex> lock(batch->mu);
  answer(res, http_status(batch->replies), answer_body(batch->replies, plan.array));
}

void HttpIngest::Impl::health(httplib::Response& res) {
  // The ingest thread answers: a stalled one is not healthy, whatever the storage says.
  auto batch = std::make_shared<Batch>();
  batch->replies.resize(1);
  batch->remaining = 1;
  asio::post(core.io(), [this, batch] {
    IngestReply r;
    r.ok = !core.outbox().storage_failed() && !core.outbox().corruption_seen();
    batch->set(0, std::move(r));
  });
  std::unique_lock<std::mutex> lock(batch->mu);
  if (!batch->cv.wait_for(lock, 2s, [&] { return batch->remaining == 0; })) {
    answer(res, 503,
           "{\"ok\":false,\"storage\":\"unknown\",\"message\":\"the ingest thread did not "
           "answer within 2 s\"}");
    return;
  }
  if (batch->replies[0].ok) {
    answer(res, 200, "{\"ok\":true,\"storage\":\"writable\"}");
  } else {
    answer(res, 503,
           "{\"ok\":false,\"storage\":\"failed\",\"message\":\"the outbox cannot commit: events "
           "are refused with storage_error; edgesync doctor says why\"}");
  }
}

HttpIngest::HttpIngest(IngestCore& core) : impl_(std::make_unique<Impl>(core)) {}

HttpIngest::~HttpIngest() {
  // An agent that returns early (a later part failed to start) never runs its ingest thread:
  // nothing may wait for it.
  abandon();
  stop();
}

Status HttpIngest::start() {
  impl_->routes();
  return impl_->http.start();
}

const std::string& HttpIngest::bound() const { return impl_->http.bound(); }

void HttpIngest::stop() { impl_->http.stop(); }

void HttpIngest::abandon() { impl_->abandoned = true; }

}  // namespace edgesync::agent
