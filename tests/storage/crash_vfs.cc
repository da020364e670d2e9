#include "tests/storage/crash_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace edgesync::test {
namespace {

constexpr int64_t kSector = CrashVfs::kSectorSize;

// What the VFS knows of one path, shared by every handle open on it.
struct FileState {
  std::string path;
  bool main_db = false;
  bool deleted = false;
  // False while the file was created after its directory was last synced.
  bool entry_durable = true;
  int64_t created = 0;  // creation order, for losing the newest entries first
  int64_t durable_size = 0;
  // Sector -> its content as of the last sync: up to kSector bytes, shorter at the synced end
  // of the file, empty beyond it. Only sectors written or truncated since then.
  std::map<int64_t, std::string> synced;
};

struct CrashFile {
  sqlite3_file base;
  FileState* state;  // null: a temp file, not tracked
  bool dir_sync_pending;
  sqlite3_file* real;
};

struct Global {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<FileState>> files;  // guarded by mu
  int64_t creations = 0;                                    // guarded by mu
  CrashVfs::CutAt cut_at = CrashVfs::CutAt::kNever;         // guarded by mu
  int64_t cut_n = 0;                                        // guarded by mu
  int64_t fail_sync_at = 0;                                 // guarded by mu
  bool cut_by_plan = false;                                 // guarded by mu
  std::atomic<int64_t> writes{0};
  std::atomic<int64_t> syncs{0};
  std::atomic<bool> cut{false};
  std::atomic<int> open_files{0};
};

Global g;
sqlite3_vfs g_vfs;
sqlite3_vfs* g_real = nullptr;
sqlite3_io_methods g_methods;

CrashFile* cf(sqlite3_file* f) { return reinterpret_cast<CrashFile*>(f); }
sqlite3_file* real(sqlite3_file* f) { return cf(f)->real; }

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

int64_t real_size(sqlite3_file* f) {
  sqlite3_int64 size = 0;
  if (real(f)->pMethods->xFileSize(real(f), &size) != SQLITE_OK) return 0;
  return size;
}

// Remembers what `sector` held at the last sync, unless already remembered.
// REQUIRES: g.mu held.
void remember(sqlite3_file* f, FileState& st, int64_t sector) {
  if (st.synced.count(sector)) return;
  std::string old;
  const int64_t off = sector * kSector;
  if (off < st.durable_size) {
    // Not written since the last sync (or it would be remembered): the real file holds the
    // synced bytes.
    old.resize(static_cast<size_t>(std::min<int64_t>(kSector, st.durable_size - off)));
    int rc = real(f)->pMethods->xRead(real(f), old.data(), static_cast<int>(old.size()), off);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) old.clear();
  }
  st.synced.emplace(sector, std::move(old));
}

// Decides whether this call is the planned cut. REQUIRES: g.mu held.
bool cut_now(CrashVfs::CutAt kind, int64_t count) {
  if (g.cut) return true;
  if (g.cut_at == kind && count == g.cut_n) {
    g.cut = true;
    g.cut_by_plan = true;
    return true;
  }
  return false;
}

int x_close(sqlite3_file* f) {
  int rc = real(f)->pMethods ? real(f)->pMethods->xClose(real(f)) : SQLITE_OK;
  --g.open_files;
  return rc;
}

int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return real(f)->pMethods->xRead(real(f), buf, n, off);
}

int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  FileState* st = cf(f)->state;
  if (!st) return real(f)->pMethods->xWrite(real(f), buf, n, off);
  std::lock_guard<std::mutex> lock(g.mu);
  if (cut_now(CrashVfs::CutAt::kWrite, ++g.writes)) return SQLITE_IOERR_WRITE;
  if (n > 0) {
    for (int64_t s = off / kSector; s <= (off + n - 1) / kSector; ++s) remember(f, *st, s);
  }
  return real(f)->pMethods->xWrite(real(f), buf, n, off);
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  FileState* st = cf(f)->state;
  if (!st) return real(f)->pMethods->xTruncate(real(f), size);
  std::lock_guard<std::mutex> lock(g.mu);
  if (g.cut) return SQLITE_IOERR_TRUNCATE;
  const int64_t end = std::max(real_size(f), st->durable_size);
  for (int64_t s = size / kSector; s * kSector < end; ++s) remember(f, *st, s);
  return real(f)->pMethods->xTruncate(real(f), size);
}

