#!/usr/bin/env python3
"""hostile.py - a hostile client for tests/e2e/test_hostile.sh.

Speaks Sova's wire protocol (docs/PROTOCOL.md) from scratch with the
standard library only, against a running sova-supernode or sova-peer, and
prints what came back, one event a line:

    ERROR 12 about 0x00: frame.length: ...   an ERROR frame (code, offending type, text)
    PONG 7                                   a PONG and its nonce
    closed                                   the remote closed the connection
    ...                                      other lines named by the case

Each case is one function (`python3 hostile.py CASE --help`); the shell
script asserts on the lines. A case exits non-zero only when it cannot run
at all (or, for sweeps, when a result differs from what it checks).
Identities are self-signed Ed25519 certificates made with the openssl
command line; node ID = SHA-256 of the DER SubjectPublicKeyInfo
(docs/IDENTITY.md).
"""
import argparse
import base64
import hashlib
import os
import select
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

# ---- message types and error codes (docs/PROTOCOL.md) ------------------------------
HELLO, ERROR, PING, PONG = 0x01, 0x02, 0x03, 0x04
REGISTER, REGISTERED, SN_LIST, PUBLISH, PUBLISH_ACK = 0x10, 0x11, 0x12, 0x13, 0x14
SEARCH, SEARCH_RESULT, LOCATE, LOCATE_RESULT = 0x15, 0x16, 0x17, 0x18
DIALBACK, DIALBACK_RESULT, CONNECT, CONNECT_REQUEST, REPORT = 0x19, 0x1A, 0x1B, 0x1C, 0x1D
PUNCH, PUNCH_NOTE = 0x20, 0x21
RELAY_OPEN, RELAY_ACCEPT, RELAY_OPENED = 0x30, 0x31, 0x32
RELAY_DATA, RELAY_WINDOW, RELAY_CLOSE = 0x33, 0x34, 0x35
GOSSIP, SUMMARY, FWD_SEARCH, FWD_HITS = 0x40, 0x41, 0x42, 0x43
FWD_LOCATE, FWD_LOCATE_RESULT, FWD_CONNECT = 0x44, 0x45, 0x46
RECEIPTS, CREDIT, LEDGER_QUERY, LEDGER_UPTIME, RECEIPT = 0x1E, 0x1F, 0x47, 0x4A, 0x54
MANIFEST_GET, MANIFEST, GET, DATA = 0x50, 0x51, 0x52, 0x53
ROLE_SN, ROLE_PEER = 1, 2
CHUNK = 1 << 20  # the chunk size sova-peer asks for by default (ordinary/op_fetch.h)
SCALE = 1  # --scale: every wait is multiplied by it (valgrind)


_out_lock = threading.Lock()


def out(*words):
    # One write a line, under a lock: listener threads print too, and
    # print() writes its words apart, so a listener's line could land in the
    # middle of the main thread's (a DIALBACK_RESULT line split that way).
    line = " ".join(str(w) for w in words) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


# ---- encodings ------------------------------------------------------------------------
def u8(v): return struct.pack(">B", v)
def u16(v): return struct.pack(">H", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)
def sstr(b): return u16(len(b)) + b          # str: u16 length + bytes
def blob(b): return u32(len(b)) + b          # bytes: u32 length + bytes
def ext(tag, value): return u16(tag) + u16(len(value)) + value


def addr(hostport):
    host, port = hostport.rsplit(":", 1)
    return b"\x04" + socket.inet_aton(host) + u16(int(port))


def addr_list(addrs): return u8(len(addrs)) + b"".join(addr(a) for a in addrs)


def frame(mtype, payload=b""):
    return u32(len(payload) + 1) + u8(mtype) + payload


CAP_PUNCH = 0x10  # a peer that takes PUNCH_NOTEs


def hello(role=ROLE_PEER, vmin=2, vmax=2, caps=0):
    return frame(HELLO, u16(vmin) + u16(vmax) + u32(caps) + u8(role) + sstr(b"hostile/1"))


def ping(nonce): return frame(PING, u64(nonce))
def register(addrs=(), session=1, reach=0): return frame(REGISTER, u8(session) + u8(reach) + addr_list(addrs))


def record(name, fhash=None, size=1, chunk_size=65536, action=1):
    fhash = fhash or hashlib.sha256(name).digest()
    return u8(action) + fhash + u64(size) + u32(chunk_size) + sstr(name)


def publish(records): return frame(PUBLISH, u16(len(records)) + b"".join(records))


def search(qid, words): return frame(SEARCH, u64(qid) + u16(10) + u8(len(words)) + b"".join(sstr(w) for w in words))


def punch(peer, token, step, port): return frame(PUNCH, peer + token + u8(step) + u16(port))


def relay_open(cid, target, origin, token=b"\x5c" * 16):
    return frame(RELAY_OPEN, u32(cid) + target + origin + token)


def chunk_range(mtype, fid, first, count, chunk_size=CHUNK):
    return frame(mtype, fid + u32(chunk_size) + u32(first) + u32(count))


# ---- file IDs (common/fileid.h, docs/PROTOCOL.md "File IDs") ---------------------------
BLOCK, ROOT_HEIGHT = 16384, 48
_H = lambda b: hashlib.sha256(b).digest()
PADS = [b"\0" * 32]
for _ in range(ROOT_HEIGHT):
    PADS.append(_H(PADS[-1] + PADS[-1]))


