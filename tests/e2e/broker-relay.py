#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""broker-relay.py: the test's stand-in for Service cloudtaser-broker in front of several broker
replicas: a plain TCP relay (TLS passes through untouched, end to end between the wrapper and
the replica) that sends each new connection to the first backend that accepts it, as a Service
does once a dead replica's endpoint is gone.

  broker-relay.py LISTEN_ADDR LISTEN_PORT PORTFILE BACKEND_PORT... [--kill-before CONN PID]

The backends are on 127.0.0.1. The port it listens on (0: any) is written to PORTFILE, and
every connection is logged on stderr as "conn N -> PORT". --kill-before CONN PID: before
connection number CONN (1-based) is relayed, PID is sent SIGTERM and the relay waits until it is
gone (a replica killed between two connections of the wrapper, e.g. its session and its read).
"""
import os
import signal
import socket
import sys
import threading
import time


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie counts as gone: its sockets are closed
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].startswith("Z")
    except OSError:
        return True


def main():
    args = sys.argv[1:]
    kill_conn, kill_pid = 0, 0
    if "--kill-before" in args:
        i = args.index("--kill-before")
        kill_conn, kill_pid = int(args[i + 1]), int(args[i + 2])
        del args[i:i + 3]
    addr, port, portfile = args[0], int(args[1]), args[2]
    backends = [int(p) for p in args[3:]]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write(f"{ls.getsockname()[1]}\n")
    os.rename(portfile + ".tmp", portfile)
    n = 0
    while True:
        c, _ = ls.accept()
        n += 1
        if n == kill_conn and kill_pid:
            print(f"conn {n}: killing {kill_pid} first", file=sys.stderr, flush=True)
            try:
                os.kill(kill_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            for _ in range(200):
                if gone(kill_pid):
                    break
                time.sleep(0.05)
        upstream = None
        for b in backends:
            try:
                upstream = socket.create_connection(("127.0.0.1", b), timeout=5)
                upstream.settimeout(None)
                break
            except OSError:
                continue
        if upstream is None:
            print(f"conn {n} -> none", file=sys.stderr, flush=True)
            c.close()
            continue
        print(f"conn {n} -> {b}", file=sys.stderr, flush=True)
        threading.Thread(target=pump, args=(c, upstream), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, c), daemon=True).start()


if __name__ == "__main__":
    main()
