#!/usr/bin/env bash
# Backup supernodes and failover: a peer keeps a warm backup session; when
# its primary supernode is SIGKILLed it promotes the backup at once and its
# files are searchable again through the other supernode. A supernode with
# a certificate from another root cannot join the federation.
# valgrind: yes
source "$(dirname "$0")/lib.sh"
make_federation
"$FED" issue "$WORK/fed" sn2 >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(free_port); P2=$(free_port)
run_sn() { # NAME CERT PORT SEEDS
  start "$1" "$SN_BIN" --listen "127.0.0.1:$3" --cert "$WORK/fed/$2.crt" --key "$WORK/fed/$2.key" \
    --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/$1-state" --peers "$4" \
    --keepalive-s 1 --peer-timeout-s 3
}
run_sn sn1 sn1 "$P1" "127.0.0.1:$P2"
run_sn sn2 sn2 "$P2" "127.0.0.1:$P1"
SN1=$("$FED" id "$WORK/fed/sn1.crt"); SN2=$("$FED" id "$WORK/fed/sn2.crt")
wait_for "$WORK/sn1.log" "${SN2:0:8}: supernode link up"
wait_for "$WORK/sn2.log" "${SN1:0:8}: supernode link up"
ok "two supernodes link up over mutual TLS"

mkdir -p "$WORK/alice/share" "$WORK/bob/share"
printf 'failover test data\n' >"$WORK/alice/share/survivor-notes.txt"
start alice "$PEER_BIN" run --state-dir "$WORK/alice/state" --bootstrap "127.0.0.1:$P1" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/alice/share"
start bob "$PEER_BIN" run --state-dir "$WORK/bob/state" --bootstrap "127.0.0.1:$P2" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/bob/share"
wait_for "$WORK/alice.log" "attached to supernode $SN1"
wait_for "$WORK/alice.log" "backup session with supernode $SN2"
"$PEER_BIN" --state-dir "$WORK/alice/state" status | grep -q "^backup        $SN2$" ||
  fail "status does not show the backup: $("$PEER_BIN" --state-dir "$WORK/alice/state" status)"
ok "alice, configured with sn1 only, learns sn2 from SN_LIST and keeps a backup session there"
wait_for "$WORK/bob.log" "published 0 shared files"

kill_daemon sn1
wait_for "$WORK/alice.log" "promoting backup supernode $SN2 to primary"
wait_for_n "$WORK/alice.log" "attached to supernode" 2
grep -q "attached to supernode $SN2" "$WORK/alice.log" || fail "alice did not attach to sn2"
wait_for_n "$WORK/alice.log" "published 1 shared files" 2
survivor_found() { "$PEER_BIN" --state-dir "$WORK/bob/state" search survivor | grep -q "survivor-notes.txt"; }
until_ok 10 survivor_found || fail "alice's file is not searchable through sn2 after the failover"
ok "sn1 SIGKILLed: alice promotes her backup and her files are found through sn2"

# sn1 comes back: alice opens a new backup session to it by herself.
run_sn sn1 sn1 "$P1" "127.0.0.1:$P2"
wait_for_n "$WORK/alice.log" "backup session with supernode $SN1" 1 30
ok "the restarted supernode becomes alice's new backup"

# The host cache: alice restarted with only a dead bootstrap address still
# finds the federation through the supernodes she remembers (SQLite).
stop alice
start alice "$PEER_BIN" run --state-dir "$WORK/alice/state" --bootstrap "127.0.0.1:1" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/alice/share"
wait_for "$WORK/alice.log" "listening on .* \([3-9] supernodes known\)|listening on .* \(2 supernodes known\)"
wait_for_n "$WORK/alice.log" "attached to supernode" 3 30
ok "restarted with a dead bootstrap address, alice attaches through her host cache"

# A full supernode turns a new peer away and names the others.
"$FED" issue "$WORK/fed" sn3 >/dev/null
P3=$(free_port)
start sn3 "$SN_BIN" --listen "127.0.0.1:$P3" --cert "$WORK/fed/sn3.crt" --key "$WORK/fed/sn3.key" \
  --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/sn3-state" --peers "127.0.0.1:$P2" \
  --max-peers 1
SN3=$("$FED" id "$WORK/fed/sn3.crt")
wait_for "$WORK/sn3.log" "${SN2:0:8}: supernode link up"
wait_for "$WORK/sn3.log" "member ${SN1:0:8}: gone -> alive"
for p in dave erin; do
  mkdir -p "$WORK/$p/share"
  start $p "$PEER_BIN" run --state-dir "$WORK/$p/state" --bootstrap "127.0.0.1:$P3" \
    --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/$p/share"
  wait_for "$WORK/$p.log" "attached to supernode"
done
grep -q "attached to supernode $SN3" "$WORK/dave.log" || fail "dave should be on sn3"
wait_for "$WORK/sn3.log" "refused, 1 peers attached \(max-peers\)"
grep -Eq "attached to supernode ($SN1|$SN2)" "$WORK/erin.log" || fail "erin was not redirected"
ok "a full supernode (max-peers) turns the next peer away, naming others; it attaches there"
stop dave
stop erin
stop sn3

# A supernode certified by another root cannot join.
"$FED" init "$WORK/rogue" >/dev/null
"$FED" issue "$WORK/rogue" evil >/dev/null
start evil "$SN_BIN" --listen 127.0.0.1:0 --cert "$WORK/rogue/evil.crt" --key "$WORK/rogue/evil.key" \
  --federation-ca "$WORK/rogue/root.crt" --state-dir "$WORK/evil-state" --peers "127.0.0.1:$P2"
wait_for "$WORK/evil.log" "TLS handshake failed: .*does not chain to the federation root"
EVIL=$("$FED" id "$WORK/rogue/evil.crt")
sleep 1 # on purpose: time for a link that must not come up (nothing to wait for)
grep -q "${EVIL:0:8}: supernode link up" "$WORK/sn2.log" && fail "a rogue supernode joined"
ok "a supernode with a certificate from another root cannot join"

stop alice
stop bob
stop evil
stop sn1
stop sn2
done_ok
