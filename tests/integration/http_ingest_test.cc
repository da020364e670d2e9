// HTTP ingest through the real agent and a real client (curl): POST /v1/events answers only
// after the commit, with the socket's reply objects and a status code for the whole; the same
// request on the socket and over HTTP gets the same reply, error code and violations; an array
// answers per event in order; Idempotency-Key is the event's id; GET /v1/health; a Unix socket
// path works as well as a loopback port; and what HTTP took reaches the hub. `edgesync send
// --http` (the real binary) prints what `edgesync send` prints through the socket.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "tests/harness/net_util.h"
#include "tests/support/http_client.h"
#include "tests/support/hub_fixture.h"
#include "tests/support/source_files.h"

namespace edgesync::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// A sale that its v1 contract accepts.
json valid_sale(const std::string& receipt) {
  return {{"receipt_id", receipt},
          {"till_id", "till-3"},
          {"operator_id", "op-17"},
          {"currency", "EUR"},
          {"lines",
           json::array({{{"line_no", 1},
                         {"sku", "100234"},
                         {"qty", 2},
                         {"unit_price_minor", 199},
                         {"line_total_minor", 398}}})},
          {"total_minor", 398}};
}

// A request line (JSON) with an id.
std::string request(const std::string& id, const std::string& type, const json& data) {
  return json{{"id", id}, {"type", type}, {"data", data}}.dump();
}

// `edgesync send`'s stdout, one reply a line.
std::vector<std::string> output_lines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

json parsed(const std::string& line) { return json::parse(line, nullptr, false); }

class HttpIngestTest : public HubFixture {
 protected:
  void SetUp() override {
    HubFixture::SetUp();
    port_ = pick_free_port();
    agent_->config().max_line_bytes = 4096;
    agent_->config().extra["ingest"] = {
        {"contracts_dir", source_dir() + "/config/contracts/events"},
        {"unknown_types", "reject"},
        {"http", {{"listen", "127.0.0.1:" + std::to_string(port_)}}}};
  }

  void start_agent() {
    agent_->start();
    ASSERT_TRUE(listens([&] { return tcp_port_accepts(port_); })) << agent_->log();
  }

