#include "agent/spool_ingest.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <vector>

#include "agent/spool_names.h"
#include "agent/spool_reader.h"
#include "agent/spool_result.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/mutex.h"
#include "platform/threads.h"

namespace edgesync::agent {
namespace {

using Clock = std::chrono::steady_clock;
using platform::LogLevel;

// Requests handed to the ingest thread whose outcomes are not yet in the result file, and their
// bytes: as the socket's per-connection bounds. Enough for full group commits; a big file
// waits here, not in memory.
constexpr size_t kMaxInFlight = 1024;
constexpr size_t kMaxInFlightBytes = size_t{4} << 20;
// Requests per hand-off: one handler on the ingest thread runs at most this many, so socket
// producers' reads interleave with a big file's.
constexpr size_t kMaxBatch = 128;
constexpr size_t kMaxBatchBytes = size_t{512} << 10;
// A file that must be taken again (a refusal that clears, a move that failed) waits this long,
// doubling up to the most.
constexpr std::chrono::seconds kFirstRetry{5};
constexpr std::chrono::seconds kMaxRetry{300};
constexpr const char* kDoneDir = "done";
constexpr const char* kFailedDir = "failed";

Status errno_status(const std::string& what) {
  return Status::io_error(what + ": " + std::strerror(errno));
}

// Creates `path` with `mode` if missing (the mode set exactly, whatever the umask); checks it is
// a folder the agent may read and write.
Status prepare_folder(const std::string& path, unsigned mode) {
  if (::mkdir(path.c_str(), mode) == 0) {
    ::chmod(path.c_str(), mode);
  } else if (errno != EEXIST) {
    return errno_status("ingest.spool_dir: cannot create " + path);
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errno_status("ingest.spool_dir: " + path);
  if (!S_ISDIR(st.st_mode)) {
    return Status::invalid_argument("ingest.spool_dir: " + path + " exists and is not a folder");
  }
  if (::access(path.c_str(), R_OK | W_OK | X_OK) != 0) {
    return errno_status("ingest.spool_dir: the agent may not read and write " + path);
  }
  return Status::ok();
}

}  // namespace

struct SpoolIngest::Worker {
  // A request handed over, until its outcome is in the result file.
  struct Slot {
    int64_t number = 0;
    std::string id;
    size_t bytes = 0;
    bool ready = false;
    bool ok = false;
    IngestError error = IngestError::kBadJson;
    std::string reply;
  };
  // What the ingest thread and the spool thread share. Held by the handlers too: a completion
  // that comes after the spool gave up on its file finds it, sees the file's generation has
  // passed, and drops its outcome.
  struct Shared {
    platform::Mutex mu;
    platform::CondVar cv;
    bool stop GUARDED_BY(mu) = false;   // no new file or request; finish those handed over
    bool abort GUARDED_BY(mu) = false;  // leave at once (the agent is going)
    std::function<void()> stopped GUARDED_BY(mu);
    uint64_t generation GUARDED_BY(mu) = 0;  // the file in progress
    std::deque<Slot> slots GUARDED_BY(mu);
    uint64_t first GUARDED_BY(mu) = 0;  // index of slots.front()
    size_t bytes GUARDED_BY(mu) = 0;
  };
  // One request on its way to the ingest thread.
  struct Item {
    uint64_t index = 0;
    std::string text;  // the request; for a too-large one, the refusal's message
    bool too_large = false;
    std::string key;    // <file>:<number>: a refusal's dead letter is kept under it
    std::string where;  // "spool file F line N", for that dead letter's reason
  };

  Worker(IngestCore& c, SpoolIngest& o) : core(c), owner(o), shared(std::make_shared<Shared>()) {}
  ~Worker() {
    if (inotify_fd >= 0) ::close(inotify_fd);
    if (wake_fd >= 0) ::close(wake_fd);
  }

  void run();
  void wake() {
    const uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd, &one, sizeof one);
    (void)ignored;
  }

