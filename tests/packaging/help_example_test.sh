#!/usr/bin/env bash
# Every command's --help reads like its manual entry: it ends with an example of that very
# command (an "Example:" line, then lines "  edgesync PATH ..."). A command added to agent/main.cc
# without a footer fails here, and so does one that shows a footer taken from its parent (CLI11
# copies the parent's footer into a sub-command added after it): that example names the parent.
# Usage: help_example_test.sh EDGESYNC_BINARY AGENT_MAIN_CC
# EDGESYNC_BIN_WRAPPER, when set (qemu-user in cross builds), is what runs the binary.
set -u
bin=${1:?usage: help_example_test.sh EDGESYNC_BINARY AGENT_MAIN_CC}
main_cc=${2:?usage: help_example_test.sh EDGESYNC_BINARY AGENT_MAIN_CC}
# shellcheck source=tests/packaging/cli_tree.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_tree.sh"
read -ra wrapper <<<"${EDGESYNC_BIN_WRAPPER:-}"

tree=$(edgesync_cli_tree "$main_cc") || exit 1

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# The example lines of a help text: the indented lines after "Example:", up to a blank line.
examples() {
    awk '/^Examples?:$/ { inside = 1; next }
         inside && /^$/ { inside = 0 }
         inside { print }' <<<"$1"
}

# The top level (an empty path) and every sub-command.
paths=("")
while IFS='|' read -r kind path _; do
    [[ $kind == command ]] && paths+=("$path")
done <<<"$tree"

commands=0
for path in "${paths[@]}"; do
    read -ra words <<<"$path"
    shown="edgesync${path:+ $path}"
    if ! help=$("${wrapper[@]}" "$bin" "${words[@]}" --help 2>&1); then
        fail "'$shown --help' failed: $help"
        continue
    fi
    commands=$((commands + 1))
    if ! grep -qE '^Examples?:$' <<<"$help"; then
        fail "'$shown --help' has no Example"
    elif ! examples "$help" | grep -qE "^ +${shown}( |;|\$)"; then
        fail "'$shown --help': no example of $shown under Example:"
    fi
done

# A reader that finds nothing must not pass: main.cc defines some twenty commands.
if ((commands < 15)); then
    fail "only $commands commands' help read ($main_cc, $bin)"
fi

if ((failures > 0)); then
    echo "$failures failures"
    exit 1
fi
echo "ok: $commands commands' --help end with an example of the command"
