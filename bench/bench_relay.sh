#!/usr/bin/env bash
# bench_relay.sh BUILD_DIR [SIZE_MIB] [PAIRS] [CIRCUITS]
# Relay circuits on this machine, on loopback (not a test: nothing fails):
#  1. throughput of one file (default 1024 MiB) downloaded through a relay
#     circuit via one supernode, and via two (an SN<->SN splice), against
#     the bound of moving the same bytes directly through one TLS 1.3
#     connection with openssl s_client -> s_server in the same run (target
#     >= 0.45 for one supernode). The downloader runs with `--ways relay`,
#     so the file takes the relay although the source could be reached
#     directly; inside the circuit the peers run their own TLS.
#  2. supernode memory per MB/s relayed: peak RSS during the transfer over
#     its RSS before, divided by the rate;
#  3. supernode memory per idle circuit: PAIRS x 2 peers attach
#     (bench/relay_circuits), then each origin opens CIRCUITS circuits to
#     its target (default 500 x 20 = 10,000 circuits): RSS after over RSS
#     before, divided by the circuits.
set -euo pipefail
build=$(cd "${1:?usage: bench_relay.sh BUILD_DIR [SIZE_MIB] [PAIRS] [CIRCUITS]}" && pwd)
mib=${2:-1024}
pairs=${3:-500}
circuits=${4:-20}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/sova-bench-relay.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1200); do grep -Eq "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout: $2 in $1" >&2; exit 1; }
now() { date +%s.%N; }
calc() { awk "BEGIN { print $* }"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
heap() { # supernode NAME's allocated bytes (glibc mallinfo2, from its status)
  "$build/supernode/sova-supernode" status --control "$work/$1/control.sock" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["heap_bytes"])'
}
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
ulimit -n "$(ulimit -Hn)"

fed=$src/deploy/sova-federation
"$fed" init "$work/fed" >/dev/null
for i in 1 2 3; do "$fed" issue "$work/fed" "sn$i" >/dev/null; done
mkdir -p "$work/a/share"
echo "making a ${mib} MiB random file..."
head -c $((mib * 1048576)) /dev/urandom >"$work/a/share/big.bin"
touch -d '1 hour ago' "$work/a/share/big.bin"
hash=$("$build/ordinary/sova-peer" hash "$work/a/share/big.bin" | awk '$1 == "id" { print $2 }')
bytes=$((mib * 1048576))

# ---- the bound: one direct TLS 1.3 connection (openssl_bound.sh) ----
source "$src/bench/openssl_bound.sh"
openssl_s=$(openssl_bound "$work/a/share" big.bin "$work/fed/sn1.crt" "$work/fed/sn1.key" "$work")

# start_sn NAME [ARGS...]: prints nothing; PORT_NAME and PID_NAME set.
start_sn() {
  local name=$1; shift
  "$build/supernode/sova-supernode" --listen 127.0.0.1:0 --cert "$work/fed/$name.crt" \
    --key "$work/fed/$name.key" --federation-ca "$work/fed/root.crt" --state-dir "$work/$name" \
    "$@" 2>"$work/$name.log" &
  pids+=($!)
  eval "PID_$name=$!"
  wait_for "$work/$name.log" "listening on 127\.0\.0\.1:[0-9]+"
  eval "PORT_$name=$(grep -Eo 'listening on 127\.0\.0\.1:[0-9]+' "$work/$name.log" | head -1 | sed 's/.*://')"
}
start_peer() { # NAME BOOTSTRAP [ARGS...]
  local name=$1 boot=$2; shift 2
  mkdir -p "$work/$name/share"
  "$build/ordinary/sova-peer" run --state-dir "$work/$name/state" --bootstrap "$boot" \
    --federation-ca "$work/fed/root.crt" --listen 127.0.0.1:0 --share "$work/$name/share" \
    --downloads "$work/$name/dl" "$@" 2>"$work/$name.log" &
  pids+=($!)
}