 private:
  bool leaving() {
    platform::MutexLock l(shared->mu);
    return shared->stop || shared->abort;
  }
  void scan_folder();
  void read_events();
  void enqueue(const std::string& name);
  void queue_due_retries();
  int poll_timeout_ms() const;
  void process(const std::string& name);
  void ingest_file(const std::string& name, int fd);
  // Hands the batch over (empties it).
  void post(std::vector<Item>& batch, size_t* batch_bytes, uint64_t generation);
  // Writes the outcomes that are ready, in order; `wait`: first waits until the oldest is
  // ready. Returns false when the agent is going (abort): the file is left as it is.
  bool drain(SpoolResult& result, bool wait, int* transient, std::string* transient_reason,
             Status* write_error);
  // Moves a file the agent will not read (its name, its kind, its permissions) to failed/ with
  // a result that says why; `rename_it`: under a new name (the name is the problem).
  void refuse(const std::string& name, const std::string& reason, bool rename_it);
  // The result in place, then the file beside it: both synced. false: left for a later try.
  bool finish_file(const std::string& name, const std::string& dest_folder,
                   const std::string& dest_name, SpoolResult& result, const std::string& reason);
  void retry_later(const std::string& name, const std::string& why);
  std::string unused_failed_name(const std::string& name) const;

 public:
  IngestCore& core;
  SpoolIngest& owner;
  std::shared_ptr<Shared> shared;
  std::string dir, done_dir, failed_dir;
  int inotify_fd = -1;
  int wake_fd = -1;

 private:
  bool watching_ = true;
  std::deque<std::string> queue_;
  std::set<std::string> queued_;
  std::map<std::string, Clock::time_point> retry_at_;
  std::map<std::string, std::chrono::seconds> backoff_;
};

void SpoolIngest::Worker::run() {
  platform::set_current_thread_name("spool");
  scan_folder();
  while (!leaving()) {
    read_events();
    queue_due_retries();
    if (!queue_.empty()) {
      const std::string name = queue_.front();
      queue_.pop_front();
      queued_.erase(name);
      process(name);
      continue;
    }
    pollfd fds[2] = {{wake_fd, POLLIN, 0}, {inotify_fd, POLLIN, 0}};
    ::poll(fds, watching_ ? 2 : 1, poll_timeout_ms());
  }
  platform::MutexLock l(shared->mu);
  if (shared->stop && !shared->abort && shared->stopped) {
    asio::post(core.io(), std::move(shared->stopped));
  }
}

void SpoolIngest::Worker::scan_folder() {
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    platform::log(LogLevel::kError, "spool_scan_failed",
                  "spool folder " + dir + ": cannot list it: " + std::strerror(errno));
    return;
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == ".." || name == kDoneDir || name == kFailedDir) continue;
    if (!spool_name_ignored(name)) names.push_back(name);
  }
  ::closedir(d);
  // Files left from before (a stop or crash) in name order: producers that name files by time
  // get them back in the order they were written.
  std::sort(names.begin(), names.end());
  for (const auto& n : names) enqueue(n);
}

void SpoolIngest::Worker::read_events() {
  if (!watching_) return;
  alignas(inotify_event) char buf[16 * 1024];
  for (;;) {
    const ssize_t n = ::read(inotify_fd, buf, sizeof buf);
    if (n <= 0) return;  // EAGAIN: nothing more for now
    for (char* p = buf; p < buf + n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        // Events were lost: the folder itself says what is there.
        platform::log(LogLevel::kWarning, "spool_overflow",
                      "spool folder " + dir + ": too many changes at once; listing it again");
        scan_folder();
        continue;
      }
      if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        platform::log(LogLevel::kError, "spool_folder_gone",
                      "spool folder " + dir +
                          " was removed or moved: files dropped there are not seen until the "
                          "folder is back and the agent restarted");
        watching_ = false;
        return;
      }
      if (ev->len == 0) continue;
      const std::string name(ev->name);  // NUL-padded
      if (name == kDoneDir || name == kFailedDir) continue;
      if (spool_name_ignored(name)) continue;
      // A file dropped again under a name that waits for a retry is taken now.
      retry_at_.erase(name);
      enqueue(name);
    }
  }
}

