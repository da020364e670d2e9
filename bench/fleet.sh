#!/usr/bin/env bash
# The fleet, simulated: 200 real agents against one mosquitto and two edgesync-hub instances (a
# shared group) on PostgreSQL, with the broker restarted and one hub SIGKILLed under load. Not
# run in CI (a few minutes and a few GB of memory).
#   bash bench/fleet.sh [--agents N] [--rate SALES_PER_S_PER_AGENT] [--steady-s S] [--burst N]
#                       [--build DIR] [--dir BASE] [--keep]
# Defaults: 200 agents at 0.5 sales/s each, 60 s steady, a burst of 25 sales per agent.
# Prints latency from the producer's ack to the stock row, the hubs' commit rate, agent memory,
# the spread of reconnections after the broker restart, and the checks (every acknowledged sale
# at the hub once, gaps clean, stock equal to what was sold), then PASS or FAIL.
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
log="$build/fleet-build.log"

bash "$repo/.ci/deps.sh"

{
  if [ -f "$build/CMakeCache.txt" ]; then
    cmake -S "$repo" -B "$build" -DEDGESYNC_BUILD_BENCH=ON
  else
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release \
      -DEDGESYNC_BUILD_TESTS=OFF -DEDGESYNC_BUILD_BENCH=ON
  fi
  cmake --build "$build" --target edgesync edgesync-hub edgesync_fleet -j"$jobs"
} >"$log" 2>&1 || {
  echo "bench/fleet.sh: build failed; last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
}

# 200 agents hold 200 sockets, databases and MQTT connections; the hubs one each.
ulimit -n 65536 2>/dev/null || true
exec "$build/bench/edgesync_fleet" --agent "$build/agent/edgesync" \
  --hub "$build/hub/edgesync-hub" --contracts "$repo/config/contracts/events" "${args[@]}"
