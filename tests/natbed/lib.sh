# tests/natbed/lib.sh - the NAT test bed (sourced, not run). docs/NATBED.md.
#
# Real topologies out of Linux network namespaces: an "internet" namespace
# holding bridge br0 (20.0.0.0/16), hosts on it with public addresses, home
# routers (nftables masquerade, a real miniupnpd for UPnP routers) and peers
# on the routers' LANs. No namespace of the bed has a link to the host
# namespace, so no packet can leave the machine (natbed_check_isolation).
#
#   natbed_init                      preflight, internet namespace, traps
#   natbed_host NAME IP              a public host on the bridge (supernodes)
#   natbed_router NAME KIND WAN_IP   KIND: upnp noupnp symmetric double public
#   natbed_peer NAME ROUTER          a host on ROUTER's LAN
#   natbed_ip NAME                   the node's own address
#   natbed_wan_ip ROUTER             the router's current public address
#   natbed_exec NAME CMD...          run CMD in NAME's namespace
#   natbed_spawn NAME LOGFILE CMD... run CMD in the background; prints its PID
#   natbed_upnp_restart ROUTER       miniupnpd restarted, all mappings lost
#   natbed_upnp_mappings ROUTER      "PROTO EXTPORT -> IP:PORT" per mapping
#   natbed_wan_change ROUTER NEW_IP  the router's public address changes
#   natbed_partition NAME / natbed_heal NAME
#   natbed_wan_outage ROUTER / natbed_wan_restore ROUTER: its WAN silent
#   natbed_lan_change PEER NEW_HOST: the peer's LAN address moves
#   natbed_check_isolation           exit 1 loudly when a link leaves the bed
#   natbed_teardown                  idempotent; also run on EXIT, INT, TERM
#
# Works with and without `set -euo pipefail`. When tests/e2e/lib.sh is used
# too, source it first: natbed_init chains its EXIT trap after the teardown.

NATBED_MINIUPNPD=${NATBED_MINIUPNPD:-/usr/sbin/miniupnpd}
# miniupnpd's HTTP (SOAP) port on every UPnP router; 0 = a random port that
# changes at each natbed_upnp_restart.
NATBED_UPNP_HTTP_PORT=${NATBED_UPNP_HTTP_PORT:-5000}
# Extra miniupnpd.conf lines for the UPnP routers created after it is set,
# e.g. NATBED_UPNP_EXTRA=$'force_igd_desc_v1=yes\nmax_lifetime=600'.
NATBED_UPNP_EXTRA=${NATBED_UPNP_EXTRA:-}

# ---------------------------------------------------------------- internals

_nb_die() { echo "natbed: $*" >&2; exit 1; }
_nb_cannot() { echo "NATBED CANNOT RUN: $*" >&2; exit 1; }
_nb_need_init() { [ -n "${NATBED_DIR:-}" ] && [ -d "$NATBED_DIR" ] || _nb_die "natbed_init first (or the bed was torn down)"; }

