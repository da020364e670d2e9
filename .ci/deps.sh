#!/usr/bin/env bash
# Installs what edgesync needs to build, test and run its demo on Debian 12 (as root).
# Every package comes from Debian; docs/DESIGN.md ("Dependencies") says why each one is there.
set -euo pipefail
PKGS=(
  g++ cmake make pkg-config            # toolchain
  clang                                # -Wthread-safety: checks the locking annotations
  libasio-dev                          # event loop, Unix sockets, timers, signals
  libsqlite3-dev                       # the outbox
  libmbedtls-dev                       # application crypto (signed config, device keys)
  libpaho-mqtt-dev libpaho-mqttpp-dev  # MQTT v5 over TLS to the hub
  libssl-dev                           # paho's CMake package looks for OpenSSL
  nlohmann-json3-dev                   # JSON parsing of config and events
  libcli11-dev                         # the command line
  libsystemd-dev                       # sd_notify: readiness and watchdog
  libgtest-dev                         # unit and integration tests
  libclang-rt-14-dev llvm-14           # fuzzing (.ci/fuzz.sh): libFuzzer and sanitizer runtimes, llvm-symbolizer
  mosquitto mosquitto-clients openssl  # real broker and certificates for tests and the demo
  libmosquitto-dev                     # edgesync-hub's MQTT client (acknowledges after the commit)
  dpkg-dev fakeroot lintian            # the .deb: dpkg-shlibdeps (found when the build is configured), its checks
  libvalijson-dev                      # JSON Schema validation: event contracts at ingest, and the tests' checks of config/contracts
  json-schema-test-suite               # the official JSON Schema test suite: valijson held to it for the contracts' keywords
  libcpp-httplib-dev                   # HTTP on loopback: the metrics endpoint and HTTP ingest
  curl                                 # a real HTTP client in the HTTP ingest tests
  faketime                             # libfaketime: the agent's wall clock stepped under it (wall_clock_test)
  libpqxx-dev libpq-dev                # edgesync-hub's PostgreSQL client (libpqxx on libpq)
  postgresql-15                        # the hub's database: the tests and the demo start their own server
  ejabberd                             # a clustered MQTT 5 broker: ejabberd_cluster_test runs a two-node cluster on loopback
  chromium chromium-driver             # headless browser and its WebDriver: hub_page_test reads the hub's page as an operator would
)
# The tests run PostgreSQL and ejabberd as their own accounts (both refuse root or expect their
# user). A root directory other users cannot enter (0700, as a root made with mktemp for a
# chroot is) stops them loading even their libraries: give / Debian's default mode.
if [ "$(id -u)" = 0 ] && [ "$(stat -c %a /)" != 755 ]; then
  echo "deps: / is mode $(stat -c %a /); setting Debian's 755 so service accounts can run" >&2
  chmod 755 /
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or install them with apt-get)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Packages with a service (postgresql, mosquitto) start it on install; the tests and the demo
  # run their own servers on free ports, so a policy-rc.d keeps the packaged ones stopped.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # A mirror mid-sync can fail one index (e.g. a foreign architecture's security list) while
  # the lists this install needs are fine: an update error is reported, not fatal, and the
  # install decides.
  for i in 1 2 3 4 5; do
    apt-get update -qq || echo "apt-get update reported errors (attempt $i); installing from the lists it has" >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" && break
    echo "apt-get install failed (attempt $i), retrying" >&2
    # "Unmet dependencies" here means dpkg's state was already broken (an install cut short
    # on a reused machine, e.g. a cross build's :armhf libraries): finish what dpkg had
    # begun and let apt mend or remove the broken packages before the next try.
    dpkg --configure -a || true
    apt-get -f install -y -qq --no-install-recommends || true
    sleep $((10 * i))
  done
  for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      { echo "could not install $p" >&2; exit 1; }
  done
fi
