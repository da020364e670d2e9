// The hub's page end to end: a real agent and mosquitto (mutual TLS) feeding the real hub binary
// on a real PostgreSQL, the page served on loopback (web.listen 127.0.0.1:0) and read by headless
// Chromium through chromedriver. A count and then a sale at the till reach the figure on the page
// over the event stream, without a reload. Also: the JSON endpoints give what the hub's commands
// give, the event stream's first messages, a request for another Host refused, the 33rd stream
// refused and its place freed when a page goes, a hub with pages open stopping at once, a
// stream through a database restart, and a listen address that is not loopback refused.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <regex>
#include <thread>

#include "tests/harness/postgres_server.h"
#include "tests/support/events.h"
#include "tests/support/http_client.h"
#include "tests/support/hub_fixture.h"
#include "tests/support/hub_process.h"
#include "tests/support/producer.h"
#include "tests/support/webdriver.h"

namespace edgesync::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

json sale(const std::string& receipt, const std::string& sku, int qty) {
  return sale_data(receipt, sku, qty);
}

json count(const std::string& sku, int on_hand) { return count_data(sku, on_hand); }

std::string request(const std::string& type, const json& data) {
  return json{{"type", type}, {"data", data}}.dump();
}

// Waits in the page until the element's text is `want`: a MutationObserver, so the moment the
// figure changes is seen, not the next poll. Resolves with {ok, waited_ms, text}.
constexpr const char* kWaitForText = R"JS(
  const [id, want, ms] = arguments;
  const done = arguments[arguments.length - 1];
  const started = performance.now();
  const text = () => { const e = document.getElementById(id); return e ? e.textContent : null; };
  if (text() === want) { done({ok: true, waited_ms: 0, text: want}); return; }
  let timer = 0;
  const observer = new MutationObserver(() => {
    if (text() !== want) return;
    observer.disconnect();
    clearTimeout(timer);
    done({ok: true, waited_ms: performance.now() - started, text: want});
  });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
  timer = setTimeout(() => { observer.disconnect(); done({ok: false, text: text()}); }, ms);
)JS";

