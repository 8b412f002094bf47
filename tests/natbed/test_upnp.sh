#!/usr/bin/env bash
# test_upnp.sh - nat/'s port mapping (nat/nat_upnp.h) against a real
# miniupnpd in the NAT test bed: mapped within 2 s on the router's WAN
# address and reachable from the internet; a second peer wanting the same
# port gets 718 and another port; refresh (SIGUSR1); the router forgets
# everything (restart) -> mapped again within the check interval + 2 s; the
# WAN address changes -> the new address is reported and mapped; SIGTERM
# deletes the mapping; NAT-PMP when SSDP gets no answer; no UPnP router and
# double NAT -> no gateway within 3 s. Times are printed. docs/NAT.md.
# tsan: yes (nat/'s worker thread against a real router)
source "$SOVA_SRC/tests/e2e/lib.sh" # ok, fail, wait_for, $WORK, cleanup
source "$SOVA_SRC/tests/natbed/lib.sh"

PROBE=$SOVA_BIN/tests/nat_upnp_probe
[ -x "$PROBE" ] || fail "no $PROBE: build the tests first"
CHECK_S=2 # the probe's check interval

# probe_wait.py LOG SINCE_MONO_MS TIMEOUT_S COND...: the first JSON line of
# LOG stamped at or after SINCE whose fields match every COND (key=value,
# key>=number, key!=value); printed, exit 0. On timeout: the last status
# line, exit 1.
cat >"$WORK/probe_wait.py" <<'EOF'
import json, sys, time
log, since, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conds = []
for a in sys.argv[4:]:
    for op in (">=", "!=", "="):
        if op in a:
            k, v = a.split(op, 1)
            conds.append((k, op, v))
            break
def ok(o):
    for k, op, v in conds:
        x = o.get(k)
        if op == ">=" and not (isinstance(x, int) and x >= int(v)): return False
        if op == "=" and str(x if x is not None else "null") != v: return False
        if op == "!=" and str(x if x is not None else "null") == v: return False
    return True
deadline = time.monotonic() + timeout
last = "(no status line)"
while True:
    try:
        lines = open(log, errors="replace").read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("mono_ms", 0) < since:
            continue
        if o.get("event") in ("status", "stopped"):
            last = line
        if ok(o):
            print(line)
            sys.exit(0)
    if time.monotonic() > deadline:
        print("timed out after %gs waiting for %s; last: %s" % (timeout, " ".join(sys.argv[4:]), last))
        sys.exit(1)
    time.sleep(0.05)
EOF
mono_ms() { python3 -c 'import time; print(int(time.monotonic() * 1000))'; }
field() { python3 -c 'import json, sys; v = json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
# probe_wait WHAT LOG SINCE TIMEOUT COND...: sets LINE or fails with WHAT.
probe_wait() {
  local what=$1; shift
  LINE=$(python3 "$WORK/probe_wait.py" "$@") || fail "$what: $LINE"
}
# start_probe NODE PORT ARGS...: the probe in NODE, a daemon of lib.sh's
# (so one left running is stopped and judged at the end); sets PID_<NODE>,
# LOG_<NODE>, T0_<NODE>.
start_probe() {
  local node=$1 port=$2; shift 2
  eval "T0_$node=$(mono_ms)"
  natbed_spawn "$node" "$WORK/$node.log" "$PROBE" --port "$port" --check "$CHECK_S" "$@" >/dev/null
  track_daemon "$node" "$NATBED_PID"
  eval "LOG_$node=$WORK/$node.log"
}
# stop_probe NODE: SIGTERM, exit status 0 (lib.sh's stop), the "stopped" line in LINE.
stop_probe() {
  local node=$1 log
  eval "log=\$LOG_$node"
  local t=$(mono_ms)
  stop "$node"
  probe_wait "probe in $node after SIGTERM" "$log" "$t" 1 event=stopped state=off
}
# connect_through NODE IP PORT: the probe's greeting through the mapping.
connect_through() {
  natbed_exec "$1" python3 -c '
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)
    s.settimeout(5)
    print(s.recv(100).decode().strip())
except Exception as e:
    print("ERROR", type(e).__name__, e)' "$2" "$3"
}
has_mapping() { natbed_upnp_mappings "$1" | grep -qx -- "$2"; }

