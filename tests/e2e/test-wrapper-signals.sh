#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: what the hostile review of cloudtaser-wrapper as PID 1 found (issue 11), musl and
# ASan builds, against the stand-in vault:
#   - started with stdin and stderr closed, the workload gets /dev/null there (not the wrapper's
#     signalfd or libcurl's socketpair), and the wrapper's own log does not go into a socket;
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/standin/standin.sh"
. "$top/tests/e2e/wrapper-lib.sh"

wl_setup
P=CLOUDTASER_SECRET_PATHS=secret/app/db
plant secret/app/db '{"password":"pw-'"$(rand_hex 8)"'"}' || { echo "Bail out! cannot plant"; exit 1; }

for f in $(wl_flavours); do
    wl_use "$f" || continue

    # --- descriptors 0-2 closed at start
    name=$f-stdio
    _wl_extra=()
    _wl_cmd $P
    timeout -k 5 30 env -i "${_wl_env[@]}" "$W" -- "$WL" stdio fds > "$work/$name.out" 2>&- <&-
    rc=$?
    [ $rc -eq 0 ] && grep -qx 'stdio 0=/dev/null 1=[^ ]* 2=/dev/null' "$work/$name.out" &&
        grep -qx 'fds 0 1 2' "$work/$name.out"
    ok $? "$f: started with stdin and stderr closed, the workload gets /dev/null on 0 and 2" || show $name
done
tap_done
