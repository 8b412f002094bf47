#!/usr/bin/env bash
# A first run with no flags, as a new user would do it, with HOME and the
# XDG folders in a scratch directory: `sova-peer init` writes a commented
# config (and will not overwrite it), `sova-federation bundle` signs the
# federation's root and supernodes, `sova-peer join` refuses a tampered, a
# forged and a foreign bundle without changing anything and imports the
# good one, then `sova-peer run` with no option reads the config, keeps its
# state in $XDG_STATE_HOME/sova, attaches to a real supernode on loopback,
# and `search` and `get` (no options either) find a file of another peer and
# save it in the XDG download folder.
# valgrind: yes
source "$(dirname "$0")/lib.sh"

export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/xdg/config XDG_STATE_HOME=$WORK/xdg/state
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
# The user's download folder, as xdg-user-dirs-update writes it.
echo 'XDG_DOWNLOAD_DIR="$HOME/Incoming"' >"$XDG_CONFIG_HOME/user-dirs.dirs"
CONF=$XDG_CONFIG_HOME/sova/peer.conf
STATE=$XDG_STATE_HOME/sova

run_cli() { # VAR_RC VAR_OUT CMD...: run CMD, stdout and stderr together
  local -n rc_ref=$1 out_ref=$2
  shift 2
  set +e
  out_ref=$("$@" 2>&1)
  rc_ref=$?
  set -e
}

# ---- nothing yet ----------------------------------------------------------------------
run_cli rc out "$PEER_BIN" run
[ $rc -eq 2 ] && grep -q "no federation: bootstrap and federation-ca are not set; import your federation's bundle with .sova-peer join BUNDLE." <<<"$out" ||
  fail "run before init and join: rc=$rc $out"
ok "run with nothing configured says what is missing and how to get it (join), exit 2"

# ---- init ---------------------------------------------------------------------------
"$PEER_BIN" init --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --rescan-interval-s 1 >"$WORK/init.out" ||
  fail "init: $(cat "$WORK/init.out")"
[ -f "$CONF" ] && grep -q "^wrote $CONF$" "$WORK/init.out" || fail "init did not write $CONF"
grep -q '^listen = 127.0.0.1:0$' "$CONF" && grep -q '^# bootstrap =' "$CONF" &&
  grep -q '^# upload-slots = 4$' "$CONF" || fail "init's config: $(cat "$CONF")"
awk 'length > 196 { exit 1 }' "$CONF" || fail "init wrote a line longer than a config line"
"$PEER_BIN" print-config --config "$CONF" >/dev/null || fail "the config init wrote does not load"
cp "$CONF" "$WORK/conf.before"
run_cli rc out "$PEER_BIN" init
[ $rc -eq 1 ] && grep -q "exists; not overwriting it (--force replaces it)" <<<"$out" || fail "init again: rc=$rc $out"
cmp -s "$CONF" "$WORK/conf.before" || fail "init without --force changed the config"
"$PEER_BIN" init --force --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --rescan-interval-s 1 >/dev/null || fail "init --force"
run_cli rc out "$PEER_BIN" init --listen nowhere
[ $rc -eq 2 ] && grep -q "option 'listen'" <<<"$out" || fail "init with a bad value: rc=$rc $out"
ok "init writes a commented config at \$XDG_CONFIG_HOME/sova/peer.conf with the options given, refuses to overwrite it without --force"

# ---- the federation and its bundle ------------------------------------------------------
make_federation
start_supernode sn
"$FED" bundle "$WORK/fed" "127.0.0.1:$PORT_sn" >"$WORK/bundle.out" || fail "bundle: $(cat "$WORK/bundle.out")"
BUNDLE=$WORK/fed/sova.bundle
ROOT_ID=$("$FED" id "$WORK/fed/root.crt")
grep -q '^sova-bundle 1$' "$BUNDLE" && grep -q "^bootstrap 127.0.0.1:$PORT_sn$" "$BUNDLE" &&
  grep -q '^signature ' "$BUNDLE" || fail "the bundle: $(cat "$BUNDLE")"
run_cli rc out "$FED" bundle "$WORK/fed" "127.0.0.1:$PORT_sn"
[ $rc -ne 0 ] && grep -q "refusing to overwrite" <<<"$out" || fail "bundle over an existing one: $out"
ok "sova-federation bundle signs the root certificate and the bootstrap supernodes"

