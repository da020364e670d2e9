#!/usr/bin/env bash
# Cross-builds edgesync for an ARM Debian 12 target and runs its tests under qemu-user.
# Usage: .ci/cross.sh arm64|armhf [--tests unit|agent|all|none] [--native-build DIR]
#                                 [--build-dir DIR] [--build-only]
#   Installs what it needs (cross g++, qemu-user, the target's -dev packages), configures
#   build-ARCH with toolchains/<triple>.cmake, builds, runs the tests, prints the stripped
#   binary size and the agent's peak RSS under qemu. --tests:
#     unit   the agent and the unit tests, built for ARCH and run under qemu
#     agent  (CI) unit, then ARM_AGENT_TESTS below: integration tests of the native build
#            (--native-build, default build) driving the ARM agent binary under qemu. What
#            runs on ARM is the agent; the test programs and the broker stay native, so the
#            integration harness is not cross-built and the emulator runs only the agent.
#     all    every unit and integration test built for ARCH and run under qemu (long)
#     none   build only
#   --build-only: install, configure and build what --tests needs, and stop (CI builds ahead,
#   in the background, and runs the same command without it later).
# Target libraries: installed as multiarch packages (dpkg --add-architecture) when apt can
# co-install them with the host's; when it cannot (the mirror's ARCH index lags behind the
# host's own package versions, which Multi-Arch: same forbids), the same packages are
# unpacked into BUILD/sysroot with `apt-get download` + `dpkg -x` (EDGESYNC_SYSROOT).
# Env: EDGESYNC_SKIP_APT=1 skips all apt work; EDGESYNC_CROSS_MODE=multiarch|sysroot forces
# one layout; CTEST_PARALLEL_LEVEL as usual.
set -euo pipefail

ARCH=${1:-}; shift || true
TESTS=unit
BUILD=
NATIVE_BUILD=
BUILD_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tests) TESTS=$2; shift 2 ;;
    --native-build) NATIVE_BUILD=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --build-only) BUILD_ONLY=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$ARCH" in
  arm64) TRIPLE=aarch64-linux-gnu; QEMU=qemu-aarch64 ;;
  armhf) TRIPLE=arm-linux-gnueabihf; QEMU=qemu-arm ;;
  *) echo "usage: $0 arm64|armhf [--tests unit|agent|all|none] [--native-build DIR] [--build-dir DIR]" >&2
     exit 2 ;;
esac
case "$TESTS" in unit|agent|all|none) ;; *) echo "--tests unit|agent|all|none" >&2; exit 2 ;; esac

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-"$SRC/build-$ARCH"}
NATIVE_BUILD=${NATIVE_BUILD:-"$SRC/build"}
# --tests agent: the integration tests that exercise the agent binary itself on ARM: ingest and
# group commit with 8 producers, delivery and its window, kill -9 and SIGTERM, a broker outage,
# dead letters, refused input, the CLI on the live database, and the HTTP and spool ways in.
ARM_AGENT_TESTS=(delivery_test crash_test broker_outage_test dead_letter_test bad_input_test
                 cli_test http_ingest_test spool_test)
# --tests agent: the unit tests built for ARM with it, those where ARM differs from the build
# machine: a weaker memory order (the outbox's writer thread, its owner and appenders, the run of
# events just committed), plain char unsigned (the parsers and checks of outside text: event
# lines, HTTP bodies, control requests, signed config envelopes, contracts), and the target's
# own builds of SQLite, mbedTLS, glibc's malloc, clocks and thread priorities. The others test
# logic that compiles to the same behaviour on any target; `--tests unit` and `--tests all`
# build and run every one (.ci/test.sh --full).
ARM_UNIT_TESTS=(outbox_test outbox_fault_test outbox_owner_commit_test outbox_repair_test
                recent_events_test restart_after_failed_sync_test schema_test memory_test
                threads_test clock_test crypto_test config_test config_envelope_test
                event_contract_test wire_agreement_test http_body_test control_protocol_test)
HOST_ARCH=$(dpkg --print-architecture)
JOBS=${JOBS:-$(nproc)}
log() { printf '\n== %s\n' "$*"; }

# Target -dev packages (libasio-dev, nlohmann-json3-dev, libcli11-dev are arch-independent and
# come from the host). libpaho-mqtt-dev must be named explicitly, libssl-dev because
# PahoMqttCppConfig.cmake does find_package(OpenSSL). GoogleTest: Debian 12 ships
# libgtest-dev/libgmock-dev per architecture (static libs), no need to build /usr/src/googletest.
TARGET_PKGS=(libsqlite3-dev libmbedtls-dev libssl-dev libpaho-mqtt-dev libpaho-mqttpp-dev
             libsystemd-dev libgtest-dev libgmock-dev)
HOST_PKGS=(g++-$TRIPLE binutils-$TRIPLE qemu-user cmake make pkg-config libasio-dev
           nlohmann-json3-dev libcli11-dev mosquitto time file)
APT_ARCHS=(-o "APT::Architectures::=$HOST_ARCH" -o "APT::Architectures::=$ARCH")

