#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The peers beside ours, on the same inputs (issue 12), printed with their ratios. Run by
# `make bench` (after `tests/servers/build.sh peers`). Not a test: nothing passes or fails on a
# number; quote the output with the command that produced it.
#
#   - Bank-Vaults `secret-init` (what its webhook injects into every pod) against
#     `cloudtaser-wrapper`: CPU and wall per start (Kubernetes-auth login, KV v2 read, exec of the
#     workload), binary size, and the resident memory of what stays in the pod while the workload
#     runs (secret-init in its daemon mode, which stays to renew, as ours does);
#   - the OpenBao Agent (`bao agent`, what the Vault Agent Injector runs beside every pod) against
#     our supervisor's resident memory, each having delivered the same secret.
# The vault is nginx serving fixed Vault answers over TLS on loopback (tests/lib/nginx-vault.sh),
# so the time measured is the clients'. Runs alternate ours and the peer (A B A B), so a noisy
# machine moves both; the ratio is the median of the per-pair ratios.
# Environment: BENCH_RUNS (default 40).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/lib/nginx-vault.sh"
wrapper=$top/build/musl/bin/cloudtaser-wrapper
workload=$top/build/musl/bin/ct-workload
peers=$("$top/tests/servers/build.sh" --dir peers)/bin
bao=$("$top/tests/servers/build.sh" --dir openbao)/bin/bao
runs=${BENCH_RUNS:-40}
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    nginx_vault_stop "$dir"
    rm -rf "$dir"
}
trap cleanup EXIT

[ -x "$peers/secret-init" ] || { echo "bench-peers: secret-init not built (tests/servers/build.sh peers)" >&2; exit 2; }
nginx_vault_start "$dir"

# The same secret and login for both: role app, the JWT in a file, secret/data/app/db#password.
export VAULT_ADDR=$NGINX_VAULT_ADDR VAULT_CACERT=$NGINX_VAULT_CA
export VAULT_AUTH_ROLE=app CLOUDTASER_SA_TOKEN_PATH=$dir/jwt CLOUDTASER_LOG_LEVEL=error
export CLOUDTASER_SECRET_PATHS=secret/data/app/db CLOUDTASER_ENV_MAP=password=PGPASSWORD
echo header.payload.sig > "$dir/jwt"
# secret-init: the Bank-Vaults reference syntax, its role and auth path, the JWT file.
peer_env=(env -u VAULT_AUTH_ROLE VAULT_ROLE=app VAULT_PATH=kubernetes VAULT_AUTH_METHOD=jwt VAULT_JWT_FILE="$dir/jwt"
    HOME="$dir" SECRET_INIT_LOG_LEVEL=error "PGPASSWORD=vault:secret/data/app/db#password")

"$wrapper" -- "$workload" env-hash PGPASSWORD exit 0 | grep -q "len=20" ||
    { echo "bench-peers: cloudtaser-wrapper did not deliver the secret" >&2; exit 1; }
"${peer_env[@]}" "$peers/secret-init" "$workload" env-hash PGPASSWORD exit 0 | grep -q "len=20" ||
    { echo "bench-peers: secret-init did not deliver the secret:" >&2
      "${peer_env[@]}" SECRET_INIT_LOG_LEVEL=debug "$peers/secret-init" "$workload" exit 0 2>&1 | tail -5 >&2; exit 1; }

echo "== cloudtaser-wrapper beside Bank-Vaults secret-init ($runs alternating pairs)"
size_w=$(stat -c %s "$wrapper") size_p=$(stat -c %s "$peers/secret-init")
printf '%-44s ours %9d bytes   secret-init %9d bytes   ratio %.3f\n' "binary size (stripped, static)" \
    "$size_w" "$size_p" "$(awk -v a="$size_w" -v b="$size_p" 'BEGIN { print a / b }')"