int x_sync(sqlite3_file* f, int flags) {
  FileState* st = cf(f)->state;
  if (!st) return real(f)->pMethods->xSync(real(f), flags);
  std::lock_guard<std::mutex> lock(g.mu);
  const int64_t n = ++g.syncs;
  if (cut_now(CrashVfs::CutAt::kSync, n)) return SQLITE_IOERR_FSYNC;
  if (g.fail_sync_at == n) {
    g.fail_sync_at = 0;
    return SQLITE_IOERR_FSYNC;
  }
  int rc = real(f)->pMethods->xSync(real(f), flags);
  if (rc != SQLITE_OK) return rc;
  st->durable_size = real_size(f);
  st->synced.clear();
  if (cf(f)->dir_sync_pending) {
    // What unixSync() does for a journal or WAL it created: fsync the directory once.
    cf(f)->dir_sync_pending = false;
    const std::string dir = dir_of(st->path);
    for (auto& [path, other] : g.files) {
      if (dir_of(path) == dir) other->entry_durable = true;
    }
  }
  return SQLITE_OK;
}

int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real(f)->pMethods->xFileSize(real(f), size);
}
int x_lock(sqlite3_file* f, int l) { return real(f)->pMethods->xLock(real(f), l); }
int x_unlock(sqlite3_file* f, int l) { return real(f)->pMethods->xUnlock(real(f), l); }
int x_check(sqlite3_file* f, int* out) {
  return real(f)->pMethods->xCheckReservedLock(real(f), out);
}
int x_fcntl(sqlite3_file* f, int op, void* arg) {
  return real(f)->pMethods->xFileControl(real(f), op, arg);
}
int x_sector(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
int x_dev(sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); }
int x_shm_map(sqlite3_file* f, int pg, int sz, int extend, void volatile** pp) {
  return real(f)->pMethods->xShmMap(real(f), pg, sz, extend, pp);
}
int x_shm_lock(sqlite3_file* f, int off, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), off, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
int x_shm_unmap(sqlite3_file* f, int del) { return real(f)->pMethods->xShmUnmap(real(f), del); }
// No memory-mapped I/O: every page must come through x_read so that writes are seen.
int x_fetch(sqlite3_file*, sqlite3_int64, int, void** pp) {
  *pp = nullptr;
  return SQLITE_OK;
}
int x_unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

int x_open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  auto* f = cf(file);
  f->state = nullptr;
  f->dir_sync_pending = false;
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  std::memset(f->real, 0, g_real->szOsFile);
  const bool tracked = name != nullptr && (flags & SQLITE_OPEN_DELETEONCLOSE) == 0;
  bool existed = true;
  if (tracked) {
    struct stat sb;
    existed = ::stat(name, &sb) == 0;
    if (!existed && g.cut) {
      file->pMethods = nullptr;
      return SQLITE_CANTOPEN;  // nothing can be created on a dead disk
    }
  }
  int rc = g_real->xOpen(g_real, name, f->real, flags, out_flags);
  file->pMethods = f->real->pMethods ? &g_methods : nullptr;
  if (file->pMethods) ++g.open_files;
  if (rc != SQLITE_OK || !tracked) return rc;

  const int type = flags & 0x0FFF00;
  std::lock_guard<std::mutex> lock(g.mu);
  auto& slot = g.files[name];
  if (!slot || !existed || slot->deleted) {
    slot = std::make_unique<FileState>();
    slot->path = name;
    slot->created = ++g.creations;
    slot->entry_durable = existed;
    slot->durable_size = existed ? real_size(file) : 0;
  }
  slot->main_db = slot->main_db || type == SQLITE_OPEN_MAIN_DB;
  f->state = slot.get();
  f->dir_sync_pending = (flags & SQLITE_OPEN_CREATE) != 0 &&
                        (type == SQLITE_OPEN_WAL || type == SQLITE_OPEN_MAIN_JOURNAL ||
                         type == SQLITE_OPEN_SUPER_JOURNAL);
  return rc;
}

int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  std::lock_guard<std::mutex> lock(g.mu);
  if (g.cut) return SQLITE_IOERR_DELETE;
  int rc = g_real->xDelete(g_real, name, sync_dir);
  if (rc == SQLITE_OK) {
    auto it = g.files.find(name);
    if (it != g.files.end()) it->second->deleted = true;
  }
  return rc;
}
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_real->xAccess(g_real, name, flags, out);
}
int x_full_path(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}

