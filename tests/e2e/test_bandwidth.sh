#!/usr/bin/env bash
# Bandwidth limits (docs/TRANSFERS.md, "Bandwidth"): a global download
# limit and a download's own limit hold what bob receives, the upload
# limit what alice sends; the alternative ("turtle") pair comes in by hand
# and on a schedule; limits change at run time; bad values are refused and
# change nothing. How close a limit holds over 10 s windows is measured by
# bench/bench_limits.sh, not here: these checks only bound what may pass
# from above, which a slow machine cannot break.
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
jq_() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
limits() { peer "$1" limits --json | jq_ "$2"; }
bytes_in() { peer bob downloads --json | jq_ '[x for x in d["downloads"] if x["id"] == "'"$ID"'"][0]["bytes_in"]'; }
now_ms() { date +%s%3N; }

mkdir -p "$WORK/alice/share"
head -c $((24 * 1048576)) /dev/urandom >"$WORK/alice/share/big.bin"
ID=$(file_id "$WORK/alice/share/big.bin")
start_peer alice
start_peer bob --download-limit-kbps 400
wait_for "$WORK/alice.log" "published 1 shared files"
wait_for "$WORK/bob.log" "attached to supernode"

# ---- what is set, and bad values ------------------------------------------------------
[ "$(limits bob 'd["limits"]["download_kbps"]')" = 400 ] || fail "limits: $(peer bob limits --json)"
[ "$(limits bob 'd["limits"]["in_force"]["download_kbps"]')" = 400 ] || fail "in force: $(peer bob limits --json)"
[ "$(limits bob 'd["limits"]["turtle"]')" = auto ] || fail "turtle: $(peer bob limits --json)"
peer bob limits | grep -q "^download  *400 kB/s$" || fail "limits: $(peer bob limits)"
peer bob status --json | jq_ 'd["limits"]["download_kbps"]' | grep -qx 400 || fail "status has no limits"
before=$(peer bob limits --json)
for bad in "--download -5" "--download 200000000" "--upload x" "--alt-upload 1.5"; do
  # shellcheck disable=SC2086
  if peer bob limits $bad >"$WORK/bad.out" 2>&1; then fail "limits $bad was accepted"; fi
  grep -q "kB/s from 0" "$WORK/bad.out" || fail "limits $bad: $(cat "$WORK/bad.out")"
done
if peer bob limits --turtle slow >"$WORK/bad.out" 2>&1; then fail "--turtle slow accepted"; fi
grep -q "turtle must be on, off or auto" "$WORK/bad.out" || fail "--turtle slow: $(cat "$WORK/bad.out")"
[ "$(peer bob limits --json)" = "$before" ] || fail "a refused change changed something"
if peer bob limit 1234 100 >"$WORK/bad.out" 2>&1; then fail "limit of a bad ID accepted"; fi
grep -q "64 hex characters" "$WORK/bad.out" || fail "limit 1234: $(cat "$WORK/bad.out")"
if peer bob limit "$ID" 100 >"$WORK/bad.out" 2>&1; then fail "limit of no download accepted"; fi
grep -q "no running download $ID" "$WORK/bad.out" || fail "limit of nothing: $(cat "$WORK/bad.out")"
if "$PEER_BIN" run --state-dir "$WORK/x" --alt-limits-schedule "mon-fri 9-17" >"$WORK/bad.out" 2>&1; then
  fail "a bad schedule was accepted"
fi
grep -q "alt-limits-schedule.*HH:MM-HH:MM" "$WORK/bad.out" || fail "bad schedule: $(cat "$WORK/bad.out")"
ok "limits shows what is set and in force (also in status); out-of-range values, an unknown turtle word, a bad ID, no such download and a bad schedule are refused, and change nothing"

# ---- the global download limit ---------------------------------------------------------
peer bob get "$ID" >"$WORK/get.out" 2>&1 &
GET=$!
has_bytes() { [ "$(bytes_in)" -gt 0 ]; }
wait_until 20 "bob to receive data" has_bytes
t0=$(now_ms); b0=$(bytes_in)
sleep 4
t1=$(now_ms); b1=$(bytes_in)
# At 400 kB/s: what the elapsed time allows, a burst (100 kB) and a frame in flight (256 KiB).
max=$(( (t1 - t0) * 400 + 100000 + 262144 ))
[ $((b1 - b0)) -le $max ] || fail "bob received $((b1 - b0)) bytes in $((t1 - t0)) ms under a 400 kB/s limit (at most $max)"
peer bob downloads | grep -q "held to the download limit\|%" || fail "downloads: $(peer bob downloads)"
ok "under a 400 kB/s download limit bob received $((b1 - b0)) bytes in $((t1 - t0)) ms (at most $max)"

