// edgesync: one binary, subcommands for the agent and for the people around it.
#include <CLI/CLI.hpp>
#include <iostream>

#include "agent/agent.h"
#include "agent/cli.h"
#include "agent/config.h"
#include "agent/config_tools.h"
#include "agent/event_contract.h"
#include "platform/clock.h"
#include "agent/version.h"

namespace {

// Loads the config or prints every problem with its key path; exit code 2 on failure.
bool load(const std::string& path, edgesync::agent::FileChecks files,
          edgesync::agent::Config* out) {
  auto c = edgesync::agent::load_config(path, files);
  if (!c) {
    std::cerr << "edgesync: invalid configuration " << c.status().message() << "\n";
    return false;
  }
  *out = std::move(*c);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace edgesync::agent;
  CLI::App app{"edgesync: durable, real-time capture of POS and inventory events to the hub"};
  app.require_subcommand(1);
  app.set_version_flag("--version", kVersion);
  std::string config_path = "/etc/edgesync/edgesync.json";

  auto* agent = app.add_subcommand("agent", "run the agent (ingest, outbox, publisher)");
  agent->add_option("--config", config_path, "configuration file")->capture_default_str();
  agent->footer(
      "Accepts events on the ingest socket, stores them durably in the SQLite outbox and\n"
      "publishes them to the hub over MQTT with TLS. systemd runs it as edgesync.service.\n"
      "The configuration is checked at start and every problem is reported at once by key path.\n"
      "SIGHUP (systemctl reload edgesync) re-reads the configuration file; an invalid one is\n"
      "refused and the running configuration stays. SIGTERM stops it cleanly: it stops\n"
      "accepting, finishes the commits in flight, marks itself offline on the hub, disconnects\n"
      "and exits 0.\n"
      "Exit 0 stopped by SIGTERM, 1 it could not start (the reason is on standard error), 2 the\n"
      "configuration is invalid.\n\n"
      "Example:\n"
      "  edgesync agent --config /etc/edgesync/edgesync.json");

  auto* check = app.add_subcommand("check-config", "validate a configuration file and exit");
  check->add_option("--config", config_path, "configuration file")->capture_default_str();
  check->footer(
      "Validates a configuration file, including the TLS files it names and the event\n"
      "contracts in its contract folders, and exits without starting anything. Prints\n"
      "\"FILE: ok (N event contracts)\"; otherwise every problem with its key path on standard\n"
      "error (hub.uri: required, device.idd: unknown key).\n"
      "Exit 0 valid, 2 invalid (or a contract cannot be loaded, or usage).\n\n"
      "Example:\n"
      "  edgesync check-config --config /etc/edgesync/edgesync.json");

  std::string input, socket_override, http_url;
  auto* send =
      app.add_subcommand("send", "send NDJSON events through the ingest socket or over HTTP");
  send->add_option("--config", config_path, "configuration file")->capture_default_str();
  auto* send_socket =
      send->add_option("--socket", socket_override, "ingest socket (overrides the config)");
  send->add_option("--http", http_url,
                   "over HTTP ingest instead: http://HOST:PORT[/PATH] (PATH default "
                   "/v1/events) or unix:/PATH (ingest.http.listen's Unix socket)")
      ->excludes(send_socket);
  send->add_option("file", input, "NDJSON file (default: standard input)");
  send->footer(
      "Sends each line (blank lines skipped) and prints the agent's reply to it, one line per\n"
      "request line, in input order. --http posts the lines as JSON arrays of at most 1,000\n"
      "events and 1 MiB (the default ingest.http.max_body_bytes); a line that is not JSON goes\n"
      "alone, so that it alone is refused (bad_json). A request refused whole (413, 503, 507)\n"
      "prints its reply for each of its lines; nothing is retried (Retry-After is shown).\n"
      "With --socket or --http the configuration file is not read.\n"
      "Exit 0 every event accepted (stored now or before), 1 an event refused or without a\n"
      "reply, 2 the file cannot be read, the agent does not take the connection, or bad usage.\n\n"
      "Example:\n"
      "  edgesync send events.ndjson\n"
      "  edgesync send --http http://127.0.0.1:8788 events.ndjson\n"
      "  edgesync send --http unix:/run/edgesync/http.sock < events.ndjson");

  bool json = false;
  auto* status = app.add_subcommand("status", "connection state and outbox figures");
  status->add_option("--config", config_path, "configuration file")->capture_default_str();
  status->add_flag("--json", json, "machine-readable output");
  status->footer(
      "The first line is the verdict with its reasons worst first, e.g.\n"
      "  DEGRADED: hub unreachable for 14 min, 3,120 events waiting, oldest 14 min\n"
      "The verdict is:\n"
      "  OK        connected, nothing older than 60 s waiting\n"
      "  DEGRADED  hub unreachable for more than 30 s; delivery held; oldest pending event\n"
      "            older than 60 s; a dead letter in the last 24 h; client certificate\n"
      "            expiring within 30 days or unreadable; free disk below what the outbox may\n"
      "            still need\n"
      "  DOWN      agent not running; outbox unreadable, damaged or full (new events\n"
      "            refused); client certificate expired\n"
      "Then one line per figure: device, agent, hub state and last error, certificate, outbox,\n"
      "pending events and bytes against storage.max_bytes, oldest pending, a delivery hold,\n"
      "events accepted and delivered lately (from the running agent), seqs, incarnation, dead\n"
      "letters, a quarantined outbox, the spool folder (ingest.spool_dir), free disk and the\n"
      "configuration (pushed layers, sha256, probation). The verdict is in colour on a\n"
      "terminal (not with NO_COLOR set). Read-only: works while the agent runs and when it is\n"
      "stopped.\n"
      "--json: an object with format, verdict {level, reasons, line}, device, agent_running,\n"
      "hub, outbox, config, certificate, spool and live (config/contracts/status.schema.json).\n"
      "Exit 0 OK, 1 DEGRADED, 2 DOWN (and 2 for an invalid configuration or bad usage).\n\n"
      "Example:\n"
      "  edgesync status\n"
      "  edgesync status --json");

  size_t limit = 100;
  auto* outbox = app.add_subcommand("outbox", "list events in the outbox (pending by default)");
  outbox->require_subcommand(0, 1);  // none: the listing
  OutboxListOptions list_opts;
  outbox->add_option("--config", config_path, "configuration file")->capture_default_str();
  outbox->add_flag("--all", list_opts.all,
                   "include delivered events still kept for de-duplication");
  outbox->add_option("--limit", list_opts.limit, "at most this many events")->capture_default_str();
  outbox->add_option("--type", list_opts.type,
                     "only this event type, or the types starting with a prefix ending in .* "
                     "(pos.*)");
  outbox->add_option("--since", list_opts.since,
                     "only events received within this long: 30m, 12h, 7d, 3600s");
  outbox->add_flag("--json", json, "machine-readable output");
  outbox->footer(
      "Lists the pending events, oldest first (--all: the delivered history kept for\n"
      "de-duplication too, storage.keep_delivered), at most --limit. --type matches a type\n"
      "exactly, or with a trailing .* every type that starts with what comes before the *.\n"
      "--since keeps those the agent received within that long (by the box's clock).\n"
      "Prints a SEQ STATE RECEIVED TYPE ID table (STATE pending, delivered or dead_letter) and\n"
      "a line with the count shown, the pending count and the last delivered seq.\n"
      "--json: an array of {seq, id, type, occurred_at, received_at, trace_id, delivered, state,\n"
      "data}.\n"
      "Read-only: works while the agent runs and when it is stopped. Exit 0, 1 the outbox\n"
      "cannot be read, 2 a bad option.\n"
      "Subcommands: show (one event), tail (follow), hold and release (delivery).\n\n"
      "Example:\n"
      "  edgesync outbox --all --type 'pos.*' --since 2h");

  std::string show_what;
  auto* outbox_show =
      outbox->add_subcommand("show", "one event and what became of it, by seq or id");
  outbox_show->add_option("--config", config_path, "configuration file")->capture_default_str();
  outbox_show->add_option("event", show_what, "SEQ (digits only) or ID")->required();
  outbox_show->add_flag("--json", json, "machine-readable output");
  outbox_show->footer(
      "Looks the event up by seq (an argument of digits only) or by id (anything else) and\n"
      "prints seq, id, type, occurred at, received at, the producer's trace id (when given),\n"
      "its state, the incarnation and its data (pretty-printed). The state is one of:\n"
      "  pending: N events ahead of it (and whether delivery is held)\n"
      "  delivered\n"
      "  dead-lettered TIME: REASON; and whether the hub already has its notice\n"
      "Not found, it says why: never stored (beyond the newest seq), delivered and pruned from\n"
      "the history (storage.keep_delivered keeps the newest delivered events), no longer stored\n"
      "(a dead letter put back under a new seq), or for an id: never stored by this outbox or\n"
      "pruned since.\n"
      "--json: {found: true, seq, id, type, occurred_at, received_at, trace_id, state (pending|delivered|\n"
      "dead_letter), data, delivered_seq, next_seq, incarnation, pending_ahead and\n"
      "delivery_held_since (pending), dead_letter: {reason, failed_at, announced}} or\n"
      "{found: false, seq|id, reason (never_stored|pruned|removed|unknown_id), message,\n"
      "delivered_seq, next_seq, oldest_stored_seq, keep_delivered, incarnation}.\n"
      "Exit 0 found, 1 not found (or the outbox cannot be read), 2 usage.\n\n"
      "Example:\n"
      "  edgesync outbox show 1041\n"
      "  edgesync outbox show 7f3c2a10-sale-0042 --json");

  auto* outbox_tail = outbox->add_subcommand(
      "tail", "follow events as they are accepted and delivered, until Ctrl-C");
  outbox_tail->add_option("--config", config_path, "configuration file")->capture_default_str();
  outbox_tail->add_flag("--json", json, "one JSON object per line");
  outbox_tail->footer(
      "Prints the 10 newest events, then a line per event as the agent accepts it, a line\n"
      "when the delivered watermark moves (one per poll, not per event) and a line per new\n"
      "dead letter:\n"
      "  following PATH, incarnation ID, delivered through seq N\n"
      "  accepted    seq N  RECEIVED  TYPE  ID\n"
      "  delivered through seq N\n"
      "  dead letter seq N TYPE ID: REASON\n"
      "It reads the outbox read-only every 200 ms (one indexed query; the agent is not held\n"
      "up). With no outbox yet it waits and says so; when the outbox is replaced (moved aside\n"
      "after damage: a new incarnation) it says so and follows the new one from its start.\n"
      "--json: one object per line: {event: following|new_incarnation, path, incarnation,\n"
      "delivered_seq}, {event: accepted, seq, id, type, received_at}, {event: delivered,\n"
      "through_seq}, {event: dead_letter, seq, id, type, reason, failed_at}, {event: waiting,\n"
      "path}, {event: error, message}.\n"
      "Ends on Ctrl-C (SIGINT) or SIGTERM with exit 0; 2 usage.\n\n"
      "Example:\n"
      "  edgesync outbox tail\n"
      "  edgesync outbox tail --json | grep dead_letter");

  std::string export_out, export_since;
  auto* exporter = app.add_subcommand(
      "export", "a consistent copy of the outbox to carry away, taken while the agent runs");
  exporter->add_option("--config", config_path, "configuration file")->capture_default_str();
  exporter->add_option("--out", export_out, "the copy (must not exist; made mode 0600)")
      ->required();
  exporter->add_option("--since", export_since,
                       "only events received (dead letters: failed) within this long: 30m, "
                       "12h, 7d, 3600s");
  exporter->add_flag("--json", json, "print the summary as JSON");
  exporter->footer(
      "Copies the outbox database to FILE with SQLite's online backup, a snapshot taken beside\n"
      "the running agent without stopping it or holding up its producers. The copy is one\n"
      "SQLite file, mode 0600 (it holds business data); FILE is never overwritten. --since\n"
      "deletes older events and dead letters from the copy and compacts it (VACUUM).\n"
      "Writes FILE.summary.json (config/contracts/export-summary.schema.json): device and\n"
      "store ids, incarnation, schema version, export time, seq range and counts of events\n"
      "(pending, delivered) and dead letters in the copy, the delivered watermark, --since,\n"
      "PRAGMA quick_check of the copy, and the agent's state file. Prints it as lines, or as\n"
      "that JSON with --json.\n"
      "Exit 0, 1 the copy failed (nothing left behind) or did not pass quick_check (kept), 2\n"
      "usage or FILE or FILE.summary.json exists.\n\n"
      "Example:\n"
      "  edgesync export --out /media/usb/store-042-pos-01.db --since 7d");

  auto* dead = app.add_subcommand(
      "dead-letters",
      "list events the hub refused for good, and spool requests refused on arrival");
  dead->add_option("--config", config_path, "configuration file")->capture_default_str();
  dead->add_option("--limit", limit, "at most this many")->capture_default_str();
  dead->add_flag("--json", json, "machine-readable output");
  dead->footer(
      "Lists the events the hub refused for good, then the requests of spool files refused on\n"
      "arrival (invalid lines: SEQ below zero, ID FILE:LINE, a REASON naming the file, the line\n"
      "and every violation; they never took a place in the event stream), at most --limit.\n"
      "Prints a SEQ FAILED TYPE ID REASON table and a line with their count.\n"
      "--json: an array of {seq, id, type, refused_on_arrival, reason, failed_at, data} (data as\n"
      "stored; a refused line that is not JSON as a string).\n"
      "Read-only: works while the agent runs and when it is stopped. Exit 0, 1 the outbox\n"
      "cannot be read, 2 usage.\n"
      "Subcommands: retry (back into delivery), purge (delete old ones).\n\n"
      "Example:\n"
      "  edgesync dead-letters --limit 20\n"
      "  edgesync dead-letters --json");

  // ---- repairs (docs/OPERATIONS.md): through the running agent, or on a stopped one's outbox ----
  dead->require_subcommand(0, 1);
  std::vector<int64_t> retry_seqs;
  bool retry_all = false;
  auto* dead_retry = dead->add_subcommand(
      "retry", "put dead letters back into delivery: the hub gets the same event again");
  dead_retry->add_option("--config", config_path, "configuration file")->capture_default_str();
  auto* retry_seq_opt = dead_retry->add_option("seq", retry_seqs, "dead letters' seqs");
  dead_retry->add_flag("--all", retry_all, "every dead letter the hub refused")->excludes(retry_seq_opt);
  dead_retry->add_flag("--json", json, "machine-readable output");
  dead_retry->footer(
      "Each dead letter goes back into the outbox as a pending event under a new seq (the next\n"
      "one: seqs stay gap-free), with its id, type, times and data unchanged, so the hub gets\n"
      "the same event and de-duplicates it by id; its old seq stays announced as a dead letter.\n"
      "Fix why the hub refused it first (a hub ACL, a size limit), or it is refused again.\n"
      "A dead letter whose notice is still on its way to the hub is skipped (try again once\n"
      "the watermark has passed it: edgesync status).\n"
      "Works through the running agent's control socket (control.socket); with the agent\n"
      "stopped, on the outbox file itself. Never beside another writer.\n"
      "Prints one line per event put back and per one skipped, with why.\n"
      "--json: {\"ok\", \"retried\": [{\"seq\", \"new_seq\"}], \"skipped\": [TEXT], \"via\":\n"
      "\"agent\"|\"database\"} or {\"ok\": false, \"error\", \"message\"}.\n"
      "Exit 0 all put back, 1 failed or some skipped, 2 usage.\n\n"
      "Example:\n"
      "  edgesync dead-letters retry 1041 1042\n"
      "  edgesync dead-letters retry --all --json");

  std::string older_than;
  auto* dead_purge = dead->add_subcommand("purge", "delete dead letters older than a duration");
  dead_purge->add_option("--config", config_path, "configuration file")->capture_default_str();
  dead_purge
      ->add_option("--older-than", older_than,
                   "dead letters that failed longer ago than this go: 30d, 12h, 90m, 3600s")
      ->required();
  dead_purge->add_flag("--json", json, "machine-readable output");
  dead_purge->footer(
      "Deletes the dead letters that failed before now minus DURATION (1s: all of them) and\n"
      "whose notice the hub already has. They are gone for good: export first (edgesync\n"
      "export) if anyone may still need them. The agent also prunes them by itself beyond\n"
      "storage.max_dead_letters and storage.dead_letter_days.\n"
      "Prints \"N dead letters purged\"; --json: {\"ok\", \"purged\", \"via\"}.\n"
      "Exit 0 done, 1 failed, 2 usage.\n\n"
      "Example:\n"
      "  edgesync dead-letters purge --older-than 7d");

  auto* outbox_hold = outbox->add_subcommand(
      "hold", "pause delivery to the hub (events are still accepted and kept)");
  outbox_hold->add_option("--config", config_path, "configuration file")->capture_default_str();
  outbox_hold->add_flag("--json", json, "machine-readable output");
  outbox_hold->footer(
      "Stops sending new events to the hub, e.g. while the hub side is being repaired; what is\n"
      "in flight completes. Producers are still acknowledged and events wait in the outbox\n"
      "(against storage.max_bytes). The hold is stored in the outbox and outlives restarts;\n"
      "edgesync status shows it (DEGRADED). A second hold keeps the first one's time.\n"
      "--json: {\"ok\", \"held_since\", \"via\"}. Exit 0 done, 1 failed.\n\n"
      "Example:\n"
      "  edgesync outbox hold && edgesync status");
  auto* outbox_release = outbox->add_subcommand("release", "resume delivery after a hold");
  outbox_release->add_option("--config", config_path, "configuration file")
      ->capture_default_str();
  outbox_release->add_flag("--json", json, "machine-readable output");
  outbox_release->footer(
      "Resumes delivery at once: the events held back go out in seq order.\n"
      "--json: {\"ok\", \"held_since\": null, \"via\"}. Exit 0 done, 1 failed.\n\n"
      "Example:\n"
      "  edgesync outbox release");

  std::string level;
  auto* log_level = app.add_subcommand("log-level", "change the running agent's log level");
  log_level->add_option("--config", config_path, "configuration file")->capture_default_str();
  log_level->add_option("level", level, "error, warning, notice, info or debug")
      ->required()
      ->check(CLI::IsMember({"error", "warning", "notice", "info", "debug"}));
  log_level->add_flag("--json", json, "machine-readable output");
  log_level->footer(
      "Sets the level through the agent's control socket, at once, until the agent restarts\n"
      "or reloads its configuration (log.level in the file is the lasting setting). debug adds\n"
      "lines a technician may want while watching a problem; the default, info, has no line per\n"
      "event. Prints \"log level OLD -> NEW ...\"; --json: {\"ok\", \"level\", \"was\"}.\n"
      "Exit 0 done, 1 no agent answers, 2 usage.\n\n"
      "Example:\n"
      "  edgesync log-level debug; journalctl -u edgesync -f; edgesync log-level info");

  // ---- reconciliation on the hub side (agent/reconcile.h) ----
  ReconcileCliOptions rec_opts;
  auto* reconcile = app.add_subcommand(
      "reconcile", "prove per box that every seq reached the hub as an event or a dead letter");
  auto* rec_capture = reconcile->add_option(
      "--capture", rec_opts.capture,
      "NDJSON record of the hub's messages, one {\"topic\", \"payload\"} a line (- for "
      "standard input)");
  auto* rec_hub = reconcile->add_option("--hub", rec_opts.hub_uri,
                                        "subscribe to this broker instead: ssl://HOST:PORT");
  rec_capture->excludes(rec_hub);
  reconcile
      ->add_option("--ca", rec_opts.ca_file, "CA file the hub's certificate is checked against")
      ->needs(rec_hub);
  reconcile->add_option("--cert", rec_opts.cert_file, "client certificate (PEM), with --key")
      ->needs(rec_hub);
  reconcile->add_option("--key", rec_opts.key_file, "client private key (PEM), with --cert")
      ->needs(rec_hub);
  reconcile->add_option("--username", rec_opts.username, "MQTT user name")->needs(rec_hub);
  reconcile->add_option("--password", rec_opts.password, "MQTT password")->needs(rec_hub);
  reconcile->add_option("--topic-prefix", rec_opts.topic_prefix, "the boxes' hub.topic_prefix")
      ->capture_default_str();
  reconcile
      ->add_option("--duration", rec_opts.duration_s,
                   "seconds to listen after the subscription is granted")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str()
      ->needs(rec_hub);
  reconcile
      ->add_option("--save", rec_opts.save,
                   "also record what arrives as a capture in this new file (mode 0600)")
      ->needs(rec_hub);
  reconcile
      ->add_flag("--from-first-seen", rec_opts.from_first_seen,
                 "check each incarnation from the lowest seq in the capture, not from 1 (a "
                 "record that began mid-stream)")
      ->needs(rec_capture);
  reconcile->add_flag("--json", rec_opts.json, "machine-readable output");
  reconcile->footer(
      "For each box (store/device) and outbox incarnation it keeps the seqs received as events,\n"
      "the dead-letter notices, and the highest highest_accepted_seq and highest_delivered_seq\n"
      "the box's health messages gave, in whatever order the messages come, duplicates and all.\n"
      "A seq from 1 to max(highest accepted, highest seen) neither received nor announced is:\n"
      "  lost     at or below highest_delivered_seq: the broker acknowledged it to the box, which\n"
      "           will never send it again, and the record does not have it. A real gap.\n"
      "  pending  above it: still in the box's outbox, on its way (the box is behind, not short).\n"
      "Without a health message for an incarnation nothing can be proven lost.\n"
      "Events are not retained. --hub subscribes with a clean start (MQTT 5, QoS 1) to\n"
      "PREFIX/+/+/events/#, PREFIX/+/+/deadletter and PREFIX/+/+/health, gets the retained\n"
      "health at once and then whatever arrives for --duration seconds (Ctrl-C ends early), so it\n"
      "checks each incarnation only from the first seq it saw. To prove nothing was lost since\n"
      "seq 1, keep a hub-side recorder with a persistent session writing a capture (or --save a\n"
      "long live run) and run on that. Capture lines: {\"topic\": T, \"payload\": P}, P the\n"
      "payload as a JSON string or as JSON; other keys and topics are ignored.\n"
      "Prints a table (DEVICE, INCARNATION, STATE complete|behind|lost|unconfirmed, ACCEPTED,\n"
      "DELIVERED, CONTIGUOUS, LAG, LOST, PENDING, DEAD, HEALTH AGE, NEWEST EVENT), then per\n"
      "incarnation the received ranges (\"1-5000, 5002-9000\"), dead letters, health, lost and\n"
      "pending ranges. --json: {format, ok, lost_seqs, checked_from, source, generated_at,\n"
      "messages, problems, devices: [{store_id, device_id, incarnations: [...]}]}\n"
      "(config/contracts/reconcile.schema.json). --password is visible in the process list:\n"
      "prefer a client certificate.\n"
      "Exit 0 nothing lost, 1 lost seqs found, 2 usage, an unreadable capture, or a hub that\n"
      "cannot be reached, refuses the subscription or drops the connection while listening.\n\n"
      "Example:\n"
      "  edgesync reconcile --capture hub-2026-11-23.ndjson\n"
      "  edgesync reconcile --hub ssl://hub.example.com:8883 --ca ca.pem --cert ops.pem \\\n"
      "      --key ops.key --duration 30 --save window.ndjson --json");

  // ---- pushed configuration (docs/FLEET.md) ----
  std::string out_dir, key_name = "signing";
  auto* keys = app.add_subcommand("keys", "manage the keys that sign pushed configuration");
  keys->require_subcommand(1);
  keys->footer(
      "Run on the signing workstation, not on a box. generate makes the key pair whose private\n"
      "key signs configuration layers (edgesync config sign) and whose public key the boxes\n"
      "trust (remote_config.trusted_keys). See generate --help.\n\n"
      "Example:\n"
      "  edgesync keys generate --out ~/edgesync-keys --name ops-2026");
  auto* keys_generate = keys->add_subcommand(
      "generate",
      "make a P-256 key pair for signing configuration layers (on the signing workstation)");
  keys_generate
      ->add_option("--out", out_dir, "directory for the key files (made, mode 0700, if missing)")
      ->required();
  keys_generate->add_option("--name", key_name, "file name and key id of the pair")
      ->capture_default_str();
  keys_generate->footer(
      "Writes DIR/NAME.key (the private key, mode 0600) and DIR/NAME.pub (the public key, mode\n"
      "0644), and refuses to overwrite either. Prints:\n"
      "  private key  DIR/NAME.key\n"
      "  public key   DIR/NAME.pub\n"
      "  hint: ...\n"
      "NAME.pub goes to every box, listed under remote_config.trusted_keys with a key id;\n"
      "NAME.key stays on the signing workstation. Exit 0, or 2 if a file exists or DIR cannot\n"
      "be made.\n\n"
      "Example:\n"
      "  edgesync keys generate --out ~/edgesync-keys --name ops-2026");

  auto* cfg = app.add_subcommand("config", "sign, verify and show pushed configuration");
  cfg->require_subcommand(1);
  cfg->footer(
      "Configuration layers (fleet, store, device) are signed on the signing workstation\n"
      "(sign), checked there before they are published (verify), and applied by the boxes\n"
      "whose remote_config.trusted_keys trust the key; show, on a box, says what it applied\n"
      "and what it runs with. Each has its own --help; docs/FLEET.md has the whole procedure.\n\n"
      "Example:\n"
      "  edgesync config show --effective\n"
      "  edgesync config verify --keys ~/edgesync-keys fleet.envelope");
  ConfigSignOptions sign_opts;
  auto* sign = cfg->add_subcommand("sign", "sign a configuration layer into an envelope");
  sign->add_option("--key", sign_opts.key_file, "private key (PEM) from edgesync keys generate")
      ->required();
  sign->add_option("--target", sign_opts.target,
                   "the one config topic the layer is for: fleet, STORE_ID (a store) or "
                   "STORE_ID/DEVICE_ID (a box); signed, so it cannot be replayed on another")
      ->required();
  sign->add_option("--key-id", sign_opts.key_id,
                   "key id the boxes trust the matching public key under")
      ->required();
  sign->add_option("--version", sign_opts.version,
                   "layer version, at least 1; higher than any version published before for "
                   "this scope")
      ->required();
  auto* expires_opt =
      sign->add_option("--expires", sign_opts.expires,
                       "a box does not apply the envelope after issued_at + this: 30d, 12h, 90m, "
                       "3600s (default: no expiry)");
  sign->add_option("file", sign_opts.file,
                   "the layer: one JSON object, no comments (default: standard input)");
  sign->footer(
      "The layer is checked as a box checks it: a JSON object, no local-only key (device,\n"
      "storage.path, ingest.socket, ingest.http, ingest.spool_dir, control, metrics.listen,\n"
      "log.format, hub.topic_prefix, hub.client_id, remote_config), every key known and typed right. Rules that depend on the box's own file are printed as notes, not refused. The\n"
      "signed payload is the compact JSON of the layer (members sorted, whitespace not kept).\n"
      "Prints the envelope on one line on standard output; problems go to standard error.\n"
      "Exit 0, or 2 when the layer or an option is refused (nothing on standard output).\n\n"
      "Example:\n"
      "  edgesync config sign --key ops-2026.key --key-id ops-2026 --target fleet \\\n"
      "      --version 7 --expires 30d fleet.json > fleet.envelope");

  std::string keys_dir, scope, envelope_file;
  auto* verify =
      cfg->add_subcommand("verify", "check an envelope as a box would before applying it");
  verify
      ->add_option("--keys", keys_dir,
                   "directory of trusted public keys: each NAME.pub is trusted as key id NAME")
      ->required();
  verify
      ->add_option("--scope", scope,
                   "the layer the envelope is for (reported back; the checks "
                   "are the same for every scope)")
      ->check(CLI::IsMember({"fleet", "store", "device"}));
  verify->add_option("envelope", envelope_file, "envelope file (default: standard input)");
  verify->add_flag("--json", json, "machine-readable output");
  verify->footer(
      "Checks the envelope's structure, the signature against the named key, the expiry against\n"
      "this machine's clock, and the payload as config sign does. Prints on standard output:\n"
      "  ok: version N, target T, key ID, issued TIME, expires TIME|no expiry, N bytes of config\n"
      "  <the payload, pretty-printed>\n"
      "or\n"
      "  invalid: REASON\n"
      "--json prints {\"ok\", \"version\", \"key_id\", \"target\", \"issued_at\", \"expires_at\", \"bytes\",\n"
      "\"warnings\", \"scope\" (with --scope), and \"payload\" (the layer) or \"error\"}; a field\n"
      "the envelope does not give is null. Exit 0 valid, 1 invalid, 2 keys or envelope "
      "unreadable.\n\n"
      "Example:\n"
      "  edgesync config verify --keys ~/edgesync-keys --scope fleet fleet.envelope");

  bool effective = false, history = false;
  auto* show = cfg->add_subcommand("show", "what was pushed to this box and what it runs with");
  show->add_option("--config", config_path, "configuration file")->capture_default_str();
  auto* effective_flag = show->add_flag(
      "--effective", effective, "every setting in effect, with its value and where it comes from");
  show->add_flag("--history", history, "the record of pushes, rejections and rollbacks")
      ->excludes(effective_flag);
  show->add_flag("--json", json, "machine-readable output");
  show->footer(
      "Default: per scope (fleet, store, device) the applied version, key id, issue and apply\n"
      "times or \"none\"; probation, unproven, last rejection, last rollback, effective sha256.\n"
      "--json gives the config status message's fields (device_id, store_id, remote_config,\n"
      "scopes, effective_sha256, probation?, last_rejection?, last_rollback?, at) plus\n"
      "config_file, state_file, pushed, unproven, failed_starts.\n"
      "--effective: a KEY VALUE ORIGIN table, values as JSON, origin \"local\", \"default\" or "
      "the\n"
      "layer (\"fleet v3\"); hub.password is shown as <redacted>. --json: {config_file,\n"
      "remote_config, layers, unusable_layers, settings: {KEY: {value, origin}}, "
      "effective_sha256}.\n"
      "--history: a TIME KIND SCOPE VERSION REASON table, oldest first; --json: an array of\n"
      "{at, kind, scope?, version?, reason?, sha256?}.\n"
      "Exit 0; 1 if the state file is unreadable (or, with --effective, the local file with the\n"
      "applied layers is not a valid configuration); 2 if the configuration file is invalid.\n\n"
      "Example:\n"
      "  edgesync config show --effective\n"
      "  edgesync config show --history --json");

  auto* enroll = app.add_subcommand(
      "enroll", "make this box's private key and a certificate signing request for the fleet CA");
  enroll->add_option("--config", config_path, "configuration file (device.id, device.store_id)")
      ->capture_default_str();
  enroll
      ->add_option("--out", out_dir,
                   "directory for device.key and device.csr (made, mode "
                   "0700, if missing)")
      ->required();
  enroll->footer(
      "Writes DIR/device.key (P-256, mode 0600, never printed) and DIR/device.csr (subject\n"
      "CN=<device.id>, O=<device.store_id>). Refuses if DIR/device.key exists: move it away\n"
      "first. Prints the two paths and the next steps: send the CSR to the fleet CA, install the\n"
      "certificate as hub.cert_file and the key as hub.key_file. Exit 0, or 2 if refused.\n\n"
      "Example:\n"
      "  edgesync enroll --out /etc/edgesync/tls");

  ContractsCliOptions contracts_opts;
  std::string contracts_file, diff_old, diff_new;
  auto* contracts = app.add_subcommand(
      "contracts", "the event contracts: list them, check events offline, compare two versions");
  contracts->require_subcommand(1);
  contracts->footer(
      "The agent checks each event against the contract (a JSON schema) of its type and\n"
      "version (a type without one: ingest.unknown_types). list shows the contracts a box\n"
      "loads, check runs a file of requests through them with no agent and nothing sent, diff\n"
      "says whether a new version of a contract would refuse events the old one accepted.\n"
      "Each has its own --help; docs/CONTRACTS.md has the rules.\n\n"
      "Example:\n"
      "  edgesync contracts list\n"
      "  edgesync contracts check till-export.ndjson");
  const char* const kContractsDirHelp =
      "a folder of <type>.v<N>.schema.json files, instead of the configuration's (repeat for "
      "several)";
  auto* contracts_list =
      contracts->add_subcommand("list", "the contracts this box checks events against");
  contracts_list->add_option("--config", config_path, "configuration file (its contract folders)")
      ->capture_default_str();
  contracts_list->add_option("--contracts", contracts_opts.dirs, kContractsDirHelp)->allow_extra_args(false);
  contracts_list->add_flag("--json", json, "machine-readable output");
  contracts_list->footer(
      "Lists every contract loaded from ingest.contracts_dir (the shipped ones) and\n"
      "ingest.extra_contract_dirs: type, version, whether it is the newest of its type (the one\n"
      "a request without \"v\" gets) and its title; and whether unknown types are refused.\n"
      "A broken contract file is reported with its name (the agent would not start).\n"
      "--json: {contracts: [{type, v, newest, title, file}], unknown_types}.\n"
      "Exit 0, 2 a contract or the configuration cannot be loaded.\n\n"
      "Example:\n"
      "  edgesync contracts list\n"
      "  edgesync contracts list --contracts /usr/share/edgesync/contracts/events --json");
  auto* contracts_check = contracts->add_subcommand(
      "check", "check a file of request lines as the agent would, sending nothing");
  contracts_check->add_option("--config", config_path, "configuration file (its contract folders)")
      ->capture_default_str();
  contracts_check->add_option("--contracts", contracts_opts.dirs, kContractsDirHelp)->allow_extra_args(false);
  contracts_check->add_flag("--json", json, "machine-readable output");
  contracts_check->add_option("file", contracts_file, "NDJSON request lines (default: standard input)");
  contracts_check->footer(
      "Reads one request per line (the ingest socket's format, docs/PROTOCOL.md) and checks\n"
      "each as the agent would: the envelope, the version (\"v\", or the newest known) and the\n"
      "data against the type's contract. Prints per line ok with the type and version, or the\n"
      "error code and message with every violation (path, rule, expected). Nothing is sent and\n"
      "no agent is needed. Unknown types follow ingest.unknown_types (refused without a\n"
      "configuration).\n"
      "--json: {lines, failed, results: [{line, ok, type, v} | {line, ok, error, message,\n"
      "violations}]}.\n"
      "Exit 0 every line passes, 1 a line was refused, 2 the file or a contract cannot be read.\n\n"
      "Example:\n"
      "  edgesync contracts check --contracts ./contracts till-export.ndjson");
  auto* contracts_diff = contracts->add_subcommand(
      "diff", "compare two versions of a contract: what would refuse events the old accepted");
  contracts_diff->add_option("old", diff_old, "the contract file in force")->required();
  contracts_diff->add_option("new", diff_new, "the contract file that would replace it")->required();
  contracts_diff->add_flag("--json", json, "machine-readable output");
  contracts_diff->footer(
      "Compares the two schemas keyword by keyword (types, properties, required, bounds,\n"
      "enums, patterns, additionalProperties, items) and prints each change as compatible or\n"
      "BREAKING. Breaking: an event the old contract accepted could be refused by the new one\n"
      "(a new required property, a narrower type, a raised minimum, a removed enum value, a\n"
      "changed pattern, ...). Such a change needs a new version; docs/CONTRACTS.md has the rules.\n"
      "A change it does not understand counts as breaking.\n"
      "--json: {changes: [{path, breaking, what}], breaking}.\n"
      "Exit 0 nothing breaking, 1 a breaking change, 2 a file cannot be read or is no schema.\n\n"
      "Example:\n"
      "  edgesync contracts diff pos.sale.completed.v1.schema.json pos.sale.completed.v2.schema.json");

  int doctor_timeout_s = 5;
  auto* doctor = app.add_subcommand(
      "doctor", "check this box and its link to the hub, and say how to fix what is wrong");
  doctor->add_option("--config", config_path, "configuration file")->capture_default_str();
  doctor->add_flag("--json", json, "machine-readable output");
  doctor
      ->add_option("--timeout", doctor_timeout_s,
                   "seconds allowed to each network step (DNS, TCP, TLS, MQTT)")
      ->check(CLI::Range(1, 300))
      ->capture_default_str();
  doctor->footer(
      "Runs these checks in order and prints one line each (ok, WARN, FAIL or skipped), with\n"
      "what was found and, under a problem, the fix:\n"
      "  config       the file is valid (an invalid one is reported here, not refused), with\n"
      "               the pushed layers the agent runs with\n"
      "  clock        the wall clock is not before this build (a box without a set RTC)\n"
      "  database     PRAGMA quick_check on the outbox, read-only beside the running agent\n"
      "  disk         free space on the outbox's file system against storage.max_bytes\n"
      "  agent        an agent runs for this configuration\n"
      "  socket       ingest.socket exists, is a socket, mode 0660, accepts connections\n"
      "  control      the control socket is the agent's group only, mode 0660, and the agent\n"
      "               answers on it\n"
      "  ca           hub.ca_file reads, parses, is valid now and for 30 more days\n"
      "  client_cert  hub.cert_file likewise\n"
      "  client_key   hub.key_file is mode 0600 and the key of hub.cert_file\n"
      "  dns, tcp     hub.uri's host resolves and takes a TCP connection\n"
      "  tls          a TLS handshake with this box's files, with the exact error when it\n"
      "               fails (the hub's certificate expired, untrusted, for another name; the\n"
      "               hub refusing this box's certificate)\n"
      "  mqtt         an MQTT 5 connect as <hub.client_id>-doctor (the running agent keeps its\n"
      "               session), and the broker's Receive Maximum and Maximum Packet Size\n"
      "               against hub.max_inflight and ingest.max_line_bytes\n"
      "A check that needs one that failed is skipped with the reason: fix the first failure\n"
      "first. Run it as root or as the agent's user (it reads the private key). Nothing is\n"
      "changed on the box. Colour only on a terminal.\n"
      "--json prints {\"version\": 1, \"ok\", \"checks\": [{\"name\", \"result\":\n"
      "\"ok\"|\"warn\"|\"fail\"|\"skipped\", \"detail\", \"fix\"}]} (config/contracts/\n"
      "doctor.schema.json).\n"
      "Exit 0 nothing failed (warnings allowed), 1 a check failed, 2 bad usage.\n\n"
      "Example:\n"
      "  edgesync doctor\n"
      "  edgesync doctor --config /etc/edgesync/edgesync.json --json --timeout 10");

  // Set last: a sub-command takes its parent's footer when it is added.
  app.footer(
      "Run edgesync COMMAND --help for what a command does, its options, its exit status and an\n"
      "example; man edgesync has them all. In general exit 0 means done, 1 a verdict that is\n"
      "not ok (a failed check, a lost seq, an event refused) and 2 refused input (bad usage, an\n"
      "invalid configuration); edgesync status exits 0 OK, 1 DEGRADED, 2 DOWN.\n\n"
      "Example:\n"
      "  edgesync status\n"
      "  edgesync doctor --help");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a usage error exits 2 like every other refused input
    // (CLI11's own codes are above 100 and differ per kind of mistake).
    return app.exit(e) == 0 ? 0 : 2;
  }

