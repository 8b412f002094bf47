/* test_sn_relay_flow.c - the rules of a relay circuit (supernode/relay/
 * sn_relay_flow.h): windows are charged and refused past their size, credit
 * comes back in grant steps only for data that went out, a leg waits for
 * its link, its credit or the bandwidth in that order, the accounting
 * balances at every step of a simulated circuit, and RELAY_OPEN is refused
 * for each limit with the right reason, the open rate taken only from
 * peers whose request passed the checks before it. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "msg.h"
#include "sn_relay_flow.h"

#define INITIAL MSG_RELAY_INITIAL_CREDIT

static void test_window(void)
{
    struct relay_flow_leg x;
    relay_flow_leg_init(&x, INITIAL);
    CU_ASSERT_EQUAL(x.send_credit, INITIAL);
    CU_ASSERT_EQUAL(x.recv_window, INITIAL);
    CU_ASSERT_EQUAL(relay_flow_received(&x, INITIAL - 10), 0);
    CU_ASSERT_EQUAL(x.recv_window, 10);
    /* one byte past the window: refused, nothing charged */
    CU_ASSERT_EQUAL(relay_flow_received(&x, 11), SOVA_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(x.recv_window, 10);
    CU_ASSERT_EQUAL(relay_flow_received(&x, 10), 0);
    CU_ASSERT_EQUAL(x.recv_window, 0);
    CU_ASSERT_EQUAL(relay_flow_received(&x, 1), SOVA_ERR_TOO_LARGE);
}

