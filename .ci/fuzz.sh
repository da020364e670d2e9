#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan, and runs each for
# SECONDS (default 60) from a scratch copy of its seed corpus: the in-tree corpus is not grown.
# Prints each target's executions, exec/s and coverage; exits non-zero on any crash, leak,
# undefined behaviour or broken invariant. Expects the packages of .ci/deps.sh to be installed.
#   bash .ci/fuzz.sh [SECONDS]          FUZZ_MAX_LEN=N sets libFuzzer's -max_len (4096)
#   bash .ci/fuzz.sh --build-only       only build the targets (CI builds ahead, in the background)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_ONLY=0
if [ "${1:-}" = --build-only ]; then BUILD_ONLY=1; shift; fi
SECONDS_PER_TARGET=${1:-60}
BUILD=build-fuzz
TARGETS=(fuzz_ingest_line fuzz_config fuzz_config_envelope fuzz_http_body)
# Request lines and config files are mostly well under 4 KiB; longer inputs cost exec/s and
# find little that shorter ones do not.
MAX_LEN=${FUZZ_MAX_LEN:-4096}
JOBS=$(nproc)

CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEDGESYNC_BUILD_FUZZERS=ON -DEDGESYNC_BUILD_TESTS=OFF -DEDGESYNC_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]}"
[ "$BUILD_ONLY" = 1 ] && exit 0

# Readable stack traces in reports, where the symbolizer is installed.
for s in llvm-symbolizer /usr/lib/llvm-14/bin/llvm-symbolizer; do
  if command -v "$s" >/dev/null; then export ASAN_SYMBOLIZER_PATH; ASAN_SYMBOLIZER_PATH=$(command -v "$s"); break; fi
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# One target: its seeds, then SECONDS_PER_TARGET of fuzzing. Its report goes to $scratch/$t.out
# and its summary line to $scratch/$t.line; exits non-zero if it found anything.
fuzz_target() {
  local t=$1 name corpus artifacts log rc=0 execs rate last cov ft corp
  name=${t#fuzz_}
  corpus="$scratch/$name"
  artifacts="$BUILD/fuzz-artifacts/$name"  # kept: a crashing input to reproduce with
  rm -rf "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  cp tests/fuzz/corpus/"$name"/* "$corpus"/
  log="$scratch/$name.log"
  # Every seed once as it is, however long: the corpus keeps inputs that once crashed (some
  # larger than the fuzzing's max_len, which would cut them).
  echo "== $t: the $(ls "$corpus" | wc -l) seeds as they are"
  "$BUILD/tests/fuzz/$t" "$corpus"/* -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" >"$log.seeds" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then
    echo "== $t: fuzzing for ${SECONDS_PER_TARGET}s"
    "$BUILD/tests/fuzz/$t" "$corpus" -dict="tests/fuzz/$name.dict" -max_len="$MAX_LEN" \
      -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$artifacts/" >"$log" 2>&1 || rc=$?
  else
    mv "$log.seeds" "$log"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+.*(cov|DONE)' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  local found=0
  if [ "$rc" != 0 ] || grep -qE '^==[0-9]+==ERROR|runtime error:|invariant broken' "$log"; then
    found=1
    echo "$t FAILED (exit $rc); the end of its log:"
    tail -n 60 "$log"
    for a in "$artifacts"/*; do
      [ -e "$a" ] || continue
      echo "-- input $(basename "$a") (base64):"
      base64 -w 0 "$a" | head -c 8192
      echo
    done
  fi
  echo "$t: executions=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} exit=$rc" \
    >"$scratch/$t.line"
  return "$found"
}

# The targets run side by side, one per CPU (each fuzzer is one thread): each still gets its
# SECONDS_PER_TARGET of a whole CPU, in a fraction of the wall time.
failed=0
running=0
for t in "${TARGETS[@]}"; do
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
  fuzz_target "$t" >"$scratch/$t.out" 2>&1 &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
for t in "${TARGETS[@]}"; do cat "$scratch/$t.out"; done
echo "== fuzz summary (${SECONDS_PER_TARGET}s per target)"
for t in "${TARGETS[@]}"; do cat "$scratch/$t.line" 2>/dev/null || echo "$t: no result"; done
exit "$failed"
