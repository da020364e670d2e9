#!/usr/bin/env bash
# The man page documents the whole command tree: every sub-command agent/main.cc defines is in
# SYNOPSIS, and every command with options has its own COMMANDS subsection with an entry for
# each option.
# A command added to main.cc without its manual fails here.
# Usage: man_page_test.sh AGENT_MAIN_CC MAN_PAGE
set -u
main_cc=${1:?usage: man_page_test.sh AGENT_MAIN_CC MAN_PAGE}
man_page=${2:?usage: man_page_test.sh AGENT_MAIN_CC MAN_PAGE}
# shellcheck source=tests/packaging/cli_tree.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_tree.sh"

tree=$(edgesync_cli_tree "$main_cc") || exit 1
# roff writes a typed '-' as '\-'.
page=$(sed 's/\\-/-/g' "$man_page") || exit 1

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# The subsection of one command: from its .SS line to the next .SS or .SH.
section() {
    awk -v title=".SS \"edgesync $1\"" '
        $0 == title { inside = 1; next }
        inside && /^\.S[SH] / { exit }
        inside { print }' <<<"$page"
}

commands=0
while IFS='|' read -r kind path opt; do
    case $kind in
        command)
            commands=$((commands + 1))
            # SYNOPSIS lines read ".B edgesync PATH ..." (the options follow).
            grep -qE "^\.B edgesync ${path}( |$)" <<<"$page" ||
                fail "edgesync $path is not in SYNOPSIS"
            ;;
        option)
            if [[ -z $path ]]; then
                grep -qF -- "$opt" <<<"$page" || fail "$opt (top level) is not in the page"
                continue
            fi
            body=$(section "$path")
            if [[ -z $body ]]; then
                fail "edgesync $path has options but no subsection .SS \"edgesync $path\""
            elif ! grep -qE -- "^\.BI? ${opt}( |$)" <<<"$body"; then
                # An entry of its own (".B --json", ".BI --out \" FILE\""), not a mention.
                fail "edgesync $path: $opt has no entry in its subsection"
            fi
            ;;
    esac
done <<<"$tree"

# A reader that finds nothing must not pass: main.cc defines some twenty commands.
if ((commands < 15)); then
    fail "only $commands sub-commands read from $main_cc"
fi

if ((failures > 0)); then
    echo "$failures failures"
    exit 1
fi
echo "ok: $commands sub-commands and their options documented in $(basename "$man_page")"
