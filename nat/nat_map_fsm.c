/* nat_map_fsm.c - the port-mapping decisions (see nat_map_fsm.h), sans I/O. */
#include "nat_map_fsm.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nat_map_fsm {
    struct nat_map_fsm_params p; /* defaults applied */
    enum nat_fsm_phase phase;
    uint64_t wake_ms;
    struct nat_upnp_status st; /* the public snapshot (method set on read) */
    enum nat_method method;

    uint16_t held_port;   /* external port we hold (or held last): asked for first */
    bool permanent;       /* this gateway answered 725: ask for lease 0 */
    bool lost_mapping;    /* we had a mapping and lost it: the next one is a remap */
    bool refresh_pending; /* refresh asked for while a job was out */
    unsigned retries;     /* failures since the last mapping (backoff) */
    uint64_t renew_at_ms; /* UINT64_MAX for a permanent lease */
    uint64_t check_at_ms;

    uint16_t ports[NAT_MAP_PORT_TRIES]; /* external ports of this mapping round */
    unsigned n_ports, port_idx;

    bool have_epoch; /* NAT-PMP: last epoch seen and when */
    uint32_t epoch;
    uint64_t epoch_ms;

    uint32_t rng; /* xorshift32 state, never 0 */
};

/* ---- state ------------------------------------------------------------- */

static uint32_t rng_next(struct nat_map_fsm *f)
{
    uint32_t x = f->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    f->rng = x;
    return x;
}

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static void set_state(struct nat_map_fsm *f, enum nat_map_state s)
{
    f->st.state = s;
    if (s != NAT_MAP_MAPPED)
        f->st.mapped_since_ms = 0;
    if (s != NAT_MAP_MAPPED && s != NAT_MAP_MAPPING) {
        f->st.external_port = 0;
        f->st.lease_s = 0;
    }
}

static void set_error(struct nat_map_fsm *f, int code, const char *error)
{
    f->st.error_code = code;
    copy_str(f->st.error, sizeof(f->st.error), error);
}

static void forget_gateway(struct nat_map_fsm *f)
{
    f->method = NAT_METHOD_NONE;
    f->st.gateway[0] = '\0';
    f->st.lan_addr[0] = '\0';
    f->st.external_ip[0] = '\0';
    f->permanent = false;
    f->have_epoch = false;
}

static void schedule(struct nat_map_fsm *f, enum nat_fsm_phase phase, uint64_t at_ms)
{
    f->phase = phase;
    f->wake_ms = at_ms;
}

static bool port_in_round(const struct nat_map_fsm *f, uint16_t port)
{
    for (unsigned i = 0; i < f->n_ports; i++)
        if (f->ports[i] == port)
            return true;
    return false;
}

/* The external ports to ask for, in order: the one held before (a stable
 * address for others), the internal port, then random ones; never avoid. */
static void begin_map_round(struct nat_map_fsm *f, uint16_t avoid)
{
    f->n_ports = 0;
    f->port_idx = 0;
    uint16_t first[2] = {f->held_port, f->p.internal_port};
    for (unsigned i = 0; i < 2; i++)
        if (first[i] != 0 && first[i] != avoid && !port_in_round(f, first[i]))
            f->ports[f->n_ports++] = first[i];
    while (f->n_ports < NAT_MAP_PORT_TRIES) {
        uint32_t span = 65536u - NAT_MAP_RANDOM_PORT_MIN;
        uint16_t port = (uint16_t)(NAT_MAP_RANDOM_PORT_MIN + rng_next(f) % span);
        if (port != avoid && !port_in_round(f, port))
            f->ports[f->n_ports++] = port;
    }
}

static void will_map(struct nat_map_fsm *f, uint64_t now_ms)
{
    set_state(f, NAT_MAP_MAPPING);
    f->st.external_port = f->ports[f->port_idx];
    schedule(f, NAT_FSM_WILL_MAP, now_ms);
}