uint32_t big_endian(const std::string& bytes, size_t at, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n && at + i < bytes.size(); ++i) {
    v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  }
  return v;
}

std::string pread_all(int fd, int64_t off, int64_t n) {
  std::string out(static_cast<size_t>(std::max<int64_t>(n, 0)), '\0');
  ssize_t got = n > 0 ? ::pread(fd, out.data(), out.size(), off) : 0;
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

// The units a torn write damages: database pages, or WAL frames behind the WAL header.
struct Units {
  int64_t offset = 0;
  int64_t size = 1024;
};

Units units_of(const FileState& st, int fd) {
  Units u;
  const std::string head = pread_all(fd, 0, 32);
  if (ends_with(st.path, "-wal")) {
    const uint32_t page = big_endian(head, 8, 4);
    u.offset = 32;
    u.size = (page >= 512 && page <= 65536 ? page : 1024) + 24;
  } else if (st.main_db) {
    const uint32_t page = big_endian(head, 16, 2);
    u.size = page == 1 ? 65536 : (page >= 512 ? page : 1024);
  }
  return u;
}

// Rewrites one file as the disk leaves it. REQUIRES: g.mu held, no handle open on it.
void reboot_file(FileState& st, std::mt19937_64& rng, CrashVfs::Loss loss,
                 CrashVfs::RebootReport* report) {
  int fd = ::open(st.path.c_str(), O_RDWR);
  if (fd < 0) return;
  struct stat sb;
  ::fstat(fd, &sb);
  const int64_t current = sb.st_size;
  if (st.synced.empty() && current == st.durable_size) {
    ::close(fd);
    return;
  }
  ++report->files_with_unsynced;
  if (loss == CrashVfs::Loss::kChoose) {
    const int pick = static_cast<int>(rng() % 20);
    loss = pick < 5    ? CrashVfs::Loss::kDropAll
           : pick < 8  ? CrashVfs::Loss::kKeepAll
           : pick < 14 ? CrashVfs::Loss::kPrefix
                       : CrashVfs::Loss::kRandomSectors;
  }
  const Units units = units_of(st, fd);

  struct Sector {
    int64_t index;
    std::string old_bytes, new_bytes;
    bool keep;
  };
  std::vector<Sector> sectors;
  for (const auto& [index, old_bytes] : st.synced) {
    sectors.push_back({index, old_bytes, pread_all(fd, index * kSector, kSector), false});
  }
  const size_t prefix = sectors.empty() ? 0 : static_cast<size_t>(rng() % (sectors.size() + 1));
  for (size_t i = 0; i < sectors.size(); ++i) {
    switch (loss) {
      case CrashVfs::Loss::kKeepAll:
        sectors[i].keep = true;
        break;
      case CrashVfs::Loss::kPrefix:
        sectors[i].keep = i < prefix;
        break;
      case CrashVfs::Loss::kRandomSectors:
        sectors[i].keep = rng() % 2 == 0;
        break;
      default:
        sectors[i].keep = false;
        break;
    }
  }

  // The size: the synced one, unless an unsynced truncation happened, or kept sectors lie
  // beyond it (an unsynced extension, its dropped sectors reading as zeros).
  int64_t size = st.durable_size;
  if (loss == CrashVfs::Loss::kKeepAll) {
    size = current;
  } else {
    if (current < size && loss != CrashVfs::Loss::kDropAll && rng() % 2 == 0) size = current;
    for (const auto& s : sectors) {
      if (s.keep && !s.new_bytes.empty()) {
        size =
            std::max<int64_t>(size, s.index * kSector + static_cast<int64_t>(s.new_bytes.size()));
      }
    }
  }
  if (::ftruncate(fd, size) != 0) {
    ::close(fd);
    return;
  }
  for (const auto& s : sectors) {
    const int64_t off = s.index * kSector;
    if (off >= size) continue;
    std::string bytes = s.keep ? s.new_bytes : s.old_bytes;
    // A kept sector cut short by a truncation that did not happen still holds its old tail.
    if (s.keep && bytes.size() < s.old_bytes.size()) bytes += s.old_bytes.substr(bytes.size());
    bytes.resize(static_cast<size_t>(std::min<int64_t>(kSector, size - off)), '\0');
    if (::pwrite(fd, bytes.data(), bytes.size(), off) != static_cast<ssize_t>(bytes.size())) {
      break;
    }
    s.keep ? ++report->sectors_kept : ++report->sectors_dropped;
  }
  ::fsync(fd);
  ::close(fd);

  // Torn: a unit with one changed sector kept and another changed sector dropped.
  std::map<int64_t, std::pair<bool, bool>> by_unit;  // unit -> (kept a change, dropped one)
  for (const auto& s : sectors) {
    if (s.old_bytes == s.new_bytes) continue;
    const int64_t first = std::max<int64_t>(0, (s.index * kSector - units.offset) / units.size);
    const int64_t last =
        std::max<int64_t>(0, (s.index * kSector + kSector - 1 - units.offset) / units.size);
    for (int64_t u = first; u <= last; ++u) {
      (s.keep ? by_unit[u].first : by_unit[u].second) = true;
    }
  }
  for (const auto& [unit, kd] : by_unit) report->torn_pages += kd.first && kd.second;
}

}  // namespace