# relay_run LABEL SN_PIDS...: b downloads big.bin from a; prints the line.
relay_run() {
  local label=$1; shift
  wait_for "$work/a.log" "published 1 shared files"
  wait_for "$work/b.log" "attached to supernode"
  local before=() p
  for p in "$@"; do before+=("$(rss_kib "$p")"); done
  for _ in $(seq 300); do
    "$build/ordinary/sova-peer" --state-dir "$work/b/state" search big 2>/dev/null | grep -q "$hash" && break
    sleep 0.1
  done
  local t0 t1
  t0=$(now)
  "$build/ordinary/sova-peer" --state-dir "$work/b/state" get "$hash" --json >"$work/get.json"
  t1=$(now)
  cmp -s "$work/a/share/big.bin" "$work/b/dl/big.bin" || { echo "downloaded file differs!"; exit 1; }
  grep -q '"via": "relay"' "$work/get.json" || { echo "the download did not take a relay"; exit 1; }
  local s rate i=0 mem=""
  s=$(calc "$t1 - $t0")
  rate=$(calc "$bytes / 1048576 / $s")
  for p in "$@"; do
    mem="$mem $(calc "($(hwm_kib "$p") - ${before[$i]}) / $rate" | xargs printf '%.0f')"
    i=$((i + 1))
  done
  printf '%-30s %8.1f MiB/s  (%.2f s)  ratio %.2f   supernode peak KiB per MiB/s:%s\n' "$label" \
    "$rate" "$s" "$(calc "$openssl_s / $s")" "$mem"
}

echo "file: $mib MiB; cores: $(nproc)"
printf '%-30s %8.1f MiB/s  (%.2f s)\n' "openssl s_server -> s_client" \
  "$(calc "$bytes / 1048576 / $openssl_s")" "$openssl_s"

# ---- one supernode ----
start_sn sn1
start_peer a "127.0.0.1:$PORT_sn1"
start_peer b "127.0.0.1:$PORT_sn1" --ways relay
relay_run "relay via one supernode" "$PID_sn1"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
rm -rf "$work/a/state" "$work/b" "$work/sn1"

# ---- two supernodes: a on sn1, b on sn2 ----
start_sn sn1 --summary-interval-ms 200
start_sn sn2 --peers "127.0.0.1:$PORT_sn1" --summary-interval-ms 200
start_peer a "127.0.0.1:$PORT_sn1"
start_peer b "127.0.0.1:$PORT_sn2" --ways relay
relay_run "relay via two supernodes" "$PID_sn1" "$PID_sn2"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

# ---- idle circuits ----
# (one loopback prefix holds them all, and they stay idle on purpose: no
# prefix cap, no idle timeout)
start_sn sn3 --relay-max-circuits 1000000 --relay-max-peer-circuits 65536 --max-conns-per-ip 0 --max-handshakes 100000 \
  --max-peers 1000000 --relay-max-prefix-circuits 0 --relay-idle-timeout-s 0
"$build/bench/relay_circuits" "127.0.0.1:$PORT_sn3" "$work/fed/root.crt" "$work/keys" "$pairs" \
  "$circuits" >"$work/rc.out" 2>"$work/rc.err" &
rc_pid=$!
pids+=($rc_pid)
wait_for "$work/rc.out" "^attached"
sleep 1
before=$(rss_kib "$PID_sn3")
heap0=$(heap sn3)
kill -USR1 "$rc_pid"
wait_for "$work/rc.out" "^open"
sleep 1
after=$(rss_kib "$PID_sn3")
heap1=$(heap sn3)
n=$((pairs * circuits))
printf '%-30s %8d circuits between %d peers: %.0f bytes each allocated (heap %d -> %d KiB; RSS %d -> %d KiB)\n' \
  "idle relay circuits" "$n" $((2 * pairs)) "$(calc "($heap1 - $heap0) / $n")" $((heap0 / 1024)) \
  $((heap1 / 1024)) "$before" "$after"
