#!/usr/bin/env bash
# Builds edgesync and runs the whole test suite: unit, fault and integration tests (real
# mosquitto over TLS, real SQLite), 40 s of fuzzing per parser, the sanitizers' quick form, then
# the ARM builds under qemu and the package checks.
# Installs what it needs itself (Debian 12, as root).
#   bash .ci/test.sh            everything
#   bash .ci/test.sh --native   only the native build and tests
set -euo pipefail
cd "$(dirname "$0")/.."
NATIVE_ONLY=0
[ "${1:-}" = "--native" ] && NATIVE_ONLY=1
JOBS=$(nproc)

start=$(date +%s)
stage() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

stage "dependencies"
bash .ci/deps.sh

stage "native build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEDGESYNC_BUILD_TESTS=ON \
  -DEDGESYNC_BUILD_INTEGRATION_TESTS=ON -DEDGESYNC_BUILD_BENCH=OFF >/dev/null
cmake --build build -j"$JOBS"

stage "native tests"
(cd build && ctest --output-on-failure -L unit -j"$JOBS" && ctest --output-on-failure -L integration)

if [ "$NATIVE_ONLY" = 1 ]; then
  stage "done (native only)"
  exit 0
fi
stage "fuzzing: ingest line parser, config loader, config envelope and HTTP body, 40 s each"
bash .ci/fuzz.sh 40

stage "sanitizers (quick form): ASan+UBSan and TSan"
bash .ci/sanitize.sh --quick

if [ -x .ci/cross.sh ]; then
  stage "arm64: cross build, unit and integration tests under qemu"
  bash .ci/cross.sh arm64 --tests all
  stage "armhf: cross build, unit tests under qemu"
  bash .ci/cross.sh armhf --tests unit
fi
if [ -x .ci/package-test.sh ]; then
  stage "packages: build, lintian, install/upgrade/remove/purge"
  bash .ci/package-test.sh
fi
stage "all tests passed"
