#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: an injected pod without Kubernetes. Does what the kubelet does, with runc:
#   1. a tmpfs mounted by the test plays the emptyDir (medium: Memory), mode 0777 as the kubelet
#      makes it;
#   2. the init container runs from the cloudtaser-wrapper image (built here by
#      images/build-images.sh, unpacked by umoci): uid 65532, read-only root filesystem, no
#      capability, the volume at /cloudtaser; cloudtaser-init installs the wrapper there;
#   3. the workload container runs from a distroless-style image (FROM scratch, one static
#      program: tests/tools/ct-workload) with the volume read-only at /cloudtaser, its entrypoint
#      rewritten to ["/cloudtaser/wrapper", "--", <original entrypoint>, <args>], the wrapper's
#      configuration in its environment (inline CA: the image has no CA bundle), a projected-style
#      service account token at /var/run/secrets/kubernetes.io/serviceaccount/token, and the
#      stand-in vault on 127.0.0.1 (the host's network namespace);
# and checks: the workload got its secret (hash of the planted canary); the wrapper is PID 1 and
# the workload its child; the exit code passes through; `runc kill TERM` reaches the workload
# through the wrapper (143); read-only root filesystem and volume; capabilities bounded to
# CAP_IPC_LOCK; a seccomp filter in place (Seccomp: 2, with the wrapper's own filter stacked); no
# secret in the container's root filesystem, the volume or the bundles afterwards.
# Prints the figures for the note as diagnostics: image sizes, init container start -> the
# workload's first line, the init's copy time.
# Needs root and runc (skipped with the reason otherwise). Runs in a private mount namespace, so
# its mounts disappear with it whatever happens; containers are deleted by the EXIT trap.
set -u
top=${CLOUDTASER_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top/tests/lib/tap.sh"

skip_all() {
    echo "1..0 # SKIP $*"
    exit 0
}
RUNC=${RUNC:-/usr/sbin/runc}
[ "$(id -u)" = 0 ] || skip_all "not root: runc needs root to create containers"
[ -x "$RUNC" ] || skip_all "runc is not installed ($RUNC)"
command -v umoci > /dev/null || skip_all "umoci is not installed"
command -v skopeo > /dev/null || skip_all "skopeo is not installed"
if [ -z "${CT_RUNC_POD_NS:-}" ]; then
    unshare --mount --propagation private true 2> /dev/null || skip_all "cannot create a mount namespace (unshare -m)"
    CT_RUNC_POD_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

. "$top/tests/standin/standin.sh"

WRAPPER=$top/build/musl/bin/cloudtaser-wrapper
for b in cloudtaser-init cloudtaser-wrapper ct-workload; do
    [ -x "$top/build/musl/bin/$b" ] || { echo "Bail out! build/musl/bin/$b is not built (make all tests)"; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ct-runc-pod.XXXXXX") || exit 1
chmod 755 "$work"
mkdir -p "$work/runc-state"
state=$work/runc-state
vol=$work/emptydir
sa=$work/serviceaccount
id=ct-pod-$$
containers=()

runc_() { "$RUNC" --root "$state" "$@"; }

cleanup() {
    local c
    for c in "${containers[@]}"; do
        runc_ kill "$c" KILL > /dev/null 2>&1
        runc_ delete --force "$c" > /dev/null 2>&1
    done
    mountpoint -q "$vol" && umount -l "$vol"
    standin_stop
    [ -z "${RUNC_POD_KEEP:-}" ] && rm -rf "$work"
    return 0
}
trap cleanup EXIT

now_ns() { date +%s%N; }
ms() { echo "$(( ($2 - $1) / 1000000 )).$(( ($2 - $1) / 1000 % 1000 / 100 ))"; }
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
rand_hex() { od -An -N"${1:-8}" -tx1 /dev/urandom | tr -d ' \n'; }
show() { # show FILE...: the files as diagnostics
    local f
    for f in "$@"; do
        echo "# --- ${f##*/}"
        head -30 "$f" 2> /dev/null | sed 's/^/#   /'
    done
}
wait_grep() { # FILE REGEX [SECONDS]
    local i
    for ((i = 0; i < ${3:-20} * 50; i++)); do
        grep -Eq -- "$2" "$1" 2> /dev/null && return 0
        sleep 0.02
    done
    return 1
}

# --- images: built here from the current binaries, then unpacked as a runtime would ----------------
# Nothing is printed before runc has shown it can run a container here (else: skipped, not failed).
export IMAGE_TAG=pod-test
if ! "$top/images/build-images.sh" --out "$work/images" --bin "$top/build/musl/bin" --test > "$work/images.log" 2>&1; then
    echo "Bail out! images/build-images.sh failed"; show "$work/images.log"; exit 1
fi
if ! { umoci unpack --image "$work/images/cloudtaser-wrapper:$IMAGE_TAG" "$work/init-bundle" &&
    umoci unpack --image "$work/images/ct-workload:$IMAGE_TAG" "$work/work-bundle"; } > "$work/unpack.log" 2>&1; then
    echo "Bail out! umoci unpack failed"; show "$work/unpack.log"; exit 1
fi
# Preflight: umoci's own runtime config (terminal off) running `cloudtaser-init --version`. If
# runc cannot run that, this machine cannot run containers: skip with runc's words.
mkdir -p "$work/preflight"
/usr/bin/python3 - "$work/init-bundle/config.json" "$work/preflight/config.json" "$work/init-bundle/rootfs" <<'PY' || exit 1
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/cloudtaser-init", "--version"]
c["root"] = {"path": sys.argv[3], "readonly": True}
json.dump(c, open(sys.argv[2], "w"))
PY
containers+=("$id-preflight")
if ! timeout -k 5 30 "$RUNC" --root "$state" run --bundle "$work/preflight" "$id-preflight" < /dev/null \
    > "$work/preflight.out" 2> "$work/preflight.err" || ! grep -q '^cloudtaser-init .* wrapper-sha256=' "$work/preflight.out"; then
    skip_all "runc cannot run a container here: $(head -c 300 "$work/preflight.err" | tr '\n' ' ')"
fi
rm -f "$work/init-bundle/config.json" "$work/work-bundle/config.json"

ok 0 "the cloudtaser-wrapper and ct-workload images build; umoci unpacks them; runc runs a container"
while read -r line; do diag "figure: $line"; done < <("$top/tests/bench-images.sh" "$work/images")
if [ -s "$top/build/images/cloudtaser-wrapper.digest" ]; then
    diag "(build/images/cloudtaser-wrapper from make images: $(cat "$top/build/images/cloudtaser-wrapper.digest"))"
fi
# The images' layers, as shipped (the unpacked rootfs gains runc's mount points).
layer_files() { # LAYOUT-DIR -> "name type mode uid:gid;" per entry
    /usr/bin/python3 - "$1" <<'PY'
import json, os, sys, tarfile
d = sys.argv[1]
path = lambda dg: os.path.join(d, "blobs", "sha256", dg.split(":", 1)[1])
man = json.load(open(path(json.load(open(os.path.join(d, "index.json")))["manifests"][0]["digest"])))
for l in man["layers"]:
    with tarfile.open(path(l["digest"])) as t:
        for m in t.getmembers():
            kind = "f" if m.isreg() else "d" if m.isdir() else "other"
            print(f"{m.name} {kind} {m.mode:o} {m.uid}:{m.gid}", end=";")
PY
}
got=$(layer_files "$work/images/cloudtaser-wrapper")
[ "$got" = "cloudtaser-init f 555 0:0;cloudtaser-wrapper f 555 0:0;" ]
ok $? "the wrapper image holds /cloudtaser-init and /cloudtaser-wrapper only (0555, root-owned; no shell)" || diag "got: $got"
got=$(layer_files "$work/images/ct-workload")
[ "$got" = "ct-workload f 555 0:0;" ]
ok $? "the workload image holds one static program and nothing else" || diag "got: $got"

# The image configs (what a runtime reads): entrypoint, user.
image_config() { # LAYOUT-DIR KEY -> JSON of config[KEY]
    /usr/bin/python3 - "$1" "$2" <<'PY'
import json, os, sys
d, key = sys.argv[1:3]
blob = lambda dg: json.load(open(os.path.join(d, "blobs", "sha256", dg.split(":", 1)[1])))
man = blob(json.load(open(os.path.join(d, "index.json")))["manifests"][0]["digest"])
print(json.dumps(blob(man["config"]["digest"])["config"].get(key)))
PY
}
init_entry=$(image_config "$work/images/cloudtaser-wrapper" Entrypoint)
work_entry=$(image_config "$work/images/ct-workload" Entrypoint)
[ "$init_entry" = '["/cloudtaser-init"]' ] && [ "$(image_config "$work/images/cloudtaser-wrapper" User)" = '"65532:65532"' ]
ok $? "the wrapper image's entrypoint is [\"/cloudtaser-init\"], user 65532:65532" || diag "$init_entry"

# --- the pod's volumes and the vault ---------------------------------------------------------------
mkdir -p "$vol" "$sa"
if ! mount -t tmpfs -o size=32m,mode=0777,nosuid,nodev ct-emptydir "$vol"; then
    echo "Bail out! cannot mount the tmpfs for the emptyDir"; exit 1
fi
standin_start "$top/tests/standin/demo.json" || { echo "Bail out! stand-in vault did not start"; exit 1; }
canary="CANARY-$(rand_hex 12)"
user="user-$(rand_hex 4)"
standin_control POST /_standin/secret "{\"path\":\"secret/app/db\",\"data\":{\"username\":\"$user\",\"password\":\"$canary\"}}" > /dev/null ||
    { echo "Bail out! cannot plant the secret"; exit 1; }
# The projected service account token, as the kubelet mounts it: a read-only directory.
standin_jwt demo app vault > "$sa/token" || { echo "Bail out! no JWT"; exit 1; }
chmod 755 "$sa" && chmod 644 "$sa/token"
jwt=$(cat "$sa/token")

# --- config.json, written as the kubelet + container runtime would for these containers -----------
# mkconfig BUNDLE ROLE(init|workload) ARGS-JSON [ENV...]
mkconfig() {
    /usr/bin/python3 - "$@" <<'PY'
import json, os, sys
bundle, role, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
env = sys.argv[4:]
vol, sa = os.environ["POD_VOL"], os.environ["POD_SA"]
caps = [] if role == "init" else ["CAP_IPC_LOCK"]
mounts = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    # The emptyDir: read-write for the init container, read-only for the workload.
    {"destination": "/cloudtaser", "type": "bind", "source": vol,
     "options": ["rbind", "nosuid", "nodev", "rw" if role == "init" else "ro"]},
]
if role == "workload":
    mounts.append({"destination": "/var/run/secrets/kubernetes.io/serviceaccount", "type": "bind", "source": sa,
                   "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]})
# A small seccomp profile in the spirit of the runtime default: allow, but deny (EPERM) the
# syscalls a workload never needs and an attacker wants.
denied = ["ptrace", "process_vm_readv", "process_vm_writev", "kexec_load", "kexec_file_load",
          "open_by_handle_at", "bpf", "perf_event_open", "userfaultfd", "init_module", "finit_module",
          "delete_module", "mount", "umount2", "pivot_root", "swapon", "swapoff", "reboot", "acct",
          "add_key", "request_key", "keyctl", "setns", "unshare"]
config = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False,
        "user": {"uid": 65532, "gid": 65532, "additionalGids": [65532]},
        "args": args,
        "env": env,
        "cwd": "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted", "inheritable", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "pod",
    "mounts": mounts,
    "linux": {
        # No network namespace: the pod shares the host's, so the vault on 127.0.0.1 is reachable.
        "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
        "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
        "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        "seccomp": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        },
    },
}
with open(os.path.join(bundle, "config.json"), "w") as f:
    json.dump(config, f, indent=1)
PY
}
export POD_VOL=$vol POD_SA=$sa

# --- the init container -------------------------------------------------------------------------
mkconfig "$work/init-bundle" init "$init_entry" || { echo "Bail out! mkconfig"; exit 1; }
# run_ctr NAME BUNDLE: runc run in the foreground (as the kubelet waits for an init container);
# stdout/stderr in $work/NAME.out/.err, status in $rc.
run_ctr() {
    containers+=("$id-$1")
    timeout -k 5 60 "$RUNC" --root "$state" run --bundle "$2" "$id-$1" < /dev/null > "$work/$1.out" 2> "$work/$1.err"
    rc=$?
}
t_init=$(now_ns)
run_ctr init "$work/init-bundle"
t_init_done=$(now_ns)
want=$(sha256sum < "$WRAPPER" | cut -c1-64)
[ $rc -eq 0 ] && [ "$(sha256sum < "$vol/wrapper" | cut -c1-64)" = "$want" ] &&
    [ "$(stat -c '%a %u:%g' "$vol/wrapper")" = "555 65532:65532" ]
ok $? "init container (uid 65532, no capability, read-only root) installs the wrapper: mode 0555, owned by 65532, the wrapper's SHA-256" ||
    show "$work/init.out" "$work/init.err"
grep -q "cloudtaser-init\[1\]: installed /cloudtaser/wrapper from /cloudtaser-wrapper: .* verified" "$work/init.err"
ok $? "cloudtaser-init ran as PID 1 of its container with the default paths and verified the digest" || show "$work/init.err"
copy_ms=$(sed -n 's/.* copy \([0-9.]*\) ms, total \([0-9.]*\) ms.*/\1/p' "$work/init.err")
init_total_ms=$(sed -n 's/.* copy \([0-9.]*\) ms, total \([0-9.]*\) ms.*/\2/p' "$work/init.err")
[ -z "$(ls -A "$vol" | grep -vx wrapper)" ]
ok $? "the volume holds the wrapper and nothing else" || diag "$(ls -A "$vol")"

# --- the workload container ---------------------------------------------------------------------
# The webhook's rewrite: ["/cloudtaser/wrapper", "--"] + the image's entrypoint + the pod's args.
# pod_args ARG... -> the rewritten args as JSON
pod_args() {
    /usr/bin/python3 -c 'import json,sys; print(json.dumps(["/cloudtaser/wrapper", "--"] + json.loads(sys.argv[1]) + sys.argv[2:]))' \
        "$work_entry" "$@"
}
POD_ENV=(VAULT_ADDR="$STANDIN_ADDR" VAULT_AUTH_ROLE=demo "CLOUDTASER_VAULT_CA_PEM=$(cat "$STANDIN_CA")"
    CLOUDTASER_SECRET_PATHS=secret/app/db "CLOUDTASER_ENV_MAP=password=PGPASSWORD,username=PGUSER"
    CLOUDTASER_STARTUP_TIMEOUT=20s HOSTNAME=pod)

# A: the secret, PID 1, capabilities, seccomp, read-only mounts seen from the host while it runs;
#    then the exit code (7) passes through.
mkconfig "$work/work-bundle" workload "$(pod_args say started wait-file /cloudtaser/.go env-hash PGPASSWORD env-hash PGUSER \
    print-pid proc-status exit 7)" "${POD_ENV[@]}" || { echo "Bail out! mkconfig"; exit 1; }
containers+=("$id-a")
timeout -k 5 60 "$RUNC" --root "$state" run --bundle "$work/work-bundle" "$id-a" < /dev/null > "$work/a.out" 2> "$work/a.err" &
runc_pid=$!
if wait_grep "$work/a.out" '^started$' 30; then
    t_first=$(stat -c %.9Y "$work/a.out" | tr -d .)
    cpid=$(runc_ state "$id-a" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
    wpid=$(cat "/proc/$cpid/task/$cpid/children" 2> /dev/null | awk '{print $1}')
    host_exe=$(readlink "/proc/$cpid/exe")
    host_args=$(tr '\0' ' ' < "/proc/$cpid/cmdline")
    st_wrapper=$(grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp|Seccomp_filters):' "/proc/$cpid/status" | sed 's/:[[:space:]]*/=/' | tr '\n' ' ')
    st_work=$(grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp|Seccomp_filters):' "/proc/$wpid/status" | sed 's/:[[:space:]]*/=/' | tr '\n' ' ')
    root_opts=$(awk '$5 == "/" {print $6}' "/proc/$cpid/mountinfo" | tail -1)
    vol_opts=$(awk '$5 == "/cloudtaser" {print $6}' "/proc/$cpid/mountinfo" | tail -1)
    if grep -qaF -- "$canary" "/proc/$wpid/environ"; then work_env_canary=yes; else work_env_canary=no; fi
    if grep -qaF -- "$canary" "/proc/$cpid/environ" "/proc/$cpid/cmdline"; then wrapper_env_canary=yes; else wrapper_env_canary=no; fi
else
    diag "the workload did not start"
    show "$work/a.out" "$work/a.err"
fi
touch "$vol/.go"
wait $runc_pid
rc=$?
rm -f "$vol/.go"
out=$work/a.out

grep -qx "env PGPASSWORD sha256=$(sha "$canary") len=${#canary}" "$out" &&
    grep -qx "env PGUSER sha256=$(sha "$user") len=${#user}" "$out"
ok $? "the workload received its secrets from the vault (hashes of the planted values)" || show "$out" "$work/a.err"
[ $rc -eq 7 ]
ok $? "the workload's exit code (7) is the container's exit code" || diag "rc=$rc"
grep -Eqx 'pid [0-9]+ ppid 1' "$out" && [ "$host_exe" = /cloudtaser/wrapper ] &&
    [ "$host_args" = "$(pod_args say started wait-file /cloudtaser/.go env-hash PGPASSWORD env-hash PGUSER print-pid proc-status exit 7 |
        /usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)), end=" ")')" ]
ok $? "the wrapper (/cloudtaser/wrapper, the rewritten command) is PID 1, the workload its child" ||
    diag "$(grep '^pid' "$out")" "exe: ${host_exe:-?}" "cmdline: ${host_args:-?}"
# CAP_IPC_LOCK is bit 14: 0x4000. Nothing else in any set; the bounding set is exactly it.
caps_ok() { # "CapEff=... CapBnd=..." -> every Cap* value is 0 or 0x4000, CapBnd is 0x4000
    local kv bad=0
    for kv in $1; do
        case $kv in
        CapBnd=*) [ "${kv#*=}" = 0000000000004000 ] || bad=1 ;;
        Cap*=*) [ "${kv#*=}" = 0000000000004000 ] || [ "${kv#*=}" = 0000000000000000 ] || bad=1 ;;
        esac
    done
    [[ $1 == *CapBnd=* ]] && return $bad
}
caps_ok "${st_wrapper:-}" && caps_ok "${st_work:-}"
ok $? "capabilities: bounding set CAP_IPC_LOCK only, nothing else effective or permitted (wrapper and workload)" ||
    diag "wrapper: ${st_wrapper:-?}" "workload: ${st_work:-?}"
