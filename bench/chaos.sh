#!/usr/bin/env bash
# chaos.sh BUILD_DIR [MINUTES]
# A soak run under faults (not a test: it prints, it does not judge, except
# that a corrupted download is reported loudly and the exit status is 1).
# Three supernodes and six peers on loopback; each peer shares four files.
# For MINUTES (default 10), a new file appears in a random peer's share
# every 2 s, and each peer downloads, one at a time, random files of the
# others it has not fetched yet, each compared with its source byte for
# byte at the path the daemon reports; meanwhile a killer every 8-20 s either SIGKILLs a
# random supernode or peer and restarts it 3 s later, or freezes one for
# 6 s (SIGSTOP: its links go silent without a reset, like a partition);
# sn1 is only ever frozen, so its memory at the end can be set against its
# memory at the start.
# Prints downloads attempted, completed, failed, corrupted (must be 0),
# the faults injected, and each supernode's RSS at the start and the end.
set -euo pipefail
export SOVA_BIN=$(cd "${1:?usage: chaos.sh BUILD_DIR [MINUTES]}" && pwd)
export SOVA_SRC=$(cd "$(dirname "$0")/.." && pwd)
minutes=${2:-10}
source "$SOVA_SRC/tests/e2e/lib.sh"

"$FED" init "$WORK/fed" >/dev/null
for i in 1 2 3; do "$FED" issue "$WORK/fed" "sn$i" >/dev/null; done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A PORT
for i in 1 2 3; do PORT[$i]=$(free_port); done
SEEDS="127.0.0.1:${PORT[1]},127.0.0.1:${PORT[2]}"
run_sn() {
  start "sn$1" "$SN_BIN" --listen "127.0.0.1:${PORT[$1]}" --cert "$WORK/fed/sn$1.crt" \
    --key "$WORK/fed/sn$1.key" --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/sn$1-state" \
    --peers "$SEEDS" --keepalive-s 2 --peer-timeout-s 6 --summary-interval-ms 500 --log-level warn
}
run_peer() {
  start "p$1" "$PEER_BIN" run --state-dir "$WORK/p$1/state" \
    --bootstrap "127.0.0.1:${PORT[$((($1 % 3) + 1))]}" --federation-ca "$WORK/fed/root.crt" \
    --listen 127.0.0.1:0 --share "$WORK/p$1/share" --downloads "$WORK/p$1/dl" \
    --rescan-interval-s 5 --log-level warn
}
pid_of() { eval "echo \$PID_$1"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$(pid_of "$1")/status" 2>/dev/null || echo 0; }

for i in 1 2 3; do run_sn "$i"; done
for p in $(seq 1 6); do
  mkdir -p "$WORK/p$p/share" "$WORK/p$p/out"
  for f in 1 2 3 4; do head -c $((500000 + RANDOM * 60)) /dev/urandom >"$WORK/p$p/share/chaos-p$p-$f.bin"; done
  run_peer "$p"
done
sleep 8
declare -A RSS0
for i in 1 2 3; do RSS0[$i]=$(rss "sn$i"); done

end=$((SECONDS + minutes * 60))
# downloader P: fetch a random file of another peer it has not fetched yet,
# and check it; a file that did not arrive is tried again later.
downloader() {
  local p=$1
  declare -A done_hashes=()
  while [ $SECONDS -lt $end ]; do
    local src
    src=$(ls "$WORK"/p*/share/chaos-*.bin 2>/dev/null | grep -v "/p$p/share/" | shuf -n 1)
    [ -n "$src" ] || { sleep 1; continue; }
    local h
    h=$(file_id "$src")
    [ -z "${done_hashes[$h]:-}" ] || { sleep 0.2; continue; }
    echo attempted >>"$WORK/results"
    local out
    if out=$(timeout 60 "$PEER_BIN" --state-dir "$WORK/p$p/state" get "$h" --json 2>/dev/null); then
      local path
      path=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["download"]["path"])' <<<"$out")
      if cmp -s "$src" "$path"; then
        echo completed >>"$WORK/results"
        done_hashes[$h]=1
      else
        echo CORRUPTED >>"$WORK/results"
        echo "corrupted: $src -> $path" >>"$WORK/corrupted"
      fi
    else
      echo failed >>"$WORK/results"
      sleep 1
    fi
  done
}
# producer: a new file in a random peer's share every 2 s.
producer() {
  local n=0
  while [ $SECONDS -lt $end ]; do
    n=$((n + 1))
    local p=$(((RANDOM % 6) + 1))
    head -c $((200000 + RANDOM * 30)) /dev/urandom >"$WORK/p$p/share/.new-$n"
    mv "$WORK/p$p/share/.new-$n" "$WORK/p$p/share/chaos-p$p-new$n.bin"
    sleep 2
  done
}
producer &
dl_pids=($!)
for p in $(seq 1 6); do
  downloader "$p" &
  dl_pids+=($!)
done

faults=0
declare -A RESTARTED=()
while [ $SECONDS -lt $end ]; do
  sleep $((8 + RANDOM % 13))
  [ $SECONDS -lt $end ] || break
  if [ $((RANDOM % 2)) = 0 ]; then victim=sn$(((RANDOM % 3) + 1)); else victim=p$(((RANDOM % 6) + 1)); fi
  pid=$(pid_of "$victim")
  faults=$((faults + 1))
  # sn1 is only ever frozen, never killed: its memory at the end against its
  # memory at the start says whether a long run under faults leaks.
  if [ $((RANDOM % 3)) = 0 ] || [ "$victim" = sn1 ]; then
    echo "$(date +%T) freeze $victim for 6 s"
    kill -STOP "$pid" 2>/dev/null || true
    sleep 6
    kill -CONT "$pid" 2>/dev/null || true
  else
    echo "$(date +%T) SIGKILL $victim, restart in 3 s"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    sleep 3
    case $victim in
      sn*) run_sn "${victim#sn}"; RESTARTED[${victim#sn}]=1 ;;
      p*) run_peer "${victim#p}" ;;
    esac
  fi
done
wait "${dl_pids[@]}" 2>/dev/null || true

count() { grep -c "^$1$" "$WORK/results" 2>/dev/null || true; }
echo
echo "minutes: $minutes   faults injected: $faults"
echo "downloads attempted: $(count attempted)  completed: $(count completed)  failed: $(count failed)  corrupted: $(count CORRUPTED)"
for i in 1 2 3; do
  if [ -n "${RESTARTED[$i]:-}" ]; then
    echo "sn$i RSS: ${RSS0[$i]} KiB at the start, restarted since, $(rss "sn$i") KiB at the end"
  else
    echo "sn$i RSS: ${RSS0[$i]} KiB at the start, $(rss "sn$i") KiB at the end (never restarted)"
  fi
done
[ "$(count CORRUPTED)" = 0 ] || { echo "CORRUPTED DOWNLOADS: a bug"; exit 1; }