CrashVfs& CrashVfs::get() {
  static CrashVfs* instance = [] {
    g_real = sqlite3_vfs_find(nullptr);
    g_vfs = *g_real;  // inherit randomness, sleep, time, dlopen...
    g_vfs.zName = kName;
    g_vfs.pNext = nullptr;
    g_vfs.szOsFile = static_cast<int>(sizeof(CrashFile)) + g_real->szOsFile;
    g_vfs.xOpen = x_open;
    g_vfs.xDelete = x_delete;
    g_vfs.xAccess = x_access;
    g_vfs.xFullPathname = x_full_path;
    g_methods = sqlite3_io_methods{
        3,          x_close,       x_read,      x_write, x_truncate, x_sync, x_file_size,
        x_lock,     x_unlock,      x_check,     x_fcntl, x_sector,   x_dev,  x_shm_map,
        x_shm_lock, x_shm_barrier, x_shm_unmap, x_fetch, x_unfetch};
    sqlite3_vfs_register(&g_vfs, 0);
    return new CrashVfs();
  }();
  return *instance;
}

void CrashVfs::arm(CutAt at, int64_t n) {
  std::lock_guard<std::mutex> lock(g.mu);
  g.files.clear();
  g.creations = 0;
  g.cut_at = at;
  g.cut_n = n;
  g.fail_sync_at = 0;
  g.cut_by_plan = false;
  g.writes = 0;
  g.syncs = 0;
  g.cut = false;
}

void CrashVfs::cut_power() {
  std::lock_guard<std::mutex> lock(g.mu);
  g.cut = true;
}

bool CrashVfs::power_is_cut() const { return g.cut; }

void CrashVfs::fail_sync_once(int64_t n) {
  std::lock_guard<std::mutex> lock(g.mu);
  g.fail_sync_at = g.syncs + n;
}

CrashVfs::Counters CrashVfs::counters() const { return {g.writes, g.syncs}; }

int CrashVfs::open_files() const { return g.open_files; }

CrashVfs::RebootReport CrashVfs::reboot(std::mt19937_64& rng, Loss loss) {
  std::lock_guard<std::mutex> lock(g.mu);
  RebootReport report;
  report.cut_by_plan = g.cut_by_plan;

  // Entries created since the directory's last sync: the newest ones go, from a random point.
  std::vector<FileState*> fresh;
  for (auto& [path, st] : g.files) {
    if (!st->deleted && !st->entry_durable) fresh.push_back(st.get());
  }
  std::sort(fresh.begin(), fresh.end(),
            [](const FileState* a, const FileState* b) { return a->created < b->created; });
  const size_t survive = static_cast<size_t>(rng() % (fresh.size() + 1));
  for (size_t i = survive; i < fresh.size(); ++i) {
    if (::unlink(fresh[i]->path.c_str()) == 0) ++report.entries_lost;
    fresh[i]->deleted = true;
  }

  for (auto& [path, st] : g.files) {
    if (!st->deleted) reboot_file(*st, rng, loss, &report);
  }
  for (auto& [path, st] : g.files) {
    if (st->main_db) ::unlink((path + "-shm").c_str());  // an index in shared memory only
  }
  g.files.clear();
  g.cut_at = CutAt::kNever;
  g.cut = false;
  g.cut_by_plan = false;
  g.fail_sync_at = 0;
  return report;
}

}  // namespace edgesync::test