grep '^status' "$out" | grep -q " NoNewPrivs=1 Seccomp=2 " && [[ ${st_work:-} == *"Seccomp=2 "* ]] && [[ ${st_wrapper:-} == *"Seccomp=2 "* ]]
ok $? "seccomp: the container's filter is on (Seccomp: 2) for the wrapper and the workload, with no_new_privs" ||
    diag "$(grep '^status' "$out")" "wrapper: ${st_wrapper:-?}" "workload: ${st_work:-?}"
wf=$(sed -n 's/.*Seccomp_filters=\([0-9]*\).*/\1/p' <<< "${st_wrapper:-}")
kf=$(sed -n 's/.*Seccomp_filters=\([0-9]*\).*/\1/p' <<< "${st_work:-}")
[ "${kf:-0}" -ge 1 ] && [ "${wf:-0}" -gt "${kf:-0}" ]
ok $? "seccomp: the workload runs under the runtime's filter; the wrapper has its own on top (filters: workload ${kf:-?}, wrapper ${wf:-?})"
[[ ${root_opts:-} == ro,* || ${root_opts:-} == ro ]] && [[ ${vol_opts:-} == ro,* || ${vol_opts:-} == ro ]]
ok $? "the container's root filesystem and /cloudtaser are mounted read-only (mountinfo: / ${root_opts:-?}, /cloudtaser ${vol_opts:-?})"
prot=$(grep 'protection:' "$work/a.err")
pcaps=$(sed -n 's/.*capabilities=\([^ ]*\).*/\1/p' <<< "$prot")
[ -n "$prot" ] && { [ "$pcaps" = none ] || [ "$(tr ',' '\n' <<< "$pcaps" | grep -vic 'ipc_lock')" -eq 0 ]; }
ok $? "the wrapper's protection line names no capability but IPC_LOCK" || diag "$prot"
diag "wrapper: $(sed 's/^.*protection: //' <<< "$prot")"
[ "${work_env_canary:-}" = yes ] && [ "${wrapper_env_canary:-}" = no ]
ok $? "the canary is in the workload's environment (control) and not in the wrapper's environ or cmdline" ||
    diag "workload: ${work_env_canary:-?} wrapper: ${wrapper_env_canary:-?}"

