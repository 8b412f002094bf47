#!/usr/bin/env bash
# --check-config (issue 18): for each daemon a good configuration passes
# (exit 0, "configuration OK"), and each class of configuration error -
# a certificate or key that does not exist, a key of mode 0644, a key of
# another identity, the federation root or bootstrap missing, a file that
# does not parse - exits 2 with a line naming the problem; several problems
# are all named. The daemon started for real with such an error exits 2 too
# (the units' RestartPreventExitStatus=2 then stops the restart loop), while
# a failure that is not configuration (a port in use) stays 1. And the
# supernode unit's two ExecReload= lines, run in order as systemd does: a
# broken file fails the reload before the daemon is signalled.
source "$(dirname "$0")/lib.sh"

make_federation
"$FED" issue "$WORK/fed" sn2 >/dev/null
"$FED" init "$WORK/other" >/dev/null # another federation's root
"$FED" issue "$WORK/other" sn9 >/dev/null
F=$WORK/fed

# expect_check WHAT RC REGEX CMD...: CMD exits RC and its stderr has a line
# matching REGEX.
expect_check() {
  local what=$1 want=$2 re=$3 rc=0
  shift 3
  "$@" >"$WORK/check.out" 2>"$WORK/check.err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "$what: exit $rc, expected $want; stderr: $(cat "$WORK/check.err")"
  grep -Eq -- "$re" "$WORK/check.err" || fail "$what: no line /$re/ on stderr: $(cat "$WORK/check.err")"
}

# ---- sova-supernode -----------------------------------------------------------------------
cat >"$WORK/sn.conf" <<EOF
[supernode]
listen = 127.0.0.1:0
cert = $F/sn1.crt
key = $F/sn1.key
federation-ca = $F/root.crt
state-dir = $WORK/sn-state
EOF
SN=("$SN_BIN" --config "$WORK/sn.conf")
"${SN[@]}" --check-config >"$WORK/ok.out" 2>"$WORK/ok.err" || fail "good supernode config: $(cat "$WORK/ok.err")"
grep -qx "sova-supernode: configuration OK" "$WORK/ok.out" || fail "no 'configuration OK': $(cat "$WORK/ok.out")"
[ ! -s "$WORK/ok.err" ] || fail "a good config printed on stderr: $(cat "$WORK/ok.err")"
"$SN_BIN" check-config --config "$WORK/sn.conf" >/dev/null || fail "check-config (the command) of a good config"
[ ! -e "$WORK/sn-state" ] || fail "--check-config made the state folder"
ok "supernode: a good configuration passes --check-config (exit 0, 'configuration OK'), creating nothing"

cp "$F/sn1.key" "$WORK/open.key"
chmod 644 "$WORK/open.key"
expect_check "missing cert" 2 "^sova-supernode: cannot open certificate $WORK/nope.crt: No such file or directory$" \
  "${SN[@]}" --check-config --cert "$WORK/nope.crt"
expect_check "missing key" 2 "^sova-supernode: cannot open key $WORK/nope.key: No such file or directory$" \
  "${SN[@]}" --check-config --key "$WORK/nope.key"
expect_check "key mode 0644" 2 "^sova-supernode: key $WORK/open.key has mode 0644; must not be readable or writable by group or others" \
  "${SN[@]}" --check-config --key "$WORK/open.key"
expect_check "mismatched key" 2 "^sova-supernode: key $F/sn2.key does not match certificate $F/sn1.crt" \
  "${SN[@]}" --check-config --key "$F/sn2.key"
grep -v federation-ca "$WORK/sn.conf" >"$WORK/noroot.conf"
expect_check "no federation root" 2 "^sova-supernode: option --federation-ca is required$" \
  "$SN_BIN" --config "$WORK/noroot.conf" --check-config
expect_check "root that does not exist" 2 "^sova-supernode: federation root: cannot open certificate $WORK/none/root.crt" \
  "${SN[@]}" --check-config --federation-ca "$WORK/none/root.crt"
expect_check "another federation's root" 2 "^sova-supernode: supernode certificate .* does not chain to the federation root $WORK/other/root.crt" \
  "${SN[@]}" --check-config --federation-ca "$WORK/other/root.crt"
expect_check "listen not numeric" 2 "^sova-supernode: option 'listen': listen address 'localhost:7070': host must be a numeric address$" \
  "${SN[@]}" --check-config --listen localhost:7070
printf '[supernode]\ncert = %s\nthis is not an option line\n' "$F/sn1.crt" >"$WORK/bad.conf"
expect_check "unparseable file" 2 "^sova-supernode: $WORK/bad.conf:3: syntax error" \
  "$SN_BIN" --config "$WORK/bad.conf" --check-config
ok "supernode: missing cert, missing key, key mode 0644, key of another identity, no root, a missing root, another federation's root, a listen name, a file that does not parse: each exit 2 naming it"

