#!/usr/bin/env bash
# test_paths.sh - the way to a source changes with the network, on real
# NATs (docs/NATBED.md, docs/NAT.md):
#  1. a relayed download moves to a direct connection mid-transfer: the
#     source's router has UPnP off, so the source is unreachable and the
#     downloader (behind a symmetric NAT: no punch) relays; the router's
#     UPnP comes back, the source is mapped, and the downloader's next look
#     finds the direct way, opens it beside the relay and moves the
#     transfer to it: no restart, no verified chunk fetched twice;
#  2. two peers behind one router (hairpin): over the LAN when its ports
#     see each other; with the LAN isolated (a guest Wi-Fi) and a router
#     that does not loop back, straight to the relay once direct failed,
#     without a reversal or punch aimed at their own public address; with
#     the router looping back, the source's LAN and public addresses are
#     raced (Happy Eyeballs) and the public one wins at once;
#  3. the router loses h1's mapping without a word (its forwarding rules
#     flushed, no announcement): h1, which checks its mapping only every
#     60 s, finds out at the supernode's next dial-back (here, after the
#     supernode restarts) and asks the router again at once;
#  4. a relayed download moves to a hole punch mid-transfer: two peers
#     behind port-keeping NATs whose first punch cannot pass (the source's
#     router drops what goes to the downloader's address), so they relay;
#     the block is lifted, and the downloader's next look punches through
#     beside the relay and moves the transfer to it;
#  5. a relayed download moves to a reversal mid-transfer: the source is
#     behind a symmetric NAT and the downloader's router has UPnP off, so
#     they relay; the downloader's router maps its port, the downloader is
#     proved reachable, and its next look asks the source to connect to
#     it, beside the relay, and moves the transfer to that connection.
source "$SOVA_SRC/tests/e2e/lib.sh"
source "$SOVA_SRC/tests/natbed/lib.sh"
source "$SOVA_SRC/tests/natbed/overlay.sh"

natbed_init
natbed_host sn1 20.0.0.10
natbed_router r-src upnp 20.0.1.1
natbed_router r-sym symmetric 20.0.2.1
natbed_router r-home upnp 20.0.3.1
natbed_peer src r-src   # a source whose router's UPnP is off at first
natbed_peer dl r-sym    # a downloader behind a symmetric NAT
natbed_peer h1 r-home   # two peers behind one router
natbed_peer h2 r-home
natbed_router r-k1 noupnp 20.0.4.1
natbed_router r-k2 noupnp 20.0.5.1
natbed_peer k1 r-k1     # a source behind a port-keeping NAT
natbed_peer k2 r-k2     # a downloader behind another
natbed_router r-rd upnp 20.0.6.1
natbed_router r-rs symmetric 20.0.7.1
natbed_peer rd r-rd     # a downloader whose router's UPnP is off at first
natbed_peer rs r-rs     # a source behind a symmetric NAT (no punch)
natbed_check_isolation
nb_federation 1
nb_supernode sn1 sn1 20.0.0.10
natbed_upnp_stop r-src

mkdir -p "$WORK/src/share" "$WORK/h1/share"
head -c 40000000 /dev/urandom >"$WORK/src/share/upgrade.bin"
HASH=$(file_id "$WORK/src/share/upgrade.bin")
# 2 MB/s: the download lasts ~20 s, long enough for the router to come back.
nb_peer src src 20.0.0.10:7070 --upload-limit-kbps 2000 --upnp-check-s 2
nb_peer dl dl 20.0.0.10:7070
nb_wait_reach src unreachable 40
nb_wait_reach dl unreachable 40
ok "src (its router's UPnP off) and dl (symmetric NAT) are unreachable"

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

