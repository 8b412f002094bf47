#!/usr/bin/env bash
# test_natbed.sh - the NAT test bed proves itself with real traffic:
# isolation, NAT behaviour of every router kind, UPnP and NAT-PMP through a
# real miniupnpd, router reboot, WAN address change, partitions, teardown
# (also after SIGINT). docs/NATBED.md.
source "$SOVA_SRC/tests/e2e/lib.sh"    # ok, fail, wait_for, $WORK, cleanup
source "$SOVA_SRC/tests/natbed/lib.sh"

# A namespace outside the bed, for the isolation check's negative test; the
# EXIT handler removes it, then runs e2e's cleanup with the test's status
# (natbed_init chains this handler after its teardown).
PROBE_NS=natbedprobe$$
status() { return "$1"; }
on_exit() {
  local rc=$?
  ip netns del "$PROBE_NS" 2>/dev/null || true
  if [ $rc -eq 0 ]; then cleanup; else status $rc || cleanup; fi
}
trap on_exit EXIT

# addrsrv.py PORT: TCP server; answers each connection with "IP:PORT" of the
# client as it sees it, and logs it.
cat >"$WORK/addrsrv.py" <<'EOF'
import socket, sys
# One write a line: several of these may share a log, and print() under
# python3 -u writes a line in pieces that another process can split.
def log(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(64)
log("listening on %s" % sys.argv[1])
while True:
    c, a = s.accept()
    log("from %s:%d" % a)
    c.sendall(("%s:%d\n" % a).encode())
    c.close()
EOF
# addrcli.py HOST PORT [LOCAL_PORT] [TIMEOUT]: prints the server's answer,
# or "ERROR ..." and exits 1.
cat >"$WORK/addrcli.py" <<'EOF'
import socket, sys
try:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if len(sys.argv) > 3 and sys.argv[3] != "0":
        s.bind(("0.0.0.0", int(sys.argv[3])))
    s.settimeout(float(sys.argv[4]) if len(sys.argv) > 4 else 5)
    s.connect((sys.argv[1], int(sys.argv[2])))
    print(s.recv(100).decode().strip())
except Exception as e:
    print("ERROR", type(e).__name__, e)
    sys.exit(1)
EOF

# ask NODE HOST PORT [LOCAL_PORT] [TIMEOUT]: what the server saw as our address
ask() {
  local node=$1; shift
  natbed_exec "$node" python3 "$WORK/addrcli.py" "$@" || true
}
expect_ip() { # WHAT ANSWER IP
  [ "${2%:*}" = "$3" ] || fail "$1: expected the server to see $3, it saw: $2"
}
expect_refused() { # WHAT ANSWER
  case $2 in ERROR*) ;; *) fail "$1: expected no connection, got an answer: $2" ;; esac
}
serve() { # NODE PORT: start addrsrv.py in NODE, wait until it listens
  natbed_spawn "$1" "$WORK/$1-$2.log" python3 -u "$WORK/addrsrv.py" "$2" >/dev/null
  wait_for "$WORK/$1-$2.log" "^listening on $2"
}
now_us() { echo "${EPOCHREALTIME/./}"; }
secs_since() { local d=$(( $(now_us) - $1 )); printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000)); }
bed_pids() { local ns; for ns in $(ip netns list | awk '{print $1}' | grep "^$1" || true); do ip netns pids "$ns"; done; }

t_start=$(now_us)

# --- build ----------------------------------------------------------------
natbed_init
ok "preflight passed; the empty bed ($NATBED_PREFIX*) passes the isolation check"

natbed_host s1 20.0.0.10
natbed_host s2 20.0.0.11
natbed_router rup upnp 20.0.1.1
natbed_router rno noupnp 20.0.2.1
natbed_router rsym symmetric 20.0.3.1
natbed_router rdbl double 20.0.4.1
natbed_router rpub public 20.0.5.1
natbed_peer pup rup
natbed_peer pno rno
natbed_peer psym rsym
natbed_peer pdbl rdbl
natbed_peer ppub rpub
natbed_check_isolation
nns=$(ip netns list | grep -c "^$NATBED_PREFIX")
ok "built 2 hosts, 5 routers, 5 peers in $(secs_since "$t_start") s: $nns namespaces, none linked to the host namespace"

