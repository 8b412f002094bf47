#!/usr/bin/env bash
# Attacks on trust (issue 13, findings 6, 7, 10, 13), each against real
# daemons, each followed by a well-behaved pair (alice shares, bob searches
# and downloads) checked byte for byte:
#  - names a terminal would obey (ESC, BEL, CR/LF, C1, DEL, bidi overrides)
#    published: refused with ERROR 111, never in a hit, never raw in a log;
#  - ECDSA keys: a peer refused by the supernode and by a peer, a
#    root-signed ECDSA "supernode" refused by a peer, each counted;
#  - reflection: a peer registers a third party's address and points
#    CONNECTs and downloaders at it: the third party is never contacted;
#  - local trust: a state folder another user owns or may write to, a key
#    of another user: the daemons refuse to start; a control socket of
#    another user: the CLI does not believe it.
source "$(dirname "$0")/../e2e/lib.sh"
TRUST=$SOVA_SRC/tests/attack/trust.py
make_federation
start_supernode sn
SN=127.0.0.1:$PORT_sn
CASES=0
case_ok() { CASES=$((CASES + 1)); ok "attack: $*"; }

start_peer() {
  local name=$1; shift
  mkdir -p "$WORK/$name/share" "$WORK/$name/dl"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "$SN" \
    --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --upnp no \
    --share "$WORK/$name/share" --downloads "$WORK/$name/dl" --rescan-interval-s 1 "$@"
}
peer() { local name=$1; shift; "$PEER_BIN" --state-dir "$WORK/$name/state" "$@"; }
snj() { # snj A.B.C: a number from `sova-supernode status --json`, 0 when absent
  "$SN_BIN" status --control "$WORK/sn-state/control.sock" --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(v)' "$1"
}
tr() { python3 "$TRUST" --dir "$WORK/tr" --scale "$TIME_SCALE" "$@"; }
# the ID of the first hit of bob's search for WORDS
hit_id() { peer bob search --json "$@" | python3 -c '
import json, sys
hits = json.load(sys.stdin).get("hits", [])
print(hits[0]["id"] if hits else "")'; }

start_peer alice
start_peer bob
wait_for "$WORK/alice.log" "attached to supernode"
wait_for "$WORK/bob.log" "attached to supernode"
ROUND=0
# well_behaved: alice shares a new file, bob finds it and gets it intact.
well_behaved() {
  ROUND=$((ROUND + 1))
  local f="honest round$ROUND.bin" id
  head -c $((1048576 + ROUND * 4099)) /dev/urandom >"$WORK/alice/share/$f"
  wait_until 30 "bob finding round$ROUND" has_hit round$ROUND
  id=$(hit_id round$ROUND)
  peer bob get "$id" >"$WORK/bob-get.out" 2>&1 || fail "bob's get failed: $(cat "$WORK/bob-get.out")"
  cmp "$WORK/alice/share/$f" "$WORK/bob/dl/$f" || fail "bob's copy of $f differs"
}
has_hit() { [ -n "$(hit_id "$@")" ]; }
well_behaved
ok "a well-behaved pair searches and downloads (round $ROUND)"

# ---- 6. names a terminal would obey ----------------------------------------------------------
tr --target "$SN" names --hold 30 >"$WORK/names-attack.out" 2>&1 &
namer=$!
PIDS="${PIDS:-} $namer"
wait_until 20 "the names published" grep -q "^name safe" "$WORK/names-attack.out"
got=$(cat "$WORK/names-attack.out")
echo "$got"
for n in esc-title clear bell fake-line c1-csi rlo lri del; do
  grep -qx "name $n accepted 0 rejected 1 first_error 111 error 111" <<<"$got" ||
    fail "unsafe name $n not refused with 111: $got"
done
grep -qx "name safe accepted 1 rejected 0" <<<"$got" || fail "a safe name was refused: $got"
# searching finds the safe name only, and nothing printed carries a control byte
has_safe() { peer bob search holiday | grep -q safe; }
until_ok 10 has_safe || fail "the safe name is not found"
peer bob search holiday evil >"$WORK/names.out" 2>&1 || true
grep -q "evil" "$WORK/names.out" && fail "an unsafe name is in a hit: $(cat -v "$WORK/names.out")"
LC_ALL=C grep -qP '[\x00-\x08\x0b-\x1f\x7f]' "$WORK/sn.log" && fail "a control byte is raw in the supernode's log"
kill "$namer" 2>/dev/null || true
well_behaved
case_ok "names with ESC, BEL, CR/LF, C1, DEL and bidi overrides refused (ERROR 111), none in a hit or raw in a log; a safe UTF-8 name accepted"

# ---- 7. keys that are not Ed25519 ------------------------------------------------------------
before=$(snj links.handshake_failures.key_type)
r=$(tr --target "$SN" ecdsa-client)
[[ $r == refused* ]] || fail "an ECDSA peer was accepted by the supernode: $r"
counted() { [ "$(snj links.handshake_failures.key_type)" -gt "$before" ]; }
wait_until 10 "the supernode counting the key_type refusal" counted
grep -q "not Ed25519" "$WORK/sn.log" || fail "the supernode's log does not say why"
ALICE_PORT=$(grep -Eo "listening on 127\.0\.0\.1:[0-9]+" "$WORK/alice.log" | head -1 | sed 's/.*://')
r=$(tr --target "127.0.0.1:$ALICE_PORT" ecdsa-client)
[[ $r == refused* ]] || fail "an ECDSA peer was accepted by alice: $r"
# a "supernode" whose ECDSA certificate the federation root signed: a new
# peer bootstrapping from it refuses it and never attaches there
tr --target x ecdsa-server --root-crt "$WORK/fed/root.crt" --root-key "$WORK/fed/root.key" \
  --wait $((20 * TIME_SCALE)) >"$WORK/ecdsa-sn.out" 2>&1 &
helper_pid=$!
PIDS="${PIDS:-} $helper_pid"
wait_until 10 "the ECDSA supernode listening" grep -q "^port " "$WORK/ecdsa-sn.out"
EPORT=$(sed -n 's/^port //p' "$WORK/ecdsa-sn.out")
mkdir -p "$WORK/carol/share" "$WORK/carol/dl"
start carol "$PEER_BIN" run --state-dir "$WORK/carol/state" --bootstrap "127.0.0.2:$EPORT" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --upnp no \
  --share "$WORK/carol/share" --downloads "$WORK/carol/dl"
wait_until 30 "carol refusing the ECDSA supernode" grep -q "not Ed25519" "$WORK/carol.log"
grep -q "attached to supernode" "$WORK/carol.log" && fail "carol attached to the ECDSA supernode"
stop carol
well_behaved
case_ok "ECDSA keys refused: a peer by the supernode (counted key_type) and by a peer, a root-signed ECDSA supernode by a peer"

# ---- 10. no reflection -----------------------------------------------------------------------
BOB_ID=$(peer bob id)
tr --target "$SN" --src 127.0.0.2 reflect --third 127.0.0.9 --victim "$BOB_ID" \
  --name "reflected bait" --wait $((10 * TIME_SCALE)) >"$WORK/reflect.out" 2>&1 &
refl=$!
PIDS="${PIDS:-} $refl"
wait_until 15 "the reflector ready" grep -q "^ready" "$WORK/reflect.out"
# bob also tries to download the bait: he may dial the reflector's own
# address, never the third party's
until_ok 10 has_hit reflected bait || fail "the bait is not found"
timeout $((15 * TIME_SCALE)) "$PEER_BIN" --state-dir "$WORK/bob/state" get "$(hit_id reflected bait)" \
  >"$WORK/bait.out" 2>&1 || true
wait "$refl" || true
cat "$WORK/reflect.out"
grep -qx "third party connections 0" "$WORK/reflect.out" ||
  fail "the third party was contacted: $(cat "$WORK/reflect.out")"
grep -q "claimed addresses neither proved nor on its own IP: not handed out" "$WORK/sn.log" ||
  fail "the supernode did not drop the bare claim"
well_behaved
case_ok "a bare address claim is never handed out: CONNECT and a download of the bait never reach the third party"

# ---- 13. local trust -------------------------------------------------------------------------
nobody_uid=$(id -u nobody)
mkdir -p "$WORK/open" && chmod 1777 "$WORK/open"
out=$("$PEER_BIN" run --state-dir "$WORK/open" --bootstrap "$SN" --federation-ca "$WORK/fed/root.crt" \
  --listen 127.0.0.1:0 --upnp no 2>&1) && fail "sova-peer started in a world-writable folder"
grep -q "writable by everyone" <<<"$out" || fail "no clear error: $out"
mkdir -p "$WORK/theirs" && chown nobody "$WORK/theirs" && chmod 700 "$WORK/theirs"
out=$("$PEER_BIN" run --state-dir "$WORK/theirs" --bootstrap "$SN" --federation-ca "$WORK/fed/root.crt" \
  --listen 127.0.0.1:0 --upnp no 2>&1) && fail "sova-peer started in another user's folder"
grep -q "belongs to user $nobody_uid" <<<"$out" || fail "no clear error: $out"
out=$("$SN_BIN" --listen 127.0.0.1:0 --cert "$WORK/fed/sn1.crt" --key "$WORK/fed/sn1.key" \
  --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/open" 2>&1) &&
  fail "sova-supernode started in a world-writable folder"
grep -q "writable by everyone" <<<"$out" || fail "no clear error: $out"
cp "$WORK/fed/sn1.key" "$WORK/theirs.key" && chown nobody "$WORK/theirs.key" && chmod 600 "$WORK/theirs.key"
out=$("$SN_BIN" --listen 127.0.0.1:0 --cert "$WORK/fed/sn1.crt" --key "$WORK/theirs.key" \
  --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/sn2-state" 2>&1) &&
  fail "sova-supernode started with another user's key"
grep -q "belongs to user $nobody_uid" <<<"$out" || fail "no clear error: $out"
# a planted control socket: a fake "daemon" of root answers anything; a
# user (nobody) pointing the CLI at it is not fooled
mkdir -p "$WORK/planted" && chmod 755 "$WORK/planted"
chmod 711 "$WORK" # nobody may reach the planted socket (but list nothing)
python3 - "$WORK/planted/control.sock" >"$WORK/fake.out" 2>&1 <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666); s.listen()
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b'{"download": {"path": "/tmp/x", "size": 1, "via": "direct"}, "ok": true, "done": true}\n')
    c.close()
PY
fake=$!
PIDS="${PIDS:-} $fake"
wait_until 10 "the fake daemon" grep -q listening "$WORK/fake.out"
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$PEER_BIN" --state-dir "$WORK/planted" \
  get 0000000000000000000000000000000000000000000000000000000000000000 2>&1) &&
  fail "the CLI believed another user's daemon: $out"
grep -q "runs as user 0, not as you ($nobody_uid)" <<<"$out" || fail "no clear refusal: $out"
grep -q "saved" <<<"$out" && fail "the CLI printed the fake daemon's answer: $out"
well_behaved
case_ok "local trust: a world-writable or foreign state folder and a foreign key refused at start, a planted control socket not believed"

stop alice
stop bob
stop sn
echo "attack cases: $CASES passed"
done_ok
