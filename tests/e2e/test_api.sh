#!/usr/bin/env bash
# The local HTTP API (docs/API.md): a second transport of the control
# socket's commands. Refusals first (no key, a wrong key, a forged Host, a
# foreign Origin, an oversized body, a form's Content-Type) change nothing;
# then with the key: status, search, get (answered once accepted), the
# download completes byte-identical, pause/resume/cancel, limits, shares,
# decoder errors as 400, and the event stream's progress and completion.
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

# api METHOD PATH [BODY|-] [HEADER=VALUE...]: prints "STATUS BODY" (one line).
# KEY, HOST and CTYPE give the defaults; HEADER= (empty) leaves a header out.
cat >"$WORK/api.py" <<'EOF'
import http.client, os, sys
method, path = sys.argv[1], sys.argv[2]
body = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
extra = sys.argv[4:]
port = int(os.environ["API_PORT"])
headers = {"Host": os.environ.get("HOST", "127.0.0.1:%d" % port),
           "X-API-Key": os.environ.get("KEY", "")}
if body is not None:
    headers["Content-Type"] = os.environ.get("CTYPE", "application/json")
for kv in extra:
    k, v = kv.split("=", 1)
    headers[k] = v
headers = {k: v for k, v in headers.items() if v != ""}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
data = body.encode() if body is not None else None
if body is not None and body.startswith("@big:"):
    data = b'{"words":["' + b"a" * int(body[5:]) + b'"]}'
for k, v in headers.items():
    c.putheader(k, v)
if data is not None:
    c.putheader("Content-Length", str(len(data)))
c.endheaders(data)
r = c.getresponse()
text = r.read().decode("utf-8", "replace").strip()
cors = [h for h in r.getheaders() if h[0].lower().startswith("access-control")]
print(r.status, text, "CORS!" if cors else "")
EOF
# events SECONDS: the stream, line by line, until it ends or SECONDS pass.
cat >"$WORK/events.py" <<'EOF'
import http.client, os, sys, time
port = int(os.environ["API_PORT"])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=float(sys.argv[1]))
c.request("GET", "/api/v1/events", headers={"Host": "localhost:%d" % port, "X-API-Key": os.environ["KEY"]})
r = c.getresponse()
print("status", r.status, r.getheader("Content-Type"), flush=True)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    line = r.fp.readline()
    if not line:
        break
    print(line.decode().rstrip("\n"), flush=True)
EOF
api() { python3 "$WORK/api.py" "$@"; }
body() { cut -d' ' -f2- <<<"$1"; }
field() { body "$1" | python3 -c 'import json,sys; d=json.JSONDecoder().raw_decode(sys.stdin.read())[0]; print(eval(sys.argv[1]))' "$2"; }
expect() { # STATUS OUTPUT WHAT
  [ "${2%% *}" = "$1" ] || fail "$3: wanted $1, got: $2"
  case "$2" in *CORS!*) fail "$3: CORS headers sent: $2" ;; esac
}

mkdir -p "$WORK/alice/share"
head -c $((2 * 1048576)) /dev/urandom >"$WORK/alice/share/small.bin"
head -c $((16 * 1048576)) /dev/urandom >"$WORK/alice/share/large.bin"
SMALL=$(file_id "$WORK/alice/share/small.bin")
LARGE=$(file_id "$WORK/alice/share/large.bin")
start_peer alice
start_peer bob --api-listen 127.0.0.1:0
wait_for "$WORK/alice.log" "published 2 shared files"
wait_for "$WORK/bob.log" "attached to supernode"
wait_for "$WORK/bob.log" "HTTP API at http://127\.0\.0\.1:[0-9]+"
API_PORT=$(grep -Eo "HTTP API at http://127\.0\.0\.1:[0-9]+" "$WORK/bob.log" | head -1 | sed 's/.*://')
export API_PORT