void SpoolIngest::Worker::enqueue(const std::string& name) {
  if (retry_at_.count(name) || !queued_.insert(name).second) return;
  queue_.push_back(name);
}

void SpoolIngest::Worker::queue_due_retries() {
  const auto now = Clock::now();
  for (auto it = retry_at_.begin(); it != retry_at_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    const std::string name = it->first;
    it = retry_at_.erase(it);
    enqueue(name);
  }
}

int SpoolIngest::Worker::poll_timeout_ms() const {
  if (retry_at_.empty()) return -1;
  auto next = Clock::time_point::max();
  for (const auto& [name, at] : retry_at_) next = std::min(next, at);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count() + 1;
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 3'600'000));
}

void SpoolIngest::Worker::retry_later(const std::string& name, const std::string& why) {
  auto& backoff = backoff_[name];
  backoff = backoff.count() == 0 ? kFirstRetry : std::min(backoff * 2, kMaxRetry);
  retry_at_[name] = Clock::now() + backoff;
  platform::log(LogLevel::kWarning, "spool_file_retry",
                "spool file " + printable_name(name) + ": " + why + "; taken again in " +
                    std::to_string(backoff.count()) + " s",
                {{"file", printable_name(name)}});
}

std::string SpoolIngest::Worker::unused_failed_name(const std::string& name) const {
  // Cut so that the name and its result's still fit the file system's 255 bytes.
  const std::string base = name.substr(0, 200) + "." + std::to_string(platform::unix_ms());
  std::string candidate = base;
  for (int k = 1; platform::path_exists(failed_dir + "/" + candidate) ||
                  platform::path_exists(done_dir + "/" + candidate);
       ++k) {
    candidate = base + "-" + std::to_string(k);
  }
  return candidate;
}

void SpoolIngest::Worker::process(const std::string& name) {
  const std::string path = dir + "/" + name;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;  // moved already (queued twice) or taken back by its producer
    retry_later(name, std::string("cannot look at it: ") + std::strerror(errno));
    return;
  }
  if (std::string problem = spool_name_problem(name); !problem.empty()) {
    refuse(name, problem + "; rename the file and drop it again", true);
    return;
  }
  for (const auto& folder : {kDoneDir, kFailedDir}) {
    if (platform::path_exists(dir + "/" + folder + "/" + name)) {
      // Its lines would get the ids of that file's lines, and be answered as duplicates of
      // them: nothing of it would be stored.
      refuse(name,
             std::string("the name was used before (") + folder + "/" + name +
                 "): its events would be taken for that file's and not stored; rename the file "
                 "and drop it again",
             true);
      return;
    }
  }
  // No symbolic links: a producer could point the agent at a file it may read and they may
  // not. O_NONBLOCK: opening a FIFO must not wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) return;
    if (e == ELOOP) {
      refuse(name, "a symbolic link: only regular files are taken", false);
    } else {
      refuse(name,
             std::string("the agent cannot open it (") + std::strerror(e) +
                 "): make it readable by the agent (group-readable, in the folder's group)",
             false);
    }
    return;
  }
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    refuse(name, "not a regular file", false);
    return;
  }
  ingest_file(name, fd);
  ::close(fd);
}

void SpoolIngest::Worker::refuse(const std::string& name, const std::string& reason,
                                 bool rename_it) {
  const std::string dest = rename_it ? unused_failed_name(name) : name;
  SpoolResult result;
  Status s = result.begin(done_dir, name, "");
  if (!s) {
    retry_later(name, "cannot write its result: " + s.message());
    return;
  }
  if (finish_file(name, kFailedDir, dest, result, reason)) {
    core.counters().spool_files_failed.fetch_add(1, AgentCounters::kRelaxed);
  }
}

