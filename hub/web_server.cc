#include "hub/web_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <thread>
#include <utility>
#include <vector>

#include "events/json_text.h"
#include "hub/hub_queries.h"
#include "hub/web_page.h"
#include "platform/threads.h"

namespace edgesync::hub {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The channel the committer notifies (hub/hub_store.cc) in every transaction that stored a new
// event.
constexpr const char* kChannel = "edgesync_hub_stock";
constexpr auto kStoresEvery = 2s;
// After a notification the stores' figures go out this long after the previous ones at most,
// not at the next tick.
constexpr auto kStoresOnChange = 1s;
// How often a stream reads stock while no LISTEN connection is up.
constexpr auto kPollEvery = 1s;
// Notifications closer together than this are read as one: a busy hub commits many batches a
// second, and each page would otherwise query once per batch.
constexpr auto kMinStockGap = 200ms;
constexpr auto kListenRetry = 1s;
// Threads beyond the streams' own, for the page, the JSON reads and kept-alive connections.
constexpr size_t kSpareWorkers = 6;
constexpr size_t kReadConnections = 4;

// ---- where to listen --------------------------------------------------------------------------

struct ListenAddress {
  std::string host;  // an IP address, as bound
  int port = 0;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// *is_ip: whether `host` is an IP address at all.
bool loopback_ip(const std::string& host, bool* is_ip) {
  in_addr v4{};
  in6_addr v6{};
  *is_ip = true;
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  *is_ip = false;
  return false;
}

Result<ListenAddress> parse_listen(const std::string& listen) {
  const std::string example = "e.g. 127.0.0.1:8090 or [::1]:8090";
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::invalid_argument("web.listen: \"" + listen + "\" must be HOST:PORT, " + example);
  }
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return Status::invalid_argument("web.listen: \"" + listen +
                                    "\": an IPv6 address goes in brackets, " + example);
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    return Status::invalid_argument("web.listen: \"" + listen +
                                    "\": the port must be 0 to 65535 (0: any free port)");
  }
  if (lower(host) == "localhost") host = "127.0.0.1";
  bool is_ip = false;
  if (!loopback_ip(host, &is_ip)) {
    return Status::invalid_argument(
        "web.listen: \"" + listen + "\": " + host +
        (is_ip ? " is not a loopback address" : " is not an IP address") +
        ". The page has no authentication and is served on loopback only (127.0.0.0/8 or "
        "[::1], " +
        example + "); reach it from another machine through an SSH tunnel");
  }
  return ListenAddress{host, std::stoi(port)};
}

// A page on loopback can still be read by a web site elsewhere that points one of its DNS names
// at 127.0.0.1 (DNS rebinding): the browser then sends that name as Host. Only loopback names
// and addresses are answered.
bool loopback_host_header(std::string host) {
  host = lower(std::move(host));
  if (!host.empty() && host.front() == '[') {
    const auto end = host.find(']');
    if (end == std::string::npos) return false;
    host = host.substr(1, end - 1);
  } else {
    const auto colon = host.rfind(':');
    if (colon != std::string::npos) host = host.substr(0, colon);
  }
  if (host == "localhost") return true;
  bool is_ip = false;
  return loopback_ip(host, &is_ip);
}

// ---- reads ------------------------------------------------------------------------------------

// A few connections for the handlers and the streams, each used by one thread at a time: taken
// from the pool for one short read-only transaction and given back, or dropped after any error
// (the next read opens a fresh one).
class ReadPool {
 public:
  ReadPool(std::string conninfo, size_t size) : conninfo_(std::move(conninfo)), size_(size) {}

  Status read(const std::function<void(pqxx::transaction_base&)>& body) {
    std::unique_ptr<pqxx::connection> c;
    try {
      c = take();
    } catch (const std::exception& e) {
      return Status::unavailable(std::string("PostgreSQL: ") + e.what());
    }
    try {
      {
        pqxx::read_transaction t(*c);
        body(t);
        t.commit();
      }
      give_back(std::move(c));
      return Status::ok();
    } catch (const std::exception& e) {
      c.reset();
      forget();
      return Status::unavailable(std::string("PostgreSQL: ") + e.what());
    }
  }