/* The mapping is gone or stale: map again now, the same port first. */
static void remap(struct nat_map_fsm *f, uint64_t now_ms, uint16_t avoid)
{
    f->lost_mapping = true;
    begin_map_round(f, avoid);
    will_map(f, now_ms);
}

static void no_gateway(struct nat_map_fsm *f, uint64_t now_ms, int code, const char *error)
{
    f->retries++;
    set_state(f, NAT_MAP_NO_GATEWAY);
    set_error(f, code, error);
    schedule(f, NAT_FSM_WILL_DISCOVER,
             now_ms + nat_backoff_ms(f->retries, NAT_MAP_RETRY_BASE_MS, NAT_MAP_RETRY_MAX_MS));
}

/* The gateway stopped answering: discover again at once, then with backoff. */
static void lost_gateway(struct nat_map_fsm *f, uint64_t now_ms, int code, const char *error)
{
    if (f->st.state == NAT_MAP_MAPPED)
        f->lost_mapping = true;
    f->retries++;
    set_state(f, NAT_MAP_DISCOVERING);
    set_error(f, code, error);
    forget_gateway(f);
    schedule(f, NAT_FSM_WILL_DISCOVER,
             now_ms + nat_backoff_ms(f->retries - 1, NAT_MAP_RETRY_BASE_MS, NAT_MAP_RETRY_MAX_MS));
}

static void failed(struct nat_map_fsm *f, uint64_t now_ms, int code, const char *error)
{
    f->retries++;
    set_state(f, NAT_MAP_FAILED);
    set_error(f, code, error);
    schedule(f, NAT_FSM_WILL_DISCOVER,
             now_ms +
                 nat_backoff_ms(f->retries, NAT_MAP_FAIL_RETRY_BASE_MS, NAT_MAP_FAIL_RETRY_MAX_MS));
}

static void note_epoch(struct nat_map_fsm *f, uint64_t now_ms, const struct nat_job_result *r)
{
    if (!r->have_epoch)
        return;
    f->have_epoch = true;
    f->epoch = r->epoch;
    f->epoch_ms = now_ms;
}

static void mapped_wait(struct nat_map_fsm *f)
{
    schedule(f, NAT_FSM_MAPPED, f->renew_at_ms < f->check_at_ms ? f->renew_at_ms : f->check_at_ms);
}

/* ---- results ----------------------------------------------------------- */

static void on_discover(struct nat_map_fsm *f, uint64_t now_ms, const struct nat_job_result *r)
{
    if (r->outcome != NAT_OUT_OK) {
        forget_gateway(f);
        no_gateway(f, now_ms, r->code, r->error[0] ? r->error : "no gateway answered");
        return;
    }
    if (!nat_addr_is_public(r->external_ip)) {
        /* A mapping there would not make us reachable: double NAT or the
         * gateway's WAN is down. Show what answered, and why it is no use. */
        char why[160];
        snprintf(why, sizeof(why), "%s gateway reports external address '%s': not public%s",
                 nat_method_str(r->method) ? nat_method_str(r->method) : "?", r->external_ip,
                 r->external_ip[0] ? " (double NAT?)" : "");
        forget_gateway(f);
        copy_str(f->st.gateway, sizeof(f->st.gateway), r->gateway);
        copy_str(f->st.lan_addr, sizeof(f->st.lan_addr), r->lan_addr);
        copy_str(f->st.external_ip, sizeof(f->st.external_ip), r->external_ip);
        no_gateway(f, now_ms, 0, why);
        return;
    }
    if (r->method != f->method || strcmp(r->gateway, f->st.gateway) != 0) {
        f->permanent = false; /* a new gateway: ask it for a finite lease again */
        f->have_epoch = false;
    }
    f->method = r->method;
    copy_str(f->st.gateway, sizeof(f->st.gateway), r->gateway);
    copy_str(f->st.lan_addr, sizeof(f->st.lan_addr), r->lan_addr);
    copy_str(f->st.external_ip, sizeof(f->st.external_ip), r->external_ip);
    note_epoch(f, now_ms, r);
    begin_map_round(f, 0);
    will_map(f, now_ms);
}