void SpoolIngest::Worker::post(std::vector<Item>& batch, size_t* batch_bytes,
                               uint64_t generation) {
  if (batch.empty()) return;
  asio::post(core.io(), [s = shared, c = &core, generation, items = std::move(batch)]() mutable {
    auto complete = [s, generation](uint64_t index, IngestReply r) {
      platform::MutexLock l(s->mu);
      if (s->generation != generation) return;  // the file was given up
      Slot& slot = s->slots[index - s->first];
      slot.ready = true;
      slot.ok = r.ok;
      slot.error = r.error;
      slot.reply = std::move(r.text);
      s->cv.signal_all();
    };
    for (auto& it : items) {
      auto done = [complete, index = it.index](IngestReply r) { complete(index, std::move(r)); };
      if (it.too_large) {
        c->counters().count_refused(IngestError::kTooLarge);
        const ParseFailure why{IngestError::kTooLarge, it.text, {}};
        c->keep_refusal(error_reply(IngestError::kTooLarge, it.text), why, std::move(it.key),
                        std::move(it.where), std::move(done));
        continue;
      }
      c->submit_keeping_refusal(it.text, std::move(it.key), std::move(it.where),
                                std::move(done));
    }
  });
  batch.clear();
  *batch_bytes = 0;
}

bool SpoolIngest::Worker::drain(SpoolResult& result, bool wait, int* transient,
                                std::string* transient_reason, Status* write_error) {
  std::vector<Slot> ready;
  {
    platform::MutexLock l(shared->mu);
    while (wait && !shared->abort && !shared->slots.empty() && !shared->slots.front().ready) {
      shared->cv.wait(shared->mu);
    }
    if (shared->abort) return false;
    while (!shared->slots.empty() && shared->slots.front().ready) {
      shared->bytes -= shared->slots.front().bytes;
      ready.push_back(std::move(shared->slots.front()));
      shared->slots.pop_front();
      ++shared->first;
    }
  }
  for (const Slot& slot : ready) {
    if (!slot.ok &&
        (slot.error == IngestError::kOutboxFull || slot.error == IngestError::kStorageError)) {
      if (++*transient == 1) *transient_reason = slot.reply;
    }
    if (*write_error) *write_error = result.add(slot.number, slot.id, slot.ok, slot.reply);
  }
  return true;
}

