/* test_nat_relay.c - the peer ends of a relay circuit (nat/nat_relay.h),
 * back to back through a stand-in supernode hop that does what a real one
 * checks: ids of the right parity, no more data than granted. Every frame
 * goes through msg_encode/msg_decode_frame and is delivered from the event
 * loop, never from inside the sender. Two real TLS links (link_wrap, peer
 * identities from identity_load_or_create) run over the circuit: the
 * origin checks the target's ID; data flows both ways, far past the
 * initial window; and every way a circuit ends leaves nothing behind. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "identity.h"
#include "link.h"
#include "nat_relay.h"
#include "tls.h"

#define MB            (1024u * 1024)
#define DATA_PIECE    (200u * 1024)
#define TEST_DEADLINE 20 /* seconds any one scenario may take */

static char tmp_root[256];
static struct sova_identity *id_a, *id_b, *id_c;
static struct tls_ctx *ctx_a, *ctx_b;
static struct wire_limits lim;

/* ---- the stand-in supernode hop ---------------------------------------------------- */

struct frame {
    struct frame *next;
    int to; /* 0: peer A (origin side), 1: peer B (target side) */
    struct wire_buf bytes;
};

struct hop {
    struct event_base *base;
    struct nat_relay *relay[2];
    struct event *deliver;
    struct frame *head, **tail;
    uint32_t id[2];         /* circuit id on A's link (odd), on B's link (even) */
    int64_t credit_from[2]; /* what each peer may still send us */
    bool refuse;            /* answer RELAY_OPEN with RELAY_CLOSE */
    bool swallow_open;      /* never answer RELAY_OPEN (timeout test) */
    bool violation;         /* a peer broke the protocol */
    uint64_t data_frames;
};

static void queue(struct hop *h, int to, const struct msg *m)
{
    struct frame *f = calloc(1, sizeof(*f));
    wire_buf_init(&f->bytes);
    struct wire_err err = {0};
    CU_ASSERT_EQUAL_FATAL(msg_encode(m, &lim, &f->bytes, &err), 0);
    f->to = to;
    *h->tail = f;
    h->tail = &f->next;
    event_active(h->deliver, 0, 0);
}

/* What peer `from` sent, as a supernode would handle it. */
static void hop_handle(struct hop *h, int from, const struct msg *m)
{
    int to = !from;
    struct msg out = *m;
    switch (m->type) {
    case MSG_RELAY_OPEN:
        if (from != 0 || (m->u.relay_open.circuit_id & 1u) != 1u) {
            h->violation = true;
            return;
        }
        h->id[0] = m->u.relay_open.circuit_id;
        h->id[1] = 2;
        h->credit_from[0] = h->credit_from[1] = MSG_RELAY_INITIAL_CREDIT;
        if (h->swallow_open)
            return;
        if (h->refuse) {
            out.type = MSG_RELAY_CLOSE;
            out.u.relay_close = (struct msg_relay_close){h->id[0], MSG_ERR_LIMIT_REACHED};
            queue(h, 0, &out);
            return;
        }
        out.u.relay_open.circuit_id = h->id[1];
        queue(h, 1, &out);
        return;
    case MSG_RELAY_ACCEPT:
        out.type = MSG_RELAY_OPENED;
        out.u.relay_opened.circuit_id = h->id[0];
        queue(h, 0, &out);
        return;
    case MSG_RELAY_DATA:
        h->data_frames++;
        h->credit_from[from] -= (int64_t)m->u.relay_data.data.len;
        if (h->credit_from[from] < 0 || m->u.relay_data.circuit_id != h->id[from])
            h->violation = true;
        out.u.relay_data.circuit_id = h->id[to];
        queue(h, to, &out);
        return;
    case MSG_RELAY_WINDOW:
        /* The receiver's grant is passed on as ours: this hop buffers
         * nothing, so the credits line up end to end. */
        h->credit_from[to] += m->u.relay_window.credit;
        out.u.relay_window.circuit_id = h->id[to];
        queue(h, to, &out);
        return;
    case MSG_RELAY_CLOSE:
        out.u.relay_close.circuit_id = h->id[to];
        queue(h, to, &out);
        return;
    default:
        h->violation = true;
    }
}

