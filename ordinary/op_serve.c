/* op_serve.c - serving shared files to other peers (op_serve.h). */
#include "op_serve.h"
#include "err.h"
#include "fileid.h"
#include "log.h"
#include "op_slots.h"
#include "sova_assert.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVE_BUCKET_MS 10 /* token bucket refill granularity */

struct get_req {
    uint8_t file_id[WIRE_HASH_LEN];
    uint32_t chunk_size;
    uint32_t next_chunk, end_chunk; /* [next, end) */
};

/* One peer connected to us. */
struct upload {
    struct op_server *srv;
    struct link *link;
    struct upload *prev, *next;
    struct get_req queue[OP_SERVE_MAX_QUEUED_GETS];
    unsigned head, count;
    /* the chunk being sent */
    int fd;
    const struct op_share_file *file;
    uint8_t fd_id[WIRE_HASH_LEN];
    uint32_t offset; /* within the current chunk */
    uint8_t *buf;
    bool opened;
    /* connection reversal: we dial the downloader (op_server_reverse) */
    struct reverse_dial *dial;
    bool wanting;  /* in the upload slots (GETs queued) */
    bool relayed;  /* reached us through a relay circuit */
    bool reversed; /* we connected out to it (reversal) */
    bool punched;  /* a hole punch made the connection */
    /* for `sova-peer peers` */
    uint64_t bytes_sent;
    uint64_t rate_bps, rate_bytes, rate_since_ms;
};

#define SERVE_RATE_WINDOW_MS 1000 /* a link's upload rate is measured over this */

struct reverse_dial {
    struct tls_ctx *tls;
    uint8_t requester[WIRE_ID_LEN];
    uint8_t token[WIRE_TOKEN_LEN];
    struct wire_addr addrs[WIRE_MAX_ADDRS];
    size_t n, next;
};

struct op_server {
    struct event_base *base;
    struct op_share *share;
    struct link_params params;
    struct link_group links;
    struct upload *uploads;
    uint64_t limit_bps;
    double tokens;
    uint64_t refilled_ms;
    struct event *refill; /* resumes uploads when tokens come back */
    struct op_server_stats stats;
    op_server_adopt_fn *adopt;
    void *adopt_arg;
    unsigned dials; /* reversal dials in progress */
    /* credit (docs/CREDITS.md): upload slots, the requesters' credit, receipts */
    struct op_slots *slots;
    struct event *grant; /* gives free slots away, from the loop */
    op_server_credit_fn *credit_of;
    op_server_receipt_fn *on_receipt;
    void *credit_arg;
};

static void pump(struct upload *u);
static struct upload *upload_new(struct op_server *srv);

static void schedule_grant(struct op_server *srv)
{
    event_active(srv->grant, EV_TIMEOUT, 0);
}

/* u has GETs queued: it waits for an upload slot (or has one). */
static void slot_want(struct upload *u)
{
    struct op_server *srv = u->srv;
    if (u->wanting)
        return;
    const struct tls_peer_info *pi = link_peer(u->link);
    uint64_t credit = srv->credit_of && pi ? srv->credit_of(pi->id, srv->credit_arg) : 0;
    if (op_slots_want(srv->slots, u, credit, link_now_ms()) == 0)
        u->wanting = true;
    schedule_grant(srv);
}

static void slot_leave(struct upload *u)
{
    if (!u->wanting)
        return;
    u->wanting = false;
    op_slots_leave(u->srv->slots, u);
    schedule_grant(u->srv);
}

static void on_grant(evutil_socket_t fd, short what, void *arg)
{
    struct op_server *srv = arg;
    (void)fd, (void)what;
    const void *who;
    while ((who = op_slots_grant(srv->slots, link_now_ms())) != NULL)
        pump((struct upload *)who);
}

static void upload_close_file(struct upload *u)
{
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    u->file = NULL;
}

/* The shared file with this ID, NULL when there is none (or no share). */
static const struct op_share_file *lookup(const struct op_server *srv,
                                          const uint8_t id[WIRE_HASH_LEN])
{
    return srv->share ? op_share_lookup(srv->share, id) : NULL;
}