  // The signing workstation's tools need no configuration file.
  if (*keys_generate) return cli_keys_generate(out_dir, key_name);
  if (*sign) {
    sign_opts.expires_given = expires_opt->count() > 0;
    return cli_config_sign(sign_opts);
  }
  if (*verify) return cli_config_verify(keys_dir, scope, envelope_file, json);
  if (*show) {
    return cli_config_show(config_path,
                           effective ? ConfigView::kEffective
                           : history ? ConfigView::kHistory
                                     : ConfigView::kSummary,
                           json);
  }

  // Doctor loads the configuration itself: an invalid file is one of its findings.
  if (*doctor) return cli_doctor(config_path, json, doctor_timeout_s);

  // Reconciliation runs on the hub side: no box configuration.
  if (*reconcile) return cli_reconcile(rec_opts);
  if (*contracts_diff) return cli_contracts_diff(diff_old, diff_new, json);
  if ((*contracts_list || *contracts_check) && !contracts_opts.dirs.empty()) {
    // An integrator's laptop: the folders given, no agent configuration.
    return *contracts_list ? cli_contracts_list(contracts_opts, nullptr, json)
                           : cli_contracts_check(contracts_opts, nullptr, contracts_file, json);
  }

  Config config;
  if (*send && !http_url.empty()) return cli_send_http(http_url, input);
  if (*send && !socket_override.empty()) return cli_send(socket_override, input);
  // Only the agent and check-config need the TLS files; the other tools must work for accounts
  // that may not read the device's key.
  const bool needs_tls_files = *agent || *check;
  if (!load(config_path, needs_tls_files ? FileChecks::kCheck : FileChecks::kSkip, &config)) {
    return 2;
  }
  if (*agent) {
    // The local file again, with its JSON kept: pushed layers are merged onto it.
    auto local = load_local_config(config_path);
    if (!local) {
      std::cerr << "edgesync: invalid configuration " << local.status().message() << "\n";
      return 2;
    }
    return run_agent(config_path, std::move(*local));
  }
  if (*check) {
    // What the agent would refuse to start with beyond the file itself: its event contracts.
    auto contracts = ContractRegistry::load(config.ingest.contract_dirs());
    if (!contracts) {
      std::cerr << "edgesync: event contracts: " << contracts.status().message() << "\n";
      return 2;
    }
    std::cout << config_path << ": ok (" << (*contracts)->size() << " event contracts)\n";
    return 0;
  }
  if (*send) return cli_send(config.ingest.socket, input);
  if (*dead_retry || *dead_purge || *outbox_hold || *outbox_release) {
    using Kind = edgesync::storage::RepairRequest::Kind;
    edgesync::storage::RepairRequest request;
    int64_t older_than_s = 0;
    if (*dead_retry) {
      if (!retry_all && retry_seqs.empty()) {
        std::cerr << "edgesync dead-letters retry: give the dead letters' seqs, or --all\n";
        return 2;
      }
      request.kind = Kind::kRetryDeadLetters;
      request.seqs = retry_seqs;
    } else if (*dead_purge) {
      auto ms = parse_duration_ms(older_than);
      if (!ms) {
        std::cerr << "edgesync dead-letters purge: --older-than: " << ms.status().message()
                  << "\n";
        return 2;
      }
      request.kind = Kind::kPurgeDeadLetters;
      older_than_s = *ms / 1000;
      request.failed_before_ms = edgesync::platform::unix_ms() - *ms;
    } else {
      request.kind = *outbox_hold ? Kind::kHold : Kind::kRelease;
    }
    return cli_repair(config, request, older_than_s, json);
  }
  if (*contracts_list) return cli_contracts_list(contracts_opts, &config, json);
  if (*contracts_check) return cli_contracts_check(contracts_opts, &config, contracts_file, json);
  if (*log_level) return cli_log_level(config, level, json);
  if (*status) return cli_status(config, json);
  if (*outbox_show) return cli_outbox_show(config, show_what, json);
  if (*outbox_tail) return cli_outbox_tail(config, json);
  if (*outbox) return cli_outbox_list(config, list_opts, json);
  if (*exporter) return cli_export(config, export_out, export_since, json);
  if (*dead) return cli_dead_letters(config, limit, json);
  if (*enroll) return cli_enroll(config, out_dir);
  return 2;
}
