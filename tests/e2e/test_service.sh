#!/usr/bin/env bash
# The daemons as systemd services: each is run exactly as its unit's
# ExecStart= line runs it, with NOTIFY_SOCKET pointing at a datagram socket
# this test owns (tests/e2e/notify_probe.py). READY=1 comes only once the
# port accepts connections and the seed supernodes were contacted, WATCHDOG=1
# within the watchdog interval, RELOADING=1/READY=1 around a SIGHUP that
# applies what may change and names what needs a restart, STOPPING=1 on
# SIGTERM, after which attached peers are told and the federation left.
# valgrind: yes
source "$(dirname "$0")/lib.sh"

PROBE=$SOVA_SRC/tests/e2e/notify_probe.py
UNITS=$SOVA_SRC/deploy/systemd
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
make_federation
"$FED" issue "$WORK/fed" sn2 >/dev/null
SN1=$("$FED" id "$WORK/fed/sn1.crt")

# exec_start UNIT BINARY: the unit's ExecStart= words, the installed binary
# replaced by the one under test and ${VAR} / %E expanded as systemd does.
exec_start() {
  local line
  line=$(sed -n 's/^ExecStart=//p' "$UNITS/$1")
  [ -n "$line" ] || fail "$1 has no ExecStart="
  line=${line//%E/${XDG_CONFIG_HOME:-}}
  line=${line//'${CONFIGURATION_DIRECTORY}'/$CONFIGURATION_DIRECTORY}
  read -r -a EXEC <<<"$line"
  case ${EXEC[0]} in
    /usr/sbin/sova-supernode | /usr/bin/sova-peer) EXEC[0]=$2 ;;
    *) fail "$1 runs ${EXEC[0]}, not the installed binary" ;;
  esac
}

# probe NAME PORT WATCHDOG_USEC [SILENT_PORT]: run EXEC under the probe;
# notifications go to $WORK/NAME.notify, output to $WORK/NAME.log. The probe
# passes signals on and exits with the daemon's status, so lib.sh tracks it
# as the daemon (stop NAME, and the end of the test, judge the daemon).
probe() {
  local name=$1 port=$2 wd=$3 silent=${4:-0}
  daemon_prefix "$name"
  python3 "$PROBE" --socket "$WORK/$name.sock" --log "$WORK/$name.notify" --port "$port" \
    --watchdog-usec "$wd" --silent-listen "$silent" -- "${DAEMON_PREFIX[@]}" "${EXEC[@]}" \
    >>"$WORK/$name.log" 2>&1 &
  track_daemon "$name" $! "$DAEMON_VGLOG"
  wait_for "$WORK/$name.notify" "START pid="
  PIDS+=("$(sed -n 's/.*START pid=//p' "$WORK/$name.notify")") # the daemon itself, if the test fails
}
field_ms() { # FILE FIELD: ms of the first notification holding FIELD
  awk -v f="$2" 'index($0, f) { print $1; exit }' "$1"
}

# ---- supernode ------------------------------------------------------------------
export CONFIGURATION_DIRECTORY=$WORK/etc
mkdir -p "$CONFIGURATION_DIRECTORY"
P1=$(free_port); P2=$(free_port); PSILENT=$(free_port)
conf_sn() { # listen-port log-level max-peers seeds [extra lines]
  cat >"$CONFIGURATION_DIRECTORY/sova.conf" <<EOF
[supernode]
listen = 127.0.0.1:$1
cert = $WORK/fed/sn1.crt
key = $WORK/fed/sn1.key
federation-ca = $WORK/fed/root.crt
state-dir = $WORK/sn1-state
log-level = $2
max-peers = $3
peers = $4
handshake-timeout-ms = 1500
log-file = $WORK/sn1-file.log
${5:-}
EOF
}
# The only seed accepts TCP and never answers: readiness waits for the
# handshake timeout (1.5 s), not forever, and not less.
conf_sn "$P1" info 100 "127.0.0.1:$PSILENT"
exec_start sova-supernode.service "$SN_BIN"
[[ " ${EXEC[*]} " == *" --config $CONFIGURATION_DIRECTORY/sova.conf "* ]] ||
  fail "ExecStart= does not read \${CONFIGURATION_DIRECTORY}/sova.conf: ${EXEC[*]}"
probe sn1 "$P1" 1000000 "$PSILENT"
wait_for "$WORK/sn1.notify" "READY=1" 20
wait_for "$WORK/sn1-file.log" "listening on 127\.0\.0\.1:$P1"
# The probe logs READY=1, then tries the port and logs what it found.
wait_for "$WORK/sn1.notify" "PORT (open|closed)" 20
grep -q "PORT open" "$WORK/sn1.notify" || fail "READY=1 came before the port accepted: $(cat "$WORK/sn1.notify")"
ok "supernode: READY=1 once the port accepts connections"
grep -Eq "handshake did not finish|TLS handshake failed" "$WORK/sn1-file.log" ||
  fail "READY=1 came before the silent seed was given up: $(tail -5 "$WORK/sn1-file.log")"
