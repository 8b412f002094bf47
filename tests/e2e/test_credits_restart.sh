#!/usr/bin/env bash
# The credit ledger survives restarts (docs/CREDITS.md, "On disk"): four
# supernodes, R = 3, records made by receipts; what each supernode holds is
# fingerprinted (status ledger.digest: SHA-256 over its records) and must
# come back the same after
#  - a rolling restart of every supernode (SIGTERM, start, wait until it
#    is back in the federation, the next one);
#  - a restart of all of them at once;
#  - all of them SIGKILLed at once, more than a flush interval after the
#    last change (what was written survives a crash of the process);
# and each record still reads the same through any supernode.
# valgrind: yes
# tsan: yes
source "$(dirname "$0")/lib.sh"
make_federation
PROBE=$SOVA_SRC/tests/e2e/credit_probe.py
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for i in 2 3 4; do "$FED" issue "$WORK/fed" sn$i >/dev/null; done
declare -A PORT
for i in 1 2 3 4; do PORT[$i]=$(free_port); done
start_sn() { # I
  local i=$1 seeds="" j
  for j in 1 2 3 4; do [ $j = "$i" ] || seeds="$seeds${seeds:+,}127.0.0.1:${PORT[$j]}"; done
  start sn$i "$SN_BIN" --listen "127.0.0.1:${PORT[$i]}" --cert "$WORK/fed/sn$i.crt" \
    --key "$WORK/fed/sn$i.key" --federation-ca "$WORK/fed/root.crt" \
    --state-dir "$WORK/sn$i-state" --peers "$seeds" --ledger-replicas 3
}
sn_status() { "$SN_BIN" status --control "$WORK/sn$1-state/control.sock" --json; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d" + sys.argv[1]))' "$1"; }
alive_members() { sn_status "$1" | python3 -c 'import json,sys
print(sum(m["state"] == "alive" for m in json.load(sys.stdin)["members"]))'; }
all_linked() { for i in 1 2 3 4; do [ "$(alive_members $i)" = 3 ] || return 1; done; }
records() { sn_status "$1" | jget "['ledger']['records']"; }
digest() { sn_status "$1" | jget "['ledger']['digest']"; }
pending() { sn_status "$1" | jget "['ledger']['disk']['pending']"; }
for i in 1 2 3 4; do start_sn $i; done
wait_until 30 "the four supernodes to see each other alive" all_linked
ok "four supernodes, each sees the three others alive"

# Records: 4 sources, each handed receipts from 3 downloaders (of 1 MiB,
# 2 MiB, ... so no two records are alike): 16 peers, 16 records, 48 copies.
SRC_HEX=()
for s in 1 2 3 4; do
  SRC_HEX+=("$(python3 "$PROBE" key "$WORK/src$s")")
  for d in 1 2 3; do python3 "$PROBE" key "$WORK/dl$s$d" >/dev/null; done
done
for s in 1 2 3 4; do
  python3 "$PROBE" give "127.0.0.1:${PORT[$s]}" "$WORK/src$s" $((s * 1048576)) \
    "$WORK/dl${s}1" "$WORK/dl${s}2" "$WORK/dl${s}3" >/dev/null || fail "probe for src$s"
done
placed() { local n=0 i; for i in 1 2 3 4; do n=$((n + $(records $i))); done; [ $n = 48 ]; }
wait_until 30 "16 records on 3 supernodes each" placed
# What each holds settles (uptime reports of the probes' sessions, pushes):
# fingerprint_all reads every digest twice in a row (wait_until runs it in
# a subshell: the fingerprints live in files), BEFORE takes them.
declare -A BEFORE
settled() {
  local i d same=1
  for i in 1 2 3 4; do
    d=$(digest $i)
    [ "$d" = "$(cat "$WORK/digest.$i" 2>/dev/null)" ] || same=0
    echo "$d" >"$WORK/digest.$i"
  done
  [ $same = 1 ]
}
fingerprint_all() {
  rm -f "$WORK"/digest.*
  wait_until 20 "the ledger to settle" settled
  local i
  for i in 1 2 3 4; do BEFORE[$i]=$(cat "$WORK/digest.$i"); done
}
fingerprint_all
for i in 1 2 3 4; do [ "${BEFORE[$i]}" != None ] || fail "sn$i has no digest"; done
uploaded_of() { # SN SOURCE_INDEX: uploaded bytes of that source's record, read through SN
  local out
  out=$(python3 "$PROBE" read "127.0.0.1:${PORT[$1]}" "$WORK/reader" "${SRC_HEX[$2]}")
  echo "${out#credit }" | cut -d' ' -f1
}
python3 "$PROBE" key "$WORK/reader" >/dev/null
for s in 1 2 3 4; do
  [ "$(uploaded_of 1 $((s - 1)))" = $((3 * s * 1048576)) ] || fail "src$s's record through sn1"
done
fingerprint_all
ok "16 records on 3 of 4 supernodes each; what each holds is fingerprinted"

same_as_before() {
  local i
  for i in 1 2 3 4; do [ "$(digest $i)" = "${BEFORE[$i]}" ] || return 1; done
}
# The ledger file is there, in WAL mode.
for i in 1 2 3 4; do
  [ -s "$WORK/sn$i-state/ledger.sqlite3" ] || fail "sn$i has no ledger file"
done

# 1. A rolling restart: one at a time, each back in the federation before
# the next. Right after it starts, a supernode holds what it held (read
# from disk), before any other pushes anything to it.
for i in 1 2 3 4; do
  stop sn$i
  start_sn $i
  wait_for_n "$WORK/sn$i.log" "ledger: [0-9]+ records read from" 2 20
  loaded=$(grep -Eo "ledger: [0-9]+ records read from" "$WORK/sn$i.log" | tail -1 | grep -Eo "[0-9]+")
  [ "$loaded" -ge 1 ] || fail "sn$i read no record back"
  wait_until 30 "sn$i back among the four" all_linked
done
wait_until 30 "every supernode to hold what it held before the rolling restart" same_as_before
for s in 1 2 3 4; do
  for i in 1 2 3 4; do
    [ "$(uploaded_of $i $((s - 1)))" = $((3 * s * 1048576)) ] || fail "src$s's record through sn$i"
  done
done
ok "a rolling restart of every supernode: each holds the same records (same digest), every record reads the same through any of them"

# 2. All at once: nobody is left to push anything back; each reads its own.
# (The reads above may have added the reader's session: fingerprint again.)
fingerprint_all
for i in 1 2 3 4; do stop sn$i; done
for i in 1 2 3 4; do start_sn $i; done
wait_until 30 "the four supernodes to link again" all_linked
wait_until 30 "every supernode to hold what it held before the restart of all" same_as_before
for s in 1 2 3 4; do
  [ "$(uploaded_of $((s % 4 + 1)) $((s - 1)))" = $((3 * s * 1048576)) ] || fail "src$s after the restart of all"
done
ok "a restart of all four at once: no record lost, the same digests"

# 3. All SIGKILLed at once, after what changed was written (disk.pending 0
# and a flush interval of quiet): a crash keeps what was committed.
python3 "$PROBE" give "127.0.0.1:${PORT[2]}" "$WORK/src2" 7340032 "$WORK/dl23" >/dev/null
grown() { [ "$(uploaded_of 2 1)" = $((6 * 1048576 + 7340032)) ]; }
wait_until 20 "the new receipt in src2's record" grown
nothing_pending() { for i in 1 2 3 4; do [ "$(pending $i)" = 0 ] || return 1; done; }
# A clean flush window: the digests taken, then more than a flush interval
# (1 s) with nothing pending and nothing changed, so what is killed below
# is what was written (a change in the last second before a SIGKILL is
# lost by every holder alike: the bound of CREDITS.md, not this test's).
for try in 1 2 3 4 5 6 7 8 9 10; do
  fingerprint_all
  sleep 1.5 # time passing is the point: a whole flush interval
  nothing_pending && same_as_before && break
  [ $try -lt 10 ] || fail "no flush interval without a change in 10 tries: $(for i in 1 2 3 4; do echo "sn$i pending $(pending $i)"; done)"
done
for i in 1 2 3 4; do kill_daemon sn$i; done
for i in 1 2 3 4; do start_sn $i; done
wait_until 30 "the four supernodes to link again" all_linked
wait_until 30 "every supernode to hold what it held before the crash" same_as_before
for s in 1 2 3 4; do
  want=$((3 * s * 1048576))
  [ $s = 2 ] && want=$((6 * 1048576 + 7340032))
  [ "$(uploaded_of $(((s + 1) % 4 + 1)) $((s - 1)))" = $want ] || fail "src$s's record after the crash"
done
ok "all four SIGKILLed at once: the records written before come back (the same digests), each source's record reads the same, the last receipt too"

for i in 1 2 3 4; do stop sn$i; done
done_ok
