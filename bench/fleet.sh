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
. "$repo/bench/build.sh"
bench_args "$@"
bench_build fleet edgesync edgesync-hub edgesync_fleet

# 200 agents hold 200 sockets, databases and MQTT connections; the hubs one each.
ulimit -n 65536 2>/dev/null || true
exec "$build/bench/edgesync_fleet" --agent "$build/agent/edgesync" \
  --hub "$build/hub/edgesync-hub" --contracts "$repo/config/contracts/events" "${args[@]}"