# B, C: the root filesystem and the volume cannot be written from inside.
mkconfig "$work/work-bundle" workload "$(pod_args touch /probe)" "${POD_ENV[@]}"
run_ctr b "$work/work-bundle"
[ $rc -eq 2 ] && grep -qx "touch failed: Read-only file system" "$work/b.out" && [ ! -e "$work/work-bundle/rootfs/probe" ]
ok $? "writing to the root filesystem fails: Read-only file system" || show "$work/b.out" "$work/b.err"
mkconfig "$work/work-bundle" workload "$(pod_args touch /cloudtaser/probe)" "${POD_ENV[@]}"
run_ctr c "$work/work-bundle"
[ $rc -eq 2 ] && grep -qx "touch failed: Read-only file system" "$work/c.out" && [ ! -e "$vol/probe" ]
ok $? "writing to the volume from the workload fails: Read-only file system" || show "$work/c.out" "$work/c.err"

# D: runc kill TERM goes to PID 1 (the wrapper), which forwards it to the workload.
mkconfig "$work/work-bundle" workload "$(pod_args signals 30)" "${POD_ENV[@]}"
containers+=("$id-d")
timeout -k 5 60 "$RUNC" --root "$state" run --bundle "$work/work-bundle" "$id-d" < /dev/null > "$work/d.out" 2> "$work/d.err" &
runc_pid=$!
if wait_grep "$work/d.out" '^ready$' 30; then
    runc_ kill "$id-d" TERM
    kill_rc=$?