  // start() returns once the ingest socket listens; HTTP starts a moment later.
  static bool listens(const std::function<bool()>& accepts) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!accepts()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }

  // curl, the way an integrator's script calls it. `unix_socket`: through that path.
  HttpAnswer call(const std::string& method, const std::string& path, const std::string& body,
                  const std::vector<std::string>& headers = {},
                  const std::string& unix_socket = "") {
    return http_call(unix_socket.empty() ? "127.0.0.1:" + std::to_string(port_) : unix_socket,
                     method, path, body, headers);
  }

  HttpAnswer post(const std::string& body, const std::vector<std::string>& headers = {}) {
    return call("POST", "/v1/events", body, headers);
  }

  // The hub subscriber also gets the agent's status messages: count events only.
  bool wait_for_events(size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (events().size() < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // The real `edgesync send` with `args` (the way in, the file), standard input as given.
  static CommandResult send(const std::vector<std::string>& args,
                            const std::string& stdin_text = "") {
    std::vector<std::string> argv = {"send"};
    argv.insert(argv.end(), args.begin(), args.end());
    return AgentProcess::run_cli(argv, stdin_text, 60s);
  }

  // Every event in the outbox, pending or delivered, oldest first (`edgesync outbox --all`).
  json outbox_events() {
    CommandResult r = AgentProcess::run_cli(
        {"outbox", "--config", agent_->config_path(), "--all", "--limit", "100000", "--json"});
    EXPECT_TRUE(r.exited_ok()) << r.describe();
    return json::parse(r.out, nullptr, false);
  }

  int port_ = 0;
};

TEST_F(HttpIngestTest, OneEventIsAnsweredAfterItsCommitAndReachesTheHub) {
  start_agent();
  json req = {{"id", "http-1"}, {"type", "pos.sale.completed"}, {"data", valid_sale("r1")}};
  HttpAnswer a = post(req.dump());
  ASSERT_EQ(a.status, 200) << a.raw;
  EXPECT_EQ(a.body.value("ok", false), true) << a.raw;
  EXPECT_EQ(a.body.value("id", ""), "http-1");
  EXPECT_EQ(a.body.value("seq", 0), 1);
  EXPECT_EQ(a.body.value("duplicate", true), false);
  EXPECT_EQ(a.body["v"], 2) << "the reply names the contract version used: the newest";
  EXPECT_NE(a.headers.find("content-type: application/json"), std::string::npos) << a.headers;
  ASSERT_TRUE(wait_for_events(1)) << agent_->log();
  EXPECT_EQ(events()[0].id, "http-1");
  EXPECT_EQ(events()[0].payload.value("v", 0), 2);
}

TEST_F(HttpIngestTest, AnArrayIsAnsweredPerEventInOrderWith207WhenMixed) {
  start_agent();
  json bad_sale = valid_sale("r2");
  bad_sale["lines"][0]["qty"] = "two";
  json body = json::array({
      {{"id", "a-1"}, {"type", "pos.sale.completed"}, {"data", valid_sale("r1")}},
      {{"id", "a-2"}, {"type", "pos.sale.completed"}, {"data", bad_sale}},
      {{"id", "a-3"}, {"type", "no.such.type"}, {"data", json::object()}},
      {{"id", "a-4"}, {"type", "pos.sale.completed"}, {"data", valid_sale("r3")}},
  });
  HttpAnswer a = post(body.dump());
  ASSERT_EQ(a.status, 207) << a.raw;
  ASSERT_TRUE(a.body.is_array()) << a.raw;
  ASSERT_EQ(a.body.size(), 4u) << a.raw;
  EXPECT_EQ(a.body[0].value("id", ""), "a-1");
  EXPECT_EQ(a.body[0].value("ok", false), true);
  EXPECT_EQ(a.body[1].value("error", ""), "invalid_event");
  EXPECT_EQ(a.body[1]["violations"],
            json::array({{{"path", "/data/lines/0/qty"}, {"rule", "type"},
                          {"expected", "integer"}}}))
      << a.raw;
  EXPECT_EQ(a.body[2].value("error", ""), "unknown_type");
  EXPECT_EQ(a.body[3].value("id", ""), "a-4");
  EXPECT_EQ(a.body[3].value("seq", 0), a.body[0].value("seq", 0) + 1) << a.raw;
  ASSERT_TRUE(wait_for_events(2)) << agent_->log();

  // Every event taken: 200, an array still.
  HttpAnswer all = post(json::array({body[0], body[3]}).dump());
  EXPECT_EQ(all.status, 200) << all.raw;
  ASSERT_TRUE(all.body.is_array()) << all.raw;
  EXPECT_EQ(all.body[0].value("duplicate", false), true) << all.raw;
}

// The same request on the socket and over HTTP: the same reply (error code, message,
// violations), and over HTTP the status code the contract names.
TEST_F(HttpIngestTest, EveryErrorCodeIsTheSameOnTheSocketAndOverHttp) {
  start_agent();
  json bad_sale = valid_sale("r9");
  bad_sale["currency"] = "euro";
  bad_sale["lines"][0]["qty"] = 1.5;
  struct Case {
    std::string name;
    std::string line;
    std::string error;
    int status;
  };
  const std::vector<Case> cases = {
      {"not JSON", "{\"type\": \"pos.void\",", "bad_json", 400},
      {"not an object", "\"a string\"", "invalid_event", 422},
      {"no type", json{{"data", json::object()}}.dump(), "invalid_event", 422},
      {"a contract broken twice",
       json{{"type", "pos.sale.completed"}, {"data", bad_sale}}.dump(), "invalid_event", 422},
      {"a version the agent does not know",
       json{{"type", "pos.sale.completed"}, {"v", 99}, {"data", valid_sale("r9")}}.dump(),
       "invalid_event", 422},
      {"an unknown type", json{{"type", "no.such.type"}, {"data", json::object()}}.dump(),
       "unknown_type", 422},
      {"longer than ingest.max_line_bytes",
       json{{"type", "pos.void"}, {"data", {{"blob", std::string(5000, 'x')}}}}.dump(),
       "too_large", 413},
  };
  Producer producer(agent_->socket_path());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    json on_socket = producer.request(c.line, 20s);
    HttpAnswer over_http = post(c.line);
    EXPECT_EQ(on_socket.value("error", ""), c.error) << on_socket.dump();
    EXPECT_EQ(over_http.status, c.status) << over_http.raw;
    ASSERT_TRUE(over_http.body.is_object()) << over_http.raw;
    EXPECT_EQ(over_http.body.value("error", ""), c.error) << over_http.raw;
    EXPECT_EQ(over_http.body.value("ok", true), false);
    EXPECT_EQ(over_http.body.value("violations", json()), on_socket.value("violations", json()));
    // The message too, but for a line's length, which HTTP calls an event's.
    if (c.error != "too_large") {
      EXPECT_EQ(over_http.body, on_socket) << "socket: " << on_socket.dump();
    }
  }
  // Refusals are counted as on the socket: two per case.
  json status = status_json();
  ASSERT_TRUE(status.is_object()) << status.dump();
}