/* Open the file with this ID, checked against what was hashed. */
static int open_share(struct upload *u, const uint8_t id[WIRE_HASH_LEN])
{
    if (u->fd >= 0 && memcmp(u->fd_id, id, WIRE_HASH_LEN) == 0 && lookup(u->srv, id) == u->file)
        return 0;
    upload_close_file(u);
    const struct op_share_file *f = lookup(u->srv, id);
    char path[PATH_MAX];
    if (f == NULL || op_share_abspath(u->srv->share, f, path, sizeof(path)) != 0)
        return SOVA_ERR_NOT_FOUND;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return SOVA_ERR_NOT_FOUND;
    if (!op_share_file_unchanged(f, fd)) {
        close(fd);
        log_info("serve", "%s changed since it was hashed: not serving it until rescanned",
                 f->relpath);
        op_share_rescan(u->srv->share);
        return SOVA_ERR_NOT_FOUND;
    }
    u->fd = fd;
    u->file = f;
    memcpy(u->fd_id, id, WIRE_HASH_LEN);
    return 0;
}

/* Chunks of f at chunk_size (a size the decoder let through: 64 KiB and up,
 * so at or above the kept layer's). */
static uint64_t chunks_at(const struct op_share_file *f, uint32_t chunk_size)
{
    return fileid_chunks(f->size, (unsigned)fileid_height_of(chunk_size));
}

/* MANIFEST_GET: one page of the layer at the asked chunk size, made from
 * the kept layer (the entries [first, first + n) need the kept hashes
 * [first << d, (first + n) << d), d levels below). */
static void on_manifest_get(struct upload *u, const struct msg_chunk_range *r)
{
    const struct op_share_file *f = lookup(u->srv, r->file_id);
    int height = fileid_height_of(r->chunk_size);
    if (f == NULL) {
        link_send_error(u->link, MSG_ERR_NOT_FOUND, MSG_MANIFEST_GET, "not shared here");
        return;
    }
    SOVA_ASSERT(height >= OP_SHARE_KEEP_HEIGHT); /* the decoder's chunk size rule */
    unsigned d = (unsigned)height - OP_SHARE_KEEP_HEIGHT;
    uint64_t total = chunks_at(f, r->chunk_size);
    if (r->first_chunk >= total && !(total == 0 && r->first_chunk == 0)) {
        link_send_error(u->link, MSG_ERR_NOT_FOUND, MSG_MANIFEST_GET, "no such chunk");
        return;
    }
    uint64_t n = total - r->first_chunk;
    if (n > r->count)
        n = r->count;
    if (n > WIRE_MAX_MANIFEST_DEFAULT)
        n = WIRE_MAX_MANIFEST_DEFAULT;
    if (n > (uint64_t)OP_SERVE_MANIFEST_SPAN >> d)
        n = (uint64_t)OP_SERVE_MANIFEST_SPAN >> d;
    uint64_t from = (uint64_t)r->first_chunk << d, to = (r->first_chunk + n) << d;
    if (to > f->n_layer)
        to = f->n_layer;
    uint8_t(*page)[WIRE_HASH_LEN] = malloc(n > 0 ? (size_t)n * WIRE_HASH_LEN : 1);
    if (page == NULL) {
        link_send_error(u->link, MSG_ERR_INTERNAL, MSG_MANIFEST_GET, "out of memory");
        return;
    }
    size_t got =
        to > from
            ? fileid_layer_up((const uint8_t(*)[FILEID_LEN])(f->layer + from * WIRE_HASH_LEN),
                              (size_t)(to - from), OP_SHARE_KEEP_HEIGHT, (unsigned)height, page)
            : 0; /* an empty file: no chunk, no hash */
    SOVA_ASSERT(got == n);
    struct msg m = {.type = MSG_MANIFEST};
    memcpy(m.u.manifest.file_id, f->id, WIRE_HASH_LEN);
    m.u.manifest.file_size = f->size;
    memcpy(m.u.manifest.root, f->root, WIRE_HASH_LEN);
    m.u.manifest.chunk_size = r->chunk_size;
    m.u.manifest.first_chunk = r->first_chunk;
    m.u.manifest.chunk_hashes = page;
    m.u.manifest.n_chunk_hashes = got;
    link_send(u->link, &m);
    free(page);
}

