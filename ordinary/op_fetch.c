/* op_fetch.c - downloads: sources, manifest, chunks, verification.
 * The part file and the final whole-file check are in op_fetch_file.c. */
#include "op_fetch.h"
#include "err.h"
#include "log.h"
#include "op_fetch_file.h"
#include "op_sched.h"
#include "op_share.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_RETRY_MIN_MS     500   /* first reconnect to a source */
#define FETCH_RETRY_MAX_MS     10000 /* reconnect cap */
#define FETCH_TICK_MS          1000  /* progress heartbeat and stall checks */
#define FETCH_NOTIFY_MIN_MS    200   /* progress to watchers at most this often */
#define FETCH_FIND_SOURCES_MS  10000 /* ask the supernode again when stalled this long */
#define FETCH_MANIFEST_PAGE    1024  /* chunk hashes asked per MANIFEST_GET */

struct fetch_chunk { /* a chunk being received from one source */
    int64_t index;   /* -1: slot free */
    uint32_t got;
    uint32_t len;
    uint8_t *data;   /* len bytes, allocated once per slot */
    uint32_t cap;
};

enum source_state { SRC_IDLE, SRC_CONNECTING, SRC_OPEN, SRC_BANNED };

struct fetch_source {
    struct download *dl;
    unsigned idx; /* scheduler index */
    uint8_t peer_id[WIRE_ID_LEN];
    char short_id[NODE_ID_SHORT_LEN + 1];
    struct wire_addr addrs[WIRE_MAX_ADDRS];
    size_t n_addrs, next_addr;
    enum source_state state;
    struct link *link;
    struct event *retry;
    unsigned retry_ms;
    bool manifest_asked;
    struct fetch_chunk slots[OP_SCHED_PIPELINE];
};

struct op_fetch_watch {
    struct download *dl;
    op_fetch_watch_fn *fn;
    void *arg;
    struct op_fetch_watch *next;
};

struct download {
    struct op_fetcher *f;
    struct download *next;
    uint8_t hash[WIRE_HASH_LEN];
    char hex[2 * WIRE_HASH_LEN + 1];
    char *name;
    char *out_path; /* requested, may be NULL */
    uint64_t size;
    uint32_t chunk_size, n_chunks;
    uint8_t *chunk_hashes; /* n_chunks * 32, once known */
    uint32_t manifest_have; /* hashes received so far (paged) */
    struct fetch_source *manifest_from;
    struct op_sched *sched;
    struct fetch_file *file;
    struct fetch_source sources[OP_SCHED_MAX_SOURCES];
    unsigned n_sources;
    struct op_fetch_watch *watchers;
    struct event *tick;
    enum op_fetch_state state;
    char *final_path;
    char error[256];
    uint32_t chunks_fetched, chunks_failed;
    uint64_t rate_bps, bytes_this_tick;
    uint64_t last_notify_ms, last_progress_ms, last_find_ms;
};

struct op_fetcher {
    struct op_fetch_env env;
    struct download *downloads;
};

