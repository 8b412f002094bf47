#!/usr/bin/env bash
# The web UI (docs/UI.md) in a real browser: Debian's headless Chromium,
# driven by tests/ui/ui_test.mjs (puppeteer-core), against a supernode and
# two real peers. alice shares files, some with hostile names; bob serves
# the UI. The browser logs in with the link `sova-peer ui` prints, searches,
# downloads one file to 100 % (then compared here byte for byte), pauses
# and resumes a second, cancels a third, reads every page, and tries what
# an attacker would. Screenshots go to tests/ui-screenshots/ of the build.
# A browser that cannot start fails the test: it never skips.
source "$(dirname "$0")/lib.sh"
UI=$SOVA_SRC/tests/ui
[ -d "$UI/node_modules/puppeteer-core" ] ||
  fail "puppeteer-core is not installed in $UI/node_modules: run deploy/sova-dev test (it runs npm ci there)"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || fail "no browser at $CHROMIUM: deploy/sova-dev test installs Debian's chromium"
command -v node >/dev/null || fail "no node: deploy/sova-dev test installs nodejs"

make_federation
start_supernode sn
start_peer() { # NAME [ARGS...]
  local name=$1; shift
  mkdir -p "$WORK/$name/share" "$WORK/$name/dl"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "127.0.0.1:$PORT_sn" \
    --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --upnp no --share "$WORK/$name/share" \
    --downloads "$WORK/$name/dl" "$@"
}
peer() { local name=$1; shift; "$PEER_BIN" --state-dir "$WORK/$name/state" "$@"; }

WORD=sovauitest
S=$WORK/alice/share
mkdir -p "$S"
head -c 1500000 /dev/urandom >"$S/$WORD done.bin"
head -c 12000000 /dev/urandom >"$S/$WORD pause.bin"
head -c 12000000 /dev/urandom >"$S/$WORD cancel.bin"
# what a hostile sharer names its files: markup (names with control
# characters or bidirectional overrides the supernode refuses; the browser
# test names a download so itself)
printf 'x' >"$S/$WORD <img src=x onerror=window.__pwned=1>.bin"
printf 'y' >"$S/$WORD \"><svg onload=window.__pwned=2>.bin"
DONE=$(file_id "$S/$WORD done.bin")
PAUSE=$(file_id "$S/$WORD pause.bin")
CANCEL=$(file_id "$S/$WORD cancel.bin")
# alice uploads slowly enough for a pause and a cancel to land mid-way
start_peer alice --upload-limit-kbps 400
start_peer bob --api-listen 127.0.0.1:0
wait_for "$WORK/alice.log" "published 5 shared files" 60
wait_for "$WORK/bob.log" "attached to supernode" 60
wait_for "$WORK/bob.log" "web UI at http://127\.0\.0\.1:[0-9]+/"
PORT=$(grep -Eo "web UI at http://127\.0\.0\.1:[0-9]+" "$WORK/bob.log" | head -1 | sed 's/.*://')

# `sova-peer ui` prints the link (no browser here: no DISPLAY)
out=$(env -u DISPLAY -u WAYLAND_DISPLAY "$PEER_BIN" --state-dir "$WORK/bob/state" ui) || fail "ui: $out"
LINK=$(grep -Eo "http://127\.0\.0\.1:$PORT/login\?token=[0-9a-f]{64}" <<<"$out") ||
  fail "sova-peer ui printed no login link: $out"
grep -q "works once" <<<"$out" || fail "ui: $out"
json=$(peer bob ui --no-browser --json) || fail "ui --json: $json"
grep -q '"url"' <<<"$json" || fail "ui --json: $json"
out=$(peer alice ui 2>&1) && fail "alice (no api-listen) printed a link: $out"
grep -q "web UI is off: set api-listen" <<<"$out" || fail "ui without api-listen: $out"
ok "sova-peer ui prints a one-time login link to the UI (and says how to turn the UI on where it is off)"

SHOTS=$SOVA_BIN/tests/ui-screenshots
rm -rf "$SHOTS"
SOVA_UI_BASE="http://127.0.0.1:$PORT" SOVA_UI_LINK=$LINK SOVA_UI_SHOTS=$SHOTS SOVA_UI_WORD=$WORD \
  SOVA_UI_DONE=$DONE SOVA_UI_PAUSE=$PAUSE SOVA_UI_CANCEL=$CANCEL CHROMIUM=$CHROMIUM \
  NODE_PATH=$UI/node_modules timeout 600 node "$UI/ui_test.mjs" || fail "the browser test failed (above)"
cmp "$S/$WORD done.bin" "$WORK/bob/dl/$WORD done.bin" || fail "the file downloaded in the browser differs"
cmp "$S/$WORD pause.bin" "$WORK/bob/dl/$WORD pause.bin" || fail "the paused and resumed file differs"
! ls -A "$WORK/bob/dl" | grep -q "evil" || fail "the cancelled download left its file or part: $(ls -A "$WORK/bob/dl")"
for p in login search downloads downloads-paused downloads-360px downloads-dark shares status credit settings; do
  [ -s "$SHOTS/$p.png" ] || fail "no screenshot of $p in $SHOTS"
done
ok "the files the browser downloaded are byte-identical; the cancelled one left nothing; screenshots in $SHOTS"
done_ok