void SpoolIngest::Worker::ingest_file(const std::string& name, int fd) {
  {
    platform::MutexLock l(shared->mu);
    if (shared->abort) return;  // the agent is going
  }
  // As of the last apply: a reload changes it for the next file.
  const size_t max_line_bytes = core.max_line_bytes();
  SpoolReader reader(fd, max_line_bytes);
  const bool readable = reader.open();
  const bool array = reader.format() == SpoolReader::Format::kJsonArray;
  SpoolResult result;
  Status s = result.begin(done_dir, name, readable ? (array ? "json_array" : "ndjson") : "");
  if (!s) {
    retry_later(name, "cannot write its result: " + s.message());
    return;
  }
  if (!readable) {
    if (finish_file(name, kFailedDir, name, result, reader.error())) {
      core.counters().spool_files_failed.fetch_add(1, AgentCounters::kRelaxed);
    }
    return;
  }

  uint64_t generation;
  {
    platform::MutexLock l(shared->mu);
    generation = ++shared->generation;
    shared->slots.clear();
    shared->first = 0;
    shared->bytes = 0;
  }
  const std::string unit = array ? "element" : "line";
  std::vector<Item> batch;
  size_t batch_bytes = 0;
  uint64_t next_index = 0;
  int transient = 0;
  std::string transient_reason;
  Status write_error;
  SpoolReader::Next n = SpoolReader::Next::kEnd;
  SpoolReader::Request req;
  for (;;) {
    if (leaving() || transient > 0 || !write_error) break;
    n = reader.next(&req);
    if (n != SpoolReader::Next::kRequest) break;
    Item item;
    item.key = name + ":" + std::to_string(req.number);
    item.where = "spool file " + name + " " + unit + " " + std::to_string(req.number);
    std::string id;
    if (req.too_large) {
      item.too_large = true;
      item.text = unit + " longer than ingest.max_line_bytes (" + std::to_string(max_line_bytes) +
                  " bytes); the event was discarded";
    } else {
      SpoolRequest p = apply_spool_id_rule(std::move(req.text), name, req.number);
      item.text = std::move(p.text);
      id = std::move(p.id);
    }
    // A line that could not be given an id (too long, not an object) is still named in the
    // result by the key its dead letter is kept under.
    if (id.empty()) id = item.key;
    const size_t bytes = item.text.size();
    // Room in flight first: the outcomes of what was handed over make it.
    for (;;) {
      {
        platform::MutexLock l(shared->mu);
        if (shared->slots.size() < kMaxInFlight &&
            (shared->bytes == 0 || shared->bytes + bytes <= kMaxInFlightBytes)) {
          item.index = next_index++;
          Slot& slot = shared->slots.emplace_back();
          slot.number = req.number;
          slot.id = std::move(id);
          slot.bytes = bytes;
          shared->bytes += bytes;
          break;
        }
      }
      post(batch, &batch_bytes, generation);
      if (!drain(result, true, &transient, &transient_reason, &write_error)) return;
    }
    batch_bytes += bytes;
    batch.push_back(std::move(item));
    if (batch.size() >= kMaxBatch || batch_bytes >= kMaxBatchBytes) {
      post(batch, &batch_bytes, generation);
      if (!drain(result, false, &transient, &transient_reason, &write_error)) return;
    }
  }
  post(batch, &batch_bytes, generation);
  // Every outcome committed and written before the file is decided on.
  for (;;) {
    if (!drain(result, true, &transient, &transient_reason, &write_error)) return;
    platform::MutexLock l(shared->mu);
    if (shared->slots.empty()) break;
  }
  if (!write_error) {
    retry_later(name, "cannot write its result: " + write_error.message());
    return;
  }
  if (transient > 0) {
    // Taken again later: what was committed comes back as duplicates.
    retry_later(name, std::to_string(transient) + " request(s) refused for a reason that clears: " +
                          transient_reason.substr(0, transient_reason.find('\n')));
    return;
  }
  if (leaving()) {
    platform::log(LogLevel::kInfo, "spool_file_interrupted",
                  "spool file " + name + ": stopped before its end; taken again at the next start",
                  {{"file", name}});
    return;
  }
  const auto& t = result.totals();
  std::string reason;
  if (n == SpoolReader::Next::kError) {
    reason = reader.error();
  } else if (t.refused > 0) {
    reason = std::to_string(t.refused) + " of " + std::to_string(t.requests) + " requests refused";
  }
  const bool done = reason.empty();
  if (finish_file(name, done ? kDoneDir : kFailedDir, name, result, reason)) {
    (done ? core.counters().spool_files_done : core.counters().spool_files_failed)
        .fetch_add(1, AgentCounters::kRelaxed);
  }
}

bool SpoolIngest::Worker::finish_file(const std::string& name, const std::string& dest_folder,
                                      const std::string& dest_name, SpoolResult& result,
                                      const std::string& reason) {
  const bool done = dest_folder == kDoneDir;
  const std::string dest_dir = done ? done_dir : failed_dir;
  const std::string other_dir = done ? failed_dir : done_dir;
  const std::string moved_to = dest_folder + "/" + dest_name;
  const std::string result_name = dest_name + std::string(kResultSuffix);
  const auto totals = result.totals();
  Status s = result.finish(done ? "done" : "failed", reason, moved_to,
                           dest_dir + "/" + result_name);
  if (!s) {
    retry_later(name, "cannot write its result: " + s.message());
    return false;
  }
  // An earlier try that decided the other way and stopped before its move left its result
  // there, without a file beside it.
  const std::string stale = other_dir + "/" + result_name;
  if (platform::path_exists(stale) && !platform::path_exists(other_dir + "/" + dest_name)) {
    if (::unlink(stale.c_str()) == 0) platform::sync_dir(other_dir);
  }
  s = platform::rename_no_replace(dir + "/" + name, dest_dir + "/" + dest_name);
  if (!s) {
    if (s.code() == Status::Code::kNotFound) {
      platform::log(LogLevel::kWarning, "spool_file_vanished",
                    "spool file " + printable_name(name) +
                        " was removed before it could be moved; its result is " + moved_to +
                        std::string(kResultSuffix),
                    {{"file", printable_name(name)}});
      backoff_.erase(name);
      return false;
    }
    retry_later(name, "cannot move it to " + dest_folder + "/: " + s.message());
    return false;
  }
  // The move is durable once both folders are synced; until then a crash leaves the file in the
  // spool, taken again (its events duplicates, its result written anew).
  s = platform::sync_dir(dest_dir);
  if (s) s = platform::sync_dir(dir);
  if (!s) {
    platform::log(LogLevel::kWarning, "spool_sync_failed",
                  "spool file " + printable_name(name) + " moved to " + moved_to +
                      " but the folders could not be synced: " + s.message());
  }
  backoff_.erase(name);
  if (done) {
    platform::log(LogLevel::kInfo, "spool_file_done",
                  "spool file " + name + ": " + std::to_string(totals.requests) + " requests, " +
                      std::to_string(totals.stored) + " stored, " +
                      std::to_string(totals.duplicate) + " already stored; moved to " + moved_to,
                  {{"file", name}, {"moved_to", moved_to}});
  } else {
    platform::log(LogLevel::kWarning, "spool_file_failed",
                  "spool file " + printable_name(name) + " moved to " + moved_to + ": " + reason +
                      " (" + moved_to + std::string(kResultSuffix) + " has each request's outcome)",
                  {{"file", printable_name(name)}, {"moved_to", moved_to}, {"reason", reason}});
  }
  return true;
}

