#!/usr/bin/env bash
# Attacks on credit, reports and ranking (issue 13, findings 2, 3 and 11),
# by an attacker that speaks the protocol correctly (tests/attack/credit.py)
# against a real supernode and real peers. Each case asserts that the attack
# fails and that a well-behaved pair (gsrc shares, gdl downloads) still
# searches and downloads a byte-identical file.
#  1. A farm of 100 identities signs 1 TiB receipts for each other and for a
#     beneficiary: its credit as seen by a peer the farm never served stays
#     0, and so does its upload-slot priority at a real source (an honest
#     peer that uploaded to that source before gets the slot first); an
#     honest uploader's credit rises as before.
#  2. A receipt of 2^63 bytes, and one of 1 TiB of a 4 MiB file, are
#     refused and counted (bad_size); four of 2^62 (summed past 2^64)
#     saturate, nothing wraps.
#  3. 8 fresh identities report an honest source (after looking it up, and
#     without): not counted, the source keeps its place.
#  4. Three downloaders with credit at a source that serves bad data report
#     it: it drops out of hits; the honest sources stay.
#  5. Two identities without data claim a real file's ID with a size of
#     4 TiB: still one hit, the true size, the verified source first.
source "$SOVA_SRC/tests/e2e/lib.sh"
ATK=$SOVA_SRC/tests/attack/credit.py
IDS=$WORK/ids
CASES=0
CASE=0
case_ok() { CASES=$((CASES + 1)); ok "$@"; }
begin_case() { CASE=$1; }
# Proving the checks can fail: SOVA_ATTACK_SKIP="1 2" (case numbers) makes
# the checks of those cases print what failed and go on, so the next case
# can be run against binaries that fail the earlier ones (the unfixed code).
skipped() { [[ " ${SOVA_ATTACK_SKIP:-} " == *" $CASE "* ]]; }
check() { # MESSAGE: a check of the current case failed
  if skipped; then echo "# case $CASE (checks skipped) would fail: $*"; return 0; fi
  fail "$@"
}
check_within() { # SECONDS WHAT CMD...: wait_until, as a check of the current case
  if skipped; then until_ok "$1" "${@:3}" || echo "# case $CASE (checks skipped) waited ${1}s for $2"; return 0; fi
  wait_until "$@"
}
make_federation
start_supernode sn --keepalive-s 1 --peer-timeout-s 6
SN=127.0.0.1:$PORT_sn

