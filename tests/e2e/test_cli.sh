#!/usr/bin/env bash
# The binaries' command lines (one parser, common/cli.c): --version, --help,
# help COMMAND, options in any position, unknown options and their exit
# status, config errors, --print-config, the bash completion, and a search
# that could not run.
source "$(dirname "$0")/lib.sh"

# run_cli VAR_RC VAR_OUT CMD...: run CMD (stdout and stderr together).
run_cli() {
  local -n rc_ref=$1 out_ref=$2
  shift 2
  set +e
  out_ref=$("$@" 2>&1)
  rc_ref=$?
  set -e
}

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
[ $rc -eq 2 ] && grep -q "option 'ways': 'sideways' is not direct, reversal, holepunch or relay" <<<"$out" ||
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
# ---- one parser: options anywhere, help everywhere, unknown options named ----
for cmd in status run search get downloads metrics hash id print-config check-config help completion; do
  run_cli rc out "$PEER_BIN" "$cmd" --help
  [ $rc -eq 0 ] && grep -q "^Usage: sova-peer $cmd" <<<"$out" && ! grep -q "needs a value" <<<"$out" ||
    fail "sova-peer $cmd --help: rc=$rc out=$out"
  run_cli rc out2 "$PEER_BIN" help "$cmd"
  [ $rc -eq 0 ] && [ "$out" = "$out2" ] || fail "sova-peer help $cmd is not $cmd --help: rc=$rc"
  run_cli rc out "$PEER_BIN" "$cmd" --version
  [ $rc -eq 0 ] && grep -Eq '^sova-peer [0-9]+\.' <<<"$out" || fail "sova-peer $cmd --version: $out"
done
for cmd in run status metrics print-config check-config help completion; do
  run_cli rc out "$SN_BIN" "$cmd" --help
  [ $rc -eq 0 ] && grep -q "^Usage: sova-supernode $cmd" <<<"$out" ||
    fail "sova-supernode $cmd --help: rc=$rc out=$out"
done
ok "every command of both binaries answers --help (= help CMD) and --version (regression: 'status --help' and 'run --help' said 'option --help needs a value')"

run_cli rc out "$PEER_BIN" --json status --state-dir "$WORK/nodaemon"
[ $rc -eq 1 ] && grep -q "cannot reach the daemon" <<<"$out" && ! grep -q "no command given" <<<"$out" ||
  fail "--json before the command: rc=$rc out=$out"
run_cli rc out2 "$PEER_BIN" status --json --state-dir "$WORK/nodaemon"
[ $rc -eq 1 ] && [ "$out" = "$out2" ] || fail "status --json differs from --json status: $out2"
"$PEER_BIN" id --state-dir "$WORK/p2" >/dev/null 2>&1 || fail "id in a new state dir"
run_cli rc out "$PEER_BIN" --state-dir="$WORK/p2" id
run_cli rc2 out2 "$PEER_BIN" id --state-dir "$WORK/p2"
[ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ "$out" = "$out2" ] || fail "--state-dir=D before/after: $out / $out2"
ok "options go before or after the command (regression: '--json status' said 'no command given')"

run_cli rc out "$PEER_BIN" status --jsn
[ $rc -eq 2 ] && grep -q "unknown option --jsn (did you mean --json?)" <<<"$out" &&
  grep -q "^Usage: sova-peer status" <<<"$out" && ! grep -q "needs a value" <<<"$out" ||
  fail "status --jsn: rc=$rc out=$out"
run_cli rc out "$PEER_BIN" --frobnicate
[ $rc -eq 2 ] && grep -q "unknown option --frobnicate" <<<"$out" && grep -q "^Usage: sova-peer" <<<"$out" &&
  ! grep -q "no command given" <<<"$out" || fail "--frobnicate: rc=$rc out=$out"