apt_retry() {  # another process may hold the dpkg lock for a while
  local i
  for i in 1 2 3 4 5 6; do
    if DEBIAN_FRONTEND=noninteractive "$@"; then return 0; fi
    echo "'$*' failed, retry $i" >&2; sleep 10
  done
  return 1
}

MODE=${EDGESYNC_CROSS_MODE:-}
SYSROOT="$BUILD/sysroot"
if [ "${EDGESYNC_SKIP_APT:-0}" != 1 ]; then
  log "apt: $ARCH toolchain and libraries"
  dpkg --add-architecture "$ARCH"
  # Update only the host's and the target's indexes: a broken index of an unrelated foreign
  # architecture must not make apt drop the whole suite (seen with bookworm-security/armhf).
  for i in 1 2 3; do
    if apt-get update -q "${APT_ARCHS[@]}"; then break; fi
    echo "apt-get update reported errors (try $i); continuing with the lists it has" >&2
    sleep 10
  done
  apt_retry apt-get install -y -q --no-install-recommends "${HOST_PKGS[@]}"
  if [ "$MODE" != sysroot ]; then
    if apt_retry apt-get install -y -q --no-install-recommends "${APT_ARCHS[@]}" \
         "${TARGET_PKGS[@]/%/:$ARCH}"; then
      MODE=multiarch
    elif [ "$MODE" = multiarch ]; then
      echo "multiarch install failed" >&2; exit 1
    else
      echo "multiarch install of the :$ARCH packages failed (version skew with the host);" \
           "falling back to an unpacked sysroot in $SYSROOT" >&2
      MODE=sysroot
    fi
  fi
  if [ "$MODE" = sysroot ] && [ ! -f "$SYSROOT/.complete" ]; then
    rm -rf "$SYSROOT"; mkdir -p "$SYSROOT/debs"
    # The packages and their dependency closure, minus what the cross toolchain already has
    # (C library, libstdc++, libgcc) in /usr/$TRIPLE.
    mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances "${TARGET_PKGS[@]/%/:$ARCH}" |
      grep -E "^[a-z0-9].*:$ARCH\$" | sort -u |
      grep -Ev "^(libc6|libc6-dev|libc-dev-bin|linux-libc-dev|gcc-[0-9]+-base|libgcc-s1|libstdc\+\+6|libcrypt1|libcrypt-dev|libnsl-dev|libnsl2|libtirpc-dev|libtirpc3|libtirpc-common|rpcsvc-proto):")
    (cd "$SYSROOT/debs" && apt-get download -q "${closure[@]}")
    for d in "$SYSROOT"/debs/*.deb; do dpkg -x "$d" "$SYSROOT"; done
    rm -rf "$SYSROOT/debs"
    touch "$SYSROOT/.complete"
  fi
fi
if [ -z "$MODE" ]; then
  if [ -f "$SYSROOT/.complete" ]; then MODE=sysroot; else MODE=multiarch; fi
fi

# ---- configure + build -----------------------------------------------------------------
log "configure $BUILD ($MODE)"
CMAKE_ARGS=(-DCMAKE_TOOLCHAIN_FILE="$SRC/toolchains/$TRIPLE.cmake" -DCMAKE_BUILD_TYPE=Release
            -DEDGESYNC_BUILD_BENCH=OFF)
if [ "$TESTS" = none ]; then CMAKE_ARGS+=(-DEDGESYNC_BUILD_TESTS=OFF); else CMAKE_ARGS+=(-DEDGESYNC_BUILD_TESTS=ON); fi
# Unit-only and agent runs skip the integration harness: less to build on a 2-core CI machine.
if [ "$TESTS" = unit ] || [ "$TESTS" = agent ]; then CMAKE_ARGS+=(-DEDGESYNC_BUILD_INTEGRATION_TESTS=OFF); else CMAKE_ARGS+=(-DEDGESYNC_BUILD_INTEGRATION_TESTS=ON); fi
LIBDIRS=()
if [ "$MODE" = sysroot ]; then
  CMAKE_ARGS+=(-DEDGESYNC_SYSROOT="$SYSROOT")
  LIBDIRS=("$SYSROOT/usr/lib/$TRIPLE" "$SYSROOT/lib/$TRIPLE")
else
  CMAKE_ARGS+=(-UEDGESYNC_SYSROOT)
fi
cmake -S "$SRC" -B "$BUILD" "${CMAKE_ARGS[@]}"
log "build"
BUILD_TARGETS=()
if [ "$TESTS" = agent ]; then
  BUILD_TARGETS=(--target edgesync)
  # A test whose library is absent from this target's build (HTTP without cpp-httplib) is not
  # defined there: build and run the others.
  defined=$(cmake --build "$BUILD" --target help | sed -n 's/^\.\.\. \([^ ]*\).*/\1/p')
  for t in "${ARM_UNIT_TESTS[@]}"; do
    if grep -qx "$t" <<<"$defined"; then BUILD_TARGETS+=("$t"); fi
  done