TEST_F(HttpIngestTest, IdempotencyKeyIsTheEventsIdSoARetryIsADuplicate) {
  start_agent();
  json req = {{"type", "pos.sale.completed"}, {"data", valid_sale("r5")}};
  HttpAnswer first = post(req.dump(), {"Idempotency-Key: till-3/r5"});
  ASSERT_EQ(first.status, 200) << first.raw;
  EXPECT_EQ(first.body.value("id", ""), "till-3/r5");
  HttpAnswer retry = post(req.dump(), {"Idempotency-Key: till-3/r5"});
  ASSERT_EQ(retry.status, 200) << retry.raw;
  EXPECT_EQ(retry.body.value("duplicate", false), true) << retry.raw;
  EXPECT_EQ(retry.body.value("seq", 0), first.body.value("seq", -1));

  // The same id in both is fine; different ones are refused, and so is a key for an array.
  req["id"] = "till-3/r5";
  EXPECT_EQ(post(req.dump(), {"Idempotency-Key: till-3/r5"}).status, 200);
  HttpAnswer differ = post(req.dump(), {"Idempotency-Key: till-3/r6"});
  EXPECT_EQ(differ.status, 422) << differ.raw;
  EXPECT_NE(differ.body.value("message", "").find("differ"), std::string::npos) << differ.raw;
  HttpAnswer array = post(json::array({req}).dump(), {"Idempotency-Key: k"});
  EXPECT_EQ(array.status, 422) << array.raw;
  ASSERT_TRUE(wait_for_events(1));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(events().size(), 1u) << "the retry was stored twice";
}

TEST_F(HttpIngestTest, ABodyOverTheLimitIs413WithTheReplyShapeAndNothingStored) {
  agent_->config().extra["ingest"]["http"]["max_body_bytes"] = 2048;
  start_agent();
  json events = json::array();
  for (int i = 0; i < 100; ++i) {  // about 4.5 kB
    events.push_back({{"id", "big-" + std::to_string(i)}, {"type", "pos.void"},
                      {"data", json::object()}});
  }
  HttpAnswer a = post(events.dump());
  ASSERT_EQ(a.status, 413) << a.raw;
  EXPECT_EQ(a.body.value("ok", true), false) << a.raw;
  EXPECT_EQ(a.body.value("error", ""), "too_large") << a.raw;
  EXPECT_NE(a.body.value("message", "").find("ingest.http.max_body_bytes"), std::string::npos);
  json status = status_json();
  EXPECT_EQ(status["outbox"].value("pending", -1), 0) << status.dump();
}