# ---- a download's own limit, under a higher global one ------------------------------
peer bob limits --download 5000 >/dev/null || fail "limits --download 5000"
peer bob limit "$ID" 150 | grep -q "at most 150 kB/s" || fail "limit ID 150"
peer bob downloads | grep -q "limited to 150 kB/s" || fail "downloads: $(peer bob downloads)"
sleep 1
t0=$(now_ms); b0=$(bytes_in)
sleep 3
t1=$(now_ms); b1=$(bytes_in)
max=$(( (t1 - t0) * 150 + 65536 + 262144 ))
[ $((b1 - b0)) -le $max ] || fail "bob received $((b1 - b0)) bytes in $((t1 - t0)) ms under its own 150 kB/s (at most $max)"
ok "a download's own limit of 150 kB/s holds under a global 5000 kB/s: $((b1 - b0)) bytes in $((t1 - t0)) ms"

# ---- the upload limit, at the source ------------------------------------------------
peer bob limit "$ID" 0 | grep -q "no limit of its own" || fail "limit ID 0"
peer bob limits --download 0 >/dev/null
peer alice limits --upload 300 >/dev/null || fail "alice limits --upload 300"
sent() { peer alice status --json | jq_ 'd["uploads"]["bytes_sent"]'; }
sleep 1
t0=$(now_ms); s0=$(sent)
sleep 3
t1=$(now_ms); s1=$(sent)
max=$(( (t1 - t0) * 300 + 75000 + 262144 ))
[ $((s1 - s0)) -le $max ] || fail "alice sent $((s1 - s0)) bytes in $((t1 - t0)) ms under a 300 kB/s upload limit (at most $max)"
ok "alice's upload limit of 300 kB/s, set at run time, holds: $((s1 - s0)) bytes in $((t1 - t0)) ms"

# ---- turtle by hand, then lifted: the download completes, byte-identical ---------------
peer alice limits --turtle on --alt-upload 100 >/dev/null
[ "$(limits alice 'd["limits"]["in_force"]["upload_kbps"]')" = 100 ] || fail "turtle on: $(peer alice limits --json)"
[ "$(limits alice 'd["limits"]["turtle_active"]')" = True ] || fail "turtle on: $(peer alice limits --json)"
wait_for "$WORK/alice.log" "alternative limits on \(by hand\): upload 100 kB/s"
peer alice limits --turtle off --upload 0 >/dev/null
[ "$(limits alice 'd["limits"]["in_force"]["upload_kbps"]')" = 0 ] || fail "turtle off: $(peer alice limits --json)"
wait $GET || fail "get: $(cat "$WORK/get.out")"
cmp -s "$WORK/alice/share/big.bin" "$WORK/bob/dl/big.bin" || fail "bob's copy differs"
ok "turtle on puts the alternative pair in force, off the usual one; with the limits lifted the download completes, byte-identical"

# ---- turtle on a schedule ----------------------------------------------------------
# A window around now (crossing midnight if need be), and one that is not now.
win() { date -d "$1" +%H:%M; }
start_peer carol --alt-limits-schedule "daily $(win '-1 hour')-$(win '+1 hour')" --alt-download-limit-kbps 70
start_peer dave --alt-limits-schedule "daily $(win '+2 hours')-$(win '+3 hours')"
wait_for "$WORK/carol.log" "attached to supernode"
wait_for "$WORK/dave.log" "attached to supernode"
[ "$(limits carol 'd["limits"]["turtle_active"]')" = True ] || fail "carol: $(peer carol limits --json)"
[ "$(limits carol 'd["limits"]["in_force"]["download_kbps"]')" = 70 ] || fail "carol: $(peer carol limits --json)"
[ "$(limits dave 'd["limits"]["turtle_active"]')" = False ] || fail "dave: $(peer dave limits --json)"
peer carol limits --turtle off >/dev/null
[ "$(limits carol 'd["limits"]["in_force"]["download_kbps"]')" = 0 ] || fail "carol off: $(peer carol limits --json)"
# A reload brings the configuration back: turtle auto, inside the window.
kill -HUP "$PID_carol"
turtle_auto() { [ "$(limits carol 'd["limits"]["turtle"]')" = auto ]; }
wait_until 10 "carol's reload" turtle_auto
[ "$(limits carol 'd["limits"]["turtle_active"]')" = True ] || fail "carol after reload: $(peer carol limits --json)"
ok "on a schedule: the alternative limits are in force inside the window and not outside it; by hand off overrides it until a reload"

done_ok
