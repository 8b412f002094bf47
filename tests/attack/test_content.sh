#!/usr/bin/env bash
# Attack suite, content (issue 13, findings 1 and 2, and "no download fails
# for ever because of what one source said"). Sources that speak the
# protocol correctly but lie about a file's content or size
# (tests/attack/content.py), against real daemons on loopback: a supernode,
# an honest source (alice) and a downloader (bob). Each case asserts that
# the attack fails (the liar is banned for the download, reported, nothing
# it said is kept, the file completes from the honest source, byte for
# byte, with the size its ID commits to) and then that the well-behaved
# pair still searches and downloads a new file, byte-identical.
#
# To make a liar answer first, alice is stopped (SIGSTOP) while bob starts:
# her listener accepts but never finishes a handshake, so the liar is the
# only source bob hears from; she is let go (SIGCONT) once the liar is
# banned, and the download goes on with her.
source "$(dirname "$0")/../e2e/lib.sh"
CX=$SOVA_SRC/tests/attack/content.py
CASES=0
case_ok() { CASES=$((CASES + 1)); ok "case $CASES: $*"; }

make_federation
start_supernode sn
SN=127.0.0.1:$PORT_sn

start_peer() { # NAME [ARGS...]
  local name=$1; shift
  mkdir -p "$WORK/$name/share" "$WORK/$name/dl"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "$SN" \
    --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/$name/share" \
    --downloads "$WORK/$name/dl" --rescan-interval-s 1 "$@"
}
peer() { local name=$1; shift; "$PEER_BIN" --state-dir "$WORK/$name/state" "$@"; }
# bget ID [ARGS...]: bob's get, which must end (done or failed) within 2 minutes.
bget() { timeout $((120 * TIME_SCALE)) "$PEER_BIN" --state-dir "$WORK/bob/state" get "$@"; }
pjson() { peer "$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"; }
short() { cut -c1-8 <<<"$1"; }
# found ID WORDS...: bob's search for WORDS lists ID (grep it for more with FOUND_RE).
found() { local id=$1; shift; peer bob search "$@" | grep -q "^$id ${FOUND_RE:-}"; }
mkfile() { head -c "$2" /dev/urandom >"$WORK/files/$1"; touch -d '1 hour ago' "$WORK/files/$1"; }

# liar NAME MODE FILE [ARGS...]: an attacker publishing FILE's ID; waits
# until it is published and sets LIAR_ID (its node ID, base32) to it.
liar() {
  local name=$1 mode=$2 file=$3; shift 3
  helper "$name" python3 "$CX" --target "$SN" --src 127.0.0.3 --dir "$WORK/ids" --name "$name" \
    --file "$file" --mode "$mode" --scale "$TIME_SCALE" "$@"
  wait_for "$WORK/$name.log" "^published .* accepted 1$" 20
  LIAR_ID=$(sed -n 's/^published .* as \([a-z2-7]*\),.*/\1/p' "$WORK/$name.log")
}
unliar() { local var; var=$(_d_var "$1"); kill "${!var}" 2>/dev/null || true; }

# row ID FILE: bob's stored download of ID against FILE: the checked
# manifest must be FILE's own (size, root, the layer at the chunk size).
row_is_true() {
  python3 - "$WORK/bob/state/peer.db" "$1" "$2" <<'EOF'
import os, sqlite3, sys
sys.path.insert(0, os.environ["SOVA_SRC"] + "/tests/e2e")
import hostile
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
size, root, hashes, cs, state = db.execute(
    "SELECT size, root, chunk_hashes, chunk_size, state FROM downloads WHERE id = ?",
    (bytes.fromhex(sys.argv[2]),)).fetchone()
f = hostile.SovaFile(open(sys.argv[3], "rb").read())
assert f.id.hex() == sys.argv[2], "not the file's ID"
assert size == f.size, "stored size %s, the file has %d" % (size, f.size)
assert root == f.root, "stored root is not the file's"
assert hashes == b"".join(f.layer(cs)), "stored chunk hashes are not the file's"
print(state)
EOF
}
# bad_source ID PEER: "banned|failures|reason" of PEER for bob's download ID.
bad_source() {
  peer bob downloads --json | python3 -c '
import json, sys
for d in json.load(sys.stdin)["downloads"]:
    if d.get("id") == sys.argv[1]:
        for b in d.get("bad_sources", []):
            if b["peer"] == sys.argv[2]:
                print("%s|%d|%s" % (b["banned"], b["failures"], b["reason"]))' "$1" "$2"
}