// A till that posts one sale at a time on a kept-alive connection, the headers and the body
// written apart. With Nagle's algorithm on the agent's side, each reply's body waited for the
// client's delayed ACK of its headers: about 40 ms a request (measured 46 ms), where the commit
// itself takes a few. Median of 15 requests, far from both.
TEST_F(HttpIngestTest, OneEventPerRequestOnAKeptAliveConnectionIsNotHeldByDelayedAcks) {
  start_agent();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // The client's own side as curl has it: its body does not wait for the agent's ACK.
  const int one = 1;
  ASSERT_EQ(::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::vector<double> ms;
  for (int i = 0; i < 15; ++i) {
    const std::string body = request("keep/" + std::to_string(i), "pos.sale.completed",
                                     valid_sale("k" + std::to_string(i)));
    const std::string head = "POST /v1/events HTTP/1.1\r\nHost: localhost\r\n"
                             "Content-Type: application/json\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n";
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
    ASSERT_EQ(::send(fd, body.data(), body.size(), MSG_NOSIGNAL), static_cast<ssize_t>(body.size()));
    // The reply: headers, then Content-Length bytes of body.
    std::string in;
    size_t want = std::string::npos;
    char buf[4096];
    while (want == std::string::npos || in.size() < want) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      ASSERT_GT(n, 0) << "the agent closed the connection: " << in;
      in.append(buf, static_cast<size_t>(n));
      const size_t end = in.find("\r\n\r\n");
      if (want == std::string::npos && end != std::string::npos) {
        std::string lower = in.substr(0, end);
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const size_t cl = lower.find("content-length:");
        ASSERT_NE(cl, std::string::npos) << in;
        want = end + 4 + std::stoul(lower.substr(cl + 15));
      }
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                     .count());
    ASSERT_NE(in.find(" 200 "), std::string::npos) << in;
  }
  ::close(fd);
  std::sort(ms.begin(), ms.end());
  std::cout << "[ figures ] one event per request, kept alive: median " << ms[ms.size() / 2]
            << " ms, max " << ms.back() << " ms\n";
  EXPECT_LT(ms[ms.size() / 2], 25.0) << "replies wait for delayed ACKs (TCP_NODELAY off?)";
}

TEST_F(HttpIngestTest, HealthSaysTheAgentTakesEventsAndWrongMethodsAreRefused) {
  start_agent();
  HttpAnswer h = call("GET", "/v1/health", "");
  EXPECT_EQ(h.status, 200) << h.raw;
  EXPECT_EQ(h.body.value("ok", false), true) << h.raw;
  EXPECT_EQ(h.body.value("storage", ""), "writable") << h.raw;
  HttpAnswer get_events = call("GET", "/v1/events", "");
  EXPECT_EQ(get_events.status, 405) << get_events.raw;
  EXPECT_NE(get_events.headers.find("allow: post"), std::string::npos) << get_events.headers;
  EXPECT_EQ(call("GET", "/v2/nothing", "").status, 404);
}

