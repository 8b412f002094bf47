#!/usr/bin/env bash
# test_ipv6.sh - IPv6 in the NAT test bed (docs/NATBED.md, docs/NAT.md): a
# dual-stack supernode (listening on [::]), an IPv6-only peer, a
# dual-stack peer, and an IPv4-only peer behind a NAT:
#  1. the IPv6-only peer attaches over IPv6, is proved reachable (public)
#     by a dial-back over IPv6, and its status names the IPv6 supernode;
#  2. it searches and downloads from the dual-stack peer, directly over
#     IPv6, and the dual-stack peer downloads from it the same way;
#  3. the IPv4-only and the IPv6-only peer meet through the relay, both
#     ways, without spending time on a reversal or hole punch across the
#     families (the ladder says why it skips them);
#  4. Happy Eyeballs: a dual-stack peer whose supernode's name resolves to
#     an IPv6 and an IPv4 address, and whose IPv6 path to it is broken
#     (SYNs vanish), attaches over IPv4 (it would wait out the handshake
#     timeout on IPv6, again and again, without the race).
source "$SOVA_SRC/tests/e2e/lib.sh"
source "$SOVA_SRC/tests/natbed/lib.sh"
source "$SOVA_SRC/tests/natbed/overlay.sh"

natbed_init
natbed_host sn1 20.0.0.10 2001:db8::10 # dual-stack supernode
natbed_host p6 - 2001:db8::20          # IPv6 only
natbed_host pds 20.0.0.30 2001:db8::30 # dual-stack
natbed_host pdn 20.0.0.40 2001:db8::40 # dual-stack, names its supernode
natbed_hosts pdn "2001:db8::10 sn.bed" "20.0.0.10 sn.bed"
natbed_router r4 noupnp 20.0.1.1
natbed_peer p4 r4                      # IPv4 only, behind a NAT
natbed_check_isolation
nb_federation 1
nb_supernode sn1 sn1 "[::]"
for p in p6 pds p4; do
  mkdir -p "$WORK/$p/share"
  head -c $((2000000 + RANDOM)) /dev/urandom >"$WORK/$p/share/six-$p.bin"
done
NB_LISTEN="[::]:7071" nb_peer p6 p6 "[2001:db8::10]:7070"
NB_LISTEN="[::]:7071" nb_peer pds pds "[2001:db8::10]:7070"
nb_peer p4 p4 20.0.0.10:7070
nb_wait_reach p6 public 40
nb_wait_reach pds public 40
nb_wait_reach p4 unreachable 40
sn=$(nb_status p6 | nb_json 'j["supernode"]["endpoint"]')
[ "$sn" = "[2001:db8::10]:7070" ] || fail "p6's supernode address: $sn"
proved=$(nb_status p6 | nb_json 'j["reach"]["address"]')
[ "$proved" = "[2001:db8::20]:7071" ] || fail "p6 proved at $proved"
ok "the IPv6-only peer attached to the dual-stack supernode at $sn and was proved public at $proved by a dial-back over IPv6"

for p in p6 pds p4; do wait_for "$WORK/$p.log" "published 1 shared files" 20; done
# fetch DOWNLOADER SOURCE: the route of DOWNLOADER's download of SOURCE's file
found() { "$PEER_BIN" --state-dir "$WORK/$1/state" search six "$2" | grep -q "^$3 "; }
fetch() {
  local f="six-$2.bin" out hash
  hash=$(file_id "$WORK/$2/share/$f")
  wait_until 20 "$1 to find $2's file" found "$1" "$2" "$hash"
  out=$(timeout 90 "$PEER_BIN" --state-dir "$WORK/$1/state" get "$hash" --json) ||
    fail "$1 could not fetch from $2: $out"
  cmp -s "$WORK/$2/share/$f" "$WORK/$1/dl/$f" || fail "$1's copy of $2's file differs"
  nb_json 'j["download"]["via"] + " | " + j["download"].get("route", "")' <<<"$out"
}
r=$(fetch p6 pds)
[[ $r == "direct | direct: public [2001:db8::30]:7071, IPv6" ]] || fail "p6 <- pds: $r"
r2=$(fetch pds p6)
[[ $r2 == "direct | direct: public [2001:db8::20]:7071, IPv6" ]] || fail "pds <- p6: $r2"
ok "the IPv6-only peer searches and downloads from the dual-stack peer over IPv6 ($r), and the other way ($r2)"

r=$(fetch p4 p6)
[[ $r == "relay | "* ]] || fail "p4 <- p6: $r"
r2=$(fetch p6 p4)
[[ $r2 == "relay | "* ]] || fail "p6 <- p4: $r2"
grep -q "holepunch skipped: the source has no address of our family" "$WORK/p4.log" ||
  fail "p4 did not skip the punch across families: $(grep "source .*: " "$WORK/p4.log" | tail -3)"
grep -q "reversal skipped: the source has no address of our family" "$WORK/p6.log" ||
  fail "p6 did not skip reversal across families: $(grep "source .*: " "$WORK/p6.log" | tail -3)"
ok "the IPv4-only and the IPv6-only peer meet through the relay, both ways, with no reversal or punch across the families"

# ---- 4. Happy Eyeballs ----------------------------------------------------------------------
natbed_exec sn1 nft -f - <<'NFT'
table inet brokenv6 {
  chain input {
    type filter hook input priority 0; policy accept;
    ip6 saddr 2001:db8::40 tcp dport 7070 drop
  }
}
NFT
NB_LISTEN="[::]:7071" nb_peer pdn pdn sn.bed:7070
wait_for "$WORK/pdn.log" "attached to supernode .*, which sees us at 20\.0\.0\.40:" 30
took=$(grep -Eo "connected to supernode [a-z0-9]+ in [0-9]+ ms" "$WORK/pdn.log" | head -1 | grep -Eo "[0-9]+ ms")
ok "sn.bed resolves to 2001:db8::10 and 20.0.0.10; with the IPv6 path broken, pdn raced IPv4 and attached over it ($took)"

for p in p6 pds p4 pdn; do nb_stop "$p"; done
nb_stop sn1
done_ok
