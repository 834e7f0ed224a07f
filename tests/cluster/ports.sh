# SPDX-License-Identifier: Apache-2.0
# ports.sh: ct_free_ports N prints N free TCP ports on 127.0.0.1 (sourced by cluster.sh,
# openbao.sh and pod-lib.sh).
ct_free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s:
    x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))
PY
}