// A raw HTTP request left open: an event stream as a page holds it, without a process per page.
int open_stream(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                          "\r\nAccept: text/event-stream\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until `marker` has been seen, the peer closes, or the time is up.
std::string read_until(int fd, const std::string& marker, std::chrono::milliseconds timeout,
                       bool* closed = nullptr) {
  std::string got;
  const auto deadline = Clock::now() + timeout;
  if (closed) *closed = false;
  while (got.find(marker) == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (closed) *closed = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

class HubPageTest : public HubFixture {
 protected:
  void SetUp() override {
    HubFixture::SetUp();
    agent_->config().extra["ingest"]["contracts_dir"] = source_dir() + "/config/contracts/events";
    pg_ = std::make_unique<PostgresServer>(make_subdir("pg"));
    pg_->start();
    pg_->create_database("hub");
    hub_process_ = std::make_unique<HubProcess>(make_subdir("hub"), hub_config());
  }

  void TearDown() override {
    if (HasFailure() && hub_process_) {
      std::cerr << "\n===== hub log (tail) =====\n" << tail_lines(hub_process_->log(), 80) << "\n";
    }
    hub_process_.reset();
    pg_.reset();
    HubFixture::TearDown();
  }

  std::string make_subdir(const std::string& name) {
    std::string d = (dir_->path() / name).string();
    std::filesystem::create_directories(d);
    return d;
  }

  static std::string source_dir() {
    const char* s = std::getenv("EDGESYNC_SOURCE_DIR");
    return s ? s : ".";
  }

  json hub_config() {
    return {{"broker",
             {{"uris", json::array({broker_->uri()})},
              {"client_id", "hub-page-test"},
              {"ca_file", tls_.ca_file},
              {"cert_file", tls_.client_cert_file},
              {"key_file", tls_.client_key_file}}},
            {"topic_prefix", "edgesync/v1"},
            {"database", pg_->conninfo("hub")},
            {"web", {{"listen", "127.0.0.1:0"}}}};
  }

  // The port from the hub's "page on http://127.0.0.1:PORT/" line of its latest start.
  int page_port() {
    static const std::regex line(R"(edgesync-hub: page on http://127\.0\.0\.1:([0-9]+)/)");
    const std::string log = hub_process_->log();
    int port = 0;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
         ++it) {
      port = std::stoi((*it)[1].str());
    }
    return port;
  }
  std::string target() { return "127.0.0.1:" + std::to_string(page_port()); }

  std::string sql(const std::string& query) { return pg_->psql(query, "hub"); }

  bool wait_for_events(int n, std::chrono::milliseconds timeout = 60s) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (std::stoi(sql("SELECT count(*) FROM hub_events")) >= n) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // Waits up to `timeout` (in steps the WebDriver script timeout allows) for the text.
  static json wait_for_text(WebDriver& browser, const std::string& id, const std::string& want,
                            std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    json r;
    do {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      const auto step = std::clamp(left, 100ms, 20000ms);
      r = browser.execute_async(kWaitForText, json::array({id, want, step.count()}), step + 10s);
      if (r.value("ok", false)) return r;
    } while (Clock::now() < deadline);
    return r;
  }

  std::unique_ptr<PostgresServer> pg_;
  std::unique_ptr<HubProcess> hub_process_;
};

TEST_F(HubPageTest, ASaleAtATillChangesTheFigureOnThePageWithoutAReload) {
  std::string why;
  auto paths = find_browser(&why);
  if (!paths) GTEST_SKIP() << why;
  agent_->start();
  hub_process_->start();
  ASSERT_NE(page_port(), 0) << hub_process_->log();

  const auto browser_start = Clock::now();
  WebDriver browser(make_subdir("browser"), *paths);
  // Loaded before the store has sent anything: the store and its stock must arrive by themselves.
  browser.navigate("http://" + target() + "/");
  std::cout << "[ timing ] browser session and page load: " << ms_since(browser_start) << " ms\n";
  EXPECT_EQ(browser.execute("return document.title"), "edgesync hub: live stock");
  const json loaded_at = browser.execute("return window.edgesyncPage.loadedAt");
  ASSERT_TRUE(loaded_at.is_number()) << loaded_at;

  const std::string cell = "stock-store-042-SKU-W";
  Producer till(agent_->socket_path());
  json reply = till.request(request("inventory.counted", count("SKU-W", 10)));
  ASSERT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  const auto count_sent = Clock::now();
  json shown = wait_for_text(browser, cell, "10", 60s);
  const long long count_ms = ms_since(count_sent);
  ASSERT_TRUE(shown.value("ok", false))
      << shown.dump()
      << "\npage: " << browser.execute("return document.querySelector('main').innerText").dump();

  // Marks that a reload would wipe: a window variable, and the cell's element itself.
  browser.execute(
      "window.edgesyncTestMark = 'set before the sale';"
      "window.edgesyncTestCell = document.getElementById(arguments[0]);",
      json::array({cell}));
  reply = till.request(request("pos.sale.completed", sale("R1", "SKU-W", 3)));
  ASSERT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  const auto sale_sent = Clock::now();
  shown = wait_for_text(browser, cell, "7", 30s);
  const long long sale_ms = ms_since(sale_sent);
  ASSERT_TRUE(shown.value("ok", false)) << shown.dump();
  std::cout << "[ timing ] till reply to figure on the page: count " << count_ms
            << " ms (includes the page picking up the new store), sale " << sale_ms << " ms\n";

  json after = browser.execute(R"JS(
    const e = document.getElementById(arguments[0]);
    const nav = performance.getEntriesByType('navigation');
    return {mark: window.edgesyncTestMark || null, loadedAt: window.edgesyncPage.loadedAt,
            sameCell: window.edgesyncTestCell === e, navigations: nav.length,
            navigationType: nav.length ? nav[0].type : null,
            highlighted: e.classList.contains('changed'), store: e.dataset.store,
            sku: e.dataset.sku, state: document.getElementById('state').textContent,
            stores: document.getElementById('stores').tBodies[0].innerText,
            chosen: document.getElementById('store-select').value};
  )JS",
                               json::array({cell}));
  EXPECT_EQ(after["mark"], "set before the sale") << "the page was reloaded: " << after.dump();
  EXPECT_EQ(after["loadedAt"], loaded_at) << after.dump();
  EXPECT_TRUE(after["sameCell"].get<bool>()) << "the cell was replaced, not updated";
  EXPECT_EQ(after["navigations"], 1) << after.dump();
  EXPECT_EQ(after["navigationType"], "navigate") << after.dump();
  EXPECT_TRUE(after["highlighted"].get<bool>()) << "a changed figure is highlighted";
  EXPECT_EQ(after["store"], "store-042");
  EXPECT_EQ(after["sku"], "SKU-W");
  EXPECT_EQ(after["state"], "live");
  EXPECT_EQ(after["chosen"], "store-042") << "the first store is shown by default";
  EXPECT_NE(after["stores"].get<std::string>().find("pos-01"), std::string::npos) << after.dump();

  // The device's row follows: its last seq is the sale's.
  json seq = browser.execute_async(R"JS(
    const done = arguments[arguments.length - 1];
    const started = performance.now();
    const check = () => {
      const cell = document.querySelector('#stores tbody td.num');  // pos-01's last seq
      const waited = performance.now() - started;
      if (cell && cell.textContent === '2') done({ok: true, waited_ms: waited});
      else if (waited > 10000) done({ok: false, text: cell && cell.textContent});
      else setTimeout(check, 50);
    };
    check();
  )JS",
                                   json::array(), 20s);
  EXPECT_TRUE(seq.value("ok", false)) << seq.dump();
  std::cout << "[ timing ] device's last seq on the page after the sale's figure: "
            << seq.value("waited_ms", -1.0) << " ms\n";

  json rows = hub_process_->run_json({"stock", "--store", "store-042", "--sku", "SKU-W"});
  ASSERT_TRUE(rows.is_array() && rows.size() == 1) << rows;
  EXPECT_EQ(rows[0]["on_hand"], 7);
  // To look at the page as the browser laid it out.
  if (const char* png = std::getenv("EDGESYNC_PAGE_SCREENSHOT"); png && *png) {
    write_file(png, browser.screenshot_png());
  }
  browser.quit();
}

