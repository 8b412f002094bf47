#!/usr/bin/env bash
# Transfer control (docs/TRANSFERS.md, "Queue, pause, cancel"): pause and
# resume keep the verified chunks (resume continues, it does not restart);
# cancel deletes the partial data (part file and state rows); remove
# forgets a finished or failed download (--delete-data: its file too); a
# queue with max-active-downloads 1 runs downloads one at a time, the
# highest priority first, and a reload changes the limit; Ctrl-C on a
# foreground get cancels its download; get --background returns at once;
# bad and unknown IDs are refused by every command, which then changes
# nothing. And the re-get regression: a finished file deleted by hand is
# downloaded again, also after a daemon restart, and get --out NEW puts
# it at NEW.
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
# field NAME ID KEY: a field of download ID in `downloads --json` ("" if none).
field() {
  peer "$1" downloads --json | python3 -c '
import json, sys
for d in json.load(sys.stdin)["downloads"]:
    if d.get("id") == sys.argv[1]:
        v = d.get(sys.argv[2], "")
        print("" if v is None else v)' "$2" "$3"
}
have_at_least() { [ "$(field bob "$1" chunks_have)" -ge "$2" ] 2>/dev/null; }
state_is() { [ "$(field bob "$1" state)" = "$2" ]; }
listed() { peer bob downloads --json | grep -q "\"id\": \"$1\""; }
part() { echo "$WORK/bob/dl/.sova-partial/$1.part"; }

# Files of alice's, old enough that the share cache trusts them.
mkfile() { # NAME MIB
  head -c $(($2 * 1048576 + 333)) /dev/urandom >"$WORK/alice/share/$1"
  touch -d '1 hour ago' "$WORK/alice/share/$1"
}
mkdir -p "$WORK/alice/share"
mkfile big.bin 16
mkfile a.bin 2
mkfile b.bin 2
mkfile c.bin 2
mkfile d.bin 2
mkfile small.bin 1
for f in big a b c d small; do
  printf -v "ID_$f" '%s' "$(file_id "$WORK/alice/share/$f.bin")"
done
# alice uploads at 3 MB/s, so a 16 MiB download takes seconds: long enough
# to pause, cancel and interrupt it midway. bob asks 256 KiB chunks.
start_peer alice --upload-limit-kbps 3000
# bob's queue limit is in a config file, so a reload (SIGHUP) can change it.
printf '[peer]\nmax-active-downloads = 1\n' >"$WORK/bob.conf"
BOB=(--download-chunk-kib 256 --config "$WORK/bob.conf")
start_peer bob "${BOB[@]}"
wait_for "$WORK/alice.log" "published 6 shared files"
wait_for "$WORK/bob.log" "attached to supernode"
peer bob search bin --max 20 >/dev/null # the hits give the names and sources

# ---- bad and unknown IDs: a specific error, a non-zero exit, nothing changed ----
BAD=zz$ID_big
UNKNOWN=7$(printf '%063d' 0)
for cmd in pause resume cancel remove get; do
  set +e
  out=$(peer bob "$cmd" "${BAD:0:10}" 2>&1); rc=$?
  set -e
  [ $rc -eq 2 ] && grep -q "is not a file ID: field \"id\" must be 64 hex characters, got 10" <<<"$out" ||
    fail "$cmd of a short ID: rc=$rc out=$out"
  set +e
  out=$(peer bob "$cmd" "${BAD:0:64}" 2>&1); rc=$?
  set -e
  [ $rc -eq 2 ] && grep -q "is not a file ID: field \"id\" has a character that is not hex at position 1" <<<"$out" ||
    fail "$cmd of a non-hex ID: rc=$rc out=$out"
