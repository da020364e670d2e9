#!/usr/bin/env bash
# Builds edgesync and runs the test suite. Installs what it needs itself (Debian 12, as root).
#   bash .ci/test.sh            CI, every time: the native build with every unit, fault and
#                               integration test (real mosquitto over TLS, real SQLite,
#                               PostgreSQL, ejabberd, Chromium), the .deb checks on that build,
#                               30 s of fuzzing per parser (one per CPU at a time), TSan on the
#                               outbox's concurrency tests, and the arm64 agent under qemu driven
#                               by the native integration tests
#   bash .ci/test.sh --full     all that, then the long forms: ASan+UBSan over the whole suite,
#                               TSan over every test where threads share state, every arm64
#                               unit and integration test built for arm64 and run under qemu,
#                               armhf unit tests under qemu (about an hour and a half more)
#   bash .ci/test.sh --native   only the native build and its tests
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=ci
case "${1:-}" in
  "") ;;
  --native) MODE=native ;;
  --full) MODE=full ;;
  *) echo "usage: $0 [--native|--full]" >&2; exit 2 ;;
esac
JOBS=$(nproc)

start=$(date +%s)
stage() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

stage "dependencies"
bash .ci/deps.sh

stage "native build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEDGESYNC_BUILD_TESTS=ON \
  -DEDGESYNC_BUILD_INTEGRATION_TESTS=ON -DEDGESYNC_BUILD_BENCH=OFF >/dev/null
cmake --build build -j"$JOBS"

# The later stages' builds (fuzz targets, TSan, the arm64 agent) start now, in the background at
# idle priority (SCHED_IDLE): they take only CPU time the native tests leave idle (more than half
# of it: the integration tests mostly wait on keepalives, backoffs and timeouts), so the tests run
# as they would alone. Each later stage runs its own script again, which builds what is left (or
# again, with its errors in view, if a build ahead failed) and then runs.
ahead_pid=
if [ "$MODE" != native ]; then
  stage "builds ahead, in the background at idle priority: the arm64 agent, fuzz targets, TSan"
  setsid chrt --idle 0 bash -c '
    set -e
    t0=$(date +%s)
    bash .ci/cross.sh arm64 --tests agent --build-only
    bash .ci/fuzz.sh --build-only
    bash .ci/sanitize.sh thread --quick --build-only
    echo "builds ahead: done in $(( $(date +%s) - t0 )) s"' >build/builds-ahead.log 2>&1 &
  ahead_pid=$!
  trap '[ -n "$ahead_pid" ] && kill -- "-$ahead_pid" 2>/dev/null; true' EXIT
fi

stage "native tests"
# Integration tests two at a time too: most of their time is spent waiting on keepalives, backoffs
# and timeouts. Those that must run alone say so (RUN_SERIAL, tests/integration/CMakeLists.txt).
(cd build && ctest --output-on-failure -L unit -j"$JOBS" &&
  ctest --output-on-failure -L integration -j"$JOBS")

if [ "$MODE" = native ]; then
  stage "done (native only)"
  exit 0
fi
stage "builds ahead: the rest of them, now at full speed"
if wait "$ahead_pid"; then
  tail -1 build/builds-ahead.log
else
  echo "a build ahead failed (the end of its log below); its stage builds again"
  tail -40 build/builds-ahead.log
fi
ahead_pid=
stage "packages: the tested build's .deb: lintian, install/upgrade/remove/purge"
bash .ci/package-test.sh "$PWD/build"

stage "fuzzing: ingest line parser, config loader, config envelope and HTTP body, 30 s each"
bash .ci/fuzz.sh 30

stage "TSan: the outbox's writer thread against appenders and its owner"
bash .ci/sanitize.sh thread --quick

stage "arm64: the agent cross-built, under qemu, driven by the native integration tests"
bash .ci/cross.sh arm64 --tests agent --native-build "$PWD/build"

if [ "$MODE" = full ]; then
  stage "full: ASan+UBSan over every test, TSan over every threaded test"
  bash .ci/sanitize.sh all
  stage "full: arm64, every unit and integration test built for arm64 under qemu"
  bash .ci/cross.sh arm64 --tests all --build-dir "$PWD/build-arm64-all"
  stage "full: armhf, unit tests under qemu"
  bash .ci/cross.sh armhf --tests unit
fi
stage "all tests passed"
