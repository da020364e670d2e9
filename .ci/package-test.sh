#!/usr/bin/env bash
# Builds the edgesync .deb (native architecture), and edgesync-hub's when the hub is built, and
# tests them:
#   lintian (no errors), install of a previous version, upgrade (outbox marker and edited
#   config survive), remove (data kept), purge (data deleted), all in a throwaway root with
#   `dpkg --root DIR --force-script-chrootless` (maintainer scripts run on the host with
#   DPKG_ROOT=DIR; ours honour it); `systemd-analyze verify` of the unit and its
#   `systemd-analyze security` exposure.
# Usage: .ci/package-test.sh [BUILD_DIR]     (default build-pkg; run from anywhere)
#   A BUILD_DIR that is already configured (CI passes the native build it tested) is packaged
#   as it is: nothing is recompiled. Otherwise it is configured Release without tests and built.
# Env: EDGESYNC_SKIP_APT=1 skips installing the tools.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-"$SRC/build-pkg"}
PREV_VERSION=0.0.9
JOBS=${JOBS:-$(nproc)}
log() { printf '\n== %s\n' "$*"; }
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

apt_install() {  # retries while another apt/dpkg holds the lock
  local i
  for i in 1 2 3 4 5 6; do
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; then
      return 0
    fi
    echo "apt-get install failed (lock held?), retry $i" >&2
    sleep 10
  done
  return 1
}

if [ "${EDGESYNC_SKIP_APT:-0}" != 1 ]; then
  need=()
  for p in lintian dpkg-dev fakeroot systemd file gzip binutils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -q || echo "apt-get update reported errors; continuing with the lists it has" >&2
    apt_install "${need[@]}"
  fi
fi

# ---- build: one command per package -------------------------------------------------------
if [ -f "$BUILD/CMakeCache.txt" ]; then
  log "package the configured build ($BUILD)"
else
  log "configure + build ($BUILD)"
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DEDGESYNC_BUILD_TESTS=OFF \
    -DEDGESYNC_BUILD_BENCH=OFF >/dev/null
fi
# Packages of an earlier run of a reused build directory would be taken for this one's.
rm -f "$BUILD"/edgesync_*.deb "$BUILD"/edgesync-hub_*.deb
cmake --build "$BUILD" -j"$JOBS" --target package
ARCH=$(dpkg --print-architecture)
NEW_DEB=$(ls "$BUILD"/edgesync_*_"$ARCH".deb | grep -v "_${PREV_VERSION}-" | head -1)
[ -f "$NEW_DEB" ] || fail "package not found in $BUILD"
# The "previous version" is the same package with only its version changed (same files): what
# is under test here is what dpkg and our maintainer scripts do across an upgrade.
previous_version_of() {  # NEW_DEB OLD_DEB
  local repack
  repack=$(mktemp -d /tmp/edgesync-repack.XXXXXX)
  dpkg-deb -R "$1" "$repack/pkg"
  sed -i "s/^Version: .*/Version: ${PREV_VERSION}-1/" "$repack/pkg/DEBIAN/control"
  dpkg-deb --root-owner-group -b "$repack/pkg" "$2" >/dev/null
  rm -rf "$repack"
}
OLD_DEB="$BUILD/edgesync_${PREV_VERSION}-1_${ARCH}.deb"
previous_version_of "$NEW_DEB" "$OLD_DEB"
NEW_VER=$(dpkg-deb -f "$NEW_DEB" Version)
log "packages"; ls -l "$OLD_DEB" "$NEW_DEB"
dpkg-deb -I "$NEW_DEB" | sed -n '/Package:/,$p'
dpkg-deb -c "$NEW_DEB"

# ---- lintian ------------------------------------------------------------------------------
log "lintian"
command -v lintian >/dev/null || fail "lintian is not installed (run without EDGESYNC_SKIP_APT)"
lint() {  # DEB REPORT
  lintian --display-info --pedantic "$1" | tee "$2" || true
  if grep -q '^E:' "$2"; then fail "lintian reported errors for $1"; fi
  echo "lintian: no errors ($(grep -c '^W:' "$2" || true) warnings)"
}
lint "$NEW_DEB" "$BUILD/lintian.txt"