# good_pair N: the well-behaved pair still works: alice shares a new file,
# bob finds it by name and downloads it, byte-identical.
good_pair() {
  local f=goodpair-$1.bin id
  head -c $((200000 + RANDOM)) /dev/urandom >"$WORK/files/$f"
  id=$(file_id "$WORK/files/$f")
  cp "$WORK/files/$f" "$WORK/alice/share/$f"
  until_ok 30 found "$id" goodpair ||
    fail "good pair $1: bob does not find alice's new file"
  bget "$id" --out "$WORK/got-$f" >/dev/null 2>&1 || fail "good pair $1: bob's get failed"
  cmp -s "$WORK/files/$f" "$WORK/got-$f" || fail "good pair $1: bob's copy differs"
}

mkdir -p "$WORK/files" "$WORK/ids"
start_peer alice --upload-limit-kbps 16000
start_peer bob
wait_for "$WORK/alice.log" "published 0 shared files"
wait_for "$WORK/bob.log" "attached to supernode"
ALICE_ID=$(peer alice id)
BOB_ID=$(peer bob id)
hex_of() { python3 -c "import base64,sys; print(base64.b32decode(sys.argv[1].upper() + '====').hex())" "$1"; }
# first_source ID: the hex ID of the first source the supernode names for a
# lookup by ID (tests/attack/credit.py hits: sources best-ranked first).
first_source() {
  python3 "$SOVA_SRC/tests/attack/credit.py" hits "$SN" "$WORK/ids" watcher "$1" | awk '/^hit / {print $4; exit}'
}
# sn_got_report LIAR_ID: the supernode received bob's REPORT of the liar for
# bad data. Bob has no credit at the liar (he never uploaded to it), so the
# report is weighed and not counted (docs/INDEX.md, "Reports"): whether it
# counts is test_credit's business; here, that it arrived.
sn_got_report() {
  wait_for "$WORK/sn.log" "(report by $(short "$BOB_ID") of $(short "$1") not counted|$(short "$BOB_ID") reports $(short "$1"): served data that failed verification)"
}
good_pair 0
ok "the well-behaved pair (alice shares, bob downloads) works before any attack"

# lying_manifest N MODE WHY: a liar of MODE answers bob first (alice, who
# has the file too, stopped): refused on arrival for WHY, banned, reported;
# the download completes from alice; no chunk was asked of the liar.
lying_manifest() {
  local n=$1 mode=$2 why=$3 f=file-$1.bin id
  mkfile "$f" $((3 * 1048576 + 4321))
  id=$(file_id "$WORK/files/$f")
  cp -p "$WORK/files/$f" "$WORK/alice/share/$f"
  FOUND_RE=".*(1 source)" until_ok 30 found "$id" file ||
    fail "$mode: alice's file-$n is not found"
  kill -STOP "$PID_alice"
  liar "liar-$n" "$mode" "$WORK/files/$f"
  bget "$id" >"$WORK/get-$n.out" 2>&1 &
  local get=$!
  wait_for "$WORK/liar-$n.log" "^MANIFEST_GET chunk_size 1048576 first 0"
  wait_for "$WORK/bob.log" "source $(short "$LIAR_ID") banned for this download and reported: $why"
  sn_got_report "$LIAR_ID"
  [ ! -e "$WORK/bob/dl/.sova-partial/$id.part" ] || fail "$mode: a part file exists before a manifest was checked"
  kill -CONT "$PID_alice"
  wait "$get" || fail "$mode: bob's get failed: $(cat "$WORK/get-$n.out")"
  cmp -s "$WORK/files/$f" "$WORK/bob/dl/$f" || fail "$mode: bob's copy differs"
  grep -q "^GET" "$WORK/liar-$n.log" && fail "$mode: a chunk was asked of the liar"
  [ "$(row_is_true "$id" "$WORK/files/$f")" = complete ] || fail "$mode: bob's stored download is not the file's"
  [[ $(bad_source "$id" "$LIAR_ID") == True\|* ]] || fail "$mode: the liar is not listed banned: $(bad_source "$id" "$LIAR_ID")"
  grep -q "^sha256 $(sha256sum "$WORK/files/$f" | cut -d' ' -f1)$" "$WORK/get-$n.out" ||
    fail "$mode: get does not show the file's SHA-256 as sha256sum does: $(cat "$WORK/get-$n.out")"
}

