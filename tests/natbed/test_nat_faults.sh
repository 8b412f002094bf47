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
#     new circuit and completes byte-identical;
#  4. a mapped peer that failed over is handed out as mapped by its new
#     supernode (it claims again once that supernode proved it);
#  5. a WAN outage is noticed within the dead-path bound (15 s), and the
#     peer attaches again when the line is back;
#  6. the peer's LAN address changes (a new DHCP lease): it notices at once
#     (rtnetlink), re-attaches, re-maps and proves the new mapping;
#  7. a router reboots and forgets its mappings: a peer that checks only
#     every 60 s hears its announcements (SSDP, NAT-PMP) and maps again.
source "$SOVA_SRC/tests/e2e/lib.sh"
source "$SOVA_SRC/tests/natbed/lib.sh"
source "$SOVA_SRC/tests/natbed/overlay.sh"

natbed_init
natbed_host sn1 20.0.0.10
natbed_host sn2 20.0.0.11
natbed_router r-up upnp 20.0.1.1
natbed_router r-dl upnp 20.0.2.1
natbed_router r-n1 symmetric 20.0.3.1
natbed_router r-n2 noupnp 20.0.4.1
natbed_router r-rb upnp 20.0.5.1
natbed_peer alice r-up     # a downloader behind a UPnP router (its address moves)
natbed_peer bob r-dl       # a source behind another
natbed_peer carol r-n1     # unreachable source behind a symmetric NAT (no punch: relay)
natbed_peer dave r-n2      # unreachable downloader
natbed_peer erin r-rb      # behind a router that reboots; checks her mapping every 60 s only
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
nb_peer erin erin 20.0.0.11:7070 --upnp-check-s 60
nb_wait_reach alice mapped 40
nb_wait_reach bob mapped 40
nb_wait_reach carol unreachable 40
nb_wait_reach dave unreachable 40
nb_wait_reach erin mapped 40
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
natbed_upnp_stop r-up
[ -z "$(natbed_upnp_mappings r-up)" ] || fail "the router's stop kept the mappings"
natbed_upnp_start r-up
wait_until 15 "alice to map her port again" has_mapping r-up "TCP 7071 -> $(natbed_ip alice):7071"
# The router holds the rule a moment before alice has read its answer:
# wait for her status to count the remap, not only for the rule.
counts_remap() {
  local n
  n=$(nb_status alice | nb_json 'j["reach"]["mapping"]["remaps"]')
  echo "alice's status counts ${n:-no} remaps"
  [ -n "$n" ] && [ "$n" -ge 1 ]
}
wait_until 10 "alice's status to count the remap" counts_remap
remaps=$(nb_status alice | nb_json 'j["reach"]["mapping"]["remaps"]')
nb_wait_reach alice mapped 10
ok "miniupnpd restarted with its mappings lost: alice mapped again ($remaps remap) and is mapped"

# ---- 2. alice's router changes its public address mid-download -----------------------
alice_id=$("$PEER_BIN" --state-dir "$WORK/alice/state" id)
wait_for "$WORK/bob.log" "published 1 shared files" 20
timeout 120 "$PEER_BIN" --state-dir "$WORK/alice/state" get "$B_HASH" --json >"$WORK/alice-get.json" &
get_pid=$!
wait_for "$WORK/alice.log" "connected to source .* \(direct: mapped 20\.0\.2\.1:[0-9]+, IPv4\)" 20
wait_until 20 "alice's download to be a few MB in" has_chunks alice "$B_HASH" 4
natbed_wan_change r-up 20.0.1.77
# Re-attached from the new address (to sn1, or to sn2 if it promoted its backup).
wait_for "$WORK/alice.log" "attached to supernode .* which sees us at 20\.0\.1\.77:" 30
wait "$get_pid" || fail "alice's download did not complete after her address changed: $(cat "$WORK/alice-get.json")"
cmp -s "$WORK/bob/share/wan-move.bin" "$WORK/alice/dl/wan-move.bin" || fail "alice's copy differs"
wait_for_n "$WORK/alice.log" "connected to source .* \(direct: mapped 20\.0\.2\.1:[0-9]+, IPv4\)" 2 1
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
wait_for "$WORK/dave.log" "connected to source .* \(relay: through our supernode\)" 30
wait_until 20 "dave's relayed download to be under way" has_chunks dave "$C_HASH" 2
nb_kill sn1 KILL
wait "$get_pid" || fail "dave's relayed download did not complete after sn1 died: $(cat "$WORK/dave-get.json")"
cmp -s "$WORK/carol/share/relay-failover.bin" "$WORK/dave/dl/relay-failover.bin" ||
  fail "dave's copy differs"
[ "$(nb_json 'j["download"]["via"]' <"$WORK/dave-get.json")" = relay ] ||
  fail "dave's download did not go by relay: $(cat "$WORK/dave-get.json")"
[ "$(nb_sn_status sn2 | nb_json 'j["relay"]["opened"]')" -ge 1 ] || fail "sn2 carried no circuit"
wait_for_n "$WORK/dave.log" "connected to source .* \(relay: through our supernode\)" 2 5
ok "sn1 SIGKILLed mid-relay: carol and dave failed over, the download resumed over a circuit through sn2"