static void source_connect(struct fetch_source *s);
static void download_pump(struct download *dl);
static void download_fail(struct download *dl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_timer_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static uint32_t chunk_len(const struct download *dl, uint32_t index)
{
    uint64_t start = (uint64_t)index * dl->chunk_size;
    uint64_t left = dl->size - start;
    return left < dl->chunk_size ? (uint32_t)left : dl->chunk_size;
}

/* ---- progress ---------------------------------------------------------------- */

static void fill_progress(const struct download *dl, struct op_fetch_progress *p)
{
    memset(p, 0, sizeof(*p));
    p->hash = dl->hash;
    p->name = dl->name;
    p->size = dl->size;
    p->n_chunks = dl->n_chunks;
    p->chunks_have = dl->sched ? op_sched_have_count(dl->sched) : 0;
    if (dl->state == OP_FETCH_DONE)
        p->chunks_have = dl->n_chunks;
    uint64_t bytes = (uint64_t)p->chunks_have * dl->chunk_size;
    p->bytes_have = bytes > dl->size ? dl->size : bytes;
    p->chunks_fetched = dl->chunks_fetched;
    p->chunks_failed = dl->chunks_failed;
    p->sources_known = dl->n_sources;
    for (unsigned i = 0; i < dl->n_sources; i++) {
        p->sources_connected += dl->sources[i].state == SRC_OPEN;
        p->sources_banned += dl->sources[i].state == SRC_BANNED;
    }
    p->rate_bps = dl->rate_bps;
    p->state = dl->state;
    p->path = dl->final_path;
    p->error = dl->error[0] ? dl->error : NULL;
    p->via = "direct";
}

static void notify(struct download *dl, bool force)
{
    uint64_t now = link_now_ms();
    if (!force && now - dl->last_notify_ms < FETCH_NOTIFY_MIN_MS)
        return;
    dl->last_notify_ms = now;
    struct op_fetch_progress p;
    fill_progress(dl, &p);
    bool final = dl->state != OP_FETCH_RUNNING;
    struct op_fetch_watch *w = dl->watchers;
    if (final)
        dl->watchers = NULL; /* a final report ends every watch */
    while (w) {
        struct op_fetch_watch *next = w->next;
        w->fn(&p, w->arg);
        if (final)
            free(w);
        w = next;
    }
}

/* ---- ending ------------------------------------------------------------------ */

static void close_sources(struct download *dl)
{
    for (unsigned i = 0; i < dl->n_sources; i++) {
        struct fetch_source *s = &dl->sources[i];
        evtimer_del(s->retry);
        if (s->link)
            link_close(s->link, 0, NULL);
    }
}

static void download_end(struct download *dl)
{
    evtimer_del(dl->tick);
    close_sources(dl);
    fetch_file_close(dl->file);
    dl->file = NULL;
    notify(dl, true);
}

static void download_fail(struct download *dl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dl->error, sizeof(dl->error), fmt, ap);
    va_end(ap);
    log_warn("fetch", "%.16s: download failed: %s", dl->hex, dl->error);
    dl->state = OP_FETCH_FAILED;
    op_store_download_set_state(dl->f->env.store, dl->hash, OP_DOWNLOAD_FAILED);
    download_end(dl);
}

/* The part file is complete and its hash matched: move it into place. */
static void download_finished(struct download *dl)
{
    char err[256];
    char *path = NULL;
    int rc = fetch_file_commit(dl->file, dl->f->env.downloads_dir, dl->name, dl->out_path, &path,
                               err, sizeof(err));
    if (rc != 0) {
        download_fail(dl, "%s", err);
        return;
    }
    dl->file = NULL; /* committed files are closed by fetch_file_commit */
    dl->final_path = path;
    op_store_download_set_state(dl->f->env.store, dl->hash, OP_DOWNLOAD_COMPLETE);
    dl->state = OP_FETCH_DONE;
    log_info("fetch", "%.16s: complete, %llu bytes verified, saved as %s (%u chunks fetched, %u "
                      "failed verification)",
             dl->hex, (unsigned long long)dl->size, path, dl->chunks_fetched, dl->chunks_failed);
    download_end(dl);
}

static void on_file_hashed(bool match, void *arg)
{
    struct download *dl = arg;
    if (!match) {
        download_fail(dl, "the whole file does not hash to %s although every chunk verified: "
                          "the manifest from %s was wrong",
                      dl->hex, dl->manifest_from ? dl->manifest_from->short_id : "a source");
        return;
    }
    download_finished(dl);
}

/* ---- sources ------------------------------------------------------------------- */