TEST_F(HttpIngestTest, AUnixSocketPathServesTheSameContract) {
  const std::string path = (dir_->path() / "http.sock").string();
  agent_->config().extra["ingest"]["http"]["listen"] = path;
  agent_->start();
  ASSERT_TRUE(listens([&] { return unix_socket_accepts(path); })) << agent_->log();
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                std::filesystem::perms::group_read | std::filesystem::perms::group_write)
      << "the socket is for the producers' group, not the world";
  json req = {{"id", "unix-1"}, {"type", "pos.sale.completed"}, {"data", valid_sale("r7")}};
  HttpAnswer a = call("POST", "/v1/events", req.dump(), {}, path);
  EXPECT_EQ(a.status, 200) << a.raw;
  EXPECT_EQ(a.body.value("id", ""), "unix-1") << a.raw;
  EXPECT_EQ(call("GET", "/v1/health", "", {}, path).status, 200);
  // `edgesync send` reaches it as well, from standard input.
  CommandResult sent =
      send({"--http", "unix:" + path},
           request("unix-2", "pos.sale.completed", valid_sale("r8")) + "\n");
  EXPECT_TRUE(sent.exited_ok()) << sent.describe();
  EXPECT_EQ(parsed(sent.out).value("id", ""), "unix-2") << sent.describe();
  ASSERT_TRUE(wait_for_events(2)) << agent_->log();
  // A clean stop removes the socket.
  ASSERT_TRUE(agent_->terminate().has_value());
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(HttpIngestTest, AFullOutboxIs507WithRetryAfterAndTheSocketSaysTheSame) {
  agent_->config().max_bytes = 1 << 20;
  agent_->config().max_line_bytes = 16384;
  agent_->config().extra["ingest"]["unknown_types"] = "accept";  // blobs, not sales
  broker_->stop();
  start_agent();
  const std::string blob(8000, 'x');
  int status = 0;
  HttpAnswer last;
  for (int round = 0; round < 20 && status != 507; ++round) {
    json batch = json::array();
    for (int i = 0; i < 20; ++i) {
      batch.push_back({{"id", "full-" + std::to_string(round) + "-" + std::to_string(i)},
                       {"type", "test.blob"},
                       {"data", {{"blob", blob}}}});
    }
    last = post(batch.dump());
    status = last.status;
    ASSERT_TRUE(status == 200 || status == 207 || status == 507) << last.raw;
  }
  ASSERT_EQ(status, 507) << "400 events of 8 kB never filled a 1 MiB outbox";
  EXPECT_NE(last.headers.find("retry-after: 60"), std::string::npos) << last.headers;
  ASSERT_TRUE(last.body.is_array());
  EXPECT_EQ(last.body[0].value("error", ""), "outbox_full") << last.raw;
  Producer producer(agent_->socket_path());
  json on_socket = producer.request(
      json{{"id", "full-socket"}, {"type", "test.blob"}, {"data", {{"blob", blob}}}}.dump(), 20s);
  EXPECT_EQ(on_socket.value("error", ""), "outbox_full") << on_socket.dump();

  // `edgesync send --http` prints the reply, names the Retry-After and does not retry.
  CommandResult sent = send(
      {"--http", url()},
      json{{"id", "full-send"}, {"type", "test.blob"}, {"data", {{"blob", blob}}}}.dump() + "\n");
  EXPECT_EQ(sent.exit_code(), 1) << sent.describe();
  EXPECT_EQ(parsed(sent.out).value("error", ""), "outbox_full") << sent.describe();
  EXPECT_NE(sent.err.find("Retry-After: 60"), std::string::npos) << sent.describe();
}

// The same file through `edgesync send --http` and through the socket: a reply line per request
// line, in input order, the refusals byte for byte the same. The line that is not JSON is
// refused on its own; the lines around it are stored.
TEST_F(HttpIngestTest, SendOverHttpAnswersEveryLineInOrderAsTheSocketDoes) {
  start_agent();
  json bad_sale = valid_sale("r2");
  bad_sale["lines"][0]["qty"] = "two";
  const std::string file = dir_->file("mixed.ndjson");
  write_file(file, request("m-1", "pos.sale.completed", valid_sale("r1")) + "\n" +
                       request("m-2", "pos.sale.completed", bad_sale) + "\n" +
                       "{\"id\": \"m-3\", \"type\": \"pos.void\",\n" +
                       request("m-4", "pos.sale.completed", valid_sale("r4")) + "\n" +
                       "\n" +  // blank: no request
                       request("m-5", "no.such.type", json::object()) + "\n" +
                       request("m-6", "pos.sale.completed", valid_sale("r6")) + "\n");

  CommandResult over_http = send({"--http", url() + "/v1/events", file});
  EXPECT_EQ(over_http.exit_code(), 1) << "an event was refused: " << over_http.describe();
  const std::vector<std::string> http_lines = output_lines(over_http.out);
  ASSERT_EQ(http_lines.size(), 6u) << over_http.describe();
  std::vector<json> r;
  for (const auto& line : http_lines) r.push_back(parsed(line));
  EXPECT_EQ(r[0].value("id", ""), "m-1") << http_lines[0];
  EXPECT_EQ(r[0].value("seq", 0), 1) << http_lines[0];
  EXPECT_EQ(r[1].value("error", ""), "invalid_event") << http_lines[1];
  EXPECT_EQ(r[1]["violations"],
            json::array({{{"path", "/data/lines/0/qty"}, {"rule", "type"},
                          {"expected", "integer"}}}))
      << http_lines[1];
  EXPECT_EQ(r[2].value("error", ""), "bad_json") << http_lines[2];
  EXPECT_EQ(r[3].value("id", ""), "m-4") << http_lines[3];
  EXPECT_EQ(r[3].value("seq", 0), 2) << http_lines[3];
  EXPECT_EQ(r[4].value("error", ""), "unknown_type") << http_lines[4];
  EXPECT_EQ(r[5].value("id", ""), "m-6") << http_lines[5];
  EXPECT_EQ(r[5].value("seq", 0), 3) << http_lines[5];

  CommandResult on_socket = send({"--socket", agent_->socket_path(), file});
  EXPECT_EQ(on_socket.exit_code(), 1) << on_socket.describe();
  const std::vector<std::string> socket_lines = output_lines(on_socket.out);
  ASSERT_EQ(socket_lines.size(), http_lines.size()) << on_socket.describe();
  for (size_t i : {1, 2, 4}) {
    EXPECT_EQ(http_lines[i], socket_lines[i]) << "line " << i;
  }
  for (size_t i : {0, 3, 5}) {  // stored by HTTP: duplicates on the socket, the same seq
    EXPECT_EQ(parsed(socket_lines[i]).value("duplicate", false), true) << socket_lines[i];
    EXPECT_EQ(parsed(socket_lines[i]).value("seq", -1), r[i].value("seq", 0));
  }

  const json stored = outbox_events();
  ASSERT_TRUE(stored.is_array()) << stored.dump();
  ASSERT_EQ(stored.size(), 3u) << stored.dump();
  EXPECT_EQ(stored[0].value("id", ""), "m-1");
  EXPECT_EQ(stored[1].value("id", ""), "m-4");
  EXPECT_EQ(stored[2].value("id", ""), "m-6");
}

