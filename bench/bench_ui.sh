#!/usr/bin/env bash
# bench_ui.sh BUILD_DIR
# The web UI's first paint (issue 15: "first paint under 200 ms on this
# machine"; not a test: nothing fails). A supernode and a peer serving the
# UI on loopback; headless Chromium (Debian's) logs in and loads the app
# RUNS times, and then as many times the same files (index.html, app.css,
# app.js) from `python3 -m http.server`, the bound measured in the same run:
# what a browser needs to paint this page when the server costs nothing.
# Needs tests/ui/node_modules (deploy/sova-dev deps runs npm ci).
# Env: RUNS (default 30), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
build=$(cd "${1:?usage: bench_ui.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
sn_bin=$build/supernode/sova-supernode peer_bin=$build/ordinary/sova-peer
[ -x "$sn_bin" ] && [ -x "$peer_bin" ] || { echo "build first" >&2; exit 2; }
[ -d "$src/tests/ui/node_modules/puppeteer-core" ] || { echo "run deploy/sova-dev deps first (npm ci in tests/ui)" >&2; exit 2; }
work=$(mktemp -d /tmp/sova-bench-ui.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
wait_for() { for _ in $(seq 600); do grep -Eq "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout: $2 in $1" >&2; exit 1; }

"$src/deploy/sova-federation" init "$work/fed" >/dev/null
"$src/deploy/sova-federation" issue "$work/fed" sn1 >/dev/null
"$sn_bin" --listen 127.0.0.1:0 --cert "$work/fed/sn1.crt" --key "$work/fed/sn1.key" \
  --federation-ca "$work/fed/root.crt" --state-dir "$work/sn" 2>"$work/sn.log" &
pids+=($!)
wait_for "$work/sn.log" "listening on 127\.0\.0\.1:[0-9]+"
port=$(grep -Eo "listening on 127\.0\.0\.1:[0-9]+" "$work/sn.log" | head -1 | sed 's/.*://')
mkdir -p "$work/p/share" "$work/p/dl"
HOME=$work "$peer_bin" run --state-dir "$work/p/state" --bootstrap "127.0.0.1:$port" \
  --federation-ca "$work/fed/root.crt" --listen 127.0.0.1:0 --upnp no --share "$work/p/share" \
  --downloads "$work/p/dl" --api-listen 127.0.0.1:0 2>"$work/p.log" &
pids+=($!)
wait_for "$work/p.log" "web UI at http://127\.0\.0\.1:[0-9]+/"
ui=$(grep -Eo "web UI at http://127\.0\.0\.1:[0-9]+" "$work/p.log" | head -1 | sed 's/web UI at //')
link=$("$peer_bin" --state-dir "$work/p/state" ui --no-browser | grep -Eo "http://[^ ]*token=[0-9a-f]+")
mkdir -p "$work/static/ui"
cp "$src"/ordinary/ui/* "$work/static/ui/"
mv "$work/static/ui/index.html" "$work/static/index.html"
(cd "$work/static" && exec python3 -m http.server 0 --bind 127.0.0.1 >"$work/ref.log" 2>&1) &
pids+=($!)
wait_for "$work/ref.log" "Serving HTTP on 127\.0\.0\.1 port [0-9]+"
ref=$(grep -Eo "port [0-9]+" "$work/ref.log" | head -1 | sed 's/port //')
echo "# $(date -u +%F) $(nproc) cores; $("${CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null)"
SOVA_UI_LINK=$link SOVA_UI_BASE=$ui REF_BASE="http://127.0.0.1:$ref" NODE_PATH="$src/tests/ui/node_modules" \
  node "$src/bench/bench_ui.mjs"