static void source_schedule_retry(struct fetch_source *s)
{
    if (s->state == SRC_BANNED || s->dl->state != OP_FETCH_RUNNING)
        return;
    s->state = SRC_IDLE;
    unsigned jitter = s->retry_ms / 4 ? (unsigned)(random() % (s->retry_ms / 4)) : 0;
    set_timer_ms(s->retry, s->retry_ms + jitter);
    s->retry_ms = s->retry_ms * 2 > FETCH_RETRY_MAX_MS ? FETCH_RETRY_MAX_MS : s->retry_ms * 2;
    /* Its address may have changed (a restarted peer): ask the supernode. */
    if (s->dl->f->env.locate)
        s->dl->f->env.locate(s->peer_id, s->dl->f->env.arg);
}

static void source_release_slots(struct fetch_source *s)
{
    for (unsigned i = 0; i < OP_SCHED_PIPELINE; i++)
        s->slots[i].index = -1;
    if (s->dl->sched)
        op_sched_source_lost(s->dl->sched, s->idx);
}

static void send_manifest_get(struct fetch_source *s)
{
    struct download *dl = s->dl;
    struct msg m = {.type = MSG_MANIFEST_GET};
    memcpy(m.u.manifest_get.hash, dl->hash, WIRE_HASH_LEN);
    m.u.manifest_get.first_chunk = dl->manifest_have;
    uint32_t left = dl->n_chunks - dl->manifest_have;
    m.u.manifest_get.count = left < FETCH_MANIFEST_PAGE ? left : FETCH_MANIFEST_PAGE;
    dl->manifest_from = s;
    s->manifest_asked = true;
    link_send(s->link, &m);
}

/* Give source as many chunk requests as its pipeline allows. */
static void source_request(struct fetch_source *s)
{
    struct download *dl = s->dl;
    if (s->state != SRC_OPEN || dl->sched == NULL || dl->state != OP_FETCH_RUNNING)
        return;
    for (unsigned i = 0; i < OP_SCHED_PIPELINE; i++) {
        struct fetch_chunk *slot = &s->slots[i];
        if (slot->index >= 0)
            continue;
        int64_t c = op_sched_next(dl->sched, s->idx);
        if (c < 0)
            return;
        uint32_t len = chunk_len(dl, (uint32_t)c);
        if (slot->cap < len) {
            uint8_t *p = realloc(slot->data, len);
            if (p == NULL) {
                op_sched_done(dl->sched, (uint32_t)c, s->idx, true); /* never */
                return;
            }
            slot->data = p;
            slot->cap = len;
        }
        slot->index = c;
        slot->got = 0;
        slot->len = len;
        struct msg m = {.type = MSG_GET};
        memcpy(m.u.get.hash, dl->hash, WIRE_HASH_LEN);
        m.u.get.first_chunk = (uint32_t)c;
        m.u.get.count = 1;
        link_send(s->link, &m);
    }
}

static void on_source_opened(struct link *l, void *arg)
{
    struct fetch_source *s = arg;
    s->state = SRC_OPEN;
    s->retry_ms = FETCH_RETRY_MIN_MS;
    log_info("fetch", "%.16s: connected to source %s (direct)", s->dl->hex, link_name(l));
    download_pump(s->dl);
}

static void source_bad_chunk(struct fetch_source *s, uint32_t chunk, const char *why)
{
    struct download *dl = s->dl;
    dl->chunks_failed++;
    uint32_t failures = 0;
    op_store_bad_source_record(dl->f->env.store, dl->hash, s->peer_id, &failures);
    bool banned = op_sched_done(dl->sched, chunk, s->idx, false);
    log_warn("fetch", "%.16s: chunk %u from %s %s (failure %u of this source)", dl->hex, chunk,
             s->short_id, why, failures);
    if (banned) {
        log_warn("fetch", "%.16s: source %s banned for this download after %d bad chunks",
                 dl->hex, s->short_id, OP_SCHED_MAX_FAILURES);
        s->state = SRC_BANNED;
        source_release_slots(s);
        if (s->link)
            link_close(s->link, MSG_ERR_BAD_VALUE, "sent data that failed verification");
    }
}