 private:
  std::unique_ptr<pqxx::connection> take() {
    std::unique_lock<std::mutex> lock(mu_);
    room_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    ++open_;
    lock.unlock();
    try {
      auto c = std::make_unique<pqxx::connection>(conninfo_);
      // A page never holds a read open for long, whatever the database is busy with.
      c->set_variable("statement_timeout", "5000");
      return c;
    } catch (...) {
      forget();
      throw;
    }
  }

  void give_back(std::unique_ptr<pqxx::connection> c) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(c));
    room_.notify_one();
  }

  void forget() {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
    room_.notify_one();
  }

  const std::string conninfo_;
  const size_t size_;
  std::mutex mu_;
  std::condition_variable room_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  size_t open_ = 0;
};

json text_or_null(const pqxx::field& f) { return f.is_null() ? json() : json(f.c_str()); }
json int_or_null(const pqxx::field& f) { return f.is_null() ? json() : json(f.as<long long>()); }

// [{"store_id", "devices": [lag rows]}], by store.
json stores_json(pqxx::transaction_base& t) {
  json out = json::array();
  for (json& d : lag_rows(t)) {
    if (out.empty() || out.back()["store_id"] != d["store_id"]) {
      out.push_back({{"store_id", d["store_id"]}, {"devices", json::array()}});
    }
    out.back()["devices"].push_back(std::move(d));
  }
  return out;
}

// The columns of `edgesync-hub stock --json` (hub/hub_queries.cc), then changed_at to the
// microsecond: the streams' watermark.
constexpr const char* kStockSelect = R"SQL(
  SELECT store_id, sku, on_hand,
    to_char(changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    to_char(counted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), counted_level,
    to_char(changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
  FROM hub_stock )SQL";

json stock_row(const pqxx::row& row) {
  return {{"store_id", row[0].c_str()},         {"sku", row[1].c_str()},
          {"on_hand", row[2].as<long long>()},  {"changed_at", row[3].c_str()},
          {"counted_at", text_or_null(row[4])}, {"counted_level", int_or_null(row[5])}};
}

json store_stock(pqxx::transaction_base& t, const std::string& store) {
  json out = json::array();
  for (const auto& row :
       t.exec_params(std::string(kStockSelect) + "WHERE store_id = $1 ORDER BY sku", store)) {
    out.push_back(stock_row(row));
  }
  return out;
}

std::string dump(const json& j) {
  // A text in the database that is not UTF-8 must not end a reply half-way.
  return events::json_text(j);
}

// ---- the event streams ------------------------------------------------------------------------

// What the notification thread tells the streams.
struct Shared {
  std::mutex mu;
  std::condition_variable changed;
  uint64_t generation = 0;  // bumped by every notification, and when LISTEN comes or goes
  bool listening = false;
  bool stopping = false;

  void bump(std::optional<bool> now_listening = std::nullopt) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++generation;
      if (now_listening) listening = *now_listening;
    }
    changed.notify_all();
  }
};

