#!/usr/bin/env python3
"""credit.py - an attacker of Sova's credit, reports and ranking, for
tests/attack/test_credit.sh (issue 13, findings 2, 3 and 11).

Speaks the protocol correctly, with the standard library (hostile.py's
framing and identities, TLS 1.3 through ssl); Ed25519 signatures come from
the openssl command line, as docs/CREDITS.md defines receipts:
Ed25519 over b"sova receipt v2\\0" + downloader + source + file ID + u64
file size + root + u64 bytes, seq, time. A receipt's file is made up: a
root, and the ID that commits to it and to the size (docs/PROTOCOL.md,
"File IDs"), so a receipt passes the size check (bytes <= file size)
whatever it claims, up to the largest file an ID can commit to (2^62).

Identities live in a folder: DIR/NAME.key, DIR/NAME.crt (hostile.py's).

  credit.py farm SN DIR N BENEF
      make N identities farm0..farmN-1 (and BENEF, if new) in DIR; each
      member i hands the supernode a receipt of 1 TiB that member i-1
      signed for it (a ring), and BENEF hands in one receipt of 1 TiB from
      every member, then one of 2^63 bytes of a 2^63-byte file (no file
      ID commits to that much), one of 1 TiB of a 4 MiB file, and four of
      2^62 (the whole of the largest
      file there can be: summed they pass 2^64). Prints "farm N handed R receipts".
  credit.py view SN DIR ME ID_HEX...
      attach as ME and ask CREDIT about the IDs: one line each,
      "view <id prefix> uploaded <u> downloaded <d> credit <c> found <f>",
      credit as seen by ME.
  credit.py id DIR NAME
      print NAME's node ID (hex), making it if new.
  credit.py served PEER_ADDR SOURCE_HEX DIR ME BYTES
      connect to the sova-peer at PEER_ADDR (node ID SOURCE_HEX) as ME and
      send it a RECEIPT for BYTES it served ME: the source hands it to its
      supernode, so ME has downloaded from it (ME's own word, which is all
      a view from ME is made of).
  credit.py hits SN DIR ME HASH_HEX
      a SEARCH by hash: "hits N", then "hit <hash prefix> <size> <src>..."
      (source ID prefixes, best first).
  credit.py report SN DIR ME HASH_HEX SOURCE_HEX [--search]
      REPORT SOURCE for bad data about HASH; with --search, a SEARCH by
      the hash first (as a downloader would: it introduces ME to the
      sources). Prints "reported".
  credit.py standing SN DIR SOURCE REPORTER BYTES
      SOURCE signs a receipt "I received BYTES from REPORTER" and REPORTER
      hands it in: REPORTER now has credit at SOURCE (what it served it).
  credit.py publish SN DIR ME HASH_HEX SIZE NAME
      attach as ME, publish a file record (HASH, SIZE, NAME) with no data
      behind it, and stay attached (PINGs) until killed.
"""
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import hostile  # noqa: E402
from hostile import (CREDIT, ERROR, PONG, PUBLISH_ACK, RECEIPT, RECEIPTS, REPORT,  # noqa: E402
                     SEARCH, SEARCH_RESULT, Conn, Identity, ext, frame, ping, publish, record,
                     u8, u16, u64)

TIB = 1 << 40
ROOT = b"\x73" * 32  # the receipts' file: any root; the ledger keeps bytes per counterparty


def file_id(size, root=ROOT):
    return hashlib.sha256(b"sova file id v2\x00" + struct.pack(">Q", size) + root).digest()


def sign(ident, tbs):
    with tempfile.NamedTemporaryFile() as f:
        f.write(tbs)
        f.flush()
        return subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", ident.key, "-rawin", "-in",
                               f.name], check=True, capture_output=True).stdout


_raw = {}


def raw_key(ident):
    if ident.key not in _raw:
        spki = subprocess.run(["openssl", "pkey", "-in", ident.key, "-pubout", "-outform", "DER"],
                              check=True, capture_output=True).stdout
        _raw[ident.key] = spki[-32:]
    return _raw[ident.key]


_seq = [int(time.time() * 1e6)]


def receipt(down, src_id, nbytes, size=None):
    """down (an Identity) signs that it received nbytes from src_id, of a
    made-up file of size bytes (default nbytes: the whole file)."""
    _seq[0] += 1
    size = nbytes if size is None else size
    fields = (down.id + src_id + file_id(size) + struct.pack(">Q", size) + ROOT
              + struct.pack(">QQQ", nbytes, _seq[0], int(time.time())))
    sig = sign(down, b"sova receipt v2\x00" + fields)
    assert len(sig) == 64
    return fields + raw_key(down) + sig


def attach(sn, ident):
    c = Conn(sn, ident, "127.0.0.1")
    c.attach()
    return c


def sync(c, nonce=4242):
    """Everything sent before was read: a PING is answered after it."""
    c.send(ping(nonce))
    while True:
        f = c.expect(PONG, secs=20)
        if f is None:
            raise SystemExit("closed")
        if struct.unpack(">Q", f[1][:8])[0] == nonce:
            return


def hand_in(sn, source, receipts):
    c = attach(sn, source)
    for i in range(0, len(receipts), 64):
        part = receipts[i:i + 64]
        c.send(frame(RECEIPTS, u8(len(part)) + b"".join(part)))
    sync(c)
    c.sock.close()


