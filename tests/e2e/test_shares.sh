#!/usr/bin/env bash
# Live shares (issue 14): a file dropped into a share folder is found by
# another peer within 2 s and gone as fast when removed (inotify, not the
# periodic rescan: it is set to an hour here); share add/remove/list, live
# and after a restart, with their errors; .sovaignore; a share folder that
# disappears and comes back; the completion hook; status reasons in words
# (a missing folder, a full disk, a supernode that refuses us).
# tsan: yes (the share scanner thread, replaced at each share add/remove, with inotify)
source "$(dirname "$0")/lib.sh"
make_federation
start_supernode sn --keepalive-s 1

# start_peer NAME [ARGS...]: a peer with NAME/share as its --share folder.
start_peer() {
  local name=$1; shift
  mkdir -p "$WORK/$name/share" "$WORK/$name/dl"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "127.0.0.1:$PORT_sn" \
    --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/$name/share" \
    --downloads "$WORK/$name/dl" --rescan-interval-s 3600 "$@"
}
peer() { local name=$1; shift; "$PEER_BIN" --state-dir "$WORK/$name/state" "$@"; }
now_ms() { date +%s%3N; }

# within_ms MS WHAT CMD...: CMD succeeds within MS milliseconds of now.
within_ms() {
  local ms=$1 what=$2; shift 2
  local start; start=$(now_ms)
  until "$@" >/dev/null 2>&1; do
    [ $(( $(now_ms) - start )) -lt $((ms * TIME_SCALE)) ] ||
      fail "$what: not within $ms ms"
    sleep 0.05
  done
  echo "# $what: $(( $(now_ms) - start )) ms"
}
found() { local out; out=$(peer bob search "$@" 2>/dev/null) && [ -n "$out" ]; }
not_found() { ! found "$@"; }

mkdir -p "$WORK/alice/share"
printf 'already here\n' >"$WORK/alice/share/already-here.txt"
start_peer alice
start_peer bob
wait_for "$WORK/alice.log" "attached to supernode"
wait_for "$WORK/bob.log" "attached to supernode"
wait_for "$WORK/alice.log" "published 1 shared files"

# ---- live: inotify ----------------------------------------------------------------
printf 'dropped in\n' >"$WORK/drop.tmp"
mv "$WORK/drop.tmp" "$WORK/alice/share/dropped-moved.txt"
within_ms 2000 "a file moved into the share is searchable from another peer" found dropped moved
printf 'written in place\n' >"$WORK/alice/share/written-in-place.txt"
within_ms 2000 "a file written in the share is searchable" found written place
mkdir -p "$WORK/alice/share/new/deeper"
printf 'deep\n' >"$WORK/alice/share/new/deeper/deep-file.txt"
within_ms 2000 "a file in a new subfolder is searchable" found deep file
printf 'deep2\n' >"$WORK/alice/share/new/deeper/second-deep.txt"
within_ms 2000 "a second file in that subfolder (watched now) is searchable" found second deep
rm "$WORK/alice/share/written-in-place.txt"
within_ms 2000 "a removed file is unpublished" not_found written place
mv "$WORK/alice/share/dropped-moved.txt" "$WORK/moved-out.txt"
within_ms 2000 "a file moved out is unpublished" not_found dropped moved
exec 3>"$WORK/alice/share/slowly-written.txt"
printf 'first half\n' >&3
sleep 1 # time passing is the point: nothing is published while the file is open
not_found slowly written || fail "a file still being written was published"
printf 'second half\n' >&3
exec 3>&-
within_ms 2000 "a file is published once it is closed" found slowly written
ok "live share: moved in, written, in a new subfolder: searchable within 2 s, a file being written once closed; removed or moved out: gone within 2 s"

# ---- share add / remove / list -------------------------------------------------------
mkdir -p "$WORK/extra/music" "$WORK/second"
printf 'extra song\n' >"$WORK/extra/music/extra-song.mp3"
printf 'second folder file\n' >"$WORK/second/second-folder-file.txt"
out=$(cd "$WORK" && peer alice share add extra) || fail "share add (relative path): $out"
grep -q "^$WORK/extra  " <<<"$out" || fail "share add should list the folder: $out"
within_ms 2000 "a file of an added folder is searchable" found extra song
peer alice share add "$WORK/second/" >/dev/null || fail "share add with a trailing /"
within_ms 2000 "the second added folder is searchable" found second folder
out=$(peer alice share list)
grep -q "^$WORK/alice/share  4 files, .*(--share)$" <<<"$out" &&
  grep -q "^$WORK/extra  1 files" <<<"$out" && grep -q "^$WORK/second  1 files" <<<"$out" ||
  fail "share list: $out"
