#!/usr/bin/env bash
# test_matrix.sh - every pair of router kinds, downloader x source, on real
# NATs (docs/NATBED.md): two supernodes on the bed's internet; for each kind
# (upnp, noupnp, symmetric, double, public) a downloader behind one router
# of that kind and a source behind another. Each peer first learns what it
# is (mapped, public or unreachable, by UPnP and dial-back); then each
# downloader fetches each source's file. Every cell asserts the file arrived
# byte-identical AND took the expected way, the cheapest that can work:
#   source reachable (upnp, public)                  -> direct
#   source unreachable, downloader reachable         -> reversal
#   both unreachable, both NATs keep ports           -> holepunch
#   both unreachable, a NAT changes ports            -> relay
# and a table of the matrix is printed, with the time from `get` to the
# file's first byte. Then a peer attached to the other supernode fetches
# from an unreachable source behind a port-keeping NAT (a hole punch
# coordinated across the two supernodes) and from one behind a symmetric
# NAT: a relay circuit spliced across the two supernodes, which carry only
# ciphertext.
source "$SOVA_SRC/tests/e2e/lib.sh"
source "$SOVA_SRC/tests/natbed/lib.sh"
source "$SOVA_SRC/tests/natbed/overlay.sh"

natbed_init
KINDS=(upnp noupnp symmetric double public)
natbed_host sn1 20.0.0.10
natbed_host sn2 20.0.0.11
n=1
for k in "${KINDS[@]}"; do
  natbed_router "r-$k-a" "$k" "20.0.$n.1"; n=$((n + 1))
  natbed_router "r-$k-b" "$k" "20.0.$n.1"; n=$((n + 1))
  natbed_peer "d-$k" "r-$k-a"
  natbed_peer "s-$k" "r-$k-b"
done
natbed_router r-x noupnp 20.0.20.1
natbed_peer x r-x
natbed_check_isolation
ok "bed: 2 supernodes, 11 routers of 5 kinds, 11 peers; no link leaves the bed"

nb_federation 2
nb_supernode sn1 sn1 20.0.0.10 --summary-interval-ms 300
nb_supernode sn2 sn2 20.0.0.11 --peers 20.0.0.10:7070 --summary-interval-ms 300
declare -A HASH
for k in "${KINDS[@]}"; do
  mkdir -p "$WORK/s-$k/share"
  head -c $((1048576 + RANDOM)) /dev/urandom >"$WORK/s-$k/share/matrix-$k.bin"
  HASH[$k]=$(file_id "$WORK/s-$k/share/matrix-$k.bin")
  nb_peer "s-$k" "s-$k" 20.0.0.10:7070
  nb_peer "d-$k" "d-$k" 20.0.0.10:7070
done
nb_peer x x 20.0.0.11:7070

reach_of() { case $1 in upnp) echo mapped ;; public) echo public ;; *) echo unreachable ;; esac; }
for k in "${KINDS[@]}"; do
  nb_wait_reach "s-$k" "$(reach_of "$k")" 40
  nb_wait_reach "d-$k" "$(reach_of "$k")" 40
done
nb_wait_reach x unreachable 40
for k in "${KINDS[@]}"; do
  echo "   $k: $(nb_status "s-$k" | nb_json 'j["reachability_reason"]')"
done
ok "every peer knows what it is: upnp mapped, public public, the others unreachable (why above)"

for k in "${KINDS[@]}"; do wait_for "$WORK/s-$k.log" "published 1 shared files" 20; done

expect() { # DOWNLOADER SOURCE
  case $2 in upnp | public) echo direct ;; *)
    case $1 in upnp | public) echo reversal ;; *)
      if [ "$1" = symmetric ] || [ "$2" = symmetric ]; then echo relay; else echo holepunch; fi ;;
    esac ;;
  esac
}

declare -A VIA TTFB
for d in "${KINDS[@]}"; do
  for s in "${KINDS[@]}"; do
    out=$(timeout 90 "$PEER_BIN" --state-dir "$WORK/d-$d/state" get "${HASH[$s]}" --json) ||
      fail "$d downloader could not fetch from the $s source: $out"
    cmp -s "$WORK/s-$s/share/matrix-$s.bin" "$WORK/d-$d/dl/matrix-$s.bin" ||
      fail "$d <- $s: the file differs"
    VIA[$d,$s]=$(nb_json 'j["download"]["via"]' <<<"$out")
    TTFB[$d,$s]=$(nb_json 'j["download"]["first_byte_ms"]' <<<"$out")
  done
