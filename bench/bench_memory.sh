#!/usr/bin/env bash
# bench_memory.sh BUILD_DIR
# A supernode's memory under parked frames (issue 13, finding 5; not a
# test: nothing fails). For each run, a fresh sova-supernode on loopback
# and an attacker (tests/attack/pools.py park) whose LINKS links, 59 per
# address and one address per /24, each send HELLO, REGISTER (a backup
# session) and all but the last byte of a 1 MiB frame, then hold it. The
# supernode's RSS (/proc VmRSS) is read before, at its peak while they
# park, and 5 s after they leave; the bound docs/LIMITS.md states is
# max-buffered-bytes + 84 KiB per link (64 KiB a link may read before it is
# checked, about 20 KiB of TLS and buffers) over the RSS before.
# Runs: 500, 1,000 and 2,000 links with the default budget (256 MiB), 1,000
# with a 64 MiB budget, and 1,000 with the budget off (max-buffered-bytes 0,
# no shares: what a supernode held before the budget; inputs of closing
# links are still freed and the heap still trimmed).
# Env: RUNS ("LINKS:BUDGET_MIB ..."; 0 = off), KEYS_DIR (identities, kept).
set -euo pipefail
build=$(cd "${1:?usage: bench_memory.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
sn_bin=$build/supernode/sova-supernode
[ -x "$sn_bin" ] || { echo "missing $sn_bin (build first)" >&2; exit 2; }
runs=${RUNS:-"500:256 1000:256 2000:256 1000:64 1000:0"}
keys=${KEYS_DIR:-/tmp/sova-bench-memory-keys}
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d /tmp/sova-bench-memory.XXXXXX)
sn_pid="" atk_pid=""
cleanup() {
  for p in $atk_pid $sn_pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_for() { for _ in $(seq 600); do grep -Eq "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout: $2 in $1" >&2; exit 1; }
status() { "$sn_bin" status --control "$work/sn/control.sock" --json; }
jget() { python3 -c 'import json,sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[k]
print(v)' "$1"; }

"$src/deploy/sova-federation" init "$work/fed" >/dev/null
"$src/deploy/sova-federation" issue "$work/fed" sn1 >/dev/null
mkdir -p "$keys"
printf '%-6s %-7s %9s %9s %9s %9s %9s %7s %9s %9s\n' links budget "rss0 MiB" "peak MiB" "+MiB" \
  "bound" "after MiB" parked "share" displaced
for run in $runs; do
  links=${run%%:*} budget=${run##*:}
  ids=$(( (links + 5) / 6 )) # 6 links an identity: under its 8 MiB share
  addrs=$(( (links + 58) / 59 ))
  srcs=$(for ((i = 0; i < addrs; i++)); do printf '127.%d.%d.1,' $((10 + i / 250)) $((i % 250)); done)
  python3 "$src/tests/attack/pools.py" --dir "$keys" idents --n "$ids" >/dev/null
  if [ "$budget" = 0 ]; then
    opts=(--max-buffered-bytes 0 --max-buffered-bytes-per-prefix 0 --max-buffered-bytes-per-id 0)
  else
    opts=(--max-buffered-bytes $((budget * 1048576)))
  fi
  rm -rf "$work/sn"
  "$sn_bin" --listen 127.0.0.1:0 --cert "$work/fed/sn1.crt" --key "$work/fed/sn1.key" \
    --federation-ca "$work/fed/root.crt" --state-dir "$work/sn" --log-level warn "${opts[@]}" \
    2>"$work/sn.log" &
  sn_pid=$!
  port=
  for _ in $(seq 100); do
    port=$(status 2>/dev/null | jget listen 2>/dev/null | sed 's/.*://') && [ -n "$port" ] && break
    sleep 0.1
  done
  sleep 1
  rss0=$(rss_kib "$sn_pid")
  python3 "$src/tests/attack/pools.py" --dir "$keys" --target "127.0.0.1:$port" --srcs "${srcs%,}" \
    park --links "$links" --ids "$ids" >"$work/park.log" 2>&1 &
  atk_pid=$!
  peak=$rss0
  while ! grep -q "^held:" "$work/park.log"; do
    r=$(rss_kib "$sn_pid")
    [ "$r" -gt "$peak" ] && peak=$r
    kill -0 "$atk_pid" 2>/dev/null || { echo "the attacker died: $(tail -3 "$work/park.log")" >&2; exit 1; }
    sleep 0.1
  done
  for _ in $(seq 30); do
    r=$(rss_kib "$sn_pid")
    [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.1
  done
  st=$(status)
  share=$(jget abuse.buffered.closed_over_share <<<"$st")
  displaced=$(jget abuse.buffered.displaced <<<"$st")
  parked=$(sed -n 's/^held: \([0-9]*\) of.*/\1/p' "$work/park.log" | tail -1)
  kill "$atk_pid"
  wait "$atk_pid" 2>/dev/null || true
  atk_pid=""
  sleep 5
  after=$(rss_kib "$sn_pid")
  kill "$sn_pid"
  wait "$sn_pid" 2>/dev/null || true
  sn_pid=""
  bound=$([ "$budget" = 0 ] && echo "-" || echo $(( (budget * 1024 + links * 84) / 1024 )))
  printf '%-6s %-7s %9s %9s %9s %9s %9s %7s %9s %9s\n' "$links" \
    "$([ "$budget" = 0 ] && echo off || echo "${budget}M")" $((rss0 / 1024)) $((peak / 1024)) \
    $(( (peak - rss0) / 1024 )) "$bound" $((after / 1024)) "$parked" "$share" "$displaced"
done