[ "$(natbed_ip ppub)" = 20.0.5.1 ] || fail "public peer: expected address 20.0.5.1, got $(natbed_ip ppub)"
[ "$(natbed_ip pup)" = 10.1.0.10 ] || fail "upnp peer: expected 10.1.0.10, got $(natbed_ip pup)"
[ "$(natbed_wan_ip rdbl)" = 20.0.4.1 ] || fail "double: expected WAN 20.0.4.1, got $(natbed_wan_ip rdbl)"

# The check itself catches a link that leaves the bed (here to a namespace
# outside the bed; the host namespace is never touched).
ip netns add "$PROBE_NS"
ip link add probe0 netns "${NATBED_PREFIX}s1" type veth peer name probe1 netns "$PROBE_NS"
out=$( (natbed_check_isolation) 2>&1 ) && fail "isolation check passed with a veth to $PROBE_NS"
case $out in *"NATBED ISOLATION FAILED"*"probe0"*"$PROBE_NS"*) ;;
  *) fail "isolation check: expected a failure naming probe0 and $PROBE_NS, got: $out" ;; esac
ip netns del "$PROBE_NS"
natbed_check_isolation
ok "isolation check fails loudly on a veth leaving the bed (and passes again once it is gone)"

# --- outbound through every router kind -----------------------------------
serve s1 8000
serve s2 8000
for pr in pup:rup pno:rno psym:rsym pdbl:rdbl; do
  p=${pr%:*}; r=${pr#*:}
  a=$(ask "$p" 20.0.0.10 8000)
  expect_ip "$p behind $r ($(natbed_ip "$p"))" "$a" "$(natbed_wan_ip "$r")"
  ok "$p ($(natbed_ip "$p")) behind $r reaches s1; s1 sees the router's WAN address $a"
done
a=$(ask ppub 20.0.0.10 8000)
expect_ip "public peer" "$a" "$(natbed_ip ppub)"
ok "ppub on the public 'router' reaches s1 with its own address $a"

# --- mapping behaviour ----------------------------------------------------
a1=$(ask pno 20.0.0.10 8000 40000); a2=$(ask pno 20.0.0.11 8000 40000)
[ "$a1" = "20.0.2.1:40000" ] && [ "$a2" = "20.0.2.1:40000" ] ||
  fail "noupnp: expected 20.0.2.1:40000 at both servers (port kept), got s1 $a1, s2 $a2"
ok "noupnp keeps the source port: local 40000 seen as $a1 by s1 and $a2 by s2"
a1=$(ask psym 20.0.0.10 8000 40000); a2=$(ask psym 20.0.0.11 8000 40000)
expect_ip "symmetric to s1" "$a1" 20.0.3.1; expect_ip "symmetric to s2" "$a2" 20.0.3.1
[ "${a1#*:}" != "${a2#*:}" ] ||
  fail "symmetric: expected different external ports for two servers, both saw $a1"
ok "symmetric NAT: local 40000 seen as $a1 by s1 and $a2 by s2 (endpoint-dependent)"

# --- unsolicited inbound ---------------------------------------------------
serve pno 9000
serve ppub 9000
a=$(ask s1 20.0.2.1 9000 0 1); expect_refused "s1 -> noupnp WAN:9000" "$a"
a=$(ask s1 10.2.0.10 9000 0 1); expect_refused "s1 -> noupnp peer's LAN address" "$a"
ok "unsolicited connections from the internet to a NATed peer fail (WAN address and LAN address)"
a=$(ask s1 20.0.5.1 9000 0 1); expect_ip "s1 -> public peer" "$a" 20.0.0.10
ok "the internet reaches a public peer directly; it sees s1 as $a"

# --- UPnP and NAT-PMP ------------------------------------------------------
t=$(now_us)
out=$(natbed_exec pup upnpc -l 2>&1 || true)
d=$(secs_since "$t")
case $out in *"Found valid IGD"*"ExternalIPAddress = 20.0.1.1"*) ;;
  *) fail "upnpc -l on the upnp LAN: expected an IGD with ExternalIPAddress = 20.0.1.1, got: $out" ;; esac