start_peer() { # NAME [ARGS...]
  local name=$1; shift
  mkdir -p "$WORK/$name/share" "$WORK/$name/dl"
  chmod 700 "$WORK/$name"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "$SN" \
    --federation-ca "$WORK/fed/root.crt" --share "$WORK/$name/share" \
    --downloads "$WORK/$name/dl" --listen 127.0.0.1:0 --upnp no "$@"
  wait_for "$WORK/$name.log" "attached to supernode" 20
}
peer() { local name=$1; shift; "$PEER_BIN" --state-dir "$WORK/$name/state" "$@"; }
hex_of() { # NAME: a peer's node ID in hex
  python3 -c "import base64,sys; print(base64.b32decode(sys.argv[1].upper() + '====').hex())" \
    "$(peer "$1" id)"
}
addr_of() { grep -Eo "listening on 127\.0\.0\.1:[0-9]+" "$WORK/$1.log" | head -1 | sed 's/listening on //'; }
record_of() { # NAME FIELD: a number of the peer's own ledger record
  peer "$1" status --json | python3 -c "import json,sys; c=json.load(sys.stdin)['credit']
print(c['$2'] if c['known'] else -1)"
}
hash_of() { # NAME WORDS...: the hash of the first hit of the peer's search
  local name=$1; shift
  peer "$name" search "$@" | awk 'NR == 1 {print $1}'
}
found_by() { local name=$1; shift; peer "$name" search "$@" | grep -q .; }
# get_file NAME WORDS FILE: search until found, download, compare with FILE.
get_file() {
  local name=$1 words=$2 file=$3 h
  wait_until 15 "$name to find $words" found_by "$name" $words
  h=$(hash_of "$name" $words)
  peer "$name" get "$h" >"$WORK/$name-get.out" 2>&1 || fail "$name: get $words: $(cat "$WORK/$name-get.out")"
  cmp "$file" "$WORK/$name/dl/$(basename "$file")" || fail "$name: $(basename "$file") differs"
}
# The well-behaved pair: gdl finds and downloads gsrc's next file.
PAIR_NAMES=(alpha bravo charlie delta echo foxtrot golf)
PAIR=0
pair_ok() {
  local n=${PAIR_NAMES[$PAIR]}
  PAIR=$((PAIR + 1))
  get_file gdl "pair $n" "$WORK/gsrc/share/pair_$n.bin"
}
sn_status() { "$SN_BIN" status --control "$WORK/sn-state/control.sock" --json; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d" + sys.argv[1]))' "$1"; }
view() { python3 "$ATK" view "$SN" "$IDS" "$@"; } # ME ID_HEX...: lines "view <id> ... credit <c> ..."
credit_in() { # VIEW_OUTPUT ID_HEX: the credit on its line
  grep "^view ${2:0:16} " <<<"$1" | sed -E 's/.* credit ([0-9]+) .*/\1/'
}
field_in() { # VIEW_OUTPUT ID_HEX FIELD
  grep "^view ${2:0:16} " <<<"$1" | sed -E "s/.* $3 ([0-9]+).*/\1/"
}

mkdir -p "$IDS"
chmod 700 "$IDS"
# Files are in place before a peer starts: its first scan publishes them.
mkdir -p "$WORK/gsrc/share" "$WORK/h/share" "$WORK/s/share" "$WORK/h2/share"
for n in alpha bravo charlie delta echo foxtrot; do
  head -c $((1536 * 1024)) /dev/urandom >"$WORK/gsrc/share/pair_$n.bin"
done
head -c $((3 * 1048576)) /dev/urandom >"$WORK/h/share/honest_upload.bin"
head -c $((8 * 1048576)) /dev/urandom >"$WORK/s/share/slot_big_file.bin"
cp "$WORK/h/share/honest_upload.bin" "$WORK/h2/share/honest_upload.bin"
start_peer gsrc
start_peer gdl
wait_for "$WORK/gsrc.log" "published 6 shared files"
pair_ok
ok "the well-behaved pair: gdl finds and downloads gsrc's file, byte-identical"

# ---- 1. a farm of 100 identities ------------------------------------------------------
begin_case 1
# h (honest) shares a file that s downloads first: h has credit at s. s
# serves one upload slot at 2 MB/s.
start_peer h
wait_for "$WORK/h.log" "published 1 shared files"
start_peer s --upload-slots 1 --upload-limit-kbps 2000
wait_for "$WORK/s.log" "published 1 shared files"
get_file s "honest upload" "$WORK/h/share/honest_upload.bin"
s_downloaded() { [ "$(record_of s downloaded)" -ge 3145728 ]; }
wait_until 15 "s's download from h in the ledger" s_downloaded
# The beneficiary's identity is the farm's: made here, handed in for
# before its daemon starts (its key then becomes the peer's node.key).
BENEF_HEX=$(python3 "$ATK" id "$IDS" benef)
out=$(python3 "$ATK" farm "$SN" "$IDS" 100 benef) || fail "farm: $out"
[ "$out" = "farm 100 handed 206 receipts" ] || fail "farm: $out"
mkdir -p "$WORK/b/state"
chmod 700 "$WORK/b" "$WORK/b/state"
cp "$IDS/benef.key" "$WORK/b/state/node.key"
chmod 600 "$WORK/b/state/node.key"
start_peer b
[ "$(hex_of b)" = "$BENEF_HEX" ] || fail "b is not the farm's beneficiary"
FARM0=$(python3 "$ATK" id "$IDS" farm0)
FARM1=$(python3 "$ATK" id "$IDS" farm1)
S_HEX=$(hex_of s)
H_HEX=$(hex_of h)
# ev: an honest evaluator the farm never served; it downloaded 2 MiB from s.
python3 "$ATK" served "$(addr_of s)" "$S_HEX" "$IDS" ev 2097152 >/dev/null
ev_knows_s() { [ "$(credit_in "$(view ev "$S_HEX")" "$S_HEX")" = 2097152 ]; }
check_within 15 "s's upload to ev in the ledger" ev_knows_s
seen=$(view ev "$BENEF_HEX" "$FARM0" "$FARM1" "$S_HEX" "$H_HEX")
[ "$(credit_in "$seen" "$BENEF_HEX")" = 0 ] || check "the beneficiary as seen by ev: $seen"
[ "$(credit_in "$seen" "$FARM0")" = 0 ] || check "farm0 as seen by ev: $seen"
[ "$(credit_in "$seen" "$FARM1")" = 0 ] || check "farm1 as seen by ev: $seen"
[ "$(credit_in "$seen" "$S_HEX")" = 2097152 ] || check "s as seen by ev (it served ev 2 MiB): $seen"
# h served s, s served ev: h's credit at ev is min(3 MiB, 2 MiB), through s.
[ "$(credit_in "$seen" "$H_HEX")" = 2097152 ] || check "h as seen by ev, through s: $seen"
# The receipts were counted (the farm's own view of the beneficiary is the cap).
farm_view=$(view farm2 "$BENEF_HEX")
[ "$(credit_in "$farm_view" "$BENEF_HEX")" = $((1024 * 1048576)) ] || check "the farm's own view: $farm_view"
# Priority at s: b asks first, h second; h (credit at s) takes the slot at
# b's next chunk and finishes first; b finishes too.
( get_file b "slot big file" "$WORK/s/share/slot_big_file.bin" && echo b >>"$WORK/order" ) &
B_GET=$!
wait_for "$WORK/b.log" "connected to source" 20
( get_file h "slot big file" "$WORK/s/share/slot_big_file.bin" && echo h >>"$WORK/order" ) &
H_GET=$!
wait "$H_GET" || fail "h's download failed"
wait "$B_GET" || fail "b's download failed"
[ "$(head -1 "$WORK/order")" = h ] || check "finished first: $(head -1 "$WORK/order"), want h (b's farm credit must not count at s)"
pair_ok
case_ok "a farm of 100 identities signs 1 TiB receipts for each other and for b: b's credit as seen by ev (never served by the farm) is 0, and so is every member's; at s, b (asking first) yields to h, which uploaded to s; an honest uploader's credit counts at ev (s directly, h through s); the pair still downloads"

# ---- 2. receipts of 2^63, and sums past 2^64 -------------------------------------------------
begin_case 2
bad_size=$(sn_status | jget "['ledger']['receipts']['rejected']['bad_size']" 2>/dev/null || echo 0)
[ "$bad_size" = 2 ] || check "the receipts of 2^63 bytes and of 1 TiB of a 4 MiB file were not both refused: $(sn_status | jget "['ledger']")"
up=$(field_in "$seen" "$BENEF_HEX" uploaded)
# 100 TiB + 4 x 2^62 > 2^64: the sum stops at 2^64 - 1, never wraps to a small number.
[ "$up" = 18446744073709551615 ] || check "b's uploaded: $up, want 2^64 - 1"
[ "$(credit_in "$seen" "$BENEF_HEX")" = 0 ] || check "b's credit after the big receipts"
pair_ok
case_ok "a receipt of 2^63 bytes and one of 1 TiB of a 4 MiB file are refused and counted (bad_size $bad_size); four of 2^62 saturate b's uploaded at 2^64 - 1 (no wrap), still 0 credit at ev; the pair still downloads"

# ---- 3. fresh identities report an honest source -------------------------------------------------
begin_case 3
# A second honest source of h's file, published after h: h is first in hits.
start_peer h2
wait_for "$WORK/h2.log" "published 1 shared files"
F_HASH=$(hash_of gdl honest upload)
H2_HEX=$(hex_of h2)
two_sources() { python3 "$ATK" hits "$SN" "$IDS" watcher "$F_HASH" | grep -q "^hit .* ${H_HEX:0:16} ${H2_HEX:0:16}$"; }
wait_until 15 "h's file with h first, then h2" two_sources
for k in 1 2 3 4 5 6 7 8; do
  python3 "$ATK" report "$SN" "$IDS" fresh$k "$F_HASH" "$H_HEX" --search >/dev/null
  python3 "$ATK" report "$SN" "$IDS" stranger$k "$F_HASH" "$H_HEX" >/dev/null
done
reps() { sn_status | jget "['ledger']['reports']['$1']" 2>/dev/null || echo -1; }
all_weighed() { [ $(($(reps weightless) + $(reps unintroduced))) -ge 16 ]; }
check_within 10 "the 16 reports weighed" all_weighed
[ "$(reps weightless)" = 8 ] || check "reports without credit: $(sn_status | jget "['ledger']['reports']")"
[ "$(reps unintroduced)" = 8 ] || check "reports from strangers: $(sn_status | jget "['ledger']['reports']")"
[ "$(reps weighed)" = 0 ] || check "a fresh identity's report counted"
two_sources || check "h lost its place: $(python3 "$ATK" hits "$SN" "$IDS" watcher "$F_HASH")"
get_file gdl "honest upload" "$WORK/h/share/honest_upload.bin"
pair_ok
case_ok "8 fresh identities that looked h up and 8 that did not report it for bad data: none counted (8 without credit at h, 8 never introduced), h keeps its place before h2; gdl downloads h's file and the pair's"

# ---- 4. downloaders that count drop a source that serves bad data --------------------------------
begin_case 4
# p claims h's file and serves nothing good; r1..r3 served p before (p's
# own receipts say so): their reports weigh.
P_HEX=$(python3 "$ATK" id "$IDS" p) # made before the helper uses it
helper liar python3 "$ATK" publish "$SN" "$IDS" p "$F_HASH" 3145728 honest_upload.bin
p_listed() { python3 "$ATK" hits "$SN" "$IDS" watcher "$F_HASH" | grep -q "${P_HEX:0:16}"; }
wait_until 15 "p among the sources of h's file" p_listed
for r in 1 2 3; do
  python3 "$ATK" standing "$SN" "$IDS" p r$r 4194304 >/dev/null
done
for r in 1 2 3; do
  python3 "$ATK" report "$SN" "$IDS" r$r "$F_HASH" "$P_HEX" --search >/dev/null
done
three_weighed() { [ "$(reps weighed)" = 3 ]; }
check_within 10 "three weighed reports" three_weighed
p_gone() { ! p_listed; }
check_within 10 "p to drop out of the hits" p_gone
two_sources || check "the honest sources left too: $(python3 "$ATK" hits "$SN" "$IDS" watcher "$F_HASH")"
grep -q "reports $(python3 -c "import base64,sys; print(base64.b32encode(bytes.fromhex(sys.argv[1])).decode().lower()[:8])" "$P_HEX").*out of hits" "$WORK/sn.log" ||
  check "no log line of p leaving the hits"
pair_ok
case_ok "three downloaders with 4 MiB of credit at p (a source of h's file that serves nothing good) report it: p drops out of the hits, h and h2 stay; the pair still downloads"

# ---- 5. identities without data claim a real ID with a false size ----------------------------------
begin_case 5
L1_HEX=$(python3 "$ATK" id "$IDS" liar1)
L2_HEX=$(python3 "$ATK" id "$IDS" liar2)
helper liar1 python3 "$ATK" publish "$SN" "$IDS" liar1 "$F_HASH" 4398046511104 honest_upload.bin
helper liar2 python3 "$ATK" publish "$SN" "$IDS" liar2 "$F_HASH" 4398046511104 honest_upload.bin
liars_listed() { python3 "$ATK" hits "$SN" "$IDS" watcher "$F_HASH" | grep "${L1_HEX:0:16}" | grep -q "${L2_HEX:0:16}"; }
wait_until 15 "the two liars among the sources" liars_listed
hits=$(python3 "$ATK" hits "$SN" "$IDS" watcher "$F_HASH")
[ "$(head -1 <<<"$hits")" = "hits 1" ] || check "one ID, one hit: $hits"
grep -Eq "^hit ${F_HASH:0:16} 3145728 ${H_HEX:0:16} " <<<"$hits" ||
  check "the hit's size must be the verified source's (3145728), h first: $hits"
get_file gsrc "honest upload" "$WORK/h/share/honest_upload.bin"
pair_ok
case_ok "two identities without data publish h's file ID with 4 TiB: one hit, its size the verified source's (3 MiB), h first; gsrc downloads it, byte-identical; the pair still downloads"

done_ok
echo "attack cases: $CASES passed"
