# The edgesync command tree as agent/main.cc defines it, for the packaging tests to hold the man
# page and the bash completion to. Source it, then:
#   edgesync_cli_tree agent/main.cc
# prints one line per sub-command and per option, fields split by '|' (a tab would not do:
# `read` merges adjacent tabs, and the top level's path is empty):
#   command|outbox show
#   option|outbox show|--json
#   option||--version
# and fails when a sub-command's parent is not known (a definition this reader misses).

edgesync_cli_tree() {
    local main_cc=$1
    if [[ ! -r $main_cc ]]; then
        echo "cli_tree: cannot read $main_cc" >&2
        return 1
    fi
    # CLI11 calls span lines: one statement per line, spaces squeezed.
    local statements
    statements=$(tr '\n' ' ' <"$main_cc" | tr -s ' ' | tr ';' '\n') || return 1
    local -A path_of=([app]="")
    local subcommand_re='auto\* ?([a-z_]+) ?= ?([a-z_]+) ?(\.|->) ?add_subcommand\( ?"([a-z-]+)"'
    local option_re='([a-z_]+) ?(\.|->) ?(add_option|add_flag|set_version_flag)\( ?"(--[a-z-]+)"'
    local stmt rest var parent name path
    while IFS= read -r stmt; do
        if [[ $stmt =~ $subcommand_re ]]; then
            var=${BASH_REMATCH[1]} parent=${BASH_REMATCH[2]} name=${BASH_REMATCH[4]}
            if [[ -z ${path_of[$parent]+set} ]]; then
                echo "cli_tree: sub-command $name of unknown parent $parent" >&2
                return 1
            fi
            path=${path_of[$parent]}
            path_of[$var]=${path:+$path }$name
            printf 'command|%s\n' "${path_of[$var]}"
        fi
        rest=$stmt
        while [[ $rest =~ $option_re ]]; do
            var=${BASH_REMATCH[1]} name=${BASH_REMATCH[4]}
            if [[ -z ${path_of[$var]+set} ]]; then
                echo "cli_tree: option $name of unknown command variable $var" >&2
                return 1
            fi
            printf 'option|%s|%s\n' "${path_of[$var]}" "$name"
            rest=${rest#*"${BASH_REMATCH[0]}"}
        done
    done <<<"$statements"
}