TEST_F(HubPageTest, TheEndpointsAnswerAsTheCommandsDoAndTheStreamsAreBounded) {
  agent_->start();
  hub_process_->start();
  const int port = page_port();
  ASSERT_NE(port, 0) << hub_process_->log();
  Producer till(agent_->socket_path());
  for (const std::string& line : {request("inventory.counted", count("SKU-A", 5)),
                                  request("pos.sale.completed", sale("R1", "SKU-B", 2))}) {
    json reply = till.request(line);
    ASSERT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  }
  ASSERT_TRUE(wait_for_events(2));

  // /api/stores: the rows of `lag --json`, by store.
  HttpAnswer stores = http_call(target(), "GET", "/api/stores", "");
  ASSERT_EQ(stores.status, 200) << stores.raw;
  json lag = hub_process_->run_json({"lag"});
  ASSERT_TRUE(lag.is_array() && lag.size() == 1) << lag;
  ASSERT_TRUE(stores.body.is_array() && stores.body.size() == 1) << stores.raw;
  EXPECT_EQ(stores.body[0]["store_id"], "store-042");
  ASSERT_EQ(stores.body[0]["devices"].size(), 1u) << stores.raw;
  const json& device = stores.body[0]["devices"][0];
  for (const auto& [key, value] : lag[0].items()) {
    ASSERT_TRUE(device.contains(key)) << key << " missing from " << device.dump();
    if (key.size() > 6 && key.compare(key.size() - 6, 6, "_age_s") == 0) continue;  // moves on
    EXPECT_EQ(device[key], value) << key;
  }
  EXPECT_EQ(device.size(), lag[0].size()) << device.dump() << " vs " << lag[0].dump();

  // /api/stock: what `stock --json` prints.
  HttpAnswer stock = http_call(target(), "GET", "/api/stock?store=store-042", "");
  ASSERT_EQ(stock.status, 200) << stock.raw;
  EXPECT_EQ(stock.body, hub_process_->run_json({"stock", "--store", "store-042"}));
  EXPECT_EQ(http_call(target(), "GET", "/api/stock", "").status, 400);

  // The page itself, and a Host that is not loopback (DNS rebinding) refused.
  HttpAnswer page = http_call(target(), "GET", "/", "");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.header("content-security-policy").find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(http_call(target(), "GET", "/api/stores", "", {"Host: stock.example.com"}).status, 403);
  EXPECT_EQ(http_call(target(), "GET", "/", "", {"Host: localhost:" + std::to_string(port)}).status,
            200);

  // The stream's first messages, asked for compressed as browsers do: events must not wait in
  // a compressor's buffer.
  CommandResult sse = run_command({"curl", "-sS", "-N", "--compressed", "--max-time", "3",
                                   "http://" + target() + "/api/events?store=store-042"},
                                  "", 15s);
  EXPECT_NE(sse.out.find("event: stores\ndata: [{\"devices\":"), std::string::npos) << sse.out;
  EXPECT_NE(sse.out.find("event: stock\ndata: [{"), std::string::npos) << sse.out;
  EXPECT_NE(sse.out.find("\"sku\":\"SKU-A\""), std::string::npos) << sse.out;
  EXPECT_NE(sse.out.find("\"sku\":\"SKU-B\""), std::string::npos) << sse.out;

  // A stream sees a sale made after it opened, as one stock message with that row only.
  int live = open_stream(port, "/api/events?store=store-042");
  ASSERT_GE(live, 0);
  ASSERT_NE(read_until(live, "\"sku\":\"SKU-B\"", 10s).find("\"sku\":\"SKU-B\""),
            std::string::npos);
  json reply = till.request(request("pos.sale.completed", sale("R2", "SKU-A", 1)));
  ASSERT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  const auto sold = Clock::now();
  std::string update = read_until(live, "\"on_hand\":4", 10s);
  EXPECT_NE(update.find("event: stock\ndata: [{\"changed_at\""), std::string::npos) << update;
  EXPECT_EQ(update.find("SKU-B"), std::string::npos) << "only the changed row: " << update;
  std::cout << "[ timing ] till reply to the stream's stock message: " << ms_since(sold) << " ms\n";

  // 32 pages at once (that one among them); the 33rd is refused, and gets in once a page has
  // gone.
  std::vector<int> streams = {live};
  for (int i = 1; i < 32; ++i) {
    int fd = open_stream(port, "/api/events?store=store-042");
    ASSERT_GE(fd, 0);
    streams.push_back(fd);
    const std::string first = read_until(fd, "event: stock", 15s);
    ASSERT_NE(first.find("event: stock"), std::string::npos) << "stream " << i << ": " << first;
  }
  HttpAnswer refused = http_call(target(), "GET", "/api/events", "");
  EXPECT_EQ(refused.status, 503) << refused.raw;
  ::close(streams.back());
  streams.pop_back();
  // The hub notices the page has gone on its next write to it (every 2 s).
  bool admitted = false;
  const auto deadline = Clock::now() + 20s;
  while (!admitted && Clock::now() < deadline) {
    int fd = open_stream(port, "/api/events");
    ASSERT_GE(fd, 0);
    const std::string head = read_until(fd, "\r\n", 10s);
    if (head.rfind("HTTP/1.1 200", 0) == 0) {
      admitted = true;
      streams.push_back(fd);
    } else {
      ::close(fd);
      std::this_thread::sleep_for(250ms);
    }
  }
  EXPECT_TRUE(admitted) << "a page that went did not free its place";

  // SIGTERM with every place taken: the streams end and the hub stops at once.
  const auto stopping = Clock::now();
  auto status = hub_process_->terminate(15s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(*status);
  EXPECT_LT(ms_since(stopping), 8000);
  std::cout << "[ timing ] SIGTERM to exit with 32 streams open: " << ms_since(stopping) << " ms\n";
  for (int fd : streams) {
    bool closed = false;
    read_until(fd, "\x01never", 5s, &closed);
    EXPECT_TRUE(closed) << "a stream still open after the hub stopped";
    ::close(fd);
  }
  EXPECT_NE(hub_process_->log().find("edgesync-hub: stopped after"), std::string::npos);
}

// The database restarted under an open stream: the page is told it cannot read, the LISTEN
// connection comes back, and a sale made after the restart reaches the stream.
TEST_F(HubPageTest, AStreamFollowsThroughADatabaseRestart) {
  agent_->start();
  hub_process_->start();
  const int port = page_port();
  ASSERT_NE(port, 0) << hub_process_->log();
  Producer till(agent_->socket_path());
  json reply = till.request(request("inventory.counted", count("SKU-R", 20)));
  ASSERT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  ASSERT_TRUE(wait_for_events(1));
  // The LISTEN is in place: changes wake the streams, not only the 2 s tick.
  EXPECT_EQ(
      sql("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN \"edgesync_hub_stock\"'"),
      "1");
  int fd = open_stream(port, "/api/events?store=store-042");
  ASSERT_GE(fd, 0);
  ASSERT_NE(read_until(fd, "\"on_hand\":20", 10s).find("\"on_hand\":20"), std::string::npos);

  pg_->stop();
  std::string during = read_until(fd, "event: problem", 10s);
  EXPECT_NE(during.find("event: problem\ndata: {\"message\":"), std::string::npos) << during;
  pg_->start();
  reply = till.request(request("pos.sale.completed", sale("R1", "SKU-R", 5)));
  ASSERT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  std::string after = read_until(fd, "\"on_hand\":15", 60s);
  EXPECT_NE(after.find("\"on_hand\":15"), std::string::npos) << after;
  ::close(fd);
  const auto deadline = Clock::now() + 10s;
  while (hub_process_->log().find("listening for stock changes again") == std::string::npos &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(hub_process_->log().find("listening for stock changes again"), std::string::npos);
}

TEST_F(HubPageTest, AListenAddressThatIsNotLoopbackIsRefused) {
  for (const char* listen : {"0.0.0.0:8090", "192.0.2.7:0", "hub.example.com:8090"}) {
    hub_process_->config()["web"]["listen"] = listen;
    try {
      hub_process_->start(20s);
      ADD_FAILURE() << "edgesync-hub started with web.listen " << listen;
      hub_process_->kill9();
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(std::string("web.listen: \"") + listen + "\""), std::string::npos)
          << what;
      EXPECT_NE(what.find("loopback only"), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace edgesync::test