static void on_get(struct upload *u, const struct msg_chunk_range *r)
{
    const struct op_share_file *f = lookup(u->srv, r->file_id);
    uint64_t total = f ? chunks_at(f, r->chunk_size) : 0;
    if (f == NULL || r->first_chunk >= total) {
        link_send_error(u->link, MSG_ERR_NOT_FOUND, MSG_GET,
                        f ? "no such chunk" : "not shared here");
        return;
    }
    if (r->count > OP_SERVE_MAX_GET_CHUNKS ||
        (uint64_t)r->count * r->chunk_size > OP_SERVE_MAX_GET_BYTES) {
        link_send_error(u->link, MSG_ERR_LIMIT_REACHED, MSG_GET,
                        "a GET asks for at most 64 chunks and 64 MiB");
        return;
    }
    if (u->count == OP_SERVE_MAX_QUEUED_GETS) {
        link_send_error(u->link, MSG_ERR_LIMIT_REACHED, MSG_GET, "8 GETs are waiting already");
        return;
    }
    struct get_req *q = &u->queue[(u->head + u->count++) % OP_SERVE_MAX_QUEUED_GETS];
    memcpy(q->file_id, r->file_id, WIRE_HASH_LEN);
    q->chunk_size = r->chunk_size;
    q->next_chunk = r->first_chunk;
    uint64_t end = (uint64_t)r->first_chunk + r->count;
    q->end_chunk = end > total ? (uint32_t)total : (uint32_t)end;
    if (u->count == 1)
        u->srv->stats.uploading++;
    slot_want(u);
    pump(u);
}

static bool take_tokens(struct op_server *srv, size_t n)
{
    if (srv->limit_bps == 0)
        return true;
    uint64_t now = link_now_ms();
    srv->tokens += (double)(now - srv->refilled_ms) * (double)srv->limit_bps / 1000.0;
    srv->refilled_ms = now;
    double cap = (double)srv->limit_bps / 4 + OP_SERVE_FRAME_DATA; /* 250 ms burst */
    if (srv->tokens > cap)
        srv->tokens = cap;
    if (srv->tokens < (double)n) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = SERVE_BUCKET_MS * 1000};
        if (!evtimer_pending(srv->refill, NULL))
            evtimer_add(srv->refill, &tv);
        return false;
    }
    srv->tokens -= (double)n;
    return true;
}

/* Produce DATA frames for the head GET while the link's queue is short and
 * u holds an upload slot. */
static void pump(struct upload *u)
{
    while (u->count > 0 && link_output_len(u->link) < OP_SERVE_QUEUE_BYTES) {
        if (!op_slots_holds(u->srv->slots, u))
            return; /* on_grant brings us back */
        struct get_req *q = &u->queue[u->head];
        if (q->next_chunk >= q->end_chunk) {
            u->head = (u->head + 1) % OP_SERVE_MAX_QUEUED_GETS;
            if (--u->count == 0) {
                u->srv->stats.uploading--;
                slot_leave(u);
            }
            continue;
        }
        if (open_share(u, q->file_id) != 0) {
            link_send_error(u->link, MSG_ERR_NOT_FOUND, MSG_GET, "file no longer shared");
            u->count = 0;
            u->srv->stats.uploading--;
            slot_leave(u);
            return;
        }
        uint64_t chunk_start = (uint64_t)q->next_chunk * q->chunk_size;
        uint64_t chunk_left = u->file->size - chunk_start;
        uint32_t clen = chunk_left < q->chunk_size ? (uint32_t)chunk_left : q->chunk_size;
        uint32_t want = clen - u->offset;
        if (want > OP_SERVE_FRAME_DATA)
            want = OP_SERVE_FRAME_DATA;
        /* Under an upload limit, frames of a quarter second's worth: the
         * downloader then sees steady progress, not a burst per 256 KiB. */
        if (u->srv->limit_bps != 0 && want > u->srv->limit_bps / 4 && want > OP_SERVE_MIN_FRAME)
            want = (uint32_t)(u->srv->limit_bps / 4 > OP_SERVE_MIN_FRAME ? u->srv->limit_bps / 4
                                                                         : OP_SERVE_MIN_FRAME);
        if (!take_tokens(u->srv, want))
            return; /* the refill timer resumes us */
        ssize_t r = pread(u->fd, u->buf, want, (off_t)(chunk_start + u->offset));
        if (r != (ssize_t)want) {
            log_warn("serve", "cannot read %s: %s", u->file->relpath,
                     r < 0 ? strerror(errno) : "file shrank");
            upload_close_file(u);
            op_share_rescan(u->srv->share);
            link_send_error(u->link, MSG_ERR_NOT_FOUND, MSG_GET, "file changed");
            u->count = 0;
            u->srv->stats.uploading--;
            slot_leave(u);
            return;
        }
        struct msg m = {.type = MSG_DATA};
        memcpy(m.u.data.file_id, q->file_id, WIRE_HASH_LEN);
        m.u.data.chunk_index = q->next_chunk;
        m.u.data.offset = u->offset;
        m.u.data.data = (struct wire_bytes){.ptr = u->buf, .len = want};
        if (link_send(u->link, &m) != 0)
            return;
        u->srv->stats.bytes_sent += want;
        u->bytes_sent += want;
        u->rate_bytes += want;
        uint64_t now = link_now_ms();
        if (now - u->rate_since_ms >= SERVE_RATE_WINDOW_MS) {
            u->rate_bps = u->rate_since_ms ? u->rate_bytes * 1000 / (now - u->rate_since_ms) : 0;
            u->rate_bytes = 0;
            u->rate_since_ms = now;
        }
        u->offset += want;
        if (u->offset == clen) {
            u->offset = 0;
            q->next_chunk++;
            u->srv->stats.chunks_sent++;
            /* A chunk is done: a richer (or starving) waiter may take the slot. */
            if (q->next_chunk < q->end_chunk || u->count > 1) {
                if (!op_slots_chunk_done(u->srv->slots, u, link_now_ms())) {
                    schedule_grant(u->srv);
                    return;
                }
            }
        }
    }
}