SpoolIngest::SpoolIngest(IngestCore& core) : core_(core) {}

uint64_t SpoolIngest::files_done() const {
  return core_.counters().spool_files_done.load(AgentCounters::kRelaxed);
}
uint64_t SpoolIngest::files_failed() const {
  return core_.counters().spool_files_failed.load(AgentCounters::kRelaxed);
}

SpoolIngest::~SpoolIngest() {
  if (!worker_) return;
  {
    platform::MutexLock l(worker_->shared->mu);
    worker_->shared->abort = true;
    worker_->shared->cv.signal_all();
  }
  worker_->wake();
  if (thread_.joinable()) thread_.join();
}

Status SpoolIngest::start() {
  const std::string dir = core_.config().ingest.spool_dir;
  if (dir.empty()) return Status::ok();
  auto w = std::make_unique<Worker>(core_, *this);
  w->dir = dir;
  w->done_dir = dir + "/" + kDoneDir;
  w->failed_dir = dir + "/" + kFailedDir;
  // Producers drop files through group membership (the folder's group), as on the socket;
  // done/ and failed/ are the agent's, readable by that group for the results.
  Status s = platform::ensure_parent_dir(dir, 0755);
  if (s) s = prepare_folder(dir, 0770);
  if (s) s = prepare_folder(w->done_dir, 0750);
  if (s) s = prepare_folder(w->failed_dir, 0750);
  if (!s) return s;
  // A result a crash left half-written.
  ::unlink((w->done_dir + "/" + kResultTempName).c_str());
  w->inotify_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w->inotify_fd < 0) return errno_status("ingest.spool_dir: cannot watch " + dir);
  // IN_MOVED_TO: renamed in (the way producers should drop files); IN_CLOSE_WRITE: written in
  // place and closed.
  if (::inotify_add_watch(w->inotify_fd, dir.c_str(),
                          IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF |
                              IN_ONLYDIR) < 0) {
    return errno_status("ingest.spool_dir: cannot watch " + dir +
                        " (fs.inotify.max_user_watches?)");
  }
  w->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->wake_fd < 0) return errno_status("ingest.spool_dir: eventfd");
  worker_ = std::move(w);
  thread_ = std::thread([w = worker_.get()] { w->run(); });
  platform::log(LogLevel::kInfo, "spool_started",
                "spool folder " + dir + ": files renamed into it are ingested, then moved to " +
                    kDoneDir + "/ or " + kFailedDir + "/",
                {{"spool_dir", dir}});
  return Status::ok();
}

void SpoolIngest::stop(std::function<void()> done) {
  if (!worker_) {
    done();
    return;
  }
  {
    platform::MutexLock l(worker_->shared->mu);
    worker_->shared->stop = true;
    worker_->shared->stopped = std::move(done);
    worker_->shared->cv.signal_all();
  }
  worker_->wake();
}

}  // namespace edgesync::agent