run_cli rc out "$PEER_BIN" hash --state-dir "$WORK/p" "$WORK/good.conf"
[ $rc -eq 2 ] && grep -q "hash takes no option --state-dir" <<<"$out" || fail "hash --state-dir: rc=$rc out=$out"
run_cli rc out "$SN_BIN" status --frobnicate
[ $rc -eq 2 ] && grep -q "unknown option --frobnicate" <<<"$out" && grep -q "^Usage: sova-supernode status" <<<"$out" ||
  fail "supernode status --frobnicate: rc=$rc out=$out"
ok "an unknown option is named with the usage, exit 2 (regressions: 'status --jsn' said 'needs a value', '--frobnicate' said 'no command given')"

run_cli rc out "$PEER_BIN" search
[ $rc -eq 2 ] && grep -q "search needs WORDS" <<<"$out" || fail "search without words: rc=$rc out=$out"
run_cli rc out "$PEER_BIN" get a b
[ $rc -eq 2 ] && grep -q "get takes ID, not 2 arguments" <<<"$out" || fail "get a b: rc=$rc out=$out"
run_cli rc out "$PEER_BIN" status extra
[ $rc -eq 2 ] && grep -q "status takes no argument" <<<"$out" || fail "status extra: rc=$rc out=$out"
run_cli rc out "$PEER_BIN" search x --max 0
[ $rc -eq 2 ] && grep -q "option --max needs a positive number" <<<"$out" || fail "--max 0: rc=$rc out=$out"
run_cli rc out "$PEER_BIN" search x --max
[ $rc -eq 2 ] && grep -q "option --max needs a value" <<<"$out" || fail "--max at the end: rc=$rc out=$out"
run_cli rc out "$PEER_BIN" status --json=yes
[ $rc -eq 2 ] && grep -q "option --json takes no value" <<<"$out" || fail "--json=yes: rc=$rc out=$out"
run_cli rc out "$PEER_BIN"
[ $rc -eq 2 ] && grep -q "^Usage: sova-peer COMMAND" <<<"$out" || fail "no arguments: rc=$rc"
run_cli rc out "$PEER_BIN" help frobnicate
[ $rc -eq 2 ] && grep -q "unknown command 'frobnicate'" <<<"$out" || fail "help frobnicate: rc=$rc out=$out"
ok "wrong numbers of arguments, bad and missing values: named, exit 2"

# ---- bash completion, from the same table -------------------------------------
for bin in "$PEER_BIN" "$SN_BIN"; do
  name=$(basename "$bin")
  "$bin" completion bash >"$WORK/$name.bash" || fail "$name completion bash"
  bash -n "$WORK/$name.bash" || fail "$name's completion script is not valid bash"
done
# complete WORDS...: what the completion offers for the last word.
complete_words() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _sova_peer; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$WORK/sova-peer.bash" "$@"
}
offered=$(complete_words sova-peer "")
for cmd in run status search get downloads metrics hash id print-config help completion; do
  grep -qx "$cmd" <<<"$offered" || fail "completion does not offer the command $cmd: $offered"
done
offered=$(complete_words sova-peer --state-dir /tmp status --j)
[ "$offered" = --json ] || fail "completion of 'status --j' after a valued option: $offered"
offered=$(complete_words sova-peer run --log-level d)
[ "$offered" = debug ] || fail "completion of --log-level d: $offered"
offered=$(complete_words sova-peer run --upload-sl)
[ "$offered" = --upload-slots ] || fail "completion of run --upload-sl: $offered"
offered=$(complete_words sova-peer help se)
[ "$offered" = search ] || fail "completion of help se: $offered"
bash -c 'source "$1"; complete -p sova-supernode' _ "$WORK/sova-supernode.bash" >/dev/null ||
  fail "the supernode's script does not register a completion"
ok "completion bash: a valid script per binary offering the commands, their options and option values"

