/* op_fetch_source.c - one source of a download: connect (direct TLS with
 * the peer<->peer policy), fetch the manifest, request chunks, receive and
 * verify them, retry with backoff, ban after repeated bad data. */
#define SOVA_OP_FETCH_INTERNAL
#include "err.h"
#include "log.h"
#include "op_fetch_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void source_connect(struct fetch_source *s);

static uint32_t chunk_len(const struct download *dl, uint32_t index)
{
    uint64_t start = (uint64_t)index * dl->chunk_size;
    uint64_t left = dl->size - start;
    return left < dl->chunk_size ? (uint32_t)left : dl->chunk_size;
}

static void source_schedule_retry(struct fetch_source *s)
{
    if (s->state == SRC_BANNED || s->dl->state != OP_FETCH_RUNNING)
        return;
    s->state = SRC_IDLE;
    unsigned jitter = s->retry_ms / 4 ? (unsigned)(random() % (s->retry_ms / 4)) : 0;
    fetch_set_timer_ms(s->retry, s->retry_ms + jitter);
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

void source_send_manifest_get(struct fetch_source *s)
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

void source_request(struct fetch_source *s)
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
        log_warn("fetch", "%.16s: source %s banned for this download after %d bad chunks", dl->hex,
                 s->short_id, OP_SCHED_MAX_FAILURES);
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
    if (memcmp(d->hash, dl->hash, WIRE_HASH_LEN) != 0 || slot == NULL || d->offset != slot->got ||
        d->data.len > slot->len - slot->got) {
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
        log_warn("fetch",
                 "%.16s: source %s sent a MANIFEST that does not fit (size %llu, chunk "
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
        source_send_manifest_get(s);
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
    s->link =
        link_connect(env->base, (struct sockaddr *)&ss, len, ssl, env->params, &source_hooks, s);
    if (s->link == NULL)
        source_schedule_retry(s);
}

static void on_source_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    source_connect(arg);
}

struct fetch_source *source_find(struct download *dl, const uint8_t peer_id[WIRE_ID_LEN])
{
    for (unsigned i = 0; i < dl->n_sources; i++)
        if (memcmp(dl->sources[i].peer_id, peer_id, WIRE_ID_LEN) == 0)
            return &dl->sources[i];
    return NULL;
}

void source_set_addrs(struct fetch_source *s, const struct wire_addr *addrs, size_t n)
{
    s->n_addrs = n < WIRE_MAX_ADDRS ? n : WIRE_MAX_ADDRS;
    memcpy(s->addrs, addrs, s->n_addrs * sizeof(*addrs));
    s->next_addr = 0;
}

void source_add(struct download *dl, const struct msg_source *src)
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
