#!/usr/bin/env bash
# test_nat_faults.sh - NAT traversal when the network changes under it, on
# real NATs (docs/NATBED.md):
#  1. the router's miniupnpd restarts and forgets every mapping: the peer
#     notices, maps again, and is reachable (mapped) again;
#  2. a downloader's router gets a new public address (a PPPoE reconnect)
#     in the middle of a download: its connections die with the old
#     address; it re-attaches from the new one with the same ID, maps and
#     proves the new address, its files stay searchable, and the download
#     resumes and completes byte-identical;
#  3. the supernode carrying a relayed download is SIGKILLed: both peers
#     fail over to their backup supernode and the download resumes over a
#     new circuit and completes byte-identical.
source "$SOVA_SRC/tests/e2e/lib.sh"
source "$SOVA_SRC/tests/natbed/lib.sh"
source "$SOVA_SRC/tests/natbed/overlay.sh"

natbed_init
natbed_host sn1 20.0.0.10
natbed_host sn2 20.0.0.11
natbed_router r-up upnp 20.0.1.1
natbed_router r-dl upnp 20.0.2.1
natbed_router r-n1 noupnp 20.0.3.1
natbed_router r-n2 noupnp 20.0.4.1
natbed_peer alice r-up     # a downloader behind a UPnP router (its address moves)
natbed_peer bob r-dl       # a source behind another
natbed_peer carol r-n1     # unreachable source
natbed_peer dave r-n2      # unreachable downloader
natbed_check_isolation
nb_federation 2
nb_supernode sn1 sn1 20.0.0.10
nb_supernode sn2 sn2 20.0.0.11 --peers 20.0.0.10:7070

mkdir -p "$WORK/alice/share" "$WORK/bob/share" "$WORK/carol/share"
printf 'alice keeps sharing this\n' >"$WORK/alice/share/alice-notes.txt"
head -c 24000000 /dev/urandom >"$WORK/bob/share/wan-move.bin"
head -c 24000000 /dev/urandom >"$WORK/carol/share/relay-failover.bin"
B_HASH=$(file_id "$WORK/bob/share/wan-move.bin")
C_HASH=$(file_id "$WORK/carol/share/relay-failover.bin")
# Sources upload at 2 MB/s, so the faults land in the middle of downloads.
nb_peer alice alice 20.0.0.10:7070
nb_peer bob bob 20.0.0.10:7070 --upload-limit-kbps 2000
nb_peer carol carol 20.0.0.10:7070 --upload-limit-kbps 2000
nb_peer dave dave 20.0.0.10:7070
nb_wait_reach alice mapped 40
nb_wait_reach bob mapped 40
nb_wait_reach carol unreachable 40
nb_wait_reach dave unreachable 40
ok "alice and bob are mapped by their routers, carol and dave unreachable"