ready_ms=$(field_ms "$WORK/sn1.notify" READY=1)
[ "$ready_ms" -ge 1400 ] || fail "READY=1 after ${ready_ms} ms, before the seed's 1500 ms handshake timeout"
grep -q "ready (listening, every seed supernode contacted)" "$WORK/sn1-file.log" || fail "no ready line"
ok "supernode: READY=1 only after the seed was contacted (${ready_ms} ms, handshake timeout 1500 ms)"

grep -q "READY=1|STATUS=0 peers, 0 supernodes linked, 0 files indexed" "$WORK/sn1.notify" ||
  fail "no status line with READY=1: $(cat "$WORK/sn1.notify")"
first_wd=$(field_ms "$WORK/sn1.notify" WATCHDOG=1)
[ -n "$first_wd" ] && [ "$first_wd" -lt $((1000 * TIME_SCALE)) ] ||
  fail "first WATCHDOG=1 at '${first_wd}' ms, the interval is 1000 ms"
wait_for_n "$WORK/sn1.notify" "WATCHDOG=1" 4 10
# Every gap between keep-alives is within the interval (pings at half of it).
gaps=$(awk '/WATCHDOG=1/ { if (last != "") print $1 - last; last = $1 }' "$WORK/sn1.notify")
for g in $gaps; do
  [ "$g" -le $((1000 * TIME_SCALE)) ] || fail "WATCHDOG=1 gap of $g ms, interval 1000 ms"
done
ok "supernode: WATCHDOG=1 within the 1000 ms interval, from the start on"

# A peer attaches (it is told to fail over when the supernode stops).
mkdir -p "$WORK/alice/share"
start alice "$PEER_BIN" run --state-dir "$WORK/alice/state" --bootstrap "127.0.0.1:$P1" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/alice/share"
wait_for "$WORK/alice.log" "attached to supernode"

# SIGHUP: log level, max-peers and a new seed apply; listen needs a restart.
start sn2 "$SN_BIN" --listen "127.0.0.1:$P2" --cert "$WORK/fed/sn2.crt" --key "$WORK/fed/sn2.key" \
  --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/sn2-state"
wait_for "$WORK/sn2.log" "listening on"
mv "$WORK/sn1-file.log" "$WORK/sn1-file.log.1" # logrotate
conf_sn "$(free_port)" debug 5 "127.0.0.1:$P2"
kill -HUP "$PID_sn1"
wait_for "$WORK/sn1-file.log" "reload: .* options changed"
grep -q "reload: log-level info -> debug" "$WORK/sn1-file.log" || fail "log-level not reloaded"
grep -q "reload: max-peers 100 -> 5" "$WORK/sn1-file.log" || fail "max-peers not reloaded"
grep -q "reload: peers 127.0.0.1:$PSILENT -> 127.0.0.1:$P2" "$WORK/sn1-file.log" || fail "peers not reloaded"
grep -Eq "reload: listen changed \(127\.0\.0\.1:$P1 -> 127\.0\.0\.1:[0-9]+\) but needs a restart; still 127\.0\.0\.1:$P1" \
  "$WORK/sn1-file.log" || fail "listen change not named as needing a restart"
grep -q "reload: 3 options changed, 1 need a restart" "$WORK/sn1-file.log" || fail "reload summary"
ok "supernode: SIGHUP reopens the log file and applies log level, limits and seeds; listen needs a restart"
wait_for "$WORK/sn1-file.log" "supernode link up" 10
ok "supernode: a seed added by SIGHUP is dialed and linked"
reload_ms=$(field_ms "$WORK/sn1.notify" RELOADING=1)
[ -n "$reload_ms" ] || fail "no RELOADING=1"
awk -v t="$reload_ms" '$1 >= t && /READY=1/ { found = 1 } END { exit !found }' "$WORK/sn1.notify" ||
  fail "no READY=1 after RELOADING=1"
metrics=$("$SN_BIN" metrics --control "$WORK/sn1-state/control.sock")
grep -q '^sova_supernode_peers_max 5$' <<<"$metrics" || fail "max-peers 5 not in effect"
status=$("$SN_BIN" status --control "$WORK/sn1-state/control.sock" --json)
grep -q '"listen": "127.0.0.1:'"$P1"'"' <<<"$status" || fail "not listening on the old port: $status"
ok "supernode: RELOADING=1 then READY=1; the new limit is in effect, the old port still serves"

