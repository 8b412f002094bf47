#!/usr/bin/env bash
# Fair pools under attack (issue 13, findings 4, 5, 8, 9, 12): attackers
# speaking the protocol correctly (tests/attack/pools.py) from several /24
# prefixes of loopback (127.0.x.y) try to hold a whole pool of a supernode
# or a peer. Each case asserts that the attack fails and that, while it
# lasts, a well-behaved pair on its own prefix (127.0.8.0/24) still
# attaches, searches and downloads byte-identical files through a relay
# circuit (the downloader runs --ways relay); at the end every one of the
# pair's searches and downloads must have succeeded.
#
#  4  128 identities from 4 prefixes hold all relay-max-circuits idle:
#     the pair's circuit displaces one, and idle circuits close
#  5  1,000 links from 17 addresses park all but the last byte of 1 MiB
#     frames: RSS stays within max-buffered-bytes and its overheads, and
#     returns near its start when they leave
#  9  slow-loris from 20 addresses holds the handshake slots, and links
#     that never REGISTER the waiting pool: a new peer from another network
#     attaches, and a supernode restarted meanwhile re-links (its own slots)
# 12  identities of one prefix publish to max-records-per-prefix: refused
#     past the share, naming it; another prefix still publishes
#  8  a peer under a 64-file limit gets 1,100 silent connections: no busy
#     loop (its CPU time and log stay small), downloads from it work after
#
# SOVA_ATTACK_CASES=4,9 runs only those cases (the pair runs all along).
source "$SOVA_SRC/tests/e2e/lib.sh"
POOLS=$SOVA_SRC/tests/attack/pools.py
want() { [ -z "${SOVA_ATTACK_CASES:-}" ] || [[ ",$SOVA_ATTACK_CASES," == *",$1,"* ]]; }
CASES=0
case_ok() { CASES=$((CASES + 1)); ok "$*"; }
ATK=(python3 "$POOLS" --dir "$WORK/ids") # an attacker: helper NAME "${ATK[@]}" ARGS...
kill_helpers() { # end attackers (helpers) now, by PID
  local p
  for p in "$@"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
srcs() { # srcs FIRST LAST FMT: comma-separated addresses, FMT with one %d
  local i out=
  for ((i = $1; i <= $2; i++)); do out+=$(printf "$3," "$i"); done
  echo "${out%,}"
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, 1/100 s
# Address sanitizer builds keep freed memory in quarantine: RSS is reported,
# not judged, there.
ASAN=0
if nm -D "$SN_BIN" 2>/dev/null | grep __asan_init >/dev/null; then ASAN=1; fi # (no -q: pipefail)

make_federation
"$FED" issue "$WORK/fed" sn2 >/dev/null
# The knobs the attacks aim at, as a file so that a reload can change them.
# max-records-per-prefix and max-files-per-peer are small so that one
# /24 fills its share in a few PUBLISHes; max-unregistered small so that
# links that never REGISTER fill it from 5 addresses; max-handshakes small
# so that a slow-loris from 20 addresses in Python keeps every slot taken
# (they are 1,280 silent connections: 5 times the slots).
cat >"$WORK/sn.conf" <<EOF
[supernode]
relay-idle-timeout-s = 600
max-records-per-prefix = 2000
max-files-per-peer = 500
max-unregistered = 200
max-handshakes = 256
EOF
start_supernode sn --config "$WORK/sn.conf" --keepalive-s 5
SN=127.0.0.1:$PORT_sn
snj() { # snj A.B.C [SUPERNODE]: a number from `sova-supernode status --json`, 0 when absent
  "$SN_BIN" status --control "$WORK/${2:-sn}-state/control.sock" --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(v)' "$1"
}
# A second supernode, linked to the first before any attack (case 9).
start sn2 "$SN_BIN" --listen 127.0.0.1:0 --cert "$WORK/fed/sn2.crt" --key "$WORK/fed/sn2.key" \
  --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/sn2-state" --peers "$SN"
wait_until 30 "sn2 linked to sn" eval '[ "$(snj supernodes)" -ge 1 ]'

# start_peer NAME ADDR [ARGS...]: a peer listening (and dialing) from ADDR.
start_peer() {
  local name=$1 addr=$2; shift 2
  mkdir -p "$WORK/$name/share" "$WORK/$name/dl"
  start "$name" "$PEER_BIN" run --state-dir "$WORK/$name/state" --bootstrap "$SN" \
    --federation-ca "$WORK/fed/root.crt" --listen "$addr:0" --upnp no \
    --share "$WORK/$name/share" --downloads "$WORK/$name/dl" --rescan-interval-s 1 "$@"
}
peer() { local name=$1; shift; "$PEER_BIN" --state-dir "$WORK/$name/state" "$@"; }
pjson() { # pjson NAME A.B: a field of `sova-peer status --json`
  peer "$1" status --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(v)' "$2"
}

# ---- the well-behaved pair, all along --------------------------------------------------
start_peer sharer 127.0.8.1
start_peer getter 127.0.8.2 --ways relay
wait_for "$WORK/sharer.log" "attached to supernode" 30
wait_for "$WORK/getter.log" "attached to supernode" 30

# The sharer adds a fresh file; the getter finds it by name (the ID is
# whatever the search says) and downloads it through a relay circuit.
honest_loop() {
  set +e
  local i=0 f id before out
  mkdir -p "$WORK/got"
  while [ ! -e "$WORK/honest.stop" ]; do
    i=$((i + 1))
    f=honestpool-r$i.bin
    head -c $((262144 + RANDOM * 8)) /dev/urandom >"$WORK/honest.tmp"
    before=$(pjson sharer published)
    mv "$WORK/honest.tmp" "$WORK/sharer/share/$f"
    if ! until_ok 60 eval '[ "$(pjson sharer published)" -gt "$before" ]'; then
      echo "FAIL $i: the sharer did not publish $f"
      continue
    fi
    out=$(peer getter search honestpool "r$i" 2>&1)
    id=$(awk -v f="$f" 'index($0, f) {print $1; exit}' <<<"$out")
    if [ -z "$id" ]; then
      echo "search FAIL $i: $out"
      continue
    fi
    echo "search ok $i"
    if timeout $((120 * TIME_SCALE)) "$PEER_BIN" --state-dir "$WORK/getter/state" get "$id" \
      --out "$WORK/got/$f" >"$WORK/honest-get.out" 2>&1 &&
      cmp -s "$WORK/sharer/share/$f" "$WORK/got/$f" && grep -q "via relay" "$WORK/honest-get.out"; then
      echo "get ok $i"
    else
      echo "get FAIL $i: $(tr '\n' ' ' <"$WORK/honest-get.out")"
    fi
  done >>"$WORK/honest.log" 2>&1
  echo "loop done" >>"$WORK/honest.log"
}
honest_loop &
PIDS+=($!)
wait_for "$WORK/honest.log" "^get ok 1$" 60
ok "the pair attaches from 127.0.8.0/24; the getter searches and downloads the sharer's new files through a relay circuit"
gets() { grep -c "^get ok" "$WORK/honest.log" || true; }
# honest_during WHAT: the pair downloads at least one more file, byte-identical, now.
honest_during() {
  local n
  n=$(gets)
  wait_until 180 "a download of the pair during $1" eval '[ "$(gets)" -gt "'"$n"'" ]'
  ! grep -q "FAIL" "$WORK/honest.log" || fail "the pair failed during $1: $(grep FAIL "$WORK/honest.log")"
}
"${ATK[@]}" idents --n 136 >/dev/null # the attackers' identities (Ed25519, self-signed)

# ---- 12: index records of one prefix -------------------------------------------------
if want 12; then
helper pub1 "${ATK[@]}" --target "$SN" --srcs 127.0.20.1,127.0.20.2 publish --per-src 4 --records 500 \
  --prefix pubA
wait_for "$WORK/pub1.log" "^published: " 120
grep -q "^published: 2000 accepted, 2000 refused by 8 identities from 2 addresses" "$WORK/pub1.log" ||
  fail "one /24 was not held to its share: $(cat "$WORK/pub1.log")"
grep -q "500 refused: 101 500 of 500 records rejected: records of the peers of your network.*max-records-per-prefix" \
  "$WORK/pub1.log" || fail "the refusal does not name the limit: $(cat "$WORK/pub1.log")"
helper pub2 "${ATK[@]}" --target "$SN" --srcs 127.0.21.1 publish --per-src 1 --records 500 --prefix pubB \
  --word elsewhere
wait_for "$WORK/pub2.log" "^published: " 60
grep -q "^published: 500 accepted, 0 refused" "$WORK/pub2.log" ||
  fail "another /24 could not publish: $(cat "$WORK/pub2.log")"
[ "$(snj index_prefixes.refused)" -ge 2000 ] || fail "refusals not counted: $(snj index_prefixes)"
honest_during "the publishing"
kill_helpers "$PID_pub1" "$PID_pub2"
case_ok "12: 8 identities of one /24 publish 4,000 records: 2,000 accepted (max-records-per-prefix), 2,000 refused with ERROR 101 naming the limit; another /24 publishes its 500"
fi

# ---- 4: relay circuits ---------------------------------------------------------------------
if want 4; then
helper circ "${ATK[@]}" --target "$SN" --srcs 127.0.1.1,127.0.2.1,127.0.3.1,127.0.4.1 circuits \
  --per-src 32 --fanout 8
# The whole pool: 1,024 open at once, or 1,023 while the pair's relayed
# download holds a circuit (a prefix holding 256 gets no slot from a prefix
# holding one); the attacker asks again for every refused circuit, so it
# takes back each slot the pair leaves.
wait_for "$WORK/circ.log" "^circuits open 102[34] " 180
# the pair's next circuit finds the pool full and displaces one
wait_until 60 "the pair's circuit to displace one" eval '[ "$(snj relay.displaced)" -ge 1 ]'
honest_during "a full relay pool"
wait_until 30 "the attacker told of its displaced circuit" \
  eval 'tail -1 "$WORK/circ.log" | grep -q "closed \[(101, [0-9]*)\]"'
[ "$(snj relay.top_prefix_circuits)" -le 256 ] || fail "a prefix holds more than its share: $(snj relay)"
case_ok "4: 128 identities from 4 /24s hold all 1,024 relay circuits idle; the pair's relayed downloads open by displacing the least recently active circuit of a full prefix ($(snj relay.displaced) displaced, RELAY_CLOSE 101)"
# idle circuits go while their links keep PINGing: a reload makes the
# timeout short, and it holds for circuits already open
sed -i 's/^relay-idle-timeout-s = .*/relay-idle-timeout-s = 5/' "$WORK/sn.conf"
kill -HUP "$PID_sn"
wait_for "$WORK/sn.log" "reload: relay-idle-timeout-s 600 -> 5"
wait_until 60 "the attacker's idle circuits to close" eval 'tail -1 "$WORK/circ.log" | grep -q "^circuits open 0 .*links 128$"'
grep -Eq "closed \[.*\(110, [0-9]{3,}\)" <<<"$(tail -1 "$WORK/circ.log")" ||
  fail "idle circuits were not closed with 110: $(tail -1 "$WORK/circ.log")"
[ "$(snj relay.closed_idle)" -ge 1000 ] || fail "idle closes not counted: $(snj relay)"
honest_during "idle circuits closing"
kill_helpers "$PID_circ"
sed -i 's/^relay-idle-timeout-s = .*/relay-idle-timeout-s = 600/' "$WORK/sn.conf"
kill -HUP "$PID_sn"
case_ok "4: with relay-idle-timeout-s 5 (a reload) the 1,022 idle circuits close with RELAY_CLOSE 110 while their 128 links stay attached with PINGs"
fi

# ---- 5: incomplete frames ---------------------------------------------------------------
if want 5; then
until_ok 30 eval '[ "$(snj relay.circuits)" -le 2 ]' || fail "circuits left: $(snj relay)"
rss0=$(rss_kib "$PID_sn")
# 17 addresses: 5 in 127.0.10.0/24 (it passes its share), 12 in 12 other /24s
helper park "${ATK[@]}" --target "$SN" --srcs "$(srcs 1 5 127.0.10.%d),$(srcs 11 22 127.0.%d.1)" \
  park --links 1000 --ids 136
peak=$rss0
deadline=$((SECONDS + 240 * TIME_SCALE))
until grep -q "^held:" "$WORK/park.log"; do
  [ $SECONDS -lt $deadline ] || fail "the attacker did not park its links: $(tail -2 "$WORK/park.log")"
  r=$(rss_kib "$PID_sn")
  [ "$r" -gt "$peak" ] && peak=$r
  sleep 0.1
done
for _ in $(seq 20); do # a few more samples once everything is parked
  r=$(rss_kib "$PID_sn")
  [ "$r" -gt "$peak" ] && peak=$r
  sleep 0.1
done
# The bound of docs/LIMITS.md: max-buffered-bytes, 64 KiB per link reading
# at once and about 20 KiB per link besides, over the RSS before.
bound=$((256 * 1024 + 1000 * 84))
grow=$((peak - rss0))
echo "# RSS before ${rss0} KiB, peak ${peak} KiB (+${grow} KiB, bound ${bound} KiB), $(tail -1 "$WORK/park.log")"
[ $ASAN = 1 ] || [ $grow -le $bound ] || fail "RSS grew by $grow KiB, over the bound of $bound KiB"
held=$(snj abuse.buffered.bytes)
[ "$held" -le 268435456 ] || fail "more than max-buffered-bytes held: $held"
[ "$(snj abuse.buffered.displaced)" -gt 0 ] || fail "nothing displaced: $(snj abuse.buffered)"
[ "$(snj abuse.buffered.closed_over_share)" -gt 0 ] || fail "no prefix held to its share: $(snj abuse.buffered)"
[ "$(snj abuse.buffered.top_prefix_bytes)" -le 33554432 ] || fail "a prefix over its share: $(snj abuse.buffered)"
honest_during "1,000 parked frames"
kill_helpers "$PID_park"
[ $ASAN = 1 ] || wait_until 30 "RSS back near its start (${rss0} KiB + 48 MiB)" \
  eval '[ "$(rss_kib "$PID_sn")" -le $((rss0 + 49152)) ]'
after=$(rss_kib "$PID_sn")
echo "# RSS after the attacker left: ${after} KiB ($(snj abuse.buffered.trims) trims)"
judged="bound $((bound / 1024)) MiB"
[ $ASAN = 0 ] || judged="not judged under ASan"
case_ok "5: 1,000 links from 17 addresses in 13 /24s park 1 MiB - 1 byte each: $(snj abuse.buffered.closed_over_share) closed over their prefix's share, $(snj abuse.buffered.displaced) displaced; RSS +$((grow / 1024)) MiB at the peak ($judged), back to $((after / 1024)) MiB (started at $((rss0 / 1024)) MiB) when they left"
fi

# ---- 9: handshake slots and links waiting for REGISTER -------------------------------------
if want 9; then
# 12 addresses in 127.0.0.0/24 (sn2's own network) and 8 others: the /24 of
# 127.0.0.1 holds the most handshakes, so only sn2's reserved slots let it in.
helper loris "${ATK[@]}" --target "$SN" --srcs "$(srcs 2 13 127.0.0.%d),$(srcs 50 57 127.0.%d.1)" \
  loris --per-src 64 --rate 200
wait_until 120 "slow-loris to take every handshake slot (its newcomers refused)" \
  eval '[ "$(snj abuse.refused_handshakes)" -gt 0 ]'
refused0=$(snj abuse.refused_handshakes)
# a new peer from another network attaches: it displaces a handshake of the
# network holding the most
start_peer newcomer 127.0.9.1
wait_for "$WORK/newcomer.log" "attached to supernode" 60
[ "$(snj abuse.displaced_handshakes)" -gt 0 ] || fail "no handshake displaced: $(snj abuse)"
# a supernode restarts while it happens: it re-links through its own slots
kill_daemon sn2
start sn2 "$SN_BIN" --listen 127.0.0.1:0 --cert "$WORK/fed/sn2.crt" --key "$WORK/fed/sn2.key" \
  --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/sn2-state" --peers "$SN"
wait_until 60 "the restarted sn2 to re-link with sn" eval '[ "$(snj supernodes sn2)" -ge 1 ]'
honest_during "slow-loris"
[ "$(snj abuse.refused_handshakes)" -gt "$refused0" ] || fail "the slots were not held all along: $(snj abuse)"
echo "# $(tail -1 "$WORK/loris.log")"
case_ok "9: slow-loris from 20 addresses holds the 256 handshake slots ($(snj abuse.refused_handshakes) refused, $(snj abuse.displaced_handshakes) displaced): a new peer from 127.0.9.0/24 attaches, and sn2, restarted from the busiest /24, re-links with sn through its own slots"
# links that finish TLS and HELLO and never REGISTER fill max-unregistered
helper hello "${ATK[@]}" --target "$SN" --srcs "$(srcs 1 5 127.0.60.%d)" hello --per-src 50 --rate 20
wait_until 60 "links waiting for REGISTER to fill max-unregistered" \
  eval '[ "$(snj abuse.unregistered.refused)" -gt 0 ]'
start_peer newcomer2 127.0.9.2
wait_for "$WORK/newcomer2.log" "attached to supernode" 60
[ "$(snj abuse.unregistered.displaced)" -gt 0 ] || fail "no waiting link displaced: $(snj abuse.unregistered)"
honest_during "links that never REGISTER"
wait_until 60 "links waiting for REGISTER closed after register-timeout-s" \
  eval '[ "$(snj abuse.unregistered.timeouts)" -gt 0 ]'
echo "# $(tail -1 "$WORK/hello.log")"
kill_helpers "$PID_loris" "$PID_hello"
case_ok "9: links that finish TLS and HELLO and never REGISTER hold max-unregistered ($(snj abuse.unregistered.refused) refused): another new peer from 127.0.9.0/24 attaches by displacing one, and those that wait get ERROR 110 after register-timeout-s ($(snj abuse.unregistered.timeouts) so far)"
fi

# ---- 8: a peer's listener out of files -------------------------------------------------------
if want 8; then
mkdir -p "$WORK/victim/share" "$WORK/victim/dl"
head -c 3000000 /dev/urandom >"$WORK/victim/share/victimpool-file.bin"
start victim prlimit --nofile=64:64 "$PEER_BIN" run --state-dir "$WORK/victim/state" \
  --bootstrap "$SN" --federation-ca "$WORK/fed/root.crt" --listen 127.0.7.1:0 --upnp no \
  --share "$WORK/victim/share" --downloads "$WORK/victim/dl" --rescan-interval-s 1
wait_for "$WORK/victim.log" "published 1 shared files" 60
VICTIM=$(pjson victim listen)
lines0=$(wc -l <"$WORK/victim.log")
cpu0=$(cpu_ticks "$PID_victim")
t0=$SECONDS
helper flood "${ATK[@]}" --target "$VICTIM" --srcs "$(srcs 30 40 127.0.%d.1)" flood --n 1100
wait_for "$WORK/flood.log" "^flood: [0-9]+ connections open" 60
sleep 10 # time passing is the point: a busy loop would burn it all
cpu=$(($(cpu_ticks "$PID_victim") - cpu0))
secs=$((SECONDS - t0))
lines=$(($(wc -l <"$WORK/victim.log") - lines0))
echo "# victim under flood for ${secs} s: ${cpu} CPU ticks, ${lines} log lines, $(tail -1 "$WORK/flood.log")"
[ "$cpu" -le $((secs * 100 * 25 / 100)) ] || fail "the victim burned $cpu ticks in $secs s"
# Each failure to accept, each silent connection's timeout and each share
# scan that finds no file descriptor says so, within its own throttle: a
# few lines a second, whatever the flood (before: 190,000 a second).
[ "$lines" -le $((secs * 10 + 50)) ] || fail "the victim logged $lines lines in $secs s"
# it did run out of files (else this case tested nothing)
wait_until 60 "the victim's accept errors" eval '[ "$(pjson victim abuse.accept_errors)" -gt 0 ]'
honest_during "the flood of another peer"
kill_helpers "$PID_flood"
out=$(peer getter search victimpool 2>&1)
vid=$(awk '/victimpool-file.bin/ {print $1; exit}' <<<"$out")
[ -n "$vid" ] || fail "the victim's file is not found: $out"
wait_until 120 "a download from the victim after the flood" \
  "$PEER_BIN" --state-dir "$WORK/getter/state" get "$vid" --out "$WORK/got/victimpool-file.bin"
cmp "$WORK/victim/share/victimpool-file.bin" "$WORK/got/victimpool-file.bin" ||
  fail "the file from the victim differs"
case_ok "8: a peer with 64 open files gets 1,100 silent connections from 11 addresses: its listener pauses at EMFILE ($cpu CPU ticks and $lines log lines in $secs s), and a download from it is byte-identical after the flood"
fi

# ---- the end ----------------------------------------------------------------------------
touch "$WORK/honest.stop"
wait_for "$WORK/honest.log" "^loop done$" 300
! grep -q "FAIL" "$WORK/honest.log" || fail "the pair failed: $(grep FAIL "$WORK/honest.log")"
echo "# the pair: $(grep -c '^search ok' "$WORK/honest.log") searches, $(gets) downloads through a relay, none failed"
echo "attack cases: $CASES passed"
done_ok