fi
time cmake --build "$BUILD" -j"$JOBS" "${BUILD_TARGETS[@]}"
if [ "$BUILD_ONLY" = 1 ]; then
  log "built $BUILD (--build-only)"
  exit 0
fi

# The command that runs a target binary here; the test harness prepends it when it spawns the
# agent itself (EDGESYNC_BIN_WRAPPER; the toolchain's CMAKE_CROSSCOMPILING_EMULATOR is the same).
# Loader and C library from one glibc build (see toolchains/debian-cross-common.cmake).
if [ "$MODE" = multiarch ]; then WRAP="$QEMU -L /"; else WRAP="$QEMU -L /usr/$TRIPLE"; fi
if [ ${#LIBDIRS[@]} -gt 0 ]; then WRAP="$WRAP -E LD_LIBRARY_PATH=$(IFS=:; echo "${LIBDIRS[*]}")"; fi
export EDGESYNC_BIN_WRAPPER="$WRAP"

# ---- figures -------------------------------------------------------------------------------
BIN=$(find "$BUILD" -type f -name edgesync -perm -u+x -not -path '*/CMakeFiles/*' | head -1)
log "figures ($ARCH)"
if [ -n "$BIN" ]; then
  file "$BIN"
  "$TRIPLE-strip" -o "$BUILD/edgesync.stripped" "$BIN"
  echo "stripped binary size ($ARCH): $(stat -c %s "$BUILD/edgesync.stripped") bytes"
  # Peak RSS of qemu-user running `edgesync check-config` on the shipped example: includes
  # the emulator's own memory, so it is an upper bound, not the native figure.
  if command -v /usr/bin/time >/dev/null; then
    # shellcheck disable=SC2086
    /usr/bin/time -f "peak RSS under $QEMU (check-config, incl. emulator): %M KiB" \
      $WRAP "$BIN" check-config --config "$SRC/config/edgesync.example.json" >/dev/null 2>"$BUILD/rss.txt" || true
    grep 'peak RSS' "$BUILD/rss.txt" || tail -3 "$BUILD/rss.txt"
  fi
  # shellcheck disable=SC2086
  $WRAP "$BIN" --version || true
else
  echo "no edgesync binary found in $BUILD"
fi

# ---- tests -----------------------------------------------------------------------------------
if [ "$TESTS" != none ]; then
  log "ctest ($TESTS) under $QEMU"
  CTEST_ARGS=(--test-dir "$BUILD" --output-on-failure --no-tests=error)
  [ "$TESTS" != all ] && CTEST_ARGS+=(-L unit)
  if [ "$TESTS" = agent ]; then
    CTEST_ARGS+=(-R "^($(IFS='|'; echo "${BUILD_TARGETS[*]:2}"))\$")
  fi
  # The link-fault suites test the agent's connection handling, the same code on every
  # architecture; under qemu-user their timing bounds would measure the emulator. The broker
  # failover and cluster tests are connection handling too, and the PostgreSQL harness test
  # checks the harness (native servers) only.
  CTEST_ARGS+=(-E '^(bad_link_test|tls_failure_test|failover_test|ejabberd_cluster_test|postgres_harness_test)$')
  echo "EDGESYNC_BIN_WRAPPER=$EDGESYNC_BIN_WRAPPER"
  ctest "${CTEST_ARGS[@]}"
fi

# ---- the native integration tests against the ARM agent --------------------------------------
# Run as programs, not through the native ctest: its tests carry the native agent's path.
if [ "$TESTS" = agent ]; then
  log "integration tests of $NATIVE_BUILD against the $ARCH agent under $QEMU"
  [ -n "$BIN" ] || { echo "no $ARCH agent binary in $BUILD" >&2; exit 1; }
  # Without the target's cpp-httplib the agent has no HTTP way in (it refuses
  # ingest.http.listen at start): its HTTP test cannot run against it.
  if ! grep -q '^HTTPLIB_FOUND:INTERNAL=1$' "$BUILD/CMakeCache.txt"; then
    echo "the $ARCH agent is built without cpp-httplib: http_ingest_test left out"
    kept=(); for t in "${ARM_AGENT_TESTS[@]}"; do [ "$t" = http_ingest_test ] || kept+=("$t"); done
    ARM_AGENT_TESTS=("${kept[@]}")
  fi
  failed=()
  for t in "${ARM_AGENT_TESTS[@]}"; do
    exe="$NATIVE_BUILD/tests/integration/$t"
    [ -x "$exe" ] || { echo "$exe: not built (build the native tree first)" >&2; exit 1; }
    t0=$(date +%s)
    if EDGESYNC_BIN="$BIN" EDGESYNC_SOURCE_DIR="$SRC" timeout 600 "$exe" >"$BUILD/$t.log" 2>&1; then
      echo "passed  $t ($(( $(date +%s) - t0 )) s)"
    else
      echo "FAILED  $t ($(( $(date +%s) - t0 )) s); its output:"
      tail -150 "$BUILD/$t.log"
      failed+=("$t")
    fi
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "cross ($ARCH): integration tests failed against the $ARCH agent: ${failed[*]}" >&2
    exit 1
  fi
fi