static void on_refill(evutil_socket_t fd, short what, void *arg)
{
    struct op_server *srv = arg;
    (void)fd;
    (void)what;
    for (struct upload *u = srv->uploads; u; u = u->next)
        if (u->link)
            pump(u);
}

static void upload_free(struct upload *u);

static void on_opened(struct link *l, void *arg)
{
    struct upload *u = arg;
    struct op_server *srv = u->srv;
    if (link_connect_token(l) != NULL && !link_is_dialer(l)) {
        /* It answers a CONNECT of ours: a source for one of our downloads. */
        if (srv->adopt != NULL && srv->adopt(l, srv->adopt_arg)) {
            upload_free(u); /* the link is the fetcher's now */
            return;
        }
        log_warn("serve", "%s: connected with a token we did not hand out", link_name(l));
        link_close(l, MSG_ERR_UNAUTHORIZED, "unknown connect token");
        return;
    }
    if (link_remote_role(l) == MSG_ROLE_SUPERNODE) {
        /* A supernode proving we can be reached (dial-back): it hangs up. */
        log_debug("serve", "%s: dial-back from our supernode", link_name(l));
        return;
    }
    u->opened = true;
    if (u->dial != NULL) {
        srv->dials--;
        free(u->dial);
        u->dial = NULL;
        u->reversed = true;
        log_info("serve", "%s: connected out to the peer that asked (reversal)", link_name(l));
    }
    srv->stats.links++;
    log_info("serve", "%s: peer connected", link_name(l));
}

static void on_message(struct link *l, const struct msg *m, void *arg)
{
    struct upload *u = arg;
    switch (m->type) {
    case MSG_MANIFEST_GET:
        on_manifest_get(u, &m->u.manifest_get);
        return;
    case MSG_GET:
        on_get(u, &m->u.get);
        return;
    case MSG_RECEIPT:
        if (u->srv->on_receipt != NULL)
            u->srv->on_receipt(link_peer(l)->id, &m->u.receipt, u->srv->credit_arg);
        return;
    case MSG_ERROR:
        return;
    default: /* valid, but not for a peer's listener: ERROR 100, closed */
        link_send_error(l, MSG_ERR_PROTOCOL, m->type, "not served by a peer");
        link_close(l, 0, NULL);
    }
}

static void on_drained(struct link *l, void *arg)
{
    (void)l;
    pump(arg);
}

static void upload_free(struct upload *u)
{
    struct op_server *srv = u->srv;
    if (u->dial != NULL) {
        srv->dials--;
        free(u->dial);
    }
    if (u->prev)
        u->prev->next = u->next;
    else
        srv->uploads = u->next;
    if (u->next)
        u->next->prev = u->prev;
    slot_leave(u);
    upload_close_file(u);
    free(u->buf);
    free(u);
}

