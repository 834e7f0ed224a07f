#!/usr/bin/env bash
# Proves every released binary (build/musl/bin/*) is static and hardened, as TAP:
# no program interpreter and no DT_NEEDED (static), ELF type DYN (static-pie), GNU_RELRO with
# BIND_NOW (full RELRO), a non-executable stack, stack-protector code present, and stripped.
# _FORTIFY_SOURCE=2 is passed to the compiler, but musl ships no fortified (__*_chk) functions,
# so there is nothing to check in the binary for it; see docs/development.md.
top=$(cd "$(dirname "$0")/.." && pwd)
n=0
t() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
shopt -s nullglob
bins=()
for b in "$top"/build/musl/bin/*; do
    [[ $b == *.debug ]] || bins+=("$b")
done
t "there are released binaries to check (${#bins[@]})" '[ ${#bins[@]} -gt 0 ]'
for b in "${bins[@]}"; do
    name=${b##*/}
    ph=$(readelf -lW "$b"); dyn=$(readelf -dW "$b"); hdr=$(readelf -hW "$b")
    t "$name: no program interpreter (static)" '! grep -q INTERP <<<"$ph"'
    t "$name: no shared-library dependencies" '! grep -q "(NEEDED)" <<<"$dyn"'
    t "$name: position independent (static-pie)" 'grep -q "Type:.*DYN" <<<"$hdr"'
    t "$name: full RELRO (GNU_RELRO + BIND_NOW)" 'grep -q GNU_RELRO <<<"$ph" && grep -Eq "BIND_NOW|FLAGS_1.*NOW" <<<"$dyn"'
    t "$name: non-executable stack" 'grep GNU_STACK <<<"$ph" | grep -qv RWE'
    t "$name: stack protector compiled in" 'nm "$b.debug" 2>/dev/null | grep -q __stack_chk_fail'
    t "$name: stripped" '! readelf -SW "$b" | grep -q "\.symtab"'
    t "$name: runs with an empty environment" '"$b" --version </dev/null >/dev/null 2>&1'
done
echo "1..$n"
