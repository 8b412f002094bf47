# tests/natbed/overlay.sh - Sova daemons inside the NAT test bed (sourced by
# tests/natbed/test_*.sh after tests/e2e/lib.sh and tests/natbed/lib.sh).
#
#   nb_federation N                 root + sn1..snN certificates in $WORK/fed
#   nb_supernode NAME NODE IP [ARGS...]   sova-supernode on bed host NODE, port 7070
#   nb_peer NAME NODE BOOTSTRAP [ARGS...] sova-peer in NODE's namespace, listening on
#                                   0.0.0.0:7071, state/share/downloads under $WORK/NAME
#   nb_kill NAME [SIGNAL]           kill a daemon on purpose (default SIGKILL), no verdict
#   nb_stop NAME                    SIGTERM; fails unless it exits 0
#   nb_status NAME                  `sova-peer status --json` of peer NAME
#   nb_sn_status NAME               `sova-supernode status --json` of supernode NAME
#   nb_json EXPR                    evaluate a Python expression over stdin's JSON (`j`)
#   nb_wait_reach NAME STATE [SECS] until peer NAME is public/mapped/unreachable
#   nb_get NAME HASH                `sova-peer get HASH --json` of peer NAME, to stdout
#
# The control sockets live in $WORK (the file system is shared with the
# namespaces), so the CLI runs from the test's own namespace. Every daemon is
# one of tests/e2e/lib.sh's: those still running at the end of the test are
# stopped with SIGTERM and must exit 0 (lib.sh's done_ok).

nb_federation() {
  "$FED" init "$WORK/fed" >/dev/null
  local i
  for i in $(seq 1 "$1"); do "$FED" issue "$WORK/fed" "sn$i" >/dev/null; done
}

declare -gA NB_PID
# nb_spawn NAME NODE CMD...: run a daemon in NODE's namespace; PID in NB_PID[NAME]
# (and PID_NAME); tracked by lib.sh like a daemon it started itself.
nb_spawn() {
  local name=$1 node=$2; shift 2
  natbed_spawn "$node" "$WORK/$name.log" "$@" >/dev/null
  NB_PID[$name]=$NATBED_PID
  track_daemon "$name" "$NATBED_PID"
}

nb_supernode() { # NAME NODE IP [ARGS...]: certificate $WORK/fed/NAME.{crt,key}; IP may be [::]
  local name=$1 node=$2 ip=$3 re; shift 3
  nb_spawn "$name" "$node" "$SN_BIN" --listen "$ip:7070" --cert "$WORK/fed/$name.crt" \
    --key "$WORK/fed/$name.key" --federation-ca "$WORK/fed/root.crt" \
    --state-dir "$WORK/$name-state" --keepalive-s 2 --peer-timeout-s 6 "$@"
  re=${ip//[/\\[}; re=${re//]/\\]}
  wait_for "$WORK/$name.log" "listening on $re:7070"
}

nb_peer() { # NAME NODE BOOTSTRAP [ARGS...]; NB_LISTEN (default 0.0.0.0:7071): where it listens
  local name=$1 node=$2 bootstrap=$3; shift 3
  mkdir -p "$WORK/$name/share"
  nb_spawn "$name" "$node" "$PEER_BIN" run --state-dir "$WORK/$name/state" \
    --bootstrap "$bootstrap" --federation-ca "$WORK/fed/root.crt" --listen "${NB_LISTEN:-0.0.0.0:7071}" \
    --share "$WORK/$name/share" --downloads "$WORK/$name/dl" --rescan-interval-s 1 \
    --upnp-check-s 2 "$@"
}

nb_kill() { kill_daemon "$1" "${2:-KILL}"; } # NAME [SIGNAL]
nb_stop() { stop "$1"; }                     # NAME

nb_status() { "$PEER_BIN" --state-dir "$WORK/$1/state" status --json; }
nb_sn_status() { "$SN_BIN" status --control "$WORK/$1-state/control.sock" --json; }
nb_json() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

nb_wait_reach() { # NAME STATE [SECS]
  local deadline=$((SECONDS + ${3:-30})) got=
  while [ $SECONDS -lt $deadline ]; do
    got=$(nb_status "$1" 2>/dev/null | nb_json 'j["reachability"]' 2>/dev/null || true)
    [ "$got" = "$2" ] && return 0
    sleep 0.2
  done
  fail "$1: expected reachability $2, got '${got:-no answer}': $(nb_status "$1" 2>&1 |
    nb_json 'j["reachability_reason"]' 2>&1 || true)"
}

nb_get() { # NAME HASH [ARGS...]
  local name=$1 hash=$2; shift 2
  "$PEER_BIN" --state-dir "$WORK/$name/state" get "$hash" --json "$@"
}
