#!/usr/bin/env bash
# demo.sh BUILD_DIR - the demo overlay (README's main job), on real NATs.
#
# Builds a small internet out of network namespaces on this machine (the NAT
# test bed, docs/NATBED.md): two supernodes on public addresses, and three
# homes, each behind its own router with nftables NAT:
#   alice  behind a home router with UPnP (a real miniupnpd): she maps a port
#   bob    behind a router without UPnP: nobody can connect to him
#   carol  behind a symmetric NAT (a café): nobody can connect to her either
# alice shares a video, carol a photo. bob finds and downloads alice's video
# (direct, through alice's port mapping); alice fetches carol's photo
# (connection reversal: carol connects out to alice); bob fetches it too
# (a relay circuit through the supernodes, end-to-end encrypted). Every
# transfer is TLS 1.3, every chunk verified. Then it prints what each one
# says about itself and stops everything.
#
# Needs root (network namespaces). Nothing leaves the machine: no namespace
# of the bed has a link to the host's network (checked before anything
# starts), and everything is torn down at the end (SOVA_DEMO_KEEP=1 keeps
# the files).
set -euo pipefail
build=$(cd "${1:?usage: demo.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sn_bin=$build/supernode/sova-supernode
peer_bin=$build/ordinary/sova-peer
work=$(mktemp -d /tmp/sova-demo.XXXXXX)
declare -A PID
demo_cleanup() {
  for p in "${PID[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${SOVA_DEMO_KEEP:-0}" = 1 ]; then echo "(kept $work)"; else rm -rf "$work"; fi
}
trap demo_cleanup EXIT # natbed_init chains its teardown before it
source "$src/tests/natbed/lib.sh"

wait_for() { # FILE REGEX [SECONDS]
  for _ in $(seq $((${3:-20} * 20))); do grep -Eq -- "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "demo: timed out waiting for /$2/ in $1" >&2
  tail -n 20 "$1" >&2
  exit 1
}
say() { printf '\n== %s\n' "$*"; }
peer() { local name=$1; shift; "$peer_bin" --state-dir "$work/$name/state" "$@"; }
reach() { peer "$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["reachability"])'; }
wait_reach() { # NAME: until the peer knows whether others can reach it
  for _ in $(seq 300); do [ "$(reach "$1" 2>/dev/null)" != unknown ] && [ -n "$(reach "$1" 2>/dev/null)" ] && return 0; sleep 0.1; done
  echo "demo: $1 did not learn its reachability" >&2
  exit 1
}

say "1. A small internet on this machine: 2 supernodes, 3 homes behind NAT routers"
natbed_init
natbed_host sn1 20.0.0.10
natbed_host sn2 20.0.0.11
natbed_router home-alice upnp 20.0.1.1
natbed_router home-bob noupnp 20.0.2.1
natbed_router cafe-carol symmetric 20.0.3.1
natbed_peer alice home-alice
natbed_peer bob home-bob
natbed_peer carol cafe-carol
natbed_check_isolation
for n in alice bob carol; do echo "$n: $(natbed_ip "$n") behind $(natbed_wan_ip "$(
  case $n in alice) echo home-alice ;; bob) echo home-bob ;; carol) echo cafe-carol ;; esac)")"; done

say "2. A federation root and two supernode certificates (deploy/sova-federation)"
"$src/deploy/sova-federation" init "$work/fed" >/dev/null
for i in 1 2; do "$src/deploy/sova-federation" issue "$work/fed" "sn$i" >/dev/null; done
openssl verify -CAfile "$work/fed/root.crt" "$work/fed/sn1.crt" "$work/fed/sn2.crt"

say "3. Start the supernodes on their public addresses; sn2 joins through sn1"
for i in 1 2; do
  natbed_spawn "sn$i" "$work/sn$i.log" "$sn_bin" --listen "20.0.0.1$((i - 1)):7070" \
    --cert "$work/fed/sn$i.crt" --key "$work/fed/sn$i.key" --federation-ca "$work/fed/root.crt" \
    --state-dir "$work/sn$i" --peers 20.0.0.10:7070 --summary-interval-ms 500 >/dev/null
  PID[sn$i]=$NATBED_PID
  wait_for "$work/sn$i.log" "listening on"
