#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# cloudtaser's help, shell completions and man page, all generated from the command table
# (cli/commands.c): `help` lists every command; `help CMD` and `CMD --help` print the same usage
# for each; the bash completion script is valid bash and completes commands, subcommands, every
# flag --help lists, and file names after a flag that takes a FILE; the zsh script names every
# command and flag (and is valid zsh where zsh is installed); the man page renders without a
# groff warning and documents every command and flag and the exit statuses of docs/cli.md; wrong
# words exit 64 (EX_USAGE).
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
ct=$top/build/asan/bin/cloudtaser
work=$(mktemp -d "${TMPDIR:-/tmp}/ct-cli-help.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$ct" help > "$work/help"
ok $? "cloudtaser help exits 0"
mapfile -t cmds < <(sed -n 's/^  \([a-z][a-z-]*\( [a-z][a-z-]*\)\?\)  .*/\1/p' "$work/help" | grep -v '^help')
[ "${#cmds[@]}" -ge 4 ] && printf '%s\n' "${cmds[@]}" | grep -qx 'target discover'
ok $? "it lists the commands (${#cmds[@]}: ${cmds[*]})"

"$ct" completion bash > "$work/bash" && bash -n "$work/bash"
ok $? "the bash completion script is valid bash"
"$ct" completion zsh > "$work/zsh" && head -1 "$work/zsh" | grep -qx '#compdef cloudtaser'
ok $? "the zsh completion script is a #compdef file"
if command -v zsh > /dev/null; then
    zsh -n "$work/zsh"
    ok $? "and valid zsh"
else
    skip "zsh is not installed"
fi
"$ct" man > "$work/man.1" && groff -man -Tutf8 -ww -z "$work/man.1" 2> "$work/groff.err" &&
    [ ! -s "$work/groff.err" ]
ok $? "the man page renders without a groff warning" || sed 's/^/# /' "$work/groff.err"
MANWIDTH=200 man -l "$work/man.1" > "$work/man.txt" 2> /dev/null ||
    groff -man -Tutf8 -rLL=200n "$work/man.1" > "$work/man.txt"

# The man page's EXIT STATUS is the exit-code table of docs/cli.md (both from common/exit-status):
# the same codes, each with its name.
docs=$(sed -n '/^## Exit codes/,/^## /s/^| \([0-9]*\) | `\([A-Z_]*\)` .*/\1 \2/p' "$top/docs/cli.md")
man=$(sed -n '/^\.SH EXIT STATUS/,/^\.SH /{/^\.B [0-9]/{s/^\.B //;N;s/\n(\([A-Z_]*\)).*/ \1/;p}}' "$work/man.1")
[ -n "$docs" ] && [ "$docs" = "$man" ]
ok $? "the man page's exit statuses are docs/cli.md's ($(echo "$man" | wc -l))" ||
    diff <(echo "$docs") <(echo "$man") | sed 's/^/# /'

# Completes the words of $1 (the last may be partial) with the bash script.
complete_bash() {
    bash -c '. "$1"; read -ra COMP_WORDS <<< "$2"; [ "${2: -1}" = " " ] && COMP_WORDS+=("");
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _cloudtaser; printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$work/bash" "$1"
}
complete_bash "cloudtaser tar" | grep -qx target
ok $? "bash: 'cloudtaser tar' completes to target"
complete_bash "cloudtaser target " | grep -qx discover
ok $? "bash: 'cloudtaser target ' offers discover"
touch "$work/plan-file.yaml"
complete_bash "cloudtaser target discover -o $work/plan-f" | grep -qx "$work/plan-file.yaml"
ok $? "bash: a file name after -o"
complete_bash "cloudtaser completion " | grep -qx zsh
ok $? "bash: 'cloudtaser completion ' offers bash and zsh"

for c in "${cmds[@]}"; do
    # shellcheck disable=SC2086
    "$ct" help $c > "$work/h1" 2>&1 && "$ct" $c --help > "$work/h2" 2>&1 &&
        cmp -s "$work/h1" "$work/h2" && grep -q "^usage: cloudtaser $c " "$work/h1"
    ok $? "'help $c' and '$c --help' print the same usage" || sed 's/^/# /' "$work/h1" "$work/h2"
    grep -qF "cloudtaser $c" "$work/man.txt"
    ok $? "the man page has a section for '$c'"
    flags=$(grep -oE '^  (-[A-Za-z], )?--[a-z][a-z-]*' "$work/h1" | grep -oE -- '--[a-z-]+' || true)
    missing=
    for f in $flags; do
        # shellcheck disable=SC2086
        complete_bash "cloudtaser $c ${f:0:4}" | grep -qx -- "$f" || missing+=" bash:$f"
        grep -qw -- "$f" "$work/zsh" || missing+=" zsh:$f"
        grep -qF -- "$f" "$work/man.txt" || missing+=" man:$f"
    done
    [ -z "$missing" ]
    ok $? "every flag of '$c' ($(echo $flags | wc -w)) completes in bash and zsh and is in the man page${missing:+ (missing:$missing)}"
done

"$ct" nosuch > /dev/null 2>&1
ok $(($? != 64)) "an unknown command exits 64"
"$ct" help nosuch > /dev/null 2>&1
ok $(($? != 64)) "help of an unknown command exits 64"
"$ct" completion fish > /dev/null 2>&1
ok $(($? != 64)) "completion of another shell exits 64"
"$ct" target discover --no-such-flag > /dev/null 2>&1
ok $(($? != 64)) "an unknown flag exits 64"
tap_done
