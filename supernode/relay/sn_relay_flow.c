/* sn_relay_flow.c - the rules of a relay circuit (sn_relay_flow.h). */
#include "sn_relay_flow.h"
#include "err.h"
#include "msg.h"
#include "sova_assert.h"

void relay_flow_leg_init(struct relay_flow_leg *l, uint32_t initial)
{
    l->send_credit = initial;
    l->recv_window = initial;
    l->owed = 0;
}

int relay_flow_received(struct relay_flow_leg *in, size_t len)
{
    if (len > in->recv_window)
        return SOVA_ERR_TOO_LARGE;
    in->recv_window -= (uint32_t)len;
    return 0;
}

int relay_flow_window(struct relay_flow_leg *l, uint32_t credit)
{
    if (credit > RELAY_FLOW_MAX_CREDIT - l->send_credit)
        return SOVA_ERR_TOO_LARGE;
    l->send_credit += credit;
    return 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

enum relay_flow_verdict relay_flow_next(const struct relay_flow_leg *out,
                                        const struct relay_flow_room *room, size_t *n)
{
    *n = 0;
    if (room->queued == 0)
        return RELAY_FLOW_IDLE;
    if (room->link_queued >= RELAY_FLOW_LINK_HIGH)
        return RELAY_FLOW_WAIT_LINK;
    uint64_t want = min_u64(min_u64(room->queued, out->send_credit), room->max_frame_data);
    if (want == 0)
        return RELAY_FLOW_WAIT_CREDIT;
    if (room->bandwidth == 0)
        return RELAY_FLOW_WAIT_BANDWIDTH;
    *n = (size_t)min_u64(want, room->bandwidth);
    return RELAY_FLOW_SEND;
}

void relay_flow_sent(struct relay_flow_leg *out, struct relay_flow_leg *in, size_t n)
{
    SOVA_ASSERT(n <= out->send_credit);
    SOVA_ASSERT(n <= UINT32_MAX - in->owed);
    out->send_credit -= (uint32_t)n;
    in->owed += (uint32_t)n;
}

uint32_t relay_flow_grant(struct relay_flow_leg *in)
{
    if (in->owed < RELAY_FLOW_GRANT_BYTES)
        return 0;
    uint32_t grant = in->owed;
    SOVA_ASSERT(grant <= UINT32_MAX - in->recv_window);
    in->recv_window += grant;
    in->owed = 0;
    return grant;
}

bool relay_flow_balanced(const struct relay_flow_leg *in, size_t queued, uint32_t initial)
{
    return (uint64_t)in->recv_window + in->owed + queued == initial;
}

uint16_t relay_flow_admit(const struct relay_flow_open *o, struct sn_rate *rate, uint64_t now_ms,
                          const char **why)
{
    bool peer = !o->from_supernode;
    if (!o->relay_on) {
        *why = "relaying is off";
        return MSG_ERR_RELAY_REFUSED;
    }
    if (peer && !o->origin_registered) {
        *why = "not registered as primary";
        return MSG_ERR_NOT_ATTACHED;
    }
    if (peer && !o->origin_is_sender) {
        *why = "origin is not the sender";
        return MSG_ERR_UNAUTHORIZED;
    }
    if (peer && sn_rate_take(rate, 1, now_ms, NULL) != 0) {
        *why = "too many circuits asked for";
        return MSG_ERR_RATE_LIMITED;
    }
    if (o->pool == FAIR_OVER_SHARE) {
        *why = "relay-max-prefix-circuits reached by the origin's network";
        return MSG_ERR_LIMIT_REACHED;
    }
    if (o->pool == FAIR_FULL) {
        *why = "relay-max-circuits reached";
        return MSG_ERR_LIMIT_REACHED;
    }
    if (peer && o->origin_circuits >= o->max_peer_circuits) {
        *why = "relay-max-peer-circuits reached by the origin";
        return MSG_ERR_LIMIT_REACHED;
    }
    if (o->target_is_origin || (!o->target_here && o->from_supernode)) {
        *why = o->target_is_origin ? "a circuit to itself" : "target not attached here";
        return MSG_ERR_NOT_FOUND;
    }
    if (o->target_here && o->target_circuits >= o->max_peer_circuits) {
        *why = "relay-max-peer-circuits reached by the target";
        return MSG_ERR_LIMIT_REACHED;
    }
    *why = NULL;
    return 0;
}

enum relay_flow_due relay_flow_due(const struct relay_flow_clock *c, uint64_t now_ms,
                                   uint64_t *next_ms)
{
    uint64_t life_end = c->life_ms ? c->opened_ms + c->life_ms : UINT64_MAX;
    uint64_t idle_end = c->idle_ms ? c->last_data_ms + c->idle_ms : UINT64_MAX;
    *next_ms = UINT64_MAX;
    if (now_ms >= life_end)
        return RELAY_FLOW_DUE_LIFETIME;
    if (now_ms >= idle_end)
        return RELAY_FLOW_DUE_IDLE;
    *next_ms = life_end < idle_end ? life_end : idle_end;
    return RELAY_FLOW_DUE_NONE;
}