natbed_init
natbed_host s1 20.0.0.10
natbed_router rup upnp 20.0.1.1
natbed_router rno noupnp 20.0.2.1
natbed_router rdbl double 20.0.4.1
natbed_router rgone upnp 20.0.3.1 # goes silent
natbed_peer pup rup   # 10.1.0.10
natbed_peer pup2 rup  # 10.1.0.11: wants the same port
natbed_peer pnp rup   # 10.1.0.12: SSDP blocked, so NAT-PMP
natbed_peer ppcp rup  # 10.1.0.13: PCP
natbed_peer pno rno
natbed_peer pdbl rdbl
natbed_peer pgone rgone
WAN=$(natbed_wan_ip rup)
UP_IP=$(natbed_ip pup)

# --- mapped within 2 s, on the WAN address, reachable from the internet -----
start_probe pup 7071 --listen --no-pcp --desc "sova-peer test"
probe_wait "pup: mapping" "$LOG_pup" "$T0_pup" 10 event=status state=mapped
t_map=$(field "$LINE" t_ms)
[ "$(field "$LINE" method)" = upnp ] || fail "pup: expected method upnp: $LINE"
[ "$(field "$LINE" external_ip)" = "$WAN" ] || fail "pup: expected external_ip $WAN (rup's WAN): $LINE"
[ "$(field "$LINE" external_port)" = 7071 ] || fail "pup: expected external port 7071 (= internal): $LINE"
[ "$(field "$LINE" lan_addr)" = "$UP_IP" ] || fail "pup: expected lan_addr $UP_IP: $LINE"
[ "$(field "$LINE" lease_s)" = 3600 ] || fail "pup: expected a 3600 s lease: $LINE"
[ "$t_map" -le 2000 ] || fail "pup: mapped after $(secs "$t_map") s, expected within 2 s"
ok "pup behind a UPnP router: mapped $WAN:7071 -> $UP_IP:7071 by upnp in $(secs "$t_map") s (bound 2 s), lease 3600 s"

has_mapping rup "TCP 7071 -> $UP_IP:7071" || fail "rup's mappings lack TCP 7071 -> $UP_IP:7071: $(natbed_upnp_mappings rup)"
a=$(connect_through s1 "$WAN" 7071)
[ "$a" = "sova-probe 20.0.0.10:${a##*:}" ] || fail "s1 -> $WAN:7071: expected the probe's greeting, got: $a"
probe_wait "pup: accepted from s1" "$LOG_pup" "$T0_pup" 2 event=accepted from=20.0.0.10
ok "s1 (20.0.0.10) connects to $WAN:7071 and reaches the listener on pup ($a)"

# --- a second peer wanting the same port: 718, another port -----------------
start_probe pup2 7071 --no-pcp
probe_wait "pup2: mapping" "$LOG_pup2" "$T0_pup2" 10 event=status state=mapped
p2=$(field "$LINE" external_port)
[ "$p2" != 7071 ] || fail "pup2: got external port 7071, which pup holds: $LINE"
probe_wait "pup2: the router's 718" "$LOG_pup2" "$T0_pup2" 1 event=status state=mapping error_code=718
err=$(field "$LINE" error)
[[ $err == *"718 ConflictInMappingEntry"* ]] || fail "pup2: expected the router's words for 718: $LINE"
has_mapping rup "TCP $p2 -> $(natbed_ip pup2):7071" || fail "rup's mappings lack pup2's: $(natbed_upnp_mappings rup)"
stop_probe pup2
! has_mapping rup "TCP $p2 -> $(natbed_ip pup2):7071" || fail "pup2's mapping $p2 still there after SIGTERM"
has_mapping rup "TCP 7071 -> $UP_IP:7071" || fail "pup's mapping went with pup2's: $(natbed_upnp_mappings rup)"
ok "pup2 asks for 7071 too: router says '$err', pup2 maps external port $p2 instead; its SIGTERM deletes only its own"

# --- refresh (the daemon's network changed) ---------------------------------
t=$(mono_ms)
kill -USR1 "$PID_pup"
probe_wait "pup: refresh starts discovery" "$LOG_pup" "$t" 3 event=status state=discovering
probe_wait "pup: mapped after refresh" "$LOG_pup" "$t" 5 event=status state=mapped external_port=7071
ok "SIGUSR1 (nat_upnp_refresh): discovering, then mapped again on 7071 in $(secs $(($(field "$LINE" mono_ms) - t))) s"