static void chunk_complete(struct fetch_source *s, struct fetch_chunk *slot)
{
    struct download *dl = s->dl;
    uint32_t index = (uint32_t)slot->index;
    slot->index = -1;
    uint8_t digest[WIRE_HASH_LEN];
    unsigned dlen = 0;
    EVP_Digest(slot->data, slot->len, digest, &dlen, EVP_sha256(), NULL);
    if (memcmp(digest, dl->chunk_hashes + (size_t)index * WIRE_HASH_LEN, WIRE_HASH_LEN) != 0) {
        source_bad_chunk(s, index, "failed verification, discarded");
        return;
    }
    if (op_sched_have(dl->sched, index)) {
        op_sched_done(dl->sched, index, s->idx, true); /* an end-game duplicate */
        return;
    }
    char err[256];
    if (fetch_file_store_chunk(dl->file, index, slot->data, slot->len, err, sizeof(err)) != 0) {
        download_fail(dl, "%s", err);
        return;
    }
    op_sched_done(dl->sched, index, s->idx, true);
    dl->chunks_fetched++;
    dl->last_progress_ms = link_now_ms();
}

static void on_data(struct fetch_source *s, const struct msg_data *d)
{
    struct download *dl = s->dl;
    struct fetch_chunk *slot = NULL;
    for (unsigned i = 0; i < OP_SCHED_PIPELINE; i++)
        if (s->slots[i].index == (int64_t)d->chunk_index)
            slot = &s->slots[i];
    if (memcmp(d->hash, dl->hash, WIRE_HASH_LEN) != 0 || slot == NULL ||
        d->offset != slot->got || d->data.len > slot->len - slot->got) {
        log_warn("fetch", "%.16s: source %s sent DATA we did not ask for (chunk %u offset %u)",
                 dl->hex, s->short_id, d->chunk_index, d->offset);
        link_close(s->link, MSG_ERR_PROTOCOL, "unexpected DATA");
        return;
    }
    memcpy(slot->data + slot->got, d->data.ptr, d->data.len);
    slot->got += (uint32_t)d->data.len;
    dl->bytes_this_tick += d->data.len;
    if (slot->got == slot->len)
        chunk_complete(s, slot);
    download_pump(dl);
}

static void on_manifest(struct fetch_source *s, const struct msg_manifest *m)
{
    struct download *dl = s->dl;
    if (memcmp(m->hash, dl->hash, WIRE_HASH_LEN) != 0 || m->file_size != dl->size ||
        m->chunk_size != dl->chunk_size || m->first_chunk != dl->manifest_have ||
        m->n_chunk_hashes == 0 || m->n_chunk_hashes > dl->n_chunks - dl->manifest_have) {
        log_warn("fetch", "%.16s: source %s sent a MANIFEST that does not fit (size %llu, chunk "
                          "size %u, first %u, %zu hashes)",
                 dl->hex, s->short_id, (unsigned long long)m->file_size, m->chunk_size,
                 m->first_chunk, m->n_chunk_hashes);
        s->state = SRC_BANNED;
        link_close(s->link, MSG_ERR_BAD_VALUE, "manifest does not match the file");
        return;
    }
    memcpy(dl->chunk_hashes + (size_t)dl->manifest_have * WIRE_HASH_LEN, m->chunk_hashes,
           m->n_chunk_hashes * WIRE_HASH_LEN);
    dl->manifest_have += (uint32_t)m->n_chunk_hashes;
    if (dl->manifest_have < dl->n_chunks) {
        send_manifest_get(s);
        return;
    }
    op_store_download_set_manifest(dl->f->env.store, dl->hash, dl->chunk_hashes, dl->n_chunks);
    dl->sched = op_sched_new(dl->n_chunks, NULL);
    if (dl->sched == NULL) {
        download_fail(dl, "out of memory");
        return;
    }
    log_info("fetch", "%.16s: manifest of %u chunks from %s", dl->hex, dl->n_chunks, s->short_id);
    download_pump(dl);
}

