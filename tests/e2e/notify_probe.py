#!/usr/bin/env python3
"""notify_probe.py - stand in for systemd's side of sd_notify(3) in tests.

Binds a datagram socket, runs COMMAND with NOTIFY_SOCKET pointing at it
(and WATCHDOG_USEC when asked), and writes one line per notification to
--log: "<ms since start> <field>=<value>|<field>=<value>...". When READY=1
arrives it connects to --port at once and logs "PORT open" or "PORT closed",
so a test can tell that readiness came after the listener. Exits with the
command's exit status once the command has exited (signals sent to the
probe are passed on to it). Used by tests/e2e/test_service.sh.

    notify_probe.py --socket S --log L [--port P] [--watchdog-usec U]
                    [--silent-listen PORT] -- COMMAND...

--silent-listen PORT also accepts TCP connections on 127.0.0.1:PORT and
never answers: a seed supernode that hangs in the TLS handshake.
"""
import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--watchdog-usec", type=int, default=0)
    ap.add_argument("--silent-listen", type=int, default=0)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    sock.bind(args.socket)
    silent = None
    held = []
    if args.silent_listen:
        silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", args.silent_listen))
        silent.listen(8)

    env = dict(os.environ, NOTIFY_SOCKET=args.socket)
    if args.watchdog_usec:
        env["WATCHDOG_USEC"] = str(args.watchdog_usec)
    t0 = time.monotonic()
    child = subprocess.Popen(cmd, env=env)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: child.send_signal(s))

    log = open(args.log, "a", buffering=1)
    log.write("0 START pid=%d\n" % child.pid)

    def now_ms():
        return int((time.monotonic() - t0) * 1000)

    while True:
        watch = [sock] + ([silent] if silent else [])
        try:
            ready, _, _ = select.select(watch, [], [], 0.05)
        except InterruptedError:
            ready = []
        for r in ready:
            if r is silent:
                conn, _ = silent.accept()
                held.append(conn)  # never answered, closed at exit
                continue
            msg = sock.recv(4096).decode("utf-8", "replace")
            fields = msg.strip("\n").split("\n")
            log.write("%d %s\n" % (now_ms(), "|".join(fields)))
            if "READY=1" in fields and args.port:
                try:
                    with socket.create_connection(("127.0.0.1", args.port), timeout=1):
                        state = "open"
                except OSError:
                    state = "closed"
                log.write("%d PORT %s\n" % (now_ms(), state))
        rc = child.poll()
        if rc is not None:
            # Whatever the child sent last is still queued: read it.
            while select.select([sock], [], [], 0)[0]:
                msg = sock.recv(4096).decode("utf-8", "replace")
                log.write("%d %s\n" % (now_ms(), "|".join(msg.strip("\n").split("\n"))))
            log.write("%d EXIT rc=%d\n" % (now_ms(), rc))
            os.unlink(args.socket)
            return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main())
