// edgesync: one binary, subcommands for the agent and for the people around it.
#include <CLI/CLI.hpp>
#include <iostream>

#include "agent/agent.h"
#include "agent/cli.h"
#include "agent/config.h"
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

  auto* check = app.add_subcommand("check-config", "validate a configuration file and exit");
  check->add_option("--config", config_path, "configuration file")->capture_default_str();

  std::string input, socket_override;
  auto* send = app.add_subcommand("send", "send NDJSON events through the ingest socket");
  send->add_option("--config", config_path, "configuration file")->capture_default_str();
  send->add_option("--socket", socket_override, "ingest socket (overrides the config)");
  send->add_option("file", input, "NDJSON file (default: standard input)");

  bool json = false;
  auto* status = app.add_subcommand("status", "connection state and outbox figures");
  status->add_option("--config", config_path, "configuration file")->capture_default_str();
  status->add_flag("--json", json, "machine-readable output");

  bool all = false;
  size_t limit = 100;
  auto* outbox = app.add_subcommand("outbox", "list events in the outbox (pending by default)");
  outbox->add_option("--config", config_path, "configuration file")->capture_default_str();
  outbox->add_flag("--all", all, "include delivered events still kept for de-duplication");
  outbox->add_option("--limit", limit, "at most this many events")->capture_default_str();
  outbox->add_flag("--json", json, "machine-readable output");

  auto* dead = app.add_subcommand("dead-letters", "list events the hub refused for good");
  dead->add_option("--config", config_path, "configuration file")->capture_default_str();
  dead->add_option("--limit", limit, "at most this many")->capture_default_str();
  dead->add_flag("--json", json, "machine-readable output");

  // ---- pushed configuration (docs/FLEET.md) ----
  std::string out_dir, key_name = "signing";
  auto* keys = app.add_subcommand("keys", "manage the keys that sign pushed configuration");
  keys->require_subcommand(1);
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
      "storage.path, ingest.socket, hub.topic_prefix, remote_config), every key known and typed\n"
      "right. Rules that depend on the box's own file are printed as notes, not refused. The\n"
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

  Config config;
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
    std::cout << config_path << ": ok\n";
    return 0;
  }
  if (*send) return cli_send(config.ingest.socket, input);
  if (*status) return cli_status(config, json);
  if (*outbox) return cli_outbox_list(config, all, limit, json);
  if (*dead) return cli_dead_letters(config, limit, json);
  if (*enroll) return cli_enroll(config, out_dir);
  return 2;
}