done

echo
echo "   the way taken, and the time from asking to the first byte of the file"
printf '   %-22s' "downloader \\ source"
for s in "${KINDS[@]}"; do printf '%-20s' "$s"; done
echo
bad=0
for d in "${KINDS[@]}"; do
  printf '   %-22s' "$d"
  for s in "${KINDS[@]}"; do
    want=$(expect "$d" "$s")
    mark=${VIA[$d,$s]}
    [ "$mark" = "$want" ] || { mark="$mark!=$want"; bad=$((bad + 1)); }
    printf '%-20s' "$mark $(awk -v ms="${TTFB[$d,$s]}" 'BEGIN { printf "%.2fs", ms / 1000 }')"
  done
  echo
done
echo
[ $bad -eq 0 ] || fail "$bad cells of the matrix took another way than expected (marked above)"
ok "25 cells: every file byte-identical, every path the cheapest that can work (direct, reversal, holepunch, relay)"

# Across two supernodes: x is attached to sn2, the sources to sn1.
"$PEER_BIN" --state-dir "$WORK/x/state" status --json | nb_json 'j["supernode"]["id"]' |
  grep -q "$("$FED" id "$WORK/fed/sn2.crt")" || fail "x is not attached to sn2"
# sn2 knows of the files once sn1's keyword summary has reached it.
for k in noupnp symmetric; do
  deadline=$((SECONDS + 20))
  until "$PEER_BIN" --state-dir "$WORK/x/state" search matrix "$k" | grep -q "${HASH[$k]}"; do
    [ $SECONDS -lt $deadline ] || fail "x (on sn2) does not find the $k source's file"
    sleep 0.3
  done
done
# The punch notes go sn2 -> sn1 -> s-noupnp and back (FWD_PUNCH).
out=$(timeout 90 "$PEER_BIN" --state-dir "$WORK/x/state" get "${HASH[noupnp]}" --json) ||
  fail "x could not fetch from the noupnp source through two supernodes: $out"
cmp -s "$WORK/s-noupnp/share/matrix-noupnp.bin" "$WORK/x/dl/matrix-noupnp.bin" ||
  fail "x: the file differs"
[ "$(nb_json 'j["download"]["via"]' <<<"$out")" = holepunch ] || fail "x did not punch: $out"
ok "x on sn2 punches through to a source of sn1 (notes forwarded between the supernodes)"
# A symmetric NAT: the source says NO at once (through both supernodes) and
# x takes a relay circuit spliced across them.
out=$(timeout 90 "$PEER_BIN" --state-dir "$WORK/x/state" get "${HASH[symmetric]}" --json) ||
  fail "x could not fetch through two supernodes: $out"
cmp -s "$WORK/s-symmetric/share/matrix-symmetric.bin" "$WORK/x/dl/matrix-symmetric.bin" ||
  fail "x: the file differs"
[ "$(nb_json 'j["download"]["via"]' <<<"$out")" = relay ] || fail "x did not use a relay: $out"
grep -q "holepunch failed: the source cannot punch" "$WORK/x.log" ||
  fail "x did not hear the symmetric source's NO: $(grep -i punch "$WORK/x.log" | tail -5)"
for sn in sn1 sn2; do
  opened=$(nb_sn_status "$sn" | nb_json 'j["relay"]["opened"]')
  [ "$opened" -ge 1 ] || fail "$sn relayed no circuit"
done
grep -q "circuit .* open (.* -> .*)" "$WORK/sn2.log" || fail "sn2 logged no circuit"
ok "from a source behind a symmetric NAT, a relay circuit spliced across two supernodes carries x's download"

# Circuits end with their transfers: none stays open (no leaked reservations).
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
  open=0
  for sn in sn1 sn2; do open=$((open + $(nb_sn_status "$sn" | nb_json 'j["relay"]["circuits"]'))); done
  [ $open -eq 0 ] && break
  sleep 0.5
done
[ $open -eq 0 ] || fail "$open relay circuits still open after every transfer ended"
ok "every relay circuit closed once its transfer was done"

for k in "${KINDS[@]}"; do nb_stop "d-$k"; nb_stop "s-$k"; done
nb_stop x
nb_stop sn2
nb_stop sn1
done_ok