static void on_map_refused(struct nat_map_fsm *f, uint64_t now_ms, const struct nat_job_result *r,
                           bool renew)
{
    uint16_t asked = renew ? f->held_port : f->ports[f->port_idx];
    set_error(f, r->code, r->error);
    if (r->code == NAT_UPNP_ERR_ONLY_PERMANENT && !f->permanent) {
        f->permanent = true; /* same port, lease 0; deleted on stop */
        if (renew)
            begin_map_round(f, 0);
        will_map(f, now_ms);
        return;
    }
    bool other_port =
        r->code == NAT_UPNP_ERR_CONFLICT || r->code == NAT_UPNP_ERR_CONFLICT_OTHER_MECH;
    if (renew && other_port) {
        /* Someone else has our port now: the router forgot us. */
        f->held_port = 0;
        remap(f, now_ms, asked);
        return;
    }
    if (r->code == NAT_UPNP_ERR_SAME_PORT_REQUIRED && asked != f->p.internal_port) {
        /* Only external = internal will do: jump to it if still untried. */
        for (unsigned i = f->port_idx + 1; i < f->n_ports; i++)
            if (f->ports[i] == f->p.internal_port) {
                f->port_idx = i;
                will_map(f, now_ms);
                return;
            }
    }
    if (!renew && other_port && f->port_idx + 1 < f->n_ports) {
        f->port_idx++;
        will_map(f, now_ms);
        return;
    }
    char why[160];
    if (!renew && other_port)
        snprintf(why, sizeof(why), "%.130s (%u ports tried)", r->error, f->n_ports);
    else
        copy_str(why, sizeof(why), r->error);
    failed(f, now_ms, r->code, why);
}

static void on_map(struct nat_map_fsm *f, uint64_t now_ms, const struct nat_job_result *r,
                   bool renew)
{
    if (r->outcome == NAT_OUT_REFUSED) {
        on_map_refused(f, now_ms, r, renew);
        return;
    }
    if (r->outcome != NAT_OUT_OK) {
        lost_gateway(f, now_ms, r->code, r->error[0] ? r->error : "gateway did not answer");
        return;
    }
    if (r->external_ip[0] && !nat_addr_is_public(r->external_ip)) {
        char why[160];
        snprintf(why, sizeof(why), "external address became '%s': not public", r->external_ip);
        lost_gateway(f, now_ms, 0, why);
        return;
    }
    uint16_t asked = renew ? f->held_port : f->ports[f->port_idx];
    uint16_t port = r->external_port ? r->external_port : asked;
    if (f->st.state != NAT_MAP_MAPPED || f->held_port != port)
        f->st.mapped_since_ms = now_ms ? now_ms : 1;
    if (f->lost_mapping) {
        f->st.remaps++;
        f->lost_mapping = false;
    }
    f->held_port = port;
    f->retries = 0;
    f->st.state = NAT_MAP_MAPPED;
    f->st.external_port = port;
    f->st.lease_s = r->lease_s;
    if (r->external_ip[0])
        copy_str(f->st.external_ip, sizeof(f->st.external_ip), r->external_ip);
    set_error(f, 0, "");
    note_epoch(f, now_ms, r);
    if (r->lease_s == 0) {
        f->renew_at_ms = UINT64_MAX;
    } else {
        uint64_t half = (uint64_t)r->lease_s * 1000u / 2u;
        f->renew_at_ms = now_ms + (half < NAT_MAP_RENEW_MIN_MS ? NAT_MAP_RENEW_MIN_MS : half);
    }
    f->check_at_ms = now_ms + (uint64_t)f->p.check_interval_s * 1000u;
    mapped_wait(f);
}

