/* nat_upnp.h - keep a TCP port mapped on the home router: UPnP IGD
 * (miniupnpc), else NAT-PMP (libnatpmp).
 *
 * One struct nat_upnp keeps one mapping, external port -> this host's
 * internal_port, for as long as it runs: it discovers the gateway, reads the
 * external address, maps (external port = internal port first, then a few
 * random ones when the router says 718 ConflictInMappingEntry), renews at
 * half the lease, checks every check_interval_s that the router still has the
 * mapping and the same external address, maps again when it lost either, goes
 * back to discovery (with backoff) when the gateway stops answering, and
 * deletes the mapping on nat_upnp_stop(). The decisions are made by the pure
 * state machine of nat_map_fsm.h; docs/NAT.md describes them.
 *
 * Threading. Debian's miniupnpc and libnatpmp block (SSDP waits, HTTP/SOAP
 * with 3 s socket timeouts), so every call into them runs on one worker thread
 * per nat_upnp (pthread). The loop hands the worker one job at a time under a
 * mutex + condition variable; the worker reports a finished job by writing a
 * byte to a socketpair whose other end is a libevent read event on
 * cfg->base, so the result is applied on the loop thread. This needs no
 * evthread_use_pthreads() from the daemon. The worker never touches libevent,
 * the state machine or the callback; the loop never calls miniupnpc.
 *
 * Blocking. Nothing here blocks the loop except nat_upnp_stop() (and
 * nat_upnp_free(), which stops first): it waits up to NAT_UPNP_STOP_WAIT_MS
 * for the worker to finish its current job and delete the mapping, then joins
 * it. If the router does not answer in time, the worker is detached and
 * finishes on its own (it frees its own state); stop still returns within the
 * bound.
 *
 * Callbacks. cfg->changed runs on the loop thread, from a libevent callback,
 * whenever the status snapshot changes (state, method, gateway, addresses,
 * ports, lease, error, remaps): never from inside a nat_upnp_*() call. It may
 * call nat_upnp_status() and nat_upnp_refresh(), not nat_upnp_stop() or
 * nat_upnp_free().
 *
 * IPv4, or (cfg->ipv6) an IPv6 firewall pinhole: IGD v1 WANIPConnection and
 * NAT-PMP map IPv4 only; a home router's IPv6 firewall drops unsolicited
 * inbound connections, and PCP asks it for a pinhole to our global address
 * and port, kept with the same lease, renewal, checks and delete.
 */
#ifndef SOVA_NAT_UPNP_H
#define SOVA_NAT_UPNP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

/* Defaults of struct nat_upnp_config (0 in the config means the default). */
#define NAT_UPNP_DEFAULT_LEASE_S          3600u
#define NAT_UPNP_DEFAULT_CHECK_INTERVAL_S 60u
#define NAT_UPNP_DEFAULT_DISCOVER_MS      1000u
/* How long nat_upnp_stop() waits for the delete before it gives up. */
#define NAT_UPNP_STOP_WAIT_MS 2000u

enum nat_map_state {
    NAT_MAP_OFF,         /* not started, or stopped */
    NAT_MAP_DISCOVERING, /* looking for a gateway (first time, refresh, gateway lost) */
    NAT_MAP_NO_GATEWAY,  /* no UPnP IGD or NAT-PMP gateway, or one behind another NAT;
                            retried with backoff */
    NAT_MAP_MAPPING,     /* asking the gateway for a mapping */
    NAT_MAP_MAPPED,      /* the mapping exists (renewed and checked in the background) */
    NAT_MAP_FAILED,      /* the gateway refused; error/error_code say why; retried */
};
/* "off", "discovering", "no-gateway", "mapping", "mapped", "failed". */
const char *nat_map_state_str(enum nat_map_state s);

/* A snapshot, plain data (method points to a static string). */
struct nat_upnp_status {
    enum nat_map_state state;
    const char *method;   /* "pcp", "upnp", "natpmp" or NULL */
    char gateway[128];    /* IGD control URL or NAT-PMP gateway address; "" if none */
    char lan_addr[64];    /* our address as the gateway sees it (IGD's lanaddr) */
    char external_ip[64]; /* "" if unknown */
    uint16_t internal_port;
    uint16_t external_port;   /* the mapped port in MAPPED, the one being asked for in
                                 MAPPING, 0 otherwise */
    uint32_t lease_s;         /* lease granted (0 = permanent) in MAPPED */
    int error_code;           /* router's error code of the last failure, 0 if none
                                 (UPnP: 7xx/6xx/4xx/5xx, or miniupnpc's negative codes;
                                 NAT-PMP: the RFC 6886 result code 1..5) */
    char error[160];          /* last failure in words, "" if none, e.g.
                                 "AddPortMapping: 718 ConflictInMappingEntry" */
    uint64_t mapped_since_ms; /* monotonic (CLOCK_MONOTONIC), 0 if not mapped */
    unsigned remaps;          /* times it had to map again (router forgot, IP changed) */
};

struct nat_upnp_config {
    struct event_base *base;      /* borrowed; outlives the nat_upnp */
    uint16_t internal_port;       /* the peer's TCP listen port; must not be 0 */
    unsigned lease_s;             /* default 3600; a router answering 725 gets 0 */
    unsigned check_interval_s;    /* default 60 */
    unsigned discover_timeout_ms; /* default 1000 (SSDP wait), 100..10000 */
    const char *description;      /* "sova-peer <short id>"; copied; NULL = "sova" */
    bool natpmp;                  /* also try NAT-PMP when no IGD answers */
    bool pcp;                     /* try PCP (RFC 6887) first, before the IGD */
    bool ipv6;                    /* an IPv6 pinhole by PCP instead of an IPv4 mapping */
    /* On the loop, on every state/address change; st is valid for the call. */
    void (*changed)(const struct nat_upnp_status *st, void *arg);
    void *arg;
};

struct nat_upnp;

/* Validate cfg and allocate (no thread, no socket, no network yet). 0,
 * SOVA_ERR_INVALID (no base, port 0, bad timeout) or SOVA_ERR_NOMEM. */
int nat_upnp_new(const struct nat_upnp_config *cfg, struct nat_upnp **out);
/* Start the worker (thread + socketpair) and the first discovery. No-op if
 * running. If the worker cannot start, the state becomes FAILED with the
 * reason (reported through changed). */
void nat_upnp_start(struct nat_upnp *u);
/* Re-discover the gateway and re-check the mapping now (the network changed:
 * new address, new default route, PPPoE reconnect). The external port held
 * so far is asked for first. No-op unless running. */
void nat_upnp_refresh(struct nat_upnp *u);
void nat_upnp_status(const struct nat_upnp *u, struct nat_upnp_status *out);
/* Delete the mapping and end the worker, waiting at most NAT_UPNP_STOP_WAIT_MS
 * (blocks the caller that long at worst). Afterwards the state is OFF and
 * error says whether the delete failed or timed out; changed is not called.
 * nat_upnp_start() may run it again. */
void nat_upnp_stop(struct nat_upnp *u);
/* NULL ok; stops first if needed. Never call it from inside changed. */
void nat_upnp_free(struct nat_upnp *u);

#endif