# ---- 1. manifest poisoning (finding 1) ---------------------------------------------
lying_manifest 1 hashes "its manifest's chunk hashes do not make the file ID"
# The poisoner is still there and still publishing: a later get of the same
# ID (the file deleted, so it is fetched again) succeeds, and the poisoner,
# banned for this download, is not even asked.
rm "$WORK/bob/dl/file-1.bin"
bget "$(file_id "$WORK/files/file-1.bin")" >"$WORK/get-1b.out" 2>&1 || fail "the later get failed: $(cat "$WORK/get-1b.out")"
cmp -s "$WORK/files/file-1.bin" "$WORK/bob/dl/file-1.bin" || fail "the later copy differs"
[ "$(grep -c "^MANIFEST_GET" "$WORK/liar-1.log")" = 1 ] || fail "the banned poisoner was asked again"
grep -q "source $(short "$LIAR_ID") was banned for this download: not asked" "$WORK/bob.log" ||
  fail "no line says the banned poisoner was left out"
unliar liar-1
good_pair 1
case_ok "manifest poisoning: a source publishing the file's ID and size answers first with chunk hashes of garbage (served consistently): refused once its pages are in (they do not make the ID), before any chunk, banned, reported (REPORT bad data); the download completes from alice, byte-identical, and bob keeps alice's manifest only; a later get of the ID succeeds without asking the poisoner"

lying_manifest 2 root "its manifest's size \([0-9]+ bytes\) and root do not make the file ID"
unliar liar-2
good_pair 2
case_ok "manifest poisoning with the garbage's own root: refused on its first page, banned, reported; completes from alice"

# ---- 2. size poisoning (finding 2) --------------------------------------------------
f=big-2.bin
mkfile "$f" $((16 * 1048576 + 99))
ID2=$(file_id "$WORK/files/$f")
REAL2=$((16 * 1048576 + 99))
cp -p "$WORK/files/$f" "$WORK/alice/share/$f"
until_ok 30 found "$ID2" big || fail "alice's big-2 is not found"
kill -STOP "$PID_alice"
liar size-a size "$WORK/files/$f"
SIZE_A=$LIAR_ID
liar size-b none "$WORK/files/$f" --size $((4 << 40))
# Hits group by file ID (docs/INDEX.md): the 4 TiB claims make no hit of
# their own; one hit, alice (whose uploads others verified) first, its size
# hers, the two liars after her.
peer bob search big >"$WORK/search-2.out"
grep -Eq "^$ID2 +$REAL2 .*\(3 sources\)" "$WORK/search-2.out" ||
  fail "one hit of the ID, alice's size, 3 sources: $(cat "$WORK/search-2.out")"
[ "$(grep -c "^$ID2 " "$WORK/search-2.out")" = 1 ] || fail "the 4 TiB claim made a hit of its own: $(cat "$WORK/search-2.out")"
[ "$(first_source "$ID2")" = "$(hex_of "$ALICE_ID" | cut -c1-16)" ] || fail "alice is not the first source: $(first_source "$ID2")"
watch_parts() { # every part file bob has, 20 times a second: "SIZE PATH"
  set +e
  while :; do
    stat -c '%s %n' "$WORK/bob/dl/.sova-partial/"*.part 2>/dev/null
    sleep 0.05
  done
}
helper parts watch_parts
bget "$ID2" >"$WORK/get-2.out" 2>&1 &
get=$!
wait_for "$WORK/bob.log" "source $(short "$SIZE_A") banned for this download and reported: its manifest's size \(4398046511104 bytes\) and root do not make the file ID"
peer bob downloads --json | python3 -c '
import json, sys
d = [d for d in json.load(sys.stdin)["downloads"] if d.get("id") == sys.argv[1]][0]
assert d["size"] is None and d["size_hint"] == int(sys.argv[2]), d
assert d["state"] == "running", d' "$ID2" "$REAL2" || fail "before a checked manifest the size must be unknown (the hit's size a hint)"
[ ! -e "$WORK/bob/dl/.sova-partial/$ID2.part" ] || fail "a part file exists before a manifest was checked"
kill -CONT "$PID_alice"
wait "$get" || fail "size poisoning: bob's get failed: $(cat "$WORK/get-2.out")"
cmp -s "$WORK/files/$f" "$WORK/bob/dl/$f" || fail "size poisoning: bob's copy differs"
unliar parts
max=$(awk '{ if ($1 > m) m = $1 } END { print m + 0 }' "$WORK/parts.log")
[ "$max" -le "$REAL2" ] || fail "a part file of $max bytes was made (the file has $REAL2): $(sort -un "$WORK/parts.log" | tail -3)"
seen=$(grep -c "$ID2.part" "$WORK/parts.log" || true)
peer bob downloads --json | python3 -c '
import json, sys
d = [d for d in json.load(sys.stdin)["downloads"] if d.get("id") == sys.argv[1]][0]
assert d["size"] == int(sys.argv[2]) and d["size_hint"] == int(sys.argv[2]) and d["state"] == "complete", d' "$ID2" "$REAL2" ||
  fail "the download's size is not the checked one"