static bool dial_next(struct upload *u);

static void on_closed(struct link *l, int why, void *arg)
{
    struct upload *u = arg;
    if (u->dial != NULL) {
        char a[64];
        log_info("serve", "reversal: cannot connect to %s: %s",
                 wire_addr_format(&u->dial->addrs[u->dial->next - 1], a, sizeof(a)),
                 why ? sova_err_str(why) : "closed");
        u->link = NULL;
        if (dial_next(u))
            return;
        upload_free(u);
        return;
    }
    if (u->opened) {
        u->srv->stats.links--;
        log_info("serve", "%s: peer disconnected (%s)", link_name(l),
                 why ? sova_err_str(why) : "closed");
    }
    if (u->count > 0)
        u->srv->stats.uploading--;
    upload_free(u);
}

static const struct link_hooks serve_hooks = {
    .opened = on_opened,
    .message = on_message,
    .closed = on_closed,
    .drained = on_drained,
};

void op_server_set_share(struct op_server *srv, struct op_share *share)
{
    srv->share = share;
}

struct op_server *op_server_new(struct event_base *base, struct op_share *share,
                                const struct link_params *params, uint64_t upload_limit_bps)
{
    struct op_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->base = base;
    srv->share = share;
    srv->params = *params;
    srv->params.group = &srv->links;
    srv->limit_bps = upload_limit_bps;
    srv->refilled_ms = link_now_ms();
    srv->refill = evtimer_new(base, on_refill, srv);
    srv->grant = event_new(base, -1, 0, on_grant, srv);
    srv->slots = op_slots_new(OP_SERVE_SLOTS_DEFAULT, OP_SERVE_MAX_WAIT_MS_DEFAULT);
    if (srv->refill == NULL || srv->grant == NULL || srv->slots == NULL) {
        if (srv->refill)
            event_free(srv->refill);
        if (srv->grant)
            event_free(srv->grant);
        op_slots_free(srv->slots);
        free(srv);
        return NULL;
    }
    return srv;
}

void op_server_set_upload_limit(struct op_server *srv, uint64_t upload_limit_bps)
{
    srv->limit_bps = upload_limit_bps; /* the next refill clamps the saved tokens */
}

void op_server_free(struct op_server *srv)
{
    if (srv == NULL)
        return;
    link_group_free_all(&srv->links);
    while (srv->uploads)
        upload_free(srv->uploads);
    event_free(srv->refill);
    event_free(srv->grant);
    op_slots_free(srv->slots);
    free(srv);
}

void op_server_accept(struct op_server *srv, evutil_socket_t fd, SSL *ssl,
                      const struct sockaddr *sa, socklen_t len)
{
    struct upload *u = upload_new(srv);
    if (u == NULL) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        return;
    }
    u->link = link_accept(srv->base, fd, ssl, sa, len, &srv->params, &serve_hooks, u);
    if (u->link == NULL)
        upload_free(u);
}

void op_server_stats(const struct op_server *srv, struct op_server_stats *out)
{
    *out = srv->stats;
    out->waiting = (unsigned)op_slots_waiting(srv->slots);
}

void op_server_set_slots(struct op_server *srv, unsigned slots, uint64_t max_wait_ms)
{
    op_slots_configure(srv->slots, slots, max_wait_ms);
    schedule_grant(srv);
}

void op_server_set_credit(struct op_server *srv, op_server_credit_fn *credit_of,
                          op_server_receipt_fn *on_receipt, void *arg)
{
    srv->credit_of = credit_of;
    srv->on_receipt = on_receipt;
    srv->credit_arg = arg;
}

void op_server_credit_known(struct op_server *srv, const uint8_t peer_id[WIRE_ID_LEN],
                            uint64_t credit)
{
    for (struct upload *u = srv->uploads; u; u = u->next) {
        const struct tls_peer_info *pi = u->link && u->opened ? link_peer(u->link) : NULL;
        if (u->wanting && pi && memcmp(pi->id, peer_id, WIRE_ID_LEN) == 0)
            op_slots_set_credit(srv->slots, u, credit);
    }
}

