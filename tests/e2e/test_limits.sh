#!/usr/bin/env bash
# Per-peer limits: records beyond the index limits are refused with a clear
# ERROR, the rest stay searchable, and the peer's session goes on; a search
# flood is answered ERROR(rate limited) with empty results; connections from
# one address beyond its cap are closed before TLS, counted, and the peer
# already attached from there keeps working.
# valgrind: yes
source "$(dirname "$0")/lib.sh"
make_federation
start_supernode sn --max-files-per-peer 2 --search-rate 2 --max-conns-per-ip 3
mkdir -p "$WORK/alice/share"
for n in one two three; do printf '%s\n' "$n" >"$WORK/alice/share/limit-$n.txt"; done
start alice "$PEER_BIN" run --state-dir "$WORK/alice/state" --bootstrap "127.0.0.1:$PORT_sn" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/alice/share"
wait_for "$WORK/sn.log" "PUBLISH: 1 of 3 records rejected: .* \(limits: 2 files"
wait_for "$WORK/alice.log" "remote reports error 101 \(limit reached\): 1 of 3 records rejected"
wait_for "$WORK/alice.log" "supernode rejected 1 published records \(first: limit reached\)"
ok "a record beyond the per-peer file limit gets ERROR(limit reached) naming the limit"
n=$("$PEER_BIN" --state-dir "$WORK/alice/state" status --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["published"])')
[ "$n" = 2 ] || fail "alice should have 2 records accepted, has $n"
kill -0 "$PID_sn" && kill -0 "$PID_alice" || fail "a daemon died"
grep -q "peer left" "$WORK/sn.log" && fail "alice lost her session over a limit"
ok "the accepted records count, and the session stays up"

# A search flood: 2 a second with bursts of 4 are served, the rest refused.
for i in $(seq 12); do "$PEER_BIN" --state-dir "$WORK/alice/state" search limit one >/dev/null 2>&1 || true; done
wait_for "$WORK/sn.log" "too many searches \(search-rate\)"
wait_for "$WORK/alice.log" "remote reports error 102 \(rate limited\): too many searches"
abuse() {
  "$SN_BIN" status --control "$WORK/sn-state/control.sock" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["abuse"][sys.argv[1]])' "$1"
}
limited=$(abuse rate_limited)
[ "$limited" -ge 6 ] || fail "expected most of 12 searches refused at 2/s, $limited were"
# The bucket fills again: a search is served without a new refusal.
served() {
  local before
  before=$(abuse rate_limited)
  "$PEER_BIN" --state-dir "$WORK/alice/state" search limit one >/dev/null 2>&1 || true
  [ "$(abuse rate_limited)" = "$before" ]
}
wait_until 5 "alice's searches to be served again after the flood" served
ok "a search flood gets ERROR(rate limited) ($limited refused) and empty answers; served again after"

# Connections from one address: alice has 1, two more fit, the third does not.
python3 - "$PORT_sn" "$SN_BIN" "$WORK/sn-state/control.sock" <<'PY' || fail "the per-address cap did not hold"
import json, socket, subprocess, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
# Until the supernode holds both (they wait in their TLS handshake).
deadline = time.monotonic() + 10
while True:
    st = json.loads(subprocess.run([sys.argv[2], "status", "--control", sys.argv[3], "--json"],
                                   capture_output=True, check=True).stdout)
    if st["abuse"]["handshaking"] >= 2:
        break
    assert time.monotonic() < deadline, "the supernode did not take the two connections: %r" % st["abuse"]
    time.sleep(0.05)
extra = socket.create_connection(("127.0.0.1", port))
extra.settimeout(3)
assert extra.recv(1) == b"", "the connection over the cap was not closed"
for s in held:
    s.settimeout(0.3)
    try:
        s.recv(1)
        raise SystemExit("a connection within the cap was closed")
    except socket.timeout:
        pass
PY
[ "$(abuse refused_per_ip)" -ge 1 ] || fail "the refusal was not counted"
wait_for "$WORK/sn.log" "over max-conns-per-ip \(3\)"
n=$("$PEER_BIN" --state-dir "$WORK/alice/state" status --json |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["supernode"]["attached"])')
[ "$n" = True ] || fail "alice lost her supernode"
ok "a connection over max-conns-per-ip is closed before TLS and counted; alice is unaffected"
stop alice
stop sn
done_ok