ok "UPnP discovery on the upnp LAN finds miniupnpd in $d s (ExternalIPAddress = 20.0.1.1)"

serve pup 9000
out=$(natbed_exec pup upnpc -e natbed -a "$(natbed_ip pup)" 9000 19000 TCP 3600 2>&1 || true)
case $out in *"external 20.0.1.1:19000 TCP is redirected to internal 10.1.0.10:9000"*) ;;
  *) fail "upnpc -a: expected the mapping 20.0.1.1:19000 -> 10.1.0.10:9000, got: $out" ;; esac
a=$(ask s1 20.0.1.1 19000)
expect_ip "s1 -> upnp mapping 20.0.1.1:19000" "$a" 20.0.0.10
ok "upnpc -a maps 20.0.1.1:19000 to pup:9000; s1 connects through it (pup sees $a)"

out=$(natbed_exec pup natpmpc -g "$(natbed_ip rup)" -a 19001 9001 udp 120 2>&1 || true)
case $out in *"Mapped public port 19001 protocol UDP to local port 9001"*) ;;
  *) fail "natpmpc -a: expected UDP 19001 -> 9001, got: $out" ;; esac
m=$(natbed_upnp_mappings rup)
[ "$m" = "TCP 19000 -> 10.1.0.10:9000
UDP 19001 -> 10.1.0.10:9001" ] || fail "natbed_upnp_mappings: expected the UPnP and NAT-PMP mappings, got: $m"
ok "NAT-PMP maps UDP 19001; natbed_upnp_mappings shows both: $(echo "$m" | paste -sd';')"

natbed_upnp_restart rup
m=$(natbed_upnp_mappings rup)
[ -z "$m" ] || fail "after natbed_upnp_restart: expected no mappings, got: $m"
a=$(ask s1 20.0.1.1 19000 0 1); expect_refused "s1 -> lost mapping 20.0.1.1:19000" "$a"
out=$(natbed_exec pup upnpc -l 2>&1 || true)
case $out in *"Found valid IGD"*) ;; *) fail "after restart: expected upnpc to find the IGD again, got: $out" ;; esac
ok "natbed_upnp_restart: every mapping is lost (s1 no longer gets through), miniupnpd answers again"

# --- double NAT ------------------------------------------------------------
t=$(now_us)
out=$(natbed_exec pdbl upnpc -l 2>&1 || true)
d=$(secs_since "$t")
case $out in *"No IGD UPnP Device found"*) ;;
  *) fail "double NAT: expected no IGD from the inner LAN, got: $out" ;; esac
t=$(now_us)
out=$(natbed_exec pdbl natpmpc 2>&1 || true)
d2=$(secs_since "$t")
case $out in *"Public IP address"*) fail "double NAT: NAT-PMP answered from the inner LAN: $out" ;; esac
ok "double NAT: upnpc finds no IGD from the inner LAN (after $d s); NAT-PMP to the inner router fails in $d2 s"

# --- WAN address change ----------------------------------------------------
natbed_wan_change rno 20.0.2.99
[ "$(natbed_wan_ip rno)" = 20.0.2.99 ] || fail "natbed_wan_ip after change: $(natbed_wan_ip rno)"
a=$(ask pno 20.0.0.10 8000)
expect_ip "noupnp after WAN change" "$a" 20.0.2.99
ok "natbed_wan_change rno: s1 now sees the new address $a"

natbed_wan_change rup 20.0.1.99
out=$(natbed_exec pup upnpc -s 2>&1 || true)
case $out in *"ExternalIPAddress = 20.0.1.99"*) ;;
  *) fail "upnp after WAN change: expected ExternalIPAddress = 20.0.1.99, got: $out" ;; esac
out=$(natbed_exec pup upnpc -e natbed -a "$(natbed_ip pup)" 9000 19002 TCP 600 2>&1 || true)
case $out in *"external 20.0.1.99:19002 TCP is redirected"*) ;;
  *) fail "upnpc -a after WAN change: expected a mapping on 20.0.1.99:19002, got: $out" ;; esac
