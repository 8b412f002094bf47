#!/usr/bin/env bash
# The keep-alive scales with the peers a supernode carries (max-pings-per-s,
# docs/SCALING.md): within the budget peers are told keepalive-s; beyond it
# the supernode tells each peer a longer interval and timeout at its next
# PING, the peers adopt it, and the supernode drops a silent peer after the
# timeout it told that peer, not the shorter configured one. When peers
# leave, the interval comes back down.
source "$(dirname "$0")/lib.sh"
make_federation
# A budget of one PING a second: 3 peers -> every 3 s, dropped after 12 s.
start_supernode sn --keepalive-s 1 --peer-timeout-s 4 --max-pings-per-s 1
sn_status() {
  "$SN_BIN" status --control "$WORK/sn-state/control.sock" --json |
    python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["peers"], s["keepalive_s"], s["peer_timeout_s"])'
}
peer_keepalive() {
  "$PEER_BIN" --state-dir "$WORK/$1/state" status --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["supernode"]["keepalive_s"])'
}
for name in alice bob carol; do
  mkdir -p "$WORK/$name/share"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "127.0.0.1:$PORT_sn" \
    --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/$name/share"
  wait_for "$WORK/$name.log" "attached to supernode"
done
[ "$(sn_status)" = "3 3 12" ] || fail "3 peers at 1 PING/s should be told 3 s / 12 s; status: $(sn_status)"
ok "beyond the budget the supernode's advice grows: 3 peers, 1 PING/s -> every 3 s, timeout 12 s"

is_told() { [ "$(peer_keepalive "$1")" = "$2" ]; }
for name in alice bob carol; do
  until_ok 10 is_told "$name" 3 || fail "$name was not told the new interval (has $(peer_keepalive "$name"))"
done
ok "each peer was told the new interval at its next PING and keeps it"

# bob goes silent (stopped, links open): past the configured 4 s he stays,
# past the 12 s he was told he is dropped.
kill -STOP "$PID_bob"
sleep 7 # on purpose: past the configured 4 s, and nothing may happen
[ "$(sn_status | cut -d' ' -f1)" = 3 ] || fail "bob was dropped before the timeout he was told"
grep -q "silent for" "$WORK/sn.log" && fail "a peer was dropped early: $(grep 'silent for' "$WORK/sn.log")"
wait_for "$WORK/sn.log" "silent for 1[2-9] s, dropping it" 12
kill -CONT "$PID_bob"
ok "a silent peer is dropped after the timeout it was told (12 s), not the configured 4 s"

stop carol
stop bob
until_ok 10 is_told alice 1 || fail "alice alone was not told 1 s again (has $(peer_keepalive alice))"
[ "$(sn_status)" = "1 1 4" ] || fail "status after the others left: $(sn_status)"
[ "$(grep -c "silent for" "$WORK/sn.log")" = 1 ] || fail "another peer was dropped for silence"
ok "when peers leave the advice comes back down and the last peer is told so"
stop alice
stop sn
done_ok