// One page's stream, driven by httplib's content provider: each call blocks until there is
// something to send, sends it, and returns.
class EventStream {
 public:
  EventStream(ReadPool& pool, Shared& shared, std::atomic<int>& streams, std::string store)
      : pool_(pool), shared_(shared), streams_(streams), store_(std::move(store)) {}
  ~EventStream() { --streams_; }
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // False: end the response (the hub stops, or the page has gone).
  bool next(httplib::DataSink& sink) {
    if (!started_) {
      started_ = true;
      last_stores_ = Clock::now();
      stores_due_ = last_stores_ + kStoresEvery;
      const std::string retry = "retry: 2000\n\n";
      return sink.write(retry.data(), retry.size()) && send_stores(sink) && send_stock(sink, true);
    }
    for (;;) {
      bool notified = false;
      bool polling = false;
      {
        std::unique_lock<std::mutex> lock(shared_.mu);
        Clock::time_point until = stores_due_;
        if (!shared_.listening) until = std::min(until, last_stock_ + kPollEvery);
        shared_.changed.wait_until(lock, until,
                                   [&] { return shared_.stopping || shared_.generation != seen_; });
        if (shared_.stopping) return false;
        notified = shared_.generation != seen_;
        polling = !shared_.listening;
      }
      // A new event moves its device's figures too: they follow within a second, not at the
      // next tick.
      if (notified) stores_due_ = std::min(stores_due_, last_stores_ + kStoresOnChange);
      const auto now = Clock::now();
      const bool stores_due = now >= stores_due_;
      // The 2 s tick reads stock as well: a notification lost on a LISTEN connection that died
      // without a word delays a figure by 2 s at most.
      const bool stock_due = notified || stores_due || (polling && now >= last_stock_ + kPollEvery);
      if (!stock_due) continue;
      if (notified) {
        // Counted from the last read a notification caused, so that the first change after a
        // quiet spell (or right after the page connected) goes out at once.
        const auto earliest = last_woken_read_ + kMinStockGap;
        if (now < earliest) {
          std::unique_lock<std::mutex> lock(shared_.mu);
          if (shared_.changed.wait_until(lock, earliest, [&] { return shared_.stopping; })) {
            return false;
          }
        }
        last_woken_read_ = Clock::now();
      }
      if (!send_stock(sink, false)) return false;
      if (stores_due) {
        last_stores_ = Clock::now();
        stores_due_ = last_stores_ + kStoresEvery;
        if (!send_stores(sink)) return false;
      }
      return true;
    }
  }

 private:
  static bool send(httplib::DataSink& sink, const char* event, const json& data) {
    const std::string text = std::string("event: ") + event + "\ndata: " + dump(data) + "\n\n";
    return sink.write(text.data(), text.size());
  }

  bool send_stores(httplib::DataSink& sink) {
    json stores;
    Status s = pool_.read([&](pqxx::transaction_base& t) { stores = stores_json(t); });
    if (!s) return send(sink, "problem", {{"message", s.message()}});
    return send(sink, "stores", stores);
  }

  // The rows changed since the newest this page was sent. changed_at is the time of the
  // statement (clock_timestamp()), not of the commit: another hub instance's transaction can
  // commit a row older than one this page already has. So each read goes back 10 s before the
  // watermark, and rows this page already has with the same changed_at are left out.
  bool send_stock(httplib::DataSink& sink, bool first) {
    {
      std::lock_guard<std::mutex> lock(shared_.mu);
      seen_ = shared_.generation;  // a notification during the read makes another read
    }
    last_stock_ = Clock::now();
    std::vector<std::pair<json, std::string>> rows;
    Status s = pool_.read([&](pqxx::transaction_base& t) {
      rows.clear();
      pqxx::result r = t.exec_params(
          std::string(kStockSelect) +
              "WHERE ($1 = '' OR store_id = $1) AND ($2 = '' OR changed_at > "
              "NULLIF($2, '')::timestamptz - interval '10 seconds') ORDER BY store_id, sku",
          store_, watermark_);
      for (const auto& row : r) rows.emplace_back(stock_row(row), row[6].c_str());
    });
    if (!s) return send(sink, "problem", {{"message", s.message()}});
    json out = json::array();
    std::map<std::pair<std::string, std::string>, std::string> recent;
    std::string newest = watermark_;
    for (auto& [row, changed] : rows) {
      auto key = std::make_pair(row["store_id"].get<std::string>(), row["sku"].get<std::string>());
      auto sent = recent_.find(key);
      if (sent == recent_.end() || sent->second != changed) out.push_back(row);
      newest = std::max(newest, changed);
      recent.emplace(std::move(key), std::move(changed));
    }
    // Rows outside the window are not read again: only what is inside it needs remembering.
    recent_ = std::move(recent);
    watermark_ = std::move(newest);
    if (out.empty() && !first) return true;
    return send(sink, "stock", out);
  }

  ReadPool& pool_;
  Shared& shared_;
  std::atomic<int>& streams_;
  const std::string store_;  // empty: every store
  bool started_ = false;
  uint64_t seen_ = 0;
  Clock::time_point last_stores_;
  Clock::time_point stores_due_;
  Clock::time_point last_stock_;
  Clock::time_point last_woken_read_;
  std::string watermark_;  // the newest changed_at read, to the microsecond; empty: none yet
  std::map<std::pair<std::string, std::string>, std::string> recent_;  // sent, in the window
};

