#!/usr/bin/env python3
"""trust.py - attackers for tests/attack/test_trust.sh (issue 13, findings
6, 7, 10): a peer that publishes names a terminal would obey, a peer and a
"supernode" with ECDSA keys, a peer that registers a third party's address
and points CONNECTs at others. Built on tests/e2e/hostile.py (the wire
encodings and a TLS connection); prints one event a line for the script.
"""
import argparse
import base64
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import hostile as hx  # noqa: E402

UNSAFE_NAME = 111


def out(*w):
    print(*w, flush=True)


def publish_ack(conn):
    f = conn.expect(hx.PUBLISH_ACK, secs=10)
    if f is None:
        raise SystemExit("closed before PUBLISH_ACK")
    accepted, rejected, first_error, first_index = struct.unpack(">HHHH", f[1][:8])
    return accepted, rejected, first_error, first_index


def case_names(a):
    """PUBLISH names with ESC, BEL, CR/LF, C1 CSI, U+202E, an overlong '/',
    one at a time, then a safe one: each unsafe one is refused with 111."""
    ident = hx.Identity(a.dir, "namer")
    c = hx.Conn(a.target, ident, a.src)
    c.attach([a.src + ":7"])
    names = {
        "esc-title": b"\x1b]0;you are pwned\x07holiday evil.mkv",
        "clear": b"holiday \x1b[2J\x1b[Hevil.mkv",
        "bell": b"holiday evil\x07.mkv",
        "fake-line": b"holiday evil.mkv\r\nffffffff  1  fake result",
        "c1-csi": b"holiday evil \xc2\x9b2J.mkv",
        "rlo": "holiday evil \u202egpj.exe".encode(),
        "lri": "holiday evil \u2066x\u2069.mkv".encode(),
        "del": b"holiday evil\x7f.mkv",
    }
    for label, name in names.items():
        c.send(hx.publish([hx.record(name, fhash=os.urandom(32), size=123)]))
        acc, rej, err, _ = publish_ack(c)
        # the ERROR with the reason comes behind the ack
        f = c.expect(hx.ERROR, secs=5)
        code = struct.unpack(">H", f[1][:2])[0] if f else None
        out("name %s accepted %d rejected %d first_error %d error %s" % (label, acc, rej, err, code))
    c.send(hx.publish([hx.record(b"holiday safe \xc3\xa9t\xc3\xa9.mkv", fhash=os.urandom(32),
                                 size=123)]))
    acc, rej, err, _ = publish_ack(c)
    out("name safe accepted %d rejected %d" % (acc, rej))
    # stay attached (the records leave the index with the link) while the
    # script searches; PING keeps the link alive
    deadline = time.monotonic() + a.hold * hx.SCALE
    while time.monotonic() < deadline:
        c.send(hx.ping(1))
        try:
            if c.recv(1) is None:
                break
        except TimeoutError:
            pass


def ecdsa_ident(directory, name, ca=None):
    """An ECDSA P-256 identity: self-signed, or signed by the federation root
    (ca = (root.crt, root.key))."""
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".crt")
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)
    if ca is None:
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", crt, "-subj", "/CN=sova-peer", "-days", "30")
    else:
        csr = os.path.join(directory, name + ".csr")
        run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
        run("openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
            "-CAcreateserial", "-days", "30", "-out", crt)
    return key, crt


def case_ecdsa_client(a):
    """Connect with an ECDSA certificate and try HELLO: prints 'refused' when
    the TLS handshake or the first read fails, 'accepted' when a HELLO comes."""
    key, crt = ecdsa_ident(a.dir, "ecdsa-peer")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(crt, key)
    try:
        s = ctx.wrap_socket(hx.tcp(a.target, a.src))
        c = hx.Conn(a.target, None, a.src, send_hello=False, sock=s)
        c.send(hx.hello())
        f = c.expect(hx.HELLO, secs=5)
        out("accepted" if f is not None else "refused")
    except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as e:
        out("refused (%s)" % type(e).__name__)


def case_ecdsa_server(a):
    """Listen as a 'supernode' with an ECDSA certificate the federation root
    signed; print the port, then how each connection ended."""
    key, crt = ecdsa_ident(a.dir, "ecdsa-sn", ca=(a.root_crt, a.root_key))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(crt, key)
    ls = socket.create_server((a.src, 0))
    out("port %d" % ls.getsockname()[1])
    ls.settimeout(a.wait)
    deadline = time.monotonic() + a.wait
    while time.monotonic() < deadline:
        try:
            raw, _ = ls.accept()
        except socket.timeout:
            break
        try:
            s = ctx.wrap_socket(raw, server_side=True)
            s.settimeout(5)
            data = s.recv(5)
            out("connection: handshake done, %s" % ("HELLO sent" if data else "closed"))
        except (ssl.SSLError, OSError) as e:
            out("connection: refused by the client (%s)" % type(e).__name__)


class Counter(threading.Thread):
    """A third party's TCP port: counts the connections it receives."""

    def __init__(self, src):
        super().__init__(daemon=True)
        self.sock = socket.create_server((src, 0))
        self.port = self.sock.getsockname()[1]
        self.count = 0

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
                self.count += 1
                c.close()
            except OSError:
                return


def case_reflect(a):
    """Register a third party's address (a port on --third that counts what
    reaches it) besides our own, publish a file, and CONNECT each victim ID
    given; then wait and print how many connections the third party got and
    the addresses a LOCATE of ourselves hands out."""
    third = Counter(a.third)
    third.start()
    ident = hx.Identity(a.dir, "reflector")
    c = hx.Conn(a.target, ident, a.src)
    claim = ["%s:%d" % (a.third, third.port), "8.8.8.8:%d" % third.port]
    c.attach(claim)
    c.send(hx.publish([hx.record(a.name.encode(), fhash=os.urandom(32), size=1 << 20)]))
    publish_ack(c)
    out("registered %s" % " ".join(claim))
    for i, victim in enumerate(a.victim or []):
        vid = base64.b32decode(victim.upper() + "=" * (-len(victim) % 8))
        c.send(hx.frame(hx.CONNECT, vid + os.urandom(16) + hx.addr_list(claim)))
    out("ready")
    deadline = time.monotonic() + a.wait * hx.SCALE
    while time.monotonic() < deadline:
        try:
            f = c.recv(0.5)
            if f is None:
                break
        except TimeoutError:
            pass
    out("third party connections %d" % third.count)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target", required=True)
    ap.add_argument("--src", default="127.0.0.2")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--scale", type=int, default=1)
    sub = ap.add_subparsers(dest="case", required=True)
    p = sub.add_parser("names")
    p.add_argument("--hold", type=float, default=0, help="seconds to stay attached after")
    sub.add_parser("ecdsa-client")
    p = sub.add_parser("ecdsa-server")
    p.add_argument("--root-crt", required=True)
    p.add_argument("--root-key", required=True)
    p.add_argument("--wait", type=float, default=20)
    p = sub.add_parser("reflect")
    p.add_argument("--third", required=True)
    p.add_argument("--victim", action="append", help="a victim's node ID (base32)")
    p.add_argument("--name", default="reflected bait")
    p.add_argument("--wait", type=float, default=8)
    a = ap.parse_args()
    hx.SCALE = a.scale
    {"names": case_names, "ecdsa-client": case_ecdsa_client, "ecdsa-server": case_ecdsa_server,
     "reflect": case_reflect}[a.case](a)


if __name__ == "__main__":
    main()