static void on_source_message(struct link *l, const struct msg *m, void *arg)
{
    struct fetch_source *s = arg;
    (void)l;
    if (s->dl->state != OP_FETCH_RUNNING)
        return;
    switch (m->type) {
    case MSG_DATA:
        on_data(s, &m->u.data);
        return;
    case MSG_MANIFEST:
        on_manifest(s, &m->u.manifest);
        return;
    case MSG_ERROR:
        /* e.g. NOT_FOUND: the source no longer shares the file. */
        if (m->u.error.code == MSG_ERR_NOT_FOUND) {
            s->state = SRC_BANNED;
            source_release_slots(s);
            link_close(s->link, 0, NULL);
        }
        return;
    default:
        link_send_error(s->link, MSG_ERR_PROTOCOL, m->type, "unexpected message");
    }
}

static void on_source_closed(struct link *l, int why, void *arg)
{
    struct fetch_source *s = arg;
    (void)l;
    s->link = NULL;
    if (s->dl->manifest_from == s && s->dl->manifest_have < s->dl->n_chunks)
        s->dl->manifest_from = NULL;
    s->manifest_asked = false;
    source_release_slots(s);
    if (s->state == SRC_BANNED || s->dl->state != OP_FETCH_RUNNING)
        return;
    log_info("fetch", "%.16s: source %s unavailable (%s), retrying", s->dl->hex, s->short_id,
             why ? sova_err_str(why) : "closed");
    source_schedule_retry(s);
    download_pump(s->dl);
}

static const struct link_hooks source_hooks = {
    .opened = on_source_opened,
    .message = on_source_message,
    .closed = on_source_closed,
};

static void source_connect(struct fetch_source *s)
{
    struct download *dl = s->dl;
    const struct op_fetch_env *env = &dl->f->env;
    if (s->n_addrs == 0 || s->state != SRC_IDLE) {
        if (s->n_addrs == 0)
            source_schedule_retry(s);
        return;
    }
    const struct wire_addr *a = &s->addrs[s->next_addr++ % s->n_addrs];
    struct sockaddr_storage ss;
    socklen_t len = wire_addr_to_sockaddr(a, &ss);
    SSL *ssl = NULL;
    if (len == 0 || tls_ctx_client(env->tls, TLS_EXPECT_PEER_ID, s->peer_id, &ssl) != 0) {
        source_schedule_retry(s);
        return;
    }
    s->state = SRC_CONNECTING;
    s->link = link_connect(env->base, (struct sockaddr *)&ss, len, ssl, env->params, &source_hooks,
                           s);
    if (s->link == NULL)
        source_schedule_retry(s);
}

static void on_source_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    source_connect(arg);
}

static struct fetch_source *source_find(struct download *dl, const uint8_t peer_id[WIRE_ID_LEN])
{
    for (unsigned i = 0; i < dl->n_sources; i++)
        if (memcmp(dl->sources[i].peer_id, peer_id, WIRE_ID_LEN) == 0)
            return &dl->sources[i];
    return NULL;
}

static void source_set_addrs(struct fetch_source *s, const struct wire_addr *addrs, size_t n)
{
    s->n_addrs = n < WIRE_MAX_ADDRS ? n : WIRE_MAX_ADDRS;
    memcpy(s->addrs, addrs, s->n_addrs * sizeof(*addrs));
    s->next_addr = 0;
}

