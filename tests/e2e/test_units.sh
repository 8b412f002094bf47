#!/usr/bin/env bash
# What `cmake --install` puts in place, and the systemd units and man pages
# among it: both units pass `systemd-analyze verify` without a word, the
# supernode's is rated at most 2.0 by `systemd-analyze security --offline`
# and has the hardening deploy/systemd/ promises, the peer's user unit has
# the hardening a user manager can apply and none it cannot, the man pages
# (gzipped) format without a warning and sova.conf(5) names every option.
source "$(dirname "$0")/lib.sh"

for tool in systemd-analyze groff man; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/sova-dev deps installs it)"
done

# ---- cmake --install -------------------------------------------------------------------
R=$WORK/root
DESTDIR=$R cmake --install "$SOVA_BIN" --prefix /usr >"$WORK/install.log" 2>&1 ||
  fail "cmake --install failed: $(tail -5 "$WORK/install.log")"
for f in usr/sbin/sova-supernode usr/bin/sova-peer usr/bin/sova-federation \
  usr/lib/systemd/system/sova-supernode.service usr/lib/systemd/user/sova-peer.service \
  usr/lib/sysusers.d/sova.conf etc/sova/sova.conf usr/share/man/man8/sova-supernode.8.gz \
  usr/share/man/man1/sova-peer.1.gz usr/share/man/man5/sova.conf.5.gz usr/share/man/man8/sova-federation.8.gz \
  usr/share/doc/sova/OPERATIONS.md usr/share/doc/sova/examples/sova.conf \
  usr/share/bash-completion/completions/sova-peer usr/share/bash-completion/completions/sova-supernode; do
  [ -e "$R/$f" ] || fail "cmake --install did not install /$f"
done
[ -x "$R/usr/sbin/sova-supernode" ] && [ -x "$R/usr/bin/sova-federation" ] || fail "binaries not executable"
grep -q '^ExecStart=/usr/sbin/sova-supernode --config ${CONFIGURATION_DIRECTORY}/sova.conf$' \
  "$R/usr/lib/systemd/system/sova-supernode.service" || fail "installed unit's ExecStart="
ok "cmake --install puts binaries, units, the sysusers entry, /etc/sova/sova.conf and man pages in place"

L=$WORK/local
DESTDIR=$L cmake --install "$SOVA_BIN" --prefix /usr/local >/dev/null
grep -q '^ExecStart=/usr/local/sbin/sova-supernode ' "$L/usr/local/lib/systemd/system/sova-supernode.service" ||
  fail "with prefix /usr/local the unit does not run /usr/local/sbin/sova-supernode"
grep -q '^ExecStart=/usr/local/bin/sova-peer run$' "$L/usr/local/lib/systemd/user/sova-peer.service" ||
  fail "with prefix /usr/local the user unit does not run /usr/local/bin/sova-peer"
echo "# the operator's own" >"$L/etc/sova/sova.conf"
again=$(DESTDIR=$L cmake --install "$SOVA_BIN" --prefix /usr/local)
grep -q "Keeping: $L/etc/sova/sova.conf" <<<"$again" || fail "no word about keeping the existing configuration"
grep -q "the operator's own" "$L/etc/sova/sova.conf" || fail "an existing /etc/sova/sova.conf was replaced"
ok "the units follow the prefix; an existing /etc/sova/sova.conf is never replaced"

# (with the certificates it names, which are the operator's to issue)
make_federation
"$SN_BIN" --config "$R/etc/sova/sova.conf" --cert "$WORK/fed/sn1.crt" --key "$WORK/fed/sn1.key" \
  --federation-ca "$WORK/fed/root.crt" --print-config >/dev/null || fail "the example config (supernode)"
"$PEER_BIN" print-config --config "$R/etc/sova/sova.conf" --state-dir "$WORK/p" \
  --federation-ca "$WORK/fed/root.crt" >/dev/null || fail "the example config (peer)"
ok "the installed example configuration loads in both daemons"