# --- the router forgets every mapping ----------------------------------------
# t before the restart: the probe may hear the router come back (its
# announcements) and map again before natbed_upnp_start returns
t=$(mono_ms)
natbed_upnp_stop rup
has_mapping rup "TCP 7071 -> $UP_IP:7071" && fail "the router's stop left pup's mapping in place"
natbed_upnp_start rup
probe_wait "pup: mapped again after the router's restart" "$LOG_pup" "$t" $((CHECK_S + 5)) \
  event=status state=mapped remaps\>=1
d=$(($(field "$LINE" mono_ms) - t))
[ $d -le $(((CHECK_S + 2) * 1000)) ] || fail "pup: mapped again $(secs $d) s after the restart, expected within $((CHECK_S + 2)) s"
has_mapping rup "TCP 7071 -> $UP_IP:7071" || fail "after the remap rup's mappings lack pup's: $(natbed_upnp_mappings rup)"
ok "miniupnpd restarted (all mappings lost): pup mapped again in $(secs $d) s (bound: check ${CHECK_S} s + 2 s), remaps $(field "$LINE" remaps)"

# --- the WAN address changes --------------------------------------------------
NEW=20.0.1.99
t=$(mono_ms)
natbed_wan_change rup "$NEW"
probe_wait "pup: new external address" "$LOG_pup" "$t" $((CHECK_S + 5)) event=status external_ip="$NEW"
probe_wait "pup: mapped on the new address" "$LOG_pup" "$t" $((CHECK_S + 5)) \
  event=status state=mapped external_ip="$NEW"
d=$(($(field "$LINE" mono_ms) - t))
a=$(connect_through s1 "$NEW" "$(field "$LINE" external_port)")
[[ $a == "sova-probe 20.0.0.10:"* ]] || fail "s1 -> $NEW:$(field "$LINE" external_port): expected the probe's greeting, got: $a"
ok "WAN address $WAN -> $NEW: pup reports it and is mapped on it in $(secs $d) s; s1 gets through $NEW"

# --- SIGTERM deletes the mapping ----------------------------------------------
stop_probe pup
sm=$(field "$LINE" stop_ms)
[ -z "$(field "$LINE" error)" ] || fail "pup: stop reported an error: $LINE"
! has_mapping rup "TCP 7071 -> $UP_IP:7071" || fail "pup's mapping still there after SIGTERM: $(natbed_upnp_mappings rup)"
[ -z "$(natbed_upnp_mappings rup)" ] || fail "mappings left on rup: $(natbed_upnp_mappings rup)"
ok "SIGTERM: the probe deleted its mapping in $sm ms and exited 0; rup has no mappings left"

# --- NAT-PMP when no IGD answers ------------------------------------------------
natbed_exec pnp nft -f - <<'EOF'
table inet nossdp {
  chain out {
    type filter hook output priority 0; policy accept;
    udp dport 1900 drop
  }
}
EOF
start_probe pnp 7073 --listen --no-pcp
probe_wait "pnp: mapping by NAT-PMP" "$LOG_pnp" "$T0_pnp" 10 event=status state=mapped
[ "$(field "$LINE" method)" = natpmp ] || fail "pnp: expected method natpmp: $LINE"
[ "$(field "$LINE" external_ip)" = "$NEW" ] || fail "pnp: expected external_ip $NEW: $LINE"
t_pmp=$(field "$LINE" t_ms)
pp=$(field "$LINE" external_port)
has_mapping rup "TCP $pp -> $(natbed_ip pnp):7073" || fail "rup's mappings lack pnp's: $(natbed_upnp_mappings rup)"
a=$(connect_through s1 "$NEW" "$pp")
[[ $a == "sova-probe 20.0.0.10:"* ]] || fail "s1 -> $NEW:$pp (NAT-PMP): expected the probe's greeting, got: $a"
stop_probe pnp
! has_mapping rup "TCP $pp -> $(natbed_ip pnp):7073" || fail "pnp's NAT-PMP mapping still there after SIGTERM"
ok "SSDP blocked: NAT-PMP maps $NEW:$pp -> pnp:7073 in $(secs "$t_pmp") s, s1 gets through, SIGTERM deletes it"

