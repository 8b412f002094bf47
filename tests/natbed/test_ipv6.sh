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
#     timeout on IPv6, again and again, without the race);
#  5. IPv6 behind a home router's stateful firewall: the peer behind a
#     router that speaks PCP opens a pinhole (miniupnpd adds it to the
#     firewall), is proved reachable through it and downloaded from
#     directly over IPv6; the pinhole is deleted when the peer stops. The
#     peer behind a firewall without PCP is unreachable (the dial-back is
#     dropped) and is reached by reversal.
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
natbed_router r6 upnp 20.0.2.1 2001:db8::102    # dual-stack LAN, firewall with PCP pinholes
natbed_peer ph r6
natbed_router r6n noupnp 20.0.3.1 2001:db8::103 # dual-stack LAN, firewall without PCP
natbed_peer pf r6n
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

# ---- 5. a pinhole in the router's IPv6 firewall ----------------------------------------
PH6=$(natbed_ip6 ph); PF6=$(natbed_ip6 pf)
pinholes() { natbed_exec r6 nft list chain inet filter miniupnpd; }
for p in ph pf; do
  mkdir -p "$WORK/$p/share"
  head -c $((2000000 + RANDOM)) /dev/urandom >"$WORK/$p/share/six-$p.bin"
  NB_LISTEN="[::]:7071" nb_peer "$p" "$p" "[2001:db8::10]:7070"
done
nb_wait_reach ph mapped 40
nb_wait_reach pf unreachable 40
why=$(nb_status ph | nb_json 'j["reach"]["why"]')
[[ $why == *"through the router's IPv6 firewall pinhole"* ]] || fail "ph: $why"
proved=$(nb_status ph | nb_json 'j["reach"]["address"]')
[ "$proved" = "[$PH6]:7071" ] || fail "ph proved at $proved, not at its pinhole [$PH6]:7071"
ph_hole=$(nb_status ph | nb_json 'j["reach"]["pinhole"]["method"] + " " + j["reach"]["pinhole"]["address"]')
[ "$ph_hole" = "pcp [$PH6]:7071" ] || fail "ph's pinhole in status: $ph_hole"
# hexadecimal, as nft prints the rule's address match
ph_hex=$(python3 -c 'import ipaddress,sys; print(ipaddress.ip_address(sys.argv[1]).packed.hex())' "$PH6")
# (the rules captured first: grep -q ending the pipe early would fail nft under pipefail)
has_pinhole() { local rules; rules=$(pinholes); [[ $rules == *"dport 7071 "*"0x$ph_hex"* ]]; }
has_pinhole || fail "no pinhole for ph in r6's firewall: $(pinholes)"
line=$("$PEER_BIN" --state-dir "$WORK/ph/state" status | grep "^pinhole ") || fail "ph's status has no pinhole line"
[[ $line == *"IPv6 pinhole [$PH6]:7071 by pcp" ]] || fail "ph's status: $line"
why_f=$(nb_status pf | nb_json 'j["reach"]["why"]')
[[ $why_f == *"[$PF6]:7071 timed out"* || $why_f == *"[$PF6]:7071"*"time"* ]] ||
  fail "pf's dial-back over IPv6 was not dropped by its firewall: $why_f"
ok "behind a PCP router ph opened an IPv6 pinhole ($ph_hole, in r6's firewall) and was proved through it; pf, behind a firewall without PCP, stays unreachable ($why_f)"

for p in ph pf; do wait_for "$WORK/$p.log" "published 1 shared files" 20; done
r=$(fetch p6 ph)
[[ $r == "direct | direct: mapped [$PH6]:7071, IPv6" ]] || fail "p6 <- ph: $r"
r2=$(fetch p6 pf)
[[ $r2 == "reversal | "* ]] || fail "p6 <- pf: $r2"
ok "p6 downloads from ph directly through its pinhole ($r) and from pf by reversal ($r2)"

nb_stop ph
# miniupnpd 2.3.1 (nftables) cannot delete a PCP pinhole on request (its
# rules do not carry the mapping's nonce; docs/NATBED.md): ph must then have
# asked for the shortest lease instead, and said so.
if has_pinhole; then
  lease=$(grep -Eo "PCP delete: 2 NOT_AUTHORIZED; the pinhole now ends with the shortest lease the router grants \([0-9]+ s\)" "$WORK/ph.log" | grep -Eo "[0-9]+ s") ||
    fail "ph stopped, its pinhole is still open, and ph did not shorten it: $(grep nat "$WORK/ph.log" | tail -3)"
  ok "ph stopped: r6 refused to delete the pinhole (NOT_AUTHORIZED), so ph cut its lease to the router's shortest ($lease)"
else
  ok "ph stopped and deleted its pinhole (PCP MAP with lifetime 0)"
fi

for p in p6 pds p4 pdn pf; do nb_stop "$p"; done
nb_stop sn1
done_ok
