#!/usr/bin/env python3
"""content.py - sources that lie about content, for tests/attack/test_content.sh
(issue 13, findings 1 and 2: manifest poisoning and size poisoning).

Each attacker is a peer with an identity of its own that speaks the wire
protocol correctly (docs/PROTOCOL.md, with tests/e2e/hostile.py's
encodings): it attaches to a supernode, publishes a real file's ID (the
file's own, computed from FILE, or with another size), and serves from a
listener of its own whatever its mode says. It prints one line per event
("published ...", "MANIFEST_GET ...", "GET ...") for the script to wait on,
and runs until killed.

Modes (what the source answers):
  hashes      a manifest whose size and root are the file's but whose chunk
              hashes are those of garbage of the same size, which it serves
              consistently to GETs (the KaZaA pollution: every chunk would
              "verify" against its own manifest)
  root        the same garbage with its own root: size and root do not make the ID
  size        claims --size bytes (4 TiB by default) in its PUBLISH and manifest
  size-plus   the file's root with a size one chunk larger (a wrong chunk count)
  chunk-size  the file's true layer, but at 64 KiB chunks whatever was asked
  empty-page  a first page of no hash at all, whatever the file's size
  bad-data    the file's true manifest, then garbage for every GET
  close       the file's true manifest, then closes the link at the first GET
  none        publishes and never listens: an address where nobody answers
--count N runs N identities lying the same way (a Sybil crowd) in one process.
"""
import argparse
import hashlib
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import hostile as hx  # noqa: E402
from hostile import (DATA, ERROR, GET, MANIFEST, MANIFEST_GET, PUBLISH_ACK, Conn,  # noqa: E402
                     Identity, Listener, SovaFile, blob, fmt_error, frame, out, publish, record,
                     u16, u32, u64)

TIB4 = 4 << 40


def garbage(size, seed):
    """size bytes nobody shares: the same ones every time for a seed."""
    return hashlib.shake_256(seed).digest(size) if size else b""


def send_data(c, fid, index, body):
    for off in range(0, len(body), 1 << 18):
        c.send(frame(DATA, fid + u32(index) + u32(off) + blob(body[off:off + (1 << 18)])))


def serve(c, a, real, fake):
    """One downloader's link, until it closes it (or we do)."""
    while True:
        f = c.recv(120)
        if f is None:
            out("downloader closed")
            return
        t, p = f
        if t == ERROR:
            out("downloader:", fmt_error(p))
            return
        if t not in (MANIFEST_GET, GET):
            continue
        cs, first, count = struct.unpack(">III", p[32:44])
        if t == MANIFEST_GET:
            out("MANIFEST_GET chunk_size %d first %d count %d" % (cs, first, count))
            m = a.mode
            if m == "hashes":
                c.send(real.manifest(first, count, cs, hashes=fake.layer(cs)))
            elif m == "root":
                c.send(real.manifest(first, count, cs, root=fake.root, hashes=fake.layer(cs)))
            elif m == "size":
                n = (a.size + cs - 1) // cs
                page = [hashlib.sha256(b"%d" % i).digest() for i in range(first, min(n, first + 1024))]
                c.send(real.manifest(first, count, cs, size=a.size, root=fake.root, hashes=[None] * first + page))
            elif m == "size-plus":
                size = real.size + cs
                n = (size + cs - 1) // cs
                c.send(real.manifest(first, count, cs, size=size, hashes=(real.layer(cs) + [real.layer(cs)[-1]] * n)[:n]))
            elif m == "chunk-size":
                other = 65536 if cs != 65536 else 131072
                c.send(real.manifest(first, count, other))
            elif m == "empty-page":
                c.send(frame(MANIFEST, real.id + u64(real.size) + real.root + u32(cs) + u32(first) + u16(0)))
            else:  # bad-data, close: the truth, until the chunks
                c.send(real.manifest(first, count, cs))
        else:
            out("GET chunk %d count %d chunk_size %d" % (first, count, cs))
            if a.mode == "close":
                out("closing at the first GET")
                c.sock.close()
                return
            src = fake if a.mode in ("hashes", "root", "bad-data") else real
            for i in range(first, first + count):
                body = src.chunk(i, cs)
                if not body:
                    break
                send_data(c, real.id, i, body)


def attach_one(a, name, real, fake):
    """One lying identity: its listener, its supernode link, its PUBLISH."""
    me = Identity(a.dir, name)
    if a.mode != "none":
        lst = Listener(a.src, me, lambda c: serve(c, a, real, fake))
        lst.start()
        addr = lst.addr
    else:  # an address where nobody listens: bound, never listening
        dead = socket.socket()
        dead.bind((a.src, 0))
        addr = "%s:%d" % dead.getsockname()
        a.dead = getattr(a, "dead", []) + [dead]
    c = Conn(a.target, me, a.src)
    c.attach([addr])
    c.send(publish([record(os.path.basename(a.file).encode(), real.id, a.size)]))
    f = c.expect(PUBLISH_ACK)
    accepted = struct.unpack(">H", f[1][:2])[0] if f else 0
    out("published %s (%d bytes) as %s, %s, accepted %d" % (real.id.hex(), a.size, me.id_str,
        "listening on " + addr if a.mode != "none" else "listening nowhere", accepted))
    return c


def keep_all_attached(conns):
    """Keep every supernode link alive until killed (PINGs, answers read)."""
    nonce = 1000
    while True:
        time.sleep(1)
        nonce += 1
        for c in conns:
            c.send(hx.ping(nonce))
            while select.select([c.sock], [], [], 0)[0] or c.sock.pending():
                if c.recv() is None:
                    out("supernode closed")
                    return


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="HOST:PORT of the supernode")
    ap.add_argument("--src", default="127.0.0.3", help="address to connect and listen from")
    ap.add_argument("--dir", required=True, help="where identities are kept")
    ap.add_argument("--name", required=True, help="the attacker's identity (a file name in --dir)")
    ap.add_argument("--count", type=int, default=1, help="identities, each lying the same way (NAME-0 ...)")
    ap.add_argument("--file", required=True, help="the real file whose ID is published")
    ap.add_argument("--mode", required=True, choices=["hashes", "root", "size", "size-plus", "chunk-size",
                                                      "empty-page", "bad-data", "close", "none"])
    ap.add_argument("--size", type=int, default=None, help="size published (default: the file's; 4 TiB for mode size)")
    ap.add_argument("--scale", type=int, default=1, help="multiply every wait (valgrind)")
    a = ap.parse_args()
    hx.SCALE = a.scale
    if a.size is None:
        a.size = TIB4 if a.mode == "size" else os.path.getsize(a.file)
    real = SovaFile(open(a.file, "rb").read())
    fake = SovaFile(garbage(real.size, a.name.encode()))
    names = [a.name] if a.count == 1 else ["%s-%d" % (a.name, i) for i in range(a.count)]
    conns = [attach_one(a, n, real, fake) for n in names]
    keep_all_attached(conns)


if __name__ == "__main__":
    main()