else
    kill_rc=-1
    diag "the workload did not get ready"
fi
wait $runc_pid
rc=$?
[ $kill_rc -eq 0 ] && grep -qx "signal TERM" "$work/d.out" && [ $rc -eq 143 ]
ok $? "runc kill TERM reaches the workload through the wrapper; the container exits 143" ||
    { diag "runc kill: $kill_rc, exit $rc"; show "$work/d.out" "$work/d.err"; }

# E: a restarted pod runs its init container again: nothing is rewritten.
before=$(stat -c '%i %.9Y' "$vol/wrapper")
run_ctr init2 "$work/init-bundle"
[ $rc -eq 0 ] && grep -q "already installed" "$work/init2.err" && [ "$(stat -c '%i %.9Y' "$vol/wrapper")" = "$before" ]
ok $? "the init container run again finds the wrapper installed and rewrites nothing" || show "$work/init2.err"

# --- nothing left behind ------------------------------------------------------------------------
found=$(grep -rlaF -- "$canary" "$work/init-bundle" "$work/work-bundle" "$vol" 2> /dev/null)
[ -z "$found" ]
ok $? "the canary is nowhere in the bundles (root filesystems included) or the volume" || diag "found in: $found"
found=$(grep -rlaF -e "$jwt" -e "$user" "$work/init-bundle" "$work/work-bundle" "$vol" 2> /dev/null)
[ -z "$found" ]
ok $? "neither the service account token nor the other secret value is there either" || diag "found in: $found"
got=$(cd "$work/work-bundle/rootfs" && find . -type f -printf '%P\n' | sort | tr '\n' ' ')
[ "$got" = "ct-workload " ] && [ "$(ls -A "$vol")" = wrapper ]
ok $? "no file was created in the workload's root filesystem or the volume" || diag "rootfs files: $got" "volume: $(ls -A "$vol")"
! grep -qaF -- "$canary" "$work"/*.out "$work"/*.err
ok $? "the canary is in no output of any container"

if [ -n "${t_first:-}" ]; then
    diag "figure: init container start -> the workload's first line: $(ms "$t_init" "$t_first") ms" \
        "figure: init container run (runc run, create to exit): $(ms "$t_init" "$t_init_done") ms; cloudtaser-init itself: ${init_total_ms:-?} ms, of which the copy (create, write, fsync, rename, fsync dir): ${copy_ms:-?} ms" \
        "figure: workload container start -> first line (runc, wrapper login and read, exec): $(ms "$t_init_done" "$t_first") ms"
fi
tap_done
