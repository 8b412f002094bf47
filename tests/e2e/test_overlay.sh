#!/usr/bin/env bash
# One supernode, three peers: attach and publish, search (AND, case, removed
# files), a 64 MiB download that is byte-identical, status and downloads.
# valgrind: yes
# tsan: yes (the share scanner's and the UPnP worker threads of real peers)
source "$(dirname "$0")/lib.sh"
make_federation
start_supernode sn --peer-timeout-s 4 --keepalive-s 1

# start_peer NAME [ARGS...]: a peer that shares its downloads folder (as
# KaZaA's "My Shared Folder" did) plus what is in NAME/share.
start_peer() {
  local name=$1; shift
  mkdir -p "$WORK/$name/share" "$WORK/$name/dl"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "127.0.0.1:$PORT_sn" \
    --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/$name/share" \
    --downloads "$WORK/$name/share/dl" --rescan-interval-s 1 "$@"
}
peer() { local name=$1; shift; "$PEER_BIN" --state-dir "$WORK/$name/state" "$@"; }

mkdir -p "$WORK/alice/share/music"
head -c 67108864 /dev/urandom >"$WORK/alice/share/Big_Random-File.bin"
printf 'hello sova\n' >"$WORK/alice/share/music/Holiday_Song (Live).mp3"
printf 'notes\n' >"$WORK/alice/share/holiday-notes.txt"
printf 'secret\n' >"$WORK/alice/share/.hidden-holiday"
mkdir -p "$WORK/carol/share"
printf 'only carol has this\n' >"$WORK/carol/share/carols-only-file.txt"
start_peer alice
start_peer bob
start_peer carol
for p in alice bob carol; do wait_for "$WORK/$p.log" "attached to supernode"; done
wait_for "$WORK/alice.log" "published 3 shared files"
ok "three peers attach; alice publishes her 3 files (hidden files are not shared)"

big_hash=$(file_id "$WORK/alice/share/Big_Random-File.bin")
out=$(peer bob search big random)
grep -q "^$big_hash  *67108864  Big_Random-File.bin  (1 source)$" <<<"$out" ||
  fail "search 'big random' did not find the file: $out"
ok "search finds a file on another peer (hash, size, name, sources)"

out=$(peer bob search HOLIDAY)
[ "$(grep -c . <<<"$out")" = 2 ] || fail "search HOLIDAY should find 2 files: $out"
out=$(peer bob search holiday live)
grep -q "Holiday_Song (Live).mp3" <<<"$out" && [ "$(grep -c . <<<"$out")" = 1 ] ||
  fail "AND search 'holiday live' should find only the song: $out"
out=$(peer bob search holiday nothingmatches 2>&1)
grep -q "no matches" <<<"$out" || fail "a search with no match should say so: $out"
ok "search is an AND of keywords and ignores case"

peer bob search holiday --json | python3 -c '
import json, sys
hits = json.load(sys.stdin)["hits"]
assert len(hits) == 2, hits
assert all(len(h["id"]) == 64 and h["sources"] == 1 for h in hits), hits' ||
  fail "search --json"
ok "search --json gives machine-readable hits"

rm "$WORK/alice/share/holiday-notes.txt"
wait_for "$WORK/alice.log" "share changed: 0 added, 0 changed, 1 removed"
out=$(peer bob search holiday)
grep -q "holiday-notes" <<<"$out" && fail "a removed file is still found: $out"
ok "a file removed from the share is no longer found"

printf 'fresh\n' >"$WORK/alice/share/new holiday plan.txt"
wait_for "$WORK/alice.log" "share changed: 1 added"
peer carol search plan | grep -q "new holiday plan.txt" || fail "an added file is not found"
ok "a file added to the share is found"

peer bob get "$big_hash" >"$WORK/get.out" 2>"$WORK/get.err" || fail "get failed: $(cat "$WORK/get.err")"
cmp "$WORK/alice/share/Big_Random-File.bin" "$WORK/bob/share/dl/Big_Random-File.bin" ||
  fail "downloaded file differs"
grep -Eq "saved $WORK/bob/share/dl/Big_Random-File.bin \(64.0 MiB, verified, via direct: LAN 127\.0\.0\.1:[0-9]+, IPv4\)" \
  "$WORK/get.out" || fail "get output: $(cat "$WORK/get.out")"
