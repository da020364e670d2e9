#!/usr/bin/env bash
# The bash completion offers what edgesync accepts: hand-picked cases for values (files,
# directories, levels, scopes) and for where the cursor is, then every sub-command and option
# agent/main.cc defines, so a command or option added there without its completion fails here.
# Usage: bash_completion_test.sh COMPLETION_FILE AGENT_MAIN_CC
set -u
completion=${1:?usage: bash_completion_test.sh COMPLETION_FILE AGENT_MAIN_CC}
main_cc=${2:?usage: bash_completion_test.sh COMPLETION_FILE AGENT_MAIN_CC}
# shellcheck source=packaging/edgesync.bash-completion
source "$completion" || exit 1
# shellcheck source=tests/packaging/cli_tree.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_tree.sh"
declare -F _edgesync >/dev/null || {
    echo "FAIL: $completion defines no _edgesync"
    exit 1
}

failures=0
cases=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# Completes the words given (the last one is the word under the cursor, maybe empty) and prints
# the offers sorted, space-separated.
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _edgesync
    if ((${#COMPREPLY[@]} > 0)); then
        printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'
    fi
}

# expect "OFFERS" WORD...: the completion of WORDS is exactly OFFERS (sorted, space-separated).
expect() {
    local want=$1
    shift
    cases=$((cases + 1))
    local got
    got=$(complete_words "$@")
    [[ $got == "$want" ]] || fail "'$*': got '$got', want '$want'"
}

# The command tree first: the path cases below run in a scratch directory.
tree=$(edgesync_cli_tree "$main_cc") || exit 1

# A directory with files and a sub-directory for the path cases.
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
mkdir "$work/keys.d"
touch "$work/edgesync.json" "$work/fleet.envelope"
cd "$work" || exit 1

# Where the cursor is.
expect "agent check-config config contracts dead-letters doctor enroll export keys log-level outbox reconcile send status" \
    edgesync ""
expect "dead-letters doctor" edgesync d
expect "--help --version" edgesync --
expect "hold release show tail" edgesync outbox ""
expect "--all --config --help --json --limit --since --type" edgesync outbox --
expect "--config --help --json" edgesync outbox show 1041 --
expect "generate" edgesync keys ""
expect "show sign verify" edgesync config ""
expect "purge retry" edgesync dead-letters ""
# No positional argument: the options, even without a dash typed.
expect "--config --help --json --timeout" edgesync doctor ""
# An option's value is not a command: "show" is the configuration file here.
expect "hold release show tail" edgesync outbox --config show ""
expect "" edgesync no-such-command ""

# Arguments that are not guessed: a seq or an id.
expect "" edgesync outbox show ""
expect "" edgesync dead-letters retry ""
expect "" edgesync doctor --timeout ""
expect "" edgesync dead-letters purge --older-than ""

# Fixed values.
expect "debug error info notice warning" edgesync log-level ""
expect "warning" edgesync log-level w
expect "device fleet store" edgesync config verify --scope ""
expect "fleet" edgesync config verify --keys keys.d --scope f

# Files and directories.
expect "edgesync.json fleet.envelope keys.d" edgesync status --config ""
expect "edgesync.json" edgesync status --config e
expect "edgesync.json fleet.envelope keys.d" edgesync status --config = ""
expect "edgesync.json fleet.envelope keys.d" edgesync status --config =
expect "edgesync.json fleet.envelope keys.d" edgesync send ""
# A URL is not guessed; after it, the file.
expect "" edgesync send --http ""
expect "edgesync.json fleet.envelope keys.d" edgesync send --http http://127.0.0.1:8788 ""
expect "edgesync.json fleet.envelope keys.d" edgesync export --out ""
expect "keys.d" edgesync enroll --out ""
expect "keys.d" edgesync keys generate --out ""
expect "keys.d" edgesync config verify --keys ""
expect "fleet.envelope" edgesync config verify --keys keys.d f
expect "fleet.envelope" edgesync reconcile --capture f
expect "fleet.envelope" edgesync reconcile --hub ssl://hub:8883 --save f
expect "edgesync.json" edgesync config sign --key e
# config sign's --version takes the layer version; after it, the layer file.
expect "" edgesync config sign --version ""
expect "edgesync.json" edgesync config sign --version 7 e

# Every sub-command and option agent/main.cc defines is offered where it belongs.
commands=0
while IFS='|' read -r kind path opt; do
    read -ra words <<<"$path"
    case $kind in
        command)
            commands=$((commands + 1))
            cases=$((cases + 1))
            offers=" $(complete_words edgesync "${words[@]:0:${#words[@]}-1}" "") "
            [[ $offers == *" ${words[-1]} "* ]] ||
                fail "'edgesync $path': ${words[-1]} not offered (got$offers)"
            cases=$((cases + 1))
            offers=" $(complete_words edgesync "${words[@]}" --) "
            [[ $offers == *" --help "* ]] || fail "'edgesync $path --': --help not offered"
            ;;
        option)
            cases=$((cases + 1))
            offers=" $(complete_words edgesync "${words[@]}" --) "
            [[ $offers == *" $opt "* ]] ||
                fail "'edgesync $path --': $opt not offered (got$offers)"
            ;;
    esac
done <<<"$tree"
((commands >= 15)) || fail "only $commands sub-commands read from $main_cc"

if ((failures > 0)); then
    echo "$failures of $cases cases failed"
    exit 1
fi
echo "ok: $cases cases"
