#!/usr/bin/env bash
# The binaries' command lines: --version, --help, config errors, --print-config.
source "$(dirname "$0")/lib.sh"

"$SN_BIN" --version | grep -Eq '^sova-supernode [0-9]+\.[0-9]+\.[0-9]+ ' || fail "supernode --version"
ok "sova-supernode --version prints a version"
"$PEER_BIN" --version | grep -Eq '^sova-peer [0-9]+\.[0-9]+\.[0-9]+ ' || fail "peer --version"
ok "sova-peer --version prints a version"

sn_help=$("$SN_BIN" --help) # whole, so grep -q cannot cut the writer short (SIGPIPE)
for opt in --listen --cert --key --federation-ca --state-dir --control --log-level --max-frame; do
  grep -q -- "$opt" <<<"$sn_help" || fail "supernode --help does not list $opt"
done
ok "sova-supernode --help lists its options"
peer_help=$("$PEER_BIN" --help)
for opt in --state-dir --bootstrap --federation-ca --listen --share --downloads --log-level; do
  grep -q -- "$opt" <<<"$peer_help" || fail "peer --help does not list $opt"
done
ok "sova-peer --help lists its options"

# A missing required option, an unknown option, a bad value: exit 2 and say what.
set +e
out=$("$SN_BIN" --listen 127.0.0.1:1 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && grep -q -- "--cert is required" <<<"$out" || fail "missing --cert: rc=$rc out=$out"
ok "a missing required option is named"
set +e
out=$("$SN_BIN" --bogus 1 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && grep -q "unknown option --bogus" <<<"$out" || fail "unknown option: rc=$rc out=$out"
ok "an unknown option is an error"
set +e
out=$("$PEER_BIN" --state-dir "$WORK/ways" run --ways direct,sideways 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && grep -q "option 'ways': 'sideways' is not direct, reversal or relay" <<<"$out" ||
  fail "bad ways: rc=$rc out=$out"
ok "a way to a source that does not exist is named"

printf 'listen = 127.0.0.1:7070\n# comment\nmax-frame = lots\n' >"$WORK/bad.conf"
set +e
out=$("$SN_BIN" --config "$WORK/bad.conf" --print-config 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && grep -q "$WORK/bad.conf:3: option 'max-frame': 'lots'" <<<"$out" ||
  fail "bad config value: rc=$rc out=$out"
ok "a bad value in the config file names file, line and option"

# Command line wins over the file; --print-config output is itself a valid config.
printf '[supernode]\nlisten = 127.0.0.1:7000\nlog-level = warn\n[peer]\nlisten = 127.0.0.1:9\n' \
  >"$WORK/good.conf"
"$SN_BIN" --config "$WORK/good.conf" --log-level debug --print-config >"$WORK/printed.conf"
grep -q '^listen = 127.0.0.1:7000$' "$WORK/printed.conf" || fail "file value not applied"
grep -q '^log-level = debug$' "$WORK/printed.conf" || fail "command line did not win"
"$SN_BIN" --config "$WORK/printed.conf" --print-config | cmp -s - "$WORK/printed.conf" ||
  fail "print-config output does not round-trip"
ok "command line wins over the file, and --print-config round-trips"

"$PEER_BIN" print-config --config "$WORK/good.conf" --state-dir "$WORK/p" |
  grep -q '^listen = 127.0.0.1:9$' || fail "peer does not read its [peer] section"
ok "one file serves both daemons through [supernode] and [peer] sections"

set +e
out=$("$PEER_BIN" --state-dir "$WORK/p" frobnicate 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && grep -q "unknown command 'frobnicate'" <<<"$out" || fail "unknown command: $out"
ok "an unknown peer command is an error"

id1=$("$PEER_BIN" --state-dir "$WORK/p" id)
id2=$("$PEER_BIN" id --state-dir "$WORK/p")
[[ $id1 =~ ^[a-z2-7]{52}$ ]] || fail "peer id is not 52 base32 characters: $id1"
[ "$id1" = "$id2" ] || fail "peer id changed between runs: $id1 vs $id2"
[ "$(stat -c %a "$WORK/p/node.key")" = 600 ] || fail "node.key mode is not 0600"
ok "sova-peer id creates a stable identity with a 0600 key"

chmod 644 "$WORK/p/node.key"
set +e
out=$("$PEER_BIN" --state-dir "$WORK/p" id 2>&1); rc=$?
set -e
[ $rc -ne 0 ] && grep -q "node.key" <<<"$out" || fail "world-readable key accepted: $out"
ok "a world-readable key is refused"
# docs/CONFIG.md documents every option each binary accepts.
for opt in $( { "$SN_BIN" --help; "$PEER_BIN" --help; } | grep -Eo '^  --[a-z-]+' | sed 's/^  --//' |
              grep -vx config | grep -vx print-config | sort -u); do
  grep -q "| \`$opt\` |" "$SOVA_SRC/docs/CONFIG.md" || fail "docs/CONFIG.md does not document --$opt"
done
ok "docs/CONFIG.md documents every option"

# The example config is valid for both daemons.
"$SN_BIN" --config "$SOVA_SRC/deploy/examples/sova.conf" --print-config >/dev/null ||
  fail "deploy/examples/sova.conf rejected by sova-supernode"
"$PEER_BIN" print-config --config "$SOVA_SRC/deploy/examples/sova.conf" >/dev/null ||
  fail "deploy/examples/sova.conf rejected by sova-peer"
ok "deploy/examples/sova.conf is valid for both daemons"
done_ok
