// `edgesync send --http URL`: the same request lines and the same reply lines as through the
// ingest socket (agent/cli_send.cc), over the agent's HTTP ingest (docs/PROTOCOL.md, "Local
// contract: HTTP"), so that one tool tests either way in.
//
// Lines go in batches, each posted as one JSON array: at most kMaxEventsPerRequest events and
// kMaxBodyBytes, the agent's default ingest.http.max_body_bytes (a line longer than that goes
// alone and gets the agent's 413). Every line that is JSON goes inside an array, even alone, so
// that the agent takes it as one event exactly as the socket would (a line that is itself an
// array is one event there too, not a batch). A line that is not JSON would spoil the whole
// array, so it is posted alone, as it is: the agent answers it bad_json as the socket does and
// the lines around it still go.
//
// Nothing is retried: a 503 or 507 (with Retry-After) is printed, said on stderr and makes the
// exit code 1; a technician should see what the agent answered.
#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/cli.h"
#include "agent/cli_send.h"
#include "agent/http_body.h"

namespace edgesync::agent {

namespace {

// The agent's default ingest.http.max_body_bytes: a body up to it is taken whole.
constexpr size_t kMaxBodyBytes = size_t{1} << 20;
constexpr time_t kConnectTimeoutS = 5;
// The agent answers after the commit: a full batch on a slow card takes seconds, not minutes.
constexpr time_t kReplyTimeoutS = 60;

struct Target {
  std::string unix_path;  // the unix: form; else host and port
  std::string host;
  int port = 80;
  std::string path = "/v1/events";
};

std::optional<Target> parse_url(const std::string& url, std::string* error) {
  constexpr std::string_view kUnix = "unix:", kHttp = "http://";
  Target t;
  if (url.rfind(kUnix, 0) == 0) {
    t.unix_path = url.substr(kUnix.size());
    if (t.unix_path.empty() || t.unix_path.front() != '/') {
      *error = "the unix: form takes the socket's absolute path, e.g. unix:/run/edgesync/http.sock";
      return std::nullopt;
    }
    if (t.unix_path.size() >= sizeof(sockaddr_un::sun_path)) {
      *error = "path too long for a Unix socket";
      return std::nullopt;
    }
    return t;
  }
  if (url.rfind("https://", 0) == 0) {
    *error =
        "only http:// is supported: the agent's HTTP ingest has no TLS (it is for loopback "
        "or a Unix socket)";
    return std::nullopt;
  }
  if (url.rfind(kHttp, 0) != 0) {
    *error = "give http://HOST:PORT[/PATH] or unix:/PATH (ingest.http.listen's two forms)";
    return std::nullopt;
  }
  const std::string rest = url.substr(kHttp.size());
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos && rest.size() > slash + 1) t.path = rest.substr(slash);
  std::string port;
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:PORT
    const size_t close = authority.find(']');
    if (close == std::string::npos) {
      *error = "an IPv6 address needs its closing ]";
      return std::nullopt;
    }
    t.host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        *error = "expected :PORT after ]";
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.find(':');
    t.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (t.host.empty()) {
    *error = "no host: give http://HOST:PORT, e.g. http://127.0.0.1:8788";
    return std::nullopt;
  }
  if (!port.empty()) {
    const bool digits =
        port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
    const int n = digits ? std::stoi(port) : 0;
    if (n < 1 || n > 65535) {
      *error = "the port must be a number from 1 to 65535";
      return std::nullopt;
    }
    t.port = n;
  }
  return t;
}

// httplib says only that the connection failed. The system's reason comes from a connect of
// our own to the same place, bounded like httplib's.
std::string connect_failure(const Target& t) {
  int err = 0;
  if (!t.unix_path.empty()) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, t.unix_path.c_str(), t.unix_path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      err = errno;
    }
    if (fd >= 0) ::close(fd);
  } else {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(t.host.c_str(), std::to_string(t.port).c_str(), &hints, &found);
    if (rc != 0) return ::gai_strerror(rc);
    const int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                            found->ai_protocol);
    if (fd < 0 || ::connect(fd, found->ai_addr, found->ai_addrlen) != 0) err = errno;
    if (fd >= 0 && err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(kConnectTimeoutS * 1000)) == 1) {
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      } else {
        err = ETIMEDOUT;
      }
    }
    if (fd >= 0) ::close(fd);
    ::freeaddrinfo(found);
  }
  // It connects now: the agent came up in between, or httplib failed for its own reason.
  return err != 0 ? std::strerror(err) : "the connection failed";
}