static void test_window_credit_bound(void)
{
    struct relay_flow_leg y;
    relay_flow_leg_init(&y, INITIAL);
    CU_ASSERT_EQUAL(relay_flow_window(&y, RELAY_FLOW_MAX_CREDIT - INITIAL), 0);
    CU_ASSERT_EQUAL(y.send_credit, RELAY_FLOW_MAX_CREDIT);
    CU_ASSERT_EQUAL(relay_flow_window(&y, 1), SOVA_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(y.send_credit, RELAY_FLOW_MAX_CREDIT);
    /* a window that would wrap the u32 is refused, not wrapped */
    relay_flow_leg_init(&y, INITIAL);
    CU_ASSERT_EQUAL(relay_flow_window(&y, UINT32_MAX), SOVA_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(y.send_credit, INITIAL);
}

static void test_grants_in_steps(void)
{
    struct relay_flow_leg x, y;
    relay_flow_leg_init(&x, INITIAL);
    relay_flow_leg_init(&y, INITIAL);
    CU_ASSERT_EQUAL(relay_flow_received(&x, RELAY_FLOW_GRANT_BYTES), 0);
    relay_flow_sent(&y, &x, RELAY_FLOW_GRANT_BYTES - 1);
    CU_ASSERT_EQUAL(relay_flow_grant(&x), 0); /* less than a step owed */
    CU_ASSERT_EQUAL(x.owed, RELAY_FLOW_GRANT_BYTES - 1);
    relay_flow_sent(&y, &x, 1);
    CU_ASSERT_EQUAL(relay_flow_grant(&x), RELAY_FLOW_GRANT_BYTES);
    CU_ASSERT_EQUAL(x.owed, 0);
    CU_ASSERT_EQUAL(x.recv_window, INITIAL); /* all given back */
    CU_ASSERT_EQUAL(y.send_credit, INITIAL - RELAY_FLOW_GRANT_BYTES);
    CU_ASSERT_EQUAL(relay_flow_grant(&x), 0);
}

static void test_next_waits_in_order(void)
{
    struct relay_flow_leg y;
    relay_flow_leg_init(&y, INITIAL);
    size_t n = 99;
    struct relay_flow_room room = {
        .queued = 0, .link_queued = 0, .bandwidth = UINT64_MAX, .max_frame_data = 16384};
    CU_ASSERT_EQUAL(relay_flow_next(&y, &room, &n), RELAY_FLOW_IDLE);
    CU_ASSERT_EQUAL(n, 0);
    room.queued = 100000;
    CU_ASSERT_EQUAL(relay_flow_next(&y, &room, &n), RELAY_FLOW_SEND);
    CU_ASSERT_EQUAL(n, 16384); /* one frame at most */
    room.bandwidth = 1000;
    CU_ASSERT_EQUAL(relay_flow_next(&y, &room, &n), RELAY_FLOW_SEND);
    CU_ASSERT_EQUAL(n, 1000); /* what the bandwidth allows */
    room.bandwidth = 0;
    CU_ASSERT_EQUAL(relay_flow_next(&y, &room, &n), RELAY_FLOW_WAIT_BANDWIDTH);
    y.send_credit = 0;
    CU_ASSERT_EQUAL(relay_flow_next(&y, &room, &n), RELAY_FLOW_WAIT_CREDIT);
    room.link_queued = RELAY_FLOW_LINK_HIGH;
    CU_ASSERT_EQUAL(relay_flow_next(&y, &room, &n), RELAY_FLOW_WAIT_LINK);
    y.send_credit = 5;
    room.link_queued = RELAY_FLOW_LINK_HIGH - 1;
    room.bandwidth = UINT64_MAX;
    CU_ASSERT_EQUAL(relay_flow_next(&y, &room, &n), RELAY_FLOW_SEND);
    CU_ASSERT_EQUAL(n, 5); /* what the credit allows */
}

/* A circuit from x to y driven the way sn_relay.c drives it, with a slow
 * reader behind y: frames arrive while x's window allows, go out while y's
 * credit, link and bandwidth allow, y's reader returns credit late. The
 * balance holds at every step and x's sender is never granted more than
 * what left. */
static void test_simulated_circuit(void)
{
    struct relay_flow_leg x, y;
    relay_flow_leg_init(&x, INITIAL);
    relay_flow_leg_init(&y, INITIAL);
    size_t queued = 0, link = 0, delivered = 0, sent_by_origin = 0;
    uint32_t origin_credit = INITIAL; /* what x's sender may still send */
    uint32_t reader_owes = 0;         /* bytes y's reader has, not yet granted */
    unsigned seed = 7;
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        size_t frame = 1 + (seed >> 8) % 16384;
        if (frame <= origin_credit) {
            CU_ASSERT_EQUAL_FATAL(relay_flow_received(&x, frame), 0);
            origin_credit -= (uint32_t)frame;
            sent_by_origin += frame;
            queued += frame;
        }
        for (;;) {
            size_t n;
            struct relay_flow_room room = {.queued = queued,
                                           .link_queued = link,
                                           .bandwidth = (seed >> 4) % 3 ? 50000 : 0,
                                           .max_frame_data = 16384};
            if (relay_flow_next(&y, &room, &n) != RELAY_FLOW_SEND)
                break;
            relay_flow_sent(&y, &x, n);
            queued -= n;
            link += n;
        }
        origin_credit += relay_flow_grant(&x);
        CU_ASSERT_FATAL(relay_flow_balanced(&x, queued, INITIAL));
        /* the link writes some out; the reader reads and grants late */
        size_t out = link < 20000 ? link : 20000;
        link -= out;
        delivered += out;
        reader_owes += (uint32_t)out;
        if (reader_owes >= 3 * RELAY_FLOW_GRANT_BYTES || step % 97 == 0) {
            CU_ASSERT_EQUAL_FATAL(relay_flow_window(&y, reader_owes), 0);
            reader_owes = 0;
        }
        CU_ASSERT_FATAL(origin_credit <= INITIAL);
        CU_ASSERT_FATAL(queued <= INITIAL); /* the supernode never holds more than the window */
    }
    CU_ASSERT(delivered > 10u * INITIAL); /* it moved, many windows' worth */
    CU_ASSERT_EQUAL(sent_by_origin, delivered + link + queued);
}

static struct relay_flow_open ok_open(void)
{
    return (struct relay_flow_open){.relay_on = true,
                                    .origin_registered = true,
                                    .origin_is_sender = true,
                                    .pool = FAIR_OK,
                                    .origin_circuits = 1,
                                    .target_circuits = 1,
                                    .max_peer_circuits = 4,
                                    .target_here = true};
}

static void test_admit(void)
{
    struct sn_rate rate;
    sn_rate_init(&rate, 1, 2, 0); /* two opens, then one a second */
    const char *why = NULL;
    struct relay_flow_open o = ok_open();
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), 0);
    CU_ASSERT_PTR_NULL(why);

    o = ok_open();
    o.relay_on = false;
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), MSG_ERR_RELAY_REFUSED);
    o = ok_open();
    o.origin_registered = false;
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), MSG_ERR_NOT_ATTACHED);
    o = ok_open();
    o.origin_is_sender = false;
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), MSG_ERR_UNAUTHORIZED);
    /* none of the refusals above spent the rate: one token is left */
    o = ok_open();
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), 0);
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), MSG_ERR_RATE_LIMITED);
    CU_ASSERT_STRING_EQUAL(why, "too many circuits asked for");
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 1000, &why), 0); /* a second later */

    sn_rate_init(&rate, 0, 0, 0); /* unlimited from here on */
    o = ok_open();
    o.pool = FAIR_FULL;
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), MSG_ERR_LIMIT_REACHED);
    CU_ASSERT_STRING_EQUAL(why, "relay-max-circuits reached");
    o.pool = FAIR_OVER_SHARE;
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), MSG_ERR_LIMIT_REACHED);
    CU_ASSERT_STRING_EQUAL(why, "relay-max-prefix-circuits reached by the origin's network");
    o.pool = FAIR_DISPLACE; /* full, but room is made fairly: it opens */
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), 0);
    o = ok_open();
    o.origin_circuits = 4;
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), MSG_ERR_LIMIT_REACHED);
    CU_ASSERT_STRING_EQUAL(why, "relay-max-peer-circuits reached by the origin");
    o = ok_open();
    o.target_circuits = 4;
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), MSG_ERR_LIMIT_REACHED);
    CU_ASSERT_STRING_EQUAL(why, "relay-max-peer-circuits reached by the target");
    o = ok_open();
    o.target_is_origin = true;
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), MSG_ERR_NOT_FOUND);
    /* a target not here: a peer's circuit is located elsewhere... */
    o = ok_open();
    o.target_here = false;
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), 0);
    /* ...but a supernode's leg must end here */
    o.from_supernode = true;
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), MSG_ERR_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(why, "target not attached here");
    /* a supernode's leg is not held to the origin's registration or count */
    o = ok_open();
    o.from_supernode = true;
    o.origin_registered = false;
    o.origin_is_sender = false;
    o.origin_circuits = 100;
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), 0);
}