static void source_add(struct download *dl, const struct msg_source *src)
{
    struct fetch_source *s = source_find(dl, src->peer_id);
    if (s != NULL) {
        if (src->n_addrs)
            source_set_addrs(s, src->addrs, src->n_addrs);
        return;
    }
    if (dl->n_sources == OP_SCHED_MAX_SOURCES)
        return;
    s = &dl->sources[dl->n_sources];
    s->retry = evtimer_new(dl->f->env.base, on_source_retry, s);
    if (s->retry == NULL)
        return;
    s->dl = dl;
    s->idx = dl->n_sources++;
    memcpy(s->peer_id, src->peer_id, WIRE_ID_LEN);
    char id[NODE_ID_STR_LEN + 1];
    node_id_format(src->peer_id, id);
    snprintf(s->short_id, sizeof(s->short_id), "%.*s", NODE_ID_SHORT_LEN, id);
    s->retry_ms = FETCH_RETRY_MIN_MS;
    for (unsigned i = 0; i < OP_SCHED_PIPELINE; i++)
        s->slots[i].index = -1;
    source_set_addrs(s, src->addrs, src->n_addrs);
    uint32_t failures = 0;
    op_store_bad_source_failures(dl->f->env.store, dl->hash, s->peer_id, &failures);
    if (failures >= OP_SCHED_MAX_FAILURES) {
        s->state = SRC_BANNED; /* banned in an earlier run */
        return;
    }
    source_connect(s);
}

/* ---- the download's engine ------------------------------------------------------ */

/* Move everything forward: manifest first, then chunks, then the end. */
static void download_pump(struct download *dl)
{
    if (dl->state != OP_FETCH_RUNNING)
        return;
    if (dl->sched == NULL) {
        if (dl->manifest_from != NULL)
            return; /* a MANIFEST_GET is out */
        for (unsigned i = 0; i < dl->n_sources; i++) {
            if (dl->sources[i].state == SRC_OPEN) {
                send_manifest_get(&dl->sources[i]);
                return;
            }
        }
        return;
    }
    if (op_sched_complete(dl->sched)) {
        if (!fetch_file_hashing(dl->file)) {
            char err[256];
            if (fetch_file_verify(dl->file, on_file_hashed, dl, err, sizeof(err)) != 0)
                download_fail(dl, "%s", err);
        }
        return;
    }
    for (unsigned i = 0; i < dl->n_sources; i++)
        source_request(&dl->sources[i]);
    notify(dl, false);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct download *dl = arg;
    (void)fd;
    (void)what;
    /* Smoothed rate: half the old, half the last second. */
    dl->rate_bps = (dl->rate_bps + dl->bytes_this_tick * 1000 / FETCH_TICK_MS) / 2;
    dl->bytes_this_tick = 0;
    uint64_t now = link_now_ms();
    bool any_open = false;
    for (unsigned i = 0; i < dl->n_sources; i++)
        any_open |= dl->sources[i].state == SRC_OPEN;
    if (!any_open && now - dl->last_find_ms >= FETCH_FIND_SOURCES_MS && dl->f->env.find_sources) {
        dl->last_find_ms = now;
        dl->f->env.find_sources(dl->hash, dl->name, dl->f->env.arg);
    }
    notify(dl, true);
    set_timer_ms(dl->tick, FETCH_TICK_MS);
}

static void download_free(struct download *dl)
{
    for (unsigned i = 0; i < dl->n_sources; i++) {
        struct fetch_source *s = &dl->sources[i];
        link_free_now(s->link);
        if (s->retry)
            event_free(s->retry);
        for (unsigned j = 0; j < OP_SCHED_PIPELINE; j++)
            free(s->slots[j].data);
    }
    while (dl->watchers) {
        struct op_fetch_watch *w = dl->watchers;
        dl->watchers = w->next;
        free(w);
    }
    if (dl->tick)
        event_free(dl->tick);
    fetch_file_close(dl->file);
    op_sched_free(dl->sched);
    free(dl->chunk_hashes);
    free(dl->name);
    free(dl->out_path);
    free(dl->final_path);
    free(dl);
}

static struct download *download_find(const struct op_fetcher *f, const uint8_t *hash)
{
    for (struct download *dl = f->downloads; dl; dl = dl->next)
        if (memcmp(dl->hash, hash, WIRE_HASH_LEN) == 0)
            return dl;
    return NULL;
}