// Wakes the streams on each NOTIFY.
class Wake : public pqxx::notification_receiver {
 public:
  Wake(pqxx::connection_base& c, Shared& shared)
      : notification_receiver(c, kChannel), shared_(shared) {}
  void operator()(const std::string&, int) override { shared_.bump(); }

 private:
  Shared& shared_;
};

void reply_json(httplib::Response& res, const Status& s, const json& body) {
  res.set_header("Cache-Control", "no-store");
  if (!s) {
    res.status = 503;
    res.set_content(dump({{"error", s.message()}}), "application/json");
    return;
  }
  res.set_content(dump(body), "application/json");
}

}  // namespace

// ---- the server -------------------------------------------------------------------------------

struct HubWebServer::Impl {
  explicit Impl(const std::string& conninfo)
      : conninfo(with_connect_timeout(conninfo)), pool(this->conninfo, kReadConnections) {}

  void routes();
  void listen_for_changes();
  bool stopping() {
    std::lock_guard<std::mutex> lock(shared.mu);
    return shared.stopping;
  }

  const std::string conninfo;
  ReadPool pool;
  Shared shared;
  std::atomic<int> streams{0};
  httplib::Server server;
  std::thread http_thread;
  std::thread notify_thread;
  std::atomic<bool> listen_returned{false};
};

void HubWebServer::Impl::routes() {
  server.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (loopback_host_header(req.get_header_value("Host"))) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.status = 403;
    res.set_content(
        "edgesync-hub: this page answers requests for localhost or a loopback "
        "address only\n",
        "text/plain; charset=utf-8");
    return httplib::Server::HandlerResponse::Handled;
  });

  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    // Nothing but the page itself may load or run: no other origin, no frames.
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                   "connect-src 'self'; base-uri 'none'; form-action 'none'; "
                   "frame-ancestors 'none'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Cache-Control", "no-store");
    const std::string_view page = hub_page_html();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });

  server.Get("/api/stores", [this](const httplib::Request&, httplib::Response& res) {
    json out;
    Status s = pool.read([&](pqxx::transaction_base& t) { out = stores_json(t); });
    reply_json(res, s, out);
  });

  server.Get("/api/stock", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string store = req.get_param_value("store");
    if (store.empty()) {
      res.status = 400;
      res.set_content(dump({{"error", "store=S is required, e.g. /api/stock?store=store-1"}}),
                      "application/json");
      return;
    }
    json out;
    Status s = pool.read([&](pqxx::transaction_base& t) { out = store_stock(t, store); });
    reply_json(res, s, out);
  });

  server.Get("/api/events", [this](const httplib::Request& req, httplib::Response& res) {
    // Each stream holds one of the server's threads for as long as the page is open.
    if (streams.fetch_add(1) >= kMaxStreams) {
      streams.fetch_sub(1);
      res.status = 503;
      res.set_header("Retry-After", "5");
      res.set_content(dump({{"error", "too many pages open (" + std::to_string(kMaxStreams) +
                                          "); close one or try again later"}}),
                      "application/json");
      return;
    }
    // Owned by the provider, which httplib keeps until the response ends; its destructor
    // gives the place back.
    auto stream =
        std::make_shared<EventStream>(pool, shared, streams, req.get_param_value("store"));
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [stream](size_t, httplib::DataSink& sink) { return stream->next(sink); });
  });

  server.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr e) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          what = ex.what();
        } catch (...) {
        }
        std::cerr << "edgesync-hub: page: " << req.path << ": " << what << "\n";
        res.status = 500;
        res.set_content(dump({{"error", what}}), "application/json");
      });
}

