#!/usr/bin/env bash
# A peer attaches to a real supernode over TLS 1.3 (policy b); bad input and
# bad certificates close only the offending link, never the daemon or
# another peer's session.
# valgrind: yes
source "$(dirname "$0")/lib.sh"
make_federation
start_supernode sn
SN_ID=$("$FED" id "$WORK/fed/sn1.crt")
grep -q "supernode $SN_ID listening" "$WORK/sn.log" || fail "supernode did not log its ID"
ok "supernode starts and logs its node ID ($SN_ID)"

start p1 "$PEER_BIN" run --state-dir "$WORK/p1" --bootstrap "127.0.0.1:$PORT_sn" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0
wait_for "$WORK/p1.log" "attached to supernode $SN_ID"
P1_ID=$("$PEER_BIN" --state-dir "$WORK/p1" id)
wait_for "$WORK/sn.log" "${P1_ID:0:8}: registered from 127\.0\.0\.1:"
ok "peer attaches; each side learns the other's ID from TLS"

# Garbage after a good TLS handshake: an ERROR frame back, the link closed,
# the supernode still serving, peer 1 untouched.
"$PEER_BIN" --state-dir "$WORK/rogue" id >/dev/null
# (-quiet keeps reading after our bytes until the supernode closes the link,
# which it does after each of these ERRORs; timeout bounds it.)
send_raw() { # send_raw HEXBYTES: TLS as a self-signed peer, write bytes, print reply as hex
  printf '%b' "$1" | timeout 10 openssl s_client -quiet \
    -connect "127.0.0.1:$PORT_sn" -cert "$WORK/rogue/node.crt" -key "$WORK/rogue/node.key" \
    -CAfile "$WORK/fed/root.crt" 2>/dev/null | od -An -tx1 | tr -d ' \n' || true
}
reply=$(send_raw '\x00\x00\x00\x00')
# ERROR is type 0x02; code 12 = bad length (docs/PROTOCOL.md). Our HELLO (type 1) may come first.
grep -Eq '02000c' <<<"$reply" || fail "no ERROR(bad length) frame in reply: $reply"
wait_for "$WORK/sn.log" "malformed frame: frame.length"
ok "a zero-length frame gets ERROR(bad length), a log line, and a closed link"

reply=$(send_raw '\x7f\xff\xff\xff\x01')
grep -Eq '02000b' <<<"$reply" || fail "no ERROR(too large) frame in reply: $reply"
ok "an oversized frame gets ERROR(too large)"

reply=$(send_raw '\x00\x00\x00\x03\x01\x00\x01')
grep -Eq '02000a' <<<"$reply" || fail "no ERROR(truncated) for a truncated HELLO: $reply"
wait_for "$WORK/sn.log" "malformed hello frame"
ok "a truncated HELLO gets ERROR(truncated) naming the field"

kill -0 "$PID_sn" || fail "supernode died"
grep -q "${P1_ID:0:8}: peer left" "$WORK/sn.log" && fail "peer 1 lost its session"
ok "the supernode survives and peer 1 keeps its session"

# A supernode whose certificate comes from another root: the peer refuses it.
"$FED" init "$WORK/rogue-fed" >/dev/null
"$FED" issue "$WORK/rogue-fed" evil >/dev/null
start evil "$SN_BIN" --listen 127.0.0.1:0 --cert "$WORK/rogue-fed/evil.crt" \
  --key "$WORK/rogue-fed/evil.key" --federation-ca "$WORK/rogue-fed/root.crt" \
  --state-dir "$WORK/evil-state"
wait_for "$WORK/evil.log" "listening on 127\.0\.0\.1:[0-9]+"
evil_port=$(grep -Eo "listening on 127\.0\.0\.1:[0-9]+" "$WORK/evil.log" | sed 's/.*://')
start p2 "$PEER_BIN" run --state-dir "$WORK/p2" --bootstrap "127.0.0.1:$evil_port" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0
wait_for "$WORK/p2.log" "TLS handshake failed: .*does not chain to the federation root"
grep -q "attached" "$WORK/p2.log" && fail "peer attached to a supernode of another federation"
ok "a peer refuses a supernode certificate from another root"

# A self-signed node claiming the supernode role in its HELLO is refused.
reply=$(send_raw '\x00\x00\x00\x0c\x01\x00\x02\x00\x02\x00\x00\x00\x00\x01\x00\x00')
grep -Eq '020069' <<<"$reply" || fail "no ERROR(unauthorized) for a fake supernode: $reply"
wait_for "$WORK/sn.log" "claims to be a supernode but"
ok "a self-signed node claiming the supernode role gets ERROR(unauthorized)"

stop p1
wait_for "$WORK/sn.log" "${P1_ID:0:8}: peer left"
ok "peer stops cleanly on SIGTERM and the supernode notices"
stop sn
ok "supernode stops cleanly on SIGTERM"
done_ok