[ "$(row_is_true "$ID2" "$WORK/files/$f")" = complete ] || fail "bob's stored download is not the file's"
unliar size-a
unliar size-b
good_pair 3
case_ok "size poisoning: two identities with no data publish the file's ID at 4 TiB: one hit of the ID, alice (verified) first and her size shown; get ID downloads the real $REAL2 bytes from alice; the liar that answered is refused on its first page (the size does not make the ID), banned, reported; no part file larger than the file was ever made (largest seen: $max bytes, $seen samples), the size shown is the checked one"

# ---- 3. lies after the manifest -------------------------------------------------------
f=file-4.bin
mkfile "$f" $((6 * 1048576 + 1))
ID4=$(file_id "$WORK/files/$f")
cp -p "$WORK/files/$f" "$WORK/alice/share/$f"
FOUND_RE=".*(1 source)" until_ok 30 found "$ID4" file || fail "alice's file-4 is not found"
kill -STOP "$PID_alice"
liar liar-4 bad-data "$WORK/files/$f"
bget "$ID4" >"$WORK/get-4.out" 2>&1 &
get=$!
wait_for "$WORK/bob.log" "manifest from $(short "$LIAR_ID") matches the file ID"
wait_for "$WORK/bob.log" "source $(short "$LIAR_ID") banned for this download and reported: 2 chunks did not match the file ID's manifest"
sn_got_report "$LIAR_ID"
kill -CONT "$PID_alice"
wait "$get" || fail "bad data: bob's get failed: $(cat "$WORK/get-4.out")"
cmp -s "$WORK/files/$f" "$WORK/bob/dl/$f" || fail "bad data: bob's copy differs"
[[ $(bad_source "$ID4" "$LIAR_ID") == True\|2\|* ]] || fail "the liar is not listed banned after 2 chunks: $(bad_source "$ID4" "$LIAR_ID")"
unliar liar-4
good_pair 4
case_ok "a source with the true manifest that sends garbage for its chunks: each chunk refused against the manifest, banned after 2, reported; completes from alice, byte-identical"

f=file-5.bin
mkfile "$f" $((5 * 1048576 + 17))
ID5=$(file_id "$WORK/files/$f")
cp -p "$WORK/files/$f" "$WORK/alice/share/$f"
FOUND_RE=".*(1 source)" until_ok 30 found "$ID5" file || fail "alice's file-5 is not found"
kill -STOP "$PID_alice"
liar liar-5 close "$WORK/files/$f"
bget "$ID5" >"$WORK/get-5.out" 2>&1 &
get=$!
wait_for "$WORK/liar-5.log" "^closing at the first GET"
kill -CONT "$PID_alice"
wait "$get" || fail "close: bob's get failed: $(cat "$WORK/get-5.out")"
cmp -s "$WORK/files/$f" "$WORK/bob/dl/$f" || fail "close: bob's copy differs"
unliar liar-5
good_pair 5
case_ok "a source that gives the true manifest and closes its link at the first GET (again at each reconnection): the download completes from alice, byte-identical"

# ---- 4. every source bad, then an honest one: a retry succeeds -------------------------
f=file-6.bin
mkfile "$f" $((2 * 1048576 + 5))
ID6=$(file_id "$WORK/files/$f")
liar liar-6 hashes "$WORK/files/$f"
set +e
out=$(bget "$ID6" 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] || fail "a download whose only source lies must fail, not wait for ever: $out"
grep -q "no source left to try.*$(short "$LIAR_ID"): its manifest's chunk hashes do not make the file ID" <<<"$out" ||
  fail "the failure does not say which source was banned and why: $out"
peer bob downloads --json | python3 -c '
import json, sys
d = [d for d in json.load(sys.stdin)["downloads"] if d.get("id") == sys.argv[1]][0]
assert d["state"] == "failed" and "no source left" in d["error"], d
assert [b for b in d["bad_sources"] if b["peer"] == sys.argv[2] and b["banned"]], d' "$ID6" "$LIAR_ID" ||
  fail "downloads --json does not show the failure and the banned source"