# ---- 4. a mapped peer that failed over is advertised as mapped there -------------------
# sn2 proves bob's mapping by dial-back; bob must then claim it again at sn2
# (his claim did not change), or sn2 hands him out as unreachable and every
# downloader relays.
bob_id=$("$PEER_BIN" --state-dir "$WORK/bob/state" id)
on_sn2() { nb_status "$1" | nb_json 'j["supernode"]["endpoint"]' | grep -q "^20\.0\.0\.11:"; }
bob_seen_as() {
  local r
  r=$("$PEER_BIN" --state-dir "$WORK/dave/state" search wan move --json | python3 -c '
import json, sys
for h in json.load(sys.stdin)["hits"]:
    for p in h.get("peers", []):
        if p["id"] == sys.argv[1]:
            print(p["reachability"])' "$bob_id" | head -1)
  echo "sn2 hands bob out as ${r:-nothing}"
  [ "$r" = "$1" ]
}
wait_until 30 "bob to be attached to sn2" on_sn2 bob
wait_until 15 "sn2 to hand bob out as mapped" bob_seen_as mapped
ok "bob (mapped) failed over to sn2, which proved his mapping and hands him out as mapped, not unreachable"

# ---- 5. a WAN outage ----------------------------------------------------------------------
# The line of alice's router goes silent: nothing is refused, packets just
# vanish. Her supernode links see it within OP_SESSION_DEAD_PATH_MS (15 s:
# TCP keep-alive probes and TCP_USER_TIMEOUT), not at the 90 s keep-alive
# timeout; when the line is back she attaches again and is mapped.
attached() { [ "$(nb_status "$1" | nb_json 'j["supernode"]["attached"]')" = True ]; }
n0=$(grep -c "primary supernode link .* closed" "$WORK/alice.log" || true)
t0=$SECONDS
natbed_wan_outage r-up
wait_for_n "$WORK/alice.log" "primary supernode link .* closed" $((n0 + 1)) 40
noticed=$((SECONDS - t0))
[ "$noticed" -le 25 ] || fail "alice noticed the outage after $noticed s (dead path: 15 s)"
natbed_wan_restore r-up
wait_until 60 "alice to attach again" attached alice
nb_wait_reach alice mapped 30
ok "a WAN outage (r-up's line silent): alice's supernode link closed after $noticed s (not 90); back online she attached again and is mapped"

# ---- 6. alice's LAN address changes (a new DHCP lease) -----------------------------------
# The peer sees it from rtnetlink at once: its supernode link from the old
# address closes, it attaches again from the new one, asks the router again
# from there (the old mapping points to an address nobody has) and proves
# the new mapping: mapped again in seconds, not at the lease's half.
old_ip=$(natbed_ip alice)
t0=$SECONDS
natbed_lan_change alice 77
new_ip=$(natbed_ip alice)
wait_for "$WORK/alice.log" "our network changed \(addresses now: $new_ip\)" 10
wait_until 30 "the router to map alice's new address" has_mapping r-up "TCP [0-9]* -> $new_ip:7071"
mapped_at() { [ "$(nb_status alice | nb_json 'j["reachability"]')" = mapped ] && attached alice; }
wait_until 30 "alice to be mapped again" mapped_at
took=$((SECONDS - t0))
[ "$took" -le 20 ] || fail "alice was mapped again only after $took s"
ok "alice's LAN address moved from $old_ip to $new_ip: noticed at once, re-attached, the router maps the new address, mapped again after $took s"

# ---- 8. erin's router reboots (its miniupnpd restarts, every mapping lost) ----------------
# erin checks her mapping only every 60 s (the default); she hears the
# router say goodbye (SSDP ssdp:byebye) and come back (ssdp:alive, a NAT-PMP
# epoch from 0) and maps again at once.
has_mapping r-rb "TCP 7071 -> $(natbed_ip erin):7071" || fail "no mapping of erin's port: $(natbed_upnp_mappings r-rb)"
t0=$SECONDS
natbed_upnp_stop r-rb
[ -z "$(natbed_upnp_mappings r-rb)" ] || fail "the router's stop kept the mappings"
natbed_upnp_start r-rb
wait_until 30 "erin to map her port again" has_mapping r-rb "TCP [0-9]* -> $(natbed_ip erin):7071"
took=$((SECONDS - t0))
grep -Eq "the router (is going down|restarted)" "$WORK/erin.log" ||
  fail "erin mapped again, but not because she heard the router: $(grep reach "$WORK/erin.log" | tail -5)"
[ "$took" -le 15 ] || fail "erin mapped again only after $took s"
nb_wait_reach erin mapped 20
ok "erin's router rebooted (mappings lost): she heard it ($(grep -Eo "the router (is going down|restarted) \([^)]*\)" "$WORK/erin.log" | sort -u | paste -sd ';' -)) and mapped again $took s after the restart began, not at her 60 s check"

for p in alice bob carol dave erin; do nb_stop "$p"; done
nb_stop sn2
done_ok
