#!/usr/bin/env bash
# Metrics: the supernode's Prometheus endpoint (metrics-listen) answers in the
# text format, and its numbers move when a peer attaches, publishes and
# searches, when a handshake fails (by reason) and when an ERROR is sent (by
# code); the peer's metrics come over its control socket and its own
# endpoint; `sova-supernode status` shows the same counters.
# valgrind: yes
source "$(dirname "$0")/lib.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# scrape URL: the body, after checking the exposition format: every sample
# belongs to a family announced by HELP and TYPE, counters end in _total,
# names and values are well formed. HEAD must answer too.
scrape() {
  python3 - "$1" <<'PY'
import re, sys, urllib.request
url = sys.argv[1]
with urllib.request.urlopen(url, timeout=10) as r:
    assert r.status == 200, r.status
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    body = r.read().decode()
head = urllib.request.Request(url, method="HEAD")
with urllib.request.urlopen(head, timeout=10) as r:
    assert r.status == 200 and r.read() == b"", "HEAD"
types = {}
sample = re.compile(r'^([a-z_][a-z0-9_]*)(\{[a-z_]+="[^"\\]*"(,[a-z_]+="[^"\\]*")*\})? [0-9]+$')
for line in body.splitlines():
    if line.startswith("# HELP "):
        continue
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        assert kind in ("counter", "gauge"), line
        assert (kind == "counter") == name.endswith("_total"), "counter naming: " + line
        assert name not in types, "family twice: " + name
        types[name] = kind
        continue
    m = sample.match(line)
    assert m, "bad sample line: %r" % line
    assert m.group(1) in types, "sample without TYPE: " + line
sys.stdout.write(body)
PY
}
# value TEXT 'NAME{labels}': the sample's value (empty if absent)
value() { awk -v k="$2" '$1 == k { print $2 }' <<<"$1"; }
# expect TEXT 'NAME{labels}' OP N
expect() {
  local v
  v=$(value "$1" "$2")
  [ -n "$v" ] || fail "no sample $2"
  [ "$v" "$3" "$4" ] || fail "$2 is $v, expected $3 $4"
}

# grown_by BEFORE AFTER 'NAME{labels}' N: the sample grew by exactly N
grown_by() {
  local a b
  a=$(value "$1" "$3")
  b=$(value "$2" "$3")
  [ -n "$a" ] && [ -n "$b" ] || fail "no sample $3"
  [ $((b - a)) -eq "$4" ] || fail "$3 went from $a to $b, expected +$4"
}

make_federation
HS_MS=$((1000 * TIME_SCALE))
PORT=$(free_port)
PM=$(free_port)
start sn1 "$SN_BIN" --listen "127.0.0.1:$PORT" --cert "$WORK/fed/sn1.crt" \
  --key "$WORK/fed/sn1.key" --federation-ca "$WORK/fed/root.crt" --state-dir "$WORK/sn1-state" \
  --metrics-listen "127.0.0.1:$PM" --handshake-timeout-ms "$HS_MS"
wait_for "$WORK/sn1.log" "metrics at http://127\.0\.0\.1:$PM/metrics"
wait_for "$WORK/sn1.log" "listening on"
URL=http://127.0.0.1:$PM/metrics

m0=$(scrape "$URL") || fail "the metrics endpoint did not answer in the text format"
expect "$m0" sova_supernode_peers -eq 0
expect "$m0" sova_supernode_files_indexed -eq 0
expect "$m0" 'sova_supernode_searches_received_total{from="peer"}' -eq 0
expect "$m0" sova_supernode_ready -eq 1
for f in sova_supernode_relay_circuits sova_supernode_relay_bytes_total \
  sova_supernode_dialbacks_total 'sova_supernode_members{state="alive"}' \
  'sova_supernode_handshake_failures_total{direction="in",reason="tls"}' \
  'sova_supernode_errors_sent_total{code="110",name="timed_out"}' \
  'sova_supernode_relay_circuits_refused_total{reason="limit"}' sova_supernode_supernode_links; do
  [ -n "$(value "$m0" "$f")" ] || fail "no sample $f"
done
ok "the endpoint answers GET and HEAD in the Prometheus text format (HELP, TYPE, _total counters)"

