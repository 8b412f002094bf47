#!/usr/bin/env bash
# Downloads survive faults: the source killed mid-download and restarted,
# the downloader killed mid-download and restarted, and a source serving
# corrupted data. Verified chunks are never fetched twice; nothing corrupt
# ever reaches the downloads folder.
# valgrind: yes
source "$(dirname "$0")/lib.sh"
make_federation
start_supernode sn

start_peer() { # NAME [ARGS...]
  local name=$1; shift
  mkdir -p "$WORK/$name/share" "$WORK/$name/dl"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "127.0.0.1:$PORT_sn" \
    --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/$name/share" \
    --downloads "$WORK/$name/dl" "$@"
}
peer() { local name=$1; shift; "$PEER_BIN" --state-dir "$WORK/$name/state" "$@"; }
# progress NAME HASH: "have/total fetched failed" of the running download, from --json.
progress() {
  peer "$1" downloads --json | python3 -c '
import json, sys
for d in json.load(sys.stdin)["downloads"]:
    if d["id"] == sys.argv[1]:
        print(d["chunks_have"], d["chunks"], d.get("chunks_fetched", 0), d.get("chunks_failed", 0))' "$2"
}
wait_chunks() { # NAME HASH N: until the download has at least N verified chunks
  local deadline=$((SECONDS + 30 * TIME_SCALE))
  while [ $SECONDS -lt $deadline ]; do
    local p; p=$(progress "$1" "$2"); [ -n "$p" ] && [ "${p%% *}" -ge "$3" ] && return 0
    sleep 0.1
  done
  fail "$1 never reached $3 chunks of $2 (progress: $(progress "$1" "$2"))"
}

# An old file (its mtime proves it is stable, so the share cache trusts it).
head -c 67108864 /dev/urandom >"$WORK/movie.bin"
touch -d '2 hours ago' "$WORK/movie.bin"
hash=$(file_id "$WORK/movie.bin")
mkdir -p "$WORK/alice/share"
cp -p "$WORK/movie.bin" "$WORK/alice/share/movie.bin"
# alice uploads at 8 MB/s so the faults below land mid-download.
start_peer alice --upload-limit-kbps 8000
start_peer bob
wait_for "$WORK/alice.log" "published 1 shared files"
wait_for "$WORK/bob.log" "attached to supernode"
peer bob search movie | grep -q "^$hash" || fail "bob cannot find the movie"

# ---- 1. the source is killed mid-download and comes back ----
peer bob get "$hash" >"$WORK/bob-get.out" 2>&1 &
GET_BOB=$!
wait_chunks bob "$hash" 12
kill_daemon alice
wait_for "$WORK/bob.log" "source .* unavailable"   # what was in flight has landed
read -r have_before _ <<<"$(progress bob "$hash")"
sleep 1 # on purpose: time passes without a source, and nothing may change
read -r have_still _ <<<"$(progress bob "$hash")"
[ "$have_still" = "$have_before" ] || fail "chunks changed while the only source was dead"
ok "source killed after $have_before of 64 chunks: the download waits"
start_peer alice --upload-limit-kbps 8000   # same identity, new port
wait "$GET_BOB" || fail "bob's get failed: $(cat "$WORK/bob-get.out")"
cmp "$WORK/movie.bin" "$WORK/bob/dl/movie.bin" || fail "bob's copy differs"
read -r have total fetched failed <<<"$(progress bob "$hash")"
[ "$have/$total" = 64/64 ] && [ "$fetched" = 64 ] && [ "$failed" = 0 ] ||
  fail "expected every chunk fetched exactly once: have=$have/$total fetched=$fetched failed=$failed"
ok "the source restarts (new port, found again by its ID): the download completes, each chunk fetched once"

