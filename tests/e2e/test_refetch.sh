#!/usr/bin/env bash
# A file asked for again (docs/TRANSFERS.md, "Asking again"): `get ID` of a
# finished file answers at once; `get ID --out NEW` puts the file at NEW,
# copied from the finished one with every chunk checked against the file
# ID (a chunk changed on disk comes from a source instead); `get ID` of a
# file whose finished copy was deleted downloads it again. Users check a
# file with a standard tool: get, downloads and status show the SHA-256
# that sha256sum prints, and `sova-peer hash` the ID and the SHA-256.
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
sent() { peer alice status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["uploads"]["bytes_sent"])'; }

head -c $((3 * 1048576 + 777)) /dev/urandom >"$WORK/alice-file.bin"
touch -d '1 hour ago' "$WORK/alice-file.bin"
mkdir -p "$WORK/alice/share"
cp -p "$WORK/alice-file.bin" "$WORK/alice/share/report.bin"
ID=$(file_id "$WORK/alice-file.bin")
SHA=$(sha256sum "$WORK/alice-file.bin" | cut -d' ' -f1)
start_peer alice
start_peer bob
wait_for "$WORK/alice.log" "published 1 shared files"
wait_for "$WORK/bob.log" "attached to supernode"

# sova-peer hash: the ID (what search shows and get takes) and the SHA-256.
out=$("$PEER_BIN" hash "$WORK/alice-file.bin")
grep -q "^id      $ID  " <<<"$out" && grep -q "^sha256  $SHA  " <<<"$out" || fail "sova-peer hash: $out"
[ "$ID" != "$SHA" ] || fail "the file ID must not be the SHA-256"
"$PEER_BIN" hash --json "$WORK/alice-file.bin" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["id"] == sys.argv[1] and d["sha256"] == sys.argv[2] and d["size"] == 3 * 1048576 + 777, d' "$ID" "$SHA" ||
  fail "sova-peer hash --json"
peer bob search report | grep -q "^$ID " || fail "the search hit does not show the file ID"
ok "sova-peer hash prints the file ID (as search hits show it) and the SHA-256 (as sha256sum prints it)"

peer bob get "$ID" >"$WORK/get1.out" 2>&1 || fail "get: $(cat "$WORK/get1.out")"
cmp -s "$WORK/alice-file.bin" "$WORK/bob/dl/report.bin" || fail "bob's copy differs"
grep -q "^sha256 $SHA$" "$WORK/get1.out" || fail "get does not show the SHA-256: $(cat "$WORK/get1.out")"
peer bob downloads | grep -q "^    sha256 $SHA  $WORK/bob/dl/report.bin$" || fail "downloads: $(peer bob downloads)"
peer bob status | grep -q "^           sha256 $SHA$" || fail "status: $(peer bob status)"
ok "a finished download shows its SHA-256 (the one sha256sum prints) in get, downloads and status"

before=$(sent)
peer bob get "$ID" >"$WORK/get2.out" 2>&1 || fail "get again: $(cat "$WORK/get2.out")"
grep -q "^saved $WORK/bob/dl/report.bin .*via already here" "$WORK/get2.out" || fail "get again: $(cat "$WORK/get2.out")"
ok "get of a finished file whose copy is there answers at once with where it is"

peer bob get "$ID" --out "$WORK/copy1.bin" >"$WORK/get3.out" 2>&1 || fail "get --out: $(cat "$WORK/get3.out")"
cmp -s "$WORK/alice-file.bin" "$WORK/copy1.bin" || fail "the copy at --out differs"
cmp -s "$WORK/alice-file.bin" "$WORK/bob/dl/report.bin" || fail "the first copy was changed"
grep -q "copying it to $WORK/copy1.bin, every chunk checked" "$WORK/bob.log" || fail "no copy in the log"
[ "$(sent)" = "$before" ] || fail "the copy was downloaded again (alice sent $(( $(sent) - before )) bytes)"
ok "get --out NEW of a finished file puts it at NEW, copied from the finished one (not downloaded again)"

# The finished copy (now copy1.bin, the latest place) is changed on disk:
# the copy checks each chunk, and the changed one comes from alice.
# The byte's complement: a fixed byte would change nothing once in 256 runs.
flip_byte() { # FILE OFFSET
  local b
  b=$(od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' ')
  printf "\\x$(printf %02x $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
flip_byte "$WORK/copy1.bin" $((1048576 + 10))
cmp -s "$WORK/copy1.bin" "$WORK/alice-file.bin" && fail "copy1.bin did not change"
before=$(sent)
peer bob get "$ID" --out "$WORK/copy2.bin" >"$WORK/get4.out" 2>&1 || fail "get --out: $(cat "$WORK/get4.out")"
cmp -s "$WORK/alice-file.bin" "$WORK/copy2.bin" || fail "the copy of a changed file differs"
wait_for "$WORK/bob.log" "the finished copy $WORK/copy1.bin changed since it was downloaded: the rest comes from sources"
n=$(( $(sent) - before ))
[ "$n" -ge 1048576 ] && [ "$n" -lt $((3 * 1048576 + 777)) ] || fail "alice sent $n bytes: not only what changed and after"
ok "a finished copy changed on disk is not copied as is: the chunk that does not match the ID (and those after it) come from alice"

rm "$WORK/copy2.bin"
peer bob get "$ID" >"$WORK/get5.out" 2>&1 || fail "get after delete: $(cat "$WORK/get5.out")"
cmp -s "$WORK/alice-file.bin" "$WORK/copy2.bin" || fail "the file fetched again differs"
grep -q "the finished file $WORK/copy2.bin is gone: downloading it again" "$WORK/bob.log" || fail "no line about the deleted file"
ok "get of a file whose finished copy was deleted downloads it again (to where it was)"

stop bob
stop alice
stop sn
done_ok
