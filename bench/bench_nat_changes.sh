#!/usr/bin/env bash
# bench_nat_changes.sh BUILD_DIR [ROUNDS]
# How fast a peer behind a real NAT gets over its network changing (issue
# 16: "LAN address change to reachable again ≤ 5 s, router reboot to
# re-mapped ≤ 5 s, WAN outage noticed ≤ 15 s"; not a test: nothing fails).
# The NAT test bed (root, network namespaces, a real miniupnpd; docs/
# NATBED.md): a supernode, and alice behind a UPnP router, checking her
# mapping every 60 s (the default). Each round:
#   LAN   alice's LAN address moves (a new DHCP lease) → attached again and
#         mapped again (her status says so)
#   boot  the router's miniupnpd restarts, every mapping lost → mapped again
#   WAN   the router's WAN line goes silent → her supernode link closed;
#         then the line is back (not timed) and she attaches again
#   punch a downloader behind a port-keeping NAT without UPnP fetches a new
#         file from a source behind another: the way taken (holepunch
#         expected) and the time to the file's first byte; a third peer,
#         allowed only direct and relay, fetches the same file by relay
# The bound each is measured against is its target (for the punch: the
# relay's time to first byte in the same round); the same run also times
# what it costs the bed itself (a status call) so a slow machine shows.
set -euo pipefail
build=$(cd "${1:?usage: bench_nat_changes.sh BUILD_DIR [ROUNDS]}" && pwd)
rounds=${2:-5}
src=$(cd "$(dirname "$0")/.." && pwd)
export SOVA_BIN=$build SOVA_SRC=$src
source "$src/tests/e2e/lib.sh"
source "$src/tests/natbed/lib.sh"
source "$src/tests/natbed/overlay.sh"

natbed_init
natbed_host sn1 20.0.0.10
natbed_router r1 upnp 20.0.1.1
natbed_peer alice r1
natbed_router r2 noupnp 20.0.2.1
natbed_router r3 noupnp 20.0.3.1
natbed_router r4 noupnp 20.0.4.1
natbed_peer src r2
natbed_peer pdl r3
natbed_peer rdl r4
nb_federation 1
nb_supernode sn1 sn1 20.0.0.10
mkdir -p "$WORK/src/share"
for ((i = 1; i <= rounds; i++)); do head -c 1000000 /dev/urandom >"$WORK/src/share/punch-$i.bin"; done
nb_peer alice alice 20.0.0.10:7070 --upnp-check-s 60
nb_peer src src 20.0.0.10:7070
nb_peer pdl pdl 20.0.0.10:7070
nb_peer rdl rdl 20.0.0.10:7070 --ways direct,relay
nb_wait_reach alice mapped 60
for p in src pdl rdl; do nb_wait_reach "$p" unreachable 60; done
wait_for "$WORK/src.log" "published $rounds shared files" 30

now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }
attached() { [ "$(nb_status alice | nb_json 'j["supernode"]["attached"]')" = True ]; }
mapped() { attached && [ "$(nb_status alice | nb_json 'j["reachability"]')" = mapped ]; }
has_mapping() { natbed_upnp_mappings r1 | grep -q "TCP [0-9]* -> $1:7071"; }
closed_n() { grep -c "primary supernode link .* closed" "$WORK/alice.log" || true; }

lan=() boot=() wan=() probe=() punched=0 pttfb=() rttfb=()
# fetch NAME FILE: "VIA FIRST_BYTE_MS" of NAME's download of FILE from src
fetch() {
  local out
  out=$(timeout 60 "$PEER_BIN" --state-dir "$WORK/$1/state" get "$(file_id "$WORK/src/share/$2")" --json) ||
    { echo "none 0"; return; }
  nb_json 'j["download"]["via"] + " " + str(j["download"].get("first_byte_ms", 0))' <<<"$out"
}
host=10
for ((i = 1; i <= rounds; i++)); do
  t=$(now); nb_status alice >/dev/null; probe+=("$(since "$t")")
  host=$((host == 77 ? 78 : 77))
  t=$(now)
  natbed_lan_change alice "$host"
  wait_until 60 "alice mapped at her new address" eval 'has_mapping "$(natbed_ip alice)" && mapped'
  lan+=("$(since "$t")")
  t=$(now)
  natbed_upnp_restart r1
  wait_until 90 "the router to map alice again" eval 'has_mapping "$(natbed_ip alice)" && mapped'
  boot+=("$(since "$t")")
  n0=$(closed_n)
  t=$(now)
  natbed_wan_outage r1
  wait_until 120 "alice to notice the outage" eval '[ "$(closed_n)" -gt "$n0" ]'
  wan+=("$(since "$t")")
  natbed_wan_restore r1
  wait_until 90 "alice attached and mapped again" mapped
  read -r via ms < <(fetch pdl "punch-$i.bin")
  [ "$via" = holepunch ] && punched=$((punched + 1)) && pttfb+=("$ms")
  read -r rvia rms < <(fetch rdl "punch-$i.bin")
  [ "$rvia" = relay ] && rttfb+=("$rms")
  echo "# round $i: LAN ${lan[-1]} s, boot ${boot[-1]} s, WAN ${wan[-1]} s, punch: $via first byte $ms ms (relay: $rvia $rms ms)"
done

summary() { # NAME TARGET VALUES...
  local name=$1 target=$2; shift 2
  python3 - "$name" "$target" "$@" <<'EOF'
import statistics, sys
name, target, xs = sys.argv[1], float(sys.argv[2]), [float(x) for x in sys.argv[3:]]
med, worst = statistics.median(xs), max(xs)
verdict = "PASS" if worst <= target else "MISS"
print(f"| {name} | {len(xs)} | {med:.2f} | {worst:.2f} | ≤ {target:g} | {worst / target:.2f} | {verdict} |")
EOF
}
echo
echo "# $(date -u +%F) $(nproc) cores, $rounds rounds; a status call costs $(python3 -c "import statistics,sys; print('%.3f' % statistics.median(map(float, sys.argv[1:])))" "${probe[@]}") s here"
echo "| change | rounds | median s | worst s | target s | worst / target | |"
echo "|---|---|---|---|---|---|---|"
summary "LAN address change → attached and mapped again" 5 "${lan[@]}"
summary "router reboot (mappings lost) → mapped again" 5 "${boot[@]}"
summary "WAN outage → noticed (supernode link closed)" 15 "${wan[@]}"
python3 - "$rounds" "$punched" "${pttfb[*]:-}" "${rttfb[*]:-}" <<'EOF'
import statistics, sys
rounds, punched = int(sys.argv[1]), int(sys.argv[2])
p = [float(x) / 1000 for x in sys.argv[3].split()]
r = [float(x) / 1000 for x in sys.argv[4].split()]
rate = punched / rounds
if not p or not r:
    print(f"| hole punch between two port-keeping NATs: {punched}/{rounds} punched | {rounds} | – | – | relay's | – | MISS: no punched or no relayed download to compare |")
else:
    pm, rm = statistics.median(p), statistics.median(r)
    verdict = "PASS" if rate == 1 and pm <= rm else "MISS"
    print(f"| hole punch between two port-keeping NATs: {punched}/{rounds} punched; time to first byte (relay's: median {rm:.3f} s) | {rounds} | {pm:.3f} | {max(p):.3f} | ≤ {rm:.3f} | {pm / rm:.2f} | {verdict} |")
EOF
for p in src pdl rdl; do nb_stop "$p"; done
nb_stop alice
nb_stop sn1
done_ok >/dev/null