static void on_deliver(evutil_socket_t fd, short what, void *arg)
{
    struct hop *h = arg;
    (void)fd, (void)what;
    while (h->head != NULL) {
        struct frame *f = h->head;
        h->head = f->next;
        if (h->head == NULL)
            h->tail = &h->head;
        struct msg m;
        size_t used = 0;
        struct wire_err err = {0};
        CU_ASSERT_EQUAL(msg_decode_frame(f->bytes.data, f->bytes.len, &lim, &m, &used, &err), 0);
        if (f->to < 0)
            hop_handle(h, -f->to - 1, &m);
        else if (h->relay[f->to] != NULL)
            nat_relay_message(h->relay[f->to], &m);
        msg_clear(&m);
        wire_buf_free(&f->bytes);
        free(f);
    }
}

/* A peer's send hook: frames go to the hop, from the loop. */
struct peer_end {
    struct hop *h;
    int side;
    struct link *link;
    bool opened, closed;
    int close_why;
    uint64_t bytes_got, bytes_sent, bytes_to_send;
    uint8_t next_byte_got, next_byte_sent;
    bool corrupt;
    uint16_t open_reason;
    bool open_called;
};

static int peer_send(const struct msg *m, void *arg)
{
    struct peer_end *p = arg;
    struct frame *f = calloc(1, sizeof(*f));
    wire_buf_init(&f->bytes);
    struct wire_err err = {0};
    CU_ASSERT_EQUAL_FATAL(msg_encode(m, &lim, &f->bytes, &err), 0);
    f->to = -p->side - 1; /* to the hop, from this side */
    *p->h->tail = f;
    p->h->tail = &f->next;
    event_active(p->h->deliver, 0, 0);
    return 0;
}

/* ---- the TLS links over the circuit ----------------------------------------------------- */

static void send_more(struct peer_end *p)
{
    static uint8_t piece[DATA_PIECE];
    while (p->opened && p->bytes_sent < p->bytes_to_send && link_output_len(p->link) < 2 * MB) {
        size_t n = DATA_PIECE;
        if (n > p->bytes_to_send - p->bytes_sent)
            n = (size_t)(p->bytes_to_send - p->bytes_sent);
        for (size_t i = 0; i < n; i++)
            piece[i] = p->next_byte_sent++;
        struct msg m = {.type = MSG_DATA};
        m.u.data.chunk_index = 0;
        m.u.data.offset = 0;
        m.u.data.data = (struct wire_bytes){piece, n};
        CU_ASSERT_EQUAL(link_send(p->link, &m), 0);
        p->bytes_sent += n;
    }
}

static void on_link_opened(struct link *l, void *arg)
{
    struct peer_end *p = arg;
    (void)l;
    p->opened = true;
    send_more(p);
}

static void on_link_message(struct link *l, const struct msg *m, void *arg)
{
    struct peer_end *p = arg;
    (void)l;
    if (m->type != MSG_DATA)
        return;
    for (size_t i = 0; i < m->u.data.data.len; i++)
        if (m->u.data.data.ptr[i] != p->next_byte_got++)
            p->corrupt = true;
    p->bytes_got += m->u.data.data.len;
}

static void on_link_drained(struct link *l, void *arg)
{
    (void)l;
    send_more(arg);
}

static void on_link_closed(struct link *l, int why, void *arg)
{
    struct peer_end *p = arg;
    (void)l;
    p->closed = true;
    p->close_why = why;
    p->link = NULL;
}

static const struct link_hooks hooks = {
    .opened = on_link_opened,
    .message = on_link_message,
    .closed = on_link_closed,
    .drained = on_link_drained,
};

static struct link_params params = {
    .local_role = MSG_ROLE_PEER,
    .handshake_timeout_ms = 5000,
    .max_output = 8 * MB,
};

static const uint8_t *expect_id; /* what the origin's TLS expects of the target */

static void on_circuit_open(struct bufferevent *stream, uint16_t reason, void *arg)
{
    struct peer_end *p = arg;
    p->open_called = true;
    p->open_reason = reason;
    if (stream == NULL)
        return;
    SSL *ssl = NULL;
    CU_ASSERT_EQUAL_FATAL(tls_ctx_client(ctx_a, TLS_EXPECT_PEER_ID, expect_id, &ssl), 0);
    p->link = link_wrap(p->h->base, stream, ssl, false, "relay-a", &params, &hooks, p);
    CU_ASSERT_PTR_NOT_NULL(p->link);
}

