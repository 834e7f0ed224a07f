#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deps/setup.sh: when packages are missing and we are not root, it names them and stops (exit 1)
# without touching apt; when nothing is missing it is a no-op. dpkg-query is replaced by a stub
# that reports one package missing, so the test does not depend on the machine's state.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
cat > "$stub/dpkg-query" <<'STUB'
#!/bin/sh
# Report every package installed except python3-hvac.
for last; do :; done
[ "$last" = python3-hvac ] && exit 1
echo "install ok installed"
STUB
chmod +x "$stub/dpkg-query"
chmod 755 "$stub"

if command -v setpriv >/dev/null && [ "$(id -u)" -eq 0 ]; then
    out=$(PATH="$stub:$PATH" setpriv --reuid=65534 --regid=65534 --clear-groups bash "$top/deps/setup.sh" 2>&1)
    rc=$?
    [ $rc -eq 1 ]
    ok $? "not root with a package missing: exit 1 (got $rc)"
    grep -q "missing: python3-hvac" <<< "$out"
    ok $? "the message names the missing package"
    grep -q "run 'make setup' as root" <<< "$out"
    ok $? "and says what to do"
else
    skip "needs root and setpriv to run setup.sh as another user"
fi
out=$(bash "$top/deps/setup.sh" 2>&1)
ok $? "with everything installed, setup.sh succeeds${out:+: $out}"
tap_done
