#!/usr/bin/env bash
# demo.sh BUILD_DIR - the local demo overlay on loopback (README's main job).
#
# Makes a throw-away federation root and supernode certificate, starts one
# supernode and three peers on 127.0.0.1 (alice shares a few files), bob
# searches and downloads one, prints what happened, and stops everything. Nothing leaves the machine; everything is removed at the
# end (set SOVA_DEMO_KEEP=1 to keep the directory).
set -euo pipefail
build=${1:?usage: demo.sh BUILD_DIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sn_bin=$build/supernode/sova-supernode
peer_bin=$build/ordinary/sova-peer
work=$(mktemp -d /tmp/sova-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ "${SOVA_DEMO_KEEP:-0}" = 1 ]; then echo "(kept $work)"; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

wait_for() { # FILE REGEX
  for _ in $(seq 200); do grep -Eq -- "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "demo: timed out waiting for /$2/ in $1" >&2; tail -n 20 "$1" >&2; exit 1
}
say() { printf '\n== %s\n' "$*"; }

say "1. A federation root and one supernode certificate (deploy/sova-federation)"
"$src/deploy/sova-federation" init "$work/fed" >/dev/null
"$src/deploy/sova-federation" issue "$work/fed" sn1 >/dev/null
openssl verify -CAfile "$work/fed/root.crt" "$work/fed/sn1.crt"
echo "supernode ID: $("$src/deploy/sova-federation" id "$work/fed/sn1.crt")"

say "2. Start the supernode on 127.0.0.1 (any free port)"
"$sn_bin" --listen 127.0.0.1:0 --cert "$work/fed/sn1.crt" --key "$work/fed/sn1.key" \
  --federation-ca "$work/fed/root.crt" --state-dir "$work/sn1" 2>"$work/sn1.log" &
pids+=($!)
wait_for "$work/sn1.log" "listening on"
port=$(grep -Eo "listening on 127\.0\.0\.1:[0-9]+" "$work/sn1.log" | sed 's/.*://')
cat "$work/sn1.log"

say "3. Three peers attach over TLS 1.3; alice shares a few files"
mkdir -p "$work/alice/share/music" "$work/bob/share" "$work/carol/share"
head -c 20000000 /dev/urandom >"$work/alice/share/Holiday_Video-2026.mp4"
printf 'Sova demo\n' >"$work/alice/share/README-holiday.txt"
printf 'la la la\n' >"$work/alice/share/music/Holiday Song (Live).mp3"
for p in alice bob carol; do
  "$peer_bin" run --state-dir "$work/$p/state" --bootstrap "127.0.0.1:$port" \
    --federation-ca "$work/fed/root.crt" --listen 127.0.0.1:0 --share "$work/$p/share" \
    --downloads "$work/$p/downloads" 2>"$work/$p.log" &
  pids+=($!)
done
for p in alice bob carol; do
  wait_for "$work/$p.log" "attached to supernode"
  echo "$p: $("$peer_bin" --state-dir "$work/$p/state" id)"
done
wait_for "$work/alice.log" "published 3 shared files"
grep -h "published" "$work/alice.log"

say "4. bob searches for 'holiday video'"
"$peer_bin" --state-dir "$work/bob/state" search holiday video | tee "$work/hits"
hash=$(cut -d' ' -f1 "$work/hits" | head -1)

say "5. bob downloads it (direct TLS to alice, every chunk verified)"
"$peer_bin" --state-dir "$work/bob/state" get "$hash"
cmp "$work/alice/share/Holiday_Video-2026.mp4" "$work/bob/downloads/Holiday_Video-2026.mp4"
echo "byte-identical: yes (cmp)"

say "6. What the daemons said"
"$peer_bin" --state-dir "$work/bob/state" status
echo
"$sn_bin" status --control "$work/sn1/control.sock"
echo
grep -h "fetch" "$work/bob.log" | sed 's/^[^ ]* //'

say "7. Stop everything (SIGTERM)"
for p in "${pids[@]}"; do kill -TERM "$p"; wait "$p" || true; done
pids=()
echo "demo finished: 1 supernode, 3 peers; search and a verified 20 MB download over TLS 1.3"