# --- PCP (RFC 6887), tried first: the same router speaks it ---------------------
start_probe ppcp 7075 --listen
probe_wait "ppcp: mapping by PCP" "$LOG_ppcp" "$T0_ppcp" 10 event=status state=mapped
[ "$(field "$LINE" method)" = pcp ] || fail "ppcp: expected method pcp: $LINE"
[ "$(field "$LINE" external_ip)" = "$NEW" ] || fail "ppcp: expected external_ip $NEW: $LINE"
[ "$(field "$LINE" lease_s)" = 3600 ] || fail "ppcp: expected a 3600 s lease: $LINE"
t_pcp=$(field "$LINE" t_ms)
pc=$(field "$LINE" external_port)
has_mapping rup "TCP $pc -> $(natbed_ip ppcp):7075" || fail "rup's mappings lack ppcp's: $(natbed_upnp_mappings rup)"
a=$(connect_through s1 "$NEW" "$pc")
[[ $a == "sova-probe 20.0.0.10:"* ]] || fail "s1 -> $NEW:$pc (PCP): expected the probe's greeting, got: $a"
# its lease lifecycle: the router forgets it; the renewal at the next check sees
# the new epoch and maps again
t=$(mono_ms)
natbed_upnp_restart rup
probe_wait "ppcp: mapped again after the router's restart" "$LOG_ppcp" "$t" $((CHECK_S + 6)) \
  event=status state=mapped remaps\>=1
has_mapping rup "TCP [0-9]* -> $(natbed_ip ppcp):7075" ||
  natbed_upnp_mappings rup | grep -q -- "-> $(natbed_ip ppcp):7075" ||
  fail "after the remap rup's mappings lack ppcp's: $(natbed_upnp_mappings rup)"
stop_probe ppcp
[ -z "$(field "$LINE" error)" ] || fail "ppcp: stop reported an error: $LINE"
! natbed_upnp_mappings rup | grep -q -- "-> $(natbed_ip ppcp):7075" || fail "ppcp's PCP mapping still there after SIGTERM"
ok "PCP first: ppcp mapped $NEW:$pc -> ppcp:7075 by pcp in $(secs "$t_pcp") s (lease 3600 s), s1 gets through; mapped again after the router forgot it; SIGTERM deletes it (lifetime 0)"

# --- the gateway goes silent; stop stays bounded --------------------------------
start_probe pgone 7074 --no-pcp
probe_wait "pgone: mapping" "$LOG_pgone" "$T0_pgone" 10 event=status state=mapped
natbed_partition rgone
t=$(mono_ms)
probe_wait "pgone: gateway lost" "$LOG_pgone" "$t" $((CHECK_S + 8)) event=status state=discovering \
  error_code=-3
lost=$(field "$LINE" error)
probe_wait "pgone: no gateway while it is silent" "$LOG_pgone" "$t" 10 event=status state=no-gateway
natbed_heal rgone
t=$(mono_ms)
kill -USR1 "$PID_pgone" # the daemon's refresh on a network change skips the backoff
probe_wait "pgone: mapped again after the gateway came back" "$LOG_pgone" "$t" 5 event=status \
  state=mapped remaps\>=1
ok "rgone silent: '$lost' -> discovering -> no-gateway; back (and a refresh): mapped again in $(secs $(($(field "$LINE" mono_ms) - t))) s"
natbed_partition rgone
stop_probe pgone
sm=$(field "$LINE" stop_ms)
[ "$sm" -le 2500 ] || fail "pgone: stop took $sm ms with a silent router, bound 2000 ms"
[[ $(field "$LINE" error) == *"no answer from the gateway within 2000 ms"* ]] || fail "pgone: expected stop to say it gave up: $LINE"
natbed_heal rgone
ok "SIGTERM with the router silent: stop gave up after $sm ms (bound 2000 ms), exit 0: $(field "$LINE" error)"

# --- no gateway: no UPnP router, double NAT ------------------------------------
for node in pno pdbl; do
  case $node in pno) what="a router without UPnP" ;; *) what="double NAT (UPnP only on the outer router)" ;; esac
  start_probe "$node" 7071
  eval "log=\$LOG_$node; t0=\$T0_$node"
  probe_wait "$node: no gateway" "$log" "$t0" 10 event=status state=no-gateway
  t_ng=$(field "$LINE" t_ms)
  [ "$t_ng" -le 3000 ] || fail "$node: no-gateway after $(secs "$t_ng") s, expected within 3 s"
  ok "$node behind $what: no-gateway in $(secs "$t_ng") s (bound 3 s): $(field "$LINE" error)"
  stop_probe "$node"
done

done_ok