code=$(python3 -c 'import urllib.request as u, urllib.error as e, sys
try: u.urlopen(sys.argv[1], timeout=5)
except e.HTTPError as x: print(x.code)' "http://127.0.0.1:$PM/")
[ "$code" = 404 ] || fail "GET / answered $code, not 404"
code=$(python3 -c 'import urllib.request as u, urllib.error as e, sys
try: u.urlopen(u.Request(sys.argv[1], method="DELETE"), timeout=5)
except e.HTTPError as x: print(x.code)' "$URL")
[ "$code" = 501 ] || fail "DELETE answered $code, not 501"
code=$(python3 -c 'import urllib.request as u, urllib.error as e, sys
try: u.urlopen(u.Request(sys.argv[1], data=b"x" * 100, method="POST"), timeout=5)
except e.HTTPError as x: print(x.code)' "$URL")
[ "$code" = 413 ] || fail "a request body got $code, not 413"
ok "other paths get 404, other methods 501, a request body 413"

# A peer attaches and publishes three files: the gauges and counters move.
mkdir -p "$WORK/alice/share" "$WORK/bob/share"
printf 'one\n' >"$WORK/alice/share/Holiday Video.mp4"
printf 'two\n' >"$WORK/alice/share/holiday photo.jpg"
printf 'three\n' >"$WORK/alice/share/notes.txt"
start alice "$PEER_BIN" run --state-dir "$WORK/alice/state" --bootstrap "127.0.0.1:$PORT" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/alice/share"
wait_for "$WORK/alice.log" "published 3 shared files"
for _ in $(seq 100); do
  m1=$(scrape "$URL")
  [ "$(value "$m1" sova_supernode_files_indexed)" = 3 ] && break
  sleep 0.1
done
expect "$m1" sova_supernode_peers -eq 1
expect "$m1" sova_supernode_files_indexed -eq 3
expect "$m1" sova_supernode_publish_records_total -eq 3
expect "$m1" 'sova_supernode_links_opened_total{direction="in"}' -ge 1
ok "a peer attaches and publishes: peers 0 -> 1, files indexed 0 -> 3"

# A second peer searches: searches in (from peers) moves; the peer counts
# its own on its control socket.
PB=$(free_port)
start bob "$PEER_BIN" run --state-dir "$WORK/bob/state" --bootstrap "127.0.0.1:$PORT" \
  --federation-ca "$WORK/fed/root.crt" --listen 127.0.0.1:0 --share "$WORK/bob/share" \
  --metrics-listen "127.0.0.1:$PB"
wait_for "$WORK/bob.log" "attached to supernode"
hits=$("$PEER_BIN" --state-dir "$WORK/bob/state" search holiday)
[ "$(wc -l <<<"$hits")" -eq 2 ] || fail "search found: $hits"
"$PEER_BIN" --state-dir "$WORK/bob/state" search nothingmatches >/dev/null || true
m2=$(scrape "$URL")
expect "$m2" sova_supernode_peers -eq 2
expect "$m2" 'sova_supernode_searches_received_total{from="peer"}' -eq 2
ok "searches from peers are counted: 0 -> 2"
pm=$("$PEER_BIN" --state-dir "$WORK/bob/state" metrics)
expect "$pm" sova_peer_attached -eq 1
expect "$pm" sova_peer_searches_sent_total -ge 2
expect "$pm" 'sova_peer_links_opened_total{direction="out"}' -ge 1
pe=$(scrape "http://127.0.0.1:$PB/metrics") || fail "the peer's endpoint"
expect "$pe" sova_peer_attached -eq 1
ok "the peer's metrics over its control socket and its own endpoint (attached, searches sent)"

# Handshake failures by reason: bytes that are not TLS, then a TLS client
# that never sends HELLO (timeout; the supernode sends ERROR 110).
python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET / HTTP/1.0\r\n\r\n" * 4)
s.settimeout(5)
try:
    s.recv(100)
except OSError:
    pass' "$PORT"
openssl req -x509 -newkey ed25519 -nodes -keyout "$WORK/c.key" -out "$WORK/c.crt" -days 1 \
  -subj /CN=silent 2>/dev/null
python3 - "$PORT" "$WORK/c.crt" "$WORK/c.key" <<'PY'
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as raw:
    with ctx.wrap_socket(raw) as s:
        s.settimeout(30)
        while True:  # no HELLO from us: the supernode gives up and says why
            try:
                if not s.recv(4096):
                    break
            except (OSError, ssl.SSLError):
                break
PY
wait_for "$WORK/sn1.log" "HELLO did not finish within $HS_MS ms"
m3=$(scrape "$URL")
grown_by "$m2" "$m3" 'sova_supernode_handshake_failures_total{direction="in",reason="tls"}' 1
grown_by "$m2" "$m3" 'sova_supernode_handshake_failures_total{direction="in",reason="timeout"}' 1
grown_by "$m2" "$m3" 'sova_supernode_errors_sent_total{code="110",name="timed_out"}' 1
ok "handshake failures are counted by reason (tls, timeout) and ERRORs sent by code (110)"

st=$("$SN_BIN" status --control "$WORK/sn1-state/control.sock")
grep -Eq "^links +[0-9]+ accepted, [0-9]+ dialed; handshake failures:.* tls [0-9]+" <<<"$st" &&
  grep -Eq "^links .* timeout [0-9]+" <<<"$st" || fail "status does not show the handshake failures: $st"
grep -Eq "^relay +on, 0 circuits open" <<<"$st" || fail "status does not show relaying: $st"
js=$("$SN_BIN" status --control "$WORK/sn1-state/control.sock" --json)
python3 -c 'import json, sys
o = json.loads(sys.stdin.read())
assert o["links"]["errors_sent"]["110"] >= 1, o["links"]
assert o["metrics"] == sys.argv[1], o["metrics"]
assert o["ready"] is True' "127.0.0.1:$PM" <<<"$js" || fail "status --json: $js"
ok "sova-supernode status shows relaying, links and handshake failures; --json the same counters"

# The control socket's metrics are the endpoint's (but for the clock).
ctl=$("$SN_BIN" metrics --control "$WORK/sn1-state/control.sock")
http=$(scrape "$URL")
diff <(grep -v uptime_seconds <<<"$ctl" | grep -v '_bytes') <(grep -v uptime_seconds <<<"$http" | grep -v '_bytes') ||
  fail "sova-supernode metrics differs from the endpoint"
ok "sova-supernode metrics prints what the endpoint serves"

stop bob
stop alice
m4=$(scrape "$URL")
expect "$m4" sova_supernode_peers -eq 0
expect "$m4" sova_supernode_files_indexed -eq 0
ok "peers leave: peers and files indexed fall back to 0"
stop sn1
done_ok