# ---- 1. a relay upgraded to direct mid-transfer ---------------------------------------
wait_for "$WORK/src.log" "published 1 shared files" 20
timeout 180 "$PEER_BIN" --state-dir "$WORK/dl/state" get "$HASH" --json >"$WORK/dl-get.json" &
get_pid=$!
wait_for "$WORK/dl.log" "connected to source .* \(relay: through our supernode\)" 30
wait_until 30 "dl's relayed download to be under way" has_chunks dl "$HASH" 4
natbed_upnp_start r-src
nb_wait_reach src mapped 30
wait_for "$WORK/dl.log" "moved from the relay to direct: mapped 20\.0\.1\.1:[0-9]*, IPv4 \([0-9]* chunks verified, kept\)" 40
wait "$get_pid" || fail "dl's download did not complete: $(cat "$WORK/dl-get.json")"
cmp -s "$WORK/src/share/upgrade.bin" "$WORK/dl/dl/upgrade.bin" || fail "dl's copy differs"
via=$(nb_json 'j["download"]["via"]' <"$WORK/dl-get.json")
[ "$via" = "direct+relay" ] || fail "the download did not go by relay, then direct: $via"
kept=$(grep -Eo "moved from the relay to direct: .* \(([0-9]+) chunks verified" "$WORK/dl.log" | grep -Eo "[0-9]+ chunks" | grep -Eo "[0-9]+")
# every chunk verified once: what the relay brought was not fetched again
read -r fetched total failed < <(nb_json '" ".join(str(j["download"][k]) for k in ("chunks_fetched", "chunks", "chunks_failed"))' <"$WORK/dl-get.json")
[ "$fetched" -eq "$total" ] && [ "$failed" -eq 0 ] ||
  fail "chunks fetched $fetched of $total ($failed failed): some were fetched twice or lost"
[ "$(grep -c "download of upgrade.bin .* started" "$WORK/dl.log")" -eq 1 ] || fail "the download restarted"
ok "a relayed download moved to a direct connection mid-transfer once the source was mapped: $kept chunks had come over the relay, all $total verified once, via $via"

# ---- 2. hairpin: two peers behind one router -----------------------------------------
head -c 3000000 /dev/urandom >"$WORK/h1/share/hairpin.bin"
H_HASH=$(file_id "$WORK/h1/share/hairpin.bin")
nb_peer h1 h1 20.0.0.10:7070 --upnp-check-s 60
nb_peer h2 h2 20.0.0.10:7070
nb_wait_reach h1 mapped 40
nb_wait_reach h2 mapped 40
wait_for "$WORK/h1.log" "published 1 shared files" 20
out=$(timeout 60 "$PEER_BIN" --state-dir "$WORK/h2/state" get "$H_HASH" --json) ||
  fail "h2 could not fetch from h1: $out"
cmp -s "$WORK/h1/share/hairpin.bin" "$WORK/h2/dl/hairpin.bin" || fail "h2's copy differs"
route=$(nb_json 'j["download"]["route"]' <<<"$out")
[[ $route == "direct: LAN $(natbed_ip h1):"* ]] || fail "h2 did not go over the LAN: $route"
ok "two peers behind one router: over the LAN ($route)"
natbed_lan_isolate h1
natbed_lan_isolate h2
rm -f "$WORK/h2/dl/hairpin.bin"
"$PEER_BIN" --state-dir "$WORK/h2/state" rm "$H_HASH" >/dev/null 2>&1 || true
out=$(timeout 60 "$PEER_BIN" --state-dir "$WORK/h2/state" get "$H_HASH" --json) ||
  fail "h2 could not fetch from h1 on the isolated LAN: $out"
cmp -s "$WORK/h1/share/hairpin.bin" "$WORK/h2/dl/hairpin.bin" || fail "h2's copy differs"
[ "$(nb_json 'j["download"]["via"]' <<<"$out")" = relay ] || fail "h2 did not relay: $out"
grep -q "reversal skipped: the source is behind our own public address" "$WORK/h2.log" ||
  fail "h2 did not skip reversal to its own public address: $(grep "source .*: " "$WORK/h2.log" | tail -5)"
ok "with the LAN isolated (a guest Wi-Fi) and no loopback in the router: relay once direct failed, no reversal or punch at their own public address"

