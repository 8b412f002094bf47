/* op_fetch.c - downloads: their life (start, resume, progress, end) and the
 * API. One source's protocol is in op_fetch_source.c; the part file and the
 * final whole-file check in op_fetch_file.c. */
#define SOVA_OP_FETCH_INTERNAL
#include "err.h"
#include "log.h"
#include "op_fetch_int.h"
#include "op_share.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fetch_set_timer_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
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
    p->via = dl->via;
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
    for (unsigned i = 0; i < dl->n_sources; i++)
        source_stop(&dl->sources[i]);
}

static void download_end(struct download *dl)
{
    evtimer_del(dl->tick);
    close_sources(dl);
    fetch_file_close(dl->file);
    dl->file = NULL;
    notify(dl, true);
}

void download_fail(struct download *dl, const char *fmt, ...)
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
    log_info("fetch",
             "%.16s: complete, %llu bytes verified, saved as %s (%u chunks fetched, %u "
             "failed verification)",
             dl->hex, (unsigned long long)dl->size, path, dl->chunks_fetched, dl->chunks_failed);
    download_end(dl);
}

static void on_file_hashed(bool match, void *arg)
{
    struct download *dl = arg;
    if (!match) {
        download_fail(dl,
                      "the whole file does not hash to %s although every chunk verified: "
                      "the manifest from %s was wrong",
                      dl->hex, dl->manifest_from ? dl->manifest_from->short_id : "a source");
        return;
    }
    download_finished(dl);
}

/* ---- sources ------------------------------------------------------------------- */

void download_disk_full(struct download *dl, const char *why)
{
    if (dl->disk_full_ms == 0)
        log_warn("fetch", "%.16s: %s: waiting for disk space (%u of %u chunks kept)", dl->hex, why,
                 op_sched_have_count(dl->sched), dl->n_chunks);
    dl->disk_full_ms = link_now_ms();
}

void download_pump(struct download *dl)
{
    if (dl->state != OP_FETCH_RUNNING)
        return;
    if (dl->disk_full_ms != 0) {
        if (link_now_ms() - dl->disk_full_ms < FETCH_DISK_RETRY_MS)
            return; /* the tick tries again */
        dl->disk_full_ms = 0;
        log_info("fetch", "%.16s: trying to write again", dl->hex);
    }
    if (dl->sched == NULL) {
        if (dl->manifest_from != NULL)
            return; /* a MANIFEST_GET is out */
        for (unsigned i = 0; i < dl->n_sources; i++) {
            if (dl->sources[i].state == SRC_OPEN) {
                source_send_manifest_get(&dl->sources[i]);
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
    for (unsigned i = 0; i < dl->n_sources; i++) {
        struct fetch_source *s = &dl->sources[i];
        any_open |= s->state == SRC_OPEN;
        /* A source we wait for that sends nothing at all: its connection
         * died without a word (a router that changed its address, a
         * supernode gone with a relay) — let go and reach it again. */
        if (s->state == SRC_OPEN && source_waiting(s) &&
            now - link_last_read_ms(s->link) > FETCH_STALL_MS) {
            log_info("fetch", "%.16s: source %s sent nothing for %u s: reconnecting", dl->hex,
                     s->short_id, FETCH_STALL_MS / 1000);
            link_close(s->link, MSG_ERR_TIMEOUT, "nothing received");
        }
    }
    if (dl->disk_full_ms != 0 && now - dl->disk_full_ms >= FETCH_DISK_RETRY_MS)
        download_pump(dl);
    if (!any_open && now - dl->last_find_ms >= FETCH_FIND_SOURCES_MS && dl->f->env.find_sources) {
        dl->last_find_ms = now;
        dl->f->env.find_sources(dl->hash, dl->name, dl->f->env.arg);
    }
    notify(dl, true);
    fetch_set_timer_ms(dl->tick, FETCH_TICK_MS);
}

static void download_free(struct download *dl)
{
    for (unsigned i = 0; i < dl->n_sources; i++)
        source_free(&dl->sources[i]);
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
    fetch_set_timer_ms(dl->tick, FETCH_TICK_MS);
    *out = dl;
    return 0;
}

/* ---- API ------------------------------------------------------------------------ */

struct op_fetcher *op_fetcher_new(const struct op_fetch_env *env)
{
    struct op_fetcher *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->env = *env;
    f->direct_params = *env->params;
    if (env->direct_timeout_ms != 0)
        f->direct_params.handshake_timeout_ms = env->direct_timeout_ms;
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
            snprintf(err, errlen, "cannot record the download: %s", op_store_errmsg(f->env.store));
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
                      uint8_t reachability, const struct wire_addr *addrs, size_t n_addrs)
{
    for (struct download *dl = f->downloads; dl; dl = dl->next) {
        struct fetch_source *s = source_find(dl, peer_id);
        if (s == NULL)
            continue;
        s->reach = reachability;
        if (n_addrs > 0)
            source_set_addrs(s, addrs, n_addrs);
    }
}

bool op_fetch_adopt(struct op_fetcher *f, struct link *l)
{
    const uint8_t *token = link_connect_token(l);
    const struct tls_peer_info *peer = link_peer(l);
    if (token == NULL || peer == NULL)
        return false;
    for (struct download *dl = f->downloads; dl; dl = dl->next) {
        for (unsigned i = 0; i < dl->n_sources; i++) {
            struct fetch_source *s = &dl->sources[i];
            if (s->path != NAT_PATH_REVERSAL || s->state != SRC_CONNECTING ||
                memcmp(s->token, token, WIRE_TOKEN_LEN) != 0)
                continue;
            if (memcmp(s->peer_id, peer->id, WIRE_ID_LEN) != 0) {
                log_warn("fetch", "%.16s: %s answered the reversal meant for %s: refused", dl->hex,
                         link_name(l), s->short_id);
                return false;
            }
            source_adopt(s, l);
            return true;
        }
    }
    return false;
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
