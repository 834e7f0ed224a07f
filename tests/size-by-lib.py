#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""size-by-lib.py [--members] BINARY.debug ARCHIVE...: the bytes of a static binary's symbols (text,
rodata, data; .bss apart, it is not in the file), grouped by the archive, or with --members the
archive member, that defines each (by name and size). Run by tests/bench-wrapper.sh."""
import collections, subprocess, sys, os
args = sys.argv[1:]
members = args[0] == "--members"
if members: args = args[1:]
binary, archives = args[0], args[1:]
def syms(path):
    member = ""
    out = subprocess.run(["nm", "-S", "--defined-only", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.endswith(":") and " " not in line:
            member = line[:-1]; continue
        f = line.split()
        if len(f) == 4:
            yield member, f[3], int(f[1], 16), f[2]
owner = {}
for a in archives:
    lib = os.path.basename(a)
    for m, name, size, t in syms(a):
        o = lib + ":" + m.replace("libwolfssl_la-", "") if members and m else lib
        owner.setdefault((name, size), o)
        owner.setdefault(name, o)
tot = collections.Counter(); cnt = collections.Counter()
for _, name, size, t in syms(binary):
    if t in "tTrRdDbBvVwW":
        lib = owner.get((name, size)) or owner.get(name) or "(unattributed)"
        key = lib + (" .bss" if t in "bB" else "")
        tot[key] += size; cnt[key] += 1
for k, v in tot.most_common():
    if not k.endswith(".bss"):
        print("%-34s %8d bytes %5d KiB  %5d symbols" % (k, v, v // 1024, cnt[k]))
print("%-34s %8d bytes (not in the file)" % (".bss, all", sum(v for k, v in tot.items() if k.endswith(".bss"))))