# ---- 2. the downloader is killed mid-download and restarted ----
start_peer carol
wait_for "$WORK/carol.log" "attached to supernode"
peer carol search movie >/dev/null
peer carol get "$hash" >"$WORK/carol-get.out" 2>&1 &
GET_CAROL=$!
wait_chunks carol "$hash" 36
kill_daemon carol
wait "$GET_CAROL" 2>/dev/null && fail "carol's get succeeded although her daemon died"
ls "$WORK/carol/dl/movie.bin" 2>/dev/null && fail "an incomplete file reached the downloads folder"
start_peer carol
wait_for "$WORK/carol.log" "resuming movie.bin, [0-9]+ of 64 chunks already verified"
resumed=$(grep -Eo "resuming movie.bin, [0-9]+ of 64" "$WORK/carol.log" | grep -Eo "[0-9]+ of" | cut -d' ' -f1)
# Chunks are made durable in batches of 16 (or every 250 ms): a crash may
# lose the last batch's progress, never its correctness.
[ "$resumed" -ge 16 ] || fail "carol resumed with only $resumed verified chunks"
peer carol get "$hash" >"$WORK/carol-get2.out" 2>&1 || fail "carol's get: $(cat "$WORK/carol-get2.out")"
cmp "$WORK/movie.bin" "$WORK/carol/dl/movie.bin" || fail "carol's copy differs"
read -r have total fetched failed <<<"$(progress carol "$hash")"
[ "$fetched" = $((64 - resumed)) ] ||
  fail "carol re-fetched verified chunks: resumed with $resumed, fetched $fetched after restart"
ok "downloader killed and restarted: resumes from $resumed verified chunks and fetches only the other $fetched"

# ---- 3. a source whose copy rotted on disk (same size and mtime) ----
stop alice   # the good source stays, but throttled; dave is fast and bad
start_peer alice --upload-limit-kbps 4000
mkdir -p "$WORK/dave/share"
cp -p "$WORK/movie.bin" "$WORK/dave/share/movie.bin"
start_peer dave
wait_for "$WORK/dave.log" "published 1 shared files"
# Rot while dave is down: a running peer sees any write at once (inotify:
# it would hash and publish the new content), rot on disk makes no event.
stop dave
for chunk in $(seq 0 63); do  # flip a byte in every chunk, then restore the mtime
  printf '\xa5\x5a' | dd of="$WORK/dave/share/movie.bin" bs=1 seek=$((chunk * 1048576 + 777)) \
    conv=notrunc status=none
done
touch -r "$WORK/movie.bin" "$WORK/dave/share/movie.bin"
start_peer dave
wait_for_n "$WORK/dave.log" "published 1 shared files" 2
start_peer erin
wait_for "$WORK/erin.log" "attached to supernode"
wait_for_n "$WORK/alice.log" "published 1 shared files" 3
two_sources() { peer erin search movie | grep -q "(2 sources)"; }
until_ok 10 two_sources || fail "erin should see alice and dave as sources: $(peer erin search movie)"
peer erin get "$hash" >"$WORK/erin-get.out" 2>&1 || fail "erin's get: $(cat "$WORK/erin-get.out")"
cmp "$WORK/movie.bin" "$WORK/erin/dl/movie.bin" || fail "erin's copy differs"
grep -q "failed verification, discarded" "$WORK/erin.log" || fail "no chunk failed verification"
grep -q "banned for this download and reported: 2 chunks did not match" "$WORK/erin.log" || fail "dave was not banned"
read -r have total fetched failed <<<"$(progress erin "$hash")"
[ "$failed" = 2 ] || fail "expected exactly 2 failed chunks before the ban, got $failed"
ok "a source serving corrupted chunks is detected and banned; the file completes from the good source"
dave_id=$(peer dave id)
alice_id=$(peer alice id)
erin_id=$(peer erin id)
# erin never uploaded to dave: its report weighs nothing there (a report
# counts by the reporter's credit at the source, docs/INDEX.md), and is
# logged as such; dave, whose data no downloader ever verified, is listed
# after alice, whose uploads receipts verified.
wait_for "$WORK/sn.log" "report by ${erin_id:0:8} of ${dave_id:0:8} not counted: no credit at it"
order=$(peer erin search movie --json | python3 -c '
import json, sys
print(" ".join(p["id"] for p in json.load(sys.stdin)["hits"][0]["peers"]))')
[ "$order" = "$alice_id $dave_id" ] || fail "dave (unverified) should come after alice (verified): $order"
ok "the ban is reported to the supernode (weighed: erin has no credit at dave), which lists dave, unverified, after alice"
ls "$WORK/erin/dl" | grep -qv "^movie.bin$" && fail "stray files in erin's downloads: $(ls -a "$WORK/erin/dl")"
ok "nothing but the verified file is in the downloads folder"

for p in alice bob carol dave erin; do stop $p; done
stop sn
done_ok