peer alice share list --json | python3 -c '
import json, sys
f = {x["path"]: x for x in json.load(sys.stdin)["folders"]}
assert len(f) == 3, f
assert all(x["state"] == "shared" for x in f.values()), f
assert sorted(x["origin"] for x in f.values()) == ["added", "added", "config"], f' ||
  fail "share list --json"
printf 'after add\n' >"$WORK/extra/music/after-add-song.mp3"
within_ms 2000 "a file dropped into an added folder is searchable" found after add song
ok "share add (relative path, trailing /): searchable at once and watched; share list shows every folder"

# Bad input: a specific error, exit status 1, nothing changed.
before=$(peer alice share list)
expect_error() { # REGEX CMD...
  local regex=$1; shift
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ $rc -ne 0 ] || fail "$* should fail: $out"
  grep -Eq "$regex" <<<"$out" || fail "$* should say /$regex/: $out"
}
expect_error "no such folder: $WORK/nowhere" peer alice share add "$WORK/nowhere"
expect_error "is not a folder" peer alice share add "$WORK/alice/share/already-here.txt"
# An unreadable folder: root reads anything, so as root a peer of its own
# runs as nobody (setpriv) to be refused one.
mkdir -p "$WORK/locked"; chmod 000 "$WORK/locked"
if [ "$(id -u)" != 0 ]; then
  expect_error "cannot read the folder $WORK/locked: Permission denied" peer alice share add "$WORK/locked"
else
  chmod 711 "$WORK"
  mkdir -p "$WORK/gus/state" "$WORK/gus/dl" # not the default ~/Downloads: $HOME is root's
  cp "$WORK/fed/root.crt" "$WORK/gus/root.crt"
  chown -R 65534:65534 "$WORK/gus"
  chmod 700 "$WORK/gus/state"
  as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  start gus "${as_nobody[@]}" "$PEER_BIN" run --state-dir "$WORK/gus/state" \
    --bootstrap "127.0.0.1:$PORT_sn" --federation-ca "$WORK/gus/root.crt" --listen 127.0.0.1:0 \
    --downloads "$WORK/gus/dl"
  wait_for "$WORK/gus.log" "attached to supernode"
  expect_error "cannot read the folder $WORK/locked: Permission denied" \
    "${as_nobody[@]}" "$PEER_BIN" --state-dir "$WORK/gus/state" share add "$WORK/locked"
  stop gus
  chmod 700 "$WORK"
fi
chmod 755 "$WORK/locked"
expect_error "is shared already" peer alice share add "$WORK/extra"
expect_error "is inside the shared folder $WORK/extra" peer alice share add "$WORK/extra/music"
expect_error "holds the shared folder" peer alice share add "$WORK"
expect_error "is inside the peer's state directory .*identity key" peer alice share add "$WORK/alice/state"
expect_error "is not a shared folder" peer alice share remove "$WORK/locked"
expect_error "is not a shared folder" peer alice share remove "$WORK/nowhere"
expect_error "configuration's share folder" peer alice share remove "$WORK/alice/share"
expect_error "share add DIR" peer alice share frobnicate
[ "$(peer alice share list)" = "$before" ] || fail "a refused share command changed the folders"
ok "share add of a missing, a file, an unreadable$([ "$(id -u)" = 0 ] && echo ' (a peer run as nobody)'), a shared or overlapping folder, the state directory, share remove of an unknown or the configured folder: each a specific error, exit 1, nothing changed"

peer alice share remove "$WORK/second" >/dev/null || fail "share remove"
within_ms 2000 "the removed folder's files are unpublished" not_found second folder
found extra song || fail "the other added folder should stay shared"
ok "share remove: the folder's files are unpublished at once, the others stay"

# ---- .sovaignore ---------------------------------------------------------------------
mkdir -p "$WORK/ign/build" "$WORK/ign/sub/build" "$WORK/ign/private" "$WORK/ign/sub/private" \
  "$WORK/ign/drafts" "$WORK/ign/keep"