python3 - "$runs" "$wrapper" "$workload" "$peers/secret-init" "$dir/jwt" <<'PY'
import os, statistics, subprocess, sys, time
runs, wrapper, workload, peer, jwt = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
peer_env = dict(os.environ)
peer_env.pop("VAULT_AUTH_ROLE", None)
peer_env.update(VAULT_ROLE="app", VAULT_PATH="kubernetes", VAULT_AUTH_METHOD="jwt", VAULT_JWT_FILE=jwt,
                HOME=os.path.dirname(jwt), SECRET_INIT_LOG_LEVEL="error",
                PGPASSWORD="vault:secret/data/app/db#password")
def run(cmd, env):
    t = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("bench-peers: %s failed" % cmd[0])
    return ru.ru_utime + ru.ru_stime, wall, ru.ru_maxrss
ours, theirs = [], []
for i in range(runs + 2):
    a = run([wrapper, "--", workload, "exit", "0"], os.environ)
    b = run([peer, workload, "exit", "0"], peer_env)
    if i >= 2:
        ours.append(a); theirs.append(b)
def row(label, k, unit, scale):
    x = statistics.median(r[k] for r in ours) * scale
    y = statistics.median(r[k] for r in theirs) * scale
    ratio = statistics.median(a[k] / b[k] for a, b in zip(ours, theirs) if b[k] > 0)
    print("%-44s ours %9.2f %-5s secret-init %9.2f %-5s ratio %.3f" % (label, x, unit, y, unit, ratio))
row("start-up CPU (user+sys), median", 0, "ms", 1000)
row("start-up wall, median", 1, "ms", 1000)
row("peak resident memory of the start, median", 2, "KiB", 1)
PY

rss_of() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

# What stays in the pod while the workload runs: our supervisor; secret-init's daemon mode (it
# forks the workload and stays, to renew); each after the workload has its secret.
"$wrapper" -- "$workload" sleep 30 > /dev/null &
wpid=$!
pids+=("$wpid")
SECRET_INIT_DAEMON=true "${peer_env[@]}" "$peers/secret-init" "$workload" sleep 30 > /dev/null 2> "$dir/secret-init.log" &
ppid_=$!
pids+=("$ppid_")

# The OpenBao Agent: Kubernetes auth with the same JWT and role, a template rendering the same
# field into a file (what the Vault Agent Injector's sidecar does), the token sunk to a file.
cat > "$dir/agent.hcl" << HCL
pid_file = "$dir/agent.pid"
vault {
  address = "$NGINX_VAULT_ADDR"
  ca_cert = "$NGINX_VAULT_CA"
}
auto_auth {
  method "kubernetes" {
    mount_path = "auth/kubernetes"
    config = {
      role = "app"
      token_path = "$dir/jwt"
    }
  }
  sink "file" {
    config = {
      path = "$dir/agent-token"
    }
  }
}
template {
  contents = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.password }}{{ end }}"
  destination = "$dir/agent-secret"
}
HCL
"$bao" agent -config="$dir/agent.hcl" > "$dir/agent.log" 2>&1 &
apid=$!
pids+=("$apid")
agent_ok=1
wait_file "$dir/agent-secret" || { agent_ok=0; echo "bench-peers: bao agent rendered nothing:" >&2; tail -5 "$dir/agent.log" >&2; }
sleep 2
ours_rss=$(rss_of "$wpid") peer_rss=$(rss_of "$ppid_")
echo "== what stays in the pod while the workload runs (VmRSS after delivery)"
printf '%-44s ours %9d KiB   secret-init %9d KiB   ratio %.3f\n' "supervisor vs secret-init daemon" \
    "$ours_rss" "$peer_rss" "$(awk -v a="$ours_rss" -v b="$peer_rss" 'BEGIN { print a / b }')"
if [ "$agent_ok" = 1 ]; then
    agent_rss=$(rss_of "$apid")
    printf '%-44s ours %9d KiB   bao agent   %9d KiB   ratio %.3f\n' "supervisor vs OpenBao Agent" \
        "$ours_rss" "$agent_rss" "$(awk -v a="$ours_rss" -v b="$agent_rss" 'BEGIN { print a / b }')"
fi
