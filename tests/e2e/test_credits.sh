#!/usr/bin/env bash
# Credit (docs/CREDITS.md), one supernode and real peers:
#  - downloads earn the source credit through signed receipts, and the
#    supernode's ledger holds uploaded and downloaded totals;
#  - two downloaders compete for a source with one upload slot: the one
#    with credit at that source (it uploaded to it before) finishes first,
#    the other still finishes;
#  - a peer that comes back from a new address keeps its credit.
# valgrind: yes
source "$(dirname "$0")/lib.sh"
make_federation
start_supernode sn --keepalive-s 1 --peer-timeout-s 4

start_peer() { # NAME [ARGS...]
  local name=$1; shift
  mkdir -p "$WORK/$name/share" "$WORK/$name/dl"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "127.0.0.1:$PORT_sn" \
    --federation-ca "$WORK/fed/root.crt" --share "$WORK/$name/share" \
    --downloads "$WORK/$name/dl" --upnp no "$@"
}
peer() { local name=$1; shift; "$PEER_BIN" --state-dir "$WORK/$name/state" "$@"; }
credit_of() { # NAME FIELD: a number of the peer's own ledger record
  peer "$1" status --json | python3 -c "import json,sys; c=json.load(sys.stdin)['credit']
print(c['$2'] if c['known'] else -1)"
}
# get_file NAME HASH WORDS: search (so the peer knows the file) and download.
get_file() {
  until_ok 10 sh -c "\"$PEER_BIN\" --state-dir '$WORK/$1/state' search $3 | grep -q '$2'" ||
    fail "$1 cannot find $3"
  peer "$1" get "$2" >"$WORK/$1-get.out" 2>&1
}

head -c $((3 * 1048576)) /dev/urandom >"$WORK/h-file.bin"
head -c $((8 * 1048576)) /dev/urandom >"$WORK/s-file.bin"
# The files are in place before their peers start: their first scan
# publishes them (copied after, they waited for a rescan that never came
# within the test's waits when the first scan won the race).
mkdir -p "$WORK/henry/share" "$WORK/sam/share"
cp "$WORK/h-file.bin" "$WORK/henry/share/henrys_upload.bin"
cp "$WORK/s-file.bin" "$WORK/sam/share/sams_big_file.bin"
start_peer henry --listen 127.0.0.1:0
start_peer xavier --listen 127.0.0.1:0
wait_for "$WORK/henry.log" "attached to supernode"
wait_for "$WORK/xavier.log" "attached to supernode"
wait_for "$WORK/henry.log" "published 1 shared files"
HH=$(file_id "$WORK/h-file.bin")
get_file xavier "$HH" "henrys upload" || fail "xavier's download failed: $(cat "$WORK/xavier-get.out")"
cmp "$WORK/h-file.bin" "$WORK/xavier/dl/henrys_upload.bin" || fail "download differs"
# 3 chunks, a receipt each; the supernode counts them within a second or two.
has_credit() { [ "$(credit_of henry uploaded)" -ge $((3 * 1048576)) ]; }
until_ok 15 has_credit || fail "henry's upload is not in the ledger: $(peer henry status)"
c=$(credit_of henry credit)
# What henry sees of himself: the credit each of his downloaders sees from
# his direct service, summed (xavier: 3 MiB). No uptime, no weight.
[ "$c" = $((3 * 1048576)) ] || fail "henry's credit $c: expected 3 MiB"
downloaded() { [ "$(credit_of xavier downloaded)" -ge $((3 * 1048576)) ]; }
until_ok 10 downloaded || fail "xavier's download is not in the ledger: $(peer xavier status)"
peer henry status | grep -Eq "^credit +3.0 MiB \(uploaded 3.0 MiB, downloaded 0 B" ||
  fail "status: $(peer henry status)"
peer henry status | grep -Eq "^receipts +0 signed; 3 received, 3 handed to the supernode" ||
  fail "status: $(peer henry status)"
