#!/usr/bin/env bash
# bench_limits.sh BUILD_DIR
# How close the peer's bandwidth limits hold (issue 14: "within 10 % over a
# 10 s window"; not a test: nothing fails). A supernode and two peers on
# loopback; alice shares a file, bob downloads it over and over. Each run
# sets one limit, waits WARM s, then samples the bytes every 0.5 s for
# SECS s: for the download limits bob's DATA bytes received (status
# downloads_bytes_in), for the upload limit alice's bytes sent (status
# uploads.bytes_sent). Every 10 s window (sliding by 0.5 s) gives a rate;
# the table prints the lowest and highest as ratios of the limit, and PASS
# when both are within 10 %. The same machine's unlimited rate is measured
# first (the bound the limits sit well under).
# Runs: download limits of 1,000, 5,000 and 20,000 kB/s (global), a
# download's own 2,000 kB/s under a global 20,000, upload limits of 1,000
# and 5,000 kB/s, and the alternative download limit of 500 kB/s by hand.
# Env: SECS (default 40), WARM (default 3), FILE_MIB (default 512).
set -euo pipefail
build=$(cd "${1:?usage: bench_limits.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
sn_bin=$build/supernode/sova-supernode peer_bin=$build/ordinary/sova-peer
[ -x "$sn_bin" ] && [ -x "$peer_bin" ] || { echo "build first" >&2; exit 2; }
secs=${SECS:-40} warm=${WARM:-3} file_mib=${FILE_MIB:-512}
work=$(mktemp -d /tmp/sova-bench-limits.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
wait_for() { for _ in $(seq 600); do grep -Eq "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout: $2 in $1" >&2; exit 1; }
peer() { local n=$1; shift; "$peer_bin" --state-dir "$work/$n/state" "$@"; }

"$src/deploy/sova-federation" init "$work/fed" >/dev/null
"$src/deploy/sova-federation" issue "$work/fed" sn1 >/dev/null
"$sn_bin" --listen 127.0.0.1:0 --cert "$work/fed/sn1.crt" --key "$work/fed/sn1.key" \
  --federation-ca "$work/fed/root.crt" --state-dir "$work/sn" 2>"$work/sn.log" &
pids+=($!)
wait_for "$work/sn.log" "listening on 127\.0\.0\.1:[0-9]+"
port=$(grep -Eo "listening on 127\.0\.0\.1:[0-9]+" "$work/sn.log" | head -1 | sed 's/.*://')
mkdir -p "$work/alice/share"
head -c $((file_mib * 1048576)) /dev/urandom >"$work/alice/share/big.bin"
touch -d '1 hour ago' "$work/alice/share/big.bin"
for n in alice bob; do
  mkdir -p "$work/$n/share" "$work/$n/dl"
  "$peer_bin" run --state-dir "$work/$n/state" --bootstrap "127.0.0.1:$port" \
    --federation-ca "$work/fed/root.crt" --listen 127.0.0.1:0 --share "$work/$n/share" \
    --downloads "$work/$n/dl" 2>"$work/$n.log" &
  pids+=($!)
done
id=$("$peer_bin" hash "$work/alice/share/big.bin" | awk '$1 == "id" {print $2}')
wait_for "$work/alice.log" "published 1 shared files"
wait_for "$work/bob.log" "attached to supernode"

# Keep bob downloading: when the file is in, remove it and get it again.
keep_getting() {
  while :; do
    peer bob get "$id" >/dev/null 2>&1 || true
    rm -f "$work/bob/dl/big.bin"
  done
}
keep_getting &
getter=$!
pids+=($getter)

# sample WHAT: print "ms bytes" every 0.5 s for secs s after warm s.
counter() {
  case $1 in
    down) peer bob status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["downloads_bytes_in"])' ;;
    up) peer alice status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["uploads"]["bytes_sent"])' ;;
  esac
}
sample() {
  sleep "$warm"
  local end=$(( $(date +%s%3N) + secs * 1000 ))
  while [ "$(date +%s%3N)" -lt "$end" ]; do
    echo "$(date +%s%3N) $(counter "$1")"
    sleep 0.5
  done
}
# windows LIMIT_KBPS < samples: lowest and highest 10 s rate (kB/s) and ratios.
windows() {
  python3 -c '
import sys
limit = float(sys.argv[1])
pts = [tuple(map(int, l.split())) for l in sys.stdin if l.strip()]
rates = []
for i, (t0, b0) in enumerate(pts):
    for t1, b1 in pts[i + 1:]:
        if t1 - t0 >= 10000:
            rates.append((b1 - b0) / (t1 - t0))  # bytes/ms = kB/s
            break
if not rates:
    print("%9s %9s %7s %7s %s" % ("-", "-", "-", "-", "MISS (no 10 s window)"))
    sys.exit()
lo, hi = min(rates), max(rates)
ok = limit == 0 or (lo >= 0.9 * limit and hi <= 1.1 * limit)
print("%9.0f %9.0f %7s %7s %s (%d windows)" % (lo, hi,
      "%.3f" % (lo / limit) if limit else "-", "%.3f" % (hi / limit) if limit else "-",
      "PASS" if ok else "MISS", len(rates)))' "$1"
}

run() { # NAME LIMIT_KBPS WHAT SETUP...
  local name=$1 limit=$2 what=$3; shift 3
  "$@"
  printf '%-32s %9s ' "$name" "$limit"
  sample "$what" | windows "$limit"
}
reset() { peer bob limits --download 0 --turtle off >/dev/null; peer alice limits --upload 0 --turtle off >/dev/null; peer bob limit "$id" 0 >/dev/null 2>&1 || true; }

printf '%-32s %9s %9s %9s %7s %7s %s\n' run "limit" "min kB/s" "max kB/s" "min/lim" "max/lim" verdict
run "unlimited (the bound)" 0 down reset
for k in 1000 5000 20000; do
  run "download limit" "$k" down eval "reset; peer bob limits --download $k >/dev/null"
done
own() { reset; peer bob limits --download 20000 >/dev/null; until peer bob limit "$id" 2000 >/dev/null 2>&1; do sleep 0.1; done; }
run "own limit under global 20000" 2000 down own
for k in 1000 5000; do
  run "upload limit (alice)" "$k" up eval "reset; peer alice limits --upload $k >/dev/null"
done
run "turtle on, alt download" 500 down eval "reset; peer bob limits --alt-download 500 --turtle on >/dev/null"