// One request: a JSON array of lines, or one line that is not JSON, as it is.
struct Batch {
  std::vector<std::string> lines;
  std::vector<size_t> numbers;  // each line's number in the input
  size_t bytes = 1;  // of the array: brackets and commas included
  size_t events = 0;
  size_t first_line = 0, last_line = 0;  // the input's line numbers, for messages

  // Whether `line` still fits, JSON array punctuation included.
  bool has_room_for(const std::string& line) const {
    return events < kMaxEventsPerRequest && bytes + line.size() + 1 <= kMaxBodyBytes;
  }
  void add(const std::string& line, size_t line_number) {
    lines.push_back(line);
    numbers.push_back(line_number);
    bytes += line.size() + 1;
    if (events == 0) first_line = line_number;
    last_line = line_number;
    ++events;
  }
  // The body as posted.
  std::string array_body() const {
    std::string body;
    body.reserve(bytes);
    for (const auto& l : lines) {
      body += body.empty() ? '[' : ',';
      body += l;
    }
    return body + ']';
  }
  // The first `n` lines and the rest, each a batch of its own.
  std::pair<Batch, Batch> split(size_t n) const {
    std::pair<Batch, Batch> halves;
    for (size_t i = 0; i < lines.size(); ++i) {
      (i < n ? halves.first : halves.second).add(lines[i], numbers[i]);
    }
    return halves;
  }
  void clear() { *this = Batch(); }
};

class HttpSender {
 public:
  HttpSender(const Target& target, const std::string& url) : target_(target), url_(url) {
    client_ = target.unix_path.empty() ? std::make_unique<httplib::Client>(target.host, target.port)
                                       : std::make_unique<httplib::Client>(target.unix_path, 80);
    if (!target.unix_path.empty()) client_->set_address_family(AF_UNIX);
    // A connection per request: nothing of one request can be lost to a kept-alive
    // connection the agent closed meanwhile, and loopback connects cost microseconds.
    client_->set_keep_alive(false);
    client_->set_connection_timeout(kConnectTimeoutS, 0);
    // Headers and body go in separate writes: without this the body waits for the agent's
    // delayed ACK of the headers (about 40 ms a request).
    client_->set_tcp_nodelay(true);
    client_->set_read_timeout(kReplyTimeoutS, 0);
    client_->set_write_timeout(kReplyTimeoutS, 0);
  }

  // Posts one request and prints a reply line per event in it. False when sending must stop
  // (exit_code() then says how it ended).
  bool post(const std::string& body, const Batch& batch) {
    httplib::Result res = client_->Post(target_.path.c_str(), body, "application/json");
    // An agent with a smaller ingest.http.max_body_bytes refuses the whole array before
    // reading any of it (nothing stored): the halves go again, down to one event each, whose
    // 413 is then its own (an event over the limit).
    if (res && res->status == 413 && batch.events > 1 && !batch.lines.empty() &&
        body.front() == '[') {
      const auto [left, right] = batch.split(batch.events / 2);
      return post(left.array_body(), left) && post(right.array_body(), right);
    }
    if (!res) {
      const httplib::Error e = res.error();
      if (e == httplib::Error::Connection || e == httplib::Error::ConnectionTimeout) {
        // Nothing of this request reached the agent.
        std::cerr << "edgesync send: cannot connect to " << url_ << ": " << connect_failure(target_)
                  << " (is the agent running with ingest.http.listen set?)\n";
        connect_failed_ = true;
        return false;
      }
      sent_ += batch.events;
      last_sent_line_ = batch.last_line;
      failure_ = "HTTP: " + httplib::to_string(e);
      return false;
    }
    sent_ += batch.events;
    last_sent_line_ = batch.last_line;
    if (!print_answer(res->body, batch)) {
      std::string start = res->body.substr(0, 200);  // on one line
      for (char& c : start) {
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
      }
      std::cerr << "edgesync send: " << url_ << " answered HTTP " << res->status
                << " without the agent's replies: " << start << "\n";
      failure_ = "HTTP " + std::to_string(res->status) + " without replies";
      return false;
    }
    if (res->has_header("Retry-After")) {
      std::cerr << "edgesync send: HTTP " << res->status << " for input line" << lines(batch)
                << ", Retry-After: " << res->get_header_value("Retry-After")
                << " s; not retried: send those events again later, with the same ids\n";
    }
    std::cout.flush();
    return true;
  }