def level_up(v, lv):
    """Pair up a level of hashes at height lv, the odd one out with the pad."""
    return [_H(v[i] + (v[i + 1] if i + 1 < len(v) else PADS[lv])) for i in range(0, len(v), 2)]


def height_of(chunk_size):
    return (chunk_size // BLOCK).bit_length() - 1


def layer_of(data, chunk_size):
    """The hashes of data's chunks of chunk_size: the layer of its tree."""
    v = [_H(data[i:i + BLOCK]) for i in range(0, len(data), BLOCK)]
    for lv in range(height_of(chunk_size)):
        v = level_up(v, lv)
    return v


def root_of(layer, chunk_size):
    if not layer:
        return PADS[ROOT_HEIGHT]
    v = list(layer)
    for lv in range(height_of(chunk_size), ROOT_HEIGHT):
        v = level_up(v, lv)
    return v[0]


def file_id(size, root):
    return _H(b"sova file id v2\0" + u64(size) + root)


class SovaFile:
    """A file as a source serves it: its bytes, ID, root, layers by chunk size."""

    def __init__(self, data):
        self.data, self.size = data, len(data)
        self.layers = {}
        self.root = root_of(self.layer(65536), 65536)
        self.id = file_id(self.size, self.root)
        self.sha256 = _H(data)

    def layer(self, chunk_size):
        if chunk_size not in self.layers:
            self.layers[chunk_size] = layer_of(self.data, chunk_size)
        return self.layers[chunk_size]

    def chunk(self, i, chunk_size):
        return self.data[i * chunk_size:(i + 1) * chunk_size]

    def manifest(self, first, count, chunk_size, size=None, root=None, hashes=None):
        """A MANIFEST page (at most 1024 hashes); size, root, hashes may lie."""
        layer = hashes if hashes is not None else self.layer(chunk_size)
        page = layer[first:first + min(count, 1024)]
        return frame(MANIFEST, self.id + u64(self.size if size is None else size)
                     + (self.root if root is None else root) + u32(chunk_size) + u32(first)
                     + u16(len(page)) + b"".join(page))


# ---- identities -------------------------------------------------------------------------
class Identity:
    """A self-signed Ed25519 certificate (or given files), and its node ID."""

    def __init__(self, directory, name, cert=None, key=None):
        os.makedirs(directory, exist_ok=True)
        self.key = key or os.path.join(directory, name + ".key")
        self.cert = cert or os.path.join(directory, name + ".crt")
        if not os.path.exists(self.cert):
            run = lambda *a: subprocess.run(a, check=True, capture_output=True)
            run("openssl", "genpkey", "-algorithm", "ed25519", "-out", self.key)
            run("openssl", "req", "-new", "-x509", "-key", self.key, "-out", self.cert,
                "-subj", "/CN=sova-peer", "-days", "3650")
        spki = subprocess.run(["openssl", "pkey", "-in", self.key, "-pubout", "-outform", "DER"],
                              check=True, capture_output=True).stdout
        self.id = hashlib.sha256(spki).digest()
        self.id_str = base64.b32encode(self.id).decode().lower().rstrip("=")


def client_ctx(ident, cert=True, tls12=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a hostile client trusts anyone
    if tls12:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if cert:
        ctx.load_cert_chain(ident.cert, ident.key)
    return ctx


def server_ctx(ident):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(ident.cert, ident.key)
    return ctx


# ---- connections ----------------------------------------------------------------------
def hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def tcp(target, src):
    return socket.create_connection(hostport(target), timeout=10 * SCALE, source_address=(src, 0))


def wait_closed(sock, secs):
    """Read until the remote closes; True if it did within secs."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + secs * SCALE
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except (ssl.SSLError, OSError):
            return True
    return False


class Conn:
    """A TLS connection speaking frames."""

    def __init__(self, target, ident, src, role=ROLE_PEER, send_hello=True, sock=None, caps=0):
        self.sock = sock or client_ctx(ident).wrap_socket(tcp(target, src))
        self.buf = b""
        if send_hello:
            self.send(hello(role, caps=caps))
            self.expect(HELLO)

    def send(self, data):
        self.sock.sendall(data)

    def recv(self, secs=5):
        """The next frame as (type, payload), or None when the remote closed."""
        deadline = time.monotonic() + secs * SCALE
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    f, self.buf = self.buf[:4 + n], self.buf[4 + n:]
                    return f[4], f[5:]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame within %g s" % (secs * SCALE))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except (ssl.SSLError, ConnectionError):
                data = b""
            if not data:
                return None
            self.buf += data

    def expect(self, *types, secs=5):
        """Frames until one of types (others skipped); None if closed first."""
        while True:
            f = self.recv(secs)
            if f is None or f[0] in types:
                return f

    def report(self, secs=5):
        """Print the next ERROR (if one comes), then whether the link closed."""
        f = self.expect(ERROR, secs=secs)
        if f is None:
            out("closed")
            return
        out(fmt_error(f[1]))
        self.report_closed(secs)

    def report_closed(self, secs=5):
        try:
            while self.recv(secs) is not None:
                pass
            out("closed")
        except TimeoutError:
            out("still open")

    def then_ping(self, nonce=7):
        """PING right behind what was sent: print every ERROR that comes
        first, then "PONG" (the link is up) or "closed"."""
        self.send(ping(nonce))
        while True:
            f = self.expect(ERROR, PONG, secs=10)
            if f is None:
                out("closed")
                return
            if f[0] == ERROR:
                out(fmt_error(f[1]))
            elif struct.unpack(">Q", f[1][:8])[0] == nonce:
                out("PONG", nonce)
                return

    def attach(self, addrs=()):
        self.send(register(addrs))
        if self.expect(REGISTERED) is None:
            raise SystemExit("not registered")


def parse_error(p):
    code, about = struct.unpack(">HB", p[:3])
    n = struct.unpack(">H", p[3:5])[0]
    text = p[5:5 + n].decode("utf-8", "replace")
    retry = None
    rest = p[5 + n:]
    while len(rest) >= 4:
        tag, ln = struct.unpack(">HH", rest[:4])
        if tag == 1 and ln == 4:
            retry = struct.unpack(">I", rest[4:8])[0]
        rest = rest[4 + ln:]
    return code, about, text, retry


def fmt_error(p):
    code, about, text, retry = parse_error(p)
    return "ERROR %d about 0x%02x: %s%s" % (code, about, text,
                                            "" if retry is None else " (retry_after_ms %d)" % retry)


# ---- cases before TLS and during the handshake -------------------------------------------
def case_garbage(a):
    """Plain text where a TLS ClientHello belongs."""
    s = tcp(a.target, a.src)
    s.sendall(b"GET / HTTP/1.1\r\nHost: sova\r\n\r\n" + bytes(range(256)))
    t0 = time.monotonic()
    out("closed" if wait_closed(s, 10) else "still open",
        "after %d ms" % ((time.monotonic() - t0) * 1000))


def case_silent(a):
    """Connect and send nothing; print how long until the remote gives up."""
    s = tcp(a.target, a.src)
    t0 = time.monotonic()
    closed = wait_closed(s, a.wait)
    out("closed" if closed else "still open", "after %d ms" % ((time.monotonic() - t0) * 1000))


def case_half_handshake(a):
    """Send the ClientHello, read the server's flight, then never finish."""
    s = tcp(a.target, a.src)
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx(Identity(a.dir, "hostile")).wrap_bio(inc, outb)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    s.sendall(outb.read())
    got = s.recv(65536)
    t0 = time.monotonic()
    out("server flight %d bytes" % len(got))
    closed = wait_closed(s, a.wait)
    out("closed" if closed else "still open", "after %d ms" % ((time.monotonic() - t0) * 1000))


def case_no_hello(a):
    """TLS up, then no HELLO: the handshake timeout must answer with an ERROR."""
    c = Conn(a.target, Identity(a.dir, "hostile"), a.src, send_hello=False)
    c.report(secs=a.wait)


def case_tls12(a):
    """A TLS 1.2 client."""
    try:
        s = client_ctx(Identity(a.dir, "hostile"), tls12=True).wrap_socket(tcp(a.target, a.src))
        s.sendall(hello())
        out("handshake ok" if s.recv(5) else "closed")
    except (ssl.SSLError, OSError) as e:
        out("handshake failed:", getattr(e, "reason", None) or e)


def case_no_cert(a):
    """A TLS 1.3 client without a certificate."""
    try:
        s = client_ctx(None, cert=False).wrap_socket(tcp(a.target, a.src))
        s.sendall(hello())
        out("handshake ok" if s.recv(5) else "closed")
    except (ssl.SSLError, OSError) as e:
        out("handshake failed:", getattr(e, "reason", None) or e)


def case_hold(a):
    """Open N connections that send nothing, then one more; print whether
    that one was closed at once (before its handshake timeout)."""
    held = [tcp(a.target, a.src) for _ in range(a.n)]
    extra = tcp(a.target, a.src)
    t0 = time.monotonic()
    closed = wait_closed(extra, 1)
    out("extra", "closed" if closed else "still open", "after %d ms" % ((time.monotonic() - t0) * 1000))
    for s in held:
        s.setblocking(False)
        try:
            out("held", "closed" if s.recv(1) == b"" else "data")
        except BlockingIOError:
            out("held open")
        s.close()


def case_hold_links(a):
    """Open N links that finish TLS and HELLO, then one more connection."""
    ident = Identity(a.dir, "hostile")
    held = [Conn(a.target, ident, a.src) for _ in range(a.n)]
    out("held", len(held), "links")
    extra = tcp(a.target, a.src)
    t0 = time.monotonic()
    closed = wait_closed(extra, 1)
    out("extra", "closed" if closed else "still open", "after %d ms" % ((time.monotonic() - t0) * 1000))
    held[0].then_ping()


# ---- framing ------------------------------------------------------------------------------
def case_raw(a):
    """HELLO (and REGISTER), then raw bytes (hex), or a valid sample of a
    message type (the table below); report the ERROR and the link."""
    c = Conn(a.target, Identity(a.dir, "hostile"), a.src, send_hello=not a.before_hello)
    if a.register:
        c.attach()
    if a.sample:
        t = int(a.sample, 0)
        c.send(frame(t, b"".join(v for _, v in SAMPLES[t])))
    else:
        c.send(bytes.fromhex(a.hex))
    c.then_ping()


def case_exact_max(a):
    """A frame of exactly max-frame bytes, of an unknown type."""
    c = Conn(a.target, Identity(a.dir, "hostile"), a.src)
    c.send(u32(a.max_frame - 4) + u8(0x7f) + b"\0" * (a.max_frame - 5))
    c.then_ping()


def case_cut_frame(a):
    """A PING cut in the middle: the rest comes later (then PONG), or never."""
    c = Conn(a.target, Identity(a.dir, "hostile"), a.src)
    f = ping(42)
    c.send(f[:7])
    time.sleep(0.3)  # the remote must wait for the rest, not misread what it has
    c.send(f[7:])
    f = c.expect(PONG)
    out("PONG" if f else "closed")
    c.send(ping(43)[:7])
    out("cut frame sent, silent now")
    t0 = time.monotonic()
    c.report(secs=a.wait)
    out("after %d ms" % ((time.monotonic() - t0) * 1000))


def case_unknown_ext(a):
    """A PING with an extension tag nobody knows: it must be skipped."""
    c = Conn(a.target, Identity(a.dir, "hostile"), a.src)
    c.send(frame(PING, u64(5) + ext(0x7777, b"future")))
    f = c.expect(PONG, ERROR)
    out("closed" if f is None else "PONG" if f[0] == PONG else fmt_error(f[1]))


# Every message type with a sample of each field, in order (the goldens of
# tests/unit/test_msg.c). The truncation sweep cuts the last byte of each
# field in turn: the receiver must answer ERROR 10 (TRUNCATED) naming that
# field, about that type, and close.
V4 = b"\x04\xc0\x00\x02\x01" + u16(7071)
V6 = b"\x06\x20\x01\x0d\xb8" + b"\0" * 11 + b"\x01" + u16(7070)
ID = lambda b: bytes([b]) * 32
TOK = lambda b: bytes([b]) * 16
SN_INFO = ID(0xA1) + u8(1) + V4 + u64(7) + u8(1) + u32(10) + u32(1000) + u32(250)
HIT = ID(0xC1) + u64(1234) + sstr(b"song.mp3") + u8(2) + ID(0xD1) + u8(1) + u8(1) + V4 + ID(0xD2) + u8(3) + u8(0)
SAMPLES = {
    HELLO: [("version_min", u16(1)), ("version_max", u16(3)), ("capabilities", u32(15)),
            ("role", u8(2)), ("agent", sstr(b"sova/1")), ("ext", ext(1, TOK(0x5D)))],
    ERROR: [("code", u16(102)), ("offending_type", u8(0x15)), ("text", sstr(b"slow")),
            ("ext", ext(1, u32(1500)) + ext(2, u8(1) + V4))],
    PING: [("nonce", u64(0x0102030405060708))],
    PONG: [("nonce", u64(0xFEDCBA9876543210))],
    REGISTER: [("session", u8(2)), ("reachability", u8(2)), ("addrs", u8(2) + V4 + V6)],
    REGISTERED: [("observed", V6), ("keepalive_s", u16(30)), ("peer_timeout_s", u16(90))],
    SN_LIST: [("entries", u16(2) + SN_INFO + ID(0xA2) + u8(0) + u64(1) + u8(2) + u32(0) + u32(500) + u32(0))],
    PUBLISH: [("records", u16(2) + record(b"a.txt", ID(0xB1), 1000000, 262144) + record(b"b", ID(0xB2), 5, 1, 2))],
    PUBLISH_ACK: [("accepted", u16(3)), ("rejected", u16(1)), ("first_error", u16(15)),
                  ("first_error_index", u16(2))],
    SEARCH: [("query_id", u64(0x1122334455667788)), ("max_results", u16(50)),
             ("keywords", u8(2) + sstr(b"foo") + sstr(b"bar")), ("ext", ext(1, u64(10) + u64(20)))],
    SEARCH_RESULT: [("query_id", u64(9)), ("flags", u8(1)), ("hits", u16(1) + HIT)],
    LOCATE: [("peer_id", ID(0xE1))],
    LOCATE_RESULT: [("peer_id", ID(0xE1)), ("found", u8(1)), ("reachability", u8(2)),
                    ("addrs", u8(1) + V6), ("sn_id", ID(0xA1))],
    DIALBACK: [("nonce", u64(77)), ("addrs", u8(2) + V4 + V6)],
    DIALBACK_RESULT: [("nonce", u64(77)), ("probes", u8(2) + V4 + u8(1) + V6 + u8(3))],
    CONNECT: [("peer_id", ID(0xD2)), ("token", TOK(0x5A)), ("addrs", u8(1) + V4)],
    CONNECT_REQUEST: [("peer_id", ID(0xD1)), ("token", TOK(0x5B)), ("addrs", u8(1) + V6)],
    REPORT: [("peer_id", ID(0xD2)), ("hash", ID(0xC1)), ("reason", u8(1))],
    RELAY_OPEN: [("circuit_id", u32(0x01020304)), ("target_id", ID(0xD2)), ("origin_id", ID(0xD1)),
                 ("token", TOK(0x5C))],
    RELAY_ACCEPT: [("circuit_id", u32(5))],
    RELAY_OPENED: [("circuit_id", u32(6))],
    RELAY_DATA: [("circuit_id", u32(5)), ("data", blob(b"\x16\x03\x03"))],
    RELAY_WINDOW: [("circuit_id", u32(5)), ("credit", u32(65536))],
    RELAY_CLOSE: [("circuit_id", u32(5)), ("reason", u16(109))],
    GOSSIP: [("kind", u8(3)), ("seq", u32(42)), ("target_id", ID(0xA3)), ("updates", u8(1) + SN_INFO)],
    SUMMARY: [("sn_id", ID(0xA1)), ("version", u64(3)), ("hash_count", u8(4)), ("bit_count", u32(20)),
              ("bits", blob(b"\xf0\x0f\xa0"))],
    FWD_SEARCH: [("origin_sn", ID(0xA2)), ("ttl", u8(2)), ("deadline_ms", u32(1500)),
                 ("query_id", u64(0x42)), ("max_results", u16(20)), ("keywords", u8(0)),
                 ("ext", ext(2, ID(0x77)))],
    FWD_HITS: [("query_id", u64(0x42)), ("flags", u8(0)),
               ("hits", u16(1) + ID(0xC2) + u64(0) + sstr(b"e") + u8(1) + ID(0xD3) + u8(0) + u8(0))],
    FWD_LOCATE: [("query_id", u64(0x43)), ("peer_id", ID(0xE2))],
    FWD_LOCATE_RESULT: [("query_id", u64(0x43)), ("peer_id", ID(0xE2)), ("found", u8(0)),
                        ("reachability", u8(0)), ("addrs", u8(0)), ("sn_id", ID(0))],
    FWD_CONNECT: [("target_id", ID(0xD2)), ("peer_id", ID(0xD1)), ("token", TOK(0x5B)), ("addrs", u8(1) + V4)],
    MANIFEST_GET: [("file_id", ID(0xF1)), ("chunk_size", u32(262144)), ("first_chunk", u32(0)),
                   ("count", u32(4))],
    MANIFEST: [("file_id", ID(0xF1)), ("file_size", u64(600000)), ("root", ID(0xF2)),
               ("chunk_size", u32(262144)), ("first_chunk", u32(1)),
               ("chunk_hashes", u16(2) + ID(0x31) + ID(0x32))],
    GET: [("file_id", ID(0xF1)), ("chunk_size", u32(65536)), ("first_chunk", u32(2)), ("count", u32(1))],
    DATA: [("file_id", ID(0xF1)), ("chunk_index", u32(2)), ("offset", u32(16384)), ("data", blob(b"hello"))],
    # credits (docs/CREDITS.md); the signatures need not verify: decoding comes first
    RECEIPT: [("downloader_id", ID(0xD1)), ("source_id", ID(0xD2)), ("file_id", ID(0xC1)),
              ("file_size", u64(4194304)), ("root", ID(0x76)),
              ("bytes", u64(1048576)), ("seq", u64(5)), ("time", u64(1700000000)),
              ("pubkey", b"\x33" * 32), ("signature", b"\x44" * 64)],
    RECEIPTS: [("receipts", u8(1) + ID(0xD1) + ID(0xD2) + ID(0xC1) + u64(4194304) + ID(0x76) +
                u64(1048576) + u64(5) + u64(1700000000) + b"\x33" * 32 + b"\x44" * 64)],
    CREDIT: [("kind", u8(1)), ("query_id", u64(9)), ("peer_ids", u8(1) + ID(0xE1))],
    LEDGER_QUERY: [("query_id", u64(9)), ("peer_ids", u8(1) + ID(0xE1))],
    LEDGER_UPTIME: [("reports", u8(1) + ID(0xE1) + u64(1700000000000) + u64(60))],
}


def case_truncate(a):
    """Every message type (or those given), each field cut short in turn."""
    ident = Identity(a.dir, "hostile")
    types = [int(t, 0) for t in a.types.split(",")] if a.types else sorted(SAMPLES)
    bad = n = 0
    for t in types:
        fields = SAMPLES[t]
        for i, (name, value) in enumerate(fields):
            payload = b"".join(v for _, v in fields[:i]) + value[:-1]
            c = Conn(a.target, ident, a.src, send_hello=t != HELLO)
            c.send(frame(t, payload))
            f = c.expect(ERROR)
            try:
                closed = f is None or c.recv() is None
            except TimeoutError:
                closed = False
            err = parse_error(f[1]) if f else None
            good = err is not None and err[:2] == (10, t) and name in err[2] and closed
            n, bad = n + 1, bad + (not good)
            out("0x%02x %-17s %s, %s%s" % (t, name, fmt_error(f[1]) if f else "no ERROR",
                                           "then closed" if closed else "link still open",
                                           "" if good else "   <-- WRONG"))
            c.sock.close()
    out("%d truncations of %d types: %d as documented, %d not" % (n, len(types), n - bad, bad))
    sys.exit(1 if bad else 0)


# ---- supernode requests ----------------------------------------------------------------
def case_publish(a):
    """PUBLISH records with the given names (after REGISTER)."""
    c = Conn(a.target, Identity(a.dir, a.name), a.src)
    c.attach()
    names = [bytes.fromhex(h) for h in a.names_hex.split(",")] if a.names_hex else []
    names += [("hostile-extra-%d.bin" % i).encode() for i in range(a.count)]
    c.send(publish([record(n) for n in names]))
    while True:
        f = c.expect(PUBLISH_ACK, ERROR)
        if f is None:
            out("closed")
            return
        if f[0] == ERROR:
            out(fmt_error(f[1]))
            if parse_error(f[1])[0] in (10, 11, 12, 14, 15, 100):
                c.report_closed()
                return
            break
        out("PUBLISH_ACK accepted %d rejected %d first_error %d first_error_index %d"
            % struct.unpack(">HHHH", f[1][:8]))
        if struct.unpack(">H", f[1][2:4])[0] == 0:
            break
    c.then_ping()


def case_search_flood(a):
    c = Conn(a.target, Identity(a.dir, "hostile"), a.src)
    c.attach()
    for q in range(1, a.n + 1):
        c.send(search(q, [b"goodloop"]))
    finals, limited, retry = set(), 0, 0
    while len(finals) < a.n:
        f = c.expect(SEARCH_RESULT, ERROR, secs=10)
        if f is None:
            out("closed")
            return
        if f[0] == ERROR:
            code, about, text, r = parse_error(f[1])
            limited += code == 102 and about == SEARCH
            retry += r is not None and r > 0
        elif f[1][8] & 1:
            finals.add(struct.unpack(">Q", f[1][:8])[0])
    out("%d searches: %d final answers, %d ERROR 102 (rate limited), %d with retry_after_ms"
        % (a.n, len(finals), limited, retry))
    c.then_ping()


def case_ping_flood(a):
    c = Conn(a.target, Identity(a.dir, "hostile"), a.src)
    t0 = time.monotonic()
    c.send(b"".join(ping(i) for i in range(1, a.n + 1)))
    got = 0
    while got < a.n:
        f = c.expect(PONG, secs=30)
        if f is None:
            break
        got += 1
    out("%d PINGs: %d PONGs in %d ms" % (a.n, got, (time.monotonic() - t0) * 1000))


def case_relay(a):
    """RELAY_OPEN with the given target and origin (hex IDs; 'self', 'random')."""
    ident = Identity(a.dir, "hostile")
    c = Conn(a.target, ident, a.src)
    if not a.no_register:
        c.attach()
    pick = lambda v: ident.id if v == "self" else os.urandom(32) if v == "random" else bytes.fromhex(v)
    c.send(relay_open(a.circuit, pick(a.to), pick(a.origin)))
    f = c.expect(RELAY_CLOSE, ERROR, secs=10)
    if f is None:
        out("closed")
    elif f[0] == ERROR:
        out(fmt_error(f[1]))
        c.report_closed() if parse_error(f[1])[0] == 100 else c.then_ping()
    else:
        out("RELAY_CLOSE circuit %d reason %d" % struct.unpack(">IH", f[1][:6]))
        c.then_ping()


def case_punch(a):
    """Hole-punch notes that lie, to the peer --to (hex ID): an OFFER (and
    the SYNC it asks for, aimed at our own address, where nothing listens);
    a SYNC and a READY with tokens the peer never saw; a PUNCH to oneself;
    then --n OFFERs at once. Prints what comes back, then PINGs."""
    ident = Identity(a.dir, "hostile")
    c = Conn(a.target, ident, a.src, caps=CAP_PUNCH)
    c.attach()
    to = bytes.fromhex(a.to)

    def notes(secs, until=None):
        """Frames for secs (PINGs answered, PONGs dropped; our own PING every
        second keeps the link alive); stops early at a frame of type until."""
        got = []
        end = time.monotonic() + secs * SCALE
        next_ping = 0
        while time.monotonic() < end:
            if time.monotonic() >= next_ping:
                c.send(ping(99))
                next_ping = time.monotonic() + 1
            try:
                f = c.recv(min(1.0, max(0.05, end - time.monotonic())) / SCALE)
            except TimeoutError:
                continue
            if f is None:
                got.append(("closed", None))
                break
            if f[0] == PING:  # the supernode's keep-alive: answered, not a note
                c.send(frame(PONG, f[1][:8]))
                continue
            if f[0] != PONG:
                got.append(f)
                if until is not None and f[0] in until:
                    break
        return got

    tok = os.urandom(16)
    c.send(punch(to, tok, 1, 40000))
    got = notes(10, until=(PUNCH_NOTE, ERROR))
    f = got[-1] if got and got[-1][0] in (PUNCH_NOTE, ERROR) else None
    if f is None or f[0] == ERROR:
        out("OFFER:", "closed" if f is None else fmt_error(f[1]))
    else:
        p = f[1]
        port = struct.unpack(">H", p[-2:])[0] if len(p) >= 2 else 0
        out("OFFER: %s on port %d" % ({2: "READY", 4: "NO"}.get(p[48], "step %d" % p[48]), port))
        c.send(punch(to, tok, 3, 0))  # bob dials 127.0.0.x:40000: refused until it gives up
    c.send(punch(to, os.urandom(16), 3, 0))
    out("SYNC with a token never given:", "nothing" if not notes(1) else "answered")
    c.send(punch(to, os.urandom(16), 2, 40001))
    out("READY unasked:", "nothing" if not notes(1) else "answered")
    c.send(punch(ident.id, tok, 1, 40000))
    got = notes(5, until=(ERROR,))
    f = got[-1] if got and got[-1][0] == ERROR else None
    out("to itself:", "nothing" if f is None else fmt_error(f[1]))
    for _ in range(a.n):
        c.send(punch(to, os.urandom(16), 1, 40002))
    ready = no = limited = 0
    for t, p in notes(3):
        if t == PUNCH_NOTE:
            ready += p[48] == 2
            no += p[48] == 4
        elif t == ERROR:
            limited += parse_error(p)[0] == 102
    out("flood of %d OFFERs: READY %d NO %d rate-limited %d" % (a.n, ready, no, limited))
    c.then_ping()


def relay_pair(a):
    """Two hostile peers attached: A (the asker) and B (the target)."""
    ia, ib = Identity(a.dir, "hostile"), Identity(a.dir, "hostile-b")
    ca, cb = Conn(a.target, ia, a.src), Conn(a.target, ib, a.src)
    ca.attach()
    cb.attach()
    return ca, cb, ib


def case_relay_limit(a):
    """A opens circuits to B (which never answers) up to the limit, then one more."""
    ca, cb, ib = relay_pair(a)
    for i in range(a.n + 1):
        ca.send(relay_open(2 * i + 1, ib.id, Identity(a.dir, "hostile").id))
    for i in range(a.n):
        f = cb.expect(RELAY_OPEN)
        out("target got RELAY_OPEN" if f else "target closed")
    f = ca.expect(RELAY_CLOSE)
    out("RELAY_CLOSE circuit %d reason %d" % struct.unpack(">IH", f[1][:6]) if f else "closed")
    ca.then_ping()
    ca.sock.close()  # its circuits end with its link: B is told
    closes = [cb.expect(RELAY_CLOSE) for _ in range(a.n)]
    out("target got %d RELAY_CLOSE, reasons %s" % (sum(1 for f in closes if f),
        sorted(set(struct.unpack(">H", f[1][4:6])[0] for f in closes if f))))


def case_relay_overrun(a):
    """A circuit A -> B that B accepts; A then sends far beyond its window."""
    ca, cb, ib = relay_pair(a)
    ca.send(relay_open(1, ib.id, Identity(a.dir, "hostile").id))
    f = cb.expect(RELAY_OPEN)
    bcid = struct.unpack(">I", f[1][:4])[0]
    cb.send(frame(RELAY_ACCEPT, u32(bcid)))
    f = ca.expect(RELAY_OPENED)
    out("RELAY_OPENED" if f else "closed")
    piece = b"\x17" * 32768
    sent = 0
    try:
        for _ in range(a.kib // 32):
            ca.send(frame(RELAY_DATA, u32(1) + blob(piece)))
            sent += len(piece)
    except OSError:
        pass
    f = ca.expect(RELAY_CLOSE, secs=10)
    out("sent %d KiB; asker got RELAY_CLOSE circuit %d reason %d" % ((sent // 1024,) + struct.unpack(">IH", f[1][:6]))
        if f else "closed")
    f = cb.expect(RELAY_CLOSE, secs=10)
    out("target got RELAY_CLOSE reason %d" % struct.unpack(">H", f[1][4:6]) if f else "target closed")
    ca.then_ping()


def case_as_supernode(a):
    """HELLO role 1 (supernode) with the given certificate."""
    ident = Identity(a.dir, "sn-claim", cert=a.cert, key=a.key) if a.cert else Identity(a.dir, "hostile")
    c = Conn(a.target, ident, a.src, send_hello=False)
    c.send(hello(ROLE_SN))
    c.report()


# ---- identities at addresses ----------------------------------------------------------
class Listener(threading.Thread):
    """Accepts TLS on src:0 with ident's certificate; answers HELLO when asked."""

    def __init__(self, src, ident, serve=None):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind((src, 0))
        self.sock.listen(16)
        self.addr = "%s:%d" % self.sock.getsockname()
        self.ctx, self.serve = server_ctx(ident), serve

    def run(self):
        while True:
            raw, _ = self.sock.accept()
            try:
                c = Conn(None, None, None, send_hello=False, sock=self.ctx.wrap_socket(raw, server_side=True))
                c.send(hello())
                if self.serve:
                    self.serve(c)
                else:
                    c.recv()
            except (ssl.SSLError, OSError, TimeoutError) as e:
                out("listener %s: %s" % (self.addr, getattr(e, "reason", None) or e))
            raw.close()


def case_dialback(a):
    """DIALBACK to: an address where another key answers, one where ours
    does, and the given third-party address. Prints each probe's outcome."""
    me = Identity(a.dir, "hostile")
    other, mine = Listener(a.src, Identity(a.dir, "hostile-other")), Listener(a.src, me)
    other.start(), mine.start()
    c = Conn(a.target, me, a.src)
    c.attach([mine.addr])
    c.send(frame(DIALBACK, u64(99) + addr_list([other.addr, mine.addr, a.third])))
    f = c.expect(DIALBACK_RESULT, ERROR, secs=20)
    if f is None or f[0] == ERROR:
        out("closed" if f is None else fmt_error(f[1]))
        return
    p, outcomes = f[1], []
    n, pos = p[8], 9
    for _ in range(n):
        pos += 7 if p[pos] == 4 else 19
        outcomes.append(p[pos])
        pos += 1
    out("DIALBACK_RESULT outcomes", " ".join(map(str, outcomes)))


def serve_file(c, sf, extra=0):
    """Answer a downloader's MANIFEST_GETs and GETs for sf, at the chunk size
    it asks, until it closes; extra: DATA carries that many bytes more than
    each GET asked for."""
    while True:
        f = c.recv(60)
        if f is None:
            out("downloader closed")
            return
        t, p = f
        if t == ERROR:
            out("downloader:", fmt_error(p))
            c.report_closed()
            return
        if t == MANIFEST_GET:
            cs, first, count = struct.unpack(">III", p[32:44])
            c.send(sf.manifest(first, count, cs))
        elif t == GET:
            cs, first, count = struct.unpack(">III", p[32:44])
            out("GET chunk %d count %d" % (first, count))
            for i in range(first, min(first + count, len(sf.layer(cs)))):
                body = sf.chunk(i, cs)
                if i == first + count - 1:
                    body += b"\0" * extra  # more than asked for
                for off in range(0, len(body), 1 << 18):
                    c.send(frame(DATA, sf.id + u32(i) + u32(off) + blob(body[off:off + (1 << 18)])))


def keep_attached(c):
    """Keep a supernode link alive until killed (PINGs, answers read)."""
    nonce = 1000
    while True:
        time.sleep(1)
        nonce += 1
        c.send(ping(nonce))
        while select.select([c.sock], [], [], 0)[0] or c.sock.pending():
            if c.recv() is None:
                out("supernode closed")
                return


def case_source(a):
    """Attach and publish FILE, then serve it from a listener to downloaders.
    --extra N: DATA carries N bytes more than each GET asked for.
    --listen-as NAME: the listener presents NAME's key, not the one attached."""
    me = Identity(a.dir, a.name)
    sf = SovaFile(open(a.file, "rb").read())
    lst = Listener(a.src, Identity(a.dir, a.listen_as) if a.listen_as else me,
                   lambda c: serve_file(c, sf, a.extra))
    lst.start()
    c = Conn(a.target, me, a.src)
    c.attach([lst.addr])
    c.send(publish([record(os.path.basename(a.file).encode(), sf.id, sf.size)]))
    c.expect(PUBLISH_ACK)
    out("published %s as %s, listening on %s" % (sf.id.hex()[:16], me.id_str, lst.addr))
    keep_attached(c)


# ---- a peer's listener: GET and MANIFEST_GET -------------------------------------------
def case_get(a):
    """MANIFEST_GET or GET (file ID, chunk size, first, count) to a peer;
    print what came back."""
    c = Conn(a.target, Identity(a.dir, "hostile"), a.src)
    fhash = bytes.fromhex(a.hash) if a.hash != "random" else os.urandom(32)
    c.send(chunk_range(MANIFEST_GET if a.manifest else GET, fhash, a.first, a.count, a.chunk_size))
    data = {}
    while True:
        try:
            f = c.recv(secs=2)
        except TimeoutError:
            break
        if f is None or f[0] == ERROR:
            break
        if f[0] == MANIFEST:
            size, = struct.unpack(">Q", f[1][32:40])
            cs, first, n = struct.unpack(">IIH", f[1][72:82])
            root, hashes = f[1][40:72], [f[1][82 + 32 * i:114 + 32 * i] for i in range(n)]
            full = first == 0 and n == (size + cs - 1) // cs
            out("MANIFEST first %d, %d hashes of %d bytes, size %d%s" % (
                first, n, cs, size, ", they make the file ID" if full and file_id(size, root_of(hashes, cs)) == fhash
                else ", size and root make the file ID" if file_id(size, root) == fhash else ""))
        elif f[0] == DATA:
            i = struct.unpack(">I", f[1][32:36])[0]
            data[i] = data.get(i, 0) + struct.unpack(">I", f[1][40:44])[0]
    if data:
        out("DATA chunks %d..%d, %d bytes" % (min(data), max(data), sum(data.values())))
    if f is None:
        out("closed")
        return
    if f is not None and f[0] == ERROR:
        out(fmt_error(f[1]))
    c.then_ping()


def main():
    global SCALE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="HOST:PORT of the supernode or peer")
    ap.add_argument("--src", default="127.0.0.2", help="source address to connect from")
    ap.add_argument("--dir", required=True, help="where identities are kept")
    ap.add_argument("--scale", type=int, default=1, help="multiply every wait (valgrind)")
    sub = ap.add_subparsers(dest="case", required=True)
    cases = {}

    def case(fn, *opts):
        p = sub.add_parser(fn.__name__[5:].replace("_", "-"), help=fn.__doc__)
        for o in opts:
            p.add_argument(o[0], **o[1])
        cases[p.prog.split()[-1]] = fn

    wait = ("--wait", dict(type=float, default=15))
    case(case_garbage)
    case(case_silent, wait)
    case(case_half_handshake, wait)
    case(case_no_hello, wait)
    case(case_tls12)
    case(case_no_cert)
    case(case_hold, ("--n", dict(type=int, required=True)))
    case(case_hold_links, ("--n", dict(type=int, required=True)))
    case(case_raw, ("--hex", dict(default="")), ("--sample", dict()),
         ("--before-hello", dict(action="store_true")), ("--register", dict(action="store_true")))
    case(case_exact_max, ("--max-frame", dict(type=int, required=True)))
    case(case_cut_frame, wait)
    case(case_unknown_ext)
    case(case_truncate, ("--types", dict(default="")))
    case(case_publish, ("--names-hex", dict(default="")), ("--count", dict(type=int, default=0)),
         ("--name", dict(default="hostile")))
    case(case_search_flood, ("--n", dict(type=int, required=True)))
    case(case_ping_flood, ("--n", dict(type=int, required=True)))
    case(case_relay, ("--to", dict(required=True)), ("--origin", dict(default="self")),
         ("--circuit", dict(type=int, default=1)), ("--no-register", dict(action="store_true")))
    case(case_relay_limit, ("--n", dict(type=int, required=True)))
    case(case_punch, ("--to", dict(required=True)), ("--n", dict(type=int, default=20)))
    case(case_relay_overrun, ("--kib", dict(type=int, default=1024)))
    case(case_as_supernode, ("--cert", dict()), ("--key", dict()))
    case(case_dialback, ("--third", dict(required=True)))
    case(case_source, ("--file", dict(required=True)), ("--extra", dict(type=int, default=0)),
         ("--name", dict(default="source")), ("--listen-as", dict()))
    case(case_get, ("--hash", dict(required=True)), ("--first", dict(type=int, default=0)),
         ("--count", dict(type=int, default=1)), ("--manifest", dict(action="store_true")),
         ("--chunk-size", dict(type=int, default=CHUNK)))
    a = ap.parse_args()
    SCALE = a.scale
    try:
        cases[a.case](a)
    except (TimeoutError, ConnectionError, ssl.SSLError) as e:
        out("failed: %s: %s" % (type(e).__name__, e))
        sys.exit(2)


if __name__ == "__main__":
    main()
