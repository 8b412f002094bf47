#!/usr/bin/env bash
# test_service.sh - sova-peer run exactly as its user unit's ExecStart= runs
# it, with a NOTIFY_SOCKET this test owns (tests/e2e/notify_probe.py), behind
# a UPnP router on the NAT test bed (docs/NATBED.md): READY=1 and WATCHDOG=1
# come, the router holds the peer's port mapping; on SIGTERM the peer sends
# STOPPING=1, deletes the mapping from the router and exits 0.
# tsan: yes (a real peer's UPnP worker and share scanner against a real router)
source "$SOVA_SRC/tests/e2e/lib.sh"
source "$SOVA_SRC/tests/natbed/lib.sh"
source "$SOVA_SRC/tests/natbed/overlay.sh"

natbed_init
natbed_host sn1 20.0.0.10
natbed_router r-up upnp 20.0.1.1
natbed_peer alice r-up
natbed_check_isolation
nb_federation 1
nb_supernode sn1 sn1 20.0.0.10

export XDG_CONFIG_HOME=$WORK/xdg-config
mkdir -p "$XDG_CONFIG_HOME/sova" "$WORK/alice/share"
{
  echo "[peer]"
  echo "state-dir = $WORK/alice/state"
  echo "bootstrap = 20.0.0.10:7070"
  echo "federation-ca = $WORK/fed/root.crt"
  echo "listen = 0.0.0.0:7071"
  echo "share = $WORK/alice/share"
  echo "upnp-check-s = 2"
} >"$XDG_CONFIG_HOME/sova/peer.conf"
line=$(sed -n 's/^ExecStart=//p' "$SOVA_SRC/deploy/systemd/sova-peer.service")
line=${line//%E/$XDG_CONFIG_HOME}
read -r -a EXEC <<<"$line"
[ "${EXEC[0]}" = /usr/bin/sova-peer ] || fail "sova-peer.service runs ${EXEC[0]}"
EXEC[0]=$PEER_BIN
nb_spawn alice alice python3 "$SOVA_SRC/tests/e2e/notify_probe.py" --socket "$WORK/alice.sock" \
  --log "$WORK/alice.notify" --watchdog-usec 2000000 -- "${EXEC[@]}"
wait_for "$WORK/alice.notify" "READY=1" 20
wait_for "$WORK/alice.notify" "WATCHDOG=1" 2
nb_wait_reach alice mapped 40
natbed_upnp_mappings r-up | grep -q "TCP 7071 -> $(natbed_ip alice):7071" ||
  fail "no mapping of alice's port on r-up: $(natbed_upnp_mappings r-up)"
ok "the peer as its unit runs it: READY=1, WATCHDOG=1, mapped by its UPnP router"

nb_stop alice # the probe passes SIGTERM on and exits with the peer's status
grep -q "STOPPING=1" "$WORK/alice.notify" || fail "no STOPPING=1: $(cat "$WORK/alice.notify")"
grep -q "EXIT rc=0" "$WORK/alice.notify" || fail "the peer did not exit 0: $(tail -2 "$WORK/alice.notify")"
[ -z "$(natbed_upnp_mappings r-up)" ] || fail "mappings left on r-up after SIGTERM: $(natbed_upnp_mappings r-up)"
ok "SIGTERM: STOPPING=1, the port mapping is deleted from the router, exit 0"
nb_stop sn1
done_ok