/* A download in memory from its stored row (new or resumed). */
static int download_open(struct op_fetcher *f, const struct op_store_download *row,
                         struct download **out, char *err, size_t errlen)
{
    struct download *dl = calloc(1, sizeof(*dl));
    if (dl == NULL)
        return SOVA_ERR_NOMEM;
    dl->f = f;
    memcpy(dl->hash, row->hash, WIRE_HASH_LEN);
    for (size_t i = 0; i < WIRE_HASH_LEN; i++)
        snprintf(dl->hex + 2 * i, 3, "%02x", row->hash[i]);
    dl->name = strdup(row->name);
    dl->out_path = row->out_path ? strdup(row->out_path) : NULL;
    dl->size = row->size;
    dl->chunk_size = row->chunk_size;
    dl->n_chunks = row->n_chunks;
    dl->chunk_hashes = malloc(row->n_chunks ? (size_t)row->n_chunks * WIRE_HASH_LEN : 1);
    dl->tick = evtimer_new(f->env.base, on_tick, dl);
    dl->state = OP_FETCH_RUNNING;
    dl->last_progress_ms = dl->last_find_ms = link_now_ms();
    if (!dl->name || !dl->chunk_hashes || !dl->tick || (row->out_path && !dl->out_path)) {
        download_free(dl);
        return SOVA_ERR_NOMEM;
    }
    int rc = fetch_file_open(f->env.base, f->env.downloads_dir, dl->hex, dl->size, dl->chunk_size,
                             f->env.store, dl->hash, &dl->file, err, errlen);
    if (rc != 0) {
        download_free(dl);
        return rc;
    }
    if (row->has_manifest || row->n_chunks == 0) {
        memcpy(dl->chunk_hashes, row->chunk_hashes, (size_t)row->n_chunks * WIRE_HASH_LEN);
        dl->manifest_have = row->n_chunks;
        dl->sched = op_sched_new(row->n_chunks, row->have);
        if (dl->sched == NULL) {
            download_free(dl);
            return SOVA_ERR_NOMEM;
        }
    }
    dl->next = f->downloads;
    f->downloads = dl;
    set_timer_ms(dl->tick, FETCH_TICK_MS);
    *out = dl;
    return 0;
}

/* ---- API ------------------------------------------------------------------------ */

struct op_fetcher *op_fetcher_new(const struct op_fetch_env *env)
{
    struct op_fetcher *f = calloc(1, sizeof(*f));
    if (f != NULL)
        f->env = *env;
    return f;
}

void op_fetcher_free(struct op_fetcher *f)
{
    if (f == NULL)
        return;
    while (f->downloads) {
        struct download *dl = f->downloads;
        f->downloads = dl->next;
        download_free(dl);
    }
    free(f);
}

static int resume_one(const struct op_store_download *row, void *arg)
{
    struct op_fetcher *f = arg;
    struct download *dl;
    char err[256];
    if (download_find(f, row->hash))
        return 0;
    if (download_open(f, row, &dl, err, sizeof(err)) != 0) {
        log_warn("fetch", "cannot resume download of %s: %s", row->name, err);
        return 0;
    }
    log_info("fetch", "%.16s: resuming %s, %u of %u chunks already verified", dl->hex, dl->name,
             row->n_have, row->n_chunks);
    if (f->env.find_sources)
        f->env.find_sources(dl->hash, dl->name, f->env.arg);
    download_pump(dl);
    return 0;
}

int op_fetcher_resume_all(struct op_fetcher *f)
{
    return op_store_download_foreach(f->env.store, true, resume_one, f);
}

static int add_watch(struct download *dl, op_fetch_watch_fn *fn, void *arg,
                     struct op_fetch_watch **watch)
{
    struct op_fetch_watch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return SOVA_ERR_NOMEM;
    w->dl = dl;
    w->fn = fn;
    w->arg = arg;
    w->next = dl->watchers;
    dl->watchers = w;
    if (watch)
        *watch = w;
    return 0;
}

