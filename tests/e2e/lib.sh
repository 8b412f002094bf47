# lib.sh - helpers for the end-to-end tests (sourced, not run).
# Env from ctest: SOVA_BIN (build dir), SOVA_SRC (source dir).
#
# Daemons. Every daemon a test starts (start, or track_daemon for one started
# another way) is recorded, one entry per run. It ends in one of three ways:
#   stop NAME          SIGTERM, wait; it must exit 0 (and valgrind be clean)
#   kill_daemon NAME   SIGKILL on purpose (a fault test): no verdict, said so
#   end of the test    done_ok (or the EXIT trap of a passing test) stops every
#                      daemon still running as `stop` does, and fails the test
#                      if any daemon exited non-zero, crashed, died before the
#                      end, would not stop, or valgrind found errors or leaks.
# A daemon killed any other way (kill -KILL by hand) fails the test at the end:
# fault tests say what they kill with kill_daemon. Processes that are not
# daemons under test (proxies, hostile clients, loops) are helpers: helper,
# or their PIDs in PIDS; they are killed at the end without a verdict.
set -euo pipefail
: "${SOVA_BIN:?SOVA_BIN must point at the build directory}"
: "${SOVA_SRC:?SOVA_SRC must point at the source directory}"
SN_BIN=$SOVA_BIN/supernode/sova-supernode
PEER_BIN=$SOVA_BIN/ordinary/sova-peer
# SOVA_VALGRIND=/usr/bin/valgrind runs every daemon (not the short CLI calls)
# under memcheck, each run with a log of its own ($WORK/NAME.valgrind.N.log):
# a memory error or a definite or indirect leak makes it exit 99 and leaves
# a non-zero ERROR SUMMARY in its log; either fails the test. Waits stretch.
VALGRIND_ARGS=()
TIME_SCALE=1
if [ -n "${SOVA_VALGRIND:-}" ]; then
  VALGRIND_ARGS=("$SOVA_VALGRIND" --leak-check=full --show-leak-kinds=definite,indirect
                 --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no)
  TIME_SCALE=10
fi
# How long a daemon may take to exit after SIGTERM before the test fails.
STOP_WAIT_S=${SOVA_STOP_WAIT_S:-20}
FED=$SOVA_SRC/deploy/sova-federation
WORK=$(mktemp -d /tmp/sova-e2e.XXXXXX)
# The tests never touch the home of whoever runs them: without --config a
# peer reads ~/.config/sova/peer.conf, without --downloads it makes
# ~/Downloads (ordinary/op_paths.h). A test may point these elsewhere.
export HOME=$WORK/home
unset XDG_CONFIG_HOME XDG_STATE_HOME
mkdir -p "$HOME"
PIDS=()       # helpers: killed at the end, no verdict
CHECKS=0
# The daemon registry, one entry per run: name, PID, valgrind log (or ""),
# state: running, stopped (verdict taken), killed (on purpose).
D_NAME=()
D_PID=()
D_VGLOG=()
D_STATE=()
_FINISHED=0

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

