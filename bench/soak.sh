#!/usr/bin/env bash
# The soak: the real agent under steady load for an hour while its hub broker is restarted every
# two minutes and the agent is SIGKILLed every ten. Not run in CI.
#   bash bench/soak.sh [--minutes M] [--rate R] [--build DIR] [other edgesync_soak options]
# Defaults: 60 minutes at 500 events/s. Shorter runs scale both intervals by M/60 (10 minutes:
# a broker restart every 20 s, an agent kill every 100 s); --broker-restart-s and --agent-kill-s
# set them outright, --producers, --sample-s, --drain-s, --dir BASE and --keep are passed on.
# Prints acknowledged, delivered, lost (must be 0) and duplicate counts and the agent's RSS and
# open descriptors per life, then PASS or FAIL (exit status 0 or 1).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$repo/build-bench"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
jobs="$(nproc 2>/dev/null || echo 2)"
mkdir -p "$build"
log="$build/soak-build.log"

bash "$repo/.ci/deps.sh"

{
  if [ -f "$build/CMakeCache.txt" ]; then
    # An existing build keeps its own settings; only the bench is switched on.
    cmake -S "$repo" -B "$build" -DEDGESYNC_BUILD_BENCH=ON
  else
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DEDGESYNC_BUILD_TESTS=OFF -DEDGESYNC_BUILD_BENCH=ON
  fi
  cmake --build "$build" --target edgesync edgesync_soak -j"$jobs"
} >"$log" 2>&1 || {
  echo "bench/soak.sh: build failed; last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
}

exec "$build/bench/edgesync_soak" --agent "$build/agent/edgesync" "${args[@]}"
