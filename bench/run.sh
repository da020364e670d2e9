#!/usr/bin/env bash
# Builds the agent and the benchmark in <repo>/build-bench and runs the benchmark.
#   bash bench/run.sh [--quick] [--dir BASE] [--keep]
# BASE (default $TMPDIR or /tmp) must be on the disk the outbox would live on: the figures are
# about fdatasync. Takes about 5 minutes (--quick: about 1), plus the first build.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$repo/build-bench"
jobs="$(nproc 2>/dev/null || echo 2)"
log="$build/bench-build.log"
mkdir -p "$build"

# The same Debian packages the build and the tests need (a no-op when they are there).
bash "$repo/.ci/deps.sh"

{
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEDGESYNC_BUILD_TESTS=OFF -DEDGESYNC_BUILD_BENCH=ON
  cmake --build "$build" --target edgesync edgesync_bench -j"$jobs"
} >"$log" 2>&1 || {
  echo "bench/run.sh: build failed; last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
}

exec "$build/bench/edgesync_bench" --agent "$build/agent/edgesync" "$@"
