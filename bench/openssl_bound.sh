# bench/openssl_bound.sh - the bound transfer benchmarks divide by (sourced).
#
# openssl_bound DIR FILE CERT KEY WORK: the seconds it takes to move FILE
# (in DIR) through one TLS 1.3 connection on loopback: served from disk by
# `openssl s_server -WWW`, read by `openssl s_client` into a file on the
# same disk, then synced — the bytes end durable, as a download's do.
# Prints the seconds; fails if fewer bytes than FILE arrived.
openssl_bound() {
  local dir=$1 file=$2 cert=$3 key=$4 work=$5
  local port=$((20000 + RANDOM % 20000)) srv t0 t1 got
  (cd "$dir" && exec openssl s_server -WWW -quiet -naccept 1 -tls1_3 \
    -accept "127.0.0.1:$port" -cert "$cert" -key "$key" \
    </dev/null >/dev/null 2>"$work/s_server.err") &
  srv=$!
  sleep 0.5
  t0=$(date +%s.%N)
  printf 'GET /%s HTTP/1.0\r\n\r\n' "$file" | openssl s_client -quiet -ign_eof \
    -connect "127.0.0.1:$port" 2>"$work/s_client.err" >"$work/openssl.out"
  sync "$work/openssl.out"
  t1=$(date +%s.%N)
  got=$(stat -c %s "$work/openssl.out")
  rm -f "$work/openssl.out"
  wait "$srv" || true
  [ "$got" -gt "$(stat -c %s "$dir/$file")" ] || { echo "openssl bound moved too few bytes" >&2; return 1; }
  awk "BEGIN { print $t1 - $t0 }"
}
