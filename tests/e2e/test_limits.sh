#!/usr/bin/env bash
# Per-peer index limits: records beyond them are refused with a clear ERROR,
# the rest stay searchable, and the peer's session goes on.
# valgrind: yes
source "$(dirname "$0")/lib.sh"
make_federation
start_supernode sn --max-files-per-peer 2
mkdir -p "$WORK/alice/share"
for n in one two three; do printf '%s\n' "$n" >"$WORK/alice/share/limit-$n.txt"; done
start alice "$PEER_BIN" run --state-dir "$WORK/alice/state" --bootstrap "127.0.0.1:$PORT_sn" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/alice/share"
wait_for "$WORK/sn.log" "PUBLISH: 1 of 3 records rejected: .* \(limits: 2 files"
wait_for "$WORK/alice.log" "remote reports error 101 \(limit reached\): 1 of 3 records rejected"
wait_for "$WORK/alice.log" "supernode rejected 1 published records \(first: limit reached\)"
ok "a record beyond the per-peer file limit gets ERROR(limit reached) naming the limit"
n=$("$PEER_BIN" --state-dir "$WORK/alice/state" status --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["published"])')
[ "$n" = 2 ] || fail "alice should have 2 records accepted, has $n"
kill -0 "$PID_sn" && kill -0 "$PID_alice" || fail "a daemon died"
grep -q "peer left" "$WORK/sn.log" && fail "alice lost her session over a limit"
ok "the accepted records count, and the session stays up"
stop alice
stop sn
done_ok