peer xavier status | grep -Eq "^receipts +3 signed" || fail "status: $(peer xavier status)"
sova_sn_status() { "$SN_BIN" status --control "$WORK/sn-state/control.sock" "$@"; }
sova_sn_status | grep -Eq "^ledger +2 credit records, 3 replicas over 1 supernodes; receipts 6 counted" ||
  fail "supernode status: $(sova_sn_status)"
ok "receipts for xavier's download from henry: henry's credit (3 MiB, as his downloaders see it), both totals, status of peers and supernode"

# A source with one upload slot, 2 MB/s: sam first downloads henry's file,
# so henry has credit at sam (credit is seen from the source: what henry
# uploaded to sam). lena asks first, henry second; henry takes the slot at
# lena's next chunk and finishes first. He keeps it only while his next GET
# is queued when a chunk is done: under valgrind a downloader verifies a
# chunk and asks for the next one many times slower, so the source sends
# slower too (500 kB/s), or the slot alternates and lena, who started
# first, may finish first.
SAM_KBPS=2000
[ "$TIME_SCALE" -gt 1 ] && SAM_KBPS=500
start_peer sam --listen 127.0.0.1:0 --upload-slots 1 --upload-limit-kbps $SAM_KBPS
start_peer lena --listen 127.0.0.1:0
wait_for "$WORK/sam.log" "published 1 shared files"
wait_for "$WORK/lena.log" "attached to supernode"
get_file sam "$HH" "henrys upload" || fail "sam's download failed: $(cat "$WORK/sam-get.out")"
cmp "$WORK/h-file.bin" "$WORK/sam/dl/henrys_upload.bin" || fail "sam's download differs"
sam_served() { [ "$(credit_of sam downloaded)" -ge $((3 * 1048576)) ]; }
until_ok 15 sam_served || fail "sam's download from henry is not in the ledger: $(peer sam status)"
SH=$(file_id "$WORK/s-file.bin")
( get_file lena "$SH" "sams big" && echo lena >>"$WORK/order" ) &
LENA_GET=$!
wait_for "$WORK/sam.log" "peer connected"
wait_for "$WORK/lena.log" "connected to source"
( get_file henry "$SH" "sams big" && echo henry >>"$WORK/order" ) &
HENRY_GET=$!
wait "$HENRY_GET" || fail "henry's download failed: $(cat "$WORK/henry-get.out")"
wait "$LENA_GET" || fail "lena's download failed: $(cat "$WORK/lena-get.out")"
[ "$(head -1 "$WORK/order")" = henry ] || fail "finished first: $(head -1 "$WORK/order"), want henry"
[ "$(grep -c . "$WORK/order")" = 2 ] || fail "not both finished: $(cat "$WORK/order")"
cmp "$WORK/s-file.bin" "$WORK/lena/dl/sams_big_file.bin" || fail "lena's file differs"
cmp "$WORK/s-file.bin" "$WORK/henry/dl/sams_big_file.bin" || fail "henry's file differs"
ok "one upload slot, two downloaders: the one with credit at the source (asking second) finishes first, the other finishes too"

# Uptime as the supernode saw it (reported every 10 s), never the peer's word.
online() { [ "$(credit_of henry uptime_s)" -ge 5 ]; }
until_ok 20 online || fail "henry's uptime is not in the ledger: $(peer henry status --json)"
ok "the supernode reports how long henry has been attached; it is in his record"

# henry comes back from another address: same key, same credit.
before=$(credit_of henry uploaded)
stop henry
start_peer henry --listen 127.0.0.2:0
wait_for_n "$WORK/henry.log" "attached to supernode" 2
wait_for "$WORK/henry.log" "listening on 127\.0\.0\.2:"
same_credit() { [ "$(credit_of henry uploaded)" = "$before" ] && [ "$(credit_of henry credit)" -ge "$c" ]; }
until_ok 15 same_credit || fail "henry from 127.0.0.2: uploaded $(credit_of henry uploaded), was $before"
ok "a peer back from a new address keeps its credit"

for p in henry xavier sam lena; do stop $p; done
stop sn
done_ok
