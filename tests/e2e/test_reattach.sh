#!/usr/bin/env bash
# Identity is the key, not the address: a peer that comes back from another
# address keeps its ID and its files stay searchable; a restarted supernode
# gets its peers back (they re-attach and republish by themselves).
# valgrind: yes
source "$(dirname "$0")/lib.sh"
make_federation
start_supernode sn

run_peer() { # NAME LISTEN_IP
  local name=$1 ip=$2
  mkdir -p "$WORK/$name/share"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "127.0.0.1:$PORT_sn" \
    --federation-ca "$WORK/fed/root.crt" --listen "$ip:0" --share "$WORK/$name/share" \
    --downloads "$WORK/$name/dl"
}
peer() { local name=$1; shift; "$PEER_BIN" --state-dir "$WORK/$name/state" "$@"; }

printf 'traveller data\n' >"$WORK/data.txt"
mkdir -p "$WORK/alice/share"
cp "$WORK/data.txt" "$WORK/alice/share/roaming-notes.txt"
run_peer alice 127.0.0.2
run_peer bob 127.0.0.1
wait_for "$WORK/alice.log" "published 1 shared files"
wait_for "$WORK/bob.log" "attached to supernode"
ALICE=$(peer alice id)
wait_for "$WORK/sn.log" "${ALICE:0:8}: registered from 127\.0\.0\.2:"
peer bob search roaming | grep -q "roaming-notes.txt" || fail "bob cannot find alice's file"
ok "alice attaches from 127.0.0.2"

# alice moves: same state directory (same key), new address.
stop alice
wait_for "$WORK/sn.log" "${ALICE:0:8}: peer left"
run_peer alice 127.0.0.3
wait_for "$WORK/sn.log" "${ALICE:0:8}: registered from 127\.0\.0\.3:"
[ "$(peer alice id)" = "$ALICE" ] || fail "alice's ID changed"
wait_for_n "$WORK/alice.log" "published 1 shared files" 2
found() { peer bob search roaming | grep -q "roaming-notes.txt"; }
until_ok 10 found || fail "alice's file is gone after the move"
hash=$(file_id "$WORK/data.txt")
peer bob get "$hash" >/dev/null || fail "bob cannot download from alice's new address"
cmp "$WORK/data.txt" "$WORK/bob/dl/roaming-notes.txt" || fail "download differs"
ok "alice returns from 127.0.0.3 with the same ID; her file is found and downloads from there"

# A second session of the same ID replaces the first (one identity, one entry).
n=$("$SN_BIN" status --control "$WORK/sn-state/control.sock" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"])')
[ "$n" = 2 ] || fail "supernode counts $n peers, expected 2"
ok "the supernode holds one session per peer ID"

# The supernode restarts on the same port: peers come back by themselves.
stop sn
wait_for "$WORK/alice.log" "primary supernode link .* closed"
start "sn" "$SN_BIN" --listen "127.0.0.1:$PORT_sn" --cert "$WORK/fed/sn1.crt" \
  --key "$WORK/fed/sn1.key" --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/sn-state"
wait_for_n "$WORK/alice.log" "published 1 shared files" 3 40
wait_for_n "$WORK/bob.log" "attached to supernode" 2 40
until_ok 10 found || fail "search fails after the supernode restart"
ok "after a supernode restart, peers re-attach and republish without help"

stop alice
stop bob
stop sn
done_ok