done
wait_for "$work/sn2.log" "member .*: .* -> alive"
grep -h "listening on\|-> alive" "$work/sn1.log" "$work/sn2.log" | sed 's/^[^ ]* //'

say "4. Three peers start at home; alice shares a video, carol a photo"
mkdir -p "$work/alice/share" "$work/bob/share" "$work/carol/share"
head -c 20000000 /dev/urandom >"$work/alice/share/Holiday_Video-2026.mp4"
printf 'Sova demo\n' >"$work/alice/share/README-holiday.txt"
head -c 3000000 /dev/urandom >"$work/carol/share/Holiday_Photo-cafe.jpg"
for p in alice bob carol; do
  boot=20.0.0.10:7070
  [ "$p" = carol ] && boot=20.0.0.11:7070 # carol's café is closer to sn2
  natbed_spawn "$p" "$work/$p.log" "$peer_bin" run --state-dir "$work/$p/state" \
    --bootstrap "$boot" --federation-ca "$work/fed/root.crt" --listen 0.0.0.0:7071 \
    --share "$work/$p/share" --downloads "$work/$p/downloads" >/dev/null
  PID[$p]=$NATBED_PID
done
for p in alice bob carol; do
  wait_for "$work/$p.log" "attached to supernode"
  wait_reach "$p"
  printf '%-6s %s\n' "$p" "$(peer "$p" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["reachability_reason"])')"
done
wait_for "$work/alice.log" "published 2 shared files"
wait_for "$work/carol.log" "published 1 shared files"

say "5. bob searches for 'holiday' (the federation routes it to both supernodes)"
for _ in $(seq 100); do
  peer bob search holiday >"$work/hits" 2>/dev/null || true
  [ "$(grep -c . "$work/hits")" -ge 3 ] && break
  sleep 0.2
done
cat "$work/hits"
video=$(grep "Holiday_Video" "$work/hits" | cut -d' ' -f1)
photo=$(grep "Holiday_Photo" "$work/hits" | cut -d' ' -f1)

say "6. bob downloads alice's video: direct, through alice's UPnP port mapping"
peer bob get "$video"
cmp "$work/alice/share/Holiday_Video-2026.mp4" "$work/bob/downloads/Holiday_Video-2026.mp4"
echo "byte-identical: yes (cmp)"

say "7. alice downloads carol's photo: carol cannot be reached, so she connects out to alice (reversal)"
peer alice search photo >/dev/null
peer alice get "$photo"
cmp "$work/carol/share/Holiday_Photo-cafe.jpg" "$work/alice/downloads/Holiday_Photo-cafe.jpg"
echo "byte-identical: yes (cmp)"

say "8. bob downloads carol's photo too: neither can be reached, so a relay circuit (sn1 <-> sn2)"
peer bob get "$photo"
cmp "$work/carol/share/Holiday_Photo-cafe.jpg" "$work/bob/downloads/Holiday_Photo-cafe.jpg"
echo "byte-identical: yes (cmp); the supernodes carried only the peers' own TLS records"

say "9. 'Why am I relayed?' - bob's status"
peer bob status
say "10. The supernodes"
"$sn_bin" status --control "$work/sn1/control.sock"
echo
grep -h "relay \|circuit" "$work/sn1.log" "$work/sn2.log" | sed 's/^[^ ]* //' | head -n 8

say "11. Stop everything (SIGTERM: alice deletes her port mapping, supernodes leave the federation)"
for p in alice bob carol sn2 sn1; do kill -TERM "${PID[$p]}"; wait "${PID[$p]}" || true; done
PID=()
grep -h "mapping .* deleted\|leaving the federation" "$work"/*.log | sed 's/^[^ ]* //'
echo "demo finished: 2 supernodes, 3 peers behind 3 kinds of NAT; search and verified downloads by direct, reversal and relay"