static struct peer_end *target_end;
static void on_incoming(struct bufferevent *stream, const uint8_t origin[WIRE_ID_LEN],
                        const uint8_t token[WIRE_TOKEN_LEN], void *arg)
{
    struct peer_end *p = target_end;
    (void)arg;
    CU_ASSERT_EQUAL(memcmp(origin, identity_id(id_a), WIRE_ID_LEN), 0);
    CU_ASSERT_EQUAL(token[0], 0x7e);
    SSL *ssl = NULL;
    CU_ASSERT_EQUAL_FATAL(tls_ctx_server(ctx_b, identity_id(id_a), &ssl), 0);
    p->link = link_wrap(p->h->base, stream, ssl, true, "relay-b", &params, &hooks, p);
    CU_ASSERT_PTR_NOT_NULL(p->link);
}

/* ---- scenarios ------------------------------------------------------------------------- */

struct world {
    struct hop hop;
    struct peer_end a, b;
    struct event *deadline;
    bool timed_out;
};

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct world *w = arg;
    (void)fd, (void)what;
    w->timed_out = true;
    event_base_loopbreak(w->hop.base);
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    w->hop.base = event_base_new();
    w->hop.tail = &w->hop.head;
    w->hop.deliver = event_new(w->hop.base, -1, 0, on_deliver, &w->hop);
    w->a = (struct peer_end){.h = &w->hop, .side = 0};
    w->b = (struct peer_end){.h = &w->hop, .side = 1};
    struct nat_relay_hooks ha = {.send = peer_send, .incoming = NULL};
    struct nat_relay_hooks hb = {.send = peer_send, .incoming = on_incoming};
    w->hop.relay[0] = nat_relay_new(w->hop.base, &lim, &ha, &w->a);
    w->hop.relay[1] = nat_relay_new(w->hop.base, &lim, &hb, &w->b);
    target_end = &w->b;
    expect_id = identity_id(id_b);
    w->deadline = evtimer_new(w->hop.base, on_deadline, w);
    struct timeval tv = {.tv_sec = TEST_DEADLINE};
    evtimer_add(w->deadline, &tv);
}

/* Run the loop until cond(w) holds or the deadline passes. */
static bool run_until(struct world *w, bool (*cond)(struct world *))
{
    while (!cond(w) && !w->timed_out)
        event_base_loop(w->hop.base, EVLOOP_ONCE);
    return cond(w);
}

static void world_free(struct world *w)
{
    link_free_now(w->a.link);
    link_free_now(w->b.link);
    nat_relay_free(w->hop.relay[0]);
    nat_relay_free(w->hop.relay[1]);
    on_deliver(-1, 0, &w->hop); /* frames still queued, to nobody */
    event_free(w->hop.deliver);
    event_free(w->deadline);
    event_base_free(w->hop.base);
}

static void open_circuit(struct world *w)
{
    uint8_t token[WIRE_TOKEN_LEN];
    memset(token, 0x7e, sizeof(token));
    CU_ASSERT_EQUAL(nat_relay_open(w->hop.relay[0], identity_id(id_a), identity_id(id_b), token,
                                   2000, on_circuit_open, &w->a, NULL),
                    0);
}

static bool both_open(struct world *w)
{
    return w->a.opened && w->b.opened;
}
static bool transfer_done(struct world *w)
{
    return w->a.bytes_got == w->b.bytes_to_send && w->b.bytes_got == w->a.bytes_to_send;
}
static bool both_closed(struct world *w)
{
    return w->a.closed && w->b.closed;
}
static bool open_answered(struct world *w)
{
    return w->a.open_called;
}

static unsigned circuits(struct nat_relay *r)
{
    struct nat_relay_stats st;
    nat_relay_stats(r, &st);
    return st.circuits;
}

static void test_transfer_both_ways(void)
{
    struct world w;
    world_init(&w);
    w.a.bytes_to_send = 3 * MB; /* twelve times the initial window */
    w.b.bytes_to_send = 24 * MB;
    open_circuit(&w);
    CU_ASSERT_TRUE_FATAL(run_until(&w, both_open));
    CU_ASSERT_TRUE(run_until(&w, transfer_done));
    CU_ASSERT_FALSE(w.a.corrupt || w.b.corrupt);
    CU_ASSERT_FALSE(w.hop.violation); /* never more than granted */
    struct nat_relay_stats st;
    nat_relay_stats(w.hop.relay[1], &st);
    CU_ASSERT_EQUAL(st.accepted, 1);
    CU_ASSERT(st.bytes_out > 24 * MB); /* TLS records: a little more than the data */
    /* The origin hangs up: the target's link ends too, and both circuits. */
    link_close(w.a.link, 0, NULL);
    CU_ASSERT_TRUE(run_until(&w, both_closed));
    while (event_base_loop(w.hop.base, EVLOOP_NONBLOCK) == 0 && w.hop.head)
        ;
    CU_ASSERT_EQUAL(circuits(w.hop.relay[0]), 0);
    CU_ASSERT_EQUAL(circuits(w.hop.relay[1]), 0);
    world_free(&w);
}