# ---- systemd-analyze -------------------------------------------------------------------
# The installed units, with their /usr paths pointing into the scratch root
# (verify checks that ExecStart= is executable and that the man pages of
# Documentation= exist).
mkdir -p "$WORK/verify" "$WORK/xdg-runtime"
chmod 700 "$WORK/xdg-runtime"
for u in system/sova-supernode.service user/sova-peer.service; do
  sed "s|=/usr/|=$R/usr/|" "$R/usr/lib/systemd/$u" >"$WORK/verify/${u#*/}"
done
MANPATH=$R/usr/share/man systemd-analyze verify "$WORK/verify/sova-supernode.service" \
  >"$WORK/verify-sn.log" 2>&1 || fail "systemd-analyze verify (supernode): $(cat "$WORK/verify-sn.log")"
[ ! -s "$WORK/verify-sn.log" ] || fail "systemd-analyze verify (supernode) says: $(cat "$WORK/verify-sn.log")"
XDG_RUNTIME_DIR=$WORK/xdg-runtime MANPATH=$R/usr/share/man systemd-analyze --user verify \
  "$WORK/verify/sova-peer.service" >"$WORK/verify-peer.log" 2>&1 ||
  fail "systemd-analyze --user verify (peer): $(cat "$WORK/verify-peer.log")"
[ ! -s "$WORK/verify-peer.log" ] || fail "systemd-analyze verify (peer) says: $(cat "$WORK/verify-peer.log")"
ok "systemd-analyze verify is clean for sova-supernode.service and (--user) sova-peer.service"

UNIT=$R/usr/lib/systemd/system/sova-supernode.service
systemd-analyze security --offline=yes --threshold=20 "$UNIT" >"$WORK/security.log" 2>&1 ||
  fail "exposure above 2.0: $(tail -1 "$WORK/security.log")"
score=$(sed -n 's/.*Overall exposure level for sova-supernode.service: \([0-9.]*\).*/\1/p' "$WORK/security.log")
[ -n "$score" ] && python3 -c 'import sys; sys.exit(not float(sys.argv[1]) <= 2.0)' "$score" ||
  fail "systemd-analyze security: '$score', expected at most 2.0"
ok "systemd-analyze security --offline rates sova-supernode.service $score (at most 2.0)"

for d in '^Type=notify$' '^WatchdogSec=[1-9]' '^Restart=on-failure$' '^StateDirectory=sova-supernode$' \
  '^ConfigurationDirectory=sova$' '^User=sova$' '^ProtectSystem=strict$' '^ProtectHome=yes$' \
  '^PrivateTmp=yes$' '^NoNewPrivileges=yes$' '^CapabilityBoundingSet=$' \
  '^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$' '^SystemCallFilter=@system-service$' \
  '^MemoryDenyWriteExecute=yes$' '^ExecReload=/bin/kill -HUP \$MAINPID$' '^WantedBy=multi-user.target$'; do
  grep -Eq "$d" "$UNIT" || fail "sova-supernode.service lacks /$d/"