static void test_due(void)
{
    struct relay_flow_clock c = {
        .opened_ms = 1000, .last_data_ms = 1000, .idle_ms = 60000, .life_ms = 3600000};
    uint64_t next;
    CU_ASSERT_EQUAL(relay_flow_due(&c, 1000, &next), RELAY_FLOW_DUE_NONE);
    CU_ASSERT_EQUAL(next, 61000);
    /* data keeps it: the idle deadline moves, the lifetime does not */
    c.last_data_ms = 50000;
    CU_ASSERT_EQUAL(relay_flow_due(&c, 61000, &next), RELAY_FLOW_DUE_NONE);
    CU_ASSERT_EQUAL(next, 110000);
    CU_ASSERT_EQUAL(relay_flow_due(&c, 110000, &next), RELAY_FLOW_DUE_IDLE);
    CU_ASSERT_EQUAL(next, UINT64_MAX);
    c.last_data_ms = 3599000;
    CU_ASSERT_EQUAL(relay_flow_due(&c, 3601000, &next), RELAY_FLOW_DUE_LIFETIME);
    CU_ASSERT_EQUAL(relay_flow_due(&c, 3600000, &next), RELAY_FLOW_DUE_NONE);
    CU_ASSERT_EQUAL(next, 3601000); /* the lifetime comes first */
    /* both due: the lifetime is the reason */
    c.last_data_ms = 1000;
    CU_ASSERT_EQUAL(relay_flow_due(&c, 4000000, &next), RELAY_FLOW_DUE_LIFETIME);
    /* 0: no such limit */
    c.idle_ms = 0;
    c.life_ms = 0;
    CU_ASSERT_EQUAL(relay_flow_due(&c, UINT64_MAX - 1, &next), RELAY_FLOW_DUE_NONE);
    CU_ASSERT_EQUAL(next, UINT64_MAX);
    c.idle_ms = 5000;
    CU_ASSERT_EQUAL(relay_flow_due(&c, 5999, &next), RELAY_FLOW_DUE_NONE);
    CU_ASSERT_EQUAL(next, 6000);
    CU_ASSERT_EQUAL(relay_flow_due(&c, 6000, &next), RELAY_FLOW_DUE_IDLE);
}