# has_chunks NAME HASH N: NAME's download of HASH has at least N verified chunks.
has_chunks() {
  local have
  have=$("$PEER_BIN" --state-dir "$WORK/$1/state" downloads --json | python3 -c '
import json, sys
for d in json.load(sys.stdin)["downloads"]:
    if d["id"] == sys.argv[1]:
        print(d["chunks_have"])' "$2")
  echo "$1 has ${have:-no download of its} chunks"
  [ -n "$have" ] && [ "$have" -ge "$3" ]
}
has_mapping() { natbed_upnp_mappings "$1" | grep -q "$2"; }
proved_at() { nb_status "$1" | nb_json 'j["reach"]["address"]' | grep -q "$2"; }
has_backup() { [ "$(nb_status "$1" | nb_json 'j["supernode"]["backup"] is not None')" = True ]; }

# ---- 1. miniupnpd restarts and forgets its mappings ---------------------------------
natbed_upnp_mappings r-up | grep -q "TCP 7071 -> $(natbed_ip alice):7071" ||
  fail "no mapping of alice's port on r-up: $(natbed_upnp_mappings r-up)"
natbed_upnp_restart r-up
[ -z "$(natbed_upnp_mappings r-up)" ] || fail "the restart kept the mappings"
wait_until 15 "alice to map her port again" has_mapping r-up "TCP 7071 -> $(natbed_ip alice):7071"
remaps=$(nb_status alice | nb_json 'j["reach"]["mapping"]["remaps"]')
[ "$remaps" -ge 1 ] || fail "alice's status does not count the remap ($remaps)"
nb_wait_reach alice mapped 10
ok "miniupnpd restarted with its mappings lost: alice mapped again ($remaps remap) and is mapped"

# ---- 2. alice's router changes its public address mid-download -----------------------
alice_id=$("$PEER_BIN" --state-dir "$WORK/alice/state" id)
wait_for "$WORK/bob.log" "published 1 shared files" 20
timeout 120 "$PEER_BIN" --state-dir "$WORK/alice/state" get "$B_HASH" --json >"$WORK/alice-get.json" &
get_pid=$!
wait_for "$WORK/alice.log" "connected to source .* \(direct\)" 20
wait_until 20 "alice's download to be a few MB in" has_chunks alice "$B_HASH" 4
natbed_wan_change r-up 20.0.1.77
# Re-attached from the new address (to sn1, or to sn2 if it promoted its backup).
wait_for "$WORK/alice.log" "attached to supernode .* which sees us at 20\.0\.1\.77:" 30
wait "$get_pid" || fail "alice's download did not complete after her address changed: $(cat "$WORK/alice-get.json")"
cmp -s "$WORK/bob/share/wan-move.bin" "$WORK/alice/dl/wan-move.bin" || fail "alice's copy differs"
wait_for_n "$WORK/alice.log" "connected to source .* \(direct\)" 2 1
[ "$("$PEER_BIN" --state-dir "$WORK/alice/state" id)" = "$alice_id" ] || fail "alice's ID changed"
nb_wait_reach alice mapped 20
wait_until 20 "alice's proved address to be on her new public address" proved_at alice "^20\.0\.1\.77:"
"$PEER_BIN" --state-dir "$WORK/dave/state" search alice notes | grep -q "alice-notes.txt" ||
  fail "alice's file is not searchable after her address changed"
ok "alice's public address changed mid-download: same ID, re-attached and mapped at 20.0.1.77, her files searchable, her download resumed and completed"

# ---- 3. the supernode relaying a download dies ---------------------------------------
wait_for "$WORK/carol.log" "published 1 shared files" 20
for p in carol dave; do wait_until 20 "$p to have a backup supernode" has_backup "$p"; done
timeout 180 "$PEER_BIN" --state-dir "$WORK/dave/state" get "$C_HASH" --json >"$WORK/dave-get.json" &
get_pid=$!
wait_for "$WORK/dave.log" "connected to source .* \(relay\)" 30
wait_until 20 "dave's relayed download to be under way" has_chunks dave "$C_HASH" 2
nb_kill sn1 KILL
wait "$get_pid" || fail "dave's relayed download did not complete after sn1 died: $(cat "$WORK/dave-get.json")"
cmp -s "$WORK/carol/share/relay-failover.bin" "$WORK/dave/dl/relay-failover.bin" ||
  fail "dave's copy differs"
[ "$(nb_json 'j["download"]["via"]' <"$WORK/dave-get.json")" = relay ] ||
  fail "dave's download did not go by relay: $(cat "$WORK/dave-get.json")"
[ "$(nb_sn_status sn2 | nb_json 'j["relay"]["opened"]')" -ge 1 ] || fail "sn2 carried no circuit"
wait_for_n "$WORK/dave.log" "connected to source .* \(relay\)" 2 5
ok "sn1 SIGKILLed mid-relay: carol and dave failed over, the download resumed over a circuit through sn2"

for p in alice bob carol dave; do nb_stop "$p"; done
nb_stop sn2
done_ok
