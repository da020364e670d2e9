// `edgesync keys generate` (the central team's config-signing key pair) and `edgesync enroll`
// (a box's own key and certificate signing request). Private keys are created with mode 0600
// from the start and never replace an existing file: an overwritten key cannot be recovered,
// and the certificate or the boxes that trust it would be cut off.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "agent/cli.h"
#include "agent/config_tools.h"
#include "platform/crypto.h"
#include "platform/files.h"

namespace edgesync::agent {
namespace {

// Creates `path` with exactly `mode` (whatever the umask) and writes `contents`, synced.
// Unavailable if something already exists there; nothing is replaced.
Status write_new_file(const std::string& path, const std::string& contents, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    if (errno == EEXIST) return Status::unavailable(path + " already exists");
    return Status::io_error("cannot create " + path + ": " + std::strerror(errno));
  }
  Status s = Status::ok();
  if (::fchmod(fd, mode) != 0) s = Status::io_error("cannot chmod " + path);
  const char* p = contents.data();
  size_t left = contents.size();
  while (s && left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = Status::io_error("cannot write " + path + ": " + std::strerror(errno));
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (s && ::fsync(fd) != 0) s = Status::io_error("cannot sync " + path);
  ::close(fd);
  if (!s) ::unlink(path.c_str());
  return s;
}

// DIR (and its parents) with mode 0700 if missing: it is where private keys go.
Status make_key_dir(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return Status::ok();
  Status s = platform::ensure_parent_dir(dir + "/.", 0700);
  if (!s) return s;
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status::invalid_argument(dir + " is not a directory");
  }
  return Status::ok();
}

// "keys/" and "keys" name the same directory; the paths printed should not show "//".
std::string trim_slashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

std::string absolute(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

}  // namespace

int cli_keys_generate(const std::string& dir, const std::string& name) {
  const std::string out_dir = trim_slashes(dir);
  const char* me = "edgesync keys generate: ";
  if (!is_key_id(name)) {
    std::cerr << me << "--name \"" << name
              << "\": use 1-64 of A-Z a-z 0-9 . _ - (it becomes the key id)\n";
    return 2;
  }
  const std::string key_path = out_dir + "/" + name + ".key";
  const std::string pub_path = out_dir + "/" + name + ".pub";
  // Both checked before anything is written: a half-made pair helps nobody.
  for (const auto& p : {key_path, pub_path}) {
    if (platform::path_exists(p)) {
      std::cerr << me << p << " already exists; a key is never overwritten (move it away, or "
                << "choose another --name)\n";
      return 2;
    }
  }
  if (Status s = make_key_dir(out_dir); !s) {
    std::cerr << me << s.message() << "\n";
    return 2;
  }
  auto pair = platform::crypto::generate_p256_key();
  if (!pair) {
    std::cerr << me << pair.status().message() << "\n";
    return 1;
  }
  if (Status s = write_new_file(key_path, pair->private_pem, 0600); !s) {
    std::cerr << me << s.message() << "\n";
    return s.code() == Status::Code::kUnavailable ? 2 : 1;
  }
  if (Status s = write_new_file(pub_path, pair->public_pem, 0644); !s) {
    ::unlink(key_path.c_str());  // ours, made a moment ago: no pair is left half-made
    std::cerr << me << s.message() << "\n";
    return s.code() == Status::Code::kUnavailable ? 2 : 1;
  }
  platform::sync_dir(out_dir);
  std::cout << "private key  " << key_path << "\n"
            << "public key   " << pub_path << "\n"
            << "hint: copy " << name << ".pub to each box and list it under "
            << "remote_config.trusted_keys with a key id (\"" << name << "\": \"/path/to/" << name
            << ".pub\"); " << name << ".key stays on this signing workstation (edgesync config "
            << "sign --key " << key_path << " --key-id " << name << " ...)\n";
  return 0;
}

int cli_enroll(const Config& config, const std::string& dir) {
  const std::string out_dir = trim_slashes(dir);
  const char* me = "edgesync enroll: ";
  const std::string key_path = out_dir + "/device.key";
  const std::string csr_path = out_dir + "/device.csr";
  if (platform::path_exists(key_path)) {
    std::cerr << me << key_path << " already exists; a key is never overwritten (it may be the "
              << "one the box's certificate is for). To make a new one, move it away first: mv "
              << key_path << " " << key_path << ".old\n";
    return 2;
  }
  if (Status s = make_key_dir(out_dir); !s) {
    std::cerr << me << s.message() << "\n";
    return 2;
  }
  auto pair = platform::crypto::generate_p256_key();
  if (!pair) {
    std::cerr << me << pair.status().message() << "\n";
    return 1;
  }
  auto csr =
      platform::crypto::make_csr(pair->private_pem, config.device.id, config.device.store_id);
  if (!csr) {
    std::cerr << me << "cannot make the signing request: " << csr.status().message() << "\n";
    return 1;
  }
  if (Status s = write_new_file(key_path, pair->private_pem, 0600); !s) {
    std::cerr << me << s.message() << "\n";
    return s.code() == Status::Code::kUnavailable ? 2 : 1;
  }
  // The request holds no secret and belongs to this key alone: an older one is replaced.
  if (Status s = platform::write_file_atomic(csr_path, *csr); !s) {
    ::unlink(key_path.c_str());
    std::cerr << me << s.message() << "\n";
    return 1;
  }
  ::chmod(csr_path.c_str(), 0644);
  platform::sync_dir(out_dir);
  const std::string abs_key = absolute(key_path);
  std::cout << "private key  " << key_path << " (mode 0600; stays on this box)\n"
            << "request      " << csr_path << " (CN=" << config.device.id
            << ", O=" << config.device.store_id << ")\n"
            << "next steps:\n"
            << "  1. send " << csr_path << " to the fleet CA (it holds no secret)\n"
            << "  2. install the certificate the CA returns on this box and set, in the config "
               "file:\n"
            << "       \"hub\": {\"cert_file\": \"/path/to/device.crt\", \"key_file\": \""
            << abs_key << "\"}\n"
            << "  3. edgesync check-config, then reload or restart the agent\n";
  return 0;
}

}  // namespace edgesync::agent