# ---- waiting for conditions ------------------------------------------------------

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
# supernode applies a moment after the log line we waited for); 1 on timeout.
until_ok() {
  local secs=$(( $1 * TIME_SCALE )); shift
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

# wait_until SECONDS WHAT CMD...: run CMD until it succeeds; after SECONDS
# (times TIME_SCALE) fail with "waited Ns for WHAT" and CMD's last output.
# The way to wait for anything observable, instead of a fixed sleep.
wait_until() {
  local secs=$(( $1 * TIME_SCALE )) what=$2; shift 2
  local deadline=$((SECONDS + secs)) out
  until out=$("$@" 2>&1); do
    [ $SECONDS -lt $deadline ] ||
      fail "waited ${secs}s for ${what}${out:+; last said: $(tail -n 5 <<<"$out")}"
    sleep 0.1
  done
}

# ---- daemons ---------------------------------------------------------------------------

# _d_var NAME: the variable holding NAME's PID (PID_NAME, any character
# that cannot be in a name made _: d-upnp -> PID_d_upnp).
_d_var() { printf 'PID_%s' "${1//[^A-Za-z0-9_]/_}"; }

# track_daemon NAME PID [VALGRIND_LOG]: record a daemon started by the test
# itself (sets PID_NAME); from now on it is stopped and judged like any other.
track_daemon() {
  D_NAME+=("$1")
  D_PID+=("$2")
  D_VGLOG+=("${3:-}")
  D_STATE+=(running)
  printf -v "$(_d_var "$1")" '%s' "$2"
}

# daemon_prefix NAME: sets DAEMON_PREFIX to what goes before the daemon's
# command for its next run (valgrind with a log of its own, or nothing) and
# DAEMON_VGLOG to that log. start does this; tests that start a daemon their
# own way (test_service.sh, under a notify probe) call it, then track_daemon.
daemon_prefix() {
  DAEMON_PREFIX=()
  DAEMON_VGLOG=
  [ ${#VALGRIND_ARGS[@]} -gt 0 ] || return 0
  local n=1
  while [ -e "$WORK/$1.valgrind.$n.log" ]; do n=$((n + 1)); done
  DAEMON_VGLOG=$WORK/$1.valgrind.$n.log
  : >"$DAEMON_VGLOG"
  DAEMON_PREFIX=("${VALGRIND_ARGS[@]}" "--log-file=$DAEMON_VGLOG")
}

# start NAME CMD...: run daemon CMD in the background (under valgrind when
# asked), stderr+stdout appended to $WORK/NAME.log (a restarted daemon adds
# to the same log, so waits can count events across restarts).
start() {
  local name=$1; shift
  daemon_prefix "$name"
  "${DAEMON_PREFIX[@]}" "$@" >>"$WORK/$name.log" 2>&1 &
  track_daemon "$name" $! "$DAEMON_VGLOG"
}

# helper NAME CMD...: a process the test needs that is not under test (a
# proxy, a fake server): never under valgrind, killed at the end, no verdict.
helper() {
  local name=$1; shift
  "$@" >>"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  printf -v "$(_d_var "$name")" '%s' $!
}

_d_index() { # PID -> index of its registry entry
  local i
  for i in "${!D_PID[@]}"; do
    [ "${D_PID[$i]}" = "$1" ] && { echo "$i"; return 0; }
  done
  return 1
}
_d_alive() { # PID: running (not gone, not a zombie waiting for us)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# _d_finish INDEX [SIGNALLED]: SIGTERM the entry's daemon (if it still runs;
# SIGNALLED=1: the caller already did, while it ran), wait for it, take its
# verdict. Prints one line; returns 1 on a bad verdict.
_d_finish() {
  local i=$1 signalled=${2:-0}
  local name=${D_NAME[$i]} pid=${D_PID[$i]} vglog=${D_VGLOG[$i]} rc=0 early= slow= bad=
  [ "${D_STATE[$i]}" = running ] || return 0
  D_STATE[$i]=stopped
  if [ "$signalled" = 1 ]; then
    :
  elif _d_alive "$pid"; then
    kill -CONT "$pid" 2>/dev/null || true # one stopped by kill -STOP hears SIGTERM too
    kill -TERM "$pid" 2>/dev/null || true
  else
    early=1
  fi
  local deadline=$((SECONDS + STOP_WAIT_S * TIME_SCALE))
  while _d_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  if _d_alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    slow=1
  fi
  wait "$pid" 2>/dev/null || rc=$?
  if [ -n "$slow" ]; then
    bad="it did not exit within $((STOP_WAIT_S * TIME_SCALE)) s of SIGTERM (SIGKILLed)"
  elif [ $rc -eq 127 ]; then
    bad="its exit status was reaped by the test itself (end it with stop or kill_daemon)"
  elif [ $rc -eq 99 ] && [ -n "$vglog" ]; then
    bad="valgrind found errors (exit 99)"
  elif [ $rc -gt 128 ]; then
    bad="it died of SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
  elif [ $rc -ne 0 ]; then
    bad="it exited with status $rc"
  fi
  if [ -n "$early" ]; then
    bad="it was gone before the end of the test: ${bad:-it exited 0 unasked}"
  fi
  local vg=
  if [ -n "$vglog" ]; then
    local summary lost n
    summary=$(grep -Eo "ERROR SUMMARY: [0-9]+ errors" "$vglog" | tail -n 1 || true)
    if [ -z "$summary" ]; then
      vg="valgrind: no verdict in $(basename "$vglog")"
      bad="${bad:+$bad; }valgrind gave no verdict"
    else
      n=${summary#ERROR SUMMARY: }
      n=${n%% *}
      lost=$(grep -Eo "definitely lost: [0-9,]+ bytes" "$vglog" | tail -n 1 || true)
      vg="valgrind: $n errors${lost:+, $lost}"
      [ "$n" = 0 ] || bad="${bad:+$bad; }valgrind reported $n errors"
    fi
  fi
  if [ -n "$bad" ]; then
    echo "FAIL: daemon $name (pid $pid): $bad${vg:+ [$vg]}" >&2
    if [ -n "$vglog" ] && [ -s "$vglog" ]; then
      echo "--- $(basename "$vglog") ---" >&2
      tail -n 80 "$vglog" >&2
    fi
    return 1
  fi
  echo "# daemon $name (pid $pid): SIGTERM, exit 0${vg:+, $vg}"
}

# stop NAME: SIGTERM the latest run of NAME and wait; fails the test unless
# it exits 0 (and, under valgrind, its log holds no error and no leak).
stop() {
  local name=$1 pid i var
  var=$(_d_var "$name")
  pid=${!var:-}
  [ -n "$pid" ] || fail "stop $name: no such daemon"
  i=$(_d_index "$pid") || fail "stop $name: pid $pid is not a daemon this test started"
  [ "${D_STATE[$i]}" = running ] || fail "stop $name: it was already ${D_STATE[$i]}"
  _d_finish "$i" || fail "$name did not stop cleanly (see above)"
}

# kill_daemon NAME [SIGNAL]: kill the latest run of NAME on purpose (default
# SIGKILL: a crash, a power cut) and reap it. The run gets no verdict, and
# the end of the test says so.
kill_daemon() {
  local name=$1 sig=${2:-KILL} pid i var
  var=$(_d_var "$name")
  pid=${!var:-}
  [ -n "$pid" ] || fail "kill_daemon $name: no such daemon"
  i=$(_d_index "$pid") || fail "kill_daemon $name: pid $pid is not a daemon this test started"
  kill "-$sig" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  D_STATE[$i]=killed
  echo "# daemon $name (pid $pid): SIG$sig on purpose, no verdict"
}

# stop_all: the end of a test. Every daemon still running gets SIGTERM (the
# latest started first, all before any wait, so they stop side by side),
# then each is waited for and judged. Returns 1 if any verdict is bad.
stop_all() {
  local i bad=0 n=${#D_PID[@]}
  local -a signalled=()
  for ((i = n - 1; i >= 0; i--)); do
    signalled[$i]=0
    [ "${D_STATE[$i]}" = running ] || continue
    if _d_alive "${D_PID[$i]}"; then
      kill -CONT "${D_PID[$i]}" 2>/dev/null || true
      kill -TERM "${D_PID[$i]}" 2>/dev/null || true
      signalled[$i]=1
    fi
  done
  for ((i = 0; i < n; i++)); do
    _d_finish "$i" "${signalled[$i]}" || bad=1
  done
  return $bad
}

# Sanitizer reports in the logs of a failed test: printed whole (the last
# 40 lines of a log may start in the middle of one).
_print_sanitizer_reports() {
  local f
  for f in "$WORK"/*.log; do
    [ -f "$f" ] || continue
    grep -Eq "ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:" "$f" || continue
    echo "== sanitizer report in $f"
    grep -En -m 1 "ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:" "$f" |
      cut -d: -f1 | { read -r line; tail -n "+$line" "$f" | head -n 80; }
  done
}

cleanup() {
  local rc=$?
  if [ $rc -eq 0 ] && [ $_FINISHED -eq 0 ]; then
    # A passing test that did not call done_ok still has its daemons judged.
    stop_all || rc=1
    _FINISHED=1
  fi
  local p i st
  if [ $rc -ne 0 ]; then
    # A daemon that died before the failure is the likely cause: say which
    # and how (its exit status, 128+N for signal N).
    for i in "${!D_PID[@]}"; do
      [ "${D_STATE[$i]}" = running ] || continue
      kill -0 "${D_PID[$i]}" 2>/dev/null && continue
      st=0
      wait "${D_PID[$i]}" 2>/dev/null || st=$?
      echo "# daemon ${D_NAME[$i]} (pid ${D_PID[$i]}) had already exited, status $st"
    done
  fi
  for p in "${D_PID[@]}" "${PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    echo "--- logs of the failed test ($WORK) ---"
    for f in "$WORK"/*.log; do
      [ -f "$f" ] || continue
      # A valgrind log without a report is its banner only (a killed run).
      case $f in *.valgrind.*.log) grep -Eq "ERROR SUMMARY: [1-9]|Invalid (read|write|free)|uninitialised|Mismatched free|definitely lost: [1-9]" "$f" || continue ;; esac
      echo "== $f"
      tail -n 40 "$f"
    done
    _print_sanitizer_reports
  fi
  if [ -n "${SOVA_KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

# file_id FILE: the Sova file ID of FILE (what search hits show and `get`
# takes), as `sova-peer hash` computes it. Not the SHA-256 sha256sum prints.
file_id() {
  "$PEER_BIN" hash "$1" | awk '$1 == "id" { print $2 }'
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

# done_ok: the end of a passing test: every daemon still running is stopped
# and judged (stop_all), then the count of checks.
done_ok() {
  _FINISHED=1
  stop_all || fail "a daemon did not end cleanly (see above)"
  local killed=0 i
  for i in "${!D_STATE[@]}"; do [ "${D_STATE[$i]}" = killed ] && killed=$((killed + 1)); done
  [ ${#D_PID[@]} -eq 0 ] ||
    echo "# ${#D_PID[@]} daemon runs: $((${#D_PID[@]} - killed)) stopped with a clean verdict, $killed killed on purpose"
  echo "$CHECKS passed, 0 failed"
}