peer bob downloads >"$WORK/downloads-6.out"
grep -q "^    last attempt failed: no source left" "$WORK/downloads-6.out" &&
  grep -q "^    source $(short "$LIAR_ID")[a-z2-7]* banned: its manifest's chunk hashes do not make the file ID" "$WORK/downloads-6.out" ||
  fail "sova-peer downloads does not say why it failed and who was banned: $(cat "$WORK/downloads-6.out")"
cp -p "$WORK/files/$f" "$WORK/alice/share/$f"
FOUND_RE=".*(2 sources)" until_ok 30 found "$ID6" file || fail "alice's file-6 is not found"
bget "$ID6" >"$WORK/get-6.out" 2>&1 || fail "the retry failed: $(cat "$WORK/get-6.out")"
cmp -s "$WORK/files/$f" "$WORK/bob/dl/$f" || fail "the retry's copy differs"
[ "$(grep -c "^MANIFEST_GET" "$WORK/liar-6.log")" = 1 ] || fail "the banned poisoner was asked again on the retry"
unliar liar-6
good_pair 6
case_ok "every source lies: the download fails (no source left, naming the banned source and why, in get, downloads and --json) instead of waiting for ever; once alice shares the file, get again succeeds, byte-identical, without asking the liar again"

# ---- variants ---------------------------------------------------------------------------
lying_manifest 7 size-plus "its manifest's size \([0-9]+ bytes\) and root do not make the file ID"
unliar liar-7
good_pair 7
case_ok "a manifest with the file's root but one chunk more (its size one chunk larger): refused on its first page, banned, reported; completes from alice"

lying_manifest 8 chunk-size "its manifest has chunks of 65536 bytes, 1048576 were asked for"
unliar liar-8
good_pair 8
case_ok "a source answering another chunk size than bob asked (64 KiB for 1 MiB: a source may not impose its size): banned, reported; completes from alice"

lying_manifest 9 empty-page "its manifest page from chunk 0 has 0 hashes \(from chunk 0 was asked\)"
unliar liar-9
good_pair 9
case_ok "a source answering a first page with no hash (a manifest that never ends): banned, reported; completes from alice"

# A Sybil crowd: 16 identities publish the ID at 4 TiB, as many as a hit
# names (max_sources) and as many as a download has source slots
# (OP_SCHED_MAX_SOURCES). Before hits grouped by ID they made a hit of their
# own that filled every slot before alice's was looked at (the download then
# lived on slot recycling: a banned liar's slot to the next source named).
# Now there is one hit of the ID and alice, whose uploads others verified,
# ranks before every liar: she is the first source named, the hit shows her
# size, and the crowd cannot keep her out of the download.
f=file-10.bin
mkfile "$f" $((2 * 1048576 + 3))
ID10=$(file_id "$WORK/files/$f")
REAL10=$((2 * 1048576 + 3))
cp -p "$WORK/files/$f" "$WORK/alice/share/$f"
FOUND_RE=".*(1 source)" until_ok 30 found "$ID10" file || fail "alice's file-10 is not found"
helper crowd python3 "$CX" --target "$SN" --src 127.0.0.3 --dir "$WORK/ids" --name crowd --count 16 \
  --file "$WORK/files/$f" --mode size --scale "$TIME_SCALE"
wait_for_n "$WORK/crowd.log" "^published .* accepted 1$" 16 60
FOUND_RE=" *$REAL10 .*(16 sources)" until_ok 30 found "$ID10" file ||
  fail "one hit of the ID with alice's size and 16 sources named: $(peer bob search file)"
[ "$(peer bob search file | grep -c "^$ID10 ")" = 1 ] || fail "the crowd made a hit of its own: $(peer bob search file)"
[ "$(first_source "$ID10")" = "$(hex_of "$ALICE_ID" | cut -c1-16)" ] ||
  fail "crowd: alice is not the first source named: $(first_source "$ID10")"
bget "$ID10" >"$WORK/get-10.out" 2>&1 || fail "crowd: bob's get failed: $(cat "$WORK/get-10.out")"
cmp -s "$WORK/files/$f" "$WORK/bob/dl/$f" || fail "crowd: bob's copy differs"
n=$(grep -c "$(cut -c1-16 <<<"$ID10"): source [a-z2-7]* banned for this download and reported: its manifest's size (4398046511104 bytes)" "$WORK/bob.log" || true)
unliar crowd
good_pair 10
case_ok "a Sybil crowd of 16 identities publishing the ID at 4 TiB: one hit of the ID, alice (verified) the first source named and her size shown; the download completes from her, byte-identical ($n liars that answered banned)"

stop bob
stop alice
stop sn
done_ok
echo "attack cases: $CASES passed"
