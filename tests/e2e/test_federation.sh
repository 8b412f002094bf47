#!/usr/bin/env bash
# Five supernodes, ten peers spread across them: search is routed across the
# federation and downloads work; a SIGKILLed supernode is declared dead
# everywhere, its peers fail over and stay searchable, and when it restarts
# it rejoins; a supernode frozen for 30 s (a partition: its links stay open,
# nothing flows) is declared dead and, healed, converges back to alive.
# (Not run under valgrind: fifteen daemons under memcheck on two cores would
# measure valgrind; test_failover covers the federation code under it.)
source "$(dirname "$0")/lib.sh"
"$FED" init "$WORK/fed" >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A PORT ID
for i in 1 2 3 4 5; do
  "$FED" issue "$WORK/fed" "sn$i" >/dev/null
  PORT[$i]=$(free_port)
  ID[$i]=$("$FED" id "$WORK/fed/sn$i.crt")
done
run_sn() { # I: every supernode is seeded with sn1 only; gossip does the rest
  start "sn$1" "$SN_BIN" --listen "127.0.0.1:${PORT[$1]}" --cert "$WORK/fed/sn$1.crt" \
    --key "$WORK/fed/sn$1.key" --federation-ca "$WORK/fed/root.crt" \
    --state-dir "$WORK/sn$1-state" --peers "127.0.0.1:${PORT[1]}" --summary-interval-ms 300 \
    --keepalive-s 1 --peer-timeout-s 3
}
status_json() { "$SN_BIN" status --control "$WORK/sn$1-state/control.sock" --json; }
# members_in I STATE N: wait until supernode I sees N others in STATE.
members_in() {
  local deadline=$((SECONDS + ${4:-30} * TIME_SCALE))
  while [ $SECONDS -lt $deadline ]; do
    local n
    n=$(status_json "$1" 2>/dev/null | python3 -c '
import json, sys
print(sum(1 for m in json.load(sys.stdin)["members"] if m["state"] == sys.argv[1]))' "$2" || echo -1)
    [ "$n" = "$3" ] && return 0
    sleep 0.2
  done
  fail "sn$1 does not see $3 members $2: $(status_json "$1" | python3 -c 'import json,sys; print([(m["id"][:8], m["state"]) for m in json.load(sys.stdin)["members"]])')"
}
for i in 1 2 3 4 5; do run_sn $i; done
for i in 1 2 3 4 5; do members_in $i alive 4; done
# federation.links / federation.view: what each holds (a full mesh today:
# 4 links, 4 entries; issue 17 bounds both)
fed_counts() {
  local got
  got=$(status_json "$1" | python3 -c 'import json,sys; f=json.load(sys.stdin)["federation"]; print(f["links"], f["view"])')
  echo "sn$1: links and view $got"
  [ "$got" = "4 4" ]
}
for i in 1 2 3 4 5; do wait_until 20 "sn$i to hold 4 supernode links and 4 members" fed_counts $i; done
ok "5 supernodes, seeded with one, all see the 4 others alive (gossip); each holds 4 supernode links and 4 membership entries (status federation.links, federation.view)"

# Ten peers, two per supernode.
for i in $(seq 0 9); do
  sn=$((i % 5 + 1))
  mkdir -p "$WORK/p$i/share"
  start "p$i" "$PEER_BIN" run --state-dir "$WORK/p$i/state" --bootstrap "127.0.0.1:${PORT[$sn]}" \
    --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/p$i/share" \
    --downloads "$WORK/p$i/dl" --rescan-interval-s 1
done
for i in $(seq 0 9); do wait_for "$WORK/p$i.log" "attached to supernode"; done
head -c 3000000 /dev/urandom >"$WORK/p0/share/federated-archive.bin"   # p0 is on sn1
hash=$(file_id "$WORK/p0/share/federated-archive.bin")
wait_for "$WORK/p0.log" "share changed: 1 added"
wait_for "$WORK/sn1.log" "summary version [0-9]+: [1-9]"
# The summary travels to the other supernodes: p3 (on sn4) finds the file once it has.
finds() { "$PEER_BIN" --state-dir "$WORK/$1/state" search $2 | grep -q "$3"; }
wait_until 10 "p3 (on sn4) to find p0's file" finds p3 "federated archive" "^$hash .*federated-archive.bin"
"$PEER_BIN" --state-dir "$WORK/p3/state" get "$hash" >/dev/null || fail "p3 cannot download it"
cmp "$WORK/p0/share/federated-archive.bin" "$WORK/p3/dl/federated-archive.bin" || fail "copy differs"
ok "a file on a peer of sn1 is found by a peer of sn4 and downloads"
fwd=$(status_json 4 | python3 -c 'import json,sys; print(json.load(sys.stdin)["searches_forwarded"])')
[ "$fwd" -ge 1 ] && [ "$fwd" -le 2 ] || fail "sn4 forwarded the search to $fwd supernodes (summaries: expected 1)"
ok "the search went only to the supernode whose summary matched ($fwd forward)"

# SIGKILL sn2: its peers (p1, p6) fail over; everyone marks it dead.
printf 'p1 keeps this\n' >"$WORK/p1/share/phoenix-notes.txt"
wait_for "$WORK/p1.log" "share changed: 1 added"
kill_daemon sn2
for i in 1 3 4 5; do members_in $i dead 1; done
ok "sn2 SIGKILLed: every other supernode declares it dead"
wait_for "$WORK/p1.log" "promoting backup supernode|attached to supernode" 20
wait_for_n "$WORK/p1.log" "attached to supernode" 2 20
wait_until 10 "p1's file to be searchable after sn2 died" finds p8 phoenix "phoenix-notes.txt"
ok "sn2's peers are attached elsewhere and their files searchable again"
run_sn 2
for i in 1 2 3 4 5; do members_in $i alive 4 40; done
ok "sn2 restarted rejoins and is alive everywhere"

# Partition: sn5 frozen for 30 s, then healed.
t_freeze=$SECONDS
kill -STOP "${PID_sn5}"
for i in 1 2 3 4; do members_in $i dead 1 40; done
# The freeze lasts 30 s in all: the scenario's length, not a wait for a condition.
rest=$((30 - (SECONDS - t_freeze)))
[ $rest -le 0 ] || sleep "$rest"
kill -CONT "${PID_sn5}"
for i in 1 2 3 4 5; do members_in $i alive 4 40; done
ok "sn5 cut off for 30 s is declared dead, and alive everywhere again after the heal"

for i in $(seq 0 9); do stop "p$i"; done
for i in 1 2 3 4 5; do stop "sn$i"; done
done_ok