# ---- the man pages are in step with the command tables --------------------------------
man_text() { LC_ALL=C groff -man -Tascii "$1" 2>/dev/null | col -bx; }
for pair in "$PEER_BIN:sova-peer.1" "$SN_BIN:sova-supernode.8"; do
  bin=${pair%%:*}
  text=$(man_text "$SOVA_SRC/deploy/man/${pair#*:}")
  # a command's name: its first word, and its second if lower case ("share add")
  cmds=$("$bin" help | sed -n '/^Commands:/,/^$/p' | grep '^  ' | cut -c3-26 |
         awk '{ n = $1; if ($2 ~ /^[a-z][a-z-]*$/) n = n " " $2; print n }')
  [ -n "$cmds" ] || fail "$(basename "$bin") help lists no commands"
  while read -r cmd; do
    grep -Eq "^       $cmd( |$)" <<<"$text" || fail "${pair#*:} has no entry for the command $cmd"
    # shellcheck disable=SC2086 # a command of a group is two words
    for flag in $("$bin" help $cmd | sed -n '/^Options:/,/^$/p' | grep -Eo '^  --[a-z-]+'); do
      grep -q -- "$flag" <<<"$text" || fail "${pair#*:} does not name $flag (of $cmd)"
    done
  done <<<"$cmds"
done
ok "the man pages have an entry for every command of help, and name every command's flags"

# ---- search that never ran is an error, not 'no matches' ------------------------
make_federation
start lonely "$PEER_BIN" run --state-dir "$WORK/lonely" --bootstrap 127.0.0.1:9 \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --upnp no
wait_for "$WORK/lonely.log" "control socket listening"
run_cli rc out "$PEER_BIN" search anything --state-dir "$WORK/lonely"
[ $rc -eq 1 ] && grep -q "not attached to a supernode" <<<"$out" && ! grep -q "no matches" <<<"$out" ||
  fail "search while not attached: rc=$rc out=$out"
run_cli rc out "$PEER_BIN" search anything --json --state-dir "$WORK/lonely"
[ $rc -eq 1 ] && grep -q "not attached" <<<"$out" || fail "search --json while not attached: rc=$rc out=$out"
stop lonely
ok "a search that could not run says why and exits 1 (it used to print 'no matches')"

# docs/CONFIG.md documents every option each binary accepts.
for opt in $( { "$SN_BIN" --help; "$PEER_BIN" --help; } | grep -Eo '^  --[a-z-]+' | sed 's/^  --//' |
              grep -vx config | grep -vx print-config | grep -vx check-config | sort -u); do
  grep -q "| \`$opt\` |" "$SOVA_SRC/docs/CONFIG.md" || fail "docs/CONFIG.md does not document --$opt"
done
ok "docs/CONFIG.md documents every option"

# The example config is valid for both daemons: with the files it names
# (the operator's to make) on the command line, print-config and
# check-config pass; as it is, print-config still prints it but exits 2
# naming the certificate that does not exist here.
ex=$SOVA_SRC/deploy/examples/sova.conf
"$SN_BIN" --config "$ex" --cert "$WORK/fed/sn1.crt" --key "$WORK/fed/sn1.key" \
  --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/ex-sn" --print-config >/dev/null ||
  fail "deploy/examples/sova.conf rejected by sova-supernode"
run_cli rc out "$SN_BIN" --config "$ex" --cert "$WORK/fed/sn1.crt" --key "$WORK/fed/sn1.key" \
  --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/ex-sn" --check-config
[ $rc -eq 0 ] && grep -q "configuration OK" <<<"$out" || fail "check-config of the example: rc=$rc $out"
"$PEER_BIN" print-config --config "$ex" --federation-ca "$WORK/fed/root.crt" >/dev/null ||
  fail "deploy/examples/sova.conf rejected by sova-peer"
set +e
printed=$("$SN_BIN" --config "$ex" --print-config 2>"$WORK/print.err"); rc=$?
set -e
[ $rc -eq 2 ] && grep -q '^cert = /etc/sova/sn1.crt$' <<<"$printed" &&
  grep -q "option 'cert': /etc/sova/sn1.crt: No such file or directory" "$WORK/print.err" ||
  fail "print-config with a certificate that does not exist: rc=$rc $(cat "$WORK/print.err")"
ok "deploy/examples/sova.conf is valid for both daemons; print-config exits 2 when its certificate does not exist"
done_ok