# ---- install / upgrade / remove / purge in a throwaway root --------------------------------
ROOT=$(mktemp -d /tmp/edgesync-root.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/var/lib/dpkg/{info,updates,triggers} "$ROOT"/etc
touch "$ROOT"/var/lib/dpkg/status "$ROOT"/var/lib/dpkg/available
# Depends can't be satisfied in an empty root: the scripts use the host's tools.
DPKG=(dpkg --root="$ROOT" --force-script-chrootless --force-depends --force-confdef --force-confold
      --log=/dev/null)
status_of() {  # [PACKAGE]
  dpkg-query --root="$ROOT" -W -f='${Status} ${Version}' "${1:-edgesync}" 2>/dev/null || true
}

log "install $PREV_VERSION"
"${DPKG[@]}" -i "$OLD_DEB"
[ -x "$ROOT/usr/bin/edgesync" ] || fail "binary not installed"
[ -f "$ROOT/etc/edgesync/edgesync.json" ] || fail "config not installed"
grep -q '^edgesync:' "$ROOT/etc/passwd" || fail "user edgesync not created"
grep -q '^edgesync-producers:' "$ROOT/etc/group" || fail "group edgesync-producers not created"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/edgesync.service" ] ||
  fail "service not enabled"
grep '^edgesync' "$ROOT/etc/passwd" "$ROOT/etc/group"
echo "status: $(status_of)"

# What a running agent and an admin leave behind.
mkdir -p "$ROOT/var/lib/edgesync"
chmod 0750 "$ROOT/var/lib/edgesync"
echo "pending-events-marker" > "$ROOT/var/lib/edgesync/outbox.db"
sed -i 's/"pos-01"/"pos-77"/' "$ROOT/etc/edgesync/edgesync.json"
grep -q '"pos-77"' "$ROOT/etc/edgesync/edgesync.json" || fail "could not edit config"

log "upgrade to $NEW_VER"
"${DPKG[@]}" -i "$NEW_DEB"
status_of | grep -q "install ok installed $NEW_VER" || fail "upgrade: status $(status_of)"
grep -q pending-events-marker "$ROOT/var/lib/edgesync/outbox.db" || fail "upgrade lost the outbox"
grep -q '"pos-77"' "$ROOT/etc/edgesync/edgesync.json" || fail "upgrade lost the config edit"
echo "upgrade kept outbox and edited config; status: $(status_of)"

log "remove"
"${DPKG[@]}" -r edgesync
[ ! -e "$ROOT/usr/bin/edgesync" ] || fail "remove left the binary"
grep -q pending-events-marker "$ROOT/var/lib/edgesync/outbox.db" || fail "remove deleted the outbox"
[ -f "$ROOT/etc/edgesync/edgesync.json" ] || fail "remove deleted the config"
echo "remove kept /var/lib/edgesync and /etc/edgesync; status: $(status_of)"

log "purge"
"${DPKG[@]}" -P edgesync
[ ! -e "$ROOT/var/lib/edgesync" ] || fail "purge left /var/lib/edgesync"
[ ! -e "$ROOT/etc/edgesync" ] || fail "purge left /etc/edgesync"
[ -z "$(status_of | grep -v not-installed)" ] || fail "purge: status $(status_of)"
echo "purge deleted /var/lib/edgesync and /etc/edgesync"

# ---- systemd ------------------------------------------------------------------------------
log "systemd-analyze verify"
# The unit names /usr/bin/edgesync, which is not installed on the build host: verify a copy
# whose ExecStart points at the packaged binary, unpacked next to it.
UNPACK="$ROOT/unpacked"
dpkg-deb -x "$NEW_DEB" "$UNPACK"
UNIT_DIR="$ROOT/unit"; mkdir -p "$UNIT_DIR"
sed "s|^ExecStart=/usr/bin/edgesync|ExecStart=$UNPACK/usr/bin/edgesync|" \
  "$UNPACK/lib/systemd/system/edgesync.service" > "$UNIT_DIR/edgesync.service"
verify_out=$(systemd-analyze verify --man=no "$UNIT_DIR/edgesync.service" 2>&1 || true)
if [ -n "$verify_out" ]; then echo "$verify_out"; fail "systemd-analyze verify complained"; fi
echo "systemd-analyze verify: clean"

log "systemd-analyze security (offline)"
systemd-analyze security --offline=true "$UNPACK/lib/systemd/system/edgesync.service" |
  tee "$BUILD/security.txt" | grep -E '✗|Overall' || true
grep -h 'Overall exposure' "$BUILD/security.txt"

# ---- edgesync-hub ---------------------------------------------------------------------------
HUB_DEB=$(ls "$BUILD"/edgesync-hub_*_"$ARCH".deb 2>/dev/null | grep -v "_${PREV_VERSION}-" | head -1 || true)
if [ -z "$HUB_DEB" ]; then
  log "edgesync-hub: no package (the hub is not built here): skipped"
else
  log "edgesync-hub: lintian"
  dpkg-deb -I "$HUB_DEB" | sed -n '/Package:/,$p'
  lint "$HUB_DEB" "$BUILD/lintian-hub.txt"
  OLD_HUB_DEB="$BUILD/edgesync-hub_${PREV_VERSION}-1_${ARCH}.deb"
  previous_version_of "$HUB_DEB" "$OLD_HUB_DEB"
  HUB_VER=$(dpkg-deb -f "$HUB_DEB" Version)

  log "edgesync-hub: install $PREV_VERSION, upgrade to $HUB_VER, remove, purge"
  "${DPKG[@]}" -i "$OLD_HUB_DEB"
  [ -x "$ROOT/usr/bin/edgesync-hub" ] || fail "hub: binary not installed"
  [ -f "$ROOT/etc/edgesync-hub/hub.json" ] || fail "hub: config not installed"
  grep -q '^edgesync-hub:' "$ROOT/etc/passwd" || fail "hub: user edgesync-hub not created"
  [ -L "$ROOT/etc/systemd/system/multi-user.target.wants/edgesync-hub.service" ] ||
    fail "hub: service not enabled"
  # The shipped configuration is a valid one (only its brokers and database are examples).
  "$ROOT/usr/bin/edgesync-hub" check-config --config "$ROOT/etc/edgesync-hub/hub.json" ||
    fail "hub: the shipped configuration does not pass check-config"
  sed -i 's/"edgesync-hub-1"/"edgesync-hub-7"/' "$ROOT/etc/edgesync-hub/hub.json"
  "${DPKG[@]}" -i "$HUB_DEB"
  status_of edgesync-hub | grep -q "install ok installed $HUB_VER" ||
    fail "hub upgrade: status $(status_of edgesync-hub)"
  grep -q '"edgesync-hub-7"' "$ROOT/etc/edgesync-hub/hub.json" || fail "hub upgrade lost the config edit"
  "${DPKG[@]}" -r edgesync-hub
  [ ! -e "$ROOT/usr/bin/edgesync-hub" ] || fail "hub remove left the binary"
  [ -f "$ROOT/etc/edgesync-hub/hub.json" ] || fail "hub remove deleted the config"
  "${DPKG[@]}" -P edgesync-hub
  [ ! -e "$ROOT/etc/edgesync-hub" ] || fail "hub purge left /etc/edgesync-hub"
  [ ! -e "$ROOT/etc/systemd/system/multi-user.target.wants/edgesync-hub.service" ] ||
    fail "hub purge left the unit enabled"
  [ -z "$(status_of edgesync-hub | grep -v not-installed)" ] ||
    fail "hub purge: status $(status_of edgesync-hub)"
  echo "edgesync-hub: install, upgrade (config edit kept), remove (config kept), purge: ok"

  log "edgesync-hub: systemd-analyze verify and security"
  HUB_UNPACK="$ROOT/unpacked-hub"
  dpkg-deb -x "$HUB_DEB" "$HUB_UNPACK"
  sed "s|^ExecStart=/usr/bin/edgesync-hub|ExecStart=$HUB_UNPACK/usr/bin/edgesync-hub|" \
    "$HUB_UNPACK/lib/systemd/system/edgesync-hub.service" > "$UNIT_DIR/edgesync-hub.service"
  verify_out=$(systemd-analyze verify --man=no "$UNIT_DIR/edgesync-hub.service" 2>&1 || true)
  if [ -n "$verify_out" ]; then echo "$verify_out"; fail "systemd-analyze verify complained (hub)"; fi
  echo "systemd-analyze verify: clean"
  systemd-analyze security --offline=true "$HUB_UNPACK/lib/systemd/system/edgesync-hub.service" |
    tee "$BUILD/security-hub.txt" | grep -E 'Overall' || true
fi

log "package-test: all checks passed"
echo "1 passed, 0 failed"