TEST_F(HttpIngestTest, SendOverHttpExitsZeroWhenEveryEventIsStored) {
  start_agent();
  std::string text;
  for (int i = 1; i <= 5; ++i) {
    text += request("ok-" + std::to_string(i), "pos.sale.completed",
                    valid_sale("r" + std::to_string(i))) +
            "\r\n";  // a till's line ends
  }
  CommandResult sent = send({"--http", url()}, text);  // standard input
  ASSERT_TRUE(sent.exited_ok()) << sent.describe();
  const std::vector<std::string> lines = output_lines(sent.out);
  ASSERT_EQ(lines.size(), 5u) << sent.describe();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(parsed(lines[i]).value("seq", 0), i + 1) << lines[i];
  }
  const json stored = outbox_events();
  ASSERT_TRUE(stored.is_array()) << stored.dump();
  ASSERT_EQ(stored.size(), 5u) << stored.dump();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(stored[i].value("id", ""), "ok-" + std::to_string(i + 1));
  }
  ASSERT_TRUE(wait_for_events(5)) << agent_->log();

  // Sent again: every one a duplicate, which is accepted.
  CommandResult again = send({"--http", url()}, text);
  EXPECT_TRUE(again.exited_ok()) << again.describe();
  EXPECT_EQ(parsed(output_lines(again.out).at(4)).value("duplicate", false), true);
}

// More lines than one request may carry (the agent refuses an array of over 1,000 whole):
// they go in several requests, all stored, the replies still in input order.
TEST_F(HttpIngestTest, SendOverHttpSplitsMoreThanAThousandLinesIntoSeveralRequests) {
  start_agent();
  constexpr int kLines = 2500;
  std::string text;
  for (int i = 1; i <= kLines; ++i) {
    text += request("many-" + std::to_string(i), "pos.sale.completed",
                    valid_sale("r" + std::to_string(i))) +
            "\n";
  }
  const std::string file = dir_->file("many.ndjson");
  write_file(file, text);
  CommandResult sent = send({"--http", url(), file});
  ASSERT_TRUE(sent.exited_ok()) << sent.describe().substr(0, 2000);
  const std::vector<std::string> lines = output_lines(sent.out);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kLines)) << sent.err;
  for (int i = 0; i < kLines; ++i) {
    const json reply = parsed(lines[i]);
    ASSERT_EQ(reply.value("id", ""), "many-" + std::to_string(i + 1)) << lines[i];
    ASSERT_EQ(reply.value("seq", 0), i + 1) << lines[i];
  }
  const json stored = outbox_events();
  ASSERT_TRUE(stored.is_array());
  EXPECT_EQ(stored.size(), static_cast<size_t>(kLines));
}

