# lib.sh - helpers for the end-to-end tests (sourced, not run).
# Env from ctest: SOVA_BIN (build dir), SOVA_SRC (source dir).
set -euo pipefail
: "${SOVA_BIN:?SOVA_BIN must point at the build directory}"
: "${SOVA_SRC:?SOVA_SRC must point at the source directory}"
SN_BIN=$SOVA_BIN/supernode/sova-supernode
PEER_BIN=$SOVA_BIN/ordinary/sova-peer
# SOVA_VALGRIND=/usr/bin/valgrind runs every daemon (not the short CLI calls)
# under memcheck: a leak or memory error makes it exit 99, which stop() and
# the final check turn into a failed test. Waits stretch to match.
RUN=()
TIME_SCALE=1
if [ -n "${SOVA_VALGRIND:-}" ]; then
  RUN=("$SOVA_VALGRIND" --quiet --leak-check=full --show-leak-kinds=definite,indirect
       --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no)
  TIME_SCALE=10
fi
FED=$SOVA_SRC/deploy/sova-federation
WORK=$(mktemp -d /tmp/sova-e2e.XXXXXX)
PIDS=()
CHECKS=0

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    echo "--- logs of the failed test ($WORK) ---"
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 40 "$f"; }; done
  fi
  if [ -n "${SOVA_KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

# wait_for FILE REGEX [SECONDS]: wait until a line of FILE matches REGEX.
wait_for() {
  local file=$1 re=$2 secs=$(( ${3:-10} * TIME_SCALE ))
  local deadline=$((SECONDS + secs))
  while [ $SECONDS -lt $deadline ]; do
    grep -Eq -- "$re" "$file" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "waited ${secs}s for /$re/ in $(basename "$file"); last lines: $(tail -n 5 "$file" 2>/dev/null)"
}

# wait_for_n FILE REGEX N [SECONDS]: wait until N lines of FILE match REGEX.
wait_for_n() {
  local file=$1 re=$2 n=$3 secs=$(( ${4:-10} * TIME_SCALE ))
  local deadline=$((SECONDS + secs))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(grep -Ec -- "$re" "$file" 2>/dev/null)" -ge "$n" ] && return 0
    sleep 0.05
  done
  fail "waited ${secs}s for $n lines /$re/ in $(basename "$file"); last lines: $(tail -n 5 "$file")"
}

# until_ok SECONDS CMD...: run CMD until it succeeds (a result that the
# supernode applies a moment after the log line we waited for).
until_ok() {
  local secs=$(( $1 * TIME_SCALE )); shift
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

# start NAME CMD...: run daemon CMD in the background (under valgrind when
# asked), stderr+stdout appended to $WORK/NAME.log (a restarted daemon adds
# to the same log, so waits can count events across restarts).
start() {
  local name=$1; shift
  "${RUN[@]}" "$@" >>"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
}

# stop NAME: SIGTERM and wait; fails if the process does not exit 0.
stop() {
  local name=$1 pid
  eval "pid=\$PID_$name"
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  [ $rc -eq 0 ] || fail "$name exited with status $rc after SIGTERM"
}

# make_federation: root + sn1 certificates in $WORK/fed.
make_federation() {
  "$FED" init "$WORK/fed" >/dev/null
  "$FED" issue "$WORK/fed" sn1 >/dev/null
}

# start_supernode NAME [ARGS...]: start on a free loopback port; sets PORT_NAME.
start_supernode() {
  local name=$1; shift
  start "$name" "$SN_BIN" --listen 127.0.0.1:0 --cert "$WORK/fed/sn1.crt" \
    --key "$WORK/fed/sn1.key" --federation-ca "$WORK/fed/root.crt" \
    --state-dir "$WORK/$name-state" "$@"
  wait_for "$WORK/$name.log" "listening on 127\.0\.0\.1:[0-9]+"
  local port
  port=$(grep -Eo "listening on 127\.0\.0\.1:[0-9]+" "$WORK/$name.log" | head -1 | sed 's/.*://')
  eval "PORT_$name=$port"
}

done_ok() { echo "$CHECKS passed, 0 failed"; }