static void test_wrong_target_fails_tls(void)
{
    struct world w;
    world_init(&w);
    expect_id = identity_id(id_c); /* someone else answers the circuit */
    open_circuit(&w);
    CU_ASSERT_TRUE(run_until(&w, both_closed));
    CU_ASSERT_FALSE(w.a.opened);
    CU_ASSERT_EQUAL(w.a.close_why, SOVA_ERR_ID_MISMATCH);
    world_free(&w);
}

static void test_refused_and_timeout(void)
{
    struct world w;
    world_init(&w);
    w.hop.refuse = true;
    open_circuit(&w);
    CU_ASSERT_TRUE(run_until(&w, open_answered));
    CU_ASSERT_EQUAL(w.a.open_reason, MSG_ERR_LIMIT_REACHED);
    CU_ASSERT_EQUAL(circuits(w.hop.relay[0]), 0);
    world_free(&w);

    world_init(&w);
    w.hop.swallow_open = true;
    open_circuit(&w); /* 2 s timeout */
    CU_ASSERT_TRUE(run_until(&w, open_answered));
    CU_ASSERT_EQUAL(w.a.open_reason, MSG_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(circuits(w.hop.relay[0]), 0);
    world_free(&w);
}

static void test_supernode_link_lost(void)
{
    struct world w;
    world_init(&w);
    w.a.bytes_to_send = 64 * MB; /* still running when the link goes */
    open_circuit(&w);
    CU_ASSERT_TRUE_FATAL(run_until(&w, both_open));
    nat_relay_link_down(w.hop.relay[0]);
    nat_relay_link_down(w.hop.relay[1]);
    CU_ASSERT_TRUE(run_until(&w, both_closed)); /* EOF reaches both TLS links */
    CU_ASSERT_EQUAL(circuits(w.hop.relay[0]), 0);
    CU_ASSERT_EQUAL(circuits(w.hop.relay[1]), 0);
    world_free(&w);

    world_init(&w);
    w.hop.swallow_open = true;
    open_circuit(&w);
    nat_relay_link_down(w.hop.relay[0]);
    CU_ASSERT_TRUE(w.a.open_called);
    CU_ASSERT_EQUAL(w.a.open_reason, MSG_ERR_NOT_ATTACHED);
    world_free(&w);
}

static int suite_init(void)
{
    lim = wire_limits_default();
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/sova-test-relay.XXXXXX");
    if (mkdtemp(tmp_root) == NULL)
        return 1;
    char dir[300], err[512];
    struct sova_identity **ids[] = {&id_a, &id_b, &id_c};
    for (int i = 0; i < 3; i++) {
        snprintf(dir, sizeof(dir), "%s/%c", tmp_root, 'a' + i);
        if (identity_load_or_create(dir, ids[i], err, sizeof(err)) != 0)
            return 1;
    }
    if (tls_ctx_new(id_a, NULL, TLS_CTX_PEER, &ctx_a, err, sizeof(err)) != 0 ||
        tls_ctx_new(id_b, NULL, TLS_CTX_PEER, &ctx_b, err, sizeof(err)) != 0)
        return 1;
    params.limits = &lim;
    return 0;
}

static int suite_clean(void)
{
    tls_ctx_free(ctx_a);
    tls_ctx_free(ctx_b);
    identity_free(id_a);
    identity_free(id_b);
    identity_free(id_c);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_root);
    return system(cmd) == 0 ? 0 : 1;
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("nat_relay", suite_init, suite_clean);
    if (s == NULL)
        return -1;
    CU_add_test(s, "TLS over a circuit, 27 MiB both ways, within the windows",
                test_transfer_both_ways);
    CU_add_test(s, "the origin's TLS refuses a target with another ID",
                test_wrong_target_fails_tls);
    CU_add_test(s, "refused and unanswered opens report why", test_refused_and_timeout);
    CU_add_test(s, "the supernode link going ends every circuit", test_supernode_link_lost);
    return 0;
}