# The router learns NAT loopback (hairpin): its public address and h1's
# mapped port, asked from the LAN, lead to h1. h1 is handed out with two
# addresses, its LAN one (silent: isolated) and its public one (through the
# loopback): raced (Happy Eyeballs), the public one wins in a quarter of a
# second instead of after the LAN one's connect timeout (3 s).
# (h1's external port: h2 may hold 7071 on this router, h1 then another)
H1_PORT=$(nb_status h1 | nb_json 'j["reach"]["mapping"]["external_port"]')
[ "${H1_PORT:-0}" -gt 0 ] || fail "h1 has no mapped port: $(nb_status h1 | nb_json 'j["reach"]["mapping"]')"
natbed_exec r-home nft insert rule inet filter forward iifname "br-lan" oifname "br-lan" accept
natbed_exec r-home nft add rule inet nat prerouting iifname "br-lan" ip daddr 20.0.3.1 tcp dport "$H1_PORT" \
  dnat ip to "$(natbed_ip h1):7071"
natbed_exec r-home nft add rule inet nat postrouting iifname "br-lan" oifname "br-lan" masquerade
rm -f "$WORK/h2/dl/hairpin.bin"
"$PEER_BIN" --state-dir "$WORK/h2/state" rm "$H_HASH" >/dev/null 2>&1 || true
out=$(timeout 60 "$PEER_BIN" --state-dir "$WORK/h2/state" get "$H_HASH" --json) ||
  fail "h2 could not fetch from h1 through the router's loopback: $out"
cmp -s "$WORK/h1/share/hairpin.bin" "$WORK/h2/dl/hairpin.bin" || fail "h2's copy differs"
route=$(nb_json 'j["download"]["via"] + " | " + j["download"]["route"]' <<<"$out")
[ "$route" = "direct | direct: mapped 20.0.3.1:$H1_PORT, IPv4" ] || fail "h2 did not go through the loopback: $route"
ttfb=$(nb_json 'j["download"]["first_byte_ms"]' <<<"$out")
[ "$ttfb" -lt 3000 ] ||
  fail "h2's first byte came after ${ttfb} ms: it waited out the silent LAN address instead of racing the public one"
ok "with NAT loopback in the router: h1's LAN address (silent) and public one raced, the public one won ($route), first byte after $ttfb ms (the LAN one alone times out at 3 s)"

# ---- 3. a mapping lost without a word ---------------------------------------------------
# (h1 and h2 both listen on 7071: whichever asked first got external port
# 7071, the other another one)
h1_map="TCP [0-9]* -> $(natbed_ip h1):7071"
natbed_upnp_mappings r-home | grep -q "$h1_map" || fail "no mapping of h1: $(natbed_upnp_mappings r-home)"
for chain in "filter miniupnpd" "nat prerouting_miniupnpd" "nat postrouting_miniupnpd"; do
  natbed_exec r-home nft flush chain inet $chain
done
! natbed_upnp_mappings r-home | grep -q "$h1_map" || fail "the flush kept h1's mapping"
t0=$SECONDS
nb_kill sn1 KILL
nb_supernode sn1 sn1 20.0.0.10
wait_for "$WORK/h1.log" "the supernode could not reach us through our mapping 20\.0\.3\.1:[0-9]+ \(timeout\): asking the router again" 40
wait_until 20 "h1 mapped again" eval 'natbed_upnp_mappings r-home | grep -q "TCP [0-9]* -> $(natbed_ip h1):7071"'
nb_wait_reach h1 mapped 20
took=$((SECONDS - t0))
[ "$took" -lt 45 ] || fail "h1 mapped again only after $took s"
ok "the router lost h1's mapping silently: the supernode's dial-back after its restart timed out through it, h1 asked the router again and is mapped ($took s after the restart, not at its 60 s check)"

