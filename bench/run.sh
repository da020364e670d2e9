#!/usr/bin/env bash
# Builds the agent and the benchmark in <repo>/build-bench and runs the benchmark.
#   bash bench/run.sh [--quick] [--dir BASE] [--keep]
# BASE (default $TMPDIR or /tmp) must be on the disk the outbox would live on: the figures are
# about fdatasync. Takes about 5 minutes (--quick: about 1), plus the first build.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$repo/build-bench"
. "$repo/bench/build.sh"
# The same Debian packages the build and the tests need (a no-op when they are there).
bench_build bench edgesync edgesync_bench

exec "$build/bench/edgesync_bench" --agent "$build/agent/edgesync" "$@"
