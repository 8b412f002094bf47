/* nat_map_fsm.h - the port-mapping decisions, sans I/O.
 *
 * What to do next, given the phase, the time and the last result: discover,
 * map which port with which lease, renew when, check when, retry after which
 * backoff, 725 -> permanent lease, 718 -> another port, mapping gone or new
 * external address -> map again, gateway silent -> discover again. It owns no
 * socket, thread or timer: the caller (nat_upnp.c, or a unit test with a fake
 * clock) asks nat_map_fsm_next_job() for the job to run now, runs it and
 * feeds the result to nat_map_fsm_on_result(); while no job runs it calls
 * next_job again at nat_map_fsm_wake_ms(). Times are monotonic milliseconds.
 * docs/NAT.md has the diagram.
 */
#ifndef SOVA_NAT_MAP_FSM_H
#define SOVA_NAT_MAP_FSM_H

#include "nat_upnp.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- timers and limits (docs/NAT.md) ------------------------------------ */
/* External ports asked for before giving up on 718: the held or internal port,
 * then random ones in NAT_MAP_RANDOM_PORT_MIN..65535. */
#define NAT_MAP_PORT_TRIES      5u
#define NAT_MAP_RANDOM_PORT_MIN 1024u
/* No gateway, or the gateway stopped answering: discover again after
 * 1 s, 2 s, 4 s ... at most 5 min. */
#define NAT_MAP_RETRY_BASE_MS 1000u
#define NAT_MAP_RETRY_MAX_MS  (300u * 1000u)
/* The gateway refused the mapping: try again after 30 s, 60 s ... at most 30 min. */
#define NAT_MAP_FAIL_RETRY_BASE_MS (30u * 1000u)
#define NAT_MAP_FAIL_RETRY_MAX_MS  (1800u * 1000u)
/* Renew this long before half the lease at the latest (for short NAT-PMP leases). */
#define NAT_MAP_RENEW_MIN_MS 500u

/* UPnP error codes the decisions depend on. */
#define NAT_UPNP_ERR_NO_SUCH_ENTRY       714
#define NAT_UPNP_ERR_CONFLICT            718
#define NAT_UPNP_ERR_SAME_PORT_REQUIRED  724
#define NAT_UPNP_ERR_ONLY_PERMANENT      725
#define NAT_UPNP_ERR_NO_PORT_MAPS        728
#define NAT_UPNP_ERR_CONFLICT_OTHER_MECH 729

enum nat_method {
    NAT_METHOD_NONE = 0,
    NAT_METHOD_UPNP,
    NAT_METHOD_NATPMP,
    NAT_METHOD_PCP,
};
/* "upnp", "natpmp", "pcp", or NULL for NAT_METHOD_NONE. */
const char *nat_method_str(enum nat_method m);

enum nat_job_kind {
    NAT_JOB_NONE = 0,
    NAT_JOB_DISCOVER, /* find a gateway, read its external address */
    NAT_JOB_MAP,      /* add (or renew) external_port -> internal_port, then read the
                         external address */
    NAT_JOB_CHECK,    /* is external_port still ours? external address? */
};
const char *nat_job_kind_str(enum nat_job_kind k);

struct nat_job {
    enum nat_job_kind kind;
    enum nat_method method; /* MAP, CHECK: the mechanism DISCOVER found */
    uint16_t internal_port;
    uint16_t external_port; /* MAP: asked for; CHECK: the one we hold */
    uint32_t lease_s;       /* MAP: 0 = permanent */
    unsigned discover_ms;   /* DISCOVER: SSDP wait */
    bool natpmp;            /* DISCOVER: try NAT-PMP when no IGD answers */
    bool pcp;               /* DISCOVER: try PCP first (before the IGD) */
    bool ipv6;              /* DISCOVER: an IPv6 firewall pinhole, by PCP only */
};

enum nat_outcome {
    NAT_OUT_OK = 0,      /* done as asked */
    NAT_OUT_NONE,        /* DISCOVER: no gateway; CHECK: our mapping is gone */
    NAT_OUT_REFUSED,     /* the gateway answered with an error (code, error) */
    NAT_OUT_UNREACHABLE, /* the gateway did not answer or answered nonsense */
};