[ -z "$(ls -A "$WORK/bob/share/dl/.sova-partial")" ] || fail "part files left behind"
ok "a 64 MiB random file downloads byte-identical, via a direct connection, and get names the address (LAN 127.0.0.1, IPv4)"

peer bob downloads | grep -q "^$big_hash  complete 100%  Big_Random-File.bin$" ||
  fail "downloads: $(peer bob downloads)"
ok "sova-peer downloads lists the completed download"

wait_for "$WORK/bob.log" "share changed: 1 added" 20   # bob now shares what he fetched
peer carol get "$big_hash" --out "$WORK/carol-copy.bin" --json >"$WORK/get.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["download"]
assert d["state"] == "complete" and d["via"] == "direct" and d["size"] == 67108864, d
assert d["chunks_fetched"] == 64 and d["chunks_failed"] == 0, d
assert d["sources"]["known"] == 2, d' "$WORK/get.json" || fail "get --json: $(cat "$WORK/get.json")"
cmp "$WORK/alice/share/Big_Random-File.bin" "$WORK/carol-copy.bin" || fail "--out copy differs"
ok "get --out --json: carol downloads from alice and bob (two sources), exactly 64 chunks"

status=$(peer alice status)
grep -q "supernode     $("$FED" id "$WORK/fed/sn1.crt") at 127.0.0.1:$PORT_sn" <<<"$status" ||
  fail "status: $status"
grep -q "observed as   127.0.0.1:" <<<"$status" || fail "status lacks the observed address: $status"
grep -q "shares        3 files" <<<"$status" || fail "status shares: $status"
grep -q "^peer          $(peer alice id)$" <<<"$status" || fail "status lacks the ID: $status"
ok "sova-peer status shows supernode, observed address and shares"

set +e
out=$(peer bob get 0000000000000000000000000000000000000000000000000000000000000000 2>&1); rc=$?
set -e
[ $rc -ne 0 ] && grep -q "no peer shares" <<<"$out" || fail "get of an unknown file ID: rc=$rc $out"
set +e
out=$(peer bob get nothex 2>&1); rc=$?
set -e
[ $rc -ne 0 ] && grep -qi "\"id\"" <<<"$out" || fail "get of a bad file ID: rc=$rc $out"
ok "get of an unknown or malformed file ID fails with a clear message"

"$SN_BIN" status --control "$WORK/sn-state/control.sock" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["peers"] == 3, s
assert s["files_indexed"] == 5, s   # alice 3, bob 1, carol 1
assert s["searches_served"] >= 6, s
assert s["bytes_in"] > 0 and s["bytes_out"] > 0 and s["uptime_s"] >= 0, s' ||
  fail "supernode status --json"
"$SN_BIN" status --control "$WORK/sn-state/control.sock" | grep -q "peers *3 attached" ||
  fail "supernode status: $("$SN_BIN" status --control "$WORK/sn-state/control.sock")"
ok "sova-supernode status shows peers, files, searches, traffic, uptime"

# A silent peer is dropped after peer-timeout and its files leave the index
# at once; when it wakes up it re-attaches and republishes by itself.
peer bob search carols | grep -q "carols-only-file.txt" || fail "carol's file not found"
CAROL=$(peer carol id)
kill -STOP "$PID_carol"
wait_for "$WORK/sn.log" "${CAROL:0:8}: silent for [0-9]+ s, dropping it" 20
wait_for "$WORK/sn.log" "${CAROL:0:8}: peer left \(.*\), 1 files leave the index"
out=$(peer bob search carols 2>&1)
grep -q "no matches" <<<"$out" || fail "a dropped peer's file is still found: $out"
ok "a silent peer is dropped after the keep-alive timeout and its files leave the index"
kill -CONT "$PID_carol"
wait_for_n "$WORK/carol.log" "published 1 shared files" 2 20
carol_found() { peer bob search carols | grep -q "carols-only-file.txt"; }
until_ok 10 carol_found || fail "carol's file not back"
ok "the dropped peer re-attaches and republishes by itself"

for p in alice bob carol; do stop $p; done
stop sn
done_ok