void HubWebServer::Impl::listen_for_changes() {
  platform::set_current_thread_name("hub-page-notify");
  bool reported = false;
  while (!stopping()) {
    try {
      pqxx::connection c(conninfo);
      Wake wake(c, shared);  // LISTEN
      // Whatever was committed while nobody listened is read now.
      shared.bump(true);
      if (reported) {
        std::cerr << "edgesync-hub: page: listening for stock changes again\n";
        reported = false;
      }
      while (!stopping()) {
        c.await_notification(0, 250000);
        if (!c.is_open()) throw pqxx::broken_connection("the LISTEN connection was closed");
      }
    } catch (const std::exception& e) {
      if (!reported && !stopping()) {
        std::cerr << "edgesync-hub: page: cannot listen for stock changes (" << e.what()
                  << "); the pages read every second until it can\n";
        reported = true;
      }
    }
    shared.bump(false);
    std::unique_lock<std::mutex> lock(shared.mu);
    shared.changed.wait_for(lock, kListenRetry, [&] { return shared.stopping; });
  }
}

Status HubWebServer::check_listen(const std::string& listen) {
  auto parsed = parse_listen(listen);
  return parsed ? Status::ok() : parsed.status();
}

HubWebServer::HubWebServer(std::string listen, std::string conninfo)
    : listen_(std::move(listen)), conninfo_(std::move(conninfo)) {}

HubWebServer::~HubWebServer() { stop(); }

Status HubWebServer::start() {
  if (impl_) return Status::ok();
  auto where = parse_listen(listen_);
  if (!where) return where.status();
  auto impl = std::make_unique<Impl>(conninfo_);
  impl->routes();
  httplib::Server& server = impl->server;
  server.new_task_queue = [] { return new httplib::ThreadPool(kMaxStreams + kSpareWorkers); };
  server.set_read_timeout(5, 0);
  // A page that stops reading its stream is cut off after this, and its place freed.
  server.set_write_timeout(5, 0);
  // Browsers keep connections open; an idle one holds a thread until this runs out.
  server.set_keep_alive_timeout(2);
  server.set_keep_alive_max_count(20);
  // An event goes out in one write after the headers went in another: without TCP_NODELAY
  // Nagle's algorithm holds it until the client's delayed ACK, about 40 ms. Accepted sockets
  // inherit it.
  server.set_tcp_nodelay(true);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second hub bind
  // the same port and take half the requests instead of failing to start.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  const bool v6 = where->host.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + where->host + "]" : where->host;
  int port = where->port;
  errno = 0;
  const bool bound = port == 0 ? (port = server.bind_to_any_port(where->host)) > 0
                               : server.bind_to_port(where->host, port);
  if (!bound) {
    const int err = errno;
    return Status::unavailable("web.listen: cannot listen on " + host + ":" +
                               std::to_string(where->port) +
                               (err != 0 ? std::string(": ") + std::strerror(err) : "") +
                               "; pick a port no other program uses (0: any free port)");
  }
  url_ = "http://" + host + ":" + std::to_string(port) + "/";

  Impl* p = impl.get();
  impl_ = std::move(impl);
  p->notify_thread = std::thread([p] { p->listen_for_changes(); });
  p->http_thread = std::thread([p] {
    platform::set_current_thread_name("hub-page");
    // httplib's workers are started from this thread and inherit its mask: a page closed in
    // the middle of a write makes send() fail with EPIPE instead of raising SIGPIPE, which
    // would end the hub.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    p->server.listen_after_bind();
    p->listen_returned = true;
  });
  // httplib's stop() does nothing until the accept loop runs: wait for it, so that a stop()
  // right after start() cannot leave the thread listening for ever.
  while (!p->server.is_running() && !p->listen_returned) std::this_thread::sleep_for(1ms);
  if (p->listen_returned) {
    const std::string where_bound = url_;
    stop();
    return Status::io_error("web.listen: the server on " + where_bound + " stopped as it started");
  }
  return Status::ok();
}

void HubWebServer::stop() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->shared.mu);
    impl_->shared.stopping = true;
  }
  impl_->shared.changed.notify_all();
  impl_->server.stop();
  if (impl_->http_thread.joinable()) impl_->http_thread.join();
  if (impl_->notify_thread.joinable()) impl_->notify_thread.join();
  impl_.reset();
  url_.clear();
}

}  // namespace edgesync::hub