  int exit_code() const {
    if (connect_failed_) return 2;
    return tally_.exit_code(sent_, failure_);
  }
  // The input's last line posted (0: none), for saying where sending stopped.
  size_t last_sent_line() const { return last_sent_line_; }
  // The last request could not connect: none of it was sent.
  bool connect_failed() const { return connect_failed_; }

 private:
  // " 7" or "s 7-1006", after "line".
  static std::string lines(const Batch& batch) {
    if (batch.first_line == batch.last_line) return " " + std::to_string(batch.first_line);
    return "s " + std::to_string(batch.first_line) + "-" + std::to_string(batch.last_line);
  }

  // The reply array, one reply object per event; or one object: that event's reply, or the
  // refusal of the whole request, which is every event's reply. False: not the contract's.
  bool print_answer(std::string_view body, const Batch& batch) {
    const size_t end = body.find_last_not_of(" \t\r\n");
    body = body.substr(0, end == std::string_view::npos ? 0 : end + 1);
    if (body.empty() || !is_json_text(body)) return false;
    if (body.front() == '{') {
      for (size_t i = 0; i < batch.events; ++i) tally_.reply(body);
      return true;
    }
    if (body.front() != '[') return false;
    const std::vector<std::string_view> replies = json_array_elements(body);
    if (replies.size() != batch.events) return false;
    for (std::string_view r : replies) {
      if (r.empty() || r.front() != '{') return false;
    }
    for (std::string_view r : replies) tally_.reply(r);
    return true;
  }

  Target target_;
  std::string url_;
  std::unique_ptr<httplib::Client> client_;
  SendTally tally_;
  size_t sent_ = 0;
  size_t last_sent_line_ = 0;
  bool connect_failed_ = false;
  std::string failure_;
};

}  // namespace

int cli_send_http(const std::string& url, const std::string& input_file) {
  std::string error;
  const std::optional<Target> target = parse_url(url, &error);
  if (!target) {
    std::cerr << "edgesync send: --http " << url << ": " << error << "\n";
    return 2;
  }
  SendInput input;
  if (!input.open(input_file)) return 2;
  // httplib's client writes without MSG_NOSIGNAL: an agent that closes the connection first
  // must make a write error, not end this process.
  std::signal(SIGPIPE, SIG_IGN);
  HttpSender sender(*target, url);
  Batch batch;
  auto flush = [&] {
    if (batch.events == 0) return true;
    const bool ok = sender.post(batch.array_body(), batch);
    batch.clear();
    return ok;
  };
  std::string line;
  bool going = true;
  bool unsent_line = false;  // stopped with `line` read and not posted
  while (going && input.next(&line)) {
    if (!is_json_text(line)) {
      going = flush();
      if (!going) {
        unsent_line = true;
        break;
      }
      Batch alone;
      alone.add(line, input.line_number());
      going = sender.post(line, alone);
      continue;
    }
    if (!batch.has_room_for(line)) {
      going = flush();
      if (!going) {
        unsent_line = true;
        break;
      }
    }
    batch.add(line, input.line_number());
  }
  if (going) going = flush();
  if (!going && sender.last_sent_line() > 0 &&
      (sender.connect_failed() || unsent_line || input.next(&line))) {
    std::cerr << "edgesync send: stopped: nothing after input line " << sender.last_sent_line()
              << " was sent\n";
  }
  return sender.exit_code();
}

}  // namespace edgesync::agent