expect_check "several problems" 2 "key $WORK/open.key has mode 0644" \
  "${SN[@]}" --check-config --cert "$WORK/nope.crt" --key "$WORK/open.key" --listen nowhere:1 \
  --log-file "$WORK/no/such/dir/sn.log"
for re in "cannot open certificate $WORK/nope.crt" "option 'listen'" "option 'log-file': cannot create $WORK/no/such/dir/sn.log"; do
  grep -q -- "$re" "$WORK/check.err" || fail "several problems: /$re/ not named: $(cat "$WORK/check.err")"
done
[ "$(wc -l <"$WORK/check.err")" -eq 4 ] || fail "several problems: not one line each: $(cat "$WORK/check.err")"
ok "supernode: four problems at once are four lines"

# print-config prints, but fails on a certificate that does not exist.
expect_check "print-config, missing cert" 2 "^sova-supernode: option 'cert': $WORK/nope.crt: No such file or directory$" \
  "${SN[@]}" --print-config --cert "$WORK/nope.crt"
grep -qx "cert = $WORK/nope.crt" "$WORK/check.out" || fail "print-config printed nothing: $(cat "$WORK/check.out")"
ok "supernode: --print-config still prints, and exits 2 when the certificate does not exist"

# Started for real: a configuration error exits 2 at once, with the problem.
for bad in "--key $WORK/open.key:has mode 0644" "--key $F/sn2.key:does not match certificate" \
  "--cert $WORK/nope.crt:cannot open certificate"; do
  read -r -a args <<<"${bad%%:*}"
  expect_check "start with ${bad%%:*}" 2 "${bad#*:}" timeout 20 "${SN[@]}" "${args[@]}"
done
[ ! -e "$WORK/sn-state" ] || fail "a supernode refused at start made its state folder"
ok "supernode: started with a key of mode 0644, a key of another identity or no certificate, it exits 2 naming the problem"

start_supernode sn
expect_check "port in use" 1 "Address already in use" \
  timeout 20 "${SN[@]}" --listen "127.0.0.1:$PORT_sn" --state-dir "$WORK/sn2-state"
ok "supernode: a failure that is not configuration (its port in use) still exits 1"

# ---- the unit's reload: check first, then SIGHUP -------------------------------------------
export CONFIGURATION_DIRECTORY=$WORK/etc
mkdir -p "$CONFIGURATION_DIRECTORY"
sed "s|^state-dir = .*|state-dir = $WORK/unit-state|" "$WORK/sn.conf" >"$CONFIGURATION_DIRECTORY/sova.conf"
UNIT=$SOVA_SRC/deploy/systemd/sova-supernode.service
# unit_cmd LINE: the words of a unit's command line, as systemd expands them.
unit_cmd() {
  local line=$1
  line=${line//'${CONFIGURATION_DIRECTORY}'/$CONFIGURATION_DIRECTORY}
  line=${line//'$MAINPID'/${PID_unit:-}}
  read -r -a CMD <<<"$line"
  case ${CMD[0]} in
    /usr/sbin/sova-supernode) CMD[0]=$SN_BIN ;;
    /bin/kill) ;;
    *) fail "the unit runs ${CMD[0]}" ;;
  esac
}
# reload: the ExecReload= lines in order; the first failing one ends it.
reload() {
  local line
  while IFS= read -r line; do
    unit_cmd "$line"
    "${CMD[@]}" >>"$WORK/reload.log" 2>&1 || return $?
  done < <(sed -n 's/^ExecReload=//p' "$UNIT")
}
unit_cmd "$(sed -n 's/^ExecStart=//p' "$UNIT")"
start unit "${CMD[@]}"
wait_for "$WORK/unit.log" "listening on 127\.0\.0\.1:[0-9]+"
printf 'max-results = 50\nmax-frame = lots\n' >>"$CONFIGURATION_DIRECTORY/sova.conf"
rc=0
reload || rc=$?
[ $rc -eq 2 ] || fail "reload of a broken file: exit $rc, expected 2: $(cat "$WORK/reload.log")"
grep -q "sova.conf:[0-9]*: option 'max-frame': 'lots'" "$WORK/reload.log" || fail "the failed reload does not say why: $(cat "$WORK/reload.log")"
sed -i '/^max-frame = lots$/d' "$CONFIGURATION_DIRECTORY/sova.conf"
reload || fail "reload of a good file failed: $(cat "$WORK/reload.log")"
wait_for "$WORK/unit.log" "reload: 1 options changed, 0 need a restart"
# Signals are handled in order: a SIGHUP of the failed reload would have
# logged its refusal before this one.
[ "$(grep -c "SIGHUP" "$WORK/unit.log")" -eq 1 ] && ! grep -q "keeping the running configuration" "$WORK/unit.log" &&
  grep -q "reload: max-results 100 -> 50" "$WORK/unit.log" ||
  fail "the daemon was signalled despite the failed check: $(grep reload "$WORK/unit.log")"