int op_fetch_get(struct op_fetcher *f, const uint8_t hash[WIRE_HASH_LEN], const char *name,
                 uint64_t size, const char *out_path, op_fetch_watch_fn *fn, void *arg,
                 struct op_fetch_watch **watch, char *err, size_t errlen)
{
    struct download *dl = download_find(f, hash);
    if (dl == NULL || dl->state == OP_FETCH_FAILED) {
        if (dl != NULL) { /* try again: the row goes back to active */
            op_store_download_set_state(f->env.store, hash, OP_DOWNLOAD_ACTIVE);
            struct download **pp = &f->downloads;
            while (*pp != dl)
                pp = &(*pp)->next;
            *pp = dl->next;
            download_free(dl);
        }
        bool existed = false;
        int rc = op_store_download_create(f->env.store, hash, name, size, OP_CHUNK_SIZE, out_path,
                                          &existed);
        struct op_store_download row = {0};
        bool found = false;
        if (rc == 0)
            rc = op_store_download_get(f->env.store, hash, &row, &found);
        if (rc != 0 || !found) {
            snprintf(err, errlen, "cannot record the download: %s",
                     op_store_errmsg(f->env.store));
            op_store_download_clear(&row);
            return rc ? rc : SOVA_ERR_IO;
        }
        if (row.state == OP_DOWNLOAD_COMPLETE) {
            /* Already fetched in an earlier run: make it active again only if
             * the file is gone; otherwise nothing to do. */
            op_store_download_set_state(f->env.store, hash, OP_DOWNLOAD_ACTIVE);
            row.state = OP_DOWNLOAD_ACTIVE;
        }
        rc = download_open(f, &row, &dl, err, errlen);
        op_store_download_clear(&row);
        if (rc != 0)
            return rc;
        log_info("fetch", "%.16s: download of %s (%llu bytes) %s", dl->hex, dl->name,
                 (unsigned long long)size, existed ? "resumed" : "started");
    }
    if (fn != NULL && dl->state == OP_FETCH_DONE) {
        struct op_fetch_progress p;
        fill_progress(dl, &p);
        fn(&p, arg);
        if (watch)
            *watch = NULL;
        return 0;
    }
    if (fn != NULL && add_watch(dl, fn, arg, watch) != 0)
        return SOVA_ERR_NOMEM;
    download_pump(dl);
    return 0;
}

void op_fetch_unwatch(struct op_fetch_watch *w)
{
    if (w == NULL)
        return;
    struct op_fetch_watch **pp = &w->dl->watchers;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    free(w);
}

void op_fetch_add_sources(struct op_fetcher *f, const uint8_t hash[WIRE_HASH_LEN],
                          const struct msg_source *sources, size_t n)
{
    struct download *dl = download_find(f, hash);
    if (dl == NULL || dl->state != OP_FETCH_RUNNING)
        return;
    for (size_t i = 0; i < n; i++)
        source_add(dl, &sources[i]);
    download_pump(dl);
}

void op_fetch_located(struct op_fetcher *f, const uint8_t peer_id[WIRE_ID_LEN],
                      const struct wire_addr *addrs, size_t n_addrs)
{
    for (struct download *dl = f->downloads; dl; dl = dl->next) {
        struct fetch_source *s = source_find(dl, peer_id);
        if (s != NULL && n_addrs > 0)
            source_set_addrs(s, addrs, n_addrs);
    }
}

void op_fetch_foreach(const struct op_fetcher *f, op_fetch_each_fn *fn, void *arg)
{
    for (const struct download *dl = f->downloads; dl; dl = dl->next) {
        struct op_fetch_progress p;
        fill_progress(dl, &p);
        fn(&p, arg);
    }
}

size_t op_fetch_running(const struct op_fetcher *f)
{
    size_t n = 0;
    for (const struct download *dl = f->downloads; dl; dl = dl->next)
        n += dl->state == OP_FETCH_RUNNING;
    return n;
}