struct nat_job_result {
    enum nat_job_kind kind;
    enum nat_outcome outcome;
    enum nat_method method; /* DISCOVER: which mechanism answered */
    int code;               /* router error code, or a library code; 0 if none */
    char error[160];        /* words for a failure, "" on success */
    char gateway[128];      /* DISCOVER */
    char lan_addr[64];      /* DISCOVER */
    char external_ip[64];   /* any kind: as the gateway reports it; "" if not read */
    uint16_t external_port; /* MAP: the port granted */
    uint32_t lease_s;       /* MAP: the lease granted (0 = permanent) */
    bool have_epoch;        /* NAT-PMP answers carry the gateway's epoch */
    uint32_t epoch;
};

/* Internal phases, finer than enum nat_map_state. */
enum nat_fsm_phase {
    NAT_FSM_IDLE,
    NAT_FSM_WILL_DISCOVER, /* at wake time */
    NAT_FSM_DISCOVERING,   /* job out */
    NAT_FSM_WILL_MAP,
    NAT_FSM_MAPPING,
    NAT_FSM_MAPPED, /* renew or check at wake time */
    NAT_FSM_RENEWING,
    NAT_FSM_CHECKING,
};
const char *nat_fsm_phase_str(enum nat_fsm_phase p);

struct nat_map_fsm_params {
    uint16_t internal_port;
    uint32_t lease_s;          /* 0 = NAT_UPNP_DEFAULT_LEASE_S */
    uint32_t check_interval_s; /* 0 = NAT_UPNP_DEFAULT_CHECK_INTERVAL_S */
    unsigned discover_ms;      /* 0 = NAT_UPNP_DEFAULT_DISCOVER_MS */
    bool natpmp;
    bool pcp;
    bool ipv6;     /* an IPv6 pinhole by PCP, not an IPv4 mapping */
    uint32_t seed; /* random external ports; any value */
};

struct nat_map_fsm;

/* 0, SOVA_ERR_INVALID (port 0) or SOVA_ERR_NOMEM. */
int nat_map_fsm_new(const struct nat_map_fsm_params *p, struct nat_map_fsm **out);
void nat_map_fsm_free(struct nat_map_fsm *f); /* NULL ok */

/* IDLE -> discover now. No-op unless IDLE. */
void nat_map_fsm_start(struct nat_map_fsm *f, uint64_t now_ms);
/* Discover again now (after the running job, if any), backoff reset. */
void nat_map_fsm_refresh(struct nat_map_fsm *f, uint64_t now_ms);
/* -> IDLE, state OFF. code/error describe how the final delete went (0/""
 * or NULL if it went well). */
void nat_map_fsm_stop(struct nat_map_fsm *f, int code, const char *error);
/* A job fails to start (no thread): state FAILED with error, no retry. */
void nat_map_fsm_fail(struct nat_map_fsm *f, int code, const char *error);

/* The job to run now: true with *job filled (the fsm then waits for its
 * result); false if nothing is due or a job is out. */
bool nat_map_fsm_next_job(struct nat_map_fsm *f, uint64_t now_ms, struct nat_job *job);
/* When next_job may have something to do: absolute ms, UINT64_MAX if never
 * (idle, or waiting for a job's result). */
uint64_t nat_map_fsm_wake_ms(const struct nat_map_fsm *f);
/* The result of the job next_job gave; ignored when it does not match the
 * job out (e.g. after stop). */
void nat_map_fsm_on_result(struct nat_map_fsm *f, uint64_t now_ms, const struct nat_job_result *r);

enum nat_fsm_phase nat_map_fsm_phase(const struct nat_map_fsm *f);
void nat_map_fsm_status(const struct nat_map_fsm *f, struct nat_upnp_status *out);

/* ---- pure helpers, exposed for tests ------------------------------------ */
/* Backoff for the attempt-th retry (1-based): base * 2^(attempt-1), capped. */
uint64_t nat_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms);
/* A dotted IPv4 address a mapping on it would make us reachable at: not
 * private, CGNAT, loopback, link-local, multicast, documentation, 0/8 or
 * broadcast. false for "" or anything that does not parse. */
bool nat_ipv4_is_public(const char *ip);
/* An IPv4 address nat_ipv4_is_public() accepts, or a global unicast IPv6
 * address (2000::/3): one others can reach us at. */
bool nat_addr_is_public(const char *ip);
/* RFC 6886 3.6: did the NAT-PMP gateway lose its state (reboot) between two
 * answers? prev_epoch seen at prev_ms, epoch seen at now_ms. */
bool nat_pmp_epoch_lost(uint32_t prev_epoch, uint64_t prev_ms, uint32_t epoch, uint64_t now_ms);
/* Do two snapshots differ in anything `changed` reports? */
bool nat_status_differs(const struct nat_upnp_status *a, const struct nat_upnp_status *b);

#endif
