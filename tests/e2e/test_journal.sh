#!/usr/bin/env bash
# Logs for journald (issue 18): when JOURNAL_STREAM names the very file the
# daemon's stderr is (DEVICE:INODE, as systemd sets it), every line starts
# with its sd-daemon priority - <6> info, <4> warning, <3> error - and has
# no timestamp of its own (the journal stamps lines), so `journalctl -p
# warning` finds warnings; --check-config's problems come as <3> too. With
# JOURNAL_STREAM unset, or naming another file (a child that inherited it),
# lines are as before: "TIME LEVEL module [node] message".
source "$(dirname "$0")/lib.sh"

make_federation
TS='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z (error|warn |info |debug) '

# stream_of FILE: the JOURNAL_STREAM value naming FILE (made empty first).
stream_of() {
  : >"$1"
  stat -L -c '%d:%i' "$1"
}

cat >"$WORK/sn.conf" <<EOF
[supernode]
listen = 127.0.0.1:0
cert = $WORK/fed/sn1.crt
key = $WORK/fed/sn1.key
federation-ca = $WORK/fed/root.crt
state-dir = $WORK/snj-state
EOF

# ---- the supernode with its stderr as "the journal" ---------------------------------------
JOURNAL_STREAM=$(stream_of "$WORK/snj.log")
export JOURNAL_STREAM
start snj "$SN_BIN" --config "$WORK/sn.conf"
unset JOURNAL_STREAM
wait_for "$WORK/snj.log" "^<6>info  sn \[[a-z2-7]{8}\] supernode [a-z2-7]{52} listening on 127\.0\.0\.1:[0-9]+$"
PORT=$(grep -Eo "listening on 127\.0\.0\.1:[0-9]+" "$WORK/snj.log" | head -1 | sed 's/.*://')
# A warning: an option that needs a restart; an error: a file that does not load.
echo "max-frame = 65536" >>"$WORK/sn.conf"
kill -HUP "$PID_snj"
wait_for "$WORK/snj.log" "^<4>warn  sn \[[a-z2-7]{8}\] reload: max-frame changed \(1048576 -> 65536\) but needs a restart"
echo "max-frame = lots" >>"$WORK/sn.conf"
kill -HUP "$PID_snj"
wait_for "$WORK/snj.log" "^<3>error sn \[[a-z2-7]{8}\] reload: .*keeping the running configuration$"
bad=$(grep -Ev '^<[3467]>(error|warn |info |debug) [a-z]+ ' "$WORK/snj.log" || true)
[ -z "$bad" ] || fail "lines without a priority prefix: $bad"
! grep -Eq '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}' "$WORK/snj.log" ||
  fail "a journal line carries a timestamp: $(grep -E '[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$WORK/snj.log" | head -3)"
ok "supernode, stderr the journal: every line starts <6>/<4>/<3> by level, none has a timestamp"

# ---- the peer too ---------------------------------------------------------------------------
JOURNAL_STREAM=$(stream_of "$WORK/pj.log")
export JOURNAL_STREAM
start pj "$PEER_BIN" run --state-dir "$WORK/pj" --bootstrap "127.0.0.1:$PORT" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --downloads "$WORK/pj-dl" --upnp no
unset JOURNAL_STREAM
wait_for "$WORK/pj.log" "^<6>info  op \[[a-z2-7]{8}\] peer [a-z2-7]{52} listening on "
wait_for "$WORK/pj.log" "attached"
stop pj
bad=$(grep -Ev '^<[3467]>(error|warn |info |debug) [a-z]+ ' "$WORK/pj.log" || true)
[ -z "$bad" ] || fail "peer lines without a priority prefix: $bad"
ok "peer, stderr the journal: every line starts with its priority, none has a timestamp"

# ---- --check-config's problems, as ExecReload= writes them to the journal -----------------
sed -i '/^max-frame/d' "$WORK/sn.conf"
JOURNAL_STREAM=$(stream_of "$WORK/check.log")
export JOURNAL_STREAM
rc=0
"$SN_BIN" --config "$WORK/sn.conf" --check-config --cert "$WORK/nope.crt" 2>>"$WORK/check.log" || rc=$?
unset JOURNAL_STREAM
[ $rc -eq 2 ] && grep -q "^<3>sova-supernode: cannot open certificate $WORK/nope.crt" "$WORK/check.log" ||
  fail "check-config into the journal: rc=$rc $(cat "$WORK/check.log")"
ok "--check-config's problems reach the journal as errors (<3>)"

# ---- elsewhere: unchanged -------------------------------------------------------------------
other=$(stream_of "$WORK/elsewhere")
: >"$WORK/snx.log"
JOURNAL_STREAM=$other # inherited, but stderr is another file
export JOURNAL_STREAM
start snx "$SN_BIN" --config "$WORK/sn.conf" --state-dir "$WORK/snx-state"
unset JOURNAL_STREAM
start sny "$SN_BIN" --config "$WORK/sn.conf" --state-dir "$WORK/sny-state"
for n in snx sny; do
  wait_for "$WORK/$n.log" "${TS}sn \[[a-z2-7]{8}\] supernode [a-z2-7]{52} listening on 127\.0\.0\.1:[0-9]+$"
  kill -HUP "$(eval echo "\$PID_$n")"
  wait_for "$WORK/$n.log" "${TS}sn \[[a-z2-7]{8}\] reload: 0 options changed"
  bad=$(grep -Ev "$TS" "$WORK/$n.log" || true)
  [ -z "$bad" ] || fail "$n: lines not in the plain format: $bad"
  ! grep -q '^<[0-9]>' "$WORK/$n.log" || fail "$n: a priority prefix without the journal"
done
rc=0
"$SN_BIN" --config "$WORK/sn.conf" --check-config --cert "$WORK/nope.crt" 2>"$WORK/plain-check.err" || rc=$?
[ $rc -eq 2 ] && grep -qx "sova-supernode: cannot open certificate $WORK/nope.crt: No such file or directory" \
  "$WORK/plain-check.err" || fail "check-config without the journal: rc=$rc $(cat "$WORK/plain-check.err")"
ok "JOURNAL_STREAM naming another file, or unset: lines are 'TIME LEVEL module [node] message' as before"
done_ok