done
# A reload checks the new configuration first (the second ExecReload= runs
# only if the first succeeds); no ExecStartPre= (RestartPreventExitStatus=
# does not apply to it: a failing one would restart forever): the daemon
# itself exits 2 on a configuration error at start.
PUNIT=$R/usr/lib/systemd/user/sova-peer.service
[ "$(grep '^ExecReload=' "$UNIT")" = "ExecReload=/usr/sbin/sova-supernode --check-config --config \${CONFIGURATION_DIRECTORY}/sova.conf
ExecReload=/bin/kill -HUP \$MAINPID" ] || fail "supernode unit's ExecReload=: $(grep '^ExecReload=' "$UNIT")"
[ "$(grep '^ExecReload=' "$PUNIT")" = "ExecReload=/usr/bin/sova-peer run --check-config
ExecReload=/bin/kill -HUP \$MAINPID" ] || fail "peer unit's ExecReload=: $(grep '^ExecReload=' "$PUNIT")"
! grep -q '^ExecStartPre=' "$UNIT" "$PUNIT" || fail "a unit runs ExecStartPre= (restarted whatever its exit status)"
ok "systemctl reload runs --check-config before SIGHUP, in both units"

# The peer's user unit: what a user manager applies without privileges, and
# nothing it cannot (docs/OPERATIONS.md, "The peer's user unit"): settings
# built on namespaces would turn on PrivateUsers= and fail the unit where
# unprivileged user namespaces are off; capabilities and users are not the
# user manager's to change. --offline rates it as a system unit run as
# root (capabilities and User= count against it): 6.9 before
# RestrictNamespaces= and KeyringMode=, 6.2 with them.
for d in '^NoNewPrivileges=yes$' '^RestrictNamespaces=yes$' '^KeyringMode=private$' '^LockPersonality=yes$' \
  '^MemoryDenyWriteExecute=yes$' '^RestrictRealtime=yes$' '^RestrictSUIDSGID=yes$' \
  '^SystemCallFilter=@system-service$' '^SystemCallArchitectures=native$' '^WantedBy=default.target$'; do
  grep -Eq "$d" "$PUNIT" || fail "sova-peer.service lacks /$d/"
done
for d in User Group DynamicUser SupplementaryGroups CapabilityBoundingSet AmbientCapabilities PrivateUsers \
  ProtectSystem ProtectHome PrivateTmp PrivateDevices PrivateNetwork PrivateIPC PrivateMounts ProtectHostname \
  ProtectClock ProtectKernelTunables ProtectKernelModules ProtectKernelLogs ProtectControlGroups ProtectProc \
  ProcSubset RemoveIPC ReadOnlyPaths ReadWritePaths InaccessiblePaths TemporaryFileSystem RootDirectory \
  IPAddressDeny DeviceAllow; do
  ! grep -q "^$d=" "$PUNIT" || fail "sova-peer.service sets $d=, which a user manager cannot apply unprivileged"
done
systemd-analyze security --offline=yes --threshold=65 "$PUNIT" >"$WORK/security-peer.log" 2>&1 ||
  fail "sova-peer.service exposure above 6.5: $(tail -1 "$WORK/security-peer.log")"
pscore=$(sed -n 's/.*Overall exposure level for sova-peer.service: \([0-9.]*\).*/\1/p' "$WORK/security-peer.log")
ok "sova-peer.service has the hardening a user manager applies, none it cannot; --offline rates it $pscore"

nofile=$(sed -n 's/^LimitNOFILE=//p' "$UNIT")
default_peers=$("$SN_BIN" --print-config | sed -n 's/^max-peers = //p')
[ "$nofile" -ge $((2 * default_peers + 1024)) ] ||
  fail "LimitNOFILE=$nofile is short for max-peers $default_peers (two sockets a peer)"
ok "the unit is Type=notify with a watchdog, runs as sova, hardened; LimitNOFILE=$nofile covers max-peers"

# ---- man pages --------------------------------------------------------------------------
# They are installed gzipped (gzip -9n, as Debian's packages have them).
for page in man8/sova-supernode.8.gz man1/sova-peer.1.gz man5/sova.conf.5.gz man8/sova-federation.8.gz; do
  gzip -t "$R/usr/share/man/$page" || fail "$page is not gzip"
  warnings=$(gzip -dc "$R/usr/share/man/$page" | LC_ALL=C.UTF-8 groff -man -Tutf8 -ww 2>&1 >/dev/null)
  [ -z "$warnings" ] || fail "groff warns about $page: $warnings"
  LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$R/usr/share/man/$page" >"$WORK/page.txt" 2>"$WORK/page.err" ||
    fail "man -l $page failed: $(cat "$WORK/page.err")"
  [ ! -s "$WORK/page.err" ] || fail "man -l $page: $(cat "$WORK/page.err")"
  [ "$(wc -l <"$WORK/page.txt")" -gt 20 ] || fail "$page renders almost nothing"
done
ok "the man pages, gzipped, format without a warning (groff -ww, man -l)"

CONF5=$WORK/sova.conf.5
gzip -dc "$R/usr/share/man/man5/sova.conf.5.gz" >"$CONF5"
for opt in $( { "$SN_BIN" --help; "$PEER_BIN" --help; } | grep -Eo '^  --[a-z-]+' | sed 's/^  --//' |
              grep -vx config | grep -vx print-config | grep -vx check-config | sort -u); do
  grep -Eq "(^\.BR? |\" |, )${opt//-/\\\\-}( |\"|,|$)" "$CONF5" || fail "sova.conf(5) does not document $opt"
done
ok "sova.conf(5) documents every option of both daemons"
done_ok