done
set +e
out=$(peer bob priority "$ID_big" urgent 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && grep -q "the priority is high, normal or low, not \"urgent\"" <<<"$out" || fail "priority urgent: rc=$rc out=$out"
for cmd in pause resume cancel remove; do
  set +e
  out=$(peer bob "$cmd" "$UNKNOWN" 2>&1); rc=$?
  set -e
  [ $rc -eq 1 ] && grep -q "no download with ID $UNKNOWN (see \`sova-peer downloads\`)" <<<"$out" || fail "$cmd of an unknown download: rc=$rc out=$out"
done
set +e
out=$(peer bob priority "$UNKNOWN" high 2>&1); rc=$?
set -e
[ $rc -eq 1 ] && grep -q "no download with ID" <<<"$out" || fail "priority of an unknown download: rc=$rc out=$out"
[ "$(peer bob downloads --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["downloads"]))')" = 0 ] ||
  fail "a refused command left a download: $(peer bob downloads)"
ok "a malformed ID (exit 2, says what is wrong) and an unknown download (exit 1, says so) change nothing, for every command"

# ---- pause and resume keep the verified chunks ----
peer bob get "$ID_big" --background >"$WORK/bg.out" 2>&1 || fail "get --background: $(cat "$WORK/bg.out")"
grep -q "^big.bin: running" "$WORK/bg.out" || fail "get --background: $(cat "$WORK/bg.out")"
ok "get --background returns at once, once the daemon accepted the download (running)"
wait_until 30 "8 chunks of big.bin" have_at_least "$ID_big" 8

# ---- peers: the sources of each download, the peers connected to us ----
ALICE=$(peer alice status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
BOBID=$(peer bob status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
peer bob peers >"$WORK/peers.out" || fail "peers: $(cat "$WORK/peers.out")"
grep -Eq "^${ALICE:0:16}  download outgoing open       127\.0\.0\.1:[0-9]+ direct, .*/s, .* credit .*  big\.bin$" "$WORK/peers.out" ||
  fail "bob's peers: $(cat "$WORK/peers.out")"
peer bob peers --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["peers"]
src = [p for p in peers if p["id"] == sys.argv[1]]
assert len(src) == 1, peers
p = src[0]
assert p["direction"] == "download" and p["connection"] == "outgoing" and p["path"] == "direct", p
assert p["address"].startswith("127.0.0.1:") and p["bytes"] > 0 and p["state"] == "open", p
assert p["download"]["id"] == sys.argv[2] and p["download"]["name"] == "big.bin", p
for k in ("rate_bps", "credit"):
    assert isinstance(p[k], int), p' "$ALICE" "$ID_big" || fail "bob's peers --json: $(peer bob peers --json)"
peer alice peers --json | python3 -c '
import json, sys
peers = json.load(sys.stdin)["peers"]
up = [p for p in peers if p["id"] == sys.argv[1]]
assert len(up) == 1, peers
p = up[0]
assert p["direction"] == "upload" and p["connection"] == "incoming" and p["path"] == "direct", p
assert p["address"].startswith("127.0.0.1:") and p["bytes"] > 0, p' "$BOBID" || fail "alice's peers --json: $(peer alice peers --json)"
ok "peers lists a download's source (direct, outgoing, address, rate, bytes, credit, its file) and, on the source, the peer it uploads to"

peer bob pause "$ID_big" >"$WORK/pause.out" || fail "pause: $(cat "$WORK/pause.out")"
grep -q "^big.bin: paused" "$WORK/pause.out" || fail "pause said: $(cat "$WORK/pause.out")"
kept=$(field bob "$ID_big" chunks_have)
total=$(field bob "$ID_big" chunks)
[ -f "$(part "$ID_big")" ] || fail "the part file is gone after pause"
sleep 1.5 # on purpose: time passes while paused, and nothing may change
[ "$(field bob "$ID_big" chunks_have)" = "$kept" ] && state_is "$ID_big" paused ||
  fail "a paused download moved: $(field bob "$ID_big" chunks_have) vs $kept"
ok "pause stops the download after $kept of $total chunks; they stay verified, the part file stays"

# A paused download stays paused across a restart of the daemon.
stop bob
start_peer bob "${BOB[@]}"
wait_for_n "$WORK/bob.log" "attached to supernode" 2
wait_for "$WORK/bob.log" "resuming big.bin, $kept of $total chunks already verified \(paused\)"
state_is "$ID_big" paused || fail "not paused after a restart: $(field bob "$ID_big" state)"
ok "a paused download is still paused after a daemon restart"

peer bob resume "$ID_big" >"$WORK/resume.out" || fail "resume: $(cat "$WORK/resume.out")"
grep -q "^big.bin: running" "$WORK/resume.out" || fail "resume said: $(cat "$WORK/resume.out")"
wait_for "$WORK/bob.log" "$(cut -c1-16 <<<"$ID_big"): running \($kept of $total chunks verified\)"
peer bob get "$ID_big" >"$WORK/big.out" 2>&1 || fail "get after resume: $(cat "$WORK/big.out")"
cmp -s "$WORK/alice/share/big.bin" "$WORK/bob/dl/big.bin" || fail "big.bin differs after pause and resume"
fetched=$(grep -Eo "$(cut -c1-16 <<<"$ID_big"): complete.*\(sha256 [0-9a-f]+; [0-9]+ chunks fetched" "$WORK/bob.log" |
  grep -Eo '[0-9]+ chunks fetched' | cut -d' ' -f1)
[ "$fetched" -le $((total - kept)) ] || fail "resume fetched $fetched chunks: more than the $((total - kept)) missing"
ok "resume continues from the $kept verified chunks ($fetched fetched after it, of $total); the file is byte-identical"

# ---- cancel deletes the partial data ----
peer bob get "$ID_a" >/dev/null 2>&1 || fail "get a"
peer bob remove "$ID_big" --delete-data >/dev/null || fail "remove big"
peer bob get "$ID_big" --background >/dev/null || fail "get big again"
wait_until 30 "4 chunks of big.bin" have_at_least "$ID_big" 4
[ -f "$(part "$ID_big")" ] || fail "no part file while downloading"
peer bob cancel "$ID_big" >"$WORK/cancel.out" || fail "cancel: $(cat "$WORK/cancel.out")"
grep -q "^cancelled $ID_big: its partial data is deleted" "$WORK/cancel.out" || fail "cancel said: $(cat "$WORK/cancel.out")"
[ ! -e "$(part "$ID_big")" ] || fail "the part file is still there after cancel"
listed "$ID_big" && fail "the download is still listed after cancel: $(peer bob downloads)"
python3 -c 'import sqlite3,sys; db = sqlite3.connect(sys.argv[1]); n = db.execute("SELECT count(*) FROM downloads WHERE id = ?", (bytes.fromhex(sys.argv[2]),)).fetchone()[0]; sys.exit(n)' \
  "$WORK/bob/state/peer.db" "$ID_big" || fail "the state rows of big.bin are still in peer.db"
set +e
out=$(peer bob cancel "$ID_a" 2>&1); rc=$?
set -e
[ $rc -eq 1 ] && grep -q "is complete: nothing to cancel" <<<"$out" || fail "cancel of a complete one: rc=$rc out=$out"
ok "cancel stops a running download and deletes its part file and its state rows; a complete one is refused"

# ---- remove forgets; --delete-data deletes the file too ----
set +e
peer bob get "$ID_big" --background >/dev/null
out=$(peer bob remove "$ID_big" 2>&1); rc=$?
set -e
[ $rc -eq 1 ] && grep -q "is running: \`sova-peer cancel\` stops it" <<<"$out" || fail "remove of a running one: rc=$rc out=$out"
peer bob cancel "$ID_big" >/dev/null || fail "cancel big"
peer bob remove "$ID_a" >"$WORK/remove.out" || fail "remove: $(cat "$WORK/remove.out")"
grep -q "^removed $ID_a from the downloads" "$WORK/remove.out" || fail "remove said: $(cat "$WORK/remove.out")"
listed "$ID_a" && fail "a.bin still listed after remove"
cmp -s "$WORK/alice/share/a.bin" "$WORK/bob/dl/a.bin" || fail "remove without --delete-data touched the file"
peer bob get "$ID_small" >/dev/null 2>&1 || fail "get small"
peer bob remove "$ID_small" --delete-data >"$WORK/remove.out" || fail "remove --delete-data: $(cat "$WORK/remove.out")"
grep -q "^deleted $WORK/bob/dl/small.bin" "$WORK/remove.out" || fail "remove --delete-data said: $(cat "$WORK/remove.out")"
[ ! -e "$WORK/bob/dl/small.bin" ] || fail "small.bin is still there after remove --delete-data"
listed "$ID_small" && fail "small.bin still listed after remove --delete-data"
ok "remove forgets a finished download and leaves its file; --delete-data deletes the file too; a running one is refused"

# ---- the queue: max-active-downloads 1, priorities ----
rm -f "$WORK/bob/dl/a.bin"
peer bob get "$ID_big" --background >/dev/null || fail "get big (queue head)"
peer bob get "$ID_a" --background --priority low >"$WORK/qa.out" || fail "get a"
peer bob get "$ID_b" --background >"$WORK/qb.out" || fail "get b"
peer bob get "$ID_c" --background --priority high >"$WORK/qc.out" || fail "get c"
peer bob get "$ID_d" --background --priority low >"$WORK/qd.out" || fail "get d"
grep -q "^a.bin: queued (queue position 1), priority low" "$WORK/qa.out" || fail "a: $(cat "$WORK/qa.out")"
grep -q "^c.bin: queued (queue position 1), priority high" "$WORK/qc.out" || fail "c: $(cat "$WORK/qc.out")"
[ "$(field bob "$ID_c" queue_position)" = 1 ] && [ "$(field bob "$ID_b" queue_position)" = 2 ] &&
  [ "$(field bob "$ID_a" queue_position)" = 3 ] && [ "$(field bob "$ID_d" queue_position)" = 4 ] ||
  fail "queue: $(peer bob downloads)"
peer bob downloads | grep -q "^$ID_c  queued .*c.bin  (queue position 1)  priority high" || fail "downloads: $(peer bob downloads)"
peer bob priority "$ID_d" high >"$WORK/prio.out" || fail "priority: $(cat "$WORK/prio.out")"
grep -q "^d.bin: queued (queue position 2), priority high" "$WORK/prio.out" || fail "priority said: $(cat "$WORK/prio.out")"
ok "with max-active-downloads 1 the others wait: high first, then normal, then low, the oldest first; priority moves one"
peer bob get "$ID_a" >"$WORK/a.out" 2>&1 || fail "get a (following): $(cat "$WORK/a.out")"
order=$(grep -Eo "[0-9a-f]{16}: .* leaves the queue" "$WORK/bob.log" | tail -n 5 | cut -c1-16 | tr '\n' ' ')
want="$(cut -c1-16 <<<"$ID_big") $(cut -c1-16 <<<"$ID_c") $(cut -c1-16 <<<"$ID_d") $(cut -c1-16 <<<"$ID_b") $(cut -c1-16 <<<"$ID_a") "
[ "$order" = "$want" ] || fail "started in the order $order, wanted $want"
grep -q "^saved $WORK/bob/dl/a.bin" "$WORK/a.out" || fail "a: $(cat "$WORK/a.out")"
for f in big a b c d; do cmp -s "$WORK/alice/share/$f.bin" "$WORK/bob/dl/$f.bin" || fail "$f.bin differs"; done
ok "the queue ran one at a time, in the order big, c (high), d (made high), b, a (low); a get waiting in the queue followed it to the end"

# A reload raises the limit: queued downloads start at once.
for f in big a b; do peer bob remove "$(eval echo "\$ID_$f")" --delete-data >/dev/null || fail "remove $f"; done
for f in big a b; do peer bob get "$(eval echo "\$ID_$f")" --background >/dev/null || fail "get $f"; done
state_is "$ID_a" queued && state_is "$ID_b" queued || fail "not queued: $(peer bob downloads)"
sed -i 's/max-active-downloads = 1/max-active-downloads = 3/' "$WORK/bob.conf"
kill -HUP "$PID_bob"
wait_for "$WORK/bob.log" "reload: max-active-downloads 1 -> 3"
wait_for_n "$WORK/bob.log" "leaves the queue \([0-9] of 3 running\)" 2
peer bob get "$ID_big" >/dev/null 2>&1 || fail "get big after the reload"
ok "a reload of max-active-downloads (1 -> 3) starts the queued downloads at once"

# ---- Ctrl-C on a foreground get cancels its download ----
peer bob remove "$ID_big" --delete-data >/dev/null || fail "remove big"
"$PEER_BIN" --state-dir "$WORK/bob/state" get "$ID_big" >"$WORK/int.out" 2>&1 &
GET=$! # the CLI itself (not a subshell), as a terminal's Ctrl-C reaches it
wait_until 30 "4 chunks of big.bin" have_at_least "$ID_big" 4
kill -INT $GET
set +e
wait $GET; rc=$?
set -e
[ $rc -eq 130 ] && grep -q "cancelled: its partial data is deleted" "$WORK/int.out" || fail "Ctrl-C: rc=$rc out=$(cat "$WORK/int.out")"
wait_for "$WORK/bob.log" "cancelled; big.bin and its partial data deleted"
[ ! -e "$WORK/bob/dl/big.bin" ] && [ ! -e "$(part "$ID_big")" ] || fail "an interrupted get left data behind"
listed "$ID_big" && fail "the interrupted download is still listed"
ok "Ctrl-C on a foreground get cancels the download (exit 130) and deletes its partial data"

# ---- peers through a relay: which supernode, at which address ----
start_peer carol --ways relay --download-chunk-kib 256
wait_for "$WORK/carol.log" "attached to supernode"
peer carol search big >/dev/null
peer carol get "$ID_big" --background >/dev/null || fail "carol's get"
wait_until 30 "2 chunks of big.bin at carol" bash -c "$PEER_BIN --state-dir $WORK/carol/state downloads --json |
  python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)[\"downloads\"][0][\"chunks_have\"] >= 2 else 1)'"
peer carol peers >"$WORK/carol-peers.out" || fail "carol's peers"
grep -Eq "^${ALICE:0:16}  download outgoing open       relay via [a-z0-9]{16} at 127\.0\.0\.1:$PORT_sn, .*  big\.bin$" "$WORK/carol-peers.out" ||
  fail "carol's peers: $(cat "$WORK/carol-peers.out")"
CAROL=$(peer carol status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
peer alice peers --json | python3 -c '
import json, sys
up = [p for p in json.load(sys.stdin)["peers"] if p["id"] == sys.argv[1]]
assert len(up) == 1 and up[0]["path"] == "relay" and up[0]["address"] is None, up
assert up[0]["relay"]["address"] == "127.0.0.1:" + sys.argv[2], up' "$CAROL" "$PORT_sn" ||
  fail "alice's peers: $(peer alice peers --json)"
peer carol cancel "$ID_big" >/dev/null || fail "carol's cancel"
stop carol
ok "peers shows a relayed source and a relayed downloader: path relay, through which supernode at which address"

# ---- the re-get regression: a finished file deleted by hand ----
peer bob get "$ID_small" >/dev/null 2>&1 || fail "get small"
rm "$WORK/bob/dl/small.bin"
peer bob get "$ID_small" >"$WORK/reget.out" 2>&1 || fail "get after rm: $(cat "$WORK/reget.out")"
cmp -s "$WORK/alice/share/small.bin" "$WORK/bob/dl/small.bin" || fail "get after rm said $(cat "$WORK/reget.out") but wrote no file"
rm "$WORK/bob/dl/small.bin"
stop bob
# What a crash between cancel's deleting the rows and the part file would
# leave: a part file no download needs. The next start deletes it.
head -c 4096 /dev/urandom >"$(part "$UNKNOWN")"
start_peer bob "${BOB[@]}"
wait_for_n "$WORK/bob.log" "attached to supernode" 3
grep -q "deleted $(part "$UNKNOWN"): no download needs it (no such download)" "$WORK/bob.log" ||
  fail "the orphan part file was not deleted at start"
[ ! -e "$(part "$UNKNOWN")" ] || fail "the orphan part file is still there"
peer bob get "$ID_small" >"$WORK/reget2.out" 2>&1 || fail "get after rm and a restart: $(cat "$WORK/reget2.out")"
cmp -s "$WORK/alice/share/small.bin" "$WORK/bob/dl/small.bin" || fail "get after rm and a restart wrote no file"
[ -z "$(ls -A "$WORK/bob/dl/.sova-partial")" ] || fail "part files left: $(ls -l "$WORK/bob/dl/.sova-partial")"
peer bob get "$ID_small" --out "$WORK/small-new.bin" >"$WORK/reget3.out" 2>&1 || fail "get --out: $(cat "$WORK/reget3.out")"
cmp -s "$WORK/alice/share/small.bin" "$WORK/small-new.bin" || fail "get --out NEW of a finished file: no copy at NEW"
ok "a finished file deleted by hand is downloaded again by get (also after a restart, no part file left); get --out NEW puts it at NEW; a part file no download needs is deleted at start"

stop bob
stop alice
stop sn
done_ok