static void on_check(struct nat_map_fsm *f, uint64_t now_ms, const struct nat_job_result *r)
{
    switch (r->outcome) {
    case NAT_OUT_UNREACHABLE:
        lost_gateway(f, now_ms, r->code, r->error[0] ? r->error : "gateway did not answer");
        return;
    case NAT_OUT_REFUSED:
        /* The gateway will not say (some do not implement the query):
         * renewing is idempotent and tells us as much. */
        f->renew_at_ms = now_ms;
        mapped_wait(f);
        return;
    case NAT_OUT_NONE:
        set_error(f, r->code, r->error[0] ? r->error : "mapping gone");
        remap(f, now_ms, 0);
        return;
    case NAT_OUT_OK:
        break;
    }
    if ((f->method == NAT_METHOD_NATPMP || f->method == NAT_METHOD_PCP) && r->have_epoch &&
        f->have_epoch && nat_pmp_epoch_lost(f->epoch, f->epoch_ms, r->epoch, now_ms)) {
        char why[160];
        snprintf(why, sizeof(why), "NAT-PMP gateway restarted (epoch %u, was %u)", r->epoch,
                 f->epoch);
        note_epoch(f, now_ms, r);
        set_error(f, 0, why);
        remap(f, now_ms, 0);
        return;
    }
    note_epoch(f, now_ms, r);
    if (r->external_ip[0] && strcmp(r->external_ip, f->st.external_ip) != 0) {
        if (!nat_addr_is_public(r->external_ip)) {
            char why[160];
            snprintf(why, sizeof(why), "external address became '%s': not public", r->external_ip);
            lost_gateway(f, now_ms, 0, why);
            return;
        }
        copy_str(f->st.external_ip, sizeof(f->st.external_ip), r->external_ip);
        remap(f, now_ms, 0);
        return;
    }
    f->check_at_ms = now_ms + (uint64_t)f->p.check_interval_s * 1000u;
    mapped_wait(f);
}

/* ---- API --------------------------------------------------------------- */

int nat_map_fsm_new(const struct nat_map_fsm_params *p, struct nat_map_fsm **out)
{
    *out = NULL;
    if (!p || p->internal_port == 0)
        return SOVA_ERR_INVALID;
    struct nat_map_fsm *f = calloc(1, sizeof(*f));
    if (!f)
        return SOVA_ERR_NOMEM;
    f->p = *p;
    if (!f->p.lease_s)
        f->p.lease_s = NAT_UPNP_DEFAULT_LEASE_S;
    if (!f->p.check_interval_s)
        f->p.check_interval_s = NAT_UPNP_DEFAULT_CHECK_INTERVAL_S;
    if (!f->p.discover_ms)
        f->p.discover_ms = NAT_UPNP_DEFAULT_DISCOVER_MS;
    f->rng = p->seed ? p->seed : 0x9e3779b9u;
    f->phase = NAT_FSM_IDLE;
    f->wake_ms = UINT64_MAX;
    f->st.state = NAT_MAP_OFF;
    f->st.internal_port = p->internal_port;
    *out = f;
    return 0;
}

void nat_map_fsm_free(struct nat_map_fsm *f)
{
    free(f);
}

void nat_map_fsm_start(struct nat_map_fsm *f, uint64_t now_ms)
{
    if (f->phase != NAT_FSM_IDLE)
        return;
    f->retries = 0;
    f->refresh_pending = false;
    f->lost_mapping = false;
    forget_gateway(f);
    set_state(f, NAT_MAP_DISCOVERING);
    set_error(f, 0, "");
    schedule(f, NAT_FSM_WILL_DISCOVER, now_ms);
}

static bool job_out(const struct nat_map_fsm *f)
{
    return f->phase == NAT_FSM_DISCOVERING || f->phase == NAT_FSM_MAPPING ||
           f->phase == NAT_FSM_RENEWING || f->phase == NAT_FSM_CHECKING;
}

