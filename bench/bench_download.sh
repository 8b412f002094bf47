#!/usr/bin/env bash
# bench_download.sh BUILD_DIR [SIZE_MIB]
# Direct download throughput of one file (default 1024 MiB) between two
# sova-peers on loopback, against the bound of moving the same bytes through
# one TLS 1.3 connection with openssl s_client -> s_server on this machine,
# in the same run. Prints both rates and the ratio (target >= 0.8).
# Not a test: nothing fails on a low ratio.
set -euo pipefail
build=$(cd "${1:?usage: bench_download.sh BUILD_DIR [SIZE_MIB]}" && pwd)
mib=${2:-1024}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/sova-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 600); do grep -Eq "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout: $2" >&2; exit 1; }
now() { date +%s.%N; }
calc() { awk "BEGIN { print $* }"; }

"$src/deploy/sova-federation" init "$work/fed" >/dev/null
"$src/deploy/sova-federation" issue "$work/fed" sn1 >/dev/null
mkdir -p "$work/a/share" "$work/b"
echo "making a ${mib} MiB random file..."
head -c $((mib * 1048576)) /dev/urandom >"$work/a/share/big.bin"
touch -d '1 hour ago' "$work/a/share/big.bin"
hash=$("$build/ordinary/sova-peer" hash "$work/a/share/big.bin" | awk '$1 == "id" { print $2 }')

# ---- the bound: the same file through one TLS 1.3 connection (openssl_bound.sh) ----
source "$src/bench/openssl_bound.sh"
openssl_s=$(openssl_bound "$work/a/share" big.bin "$work/fed/sn1.crt" "$work/fed/sn1.key" "$work")

# ---- Sova: supernode + two peers, bob downloads from alice ----
"$build/supernode/sova-supernode" --listen 127.0.0.1:0 --cert "$work/fed/sn1.crt" \
  --key "$work/fed/sn1.key" --federation-ca "$work/fed/root.crt" --state-dir "$work/sn" \
  --log-level warn 2>"$work/sn.log" &
pids+=($!)
sleep 0.3
"$build/supernode/sova-supernode" status --control "$work/sn/control.sock" --json >"$work/st.json"
snport=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"].split(":")[1])' "$work/st.json")
for p in a b; do
  "$build/ordinary/sova-peer" run --state-dir "$work/$p/state" --bootstrap "127.0.0.1:$snport" \
    --federation-ca "$work/fed/root.crt" --listen 127.0.0.1:0 --share "$work/$p/share" \
    --downloads "$work/$p/dl" 2>"$work/$p.log" &
  pids+=($!)
done
mkdir -p "$work/b/share"
wait_for "$work/a.log" "published 1 shared files"
wait_for "$work/b.log" "attached to supernode"
"$build/ordinary/sova-peer" --state-dir "$work/b/state" search big >/dev/null
t0=$(now)
"$build/ordinary/sova-peer" --state-dir "$work/b/state" get "$hash" >/dev/null
t1=$(now)
sova_s=$(calc "$t1 - $t0")
cmp -s "$work/a/share/big.bin" "$work/b/dl/big.bin" || { echo "downloaded file differs!"; exit 1; }

bytes=$((mib * 1048576))
printf 'file                 %d MiB\n' "$mib"
printf 'openssl s_server -WWW -> s_client %5.1f MiB/s  (%.2f s)\n' "$(calc "$bytes / 1048576 / $openssl_s")" "$openssl_s"
printf 'sova-peer get (direct)      %8.1f MiB/s  (%.2f s, verified, written, renamed)\n' "$(calc "$bytes / 1048576 / $sova_s")" "$sova_s"
printf 'ratio sova/openssl          %8.2f  (target >= 0.80)\n' "$(calc "$openssl_s / $sova_s")"