/* The pool as sn_relay.c runs it: 1,024 idle circuits of four prefixes
 * (relay-max-prefix-circuits 256 each) fill it; a circuit from a fifth
 * gets in by displacing the least recently active circuit of a full
 * prefix, and those four cannot take it back. */
static void test_pool_displaces_idle_circuits(void)
{
    struct fair_pool *pool = fair_pool_new(1024, 256, FAIR_VICTIM_OLDEST);
    static struct fair_holder circ[1024 + 2];
    memset(circ, 0, sizeof(circ));
    struct fair_holder *victim;
    uint8_t key[4][2];
    for (int i = 0; i < 1024; i++) {
        int g = i % 4;
        key[g][0] = 'p';
        key[g][1] = (uint8_t)g;
        CU_ASSERT_EQUAL_FATAL(fair_check_key(pool, key[g], 2, 1, &victim), FAIR_OK);
        CU_ASSERT_EQUAL(fair_join(pool, &circ[i], key[g], 2, 1, &circ[i]), 0);
    }
    CU_ASSERT_EQUAL(fair_check_key(pool, key[1], 2, 1, &victim), FAIR_OVER_SHARE);
    fair_touch(pool, &circ[0]); /* circuit 0 carried data: it is kept */
    struct relay_flow_open o = ok_open();
    struct sn_rate rate;
    sn_rate_init(&rate, 0, 0, 0);
    const char *why;
    uint8_t newcomer[2] = {'p', 9};
    o.pool = fair_check_key(pool, newcomer, 2, 1, &victim);
    CU_ASSERT_EQUAL(o.pool, FAIR_DISPLACE);
    CU_ASSERT_EQUAL(relay_flow_admit(&o, &rate, 0, &why), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(victim);
    CU_ASSERT_PTR_NOT_EQUAL(victim, &circ[0]);
    fair_leave(pool, victim);
    CU_ASSERT_EQUAL(fair_check_key(pool, newcomer, 2, 1, &victim), FAIR_OK);
    CU_ASSERT_EQUAL(fair_join(pool, &circ[1024], newcomer, 2, 1, NULL), 0);
    /* the prefix that lost one may not take it back from another */
    for (int g = 0; g < 4; g++) {
        enum fair_verdict v = fair_check_key(pool, key[g], 2, 1, &victim);
        CU_ASSERT(v == FAIR_FULL || v == FAIR_OVER_SHARE);
    }
    for (int i = 0; i < 1024 + 2; i++)
        fair_leave(pool, &circ[i]);
    fair_pool_free(pool);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_relay_flow", NULL, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "a leg's receive window is charged and refused past its size", test_window);
    CU_add_test(s, "send credit is bounded and never wraps", test_window_credit_bound);
    CU_add_test(s, "credit comes back in grant steps for data that went out", test_grants_in_steps);
    CU_add_test(s, "a leg waits for its link, its credit, the bandwidth", test_next_waits_in_order);
    CU_add_test(s, "a simulated circuit with a slow reader balances at every step",
                test_simulated_circuit);
    CU_add_test(s, "RELAY_OPEN refused for each limit with its reason", test_admit);
    CU_add_test(s, "an open circuit closes when idle or at its lifetime", test_due);
    CU_add_test(s, "a full pool lets in another prefix by displacing an idle circuit",
                test_pool_displaces_idle_circuits);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