void nat_map_fsm_refresh(struct nat_map_fsm *f, uint64_t now_ms)
{
    if (f->phase == NAT_FSM_IDLE)
        return;
    if (job_out(f)) {
        f->refresh_pending = true;
        return;
    }
    f->refresh_pending = false;
    f->retries = 0;
    /* A refresh is asked when the network moved or the router restarted:
     * the mapping made next replaces the one held (a remap). */
    if (f->st.state == NAT_MAP_MAPPED)
        f->lost_mapping = true;
    set_state(f, NAT_MAP_DISCOVERING);
    schedule(f, NAT_FSM_WILL_DISCOVER, now_ms);
}

void nat_map_fsm_stop(struct nat_map_fsm *f, int code, const char *error)
{
    forget_gateway(f);
    set_state(f, NAT_MAP_OFF);
    set_error(f, error ? code : 0, error);
    f->refresh_pending = false;
    schedule(f, NAT_FSM_IDLE, UINT64_MAX);
}

void nat_map_fsm_fail(struct nat_map_fsm *f, int code, const char *error)
{
    forget_gateway(f);
    set_state(f, NAT_MAP_FAILED);
    set_error(f, code, error);
    schedule(f, NAT_FSM_IDLE, UINT64_MAX);
}

bool nat_map_fsm_next_job(struct nat_map_fsm *f, uint64_t now_ms, struct nat_job *job)
{
    memset(job, 0, sizeof(*job));
    if (job_out(f) || f->phase == NAT_FSM_IDLE || now_ms < f->wake_ms)
        return false;
    job->method = f->method;
    job->internal_port = f->p.internal_port;
    job->lease_s = f->permanent ? 0 : f->p.lease_s;
    switch (f->phase) {
    case NAT_FSM_WILL_DISCOVER:
        job->kind = NAT_JOB_DISCOVER;
        job->method = NAT_METHOD_NONE;
        job->discover_ms = f->p.discover_ms;
        job->natpmp = f->p.natpmp;
        job->pcp = f->p.pcp;
        job->ipv6 = f->p.ipv6;
        schedule(f, NAT_FSM_DISCOVERING, UINT64_MAX);
        return true;
    case NAT_FSM_WILL_MAP:
        job->kind = NAT_JOB_MAP;
        job->external_port = f->ports[f->port_idx];
        schedule(f, NAT_FSM_MAPPING, UINT64_MAX);
        return true;
    case NAT_FSM_MAPPED:
        job->external_port = f->held_port;
        if (now_ms >= f->renew_at_ms) {
            job->kind = NAT_JOB_MAP;
            schedule(f, NAT_FSM_RENEWING, UINT64_MAX);
        } else {
            job->kind = NAT_JOB_CHECK;
            schedule(f, NAT_FSM_CHECKING, UINT64_MAX);
        }
        return true;
    default:
        return false;
    }
}

uint64_t nat_map_fsm_wake_ms(const struct nat_map_fsm *f)
{
    return job_out(f) || f->phase == NAT_FSM_IDLE ? UINT64_MAX : f->wake_ms;
}

void nat_map_fsm_on_result(struct nat_map_fsm *f, uint64_t now_ms, const struct nat_job_result *r)
{
    switch (f->phase) {
    case NAT_FSM_DISCOVERING:
        if (r->kind != NAT_JOB_DISCOVER)
            return;
        on_discover(f, now_ms, r);
        break;
    case NAT_FSM_MAPPING:
    case NAT_FSM_RENEWING:
        if (r->kind != NAT_JOB_MAP)
            return;
        on_map(f, now_ms, r, f->phase == NAT_FSM_RENEWING);
        break;
    case NAT_FSM_CHECKING:
        if (r->kind != NAT_JOB_CHECK)
            return;
        on_check(f, now_ms, r);
        break;
    default:
        return;
    }
    if (f->refresh_pending)
        nat_map_fsm_refresh(f, now_ms);
}

enum nat_fsm_phase nat_map_fsm_phase(const struct nat_map_fsm *f)
{
    return f->phase;
}

void nat_map_fsm_status(const struct nat_map_fsm *f, struct nat_upnp_status *out)
{
    *out = f->st;
    out->method = nat_method_str(f->method);
}