a=$(ask s1 20.0.1.99 19002)
expect_ip "s1 -> mapping on the new address" "$a" 20.0.0.10
a=$(ask pup 20.0.0.10 8000)
expect_ip "upnp peer after WAN change" "$a" 20.0.1.99
ok "natbed_wan_change rup: miniupnpd reports 20.0.1.99, maps on it, s1 gets through; masquerade follows"

# --- partition --------------------------------------------------------------
natbed_partition s2
a=$(ask pno 20.0.0.11 8000 0 1); expect_refused "pno -> partitioned s2" "$a"
a=$(ask s2 127.0.0.1 8000 0 1); expect_ip "s2 -> its own loopback" "$a" 127.0.0.1
a=$(ask pno 20.0.0.10 8000); expect_ip "pno -> s1 during the partition" "$a" 20.0.2.99
natbed_heal s2
a=$(ask pno 20.0.0.11 8000); expect_ip "pno -> healed s2" "$a" 20.0.2.99
ok "natbed_partition s2 cuts it off (its loopback and other hosts work); natbed_heal restores it"

# --- teardown ----------------------------------------------------------------
prefix=$NATBED_PREFIX
pids=$(bed_pids "$prefix" | sort -n | paste -sd' ')
[ -n "$pids" ] || fail "expected processes in the bed before teardown (miniupnpd, servers)"
natbed_teardown
natbed_teardown   # idempotent
left=$(ip netns list | grep "^$prefix" || true)
[ -z "$left" ] || fail "after natbed_teardown: namespaces left: $left"
for p in $pids; do [ ! -d "/proc/$p" ] || fail "after natbed_teardown: process $p still runs: $(tr '\0' ' ' <"/proc/$p/cmdline")"; done
ok "natbed_teardown (twice) leaves no namespace of $prefix* and none of its $(echo "$pids" | wc -w) processes"

# --- SIGINT in the middle of a run -------------------------------------------
cat >"$WORK/child.sh" <<'EOF'
set -euo pipefail
source "$SOVA_SRC/tests/natbed/lib.sh"
natbed_init
natbed_host h 20.0.0.10
natbed_router r upnp 20.0.1.1
natbed_peer p r
natbed_spawn h "$WORK/child-srv.log" python3 -u "$WORK/addrsrv.py" 8000 >/dev/null
natbed_spawn p "$WORK/child-srv.log" python3 -u "$WORK/addrsrv.py" 9000 >/dev/null
until [ "$(grep -c '^listening' "$WORK/child-srv.log" 2>/dev/null)" -ge 2 ]; do sleep 0.05; done
pids=$(for ns in $(ip netns list | awk '{print $1}' | grep "^$NATBED_PREFIX"); do ip netns pids "$ns"; done | paste -sd' ')
echo "READY $NATBED_PREFIX $pids"
sleep infinity   # until interrupted
EOF
set -m   # the child gets its own process group and SIGINT as from a terminal
WORK=$WORK SOVA_SRC=$SOVA_SRC bash "$WORK/child.sh" >"$WORK/child.log" 2>&1 &
child=$!
set +m
wait_for "$WORK/child.log" "^READY " 60
read -r _ cprefix cpids < <(grep "^READY " "$WORK/child.log")
[ "$(ip netns list | grep -c "^$cprefix")" -eq 4 ] || fail "child bed: expected 4 namespaces, got: $(ip netns list | grep "^$cprefix")"
kill -INT -- "-$child"
rc=0; wait "$child" || rc=$?
[ $rc -eq 130 ] || fail "child bed after SIGINT: expected exit status 130, got $rc; log: $(tail -n 5 "$WORK/child.log")"
left=$(ip netns list | grep "^$cprefix" || true)
[ -z "$left" ] || fail "after SIGINT: namespaces left: $left"
for p in $cpids; do [ ! -d "/proc/$p" ] || fail "after SIGINT: process $p still runs: $(tr '\0' ' ' <"/proc/$p/cmdline")"; done
ok "SIGINT in the middle of a bed run: exit 130, no namespace of $cprefix*, none of its $(echo "$cpids" | wc -w) processes left"

echo "# smoke test ran $(secs_since "$t_start") s"
done_ok
