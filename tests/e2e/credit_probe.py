#!/usr/bin/env python3
"""credit_probe.py - a peer that hands crafted credit receipts to a
supernode or to a sova-peer, for tests/e2e/test_credits_ledger.sh.

Speaks the wire protocol of docs/PROTOCOL.md with the standard library
(TLS 1.3 through ssl); keys, certificates and Ed25519 signatures come from
the openssl command line. Receipts are signed as docs/CREDITS.md says:
Ed25519 over b"sova receipt v2\\0" + downloader + source + file ID + u64
file size + root + u64 bytes, seq, time; the file ID commits to the size
and root (docs/PROTOCOL.md, "File IDs"), so the probe's file is a made-up
4 MiB one whose ID it computes.

  credit_probe.py key DIR               make DIR/key.pem, DIR/cert.pem; print the node ID (hex)
  credit_probe.py sn HOST:PORT SRC DL OTHER
      attach to a supernode as SRC and hand it, one frame each: a good
      receipt from DL (1 MiB, seq 1), the same with bytes changed (forged),
      the good one again (replayed), one in DL's name signed by OTHER (wrong
      key), one in DL's name with DL's key but OTHER's signature (forged);
      then print "credit <uploaded> <credit> <found>" for SRC as read back.
  credit_probe.py read HOST:PORT ME ID   attach as ME, print "credit <uploaded> <credit> <found>" of ID (hex)
  credit_probe.py oversize HOST:PORT SRC DL
      attach to a supernode as SRC and hand it two receipts DL signed: 1 TiB
      of a 4 MiB file, and 1 MiB of a file claimed to be 1 TiB whose ID
      commits to 4 MiB; then print SRC's credit as read back.
  credit_probe.py give HOST:PORT SRC BYTES DL...
      attach to a supernode as SRC and hand it one good receipt of BYTES
      from each DL (key folders), seq the time in microseconds, of a file of
      BYTES bytes (its ID committing to that size).
  credit_probe.py peer HOST:PORT SRC_ID DL OTHER
      connect to a sova-peer (the source, whose node ID is SRC_ID) as DL and
      send RECEIPTs: good, replayed, forged, wrong key.
"""
import hashlib
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

HELLO, PING, PONG = 0x01, 0x03, 0x04
FILE_SIZE = 4 << 20  # the receipts' file: a receipt's bytes must fit in it
BYTES_AT, SIG_AT = 136, 192  # offsets of bytes and signature in a receipt (256 bytes)
REGISTER, REGISTERED, RECEIPTS, CREDIT, RECEIPT = 0x10, 0x11, 0x1E, 0x1F, 0x54


def run(*args, data=None):
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


def keygen(d):
    os.makedirs(d, exist_ok=True)
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    if not os.path.exists(key):
        run("openssl", "genpkey", "-algorithm", "ed25519", "-out", key)
        run("openssl", "req", "-new", "-x509", "-key", key, "-subj", "/CN=sova-peer", "-days", "2",
            "-out", cert)
    return ident(d)


def ident(d):
    spki = run("openssl", "pkey", "-in", os.path.join(d, "key.pem"), "-pubout", "-outform", "DER")
    return hashlib.sha256(spki).digest(), spki[-32:]


def sign(d, tbs):
    with tempfile.NamedTemporaryFile() as f:
        f.write(tbs)
        f.flush()
        return run("openssl", "pkeyutl", "-sign", "-inkey", os.path.join(d, "key.pem"), "-rawin",
                   "-in", f.name)


def receipt(down, src, nbytes, seq, signer=None, key_of=None, size=FILE_SIZE, id_size=None):
    """A receipt from downloader dir `down` to source id `src`, signed by
    `signer` (default down), carrying the key of `key_of` (default signer),
    for a file of `size` bytes whose ID commits to `id_size` (default size)."""
    signer = signer or down
    key_of = key_of or signer
    down_id, _ = ident(down)
    _, raw = ident(key_of)
    root = b"\x73" * 32
    fid = hashlib.sha256(b"sova file id v2\x00" + struct.pack(">Q", id_size or size) + root).digest()
    fields = (down_id + src + fid + struct.pack(">Q", size) + root
              + struct.pack(">QQQ", nbytes, seq, int(time.time())))
    sig = sign(signer, b"sova receipt v2\x00" + fields)
    assert len(sig) == 64
    return fields + raw + sig


