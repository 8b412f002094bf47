#!/usr/bin/env bash
# bench_federation.sh BUILD_DIR [SECTION...]
# The supernode federation against its targets (docs/PERFORMANCE.md), on
# loopback, with real processes. SECTION (default: all three):
#   convergence  N_SN (32) supernodes, each seeded with sn1: a new one's
#                join known by all (target <= 2 s), steady-state gossip per
#                supernode (<= 2 KB/s: the status counter of GOSSIP frame
#                bytes, and the kernel's TCP counters of its sockets with
#                TCP/IP headers), a SIGKILLed one declared dead by all
#                (<= 5 s); each also in protocol periods next to log2(N).
#   failover     three supernodes A, B, C; alice attached to A with B as
#                backup, bob on C: A is SIGKILLed (target: alice's file found
#                by bob's search through C <= 1 s) or SIGSTOPped - silent, no
#                reset (target <= the peer timeout + 1 s). RUNS (3) each.
#   fanout       N_FANOUT (16) supernodes, one peer each publishing words
#                that live on its supernode only (bench/sova_fanout); timed
#                searches for words of another supernode: the supernodes a
#                search touches (status counters: origin + searches_forwarded;
#                target <= 2 on average) and latency (p99 <= 10 ms).
# Times come from the daemons' own log timestamps (UTC, ms) where they can,
# so polling does not blur them. Before each section the script waits (up
# to LOAD_WAIT s) for the 1-minute load average to fall under LOAD_MAX and
# prints it next to the figures: rerun when the machine was busy.
# Not a test: nothing fails on a MISS. Builds nothing.
# Env: N_SN N_FANOUT RUNS FANOUT_FILES FANOUT_SEARCHES GOSSIP_WINDOW_S LOAD_MAX LOAD_WAIT
set -euo pipefail
build=$(cd "${1:?usage: bench_federation.sh BUILD_DIR [convergence|failover|fanout]...}" && pwd)
shift
sections=${*:-convergence failover fanout}
src=$(cd "$(dirname "$0")/.." && pwd)
sn_bin=$build/supernode/sova-supernode
peer_bin=$build/ordinary/sova-peer
fanout_bin=$build/bench/sova_fanout
for b in "$sn_bin" "$peer_bin" "$fanout_bin"; do [ -x "$b" ] || { echo "missing $b (build first)" >&2; exit 2; }; done
FED=$src/deploy/sova-federation
n_sn=${N_SN:-32}
n_fanout=${N_FANOUT:-16}
runs=${RUNS:-3}
gossip_window=${GOSSIP_WINDOW_S:-30}
load_max=${LOAD_MAX:-1.5}
load_wait=${LOAD_WAIT:-300}
period_ms=500 # SN_MEMBER_PERIOD_MS_DEFAULT

