// What the outbox does with a file it finds damaged or not its own at start: move it aside,
// keep it, start a fresh outbox. Before this, such a file stopped the agent at every start
// (systemd restarting it every few seconds for ever) and nothing was captured.
//
// The decision (examine_outbox_file) is deliberately narrow, because moving aside a good outbox
// full of unsent sales would lose them from the live path. Quarantined only when SQLite itself
// says the file is damaged or the schema says it is not ours:
//  - SQLITE_NOTADB or SQLITE_CORRUPT on opening or reading it, or PRAGMA quick_check reporting
//    any problem;
//  - a database whose tables are not the outbox's for its schema version (another
//    application's file at our path);
//  - a schema version newer than this build knows (a downgrade). The newer release can still
//    read the kept file; refusing to start instead would stop capturing until someone came to
//    the box. Logged as loudly as the others: its pending events wait in the kept file;
//  - a WAL or rollback journal left without its database (an interrupted quarantine, or a
//    database deleted by hand): SQLite would replay it into the fresh database.
// Never quarantined: anything else. An I/O error, a permission problem, a busy or locked file,
// a path that is not a regular file come back as an error and the file stays as it is (the
// agent exits and is restarted; a transient fault heals, a lasting one stays visible).
//
// Quarantine renames outbox.db to outbox.db.quarantined-<UTC yyyymmddThhmmssZ> (a suffix -2,
// -3... if that name is taken: never replacing an earlier one), its -wal and -journal to the
// same name plus -wal and -journal, removes the -shm (only an index, rebuilt from the WAL) and
// syncs the directory. Nothing is deleted. A crash between the renames leaves a WAL without its
// database, which the next start moves aside too.
//
// REQUIRES: no connection of this process has the file open, and the caller holds the outbox's
// lock file (no other agent has it open).
#pragma once

#include <optional>
#include <string>

#include "platform/status.h"
#include "storage/outbox.h"
#include "storage/sqlite.h"

namespace edgesync::storage {

struct OutboxFileCheck {
  bool quarantine = false;
  std::string reason;       // quarantine: why, for people
  std::string incarnation;  // the file's incarnation if it could be read
};

// Ok with quarantine == false: the file is usable (or absent: a fresh one will be made).
// Ok with quarantine == true: see above. An error: could not tell; do not touch the file.
Result<OutboxFileCheck> examine_outbox_file(const std::string& path, const std::string& vfs);

// Moves the file and its companions aside as described above. `now_ms`: for the name.
Result<QuarantineIncident> quarantine_outbox_file(const std::string& path,
                                                  const OutboxFileCheck& check, int64_t now_ms);

// The incident in the outbox's meta table (keys quarantined_file, quarantine_reason,
// quarantined_ms, quarantined_incarnation). REQUIRES: schema version 3 or later.
Status record_quarantine(Database& db, const QuarantineIncident& incident);
// The recorded incident, if any. Errors read as none: it is for display only.
std::optional<QuarantineIncident> read_quarantine(Database& db);

}  // namespace edgesync::storage
