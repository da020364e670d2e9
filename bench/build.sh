# Sourced by bench/run.sh, soak.sh and fleet.sh: installs the project's Debian packages and
# builds the given targets in one bench build tree (default <repo>/build-bench).
#   bench_build NAME TARGET...   NAME names the log: <build>/NAME-build.log.
# Reads `repo` and `build`. A build tree that is already configured keeps its own settings; only
# the bench is switched on. Exits with the log's tail when the build fails.
bench_build() {
  local name="$1"
  shift
  local jobs log
  jobs="$(nproc 2>/dev/null || echo 2)"
  mkdir -p "$build"
  log="$build/$name-build.log"
  bash "$repo/.ci/deps.sh"
  {
    if [ -f "$build/CMakeCache.txt" ]; then
      cmake -S "$repo" -B "$build" -DEDGESYNC_BUILD_BENCH=ON
    else
      cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DEDGESYNC_BUILD_TESTS=OFF -DEDGESYNC_BUILD_BENCH=ON
    fi
    cmake --build "$build" --target "$@" -j"$jobs"
  } >"$log" 2>&1 || {
    echo "bench/$(basename "$0"): build failed; last lines of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  }
}

# Takes --build DIR out of the arguments (into `build`); the rest go into the array `args`.
bench_args() {
  args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --build) build="$2"; shift 2 ;;
      *) args+=("$1"); shift ;;
    esac
  done
}