class Link:
    def __init__(self, where, d, role=2):
        host, port = where.rsplit(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
        self.s = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10))
        self.buf = b""
        agent = b"credit-probe"
        self.send(HELLO, struct.pack(">HHIBH", 2, 2, 0, role, len(agent)) + agent)
        self.expect(HELLO)

    def send(self, t, payload):
        self.s.sendall(struct.pack(">IB", len(payload) + 1, t) + payload)

    def recv(self):
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    t, p = self.buf[4], self.buf[5:4 + n]
                    self.buf = self.buf[4 + n:]
                    if t == PING:
                        self.send(PONG, p)
                        continue
                    return t, p
            data = self.s.recv(65536)
            if not data:
                raise SystemExit("closed")
            self.buf += data

    def expect(self, t):
        while True:
            got, p = self.recv()
            if got == t:
                return p

    def register(self):
        self.send(REGISTER, bytes([1, 0, 0]))
        self.expect(REGISTERED)

    def credit(self, peer_id):
        self.send(CREDIT, bytes([1]) + struct.pack(">Q", 7) + bytes([1]) + peer_id)
        while True:
            p = self.expect(CREDIT)
            if p[0] == 2 and struct.unpack(">Q", p[1:9])[0] == 7:
                rec = p[10:10 + 65]
                found = rec[32]
                credit, uploaded = struct.unpack(">QQ", rec[33:49])
                return uploaded, credit, found


def main():
    cmd = sys.argv[1]
    if cmd == "key":
        print(keygen(sys.argv[2])[0].hex())
    elif cmd == "sn":
        where, src, down, other = sys.argv[2:6]
        src_id = ident(src)[0]
        link = Link(where, src)
        link.register()
        good = receipt(down, src_id, 1048576, 1)
        forged = bytearray(good)
        forged[BYTES_AT:BYTES_AT + 8] = struct.pack(">Q", 2 * 1048576)  # bytes, after signing
        wrong_key = receipt(down, src_id, 1048576, 3, signer=other)  # OTHER's key in DL's name
        wrong_sig = bytearray(receipt(down, src_id, 1048576, 4))
        wrong_sig[SIG_AT:] = receipt(other, src_id, 1048576, 4)[SIG_AT:]
        for r in (good, bytes(forged), good, wrong_key, bytes(wrong_sig)):
            link.send(RECEIPTS, bytes([1]) + r)
        # The good receipt reaches the record's holders (R of the supernodes)
        # a moment later: read until it shows, for at most 20 s.
        deadline = time.monotonic() + 20
        got = link.credit(src_id)
        while got[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
            got = link.credit(src_id)
        print("credit %d %d %d" % got)
    elif cmd == "oversize":
        where, src, down = sys.argv[2:5]
        src_id = ident(src)[0]
        link = Link(where, src)
        link.register()
        too_many = receipt(down, src_id, 1 << 40, 10)
        size_lie = receipt(down, src_id, 1048576, 11, size=1 << 40, id_size=FILE_SIZE)
        link.send(RECEIPTS, bytes([2]) + too_many + size_lie)
        print("credit %d %d %d" % link.credit(src_id))
    elif cmd == "read":
        where, me, hexid = sys.argv[2:5]
        link = Link(where, me)
        link.register()
        print("credit %d %d %d" % link.credit(bytes.fromhex(hexid)))
    elif cmd == "give":
        where, src, nbytes = sys.argv[2:5]
        link = Link(where, src)
        link.register()
        src_id = ident(src)[0]
        for down in sys.argv[5:]:
            link.send(RECEIPTS, bytes([1]) + receipt(down, src_id, int(nbytes),
                                                     int(time.time() * 1e6), size=int(nbytes)))
        link.send(PING, struct.pack(">Q", 99))
        link.expect(PONG)  # everything before it was read
        print("gave %d" % len(sys.argv[5:]))
    elif cmd == "peer":
        where, src_hex, down, other = sys.argv[2:6]
        src_id = bytes.fromhex(src_hex)
        link = Link(where, down)
        good = receipt(down, src_id, 1048576, 1)
        forged = bytearray(good)
        forged[BYTES_AT:BYTES_AT + 8] = struct.pack(">Q", 2 * 1048576)
        wrong_key = receipt(down, src_id, 1048576, 3, signer=other)
        for r in (good, good, bytes(forged), wrong_key):
            link.send(RECEIPT, r)
        link.send(PING, struct.pack(">Q", 99))
        link.expect(PONG)  # everything before it was read
        print("sent 4")


if __name__ == "__main__":
    main()