ok "unit: ExecReload= fails (2) on a broken file without signalling the daemon; a good file is checked, then applied"

# ---- sova-peer ------------------------------------------------------------------------------
P=("$PEER_BIN" run --bootstrap 127.0.0.1:7070 --federation-ca "$F/root.crt" --listen 127.0.0.1:0)
"${P[@]}" --state-dir "$WORK/p0" --check-config >"$WORK/ok.out" 2>"$WORK/ok.err" ||
  fail "good peer config (no identity yet): $(cat "$WORK/ok.err")"
grep -qx "sova-peer: configuration OK" "$WORK/ok.out" || fail "no 'configuration OK': $(cat "$WORK/ok.out")"
[ ! -e "$WORK/p0" ] || fail "--check-config made the state folder"
"$PEER_BIN" id --state-dir "$WORK/p1" >/dev/null 2>&1
"$PEER_BIN" id --state-dir "$WORK/p2" >/dev/null 2>&1
"${P[@]}" --state-dir "$WORK/p1" --check-config >/dev/null 2>"$WORK/ok.err" || fail "good peer config: $(cat "$WORK/ok.err")"
"$PEER_BIN" check-config --state-dir "$WORK/p1" --bootstrap 127.0.0.1:7070 --federation-ca "$F/root.crt" \
  >/dev/null || fail "check-config (the command) of a good config"
ok "peer: a good configuration passes --check-config, before and after its identity is made"

expect_check "peer: missing root cert" 2 "^sova-peer: federation root: cannot open certificate $WORK/nope.crt: No such file or directory$" \
  "${P[@]}" --state-dir "$WORK/p1" --check-config --federation-ca "$WORK/nope.crt"
mkdir -m 700 "$WORK/nokey"
cp "$WORK/p1/node.crt" "$WORK/nokey/"
expect_check "peer: missing key" 2 "^sova-peer: $WORK/nokey/node.crt exists but its key $WORK/nokey/node.key does not" \
  "${P[@]}" --state-dir "$WORK/nokey" --check-config
mkdir -m 700 "$WORK/mixed"
cp -p "$WORK/p1/node.key" "$WORK/mixed/"
cp "$WORK/p2/node.crt" "$WORK/mixed/"
expect_check "peer: mismatched key" 2 "^sova-peer: key $WORK/mixed/node.key does not match certificate $WORK/mixed/node.crt" \
  "${P[@]}" --state-dir "$WORK/mixed" --check-config
chmod 644 "$WORK/p2/node.key"
expect_check "peer: key mode 0644" 2 "^sova-peer: key $WORK/p2/node.key has mode 0644" \
  "${P[@]}" --state-dir "$WORK/p2" --check-config
expect_check "peer: no bootstrap" 2 "^sova-peer: no federation: bootstrap is not set" \
  "$PEER_BIN" run --state-dir "$WORK/p1" --federation-ca "$F/root.crt" --check-config
printf '[peer]\nshare\n' >"$WORK/badpeer.conf"
expect_check "peer: unparseable file" 2 "^sova-peer: $WORK/badpeer.conf:2: syntax error" \
  "${P[@]}" --state-dir "$WORK/p1" --config "$WORK/badpeer.conf" --check-config
expect_check "peer: API open to the network" 2 "^sova-peer: api-listen '0.0.0.0:7377' is not a loopback address" \
  "${P[@]}" --state-dir "$WORK/p1" --api-listen 0.0.0.0:7377 --check-config
ok "peer: missing root certificate, missing key, key of another identity, key mode 0644, no bootstrap, a file that does not parse, an API open to the network: each exit 2 naming it"

expect_check "peer: print-config, missing root" 2 "^sova-peer: option 'federation-ca': $WORK/nope.crt: No such file or directory$" \
  "$PEER_BIN" print-config --state-dir "$WORK/p1" --federation-ca "$WORK/nope.crt"
ok "peer: print-config exits 2 when the root certificate it names does not exist"

expect_check "peer: start with key mode 0644" 2 "key $WORK/p2/node.key has mode 0644" \
  timeout 20 "${P[@]}" --state-dir "$WORK/p2"
expect_check "peer: start with a mismatched key" 2 "does not match certificate" \
  timeout 20 "${P[@]}" --state-dir "$WORK/mixed"
expect_check "peer: start without bootstrap" 2 "no federation: bootstrap is not set" \
  timeout 20 "$PEER_BIN" run --state-dir "$WORK/p1" --federation-ca "$F/root.crt"
ok "peer: started with a key of mode 0644, a key of another identity or no bootstrap, it exits 2 naming the problem"
done_ok