/* A new upload slot, linked into the server; NULL when out of memory. */
static struct upload *upload_new(struct op_server *srv)
{
    struct upload *u = calloc(1, sizeof(*u));
    if (u != NULL)
        u->buf = malloc(OP_SERVE_FRAME_DATA);
    if (u == NULL || u->buf == NULL) {
        free(u);
        return NULL;
    }
    u->srv = srv;
    u->fd = -1;
    u->next = srv->uploads;
    if (srv->uploads)
        srv->uploads->prev = u;
    srv->uploads = u;
    return u;
}

void op_server_set_adopt(struct op_server *srv, op_server_adopt_fn *fn, void *arg)
{
    srv->adopt = fn;
    srv->adopt_arg = arg;
}

static void wrap(struct op_server *srv, struct bufferevent *stream, SSL *ssl, const char *name,
                 bool relayed)
{
    struct upload *u = upload_new(srv);
    if (u == NULL) {
        SSL_free(ssl);
        bufferevent_free(stream);
        return;
    }
    u->relayed = relayed;
    u->punched = !relayed;
    u->link = link_wrap(srv->base, stream, ssl, true, name, &srv->params, &serve_hooks, u);
    if (u->link == NULL)
        upload_free(u);
}

void op_server_wrap(struct op_server *srv, struct bufferevent *stream, SSL *ssl, const char *name)
{
    wrap(srv, stream, ssl, name, true);
}

void op_server_wrap_punched(struct op_server *srv, struct bufferevent *stream, SSL *ssl,
                            const char *name)
{
    wrap(srv, stream, ssl, name, false);
}

void op_server_foreach_peer(const struct op_server *srv, op_server_peer_fn *fn, void *arg)
{
    uint64_t now = link_now_ms();
    for (const struct upload *u = srv->uploads; u; u = u->next) {
        const struct tls_peer_info *peer = u->link && u->opened ? link_peer(u->link) : NULL;
        if (peer == NULL)
            continue;
        struct op_server_peer p = {
            .peer_id = peer->id,
            .addr = u->relayed ? NULL : link_remote_addr(u->link),
            .path = u->relayed    ? "relay"
                    : u->reversed ? "reversal"
                    : u->punched  ? "holepunch"
                                  : "direct",
            .bytes_sent = u->bytes_sent,
            /* a rate not measured for two windows is stale: nothing was sent */
            .rate_bps = now - u->rate_since_ms < 2 * SERVE_RATE_WINDOW_MS ? u->rate_bps : 0,
            .uploading = u->count > 0,
        };
        fn(&p, arg);
    }
}

/* Dial the next address of a reversal; false when none is left. */
static bool dial_next(struct upload *u)
{
    struct reverse_dial *rd = u->dial;
    while (rd->next < rd->n) {
        const struct wire_addr *a = &rd->addrs[rd->next++];
        struct sockaddr_storage ss;
        socklen_t len = wire_addr_to_sockaddr(a, &ss);
        SSL *ssl = NULL;
        if (len == 0 || tls_ctx_client(rd->tls, TLS_EXPECT_PEER_ID, rd->requester, &ssl) != 0)
            continue;
        struct link_params p = u->srv->params;
        p.connect_token = rd->token;
        u->link = link_connect(u->srv->base, (struct sockaddr *)&ss, len, ssl, &p, &serve_hooks, u);
        if (u->link != NULL)
            return true;
    }
    return false;
}

void op_server_reverse(struct op_server *srv, struct tls_ctx *tls,
                       const uint8_t requester[WIRE_ID_LEN], const uint8_t token[WIRE_TOKEN_LEN],
                       const struct wire_addr *addrs, size_t n)
{
    if (srv->dials >= OP_SERVE_MAX_REVERSALS || n == 0) {
        log_warn("serve", "reversal request dropped (%u dials in progress)", srv->dials);
        return;
    }
    struct upload *u = upload_new(srv);
    struct reverse_dial *rd = u ? calloc(1, sizeof(*rd)) : NULL;
    if (rd == NULL) {
        if (u)
            upload_free(u);
        return;
    }
    rd->tls = tls;
    memcpy(rd->requester, requester, WIRE_ID_LEN);
    memcpy(rd->token, token, WIRE_TOKEN_LEN);
    rd->n = n < WIRE_MAX_ADDRS ? n : WIRE_MAX_ADDRS;
    memcpy(rd->addrs, addrs, rd->n * sizeof(addrs[0]));
    u->dial = rd;
    srv->dials++;
    if (!dial_next(u))
        upload_free(u);
}
