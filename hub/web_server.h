// The hub's read-only page on loopback (web.listen): the stores with their devices' lag, and a
// store's stock changing live. cpp-httplib serves it; httplib.h is seen by web_server.cc alone.
//
//   GET /                    the page (hub/web_page.cc)
//   GET /api/stores          [{"store_id", "devices": [the rows of `edgesync-hub lag --json`]}]
//   GET /api/stock?store=S   the rows of `edgesync-hub stock --store S --json`
//   GET /api/events[?store=S]  Server-Sent Events: "stock" (rows as /api/stock, every store's
//                            or S's: first all of them, then those changed since), "stores"
//                            (as /api/stores) every 2 s and soon after a change (at most once
//                            a second), "problem" when the database cannot be read.
//
// Changes reach the streams through PostgreSQL's LISTEN/NOTIFY: the hub's committer notifies
// channel "edgesync_hub_stock" in every transaction that stored a new event, so a commit by any
// hub instance on the same database wakes every page at once. While the LISTEN connection is
// down the streams poll every second.
//
// The page has no authentication: the server binds loopback addresses only, and answers only
// requests whose Host is a loopback name or address (a web page elsewhere cannot reach it by
// pointing a DNS name at 127.0.0.1).
#pragma once

#include <memory>
#include <string>

#include "platform/status.h"

namespace edgesync::hub {

class HubWebServer {
 public:
  // Live pages at once; one more gets 503. Each holds one of the server's threads.
  static constexpr int kMaxStreams = 32;

  // Checks web.listen: HOST:PORT with HOST a loopback address (127.0.0.0/8, [::1]) or
  // "localhost", PORT 0 to 65535 (0: any free port). The error names the key.
  static Status check_listen(const std::string& listen);

  // `conninfo`: the hub's database (libpq connection string). Nothing happens until start().
  HubWebServer(std::string listen, std::string conninfo);
  ~HubWebServer();  // stop()
  HubWebServer(const HubWebServer&) = delete;
  HubWebServer& operator=(const HubWebServer&) = delete;

  // Binds and starts serving (and listening for stock changes). On failure nothing listens.
  Status start();
  // "http://127.0.0.1:8090/" once started.
  const std::string& url() const { return url_; }
  // Ends the event streams, stops accepting, joins every thread. Idempotent.
  void stop();

 private:
  struct Impl;
  std::string listen_;
  std::string conninfo_;
  std::string url_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgesync::hub