cat >"$WORK/ign/.sovaignore" <<'IGN'
# not shared:
*.tmp
/private
build/
drafts/*.doc

IGN
for f in a-ignored.tmp keep/b-ignored.tmp build/c-ignored-build.txt sub/build/d-ignored-build.txt \
  private/e-ignored-private.txt drafts/f-ignored-draft.doc keep/kept-one.txt \
  sub/private/kept-private-two.txt drafts/kept-draft-three.txt; do
  printf '%s\n' "$f" >"$WORK/ign/$f"
done
printf 'a file, not a dir\n' >"$WORK/ign/sub/build.txt"
peer alice share add "$WORK/ign" >/dev/null || fail "share add ign"
wait_until 10 "the kept files of a folder with a .sovaignore" found kept one
for w in "kept private two" "kept draft three" "build txt"; do
  found $w || fail "'$w' should be shared (.sovaignore does not match it)"
done
for w in "ignored"; do
  not_found $w || fail "an ignored file is shared: $(peer bob search $w)"
done
out=$(peer alice share list)
grep -q "^$WORK/ign  4 files, .*, 6 ignored (.sovaignore)$" <<<"$out" || fail "share list with ignores: $out"
printf 'kept-one.txt\n' >>"$WORK/ign/.sovaignore"
within_ms 2000 "an edit of .sovaignore takes effect" not_found kept one
ok ".sovaignore: *.tmp at any depth, /private anchored, build/ directories only, drafts/*.doc; an edit takes effect at once"

# ---- a folder that disappears and comes back ------------------------------------------
mkdir -p "$WORK/usb/music"
printf 'on the stick\n' >"$WORK/usb/music/usb-stick-song.mp3"
peer alice share add "$WORK/usb" >/dev/null || fail "share add usb"
wait_until 10 "the usb folder's file searchable" found usb stick
mv "$WORK/usb" "$WORK/usb-unplugged"
within_ms 2000 "a folder moved away: its files unpublished" not_found usb stick
wait_for "$WORK/alice.log" "share folder $WORK/usb is missing \(No such file or directory\)"
out=$(peer alice share list)
grep -q "^$WORK/usb  MISSING (No such file or directory): its files are not shared until it is back$" <<<"$out" ||
  fail "share list of a missing folder: $out"
out=$(peer alice status)
grep -q "^shares        .* published; a folder is missing$" <<<"$out" || fail "status: $out"
grep -q "folder      $WORK/usb is MISSING (No such file or directory): its files are not shared; bring it back, or stop sharing it with \`sova-peer share remove $WORK/usb\`" <<<"$out" ||
  fail "status of a missing folder: $out"
out=$(peer alice metrics)
grep -q "^sova_peer_share_folders_missing 1$" <<<"$out" || fail "metrics: a missing folder: $(grep share_ <<<"$out")"
mv "$WORK/usb-unplugged" "$WORK/usb"
within_ms 2000 "a folder that came back: its files published again" found usb stick
wait_for "$WORK/alice.log" "share folder $WORK/usb is back: 1 files"
rm -r "$WORK/usb"
within_ms 2000 "a folder deleted: its files unpublished" not_found usb stick
mkdir -p "$WORK/usb"
printf 'new stick\n' >"$WORK/usb/another-stick-song.mp3"
within_ms 2000 "a folder made again: its new file published" found another stick
ok "a share folder moved away or deleted: unpublished within 2 s, reported missing (log, share list, status); back: published again within 2 s"

# ---- the completion hook --------------------------------------------------------------
mkdir -p "$WORK/hookfiles"
for n in 1 2 3 4; do head -c $((100000 + n)) /dev/urandom >"$WORK/hookfiles/hook-file-$n.bin"; done
peer alice share add "$WORK/hookfiles" >/dev/null || fail "share add hookfiles"
wait_until 10 "the hook files searchable" found hook file
hook_id() { file_id "$WORK/hookfiles/hook-file-$1.bin"; }
cat >"$WORK/hook.sh" <<HOOK
#!/bin/sh
ls -l /proc/\$\$/fd | grep -c 'socket:' >"$WORK/hook.sockets"
env | grep '^SOVA_FILE_' | sort >"$WORK/hook.env.tmp" && mv "$WORK/hook.env.tmp" "$WORK/hook.env"
HOOK
chmod +x "$WORK/hook.sh"
start_peer carol --on-complete "$WORK/hook.sh" --on-complete-timeout-s 2
wait_for "$WORK/carol.log" "attached to supernode"
id1=$(hook_id 1)
peer carol get "$id1" >/dev/null || fail "carol get hook-file-1"
wait_until 10 "the hook's environment" test -s "$WORK/hook.env"
expected="SOVA_FILE_ID=$id1
SOVA_FILE_NAME=hook-file-1.bin
SOVA_FILE_PATH=$WORK/carol/dl/hook-file-1.bin
SOVA_FILE_SHA256=$(sha256sum "$WORK/hookfiles/hook-file-1.bin" | cut -d' ' -f1)
SOVA_FILE_SIZE=100001"
[ "$(cat "$WORK/hook.env")" = "$expected" ] ||
  fail "hook environment: $(cat "$WORK/hook.env"); expected $expected"
wait_for "$WORK/carol.log" "hook .*${id1:0:16}: on-complete hook finished \(exit status 0\)"
[ "$(cat "$WORK/hook.sockets")" = 0 ] || fail "the hook inherited the daemon's sockets"
ok "on-complete runs when a download completes with SOVA_FILE_PATH, _NAME, _ID, _SIZE (and _SHA256) in its environment, and none of the daemon's sockets"

printf '#!/bin/sh\nexit 3\n' >"$WORK/hook.sh"
id2=$(hook_id 2)
peer carol get "$id2" >/dev/null || fail "carol get hook-file-2"
wait_for "$WORK/carol.log" "hook .*${id2:0:16}: on-complete hook failed: exit status 3$"
rm "$WORK/hook.sh"
id3=$(hook_id 3)
peer carol get "$id3" >/dev/null || fail "carol get hook-file-3"
wait_for "$WORK/carol.log" "hook .*${id3:0:16}: on-complete hook failed: exit status 127 \(command not found\)"
printf '#!/bin/sh\nsleep 3217\n' >"$WORK/hook.sh"
chmod +x "$WORK/hook.sh"
id4=$(hook_id 4)
start=$(now_ms)
peer carol get "$id4" >/dev/null || fail "carol get hook-file-4"
[ $(( $(now_ms) - start )) -lt $((2000 * TIME_SCALE)) ] || fail "get waited for a hanging hook"
peer carol status >/dev/null || fail "the daemon does not answer while a hook hangs"
wait_for "$WORK/carol.log" "hook .*${id4:0:16}: on-complete hook still running after 2 s: killed"
pgrep -f "sleep 3217" >/dev/null && fail "the hanging hook's child survived"
out=$(peer carol metrics)
grep -q "^sova_peer_hooks_started_total 4$" <<<"$out" && grep -q "^sova_peer_hooks_failed_total 3$" <<<"$out" &&
  grep -q "^sova_peer_hooks_running 0$" <<<"$out" || fail "hook metrics: $(grep hooks <<<"$out")"
ok "a failing hook (exit 3), a missing one (127) and a hanging one (killed after on-complete-timeout-s, with what it started) are logged with the download's ID; the daemon never waits"

# ---- status in words: a full disk ------------------------------------------------------
# A small tmpfs as dave's downloads folder (root mounts it; without root this
# case cannot make a real ENOSPC and says it is skipped).
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$WORK/dave-dl" "$WORK/bigfiles"
  mount -t tmpfs -o size=3m tmpfs "$WORK/dave-dl"
  trap 'rc=$?; umount "$WORK/dave-dl" 2>/dev/null; (exit $rc); cleanup' EXIT
  head -c 8000000 /dev/urandom >"$WORK/bigfiles/big-disk-file.bin"
  peer alice share add "$WORK/bigfiles" >/dev/null || fail "share add bigfiles"
  big=$(file_id "$WORK/bigfiles/big-disk-file.bin")
  start_peer dave --downloads "$WORK/dave-dl"
  wait_for "$WORK/dave.log" "attached to supernode"
  wait_until 10 "the big file searchable" found big disk file
  peer dave get "$big" >"$WORK/dave-get.out" 2>"$WORK/dave-get.err" &
  get=$!
  wait_for "$WORK/dave.log" "No space left on device: waiting for disk space" 30
  wait_until 10 "get's progress says the disk is full" \
    grep -q "^waiting: disk full (cannot write .*: No space left on device): waiting for free space, trying again every 5 s; the [0-9]* verified chunks are kept$" "$WORK/dave-get.err"
  out=$(peer dave status)
  grep -q "^           waiting: disk full (cannot write .*No space left on device): waiting for free space" <<<"$out" ||
    fail "status should say the disk is full: $out"
  out=$(peer dave downloads)
  grep -q "^    waiting: disk full (cannot write .*No space left on device)" <<<"$out" ||
    fail "downloads should say the disk is full: $out"
  kill -0 "$get" || fail "the get gave up on a full disk: $(cat "$WORK/dave-get.err")"
  mount -o remount,size=64m "$WORK/dave-dl"
  wait "$get" || fail "the download did not complete once there was room: $(cat "$WORK/dave-get.err")"
  cmp -s "$WORK/bigfiles/big-disk-file.bin" "$WORK/dave-dl/big-disk-file.bin" || fail "the copy differs"
  out=$(peer dave status)
  ! grep -q "waiting:" <<<"$out" || fail "status still says waiting once done: $out"
  ok "disk full (a 3 MiB tmpfs): get's progress, status and downloads say so in words; the download waits and completes once there is room"
else
  echo "# skipped: the full-disk case needs root to mount a small tmpfs"
fi

# ---- status in words: a missing --share folder, a supernode that refuses us -----------
"$FED" issue "$WORK/fed" sn2 >/dev/null
start sn2 "$SN_BIN" --listen 127.0.0.1:0 --cert "$WORK/fed/sn2.crt" --key "$WORK/fed/sn2.key" \
  --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/sn2-state" --max-peers 1
wait_for "$WORK/sn2.log" "listening on 127\.0\.0\.1:[0-9]+"
PORT_sn2=$(grep -Eo "listening on 127\.0\.0\.1:[0-9]+" "$WORK/sn2.log" | head -1 | sed 's/.*://')
start frank "$PEER_BIN" run --state-dir "$WORK/frank/state" --bootstrap "127.0.0.1:$PORT_sn2" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0
wait_for "$WORK/frank.log" "attached to supernode"
# erin: sn2 is full (max-peers 1), and her --share folder does not exist.
start erin "$PEER_BIN" run --state-dir "$WORK/erin/state" --bootstrap "127.0.0.1:$PORT_sn2" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/erin-share-gone"
wait_for "$WORK/erin.log" "supernode 127.0.0.1:$PORT_sn2 refused us: overloaded"
out=$(peer erin status)
grep -q "^supernode     not attached: supernode 127.0.0.1:$PORT_sn2 refused us: overloaded (this supernode is full; try another); trying the supernodes it named and the others known$" <<<"$out" ||
  fail "status should give the supernode's reason: $out"
grep -q "^shares        nothing is shared: the share folder is missing$" <<<"$out" ||
  fail "status should not say '0 files' when the share folder is missing: $out"
grep -q "^  folder      $WORK/erin-share-gone is MISSING (No such file or directory): its files are not shared; bring it back, or stop sharing it" <<<"$out" ||
  fail "status should say the --share folder is missing: $out"
out=$(peer erin search anything 2>&1) && fail "search while refused should fail: $out"
grep -q "not attached to a supernode: supernode 127.0.0.1:$PORT_sn2 refused us: overloaded" <<<"$out" ||
  fail "search while refused should say why: $out"
ok "status in words: a supernode's refusal (its ERROR code and text, and what the peer does) instead of 'not attached (trying ...)'; a missing --share folder instead of '0 files'"
mkdir -p "$WORK/erin-share-gone"
printf 'erin was here\n' >"$WORK/erin-share-gone/erin-file.txt"
wait_until 5 "erin's folder back" sh -c "\"$PEER_BIN\" --state-dir \"$WORK/erin/state\" share list | grep -q '^$WORK/erin-share-gone  1 files'"
ok "a --share folder that did not exist at start is shared once it is made"

stop alice
start_peer alice
wait_for_n "$WORK/alice.log" "attached to supernode" 2
out=$(peer alice share list)
grep -q "^$WORK/extra  " <<<"$out" && ! grep -q "$WORK/second" <<<"$out" || fail "after a restart: $out"
wait_until 10 "the added folder's files searchable after a restart" found extra song
not_found second folder || fail "the removed folder is shared again after a restart"
ok "after a restart: the added folder is shared again, the removed one is not"

# The configuration's folder moved inside an added one: the added one waits,
# said so, and can still be forgotten.
stop alice
start alice "$PEER_BIN" run --state-dir "$WORK/alice/state" --bootstrap "127.0.0.1:$PORT_sn" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/extra/music" \
  --rescan-interval-s 3600
wait_for "$WORK/alice.log" "share folder $WORK/extra overlaps $WORK/extra/music: not shared"
out=$(peer alice share list)
[ "$(grep -c . <<<"$out")" -ge 1 ] && grep -q "^$WORK/extra/music  " <<<"$out" &&
  ! grep -q "^$WORK/extra  " <<<"$out" || fail "share list with an overlapping stored folder: $out"
peer alice share remove "$WORK/extra" >/dev/null || fail "an overlapping stored folder cannot be forgotten"
expect_error "is not a shared folder" peer alice share remove "$WORK/extra"
ok "an added folder that overlaps a changed --share folder is not shared, is logged, and can be forgotten"

done_ok