# Bad bundles: a specific error, non-zero, nothing imported.
sed "s/^bootstrap 127.0.0.1:$PORT_sn$/bootstrap 127.0.0.1:9/" "$BUNDLE" >"$WORK/tampered.bundle"
"$FED" init "$WORK/other" >/dev/null
"$FED" bundle "$WORK/other" "127.0.0.1:$PORT_sn" >/dev/null
# forged: the real root certificate, signed with another federation's key
sed '/^signature /d' "$BUNDLE" >"$WORK/forged.body"
openssl pkeyutl -sign -inkey "$WORK/other/root.key" -rawin -in "$WORK/forged.body" -out "$WORK/forged.sig"
{ cat "$WORK/forged.body"; printf 'signature %s\n' "$(openssl base64 -A -in "$WORK/forged.sig")"; } \
  >"$WORK/forged.bundle"
echo "not a bundle" >"$WORK/junk.bundle"
for bad in tampered:"bad signature" forged:"bad signature" junk:"not a Sova federation bundle"; do
  run_cli rc out "$PEER_BIN" join "$WORK/${bad%%:*}.bundle"
  [ $rc -eq 1 ] && grep -q "${bad#*:}" <<<"$out" || fail "join of the ${bad%%:*} bundle: rc=$rc $out"
done
run_cli rc out "$PEER_BIN" join "$WORK/other/sova.bundle" --root-id "$ROOT_ID"
[ $rc -eq 1 ] && grep -q "wrong root: the bundle's federation root is .*, not $ROOT_ID" <<<"$out" ||
  fail "join of another root with --root-id: rc=$rc $out"
[ ! -e "$STATE/federation" ] || fail "a bad bundle changed the state: $(ls -R "$STATE")"
ok "join refuses a tampered, a forged and a junk bundle (bad signature) and a root not the --root-id (wrong root), exit 1, nothing changed"

"$PEER_BIN" join "$BUNDLE" --root-id "$ROOT_ID" >"$WORK/join.out" || fail "join: $(cat "$WORK/join.out")"
grep -q "joined the federation of root $ROOT_ID" "$WORK/join.out" || fail "join said: $(cat "$WORK/join.out")"
cmp -s "$STATE/federation/root.crt" "$WORK/fed/root.crt" || fail "the imported root is not root.crt"
cp "$STATE/federation/joined.conf" "$WORK/joined.before"
run_cli rc out "$PEER_BIN" join "$WORK/other/sova.bundle"
[ $rc -eq 1 ] && grep -q "wrong root: this peer uses the federation root $ROOT_ID" <<<"$out" ||
  fail "join of another federation: rc=$rc $out"
cmp -s "$STATE/federation/joined.conf" "$WORK/joined.before" &&
  cmp -s "$STATE/federation/root.crt" "$WORK/fed/root.crt" || fail "a refused join changed the state"
printed=$("$PEER_BIN" print-config)
grep -q "^bootstrap = 127.0.0.1:$PORT_sn$" <<<"$printed" &&
  grep -q "^federation-ca = $STATE/federation/root.crt$" <<<"$printed" &&
  grep -q "^downloads = $HOME/Incoming$" <<<"$printed" && grep -q "^state-dir = $STATE$" <<<"$printed" ||
  fail "print-config after join: $printed"
ok "join imports the good bundle into \$XDG_STATE_HOME/sova; another federation's is refused (wrong root) without a change"

# ---- run with no flags -----------------------------------------------------------------
mkdir -p "$WORK/bob/share"
printf 'first run works\n' >"$WORK/bob/share/firstrun-notes.txt"
start bob "$PEER_BIN" run --config /dev/null --state-dir "$WORK/bob/state" --bootstrap "127.0.0.1:$PORT_sn" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/bob/share" \
  --downloads "$WORK/bob/dl"
start alice "$PEER_BIN" run
wait_for "$WORK/alice.log" "attached to supernode"
wait_for "$WORK/bob.log" "published 1 shared files"
[ -S "$STATE/control.sock" ] || fail "alice's control socket is not in $STATE"
"$PEER_BIN" status | grep -q "^supernode .* at 127.0.0.1:$PORT_sn" || fail "status: $("$PEER_BIN" status 2>&1)"
ok "sova-peer run with no option attaches to the joined federation's supernode; state in \$XDG_STATE_HOME/sova"

ID=$(file_id "$WORK/bob/share/firstrun-notes.txt")
found() { "$PEER_BIN" search firstrun notes | grep "^$ID .* firstrun-notes.txt"; }
wait_until 10 "a search with no option to find bob's file" found
"$PEER_BIN" get "$ID" >"$WORK/get.out" 2>&1 || fail "get: $(cat "$WORK/get.out")"
cmp -s "$HOME/Incoming/firstrun-notes.txt" "$WORK/bob/share/firstrun-notes.txt" ||
  fail "the download is not in the XDG download folder: $(ls -la "$HOME/Incoming" 2>&1)"
ok "search and get with no option: found on another peer, saved in the XDG download folder"
stop alice
stop bob
done_ok