# moved_ok NAME SRC_FILE VIA WHAT: NAME's background get (get_pid, its JSON in
# $WORK/NAME-get.json) completed byte-identical to SRC_FILE, via VIA, every
# chunk fetched once; WHAT ends the ok line.
moved_ok() {
  local name=$1 src=$2 want=$3 what=$4 via fetched total failed
  wait "$get_pid" || fail "$name's download did not complete: $(cat "$WORK/$name-get.json")"
  cmp -s "$src" "$WORK/$name/dl/$(basename "$src")" || fail "$name's copy differs"
  via=$(nb_json 'j["download"]["via"]' <"$WORK/$name-get.json")
  [ "$via" = "$want" ] || fail "the download did not go by relay, then ${want%+relay}: $via"
  read -r fetched total failed < <(nb_json '" ".join(str(j["download"][k]) for k in ("chunks_fetched", "chunks", "chunks_failed"))' <"$WORK/$name-get.json")
  [ "$fetched" -eq "$total" ] && [ "$failed" -eq 0 ] ||
    fail "chunks fetched $fetched of $total ($failed failed): some were fetched twice or lost"
  ok "a relayed download moved to $what: all $total chunks verified once, via $via"
}

# ---- 4. a relay upgraded to a hole punch mid-transfer -----------------------------------
mkdir -p "$WORK/k1/share"
head -c 30000000 /dev/urandom >"$WORK/k1/share/punch-later.bin"
K_HASH=$(file_id "$WORK/k1/share/punch-later.bin")
nb_peer k1 k1 20.0.0.10:7070 --upload-limit-kbps 2000
nb_peer k2 k2 20.0.0.10:7070 --punch-timeout-ms 1500
nb_wait_reach k1 unreachable 40
nb_wait_reach k2 unreachable 40
wait_for "$WORK/k1.log" "published 1 shared files" 20
natbed_exec r-k1 nft -f - <<'NFT'
table inet punchblock {
  chain forward {
    type filter hook forward priority -10; policy accept;
    ip daddr 20.0.5.1 drop
  }
}
NFT
timeout 180 "$PEER_BIN" --state-dir "$WORK/k2/state" get "$K_HASH" --json >"$WORK/k2-get.json" &
get_pid=$!
wait_for "$WORK/k2.log" "source .*: holepunch failed" 30
wait_for "$WORK/k2.log" "connected to source .* \(relay: through our supernode\)" 30
natbed_exec r-k1 nft delete table inet punchblock
wait_for "$WORK/k2.log" "moved from the relay to holepunch: public 20\.0\.4\.1:[0-9]*, IPv4 \([0-9]* chunks verified, kept\)" 40
moved_ok k2 "$WORK/k1/share/punch-later.bin" holepunch+relay "a hole punch mid-transfer once the punch could pass"

# ---- 5. a relay upgraded to a reversal mid-transfer -------------------------------------
natbed_upnp_stop r-rd
mkdir -p "$WORK/rs/share"
head -c 30000000 /dev/urandom >"$WORK/rs/share/reverse-later.bin"
R_HASH=$(file_id "$WORK/rs/share/reverse-later.bin")
nb_peer rs rs 20.0.0.10:7070 --upload-limit-kbps 2000
nb_peer rd rd 20.0.0.10:7070 --upnp-check-s 2
nb_wait_reach rs unreachable 40
nb_wait_reach rd unreachable 40
wait_for "$WORK/rs.log" "published 1 shared files" 20
timeout 180 "$PEER_BIN" --state-dir "$WORK/rd/state" get "$R_HASH" --json >"$WORK/rd-get.json" &
get_pid=$!
wait_for "$WORK/rd.log" "connected to source .* \(relay: through our supernode\)" 30
natbed_upnp_start r-rd
nb_wait_reach rd mapped 30
wait_for "$WORK/rd.log" "moved from the relay to reversal: it connected from 20\.0\.7\.1:[0-9]* \([0-9]* chunks verified, kept\)" 40
moved_ok rd "$WORK/rs/share/reverse-later.bin" reversal+relay "a reversal mid-transfer once the downloader was mapped"

for p in src dl h1 h2 k1 k2 rs rd; do nb_stop "$p"; done
nb_stop sn1
done_ok
