#!/usr/bin/env bash
# bench_upnp.sh BUILD_DIR [RUNS]
# Port mapping times of a real sova-peer against a real miniupnpd, in the
# NAT test bed (network namespaces, nftables NAT; needs root): RUNS times
# (default 5) each, from the peer's first log line to
#   - "mapped" behind a UPnP router          (target <= 2 s)
#   - "no gateway" behind a router without UPnP (target <= 3 s)
#   - its reachability verdict (dial-back through the supernode) in both.
# Times come from the peer's own log stamps (milliseconds). Prints min,
# median and max. Not a test: nothing fails on a miss.
set -euo pipefail
export SOVA_BIN=$(cd "${1:?usage: bench_upnp.sh BUILD_DIR [RUNS]}" && pwd)
export SOVA_SRC=$(cd "$(dirname "$0")/.." && pwd)
runs=${2:-5}
source "$SOVA_SRC/tests/e2e/lib.sh"
source "$SOVA_SRC/tests/natbed/lib.sh"
source "$SOVA_SRC/tests/natbed/overlay.sh"

natbed_init
natbed_host sn1 20.0.0.10
natbed_router r-up upnp 20.0.1.1
natbed_router r-no noupnp 20.0.2.1
natbed_peer p-up r-up
natbed_peer p-no r-no
natbed_check_isolation
nb_federation 1
nb_supernode sn1 sn1 20.0.0.10 >/dev/null

# ms LOGFILE REGEX: the millisecond stamp of the first matching line.
ms() {
  grep -Em1 "$2" "$1" | cut -d' ' -f1 |
    python3 -c 'import sys,datetime; t=sys.stdin.read().strip(); print(int(datetime.datetime.strptime(t,"%Y-%m-%dT%H:%M:%S.%fZ").timestamp()*1000))'
}
stats() { # numbers (ms) on stdin -> "min/median/max s"
  python3 -c 'import sys,statistics; v=sorted(int(x) for x in sys.stdin.read().split()); print("%.2f / %.2f / %.2f s" % (v[0]/1000, statistics.median(v)/1000, v[-1]/1000))'
}

declare -a map_up reach_up nogw reach_no
for i in $(seq "$runs"); do
  for p in p-up p-no; do
    rm -rf "$WORK/$p" "$WORK/$p.log"
    nb_peer "$p" "$p" 20.0.0.10:7070
  done
  wait_for "$WORK/p-up.log" "reachability: " 30
  wait_for "$WORK/p-no.log" "reachability: " 30
  t0=$(ms "$WORK/p-up.log" "listening on")
  map_up+=($(($(ms "$WORK/p-up.log" "port 7071: mapped") - t0)))
  reach_up+=($(($(ms "$WORK/p-up.log" "reachability: mapped") - t0)))
  t0=$(ms "$WORK/p-no.log" "listening on")
  nogw+=($(($(ms "$WORK/p-no.log" "port 7071: no gateway") - t0)))
  reach_no+=($(($(ms "$WORK/p-no.log" "reachability: unreachable") - t0)))
  nb_stop p-up
  nb_stop p-no
done
echo "runs: $runs (min / median / max), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %s   target <= 2 s\n' "peer start -> mapped (UPnP, miniupnpd)" "$(echo "${map_up[@]}" | stats)"
printf '%-44s %s\n' "peer start -> reachability mapped (dial-back)" "$(echo "${reach_up[@]}" | stats)"
printf '%-44s %s   target <= 3 s\n' "peer start -> no gateway (no UPnP router)" "$(echo "${nogw[@]}" | stats)"
printf '%-44s %s\n' "peer start -> reachability unreachable" "$(echo "${reach_no[@]}" | stats)"
nb_stop sn1
