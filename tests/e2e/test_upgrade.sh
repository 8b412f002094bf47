#!/usr/bin/env bash
# A state folder written by the sova-peer of schema 1 (files known by their
# SHA-256; tests/data/peer-v1.sql is the database of one, with a finished
# download and one in progress) is taken up by this one (docs/STATE.md,
# "Versioning and migrations"): the share is hashed again and published
# under file IDs, the old downloads are history (the one in progress failed,
# with the reason, its part file removed), nothing old is read as an ID;
# and a database of a newer schema is refused with a clear message.
# valgrind: yes
source "$(dirname "$0")/lib.sh"
make_federation
start_supernode sn

peer() { local name=$1; shift; "$PEER_BIN" --state-dir "$WORK/$name/state" "$@"; }
start_peer() { # NAME [ARGS...]
  local name=$1; shift
  mkdir -p "$WORK/$name/share" "$WORK/$name/dl"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "127.0.0.1:$PORT_sn" \
    --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/$name/share" \
    --downloads "$WORK/$name/dl" "$@"
}

# bob's state folder as the old sova-peer left it: its database, its
# finished small.bin, the part file of big.bin (keyed by its SHA-256).
OLD_BIG=d9085615fa3ae19aa811568529661a72a2422e4c11a4f9bac568ab0af4a9a722
OLD_SMALL=cf2320e108c948c805d4ade251fc457658eb028dfc9a97ddea174eb81dcdb33b
mkdir -m 700 -p "$WORK/bob/state"
mkdir -p "$WORK/bob/share" "$WORK/bob/dl/.sova-partial"
python3 - "$SOVA_SRC/tests/data/peer-v1.sql" "$WORK/bob/state/peer.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[2])
db.executescript(open(sys.argv[1]).read())
db.close()
EOF
truncate -s 33554432 "$WORK/bob/dl/.sova-partial/$OLD_BIG.part"
head -c 3000000 /dev/urandom >"$WORK/bob/dl/small.bin"
echo "hello from bob" >"$WORK/bob/share/bob.txt"
touch -d '1 hour ago' "$WORK/bob/share/bob.txt"
BOB_TXT=$(file_id "$WORK/bob/share/bob.txt")

start_peer bob
wait_for "$WORK/bob.log" "removed .*/$OLD_BIG\.part: a download of big\.bin made by an older Sova"
[ ! -e "$WORK/bob/dl/.sova-partial/$OLD_BIG.part" ] || fail "the old part file is still there"
[ -e "$WORK/bob/dl/small.bin" ] || fail "a finished file of the old version was removed"
wait_for "$WORK/bob.log" "share scanned: 1 files, 1 hashed"
wait_for "$WORK/bob.log" "published 1 shared files"
ok "bob's old state folder opens: the share is hashed again, the old part file removed, finished files kept"

peer bob downloads --json | python3 -c '
import json, sys
ds = json.load(sys.stdin)["downloads"]
assert len(ds) == 2, ds
by = {d["name"]: d for d in ds}
big, small = by["big.bin"], by["small.bin"]
for d in ds:
    assert d["legacy"] is True and "id" not in d, d
assert big["sha256"] == sys.argv[1] and big["state"] == "failed", big
assert big["error"] == "made by an older Sova: file IDs changed; search and get it again", big
assert small["sha256"] == sys.argv[2] and small["state"] == "complete" and "error" not in small, small' \
  "$OLD_BIG" "$OLD_SMALL" || fail "downloads --json: $(peer bob downloads --json)"
out=$(peer bob downloads)
grep -q "^$OLD_BIG  failed .*big\.bin  (sha256: made by an older Sova)$" <<<"$out" &&
  grep -q "^    last attempt failed: made by an older Sova: file IDs changed; search and get it again$" <<<"$out" ||
  fail "downloads: $out"
ok "the old downloads are history, by the SHA-256 they had: the one in progress failed with the reason, none read as a file ID"

# The old key is not an ID: a get of it is a get of an unknown ID.
set +e
out=$(peer bob get "$OLD_BIG" 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] && grep -q "no peer shares $OLD_BIG" <<<"$out" || fail "get of the old key: rc=$rc $out"
# Another peer finds bob's file under its file ID.
start_peer carol
wait_for "$WORK/carol.log" "attached to supernode"
peer carol search bob | grep -q "^$BOB_TXT " || fail "bob's file is not found by its ID: $(peer carol search bob)"
peer carol get "$BOB_TXT" >/dev/null || fail "carol cannot get bob's file"
cmp -s "$WORK/bob/share/bob.txt" "$WORK/carol/dl/bob.txt" || fail "carol's copy differs"
ok "an old SHA-256 key is not taken for an ID; bob's share is found and fetched by its new file ID"

stop bob
# A database from a newer sova-peer is refused, with the reason, untouched.
python3 -c 'import sqlite3,sys; db = sqlite3.connect(sys.argv[1]); db.execute("PRAGMA user_version = 9"); db.commit()' \
  "$WORK/bob/state/peer.db"
set +e
out=$(timeout $((20 * TIME_SCALE)) "$PEER_BIN" run --state-dir "$WORK/bob/state" --bootstrap "127.0.0.1:$PORT_sn" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] && grep -q "database schema version 9 is newer than this sova-peer understands (3)" <<<"$out" ||
  fail "a newer database: rc=$rc $out"
ok "a database of a newer schema is refused: the peer says so and exits 1"

stop carol
stop sn
done_ok
