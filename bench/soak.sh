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
. "$repo/bench/build.sh"
bench_args "$@"
bench_build soak edgesync edgesync_soak

exec "$build/bench/edgesync_soak" --agent "$build/agent/edgesync" "${args[@]}"