# ---- the key ---------------------------------------------------------------------------------
KEY=$(peer bob api-key) || fail "api-key: $KEY"
[ ${#KEY} -eq 64 ] || fail "the key is not 64 hex digits: $KEY"
[ "$(stat -c %a "$WORK/bob/state/api-key")" = 600 ] || fail "api-key mode $(stat -c %a "$WORK/bob/state/api-key")"
peer bob status | grep -q "http api *http://127.0.0.1:$API_PORT/api/v1/" || fail "status: $(peer bob status)"
peer alice api-key >"$WORK/nokey.out" 2>&1 && fail "alice (no api-listen) has a key"
grep -q "no API key" "$WORK/nokey.out" || fail "alice api-key: $(cat "$WORK/nokey.out")"
mkdir -p -m 700 "$WORK/loose"
printf '%s\n' "$KEY" >"$WORK/loose/api-key"
chmod 644 "$WORK/loose/api-key"
"$PEER_BIN" --state-dir "$WORK/loose" api-key >"$WORK/loose.out" 2>&1 && fail "a key others may read was printed"
grep -q "may be read by others (mode 0644)" "$WORK/loose.out" || fail "loose key: $(cat "$WORK/loose.out")"
if "$PEER_BIN" run --state-dir "$WORK/remote" --bootstrap "127.0.0.1:$PORT_sn" --federation-ca "$WORK/fed/root.crt" \
     --listen 127.0.0.1:0 --upnp no --api-listen 0.0.0.0:0 >"$WORK/remote.out" 2>&1; then
  fail "the API listened on 0.0.0.0 without api-allow-remote"
fi
grep -q "not a loopback address.*api-allow-remote = yes" "$WORK/remote.out" || fail "0.0.0.0: $(cat "$WORK/remote.out")"
ok "the key: 64 hex digits in api-key (0600), printed by sova-peer api-key; status shows the API's address; a key others may read is refused; a non-loopback api-listen is refused without api-allow-remote"

# ---- refusals change nothing ---------------------------------------------------------------------
before=$(peer bob limits --json)
export KEY=""
out=$(api POST /api/v1/limits '{"download_kbps": 7}'); expect 401 "$out" "no key"
out=$(api GET /api/v1/status); expect 401 "$out" "no key (GET)"
grep -q "missing or wrong API key" <<<"$out" || fail "401 text: $out"
export KEY=0000000000000000000000000000000000000000000000000000000000000000
out=$(api POST /api/v1/limits '{"download_kbps": 7}'); expect 401 "$out" "a wrong key"
out=$(api POST /api/v1/limits '{"download_kbps": 7}' X-API-Key= "Authorization=Bearer ${KEY}"); expect 401 "$out" "a wrong bearer"
KEY=$(peer bob api-key); export KEY
out=$(HOST=evil.example:$API_PORT api POST /api/v1/limits '{"download_kbps": 7}'); expect 403 "$out" "a forged Host"
grep -q "Host" <<<"$out" || fail "403 does not name the Host check: $out"
out=$(api POST /api/v1/limits '{"download_kbps": 7}' Origin=http://evil.example); expect 403 "$out" "a foreign Origin"
out=$(api POST /api/v1/search @big:70000); expect 413 "$out" "an oversized body"
out=$(CTYPE=application/x-www-form-urlencoded api POST /api/v1/limits 'download_kbps=7'); expect 415 "$out" "a form"
out=$(CTYPE=text/plain api POST /api/v1/limits '{"download_kbps": 7}'); expect 415 "$out" "text/plain"
out=$(api GET /api/v2/status); expect 404 "$out" "an unknown path"
out=$(api POST /api/v1/reboot '{}'); expect 404 "$out" "an unknown command"
out=$(api GET /api/v1/search); expect 405 "$out" "GET of search"
out=$(api DELETE /api/v1/status); expect 405 "$out" "DELETE"
out=$(api POST /api/v1/search '{"wrods": ["x"]}'); expect 400 "$out" "a misspelt field"
grep -q 'unknown field \\"wrods\\" for command \\"search\\"' <<<"$out" || fail "400 text: $out"
out=$(api POST /api/v1/limits '{"download_kbps": -1}'); expect 400 "$out" "out of range"
out=$(api POST /api/v1/search '"words": ["x"]}'); expect 400 "$out" "a body that is not an object"
out=$(api POST /api/v1/search '[1]'); expect 400 "$out" "an array"
grep -q "must be a JSON object" <<<"$out" || fail "an array: $out"
out=$(api POST /api/v1/search '{"cmd": "status"}'); expect 400 "$out" "a cmd field"
out=$(api POST /api/v1/limits '{"turtle": "slow"}'); expect 422 "$out" "a bad turtle"
out=$(api POST /api/v1/pause "{\"id\": \"$(printf '%064d' 0)\"}"); expect 404 "$out" "an unknown download"
[ "$(peer bob limits --json)" = "$before" ] || fail "a refused request changed the limits: $(peer bob limits --json)"
grep -q "refused a request" "$WORK/bob.log" || fail "refusals are not logged"
[ "$(grep -c "refused a request" "$WORK/bob.log")" -lt 10 ] || fail "each refusal was logged: $(grep -c "refused a request" "$WORK/bob.log")"
ok "refused and nothing changed: no key and a wrong key 401, a forged Host and a foreign Origin 403, a body over 64 KiB 413, a form 415, unknown path or command 404, a wrong method 405, decoder errors 400, an unknown download 404; refusals logged once per interval"

# ---- events, then commands ------------------------------------------------------------------------
helper events python3 "$WORK/events.py" $((120 * TIME_SCALE))
wait_for "$WORK/events.log" "^status 200 text/event-stream"
wait_for "$WORK/events.log" "^: sova events"

out=$(api GET /api/v1/status); expect 200 "$out" "status"
[ "$(field "$out" 'd["role"], d["api"], d["ok"]')" = "('peer', '127.0.0.1:$API_PORT', True)" ] || fail "status: $out"
out=$(api POST /api/v1/status ''); expect 200 "$out" "POST status, empty body"
out=$(api POST /api/v1/search "$(printf '{\n  "words": [\n    "small"\n  ],\n  "timeout_ms": 5000\n}\n')"); expect 200 "$out" "a pretty-printed body"
out=$(api POST /api/v1/search '{"words": ["small"], "timeout_ms": 5000}'); expect 200 "$out" "search"
[ "$(field "$out" 'd["hits"][0]["id"]')" = "$SMALL" ] || fail "search: $out"
out=$(api POST /api/v1/get "{\"id\": \"$SMALL\"}"); expect 200 "$out" "get"
field "$out" 'd["accepted"]["state"]' | grep -Eqx "running|queued|complete" || fail "get: $out"
small_done() {
  local o; o=$(api GET /api/v1/downloads)
  [ "$(field "$o" '[x["state"] for x in d["downloads"] if x.get("id") == "'"$SMALL"'"][0]')" = complete ]
}
wait_until 60 "the small download to complete" small_done
cmp -s "$WORK/alice/share/small.bin" "$WORK/bob/dl/small.bin" || fail "bob's copy differs"
ok "with the key: status, search, get answered once accepted; downloads shows it complete and the file is byte-identical"

out=$(api POST /api/v1/limits '{"download_kbps": 300, "upload_kbps": 123}'); expect 200 "$out" "limits set"
out=$(api GET /api/v1/limits); expect 200 "$out" "limits read"
[ "$(field "$out" 'd["limits"]["download_kbps"], d["limits"]["upload_kbps"]')" = "(300, 123)" ] || fail "limits: $out"
[ "$(peer bob limits --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["limits"]["upload_kbps"])')" = 123 ] ||
  fail "the socket does not see the API's limits"
ok "limits set over HTTP and read back (the same state the socket sees)"

out=$(api POST /api/v1/get "{\"id\": \"$LARGE\", \"priority\": \"low\"}"); expect 200 "$out" "get large"
out=$(api POST /api/v1/limit "{\"id\": \"$LARGE\", \"kbps\": 100}"); expect 200 "$out" "limit"
wait_for "$WORK/events.log" "^event: progress" 30
out=$(api POST /api/v1/pause "{\"id\": \"$LARGE\"}"); expect 200 "$out" "pause"
[ "$(field "$out" 'd["download"]["state"]')" = paused ] || fail "pause: $out"
out=$(api POST /api/v1/pause "{\"id\": \"$SMALL\"}"); expect 409 "$out" "pause of a complete one"
out=$(api POST /api/v1/resume "{\"id\": \"$LARGE\"}"); expect 200 "$out" "resume"
field "$out" 'd["download"]["state"]' | grep -Eqx "running|queued" || fail "resume: $out"
out=$(api POST /api/v1/cancel "{\"id\": \"$LARGE\"}"); expect 200 "$out" "cancel"
[ "$(field "$out" 'd["download"]["state"]')" = cancelled ] || fail "cancel: $out"
wait_for "$WORK/events.log" "^event: cancelled" 10
grep -A1 "^event: cancelled" "$WORK/events.log" | grep -q "\"id\":\"$LARGE\"" || fail "cancelled event: $(cat "$WORK/events.log")"
ok "pause, resume and cancel another download over HTTP; pausing a complete one is 409"

mkdir -p "$WORK/bob/more"
echo "more" >"$WORK/bob/more/more.txt"
out=$(api POST /api/v1/share_add "{\"path\": \"$WORK/bob/more\"}"); expect 200 "$out" "share_add"
out=$(api GET /api/v1/shares); expect 200 "$out" "shares"
field "$out" '[f["path"] for f in d["folders"]]' | grep -q "$WORK/bob/more" || fail "shares: $out"
ok "share_add over HTTP, and shares lists the folder"

out=$(api GET /api/v1/peers); expect 200 "$out" "peers"
out=$(api GET /api/v1/downloads); expect 200 "$out" "downloads"
wait_for "$WORK/events.log" "^event: complete" 10
grep -A1 "^event: complete" "$WORK/events.log" | grep -q "\"id\":\"$SMALL\"" || fail "no completion event of the small file: $(cat "$WORK/events.log")"
grep -A1 "^event: progress" "$WORK/events.log" | grep -q "^data: {\"download\":{" || fail "progress data: $(cat "$WORK/events.log")"
ok "the event stream (text/event-stream) shows progress and the completion of a download (and the cancel above)"

# 16 streams at once: the helper's and 15 more; the 17th is refused.
cap=$(python3 - <<'EOF'
import http.client, os
port, key = int(os.environ["API_PORT"]), os.environ["KEY"]
h = {"Host": "127.0.0.1:%d" % port, "X-API-Key": key}
conns, codes = [], []
for i in range(16):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", "/api/v1/events", headers=h)
    r = c.getresponse()
    codes.append(r.status)
    conns.append(c)
print(codes.count(200), codes[-1])
EOF
)
[ "$cap" = "15 503" ] || fail "with 16 streams open, wanted 15 more accepted and the 17th refused with 503: $cap"
ok "at most 16 event streams: the 17th gets 503"

# ---- the web UI's logins and sessions (docs/UI.md; the pages: e2e/test_ui) -------------------
grep -q "^event: status" "$WORK/events.log" || fail "no status event on the stream: $(head -20 "$WORK/events.log")"
LINK=$(peer bob ui --no-browser | grep -Eo "http://127\.0\.0\.1:$API_PORT/login\?token=[0-9a-f]{64}") ||
  fail "sova-peer ui printed no link"
out=$(LINK=$LINK python3 "$SOVA_SRC/tests/e2e/ui_session.py") || fail "web UI sessions: $out"
ok "web UI: / goes to /login (CSP), a wrong key or a foreign Origin cannot log in, the key or the one-time link (once) can; the cookie is HttpOnly SameSite=Strict; a session's POST needs its CSRF token; log out ends it; the stream sends status events"

# TLS: required off loopback, served on loopback when configured
if "$PEER_BIN" run --state-dir "$WORK/remote2" --bootstrap "127.0.0.1:$PORT_sn" --federation-ca "$WORK/fed/root.crt" \
     --listen 127.0.0.1:0 --upnp no --api-listen 0.0.0.0:0 --api-allow-remote yes >"$WORK/remote2.out" 2>&1; then
  fail "the API listened on 0.0.0.0 without TLS"
fi
grep -q "no api-tls-cert" "$WORK/remote2.out" || fail "0.0.0.0 without TLS: $(cat "$WORK/remote2.out")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=sova-ui \
  -keyout "$WORK/ui.key" -out "$WORK/ui.crt" 2>/dev/null
start_peer carol --api-listen 127.0.0.1:0 --api-tls-cert "$WORK/ui.crt" --api-tls-key "$WORK/ui.key"
wait_for "$WORK/carol.log" "web UI at https://127\.0\.0\.1:[0-9]+/"
TPORT=$(grep -Eo "web UI at https://127\.0\.0\.1:[0-9]+" "$WORK/carol.log" | head -1 | sed 's/.*://')
out=$(API_PORT=$TPORT KEY=$(peer carol api-key) LINK= SCHEME=https CA=$WORK/ui.crt \
  python3 "$SOVA_SRC/tests/e2e/ui_session.py") || fail "web UI over TLS: $out"
ok "TLS: a non-loopback api-listen without api-tls-cert is refused; with one the API and the UI speak https, the cookie Secure"

done_ok
