/* nat_path.h - the two decisions about reachability, as pure functions
 * (no I/O, no clock; unit-tested in tests/unit/test_nat_path.c):
 *
 *  - what a peer is: public, mapped or unreachable, from the outcome of a
 *    supernode's dial-back, the router's port mapping and what the
 *    supernode observes, with the reason in words ("why am I relayed?");
 *  - which way to reach a source for a download: direct to it if it can be
 *    reached, else connection reversal if we can be reached, else a relay
 *    circuit through the supernodes; each step says why.
 * The daemon (ordinary/op_reach.c, ordinary/op_fetch_source.c) supplies
 * the facts and does the I/O.
 */
#ifndef SOVA_NAT_PATH_H
#define SOVA_NAT_PATH_H

#include "msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- our reachability ------------------------------------------------------------ */

const char *nat_reach_str(uint8_t reach); /* "public", "mapped", "unreachable", "unknown" */

/* The addresses worth a dial-back, best first, without duplicates: the
 * router's mapping (if any), our own listen address (if specific), and the
 * address the supernode sees with our listen port (a public host listening
 * on a wildcard address, or a router forwarding the port). Returns how many
 * (at most cap). */
size_t nat_reach_candidates(const struct wire_addr *mapped, const struct wire_addr *listen,
                            const struct wire_addr *observed, uint16_t listen_port,
                            struct wire_addr *out, size_t cap);

struct nat_reach_facts {
    const struct msg_dialback_probe *probes; /* the supernode's outcomes */
    size_t n_probes;
    const struct wire_addr *mapped; /* the router's mapping, NULL if none */
    const char *mapping_state;      /* "no UPnP/NAT-PMP gateway", "mapped", ... for the reason */
    const struct wire_addr *local;  /* addresses of our own interfaces */
    size_t n_local;
    const struct wire_addr *pinhole; /* the router's IPv6 firewall pinhole, NULL if none */
};

struct nat_reach {
    uint8_t reach;           /* enum msg_reachability */
    struct wire_addr proved; /* the address others can use (public/mapped) */
    char why[256];           /* one line for `sova-peer status` and the log */
};

void nat_reach_classify(const struct nat_reach_facts *f, struct nat_reach *out);

/* What the NAT does to our outgoing connections, from two supernode
 * sessions: the address each supernode sees, the local address each
 * connection came from. */
enum nat_type {
    NAT_TYPE_UNKNOWN = 0,
    NAT_TYPE_NONE,      /* the supernodes see our own address */
    NAT_TYPE_PRESERVES, /* ports kept: looks endpoint-independent */
    NAT_TYPE_REWRITES,  /* ports changed: looks symmetric (endpoint-dependent) */
};
const char *nat_type_str(enum nat_type t);
/* n is 1 or 2 (one or both sessions); NAT_TYPE_UNKNOWN if n is 0. */
enum nat_type nat_type_guess(const struct wire_addr *observed, const struct wire_addr *local,
                             size_t n);

/* ---- the way to a source ---------------------------------------------------------- */

enum nat_path {
    NAT_PATH_NONE = 0,
    NAT_PATH_DIRECT,
    NAT_PATH_REVERSAL,
    NAT_PATH_PUNCH, /* a TCP hole punch coordinated through the supernodes */
    NAT_PATH_RELAY
};
/* "direct", "reversal", "holepunch", "relay", "none" */
const char *nat_path_str(enum nat_path p);

struct nat_path_facts {
    uint8_t source_reach; /* enum msg_reachability, from the hit or a LOCATE */
    bool source_addrs;    /* we know an address of it */
    bool same_network;    /* it shows the same public address as we do */
    bool family_apart;    /* none of its addresses is of our family (IPv4 / IPv6) */
    uint8_t self_reach;   /* ours, from our last dial-back */
    bool attached;        /* we have a primary supernode */
    bool relay_offered;   /* that supernode offers relay circuits */
    bool punch_offered;   /* that supernode carries hole-punch notes */
    uint8_t self_nat;     /* enum nat_type: ours, from our supernode sessions */
    unsigned allowed;     /* bits 1 << enum nat_path the user allows; 0 = all */
};

/* The next way to try after `failed` (NAT_PATH_NONE for the first try):
 * the cheapest that may work, in the order direct, reversal, hole punch,
 * relay.
 * NAT_PATH_NONE when none is left (try again later from the start). why
 * (cap bytes) says why this one, or why the ones before it were skipped. */
enum nat_path nat_path_next(const struct nat_path_facts *f, enum nat_path failed, char *why,
                            size_t cap);

/* ---- which address ------------------------------------------------------------------ */

/* One of our interfaces' networks: its address and prefix length. */
struct nat_subnet {
    struct wire_addr addr;
    unsigned prefix_len;
};

/* Is a on one of the networks in nets (n of them)? A private address of
 * another LAN (a source behind the same public address but on another LAN,
 * a guest Wi-Fi) is not, and a connection to it could only time out. */
bool nat_addr_on_link(const struct wire_addr *a, const struct nat_subnet *nets, size_t n);

/* What kind of address a direct connection used, in words: "LAN" (a
 * private address on our own network), "mapped" (the source's router maps
 * it: source_reach is mapped), or "public"; with the family. Into out
 * (cap bytes), e.g. "LAN 10.1.0.11:7071, IPv4". */
void nat_addr_describe(const struct wire_addr *a, uint8_t source_reach, char *out, size_t cap);

#endif
