#!/usr/bin/env bash
# The credit ledger across supernodes (docs/CREDITS.md):
#  - forged receipts, a replayed one and one signed by a different key are
#    refused and counted, by a supernode and by a source peer, and only the
#    good receipt counts;
#  - four supernodes, R = 3: a supernode holding a replica is SIGKILLed;
#    the credit is still read in one hop, and the records are rebuilt on
#    the remaining three.
# valgrind: yes
source "$(dirname "$0")/lib.sh"
make_federation
PROBE=$SOVA_SRC/tests/e2e/credit_probe.py
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for i in 2 3 4; do "$FED" issue "$WORK/fed" sn$i >/dev/null; done
declare -A PORT
for i in 1 2 3 4; do PORT[$i]=$(free_port); done
for i in 1 2 3 4; do
  seeds=""
  for j in 1 2 3 4; do [ $j = $i ] || seeds="$seeds${seeds:+,}127.0.0.1:${PORT[$j]}"; done
  start sn$i "$SN_BIN" --listen "127.0.0.1:${PORT[$i]}" --cert "$WORK/fed/sn$i.crt" \
    --key "$WORK/fed/sn$i.key" --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/sn$i-state" \
    --peers "$seeds" --ledger-replicas 3
done
sn_status() { "$SN_BIN" status --control "$WORK/sn$1-state/control.sock" --json; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d" + sys.argv[1]))' "$1"; }
alive_members() { sn_status "$1" | python3 -c 'import json,sys
print(sum(m["state"] == "alive" for m in json.load(sys.stdin)["members"]))'; }
all_linked() { for i in 1 2 3 4; do [ "$(alive_members $i)" = 3 ] || return 1; done; }
until_ok 30 all_linked || fail "the four supernodes do not see each other alive"
ok "four supernodes, each sees the three others alive"

S_HEX=$(python3 "$PROBE" key "$WORK/src")
D_HEX=$(python3 "$PROBE" key "$WORK/dl")
python3 "$PROBE" key "$WORK/other" >/dev/null
python3 "$PROBE" key "$WORK/reader" >/dev/null
out=$(python3 "$PROBE" sn "127.0.0.1:${PORT[1]}" "$WORK/src" "$WORK/dl" "$WORK/other") ||
  fail "probe: $out"
# Read by the source itself: 1 MiB uploaded, 1 MiB of credit at its one
# downloader (its own view: what each downloader sees of it, summed).
[ "$out" = "credit 1048576 1048576 1" ] ||
  fail "after one good receipt of 1 MiB: want 'credit 1048576 1048576 1', got '$out'"
rejected() { # SN REASON: how many receipts it refused for that reason
  sn_status "$1" | jget "['ledger']['receipts']['rejected']['$2']"
}
[ "$(rejected 1 forged)" = 2 ] || fail "forged: $(sn_status 1 | jget "['ledger']")"
[ "$(rejected 1 wrong_key)" = 1 ] || fail "wrong_key: $(sn_status 1 | jget "['ledger']")"
replays=0
for i in 1 2 3 4; do replays=$((replays + $(rejected $i replayed))); done
# The replay is refused by each holder of the source's and of the
# downloader's record that counts it: at least one, at most six.
[ "$replays" -ge 1 ] && [ "$replays" -le 6 ] || fail "replayed: counted $replays times"
"$SN_BIN" status --control "$WORK/sn1-state/control.sock" |
  grep -Eq "^ledger .*refused: 2 forged, 1 wrong key" || fail "status: $("$SN_BIN" status --control "$WORK/sn1-state/control.sock")"
ok "a supernode refuses and counts forged receipts, a replay and a receipt signed by another key; only the good one counts (1 MiB)"
out=$(python3 "$PROBE" oversize "127.0.0.1:${PORT[1]}" "$WORK/src" "$WORK/dl") || fail "probe: $out"
until_ok 5 eval '[ "$(rejected 1 bad_size)" = 2 ]' || fail "bad_size: $(sn_status 1 | jget "['ledger']")"
[ "$out" = "credit 1048576 1048576 1" ] || fail "receipts refused for their size moved the credit: $out"
"$SN_BIN" status --control "$WORK/sn1-state/control.sock" | grep -Eq "^ledger .*, 2 bad size$" ||
  fail "status: $("$SN_BIN" status --control "$WORK/sn1-state/control.sock")"
ok "a supernode refuses and counts (bad_size) receipts, correctly signed, whose bytes exceed the size their file ID commits to (1 TiB of a 4 MiB file) or whose size the ID does not commit to; nothing is counted"

# Where the two records are: each on three of the four supernodes.
records() { sn_status "$1" | jget "['ledger']['records']"; }
placed() { local n=0; for i in 1 2 3 4; do n=$((n + $(records $i))); done; [ $n = 6 ]; }
until_ok 10 placed || fail "records: $(for i in 1 2 3 4; do records $i; done | tr '\n' ' ')"
victim=""
for i in 2 3 4; do [ "$(records $i)" = 2 ] && victim=$i && break; done
[ -n "$victim" ] || fail "no supernode but sn1 holds both records"
kill_daemon "sn$victim"
survivors=""
for i in 1 2 3 4; do [ $i = "$victim" ] || survivors="$survivors $i"; done
for i in $survivors; do
  out=$(python3 "$PROBE" read "127.0.0.1:${PORT[$i]}" "$WORK/reader" "$S_HEX")
  # The reader was never served by the source: its view of it is 0.
  [ "$out" = "credit 1048576 0 1" ] || fail "read through sn$i after sn$victim died: $out"
done
ok "sn$victim, holding both records, is SIGKILLed: every surviving supernode reads the record in one hop"
# Three survivors, R = 3: each holds every record, the two made above (and
# the reader's own, if a session report of its reads came in: a slow run).
rebuilt() {
  local first="" n i
  for i in $survivors; do
    n=$(records $i)
    [ "$n" -ge 2 ] && [ "${first:-$n}" = "$n" ] || return 1
    first=$n
  done
}
until_ok 20 rebuilt || fail "records after the kill: $(for i in $survivors; do echo "sn$i $(records $i)"; done)"
for i in $survivors; do
  [ "$(sn_status $i | jget "['ledger']['supernodes']")" = 3 ] || fail "sn$i's view"
done
sent=0
for i in $survivors; do sent=$((sent + $(sn_status $i | jget "['ledger']['sync']['records_sent']"))); done
[ "$sent" -ge 1 ] || fail "no record was pushed"
for i in $survivors; do
  out=$(python3 "$PROBE" read "127.0.0.1:${PORT[$i]}" "$WORK/reader" "$D_HEX")
  [ "${out% *}" = "credit 0 0" ] && [ "${out##* }" = 1 ] || fail "downloader's record through sn$i: $out"
done
ok "the replicas are rebuilt on the remaining ring: each survivor holds both records (R = 3 of 3)"

# A source peer checks the receipts its downloaders send it.
mkdir -p "$WORK/sam/share"
start sam "$PEER_BIN" run --state-dir "$WORK/sam/state" --bootstrap "127.0.0.1:${PORT[1]}" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/sam/share" --upnp no
wait_for "$WORK/sam.log" "attached to supernode"
SAM=$("$PEER_BIN" --state-dir "$WORK/sam/state" id)
SAM_HEX=$(python3 -c "import base64,sys; print(base64.b32decode(sys.argv[1].upper() + '====').hex())" "$SAM")
SAM_ADDR=$(grep -Eo "listening on 127\.0\.0\.1:[0-9]+" "$WORK/sam.log" | head -1 | sed 's/listening on //')
python3 "$PROBE" peer "$SAM_ADDR" "$SAM_HEX" "$WORK/dl" "$WORK/other" >/dev/null || fail "probe to sam"
st=$("$PEER_BIN" --state-dir "$WORK/sam/state" status)
grep -Eq "^receipts +0 signed; 4 received, .* refused: 1 forged, 1 wrong key, 1 replayed, 0 misdirected" <<<"$st" ||
  fail "sam's status: $st"
handed() { "$PEER_BIN" --state-dir "$WORK/sam/state" status | grep -Eq "4 received, 1 handed to the supernode"; }
until_ok 10 handed || fail "sam did not hand the good receipt on: $("$PEER_BIN" --state-dir "$WORK/sam/state" status)"
ok "a source peer refuses and counts a replayed, a forged and a wrong-key RECEIPT, and hands the good one to its supernode"

stop sam
for i in $survivors; do stop sn$i; done
done_ok