work=$(mktemp -d /tmp/sova-bench-fed.XXXXXX)
declare -A PID PORT ID
cleanup() {
  local p
  for p in "${PID[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
calc() { awk "BEGIN { print $* }"; }
verdict() { awk "BEGIN { exit !($*) }" && echo PASS || echo MISS; }
log2ceil() { local n=$1 k=0; while [ $((1 << k)) -lt "$n" ]; do k=$((k + 1)); done; echo $k; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# Wait for a quiet machine; print the load average we measure under.
quiet() {
  local deadline=$((SECONDS + load_wait)) l
  while :; do
    l=$(cut -d' ' -f1 /proc/loadavg)
    awk -v l="$l" -v m="$load_max" 'BEGIN { exit !(l < m) }' && break
    [ $SECONDS -lt $deadline ] || { echo "!! load average $l still >= $load_max after ${load_wait} s: figures below are on a busy machine"; break; }
    sleep 5
  done
  echo "== $1: load average $(loadavg) ($(nproc) cores)"
}
free_ports() { python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"; }

# start_sn NAME SEEDS [ARGS...]: a supernode on 127.0.0.1:PORT[NAME] with certificate NAME.
start_sn() {
  local name=$1 seeds=$2; shift 2
  local args=(--listen "127.0.0.1:${PORT[$name]}" --cert "$work/fed/$name.crt" --key "$work/fed/$name.key"
    --federation-ca "$work/fed/root.crt" --state-dir "$work/$name-state")
  [ -n "$seeds" ] && args+=(--peers "$seeds")
  "$sn_bin" "${args[@]}" "$@" >>"$work/$name.log" 2>&1 &
  PID[$name]=$!
}
stop_all() {
  local name
  for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null || true; done
  for name in "${!PID[@]}"; do wait "${PID[$name]}" 2>/dev/null || true; done
  PID=()
}
status() { "$sn_bin" status --control "$work/$1-state/control.sock" --json 2>/dev/null; }
alive_count() { status "$1" | python3 -c 'import json,sys; print(sum(m["state"] == "alive" for m in json.load(sys.stdin)["members"]))' 2>/dev/null || echo -1; }
# wait_alive SECS N NAME...: until every NAME sees N members alive.
wait_alive() {
  local secs=$1 n=$2 name; shift 2
  local deadline=$((SECONDS + secs))
  for name in "$@"; do
    until [ "$(alive_count "$name")" -ge "$n" ]; do
      [ $SECONDS -lt $deadline ] || { echo "!! $name does not see $n alive after ${secs} s" >&2; return 1; }
      sleep 0.3
    done
  done
}
certs() { # N: root + sn1..snN, IDs in ID[]
  [ -f "$work/fed/root.crt" ] || "$FED" init "$work/fed" >/dev/null
  local i
  for i in $(seq 1 "$1"); do
    [ -f "$work/fed/sn$i.crt" ] || "$FED" issue "$work/fed" "sn$i" >/dev/null
    ID[sn$i]=$("$FED" id "$work/fed/sn$i.crt")
  done
}
# log_first REGEX T0_MS FILE...: per FILE, the ms timestamp of its first line
# matching REGEX logged at or after T0_MS, or "none".
log_first() {
  python3 - "$@" <<'PY'
import datetime, re, sys
rx, t0 = re.compile(sys.argv[1]), int(sys.argv[2])
for path in sys.argv[3:]:
    found = "none"
    for line in open(path, errors="replace"):
        if not rx.search(line):
            continue
        try:
            t = datetime.datetime.strptime(line.split(" ", 1)[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
        except ValueError:
            continue
        ms = round(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
        if ms >= t0:
            found = str(ms)
            break
    print(found)
PY
}
# wait_logs SECS REGEX T0_MS FILE...: until every FILE has such a line; prints the latest of the firsts.
wait_logs() {
  local secs=$1 rx=$2 t0=$3; shift 3
  local deadline=$((SECONDS + secs)) out
  while :; do
    out=$(log_first "$rx" "$t0" "$@")
    if ! grep -q none <<<"$out"; then sort -n <<<"$out" | tail -1; return 0; fi
    [ $SECONDS -lt $deadline ] || { echo "!! $(grep -c none <<<"$out") of $# logs lack /$rx/ after ${secs} s" >&2; return 1; }
    sleep 0.2
  done
}

# ---------------------------------------------------------------- convergence
convergence() {
  local n=$n_sn i name ports rounds=$(log2ceil "$n_sn")
  quiet "convergence: $n supernodes"
  certs "$n"
  read -r -a ports <<<"$(free_ports "$n")"
  for i in $(seq 1 "$n"); do PORT[sn$i]=${ports[$((i - 1))]}; done
  local seed="127.0.0.1:${PORT[sn1]}" others=()
  start_sn sn1 ""
  for i in $(seq 2 $((n - 1))); do start_sn "sn$i" "$seed"; done
  for i in $(seq 1 $((n - 1))); do others+=("sn$i"); done
  local t_start
  t_start=$(now_ms)
  wait_alive 180 $((n - 2)) "${others[@]}"
  echo "$((n - 1)) supernodes started at once, seeded with sn1: all see all alive after $(calc "($(now_ms) - $t_start) / 1000") s (polled)"
  sleep 5
  echo "load average before the join: $(loadavg)"

  # A join: sn<n>, seeded with sn1 only.
  local new=sn$n logs=() t0 t_up t_all
  for name in "${others[@]}"; do logs+=("$work/$name.log"); done
  t0=$(now_ms)
  start_sn "$new" "$seed"
  t_all=$(wait_logs 60 "member ${ID[$new]:0:8}: gone -> alive" "$t0" "${logs[@]}")
  t_up=$(log_first "listening on" "$t0" "$work/$new.log")
  local join=$((t_all - t0)) join_up=$((t_all - t_up))
  printf 'join known by all %d others   %5.2f s after its start (%.2f s after it listened)   target <= 2 s: %s\n' \
    $((n - 1)) "$(calc "$join / 1000")" "$(calc "$join_up / 1000")" "$(verdict "$join <= 2000")"
  printf '   = %.1f protocol periods of %d ms; log2(%d) = %d rounds\n' "$(calc "$join / $period_ms")" "$period_ms" "$n" "$rounds"
  wait_alive 60 $((n - 1)) "${others[@]}" "$new"

  # Steady state: load announcements of the join settled, then a window.
  local all=("${others[@]}" "$new")
  sleep 20
  echo "load average before the gossip window: $(loadavg)"
  gossip_snapshot "${all[@]}" >"$work/g1"
  sleep "$gossip_window"
  gossip_snapshot "${all[@]}" >"$work/g2"
  python3 - "$work/g1" "$work/g2" "$n" "$period_ms" <<'PY'
import sys
def load(p):
    d = {}
    for line in open(p):
        name, t, msgs, fbytes, t_ss, tbytes, segs = line.split()
        d[name] = (int(t), int(msgs), int(fbytes), int(t_ss), int(tbytes), int(segs))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
n, period = int(sys.argv[3]), int(sys.argv[4])
rows = []
for k in a:
    dt = (b[k][0] - a[k][0]) / 1000.0
    dt_ss = (b[k][3] - a[k][3]) / 1000.0
    rows.append(((b[k][1] - a[k][1]) / dt, (b[k][2] - a[k][2]) / dt,
                 (b[k][4] - a[k][4]) / dt_ss, (b[k][5] - a[k][5]) / dt_ss))
def stat(i):
    v = sorted(r[i] for r in rows)
    return sum(v) / len(v), v[-1]
m_msgs, x_msgs = stat(0)
m_f, x_f = stat(1)
m_t, x_t = stat(2)
m_s, x_s = stat(3)
wire = [r[2] + 52 * r[3] for r in rows]  # + IPv4 20 + TCP 32 (timestamps) per segment
m_w, x_w = sum(wire) / len(wire), max(wire)
verdict = lambda v: "PASS" if v <= 2000 else "MISS"
print("steady-state gossip per supernode (mean / max of %d, %.0f s window):" % (len(rows), dt))
print("  GOSSIP frames sent      %6.2f / %6.2f per s  (%.2f per protocol period; %.0f bytes each)" % (m_msgs, x_msgs, m_msgs * period / 1000.0, m_f / m_msgs if m_msgs else 0))
print("  GOSSIP frame bytes      %6.0f / %6.0f B/s   target <= 2 KB/s (2000 B/s): %s" % (m_f, x_f, verdict(x_f)))
print("  TCP payload sent        %6.0f / %6.0f B/s   (TLS records: GOSSIP, summaries, all SN links)" % (m_t, x_t))
print("  on the wire, headers in %6.0f / %6.0f B/s   (%.1f segments/s)   target <= 2000 B/s: %s" % (m_w, x_w, m_s, verdict(x_w)))
PY

  # A crash: the middle supernode SIGKILLed.
  local victim=sn$((n / 2)) rest=() t_kill t_dead t_susp
  for name in "${all[@]}"; do [ "$name" = "$victim" ] || rest+=("$work/$name.log"); done
  sleep 2
  echo "load average before the kill: $(loadavg)"
  t_kill=$(now_ms)
  kill -KILL "${PID[$victim]}"
  wait "${PID[$victim]}" 2>/dev/null || true
  t_dead=$(wait_logs 60 "member ${ID[$victim]:0:8}: [a-z]+ -> dead" "$t_kill" "${rest[@]}")
  t_susp=$(log_first "member ${ID[$victim]:0:8}: alive -> suspect" "$t_kill" "${rest[@]}" | sort -n | grep -v none | head -1 || true)
  local dead=$((t_dead - t_kill))
  printf 'SIGKILLed, declared dead by all %d others %5.2f s after the kill (first suspicion +%.2f s)   target <= 5 s: %s\n' \
    "${#rest[@]}" "$(calc "$dead / 1000")" "$(calc "(${t_susp:-$t_kill} - $t_kill) / 1000")" "$(verdict "$dead <= 5000")"
  local lg10=1; [ "$n" -ge 9 ] && lg10=2; [ "$n" -ge 99 ] && lg10=3
  printf '   = %.1f protocol periods; suspicion timeout max(2 s, 2 x ceil(log10(N+1)) = %d periods) = %.1f s; log2(%d) = %d rounds\n' \
    "$(calc "$dead / $period_ms")" $((2 * lg10)) "$(calc "(2 * $lg10 * $period_ms > 2000 ? 2 * $lg10 * $period_ms : 2000) / 1000")" "$n" "$rounds"
  stop_all
}

# One line per supernode: NAME now_ms gossip_msgs gossip_bytes ss_ms tcp_bytes_sent tcp_segs_out
# (the status counters read at now_ms, the kernel's TCP counters of its sockets at ss_ms).
gossip_snapshot() {
  local name t tcp
  local t_ss
  t_ss=$(now_ms)
  ss -tinpH state established >"$work/ss.out" 2>/dev/null || true
  for name in "$@"; do
    t=$(now_ms)
    tcp=$(python3 -c '
import re, sys
pid, text = sys.argv[1], open(sys.argv[2]).read().splitlines()
b = s = 0
for i, line in enumerate(text):
    if "pid=%s," % pid in line and i + 1 < len(text):
        m1 = re.search(r"bytes_sent:(\d+)", text[i + 1]); m2 = re.search(r"segs_out:(\d+)", text[i + 1])
        b += int(m1.group(1)) if m1 else 0; s += int(m2.group(1)) if m2 else 0
print(b, s)' "${PID[$name]}" "$work/ss.out")
    tcp="$t_ss $tcp"
    echo "$name $t $(status "$name" | python3 -c 'import json,sys; g=json.load(sys.stdin)["gossip"]; print(g["messages_sent"], g["bytes_sent"])') $tcp"
  done
}

# ------------------------------------------------------------------ failover
# failover_run MODE (kill|stop): A, B, C; alice on A (backup B), bob on C.
failover_run() {
  local mode=$1 run=$2 ports i
  PID=()
  rm -rf "$work"/fo-*
  read -r -a ports <<<"$(free_ports 3)"
  PORT[sn1]=${ports[0]} PORT[sn2]=${ports[1]} PORT[sn3]=${ports[2]}
  local opts=(--keepalive-s 1 --peer-timeout-s "$fo_timeout")
  start_sn sn1 "" "${opts[@]}"
  start_sn sn2 "127.0.0.1:${PORT[sn1]}" "${opts[@]}"
  wait_alive 30 1 sn1 sn2
  mkdir -p "$work/fo-alice/share" "$work/fo-bob/share"
  head -c 100000 /dev/urandom >"$work/fo-alice/share/failover-probe-$run.bin"
  "$peer_bin" run --state-dir "$work/fo-alice/state" --bootstrap "127.0.0.1:${PORT[sn1]}" \
    --federation-ca "$work/fed/root.crt" --listen 127.0.0.1:0 --share "$work/fo-alice/share" \
    --upnp no >>"$work/fo-alice.log" 2>&1 &
  PID[alice]=$!
  local deadline=$((SECONDS + 30))
  until grep -q "backup session with supernode ${ID[sn2]}" "$work/fo-alice.log" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "!! alice has no backup on sn2"; return 1; }
    sleep 0.1
  done
  grep -q "attached to supernode ${ID[sn1]}" "$work/fo-alice.log" || { echo "!! alice is not on sn1"; return 1; }
  start_sn sn3 "127.0.0.1:${PORT[sn1]}" "${opts[@]}"
  wait_alive 30 2 sn1 sn2 sn3
  "$peer_bin" run --state-dir "$work/fo-bob/state" --bootstrap "127.0.0.1:${PORT[sn3]}" \
    --federation-ca "$work/fed/root.crt" --listen 127.0.0.1:0 --share "$work/fo-bob/share" \
    --upnp no >>"$work/fo-bob.log" 2>&1 &
  PID[bob]=$!
  deadline=$((SECONDS + 30))
  until grep -q "attached to supernode ${ID[sn3]}" "$work/fo-bob.log" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "!! bob is not on sn3"; return 1; }
    sleep 0.1
  done
  # Found before the fault (sn1's summary reached sn3)?
  deadline=$((SECONDS + 30))
  until "$peer_bin" --state-dir "$work/fo-bob/state" search failover probe "$run" 2>/dev/null | grep -q "failover-probe-$run.bin"; do
    [ $SECONDS -lt $deadline ] || { echo "!! bob cannot find alice's file before the fault"; return 1; }
    sleep 0.2
  done
  sleep 11 # past sn2's summary rebuild interval (10 s): its next rebuild is immediate
  local t0 t_try t_found t_prom t_pub
  t0=$(now_ms)
  if [ "$mode" = kill ]; then
    kill -KILL "${PID[sn1]}"
    wait "${PID[sn1]}" 2>/dev/null || true
  else
    kill -STOP "${PID[sn1]}"
  fi
  # bob searches again and again through sn3 until alice's file is there.
  deadline=$((SECONDS + 60))
  while :; do
    t_try=$(now_ms)
    if "$peer_bin" --state-dir "$work/fo-bob/state" search failover probe "$run" 2>/dev/null | grep -q "failover-probe-$run.bin"; then
      if grep -q "promoting backup supernode" "$work/fo-alice.log"; then break; fi
    fi
    [ $SECONDS -lt $deadline ] || { echo "!! not found within 60 s"; return 1; }
  done
  t_found=$(now_ms)
  t_prom=$(log_first "promoting backup supernode ${ID[sn2]}" "$t0" "$work/fo-alice.log")
  t_pub=$(log_first "published 1 shared files" "$t0" "$work/fo-alice.log")
  local found=$((t_found - t0))
  echo "$mode $run $found $((t_try - t0)) $((t_prom - t0)) $((t_pub - t0))" >>"$work/failover.txt"
  printf '  run %d: alice promotes sn2 +%.2f s, republished +%.2f s, found by bob through sn3 +%.2f s (the successful search started at +%.2f s)\n' \
    "$run" "$(calc "($t_prom - $t0) / 1000")" "$(calc "($t_pub - $t0) / 1000")" "$(calc "$found / 1000")" "$(calc "($t_try - $t0) / 1000")"
  [ "$mode" = stop ] && kill -CONT "${PID[sn1]}" 2>/dev/null
  stop_all
  sleep 1
}

failover() {
  fo_timeout=3
  certs 3
  local mode r target
  for mode in kill stop; do
    quiet "failover: primary $([ $mode = kill ] && echo SIGKILLed || echo "SIGSTOPped (silent, no reset)"), peer-timeout-s $fo_timeout"
    for r in $(seq 1 "$runs"); do failover_run "$mode" "$r"; done
    target=$([ $mode = kill ] && echo 1000 || echo $(((fo_timeout + 1) * 1000)))
    python3 - "$work/failover.txt" "$mode" "$target" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.split()[0] == sys.argv[2]]
found = sorted(int(r[2]) for r in rows)
target = int(sys.argv[3])
print("%s: found again after %s s (median %.2f s, worst %.2f s)   target <= %.1f s: %s" % (
    "SIGKILL" if sys.argv[2] == "kill" else "silent primary", ", ".join("%.2f" % (f / 1000) for f in found),
    statistics.median(found) / 1000, found[-1] / 1000, target / 1000, "PASS" if found[-1] <= target else "MISS"))
PY
  done
}

# -------------------------------------------------------------------- fanout
# search_counters NAME...: "forwarded relayed" summed over the supernodes.
search_counters() {
  local name f=0 r=0 one
  for name in "$@"; do
    one=$(status "$name" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["searches_forwarded"], j["searches_relayed"])')
    f=$((f + ${one% *})) r=$((r + ${one#* }))
  done
  echo "$f $r"
}
fanout() {
  local n=$n_fanout i ports list="" names=() before after
  quiet "fanout: $n supernodes"
  certs "$n"
  PID=()
  read -r -a ports <<<"$(free_ports "$n")"
  for i in $(seq 1 "$n"); do
    PORT[sn$i]=${ports[$((i - 1))]}
    list="$list${list:+,}127.0.0.1:${PORT[sn$i]}"
    names+=("sn$i")
  done
  # One client plays a peer on each supernode at thousands of searches a
  # second: the per-peer abuse limits are off, as in bench_sn_search.sh.
  local opts=(--log-level warn --summary-interval-ms 1000 --search-rate 1000000 --max-frames-per-s 0)
  start_sn sn1 "" "${opts[@]}"
  for i in $(seq 2 "$n"); do start_sn "sn$i" "127.0.0.1:${PORT[sn1]}" "${opts[@]}"; done
  wait_alive 120 $((n - 1)) "${names[@]}"
  local inflight
  for inflight in 1 ${FANOUT_INFLIGHT_LOADED:-8}; do
    echo "load average before the searches: $(loadavg)"
    "$fanout_bin" --supernodes "$list" --federation-ca "$work/fed/root.crt" --keys-dir "$work/fanout-keys" \
      --files "${FANOUT_FILES:-500}" --searches "${FANOUT_SEARCHES:-5000}" --inflight "$inflight" \
      >"$work/fanout.out" 2>"$work/fanout.err" &
    local fpid=$!
    local deadline=$((SECONDS + 120))
    until grep -q '^ready' "$work/fanout.out"; do
      kill -0 $fpid 2>/dev/null || { echo "!! sova_fanout: $(tail -3 "$work/fanout.err")"; return 1; }
      [ $SECONDS -lt $deadline ] || { echo "!! sova_fanout not ready in 120 s"; kill $fpid; return 1; }
      sleep 0.2
    done
    before=$(search_counters "${names[@]}")
    kill -USR1 $fpid
    wait $fpid || { echo "!! sova_fanout failed: $(tail -3 "$work/fanout.err")"; return 1; }
    after=$(search_counters "${names[@]}")
    echo "load average after the searches: $(loadavg)"
    python3 - "$(grep '^RESULT' "$work/fanout.out")" "$before" "$after" "$n" "$inflight" <<'PY'
import sys
res = dict(kv.split("=") for kv in sys.argv[1].split()[1:])
f0, r0 = map(int, sys.argv[2].split()); f1, r1 = map(int, sys.argv[3].split())
n, inflight = int(sys.argv[4]), int(res["inflight"])
s = int(res["searches"])
asked = (f1 - f0) / s
touched = 1 + asked
p99 = int(res["p99_us"])
print("%d searches, %d in flight, each for a word held by one other supernode of %d: %s misses, %s refused, %.0f searches/s" % (
    s, inflight, n, res["misses"], res["refused"], float(res["per_s"])))
if int(res["misses"]) or int(res["refused"]):
    print("  !! searches missed their record or were refused: the figures below do not measure routing")
print("  fan-out: supernodes asked beyond the origin %.3f per search (forwards %d, relays %d)   target <= 2: %s" % (
    asked, f1 - f0, r1 - r0, "PASS" if asked <= 2 else "MISS"))
print("  supernodes touched, the origin included    %.3f per search (2 = the origin and the holder; the rest are false positives of the summaries)" % touched)
print("  latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms   target p99 <= 10 ms: %s" % (
    int(res["p50_us"]) / 1000, int(res["p90_us"]) / 1000, p99 / 1000, int(res["max_us"]) / 1000,
    "PASS" if p99 <= 10000 else "MISS"))
PY
  done
  stop_all
}

echo "bench_federation: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); sections: $sections"
for s in $sections; do
  case $s in
    convergence|failover|fanout) "$s" ;;
    *) echo "unknown section $s" >&2; exit 2 ;;
  esac
done