# Node records: $NATBED_DIR/node.NAME holds key=value lines (files, so that
# calls from subshells such as $(natbed_spawn ...) see the same state).
_nb_file() { printf '%s/node.%s' "$NATBED_DIR" "$1"; }
_nb_exists() { [ -f "$(_nb_file "$1")" ]; }
_nb_get() { # NAME KEY
  local f; f=$(_nb_file "$1")
  [ -f "$f" ] || _nb_die "no node '$1' in this bed"
  sed -n "s/^$2=//p" "$f" | tail -n 1
}
_nb_set() { # NAME KEY VALUE
  local f; f=$(_nb_file "$1")
  if [ -f "$f" ]; then sed -i "/^$2=/d" "$f"; fi
  printf '%s=%s\n' "$2" "$3" >>"$f"
}
_nb_next() { # COUNTER: prints 1, 2, 3, ...
  local f=$NATBED_DIR/counter.$1 n=0
  [ -f "$f" ] && n=$(cat "$f")
  n=$((n + 1)); echo "$n" >"$f"; echo "$n"
}
_nb_ns() { printf '%s%s' "$NATBED_PREFIX" "$1"; }
_nb_new_name() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || _nb_die "bad node name '$1'"
  [ "$1" != internet ] || _nb_die "'internet' is the bed's own namespace"
  [ ${#1} -le 40 ] || _nb_die "node name '$1' is too long"
  ! _nb_exists "$1" || _nb_die "node '$1' exists already"
}
_nb_valid_public() {
  [[ $1 =~ ^20\.0\.([0-9]+)\.([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -le 255 ] &&
    [ "${BASH_REMATCH[2]}" -ge 1 ] && [ "${BASH_REMATCH[2]}" -le 254 ] ||
    _nb_die "'$1' is not a host address in the bed's internet 20.0.0.0/16"
  [ ! -e "$NATBED_DIR/addr.$1" ] || _nb_die "address $1 is in use already"
}
_nb_ip2int() { local IFS=.; set -- $1; echo $(( ($1 << 24) + ($2 << 16) + ($3 << 8) + $4 )); }
_nb_int2ip() { echo "$(( $1 >> 24 & 255 )).$(( $1 >> 16 & 255 )).$(( $1 >> 8 & 255 )).$(( $1 & 255 ))"; }

# _nb_wait SECONDS DESCRIPTION CMD...: poll CMD until it succeeds.
_nb_wait() {
  local secs=$1; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

_nb_sysctl() { ip netns exec "$1" sysctl -qw "$2" >/dev/null; }

# A fresh namespace with loopback up and IPv6 off (the bed is IPv4 only).
_nb_add_ns() {
  local ns=$1
  ip netns add "$ns" || _nb_die "ip netns add $ns failed"
  ip -n "$ns" link set lo up
  _nb_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=1
  _nb_sysctl "$ns" net.ipv6.conf.default.disable_ipv6=1
  # A host with br_netfilter loaded would send bridged LAN traffic through
  # the router's forward chain (and drop it there): the bed must not depend
  # on the host. These sysctls exist per namespace only while br_netfilter
  # is loaded; without it there is nothing to turn off.
  local k
  for k in iptables ip6tables arptables; do
    if ip netns exec "$ns" test -e "/proc/sys/net/bridge/bridge-nf-call-$k"; then
      _nb_sysctl "$ns" "net.bridge.bridge-nf-call-$k=0" ||
        _nb_die "cannot set net.bridge.bridge-nf-call-$k=0 in $ns (br_netfilter would filter the LAN bridges)"
    fi
  done
}

# _nb_link_to_bridge NS IFNAME BRIDGE_NS BRIDGE: a veth pair created with each
# end directly in its namespace (nothing ever exists in the host namespace).
_nb_link_to_bridge() {
  local ns=$1 ifname=$2 bns=$3 br=$4 port
  port=p$(_nb_next port.$bns)
  ip link add "$ifname" netns "$ns" type veth peer name "$port" netns "$bns" ||
    _nb_die "veth $ns/$ifname <-> $bns/$port failed"
  ip -n "$bns" link set "$port" master "$br" up
  ip -n "$ns" link set "$ifname" up
  _NB_PORT=$port
}

_nb_add_bridge() { # NS NAME
  ip -n "$1" link add "$2" type bridge || return 1
  # Snooping off: SSDP multicast reaches every port without an IGMP querier.
  ip -n "$1" link set "$2" type bridge mcast_snooping 0 forward_delay 0
  ip -n "$1" link set "$2" up
}

# ------------------------------------------------------------------- traps

_natbed_on_exit() {
  local rc=$?
  natbed_teardown || true
  if [ -n "${_NATBED_OLD_EXIT:-}" ]; then
    # Hand the test's exit status on to the chained handler (e2e cleanup).
    if [ $rc -eq 0 ]; then eval "$_NATBED_OLD_EXIT"
    else _nb_status "$rc" || eval "$_NATBED_OLD_EXIT"; fi
  fi
  exit $rc
}
_nb_status() { return "$1"; }
_natbed_on_signal() { exit "$1"; } # the EXIT trap then tears down

# Installs the traps; an existing EXIT handler (tests/e2e/lib.sh's cleanup)
# is chained after the teardown. Called again by every builder, so a trap
# set after natbed_init (e2e lib.sh sourced late) is chained too.
_nb_install_trap() {
  local cur
  cur=$(trap -p EXIT)
  case $cur in *_natbed_on_exit*) return 0 ;; esac
  _NATBED_OLD_EXIT=
  if [ -n "$cur" ]; then
    eval "set -- $cur"          # trap -- 'HANDLER' EXIT
    _NATBED_OLD_EXIT=$3
  fi
  trap _natbed_on_exit EXIT
  trap '_natbed_on_signal 130' INT
  trap '_natbed_on_signal 143' TERM
}

# ---------------------------------------------------------------- the API

natbed_init() {
  [ -z "${NATBED_DIR:-}" ] || _nb_die "natbed_init: already initialised"
  [ "$(id -u)" -eq 0 ] || _nb_cannot "needs root (network namespaces, nftables)"
  local t
  for t in ip nft conntrack python3; do
    command -v "$t" >/dev/null || _nb_cannot "'$t' not found (deploy/sova-dev deps installs it)"
  done
  [ -x "$NATBED_MINIUPNPD" ] || _nb_cannot "$NATBED_MINIUPNPD not found (Debian package miniupnpd-nftables)"
  NATBED_PREFIX="sova${BASHPID}-"
  NATBED_HOST_NETNS=$(readlink /proc/self/ns/net)
  _nb_reap_stale
  NATBED_DIR=$(mktemp -d /tmp/natbed.XXXXXX)
  _nb_install_trap
  local inet err
  inet=$(_nb_ns internet)
  if ! err=$(ip netns add "$inet" 2>&1); then
    _nb_cannot "'ip netns add' does not work here: $err"
  fi
  ip -n "$inet" link set lo up
  _nb_sysctl "$inet" net.ipv6.conf.all.disable_ipv6=1
  _nb_sysctl "$inet" net.ipv6.conf.default.disable_ipv6=1
  _nb_add_bridge "$inet" br0 2>/dev/null || _nb_cannot "cannot create a bridge in a namespace"
  if ! err=$(ip netns exec "$inet" nft list ruleset 2>&1); then
    _nb_cannot "nftables does not work in a namespace: $err"
  fi
  printf 'kind=internet\n' >"$(_nb_file internet)"
  natbed_check_isolation
}

# Namespaces of killed runs ("sova<PID>-" whose PID is gone) are removed.
_nb_reap_stale() {
  local ns pid p
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ $ns =~ ^sova([0-9]+)- ]] || continue
    pid=${BASH_REMATCH[1]}
    [ -d "/proc/$pid" ] && continue
    echo "natbed: removing namespace $ns left by a dead run (pid $pid)" >&2
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

# natbed_host NAME IP [IP6]: IP "-" for none (an IPv6-only host); IP6, an
# address of the bed's IPv6 internet 2001:db8::/64, turns IPv6 on in the
# host's namespace (a dual-stack or IPv6-only host).
natbed_host() { # NAME IP [IP6]
  [ $# -eq 2 ] || [ $# -eq 3 ] || _nb_die "usage: natbed_host NAME IP [IP6]"
  _nb_need_init; _nb_install_trap
  local name=$1 ip=$2 ip6=${3:-} ns
  _nb_new_name "$name"
  [ "$ip" = - ] || _nb_valid_public "$ip"
  [ "$ip" != - ] || [ -n "$ip6" ] || _nb_die "natbed_host $name: no address at all"
  [ -z "$ip6" ] || _nb_valid_public6 "$ip6"
  ns=$(_nb_ns "$name")
  _nb_add_public_node "$name" "$ns" "$ip" "$ip6"
  _nb_set "$name" kind host
}

_nb_valid_public6() {
  [[ $1 =~ ^2001:db8::[0-9a-f]{1,4}$ ]] ||
    _nb_die "'$1' is not a host address in the bed's IPv6 internet 2001:db8::/64"
  [ ! -e "$NATBED_DIR/addr.$1" ] || _nb_die "address $1 is in use already"
}

_nb_add_public_node() { # NAME NS IP [IP6]: a namespace with eth0 on the bridge
  local name=$1 ns=$2 ip=$3 ip6=${4:-}
  _nb_add_ns "$ns"
  printf 'ns=%s\n' "$ns" >"$(_nb_file "$name")"
  _nb_link_to_bridge "$ns" eth0 "$(_nb_ns internet)" br0
  if [ "$ip" != - ]; then
    printf 'ip=%s\n' "$ip" >>"$(_nb_file "$name")"
    : >"$NATBED_DIR/addr.$ip"
    ip -n "$ns" addr add "$ip/16" dev eth0
    ip -n "$ns" route add default dev eth0
  fi
  if [ -n "$ip6" ]; then
    printf 'ip6=%s\n' "$ip6" >>"$(_nb_file "$name")"
    : >"$NATBED_DIR/addr.$ip6"
    _nb_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=0
    _nb_sysctl "$ns" net.ipv6.conf.default.disable_ipv6=0
    _nb_sysctl "$ns" net.ipv6.conf.eth0.disable_ipv6=0
    ip -n "$ns" addr add "$ip6/64" dev eth0 nodad
    ip -n "$ns" -6 route add default dev eth0
  fi
}

# The router's nftables: forward LAN -> WAN and replies only; masquerade on
# the WAN; the chains miniupnpd fills (present, empty, on every NAT kind).
# Unsolicited traffic from the WAN to the router itself is dropped.
_nb_router_nft() { # NS MASQUERADE_FLAGS
  ip netns exec "$1" nft -f - <<EOF
table inet filter {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "wan" ct state established,related accept
    iifname "wan" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    iifname "wan" drop
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "br-lan" oifname "wan" accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
}
table inet nat {
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    meta nfproto ipv4 oifname "wan" masquerade $2
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
EOF
}

# A NAT router namespace: forwarding on, LAN bridge "br-lan" 10.<n>.0.1/24,
# the nftables above; the caller adds "wan".
_nb_make_nat_router() { # NAME NS N MASQ_FLAGS
  local name=$1 ns=$2 n=$3 masq=$4
  _nb_add_ns "$ns"
  _nb_sysctl "$ns" net.ipv4.ip_forward=1
  _nb_add_bridge "$ns" br-lan || _nb_die "bridge in $ns failed"
  ip -n "$ns" addr add "10.$n.0.1/24" dev br-lan
  _nb_router_nft "$ns" "$masq" || _nb_die "nftables rules for router $name failed"
}

# natbed_router NAME KIND WAN_IP [WAN_IP6]: with WAN_IP6 (an address of the
# bed's IPv6 internet) the LAN has IPv6 too: the routed prefix
# 2001:db8:<n>::/64 (no NAT), behind the router's stateful firewall (only
# replies come in, and what miniupnpd's PCP pinholes let in); the router
# answers neighbour solicitations on the WAN for its hosts (proxy NDP).
natbed_router() { # NAME KIND WAN_IP [WAN_IP6]
  [ $# -eq 3 ] || [ $# -eq 4 ] ||
    _nb_die "usage: natbed_router NAME upnp|noupnp|symmetric|double|public WAN_IP [WAN_IP6]"
  _nb_need_init; _nb_install_trap
  local name=$1 kind=$2 wan=$3 wan6=${4:-} ns n m inner masq=""
  _nb_new_name "$name"; _nb_valid_public "$wan"
  [ -z "$wan6" ] || _nb_valid_public6 "$wan6"
  case $kind in double|public) [ -z "$wan6" ] || _nb_die "router kind $kind has no IPv6 LAN" ;; esac
  case $kind in upnp|noupnp|symmetric|double|public) ;; *) _nb_die "unknown router kind '$kind'" ;; esac
  if [ "$kind" = public ]; then
    # No namespace: its peers are hosts on the bridge, WAN_IP, WAN_IP+1, ...
    printf 'kind=router\nrkind=public\nwan_ip=%s\npub_next=%s\n' "$wan" "$(_nb_ip2int "$wan")" \
      >"$(_nb_file "$name")"
    return 0
  fi
  ns=$(_nb_ns "$name")
  n=$(_nb_next subnet)
  [ "$kind" = symmetric ] && masq=random
  _nb_make_nat_router "$name" "$ns" "$n" "$masq"
  printf 'kind=router\nrkind=%s\nns=%s\nwan_ip=%s\nip=10.%s.0.1\n' "$kind" "$ns" "$wan" "$n" \
    >"$(_nb_file "$name")"
  : >"$NATBED_DIR/addr.$wan"
  _nb_link_to_bridge "$ns" wan "$(_nb_ns internet)" br0
  ip -n "$ns" addr add "$wan/16" dev wan
  ip -n "$ns" route add default dev wan
  if [ -n "$wan6" ]; then
    : >"$NATBED_DIR/addr.$wan6"
    local k
    for k in all.disable_ipv6=0 default.disable_ipv6=0 wan.disable_ipv6=0 br-lan.disable_ipv6=0 \
             all.forwarding=1 all.proxy_ndp=1 wan.proxy_ndp=1; do
      _nb_sysctl "$ns" "net.ipv6.conf.$k"
    done
    ip -n "$ns" addr add "$wan6/64" dev wan nodad
    ip -n "$ns" addr add "2001:db8:$n::1/64" dev br-lan nodad
    ip -n "$ns" -6 route add default dev wan
    printf 'wan_ip6=%s\nlan6_prefix=2001:db8:%s::\n' "$wan6" "$n" >>"$(_nb_file "$name")"
  fi
  if [ "$kind" = double ]; then
    # The inner router (no UPnP) is a host on the outer router's LAN.
    inner=$name-inner
    _nb_new_name "$inner"
    m=$(_nb_next subnet)
    _nb_make_nat_router "$inner" "$(_nb_ns "$inner")" "$m" ""
    printf 'kind=router\nrkind=inner\nns=%s\nwan_ip=10.%s.0.2\nip=10.%s.0.1\nlan_prefix=10.%s.0\nhost_next=10\n' \
      "$(_nb_ns "$inner")" "$n" "$m" "$m" >"$(_nb_file "$inner")"
    _nb_link_to_bridge "$(_nb_ns "$inner")" wan "$ns" br-lan
    ip -n "$(_nb_ns "$inner")" addr add "10.$n.0.2/24" dev wan
    ip -n "$(_nb_ns "$inner")" route add default via "10.$n.0.1"
    _nb_set "$name" lan_router "$inner"
  else
    _nb_set "$name" lan_prefix "10.$n.0"
    _nb_set "$name" host_next 10
    _nb_set "$name" lan_router "$name"
  fi
  if [ "$kind" = upnp ] || [ "$kind" = double ]; then
    _nb_upnp_config "$name" "$ns" "10.$n.0.0/24" "$wan6"
    _nb_upnp_start "$name"
  fi
}

# miniupnpd's own config in the bed's directory: IGD + NAT-PMP/PCP on the
# LAN bridge, secure mode (a client maps only to itself), ports >= 1024 for
# the LAN only, no lease file (a restart loses every mapping).
_nb_upnp_config() { # NAME NS LAN_NET [WAN_IP6]: with WAN_IP6, PCP pinholes for the IPv6 LAN
  local name=$1 conf=$NATBED_DIR/$1.miniupnpd.conf uuid v6=yes
  [ -z "${4:-}" ] || v6=no
  uuid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$conf" <<EOF
ext_ifname=wan
listening_ip=br-lan
port=$NATBED_UPNP_HTTP_PORT
enable_upnp=yes
enable_natpmp=yes
ipv6_disable=$v6
secure_mode=yes
system_uptime=no
notify_interval=30
clean_ruleset_interval=600
uuid=$uuid
friendly_name=natbed $name
upnp_table_name=filter
upnp_nat_table_name=nat
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
$NATBED_UPNP_EXTRA
allow 1024-65535 $3 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
  _nb_set "$name" upnp_conf "$conf"
  _nb_set "$name" upnp_log "$NATBED_DIR/$name.miniupnpd.log"
  _nb_set "$name" upnp_starts 0
}

_nb_upnp_ready() { # LOG N: the N-th start of miniupnpd listens on all its sockets
  local n
  n=$(grep -c 'Listening for NAT-PMP/PCP traffic' "$1" 2>/dev/null || true)
  [ "${n:-0}" -ge "$2" ]
}

_nb_upnp_start() { # NAME
  local name=$1 ns log starts pid
  ns=$(_nb_get "$name" ns); log=$(_nb_get "$name" upnp_log)
  starts=$(( $(_nb_get "$name" upnp_starts) + 1 ))
  # -d: foreground, log to stderr; -P: pid file in the bed, not /run.
  ip netns exec "$ns" "$NATBED_MINIUPNPD" -d -f "$(_nb_get "$name" upnp_conf)" \
    -P "$NATBED_DIR/$name.miniupnpd.pid" >>"$log" 2>&1 </dev/null &
  pid=$!
  _nb_set "$name" upnp_pid "$pid"
  _nb_set "$name" upnp_starts "$starts"
  local deadline=$((SECONDS + 10))
  until _nb_upnp_ready "$log" "$starts"; do
    kill -0 "$pid" 2>/dev/null || _nb_die "miniupnpd of $name exited at start: $(tail -n 5 "$log")"
    [ $SECONDS -lt $deadline ] || _nb_die "miniupnpd of $name not ready after 10 s: $(tail -n 5 "$log")"
    sleep 0.05
  done
}

natbed_peer() { # NAME ROUTER
  [ $# -eq 2 ] || _nb_die "usage: natbed_peer NAME ROUTER"
  _nb_need_init; _nb_install_trap
  local name=$1 router=$2 rkind lan ns rns prefix k ip
  _nb_new_name "$name"
  [ "$(_nb_get "$router" kind)" = router ] || _nb_die "'$router' is not a router"
  rkind=$(_nb_get "$router" rkind)
  ns=$(_nb_ns "$name")
  if [ "$rkind" = public ]; then
    k=$(_nb_get "$router" pub_next)
    ip=$(_nb_int2ip "$k")
    _nb_valid_public "$ip"
    _nb_set "$router" pub_next $((k + 1))
    _nb_add_public_node "$name" "$ns" "$ip"
  else
    lan=$(_nb_get "$router" lan_router)
    rns=$(_nb_get "$lan" ns)
    prefix=$(_nb_get "$lan" lan_prefix)
    k=$(_nb_get "$lan" host_next)
    [ "$k" -le 254 ] || _nb_die "LAN of $router is full"
    _nb_set "$lan" host_next $((k + 1))
    ip=$prefix.$k
    _nb_add_ns "$ns"
    printf 'ns=%s\nip=%s\n' "$ns" "$ip" >"$(_nb_file "$name")"
    _nb_link_to_bridge "$ns" eth0 "$rns" br-lan
    printf 'lan_port=%s\nlan_ns=%s\n' "$_NB_PORT" "$rns" >>"$(_nb_file "$name")"
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" route add default via "$prefix.1"
    local p6 ip6
    p6=$(_nb_get "$lan" lan6_prefix)
    if [ -n "$p6" ]; then # the router's IPv6 LAN: a global address, the router's firewall
      ip6=$p6$(printf '%x' "$k")
      _nb_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=0
      _nb_sysctl "$ns" net.ipv6.conf.default.disable_ipv6=0
      _nb_sysctl "$ns" net.ipv6.conf.eth0.disable_ipv6=0
      ip -n "$ns" addr add "$ip6/64" dev eth0 nodad
      ip -n "$ns" -6 route add default via "${p6}1"
      ip -n "$rns" -6 neigh add proxy "$ip6" dev wan
      _nb_set "$name" ip6 "$ip6"
    fi
  fi
  _nb_set "$name" kind peer
  _nb_set "$name" router "$router"
}

natbed_ip() { # NAME
  _nb_need_init
  local ip
  ip=$(_nb_get "$1" ip)
  [ -n "$ip" ] || _nb_die "'$1' has no address of its own"
  echo "$ip"
}

# The node's own /etc/hosts (ip netns exec bind-mounts /etc/netns/NS/hosts
# over /etc/hosts for what runs in it): names for the bed's addresses.
natbed_hosts() { # NAME "ADDR NAME"...
  _nb_need_init
  local ns d; ns=$(_nb_node_ns "$1"); shift
  d=/etc/netns/$ns
  mkdir -p "$d" || _nb_die "cannot make $d"
  printf '127.0.0.1 localhost\n' >"$d/hosts"
  printf '%s\n' "$@" >>"$d/hosts"
  # A name server nobody runs (libevent's resolver wants one configured to
  # consult the hosts file at all): names come from the hosts file only.
  printf 'nameserver 127.0.0.1\n' >"$d/resolv.conf"
}

natbed_ip6() { # NAME: a host's IPv6 address
  _nb_need_init
  local ip
  ip=$(_nb_get "$1" ip6)
  [ -n "$ip" ] || _nb_die "'$1' has no IPv6 address"
  echo "$ip"
}

natbed_wan_ip() { # ROUTER
  _nb_need_init
  [ "$(_nb_get "$1" kind)" = router ] || _nb_die "'$1' is not a router"
  _nb_get "$1" wan_ip
}

_nb_node_ns() { # NAME -> namespace (fails for nodes without one)
  local ns
  ns=$(_nb_get "$1" ns)
  [ "$1" != internet ] || ns=$(_nb_ns internet)
  [ -n "$ns" ] || _nb_die "'$1' has no namespace (a public router is only an address range)"
  echo "$ns"
}

natbed_exec() { # NAME CMD...
  [ $# -ge 2 ] || _nb_die "usage: natbed_exec NAME CMD..."
  _nb_need_init
  local ns; ns=$(_nb_node_ns "$1"); shift
  ip netns exec "$ns" "$@"
}

# natbed_spawn NAME LOGFILE CMD...: prints the PID. Also sets NATBED_PID when
# called without $(...), so the caller can `wait "$NATBED_PID"`.
natbed_spawn() {
  [ $# -ge 3 ] || _nb_die "usage: natbed_spawn NAME LOGFILE CMD..."
  _nb_need_init
  local ns log=$2; ns=$(_nb_node_ns "$1"); shift 2
  ip netns exec "$ns" "$@" >>"$log" 2>&1 </dev/null &
  NATBED_PID=$!
  echo "$NATBED_PID" >>"$NATBED_DIR/pids"
  echo "$NATBED_PID"
}

_nb_upnp_router() { # ROUTER -> the router running miniupnpd
  [ "$(_nb_get "$1" kind)" = router ] || _nb_die "'$1' is not a router"
  case $(_nb_get "$1" rkind) in
    upnp|double) echo "$1" ;;
    *) _nb_die "router '$1' has no miniupnpd" ;;
  esac
}

natbed_upnp_restart() { # ROUTER
  natbed_upnp_stop "$1"
  natbed_upnp_start "$1"
}

# miniupnpd stops and every mapping is gone (UPnP switched off in the
# router's settings, or the router going down); natbed_upnp_start brings it
# back.
natbed_upnp_stop() { # ROUTER
  _nb_need_init
  local r ns pid
  r=$(_nb_upnp_router "$1"); ns=$(_nb_get "$r" ns); pid=$(_nb_get "$r" upnp_pid)
  if kill -TERM "$pid" 2>/dev/null; then
    _nb_wait 10 "miniupnpd exit" _nb_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  ip netns exec "$ns" nft flush chain inet filter miniupnpd
  ip netns exec "$ns" nft flush chain inet nat prerouting_miniupnpd
  ip netns exec "$ns" nft flush chain inet nat postrouting_miniupnpd
}

# The peer's LAN port is isolated, as on a guest Wi-Fi ("AP isolation"):
# it reaches the router and the internet, but no other isolated port.
natbed_lan_isolate() { # PEER
  _nb_need_init
  [ "$(_nb_get "$1" kind)" = peer ] || _nb_die "'$1' is not a peer"
  local port; port=$(_nb_get "$1" lan_port)
  [ -n "$port" ] || _nb_die "'$1' is not on a router's LAN"
  bridge -n "$(_nb_get "$1" lan_ns)" link set dev "$port" isolated on ||
    _nb_die "cannot isolate the LAN port of $1"
}

natbed_upnp_start() { # ROUTER
  _nb_need_init
  local r pid
  r=$(_nb_upnp_router "$1"); pid=$(_nb_get "$r" upnp_pid)
  ! kill -0 "$pid" 2>/dev/null || _nb_die "miniupnpd of $r is running"
  _nb_upnp_start "$r"
}
_nb_gone() { ! kill -0 "$1" 2>/dev/null; }

# One line per mapping: "TCP 19000 -> 10.1.0.10:9000", sorted. Read from
# miniupnpd's DNAT chain, i.e. what the kernel really forwards.
natbed_upnp_mappings() { # ROUTER
  _nb_need_init
  local r ns
  r=$(_nb_upnp_router "$1"); ns=$(_nb_get "$r" ns)
  ip netns exec "$ns" nft list chain inet nat prerouting_miniupnpd | awk '
    / dnat / {
      proto = "?"; port = "?"; to = "?"
      for (i = 1; i <= NF; i++) {
        if ($i == "@nh,72,8") proto = ($(i+1) == "0x6" ? "TCP" : ($(i+1) == "0x11" ? "UDP" : $(i+1)))
        if ($i == "tcp" || $i == "udp") proto = toupper($i)
        if ($i == "dport") port = $(i+1)
        if ($i == "to") to = $(i+1)
      }
      print proto " " port " -> " to
    }' | sort
}

natbed_wan_change() { # ROUTER NEW_IP
  [ $# -eq 2 ] || _nb_die "usage: natbed_wan_change ROUTER NEW_IP"
  _nb_need_init
  local r=$1 new=$2 old ns rkind
  [ "$(_nb_get "$r" kind)" = router ] || _nb_die "'$r' is not a router"
  rkind=$(_nb_get "$r" rkind)
  case $rkind in public|inner) _nb_die "natbed_wan_change: '$r' ($rkind) has no WAN of its own" ;; esac
  _nb_valid_public "$new"
  ns=$(_nb_get "$r" ns); old=$(_nb_get "$r" wan_ip)
  ip -n "$ns" addr del "$old/16" dev wan
  ip -n "$ns" addr add "$new/16" dev wan
  ip -n "$ns" route replace default dev wan
  # Connections through the old address are dead, as after a PPPoE reconnect
  # (conntrack exits 1 when there was nothing to delete).
  ip netns exec "$ns" conntrack -D --reply-dst "$old" >/dev/null 2>&1 || true
  ip netns exec "$ns" conntrack -D --orig-dst "$old" >/dev/null 2>&1 || true
  rm -f "$NATBED_DIR/addr.$old"; : >"$NATBED_DIR/addr.$new"
  _nb_set "$r" wan_ip "$new"
  # miniupnpd reads the address from the interface at every request and
  # notices the change itself (it watches the interface's addresses).
}

natbed_partition() { # NAME: drop everything to and from NAME (loopback stays)
  _nb_need_init
  local ns; ns=$(_nb_node_ns "$1")
  ip netns exec "$ns" nft -f - <<'EOF'
table inet natbed_partition {
  chain in {
    type filter hook prerouting priority -400; policy drop;
    iif "lo" accept
  }
  chain out {
    type filter hook output priority -400; policy drop;
    oif "lo" accept
  }
}
EOF
}

natbed_heal() { # NAME
  _nb_need_init
  local ns; ns=$(_nb_node_ns "$1")
  ip netns exec "$ns" nft delete table inet natbed_partition
}

natbed_lan_change() { # PEER NEW_HOST: the peer's LAN address moves to LAN_PREFIX.NEW_HOST (a new DHCP lease)
  [ $# -eq 2 ] || _nb_die "usage: natbed_lan_change PEER NEW_HOST"
  _nb_need_init
  local p=$1 ns old router lan prefix new
  [ "$(_nb_get "$p" kind)" = peer ] || _nb_die "'$p' is not a peer"
  ns=$(_nb_get "$p" ns); old=$(_nb_get "$p" ip)
  router=$(_nb_get "$p" router); lan=$(_nb_get "$router" lan_router)
  prefix=$(_nb_get "$lan" lan_prefix); new=$prefix.$2
  [ "$new" != "$old" ] || _nb_die "natbed_lan_change: $p is at $new already"
  # As a DHCP client does: the old lease's address goes, the new one comes,
  # the default route is set again.
  ip -n "$ns" addr del "$old/24" dev eth0
  ip -n "$ns" addr add "$new/24" dev eth0
  ip -n "$ns" route replace default via "$prefix.1"
  _nb_set "$p" ip "$new"
}

natbed_wan_outage() { # ROUTER: its WAN goes silent (the line is down; the router and LAN stay up)
  _nb_need_init
  local ns; ns=$(_nb_node_ns "$1")
  ip netns exec "$ns" nft -f - <<'EOF'
table inet natbed_outage {
  chain in {
    type filter hook prerouting priority -400; policy accept;
    iifname "wan" drop
  }
  chain out {
    type filter hook postrouting priority 400; policy accept;
    oifname "wan" drop
  }
}
EOF
}

natbed_wan_restore() { # ROUTER
  _nb_need_init
  local ns; ns=$(_nb_node_ns "$1")
  ip netns exec "$ns" nft delete table inet natbed_outage
}

# Every namespace of the bed: a separate network namespace whose links are
# loopback, bridges, and veths whose other end is in a namespace of the bed.
natbed_check_isolation() {
  local ns nss line name bad=() ino
  nss=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${NATBED_PREFIX:?natbed_init first}" || true)
  [ -n "$nss" ] || bad+=("no namespace of the bed found (prefix $NATBED_PREFIX)")
  for ns in $nss; do
    ino=$(ip netns exec "$ns" readlink /proc/self/ns/net 2>/dev/null || echo unknown)
    if [ "$ino" = "$NATBED_HOST_NETNS" ] || [ "$ino" = unknown ]; then
      bad+=("$ns: is not a network namespace of its own ($ino)")
      continue
    fi
    while IFS= read -r line; do
      name=$(echo "$line" | awk -F': ' '{print $2}')
      case $line in
        *" link/loopback "*) ;;
        *" link-netns ${NATBED_PREFIX}"*" veth "*) ;;
        *link-netns*) bad+=("$ns: $name leads to a namespace outside the bed ($(echo "$line" | grep -o 'link-netns[id]* [^ ]*'))") ;;
        *"\\    bridge "*) ;;
        *" veth "*) ;; # both ends in this namespace
        *) bad+=("$ns: unexpected link $name: $(echo "$line" | cut -c1-160)") ;;
      esac
    done < <(ip -n "$ns" -d -o link show)
  done
  # And from the host namespace: nothing may point into the bed.
  while IFS= read -r line; do
    case $line in
      *" link-netns ${NATBED_PREFIX}"*) bad+=("host namespace: $(echo "$line" | awk -F': ' '{print $2}') leads into the bed") ;;
    esac
  done < <(ip -d -o link show)
  if [ ${#bad[@]} -gt 0 ]; then
    echo "NATBED ISOLATION FAILED:" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
  fi
}

# Kills every process in the bed's namespaces, deletes the namespaces and
# the bed's directory. Idempotent; run by the EXIT/INT/TERM traps.
natbed_teardown() {
  [ -n "${NATBED_PREFIX:-}" ] || return 0
  local nss ns p left deadline sig
  nss=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${NATBED_PREFIX}" || true)
  for sig in TERM KILL; do
    left=
    for ns in $nss; do
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -"$sig" "$p" 2>/dev/null || true; left=1; done
    done
    [ -n "$left" ] || break
    deadline=$((SECONDS + 5))
    while [ $SECONDS -lt $deadline ]; do
      left=
      for ns in $nss; do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] || left=1; done
      [ -n "$left" ] || break
      sleep 0.05
    done
    [ -n "$left" ] || break
  done
  # Reap our own children (miniupnpd, spawned commands) quietly.
  if [ -n "${NATBED_DIR:-}" ]; then
    for p in $(cat "$NATBED_DIR"/pids 2>/dev/null) $(sed -n 's/^upnp_pid=//p' "$NATBED_DIR"/node.* 2>/dev/null); do
      wait "$p" 2>/dev/null || true
    done
  fi
  for ns in $nss; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf /etc/netns/"${NATBED_PREFIX}"* 2>/dev/null || true
  [ -n "${NATBED_DIR:-}" ] && rm -rf "$NATBED_DIR"
  NATBED_DIR=
  left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${NATBED_PREFIX}" || true)
  if [ -n "$left" ]; then
    echo "natbed: teardown left namespaces behind: $left" >&2
    return 1
  fi
  return 0
}
