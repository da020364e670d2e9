#include "tests/harness/mosquitto_broker.h"

#include <signal.h>
#include <unistd.h>

#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/harness/net_util.h"
#include "tests/harness/temp_dir.h"

namespace edgesync::test {

MosquittoBroker::MosquittoBroker(std::string dir, TlsMaterial tls, BrokerOptions options)
    : dir_(std::move(dir)), tls_(std::move(tls)), options_(options) {
  port_ = pick_free_port();
  if (options_.plain_listener) {
    do {
      plain_port_ = pick_free_port();
    } while (plain_port_ == port_);
  }
}

MosquittoBroker::~MosquittoBroker() {
  if (child_ && child_->running()) kill();
}

pid_t MosquittoBroker::pid() const { return child_ ? child_->pid() : 0; }

std::string MosquittoBroker::uri() const { return "ssl://127.0.0.1:" + std::to_string(port_); }

std::string MosquittoBroker::log_path() const { return dir_ + "/mosquitto.log"; }

std::string MosquittoBroker::log() const { return read_file(log_path()); }

std::string MosquittoBroker::write_config() const {
  std::ostringstream c;
  if (::geteuid() == 0) c << "user root\n";
  c << "per_listener_settings false\n"
    << "allow_anonymous true\n"
    << "max_inflight_messages 100\n"
    << "max_queued_messages " << options_.max_queued_messages << "\n"
    << "max_queued_bytes 0\n";
  if (options_.persistence) {
    c << "persistence true\n"
      << "persistence_location " << dir_ << "/\n"
      << "persistence_file mosquitto.db\n"
      << "autosave_interval 5\n"
      << "autosave_on_changes false\n";
  } else {
    c << "persistence false\n";
  }
  c << "set_tcp_nodelay true\n"
    << "log_dest file " << log_path() << "\n"
    << "log_type error\nlog_type warning\nlog_type notice\n";
  if (options_.log_information) c << "log_type information\n";
  c << "connection_messages true\n"
    << "log_timestamp true\n"
    << "log_timestamp_format %H:%M:%S\n"
    << options_.extra_config << "\n";
  if (!options_.acl.empty()) {
    write_file(dir_ + "/acl", options_.acl);
    c << "acl_file " << dir_ << "/acl\n";
  }
  c << "\n"
    << "listener " << port_ << " 127.0.0.1\n"
    << "protocol mqtt\n"
    << "cafile " << tls_.ca_file << "\n"
    << "certfile " << tls_.server_cert_file << "\n"
    << "keyfile " << tls_.server_key_file << "\n"
    << "require_certificate " << (options_.require_client_certificate ? "true" : "false") << "\n";
  if (options_.plain_listener) {
    c << "\nlistener " << plain_port_ << " 127.0.0.1\n"
      << "protocol mqtt\n";
  }
  const std::string path = dir_ + "/mosquitto.conf";
  write_file(path, c.str());
  return path;
}

void MosquittoBroker::start(std::chrono::milliseconds timeout) {
  if (child_ && child_->running()) throw std::runtime_error("broker already running");
  const std::string conf = write_config();
  child_ = std::make_unique<ChildProcess>();
  child_->spawn({"mosquitto", "-c", conf}, log_path());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (!child_->running()) {
      throw std::runtime_error("mosquitto exited during start-up (" +
                               describe_wait_status(*child_->exit_status()) + "); log:\n" + log());
    }
    if (tcp_port_accepts(port_) && (!options_.plain_listener || tcp_port_accepts(plain_port_))) {
      return;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("mosquitto not listening on port " + std::to_string(port_) +
                               " after start-up timeout; log:\n" + log());
    }
    // A short poll: the bench times backlog drains from the moment it calls start().
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void MosquittoBroker::stop() {
  if (child_) child_->stop(std::chrono::seconds(15));
}

void MosquittoBroker::kill() {
  if (!child_ || !child_->running()) return;
  child_->signal(SIGKILL);
  child_->wait(std::chrono::seconds(10));
}

void MosquittoBroker::restart() {
  stop();
  start();
}

bool MosquittoBroker::running() { return child_ && child_->running(); }

}  // namespace edgesync::test
