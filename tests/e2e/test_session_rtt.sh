#!/usr/bin/env bash
# The peer's primary supernode is the one it reaches fastest: two supernodes,
# one of them behind a TCP proxy that delays every byte by 100 ms each way
# (no netem on this kernel, so the delay is made in user space; it is on the
# path of every packet of the peer's connection all the same). The peer is
# configured with the slow one first - the order that used to decide - and
# dials both at once: the fast one opens first and becomes the primary, the
# slow one the backup, and the round trips the peer measures (PING -> PONG,
# link_rtt_us) show the delay. A peer told only of the slow supernode still
# attaches to it (a working session is never dropped for a faster one).
# valgrind: yes
source "$(dirname "$0")/lib.sh"
make_federation
"$FED" issue "$WORK/fed" sn2 >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(free_port); P2=$(free_port); PX=$(free_port)
DELAY_MS=100

# The delay proxy: 127.0.0.1:PX -> 127.0.0.1:P2, each direction's bytes held
# DELAY_MS, order kept, EOF passed on.
cat >"$WORK/delay_proxy.py" <<'EOF'
import asyncio, sys
listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000.0

async def pipe(reader, writer):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()
    async def send():
        while True:
            t, data = await queue.get()
            wait = t + delay - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time(), data))
            if not data:
                break
    except OSError:
        queue.put_nowait((loop.time(), b""))
    await sender

async def handle(client_r, client_w):
    try:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w), return_exceptions=True)
    client_w.close()
    server_w.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    print("proxy ready", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
EOF
helper proxy python3 "$WORK/delay_proxy.py" "$PX" "$P2" "$DELAY_MS"
wait_for "$WORK/proxy.log" "proxy ready"

run_sn() { # NAME CERT PORT SEEDS
  start "$1" "$SN_BIN" --listen "127.0.0.1:$3" --cert "$WORK/fed/$2.crt" --key "$WORK/fed/$2.key" \
    --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/$1-state" --peers "$4" \
    --keepalive-s 1 --peer-timeout-s 5
}
run_sn sn1 sn1 "$P1" "127.0.0.1:$P2"
run_sn sn2 sn2 "$P2" "127.0.0.1:$P1"
SN1=$("$FED" id "$WORK/fed/sn1.crt"); SN2=$("$FED" id "$WORK/fed/sn2.crt")
wait_for "$WORK/sn1.log" "${SN2:0:8}: supernode link up"

# The proxy really is slow: one TCP connect + TLS through it.
t0=$(date +%s%N)
echo | timeout 10 openssl s_client -connect "127.0.0.1:$PX" -CAfile "$WORK/fed/root.crt" \
  >/dev/null 2>&1 || true
slow_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$slow_ms" -ge $((2 * DELAY_MS)) ] || fail "the proxy adds no delay: TLS through it took $slow_ms ms"
ok "a TLS handshake through the delay proxy takes $slow_ms ms"

# alice: the slow supernode first in her list.
mkdir -p "$WORK/alice/share"
printf 'fast or slow\n' >"$WORK/alice/share/rtt-notes.txt"
start alice "$PEER_BIN" run --state-dir "$WORK/alice/state" \
  --bootstrap "127.0.0.1:$PX,127.0.0.1:$P1" --federation-ca "$WORK/fed/root.crt" \
  --listen 127.0.0.1:0 --share "$WORK/alice/share"
wait_for "$WORK/alice.log" "attached to supernode"
wait_for "$WORK/alice.log" "backup session with supernode"
grep -q "attached to supernode $SN1" "$WORK/alice.log" ||
  fail "alice's primary is not the fast supernode: $(grep -E 'connected to|attached to' "$WORK/alice.log")"
grep -q "connected to supernode $SN1 in [0-9]* ms (primary: opened first)" "$WORK/alice.log" ||
  grep -q "connected to supernode $SN1 in [0-9]* ms (primary)" "$WORK/alice.log" ||
  fail "no handshake time logged for sn1"
"$PEER_BIN" --state-dir "$WORK/alice/state" status | grep -q "^backup        $SN2$" ||
  fail "the slow supernode is not alice's backup: $("$PEER_BIN" --state-dir "$WORK/alice/state" status)"
ok "alice dials both, the fast supernode opens first and is her primary, the slow one her backup"

rtt_of() { # LOGFILE REGEX-BEFORE-ROUND-TRIP: the round trip logged, in whole ms
  grep -E "$2" "$1" | tail -1 | sed -E 's/.*\(round trip ([0-9.]+) ms\).*/\1/' | cut -d. -f1
}
fast=$(rtt_of "$WORK/alice.log" "attached to supernode $SN1")
slow=$(rtt_of "$WORK/alice.log" "backup session with supernode $SN2")
[ -n "$fast" ] && [ -n "$slow" ] || fail "no round trips logged: $(grep 'round trip' "$WORK/alice.log")"
[ "$slow" -ge $((2 * DELAY_MS)) ] || fail "round trip to the slow supernode measured $slow ms (< $((2 * DELAY_MS)))"
[ "$fast" -lt $((slow / 2)) ] || fail "round trip to the fast supernode measured $fast ms (slow: $slow ms)"
ok "measured round trips: fast $fast ms, slow $slow ms (PING -> PONG)"

# bob knows only the slow supernode: he attaches there, learns sn1 from
# SN_LIST and keeps it as backup; the working primary is not dropped.
mkdir -p "$WORK/bob/share"
start bob "$PEER_BIN" run --state-dir "$WORK/bob/state" --bootstrap "127.0.0.1:$PX" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/bob/share"
wait_for "$WORK/bob.log" "attached to supernode $SN2"
wait_for "$WORK/bob.log" "backup session with supernode $SN1"
ok "bob, told only of the slow supernode, attaches to it and keeps the fast one as backup"

# The fast primary dies: alice promotes the slow backup at once (no
# re-choice delays a failover) and her files stay reachable.
wait_for "$WORK/alice.log" "published 1 shared files" 20
kill_daemon sn1
wait_for "$WORK/alice.log" "promoting backup supernode $SN2 to primary"
wait_for_n "$WORK/alice.log" "published 1 shared files" 2 20
"$PEER_BIN" --state-dir "$WORK/bob/state" search rtt notes | grep -q "rtt-notes.txt" ||
  fail "alice's file is not found through sn2 after the failover"
ok "the fast primary SIGKILLed: the slow backup is promoted at once and alice's file is found"

stop alice
stop bob
stop sn2
done_ok