# A configuration that does not load changes nothing.
printf '[supernode]\nmax-peer = 1\n' >>"$CONFIGURATION_DIRECTORY/sova.conf"
kill -HUP "$PID_sn1"
wait_for "$WORK/sn1-file.log" "unknown option 'max-peer'; keeping the running configuration"
ok "supernode: a bad configuration on SIGHUP is refused and the running one kept"

# SIGTERM: STOPPING=1, the peer told to fail over, the federation told.
# alice has learnt of sn2 (SN_LIST) and keeps a backup session there.
deadline=$((SECONDS + 20 * TIME_SCALE))
until "$PEER_BIN" --state-dir "$WORK/alice/state" status --json |
  python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["supernode"]["backup"] is None)'; do
  [ $SECONDS -lt $deadline ] || fail "alice has no backup supernode"
  sleep 0.2
done
stop sn1 # SIGTERM; it must exit 0
grep -q "STOPPING=1" "$WORK/sn1.notify" || fail "no STOPPING=1"
grep -q "stopping: told 1 peers to fail over" "$WORK/sn1-file.log" || fail "peers not told"
grep -q "leaving the federation: told 1 supernodes" "$WORK/sn1-file.log" || fail "federation not told"
wait_for "$WORK/alice.log" "remote reports error 108 \(shutting down\)"
wait_for "$WORK/alice.log" "promoting backup supernode" 5
SN2=$("$FED" id "$WORK/fed/sn2.crt")
deadline=$((SECONDS + 5 * TIME_SCALE))
until "$PEER_BIN" --state-dir "$WORK/alice/state" status --json |
  python3 -c 'import json, sys
s = json.load(sys.stdin)["supernode"]
sys.exit(not (s["attached"] and s["id"] == sys.argv[1]))' "$SN2"; do
  [ $SECONDS -lt $deadline ] || fail "alice is not attached to sn2 after sn1 stopped"
  sleep 0.1
done
wait_for "$WORK/sn2.log" "member ${SN1:0:8}: [a-z]+ -> left" 10
ok "supernode: SIGTERM sends STOPPING=1, tells its peer (which promotes its backup at once) and the federation, exits 0"
stop alice
stop sn2

# ---- peer (user unit) ----------------------------------------------------------------
export XDG_CONFIG_HOME=$WORK/xdg-config
mkdir -p "$XDG_CONFIG_HOME/sova" "$WORK/bob/share"
start sn3 "$SN_BIN" --listen "127.0.0.1:$P2" --cert "$WORK/fed/sn2.crt" --key "$WORK/fed/sn2.key" \
  --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/sn3-state"
wait_for "$WORK/sn3.log" "listening on"
PP=$(free_port)
conf_peer() { # upload-limit-kbps ways
  cat >"$XDG_CONFIG_HOME/sova/peer.conf" <<EOF
[peer]
state-dir = $WORK/bob/state
bootstrap = 127.0.0.1:$P2
federation-ca = $WORK/fed/root.crt
listen = 127.0.0.1:$PP
share = $WORK/bob/share
upload-limit-kbps = $1
ways = $2
EOF
}
conf_peer 0 direct,reversal,relay
exec_start sova-peer.service "$PEER_BIN"
[ "${EXEC[1]}" = run ] || fail "sova-peer.service does not run the daemon: ${EXEC[*]}"
probe bob "$PP" 2000000
wait_for "$WORK/bob.notify" "READY=1" 20
wait_for "$WORK/bob.notify" "PORT (open|closed)" 20
grep -q "PORT open" "$WORK/bob.notify" || fail "peer: READY=1 before the port accepted"
wait_for "$WORK/bob.notify" "WATCHDOG=1" 2
ok "peer: READY=1 once it listens, WATCHDOG=1 within the interval"
wait_for "$WORK/bob.log" "attached to supernode"
conf_peer 250 relay
kill -HUP "$PID_bob"
wait_for "$WORK/bob.log" "reload: .* options changed"
grep -q "reload: upload-limit-kbps 0 -> 250" "$WORK/bob.log" || fail "peer: upload limit not reloaded"
grep -q "reload: ways changed (direct,reversal,relay -> relay) but needs a restart" "$WORK/bob.log" ||
  fail "peer: ways change not named as needing a restart"
ok "peer: SIGHUP applies the upload limit, names what needs a restart"
stop bob # SIGTERM; it must exit 0
grep -q "STOPPING=1" "$WORK/bob.notify" || fail "peer: no STOPPING=1"
ok "peer: SIGTERM sends STOPPING=1 and exits 0"
stop sn3
done_ok
