#!/usr/bin/env bash
# bench_sn_search.sh BUILD_DIR
# Supernode search over the network: one sova-supernode on 127.0.0.1 and
# sova_loadgen playing PEERS ordinary peers over TLS 1.3 (the real wire
# protocol). The peers publish PEERS x FILES records (default 100 x 10,000 =
# 1,000,000), then, on the same links and in the same run:
#   search   unpaced for SECONDS: searches/s the supernode serves;
#   search   offered at the target rate (50,000/s): p99 at that load;
#   search   offered at 80% of what the unpaced phase reached;
#   locate   unpaced: the cheapest request the supernode answers (a LOCATE
#            of the asking peer itself) - the bound for "a request";
#   ping     unpaced: PING -> PONG answered by link.c, no supernode logic
#            at all - the bound for the transport (TLS, framing, loop).
# Prints the targets (>= 50,000 searches/s, p99 < 2 ms) as ratios and
# PASS/MISS lines, searches against the bounds, the supernode's CPU per
# request, its RSS and `sova-supernode status --json`.
# The loadgen and the supernode are one thread each; on a 2-core machine
# they share the cores with each other (and with whatever else runs).
# Not a test: nothing fails on a MISS. Builds nothing.
# Env: PEERS FILES SEARCHERS PIPELINE SECONDS_PHASE MAX_RESULTS TARGET_RATE KEYS_DIR
set -euo pipefail
build=$(cd "${1:?usage: bench_sn_search.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-100}
files=${FILES:-10000}
searchers=${SEARCHERS:-$peers}
pipeline=${PIPELINE:-4}
seconds=${SECONDS_PHASE:-10}
max_results=${MAX_RESULTS:-100}
target_rate=${TARGET_RATE:-50000}
target_p99_us=2000
sn_bin=$build/supernode/sova-supernode
lg_bin=$build/bench/sova_loadgen
for b in "$sn_bin" "$lg_bin"; do [ -x "$b" ] || { echo "missing $b (build first)" >&2; exit 2; }; done

work=$(mktemp -d /tmp/sova-bench-sn.XXXXXX)
keys=${KEYS_DIR:-/tmp/sova-bench-sn-keys} # peer identities, kept across runs
sn_pid=
cleanup() {
  if [ -n "$sn_pid" ]; then kill "$sn_pid" 2>/dev/null || true; wait "$sn_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
calc() { awk "BEGIN { print $* }"; }
field() { sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$1" | head -1; }
verdict() { awk "BEGIN { exit !($*) }" && echo PASS || echo MISS; }

ulimit -n "$(ulimit -Hn)" # the supernode holds one socket per peer
"$src/deploy/sova-federation" init "$work/fed" >/dev/null
"$src/deploy/sova-federation" issue "$work/fed" sn1 >/dev/null

# Per-peer caps raised to fit FILES records of ~20-byte names; the abuse
# limits (docs/LIMITS.md) off: a few peers here play many real ones.
"$sn_bin" --listen 127.0.0.1:0 --cert "$work/fed/sn1.crt" --key "$work/fed/sn1.key" \
  --federation-ca "$work/fed/root.crt" --state-dir "$work/sn" --log-level warn \
  --max-files-per-peer "$files" --max-name-bytes-per-peer $((files * 64 > 256 ? files * 64 : 256)) \
  --max-results "$max_results" --max-conns-per-ip 0 --max-frames-per-s 0 --max-records-per-prefix 0 \
  --search-rate 1000000 --publish-rate 10000000 2>"$work/sn.log" &
sn_pid=$!
port=
for _ in $(seq 100); do
  if "$sn_bin" status --control "$work/sn/control.sock" --json >"$work/st0.json" 2>/dev/null; then
    port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"].rsplit(":",1)[1])' "$work/st0.json")
    break
  fi
  sleep 0.1
done
[ -n "$port" ] || { echo "supernode did not start: $(tail -5 "$work/sn.log")" >&2; exit 1; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); supernode and loadgen are one thread each and share these cores"
echo "supernode pid $sn_pid on 127.0.0.1:$port; $peers peers x $files files, $searchers searchers x $pipeline in flight, max_results $max_results"
modes="search:$seconds,search:$seconds:$target_rate,search:$((seconds / 2)):80%,locate:$((seconds / 2)),ping:$((seconds / 2))"
echo "+ sova_loadgen --peers $peers --files $files --searchers $searchers --pipeline $pipeline --mode $modes --source-base 127.1.0.0 ..."
lg_rc=0
"$lg_bin" --supernode "127.0.0.1:$port" --federation-ca "$work/fed/root.crt" --keys-dir "$keys" \
  --peers "$peers" --files "$files" --searchers "$searchers" --pipeline "$pipeline" \
  --max-results "$max_results" --mode "$modes" --source-base 127.1.0.0 --sn-pid "$sn_pid" \
  --hold 3 >"$work/lg.out" 2>"$work/lg.err" &
lg_pid=$!
# While the loadgen holds its peers after the phases: status and RSS with
# the whole index loaded.
for _ in $(seq 3000); do grep -q '^hold:' "$work/lg.out" && break; kill -0 $lg_pid 2>/dev/null || break; sleep 0.1; done
"$sn_bin" status --control "$work/sn/control.sock" --json >"$work/st1.json" 2>/dev/null || true
rss_kb=$(awk '/^VmRSS:/ { print $2 }' /proc/$sn_pid/status)
hwm_kb=$(awk '/^VmHWM:/ { print $2 }' /proc/$sn_pid/status)
wait $lg_pid || lg_rc=$?
grep -v '^RESULT' "$work/lg.out"
[ -s "$work/lg.err" ] && { echo "--- loadgen stderr (last lines)"; tail -5 "$work/lg.err"; }
[ $lg_rc -eq 0 ] || echo "loadgen exit status $lg_rc: attach or publish failed badly; figures below are suspect"

res=$(grep '^RESULT ' "$work/lg.out" || true)
ph() { grep "^RESULT_PHASE n=$1 " "$work/lg.out" || true; }
s1=$(ph 1) s2=$(ph 2) s3=$(ph 3) l4=$(ph 4) p5=$(ph 5)
[ -n "$s1" ] && [ -n "$l4" ] && [ -n "$p5" ] || { echo "loadgen did not finish its phases" >&2; exit 1; }
sps=$(field "$s1" per_s)
s2_rate=$(field "$s2" per_s) s2_p99=$(field "$s2" p99_us)
echo
echo "== supernode search over the network: $(field "$res" accepted) records indexed"
printf 'searches/s served (unpaced)        %8.0f   target >= %d: ratio %.2f  %s\n' "$sps" "$target_rate" \
  "$(calc "$sps / $target_rate")" "$(verdict "$sps >= $target_rate")"
printf 'at %d/s offered: served %8.0f/s, p99 %.0f us   target < %d us: ratio %.2f  %s\n' "$target_rate" \
  "$s2_rate" "$s2_p99" "$target_p99_us" "$(calc "$s2_p99 / $target_p99_us")" \
  "$(verdict "$s2_rate >= 0.99 * $target_rate && $s2_p99 < $target_p99_us")"
printf 'at 80%% of unpaced (%.0f/s): p50 %.0f us, p99 %.0f us, max %.0f us\n' "$(field "$s3" offered_per_s)" \
  "$(field "$s3" p50_us)" "$(field "$s3" p99_us)" "$(field "$s3" max_us)"
printf 'hits per search %.1f (max_results %d)\n' "$(field "$s1" hits_per_op)" "$max_results"
echo "== the bounds, same links, same run"
printf 'locate round trips/s (unpaced)     %8.0f   searches/s / locates/s = %.2f\n' "$(field "$l4" per_s)" \
  "$(calc "$sps / $(field "$l4" per_s)")"
printf 'ping round trips/s (unpaced)       %8.0f   searches/s / pings/s   = %.2f\n' "$(field "$p5" frames_per_s)" \
  "$(calc "$sps / $(field "$p5" frames_per_s)")"
printf 'supernode CPU per request: search %.1f us, locate %.1f us, ping-batch frame %.2f us\n' \
  "$(field "$s1" sn_us_per_op)" "$(field "$l4" sn_us_per_op)" \
  "$(calc "$(field "$p5" sn_us_per_op) / ($(field "$p5" frames_per_s) / $(field "$p5" per_s))")"
printf 'cores busy while searching unpaced: supernode %.2f, loadgen %.2f, other processes %.2f (of %d)\n' \
  "$(field "$s1" sn_cores)" "$(field "$s1" loadgen_cores)" "$(field "$s1" other_cores)" "$(nproc)"
echo "== supernode memory and status"
printf 'RSS %.1f MiB (peak %.1f MiB), %.0f bytes per record\n' "$(calc "$rss_kb / 1024")" "$(calc "$hwm_kb / 1024")" \
  "$(calc "$rss_kb * 1024 / ($(field "$res" accepted) + 1)")"
python3 - "$work/st1.json" <<'PY' || cat "$work/st1.json"
import json, sys
s = json.load(open(sys.argv[1]))
print("status --json: peers %(peers)d, files_indexed %(files_indexed)d, distinct_files %(distinct_files)d, "
      "keywords %(keywords)d, searches_served %(searches_served)d, locates_served %(locates_served)d, "
      "bytes_in %(bytes_in)d, bytes_out %(bytes_out)d" % s)
PY
echo "$res"
