/* fuzz_nat_relay.c - the relay framing at a peer: a byte stream of frames
 * as the supernode link would deliver them, every RELAY_* message fed to a
 * live nat_relay (nat/nat_relay.h) with its event loop turning between
 * frames. The relay has one circuit of its own opening (id 1) and answers
 * RELAY_OPENs; its streams' owners write into them.
 *
 * Checked: no crash, leak or read out of bounds whatever comes (ASan), every
 * frame the relay sends encodes and is a relay message, and it never sends
 * on a circuit more RELAY_DATA than the initial credit plus the windows it
 * was given — the flow-control promise to the supernode. */
#include "fuzz_msg.h"
#include "nat_relay.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <string.h>

#define FUZZ_MAX_CIRCUITS 64
#define FUZZ_MAX_STREAMS  16

struct fuzz_ctx {
    struct wire_limits lim;
    struct {
        uint32_t id;
        uint64_t granted, sent;
    } c[FUZZ_MAX_CIRCUITS];
    size_t n;
    struct bufferevent *streams[FUZZ_MAX_STREAMS];
    size_t n_streams;
};

static size_t slot(struct fuzz_ctx *f, uint32_t id)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->c[i].id == id)
            return i;
    if (f->n == FUZZ_MAX_CIRCUITS)
        return SIZE_MAX;
    f->c[f->n].id = id;
    f->c[f->n].granted = MSG_RELAY_INITIAL_CREDIT;
    f->c[f->n].sent = 0;
    return f->n++;
}

static int on_send(const struct msg *m, void *arg)
{
    struct fuzz_ctx *f = arg;
    struct wire_buf out;
    struct wire_err err;
    wire_buf_init(&out);
    if (msg_encode(m, &f->lim, &out, &err) != 0 || msg_type_family(m->type) != MSG_FAMILY_RELAY)
        abort();
    wire_buf_free(&out);
    if (m->type == MSG_RELAY_DATA) {
        size_t i = slot(f, m->u.relay_data.circuit_id);
        if (i != SIZE_MAX) {
            f->c[i].sent += m->u.relay_data.data.len;
            if (f->c[i].sent > f->c[i].granted)
                abort(); /* more than the supernode allowed */
        }
    }
    return 0;
}

static void keep_stream(struct fuzz_ctx *f, struct bufferevent *stream)
{
    if (f->n_streams == FUZZ_MAX_STREAMS) {
        bufferevent_free(stream); /* refused: the relay closes the circuit */
        return;
    }
    static const char hello[] = "ciphertext of the inner TLS session";
    for (int i = 0; i < 64; i++) /* 2 KiB+ to send, so credit matters */
        bufferevent_write(stream, hello, sizeof(hello));
    f->streams[f->n_streams++] = stream;
}

static void on_incoming(struct bufferevent *stream, const uint8_t origin[WIRE_ID_LEN],
                        const uint8_t token[WIRE_TOKEN_LEN], void *arg)
{
    (void)origin, (void)token;
    keep_stream(arg, stream);
}

static void on_open(struct bufferevent *stream, uint16_t reason, void *arg)
{
    (void)reason;
    if (stream != NULL)
        keep_stream(arg, stream);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_ctx f = {.lim = fuzz_tight_limits()};
    f.lim.max_frame = 65536;
    f.lim.max_relay_data = 1024;
    struct event_base *base = event_base_new();
    struct nat_relay_hooks hooks = {.send = on_send, .incoming = on_incoming};
    struct nat_relay *r = nat_relay_new(base, &f.lim, &hooks, &f);
    static const uint8_t self[WIRE_ID_LEN] = {1}, target[WIRE_ID_LEN] = {2}, token[16] = {3};
    nat_relay_open(r, self, target, token, 1000, on_open, &f, NULL);
    size_t off = 0;
    while (off < size) {
        struct msg m;
        size_t used = 0;
        struct wire_err err;
        if (msg_decode_frame(data + off, size - off, &f.lim, &m, &used, &err) != 0)
            break;
        off += used;
        if (msg_type_family(m.type) == MSG_FAMILY_RELAY) {
            /* What the relay may send: each circuit under this id starts
             * with the initial credit, and windows add to it (counted over
             * every circuit the id had: an upper bound). */
            size_t i = m.type == MSG_RELAY_WINDOW ? slot(&f, m.u.relay_window.circuit_id)
                       : m.type == MSG_RELAY_OPEN ? slot(&f, m.u.relay_open.circuit_id)
                                                  : SIZE_MAX;
            if (i != SIZE_MAX)
                f.c[i].granted +=
                    m.type == MSG_RELAY_WINDOW ? m.u.relay_window.credit : MSG_RELAY_INITIAL_CREDIT;
            nat_relay_message(r, &m);
        }
        msg_clear(&m);
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    nat_relay_link_down(r);
    event_base_loop(base, EVLOOP_NONBLOCK);
    nat_relay_free(r);
    for (size_t i = 0; i < f.n_streams; i++)
        bufferevent_free(f.streams[i]);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    return 0;
}