def cmd_farm(sn, d, n, benef):
    farm = [Identity(d, "farm%d" % i) for i in range(int(n))]
    b = Identity(d, benef)
    handed = 0
    for i, m in enumerate(farm):  # a ring: member i-1 says it got 1 TiB from i
        hand_in(sn, m, [receipt(farm[i - 1], m.id, TIB)])
        handed += 1
    rs = [receipt(m, b.id, TIB) for m in farm]
    rs.append(receipt(farm[0], b.id, 1 << 63))  # beyond any file: refused
    rs.append(receipt(farm[2], b.id, TIB, size=4 << 20))  # 1 TiB of a 4 MiB file: refused
    rs += [receipt(farm[1 + k], b.id, 1 << 62) for k in range(4)]  # summed past 2^64
    hand_in(sn, b, rs)
    handed += len(rs)
    print("farm %d handed %d receipts" % (len(farm), handed))


def credit_query(c, ids, qid=7):
    c.send(frame(CREDIT, u8(1) + u64(qid) + u8(len(ids)) + b"".join(ids)))
    while True:
        f = c.expect(CREDIT, ERROR, secs=20)
        if f is None:
            raise SystemExit("closed")
        if f[0] == ERROR:
            raise SystemExit(hostile.fmt_error(f[1]))
        p = f[1]
        if p[0] == 2 and struct.unpack(">Q", p[1:9])[0] == qid:
            break
    n, recs, at = p[9], [], 10
    for _ in range(n):
        rid, found = p[at:at + 32], p[at + 32]
        credit, up, down, uptime = struct.unpack(">QQQQ", p[at + 33:at + 65])
        recs.append((rid, found, credit, up, down))
        at += 65
    return recs


def cmd_view(sn, d, me, ids_hex):
    c = attach(sn, Identity(d, me))
    for rid, found, credit, up, down in credit_query(c, [bytes.fromhex(h) for h in ids_hex]):
        print("view %s uploaded %d downloaded %d credit %d found %d"
              % (rid.hex()[:16], up, down, credit, found))


def cmd_served(peer, src_hex, d, me, nbytes):
    ident = Identity(d, me)
    c = Conn(peer, ident, "127.0.0.1")
    c.send(frame(RECEIPT, receipt(ident, bytes.fromhex(src_hex), int(nbytes))))
    sync(c)
    print("sent")


def hash_search(c, fhash, qid=11):
    c.send(frame(SEARCH, u64(qid) + u16(10) + u8(0) + ext(2, fhash)))
    hits = []
    while True:
        f = c.expect(SEARCH_RESULT, ERROR, secs=20)
        if f is None:
            raise SystemExit("closed")
        if f[0] == ERROR:
            raise SystemExit(hostile.fmt_error(f[1]))
        p = f[1]
        if struct.unpack(">Q", p[:8])[0] != qid:
            continue
        flags, n = p[8], struct.unpack(">H", p[9:11])[0]
        at = 11
        for _ in range(n):
            h, size = p[at:at + 32], struct.unpack(">Q", p[at + 32:at + 40])[0]
            nl = struct.unpack(">H", p[at + 40:at + 42])[0]
            at += 42 + nl
            ns, at = p[at], at + 1
            srcs = []
            for _ in range(ns):
                srcs.append(p[at:at + 32])
                na = p[at + 33]
                at += 34
                for _ in range(na):
                    fam = p[at]
                    at += 1 + (4 if fam == 4 else 16) + 2
            hits.append((h, size, srcs))
        if flags & 1:
            return hits


def cmd_hits(sn, d, me, hash_hex):
    c = attach(sn, Identity(d, me))
    hits = hash_search(c, bytes.fromhex(hash_hex))
    print("hits %d" % len(hits))
    for h, size, srcs in hits:
        print("hit %s %d %s" % (h.hex()[:16], size, " ".join(s.hex()[:16] for s in srcs)))


def cmd_report(sn, d, me, hash_hex, src_hex, first_search):
    c = attach(sn, Identity(d, me))
    fhash = bytes.fromhex(hash_hex)
    if first_search:
        hash_search(c, fhash)
    c.send(frame(REPORT, bytes.fromhex(src_hex) + fhash + u8(1)))
    sync(c)
    print("reported")


def cmd_standing(sn, d, source, reporter, nbytes):
    s, r = Identity(d, source), Identity(d, reporter)
    hand_in(sn, r, [receipt(s, r.id, int(nbytes))])
    print("standing")


def cmd_publish(sn, d, me, hash_hex, size, name):
    c = attach(sn, Identity(d, me))
    c.send(publish([record(name.encode(), bytes.fromhex(hash_hex), int(size))]))
    if c.expect(PUBLISH_ACK) is None:
        raise SystemExit("closed")
    print("published", flush=True)
    nonce = 1
    while True:  # stay attached until killed
        time.sleep(1)
        nonce += 1
        c.send(ping(nonce))
        while c.sock.pending() or hostile.select.select([c.sock], [], [], 0)[0]:
            if c.recv() is None:
                raise SystemExit("supernode closed")


def main():
    a = sys.argv[1:]
    if not a:
        raise SystemExit(__doc__)
    cmd = a[0]
    if cmd == "farm":
        cmd_farm(*a[1:5])
    elif cmd == "view":
        cmd_view(a[1], a[2], a[3], a[4:])
    elif cmd == "id":
        print(Identity(a[1], a[2]).id.hex())
    elif cmd == "served":
        cmd_served(*a[1:6])
    elif cmd == "hits":
        cmd_hits(*a[1:5])
    elif cmd == "report":
        cmd_report(a[1], a[2], a[3], a[4], a[5], "--search" in a[6:])
    elif cmd == "standing":
        cmd_standing(*a[1:6])
    elif cmd == "publish":
        cmd_publish(*a[1:7])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