// Requests stay within the agent's default 1 MiB body: 1.5 MB of events go in two or more, all
// stored. A line longer than the body limit goes alone and gets the agent's 413; the rest go.
TEST_F(HttpIngestTest, SendOverHttpKeepsRequestsUnderTheBodyLimit) {
  agent_->config().max_line_bytes = 2 << 20;
  agent_->config().extra["ingest"]["unknown_types"] = "accept";  // blobs, not sales
  start_agent();
  const std::string blob(3000, 'x');
  std::string text;
  constexpr int kLines = 500;
  for (int i = 1; i <= kLines; ++i) {
    text += request("blob-" + std::to_string(i), "test.blob", {{"blob", blob}}) + "\n";
    if (i == 250) {
      text += request("huge", "test.blob", {{"blob", std::string(1100000, 'y')}}) + "\n";
    }
  }
  CommandResult sent = send({"--http", url()}, text);
  EXPECT_EQ(sent.exit_code(), 1) << sent.describe().substr(0, 2000);
  const std::vector<std::string> lines = output_lines(sent.out);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kLines + 1)) << sent.err;
  size_t accepted = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const json reply = parsed(lines[i]);
    if (i == 250) {
      EXPECT_EQ(reply.value("error", ""), "too_large") << lines[i].substr(0, 300);
    } else {
      EXPECT_EQ(reply.value("ok", false), true) << lines[i].substr(0, 300);
      accepted += reply.value("ok", false) ? 1 : 0;
    }
  }
  EXPECT_EQ(accepted, static_cast<size_t>(kLines));
  const json stored = outbox_events();
  ASSERT_TRUE(stored.is_array());
  EXPECT_EQ(stored.size(), static_cast<size_t>(kLines));
}

// An agent whose ingest.http.max_body_bytes is below the sender's 1 MiB refuses a whole array
// with 413 before reading any of it: the sender posts the halves again, down to single
// events, so what the socket would take is taken over HTTP too.
TEST_F(HttpIngestTest, SendOverHttpSplitsBatchesAnAgentWithASmallerBodyLimitRefuses) {
  agent_->config().extra["ingest"]["http"]["max_body_bytes"] = 4096;
  start_agent();
  std::string text;
  constexpr int kLines = 40;  // ~13 KB in all, ~330 bytes each
  for (int i = 1; i <= kLines; ++i) {
    text += request("small-" + std::to_string(i), "pos.sale.completed",
                    valid_sale("s" + std::to_string(i))) +
            "\n";
  }
  CommandResult sent = send({"--http", url()}, text);
  ASSERT_TRUE(sent.exited_ok()) << sent.describe().substr(0, 2000);
  const std::vector<std::string> lines = output_lines(sent.out);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kLines)) << sent.err;
  for (int i = 0; i < kLines; ++i) {
    const json reply = parsed(lines[i]);
    EXPECT_EQ(reply.value("id", ""), "small-" + std::to_string(i + 1)) << lines[i];
    EXPECT_EQ(reply.value("seq", 0), i + 1) << lines[i];
  }
  EXPECT_EQ(outbox_events().size(), static_cast<size_t>(kLines));
}

TEST_F(HttpIngestTest, SendOverHttpWithNoAgentListeningSaysSoAndExits2) {
  const std::string file = dir_->file("one.ndjson");
  write_file(file, request("x-1", "pos.void", json::object()) + "\n");
  CommandResult refused = send({"--http", url(), file});  // nothing listens on port_
  EXPECT_EQ(refused.exit_code(), 2) << refused.describe();
  EXPECT_NE(refused.err.find("cannot connect to " + url()), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("ingest.http.listen"), std::string::npos) << refused.err;
  EXPECT_TRUE(refused.out.empty()) << refused.out;

  CommandResult both = send({"--http", url(), "--socket", agent_->socket_path(), file});
  EXPECT_EQ(both.exit_code(), 2) << both.describe();
  CommandResult tls = send({"--http", "https://127.0.0.1:1", file});
  EXPECT_EQ(tls.exit_code(), 2) << tls.describe();
  EXPECT_NE(tls.err.find("only http://"), std::string::npos) << tls.err;
}

}  // namespace
}  // namespace edgesync::test
