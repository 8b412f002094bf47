/* op_fetch.c - downloads: their life (start, stop, resume, progress, end),
 * the queue that starts them, and the API. One source's protocol (and the
 * manifest's checks) is in op_fetch_source.c; the part file and the file's
 * SHA-256 in op_fetch_file.c; get and transfer control (pause, cancel ...)
 * in op_fetch_control.c. */
#define SOVA_OP_FETCH_INTERNAL
#include "err.h"
#include "fileid.h"
#include "log.h"
#include "op_fetch_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fetch_set_timer_ms(struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- progress ---------------------------------------------------------------- */

void download_progress(const struct download *dl, struct op_fetch_progress *p)
{
    memset(p, 0, sizeof(*p));
    p->id = dl->id;
    p->name = dl->name;
    p->size_known = dl->has_manifest;
    p->size = dl->has_manifest ? dl->size : 0;
    p->size_hint = dl->size_hint;
    p->chunk_size = dl->chunk_size;
    p->n_chunks = dl->n_chunks;
    p->chunks_have = dl->sched ? op_sched_have_count(dl->sched) : dl->chunks_have_saved;
    if (dl->state == OP_FETCH_DONE)
        p->chunks_have = dl->n_chunks;
    uint64_t bytes = (uint64_t)p->chunks_have * dl->chunk_size;
    p->bytes_have = bytes > p->size ? p->size : bytes;
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
    p->sha256 = dl->state == OP_FETCH_DONE ? dl->sha256 : NULL;
    p->error = dl->error[0] ? dl->error : NULL;
    p->via = dl->via;
    p->first_byte_ms = dl->first_byte_ms;
    p->route = dl->route;
    p->priority = dl->priority;
    p->queue_pos = queue_position(dl);
    p->cancelled = dl->cancelled;
    p->waiting = dl->waiting[0] ? dl->waiting : NULL;
    p->limit_bps = dl->limit_bps;
    p->throttled = dl->state == OP_FETCH_RUNNING && (dl->bw_wait || dl->f->bw_wait);
    p->bytes_in = dl->bytes_in;
}

/* ---- bandwidth ------------------------------------------------------------------ */

void download_apply_hold(struct download *dl)
{
    bool hold = dl->bw_wait || dl->f->bw_wait;
    for (unsigned i = 0; i < dl->n_sources; i++) {
        struct fetch_source *s = &dl->sources[i];
        if (s->link == NULL)
            continue;
        if (!hold && link_reading_held(s->link))
            dl->bw_released_ms = link_now_ms();
        link_hold_reading(s->link, hold);
    }
}

void download_charge(struct download *dl, uint64_t n)
{
    struct op_fetcher *f = dl->f;
    uint64_t now = link_now_ms();
    dl->bytes_in += n;
    f->bytes_in += n;
    op_bw_charge(&f->bw, n, now);
    op_bw_charge(&dl->bw, n, now);
    uint64_t wait = op_bw_wait_ms(&f->bw, now);
    if (wait > 0 && !f->bw_wait) {
        f->bw_wait = true;
        fetch_set_timer_ms(f->bw_timer, (unsigned)wait);
        for (struct download *d = f->downloads; d; d = d->next)
            download_apply_hold(d);
    }
    wait = op_bw_wait_ms(&dl->bw, now);
    if (wait > 0 && !dl->bw_wait) {
        dl->bw_wait = true;
        fetch_set_timer_ms(dl->bw_timer, (unsigned)wait);
        download_apply_hold(dl);
    }
}

static void on_download_bw(evutil_socket_t fd, short what, void *arg)
{
    struct download *dl = arg;
    (void)fd, (void)what;
    uint64_t wait = op_bw_wait_ms(&dl->bw, link_now_ms());
    if (wait > 0) {
        fetch_set_timer_ms(dl->bw_timer, (unsigned)wait);
        return;
    }
    dl->bw_wait = false;
    download_apply_hold(dl);
}

static void on_fetcher_bw(evutil_socket_t fd, short what, void *arg)
{
    struct op_fetcher *f = arg;
    (void)fd, (void)what;
    uint64_t wait = op_bw_wait_ms(&f->bw, link_now_ms());
    if (wait > 0) {
        fetch_set_timer_ms(f->bw_timer, (unsigned)wait);
        return;
    }
    f->bw_wait = false;
    for (struct download *d = f->downloads; d; d = d->next)
        download_apply_hold(d);
}

const char *op_fetch_state_name(enum op_fetch_state state)
{
    static const char *const names[OP_FETCH_N_STATES] = {"running", "complete", "failed", "queued",
                                                         "paused"};
    return (unsigned)state < OP_FETCH_N_STATES ? names[state] : "?";
}

void download_notify(struct download *dl, bool force)
{
    uint64_t now = link_now_ms();
    if (!force && now - dl->last_notify_ms < FETCH_NOTIFY_MIN_MS)
        return;
    dl->last_notify_ms = now;
    struct op_fetch_progress p;
    download_progress(dl, &p);
    bool final =
        dl->state == OP_FETCH_DONE || dl->state == OP_FETCH_FAILED || dl->state == OP_FETCH_PAUSED;
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

/* Stop reading a finished copy (why: it failed, say so; NULL: done). */
void download_local_end(struct download *dl, const char *why)
{
    if (dl->local_path == NULL)
        return;
    if (why != NULL)
        log_warn("fetch", "%.16s: the finished copy %s %s: the rest comes from sources", dl->hex,
                 dl->local_path, why);
    if (dl->local_fd >= 0)
        close(dl->local_fd);
    dl->local_fd = -1;
    free(dl->local_path);
    dl->local_path = NULL;
    if (dl->local_step != NULL)
        event_del(dl->local_step);
}

static void download_end(struct download *dl)
{
    evtimer_del(dl->tick);
    download_local_end(dl, NULL);
    close_sources(dl);
    fetch_file_close(dl->file);
    dl->file = NULL;
    download_notify(dl, true);
    queue_schedule(dl->f, false); /* a place is free */
}

void download_fail(struct download *dl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dl->error, sizeof(dl->error), fmt, ap);
    va_end(ap);
    log_warn("fetch", "%.16s: download failed: %s", dl->hex, dl->error);
    dl->state = OP_FETCH_FAILED;
    if (op_store_download_fail(dl->f->env.store, dl->id, dl->error) != 0)
        log_warn("fetch", "%.16s: cannot record the failure: %s", dl->hex,
                 op_store_errmsg(dl->f->env.store));
    download_end(dl);
}

/* The part file is complete and hashed: move it into place. */
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
    if (op_store_download_complete(dl->f->env.store, dl->id, path, dl->sha256) != 0)
        log_warn("fetch", "%.16s: cannot record the completion: %s", dl->hex,
                 op_store_errmsg(dl->f->env.store));
    dl->state = OP_FETCH_DONE;
    char sha[2 * WIRE_HASH_LEN + 1];
    for (size_t i = 0; i < WIRE_HASH_LEN; i++)
        snprintf(sha + 2 * i, 3, "%02x", dl->sha256[i]);
    log_info("fetch",
             "%.16s: complete, %llu bytes verified against the file ID, saved as %s (sha256 %s; "
             "%u chunks fetched, %u failed verification)",
             dl->hex, (unsigned long long)dl->size, path, sha, dl->chunks_fetched,
             dl->chunks_failed);
    if (dl->f->env.completed != NULL) {
        struct op_fetch_progress p;
        download_progress(dl, &p);
        dl->f->env.completed(&p, dl->f->env.arg);
    }
    download_end(dl);
}

static void on_file_hashed(const uint8_t *sha256, void *arg)
{
    struct download *dl = arg;
    if (sha256 == NULL) {
        download_fail(dl, "cannot read the finished part file back");
        return;
    }
    memcpy(dl->sha256, sha256, WIRE_HASH_LEN);
    download_finished(dl);
}

/* ---- sources ------------------------------------------------------------------- */

void download_disk_full(struct download *dl, const char *why)
{
    snprintf(dl->waiting, sizeof(dl->waiting),
             "disk full (%s): waiting for free space, trying again every %d s; the %u verified "
             "chunks are kept",
             why, FETCH_DISK_RETRY_MS / 1000, op_sched_have_count(dl->sched));
    if (dl->disk_full_ms == 0)
        log_warn("fetch", "%.16s: %s: waiting for disk space (%u of %u chunks kept)", dl->hex, why,
                 op_sched_have_count(dl->sched), dl->n_chunks);
    dl->disk_full_ms = link_now_ms();
}

/* Is any source still worth trying (not banned, not refusing)? */
static bool any_usable(const struct download *dl)
{
    for (unsigned i = 0; i < dl->n_sources; i++)
        if (dl->sources[i].state != SRC_BANNED)
            return true;
    return false;
}

void download_banned(struct download *dl, struct fetch_source *s, const char *why)
{
    snprintf(dl->last_ban, sizeof(dl->last_ban), "%s: %s", s->short_id, why);
    if (any_usable(dl) || dl->no_source_since_ms != 0)
        return;
    /* Nobody left: ask the supernode for others; the tick gives up after
     * FETCH_NO_SOURCE_MS without one. */
    dl->no_source_since_ms = link_now_ms();
    dl->last_find_ms = dl->no_source_since_ms;
    if (dl->f->env.find_sources)
        dl->f->env.find_sources(dl->id, dl->name, dl->f->env.arg);
}

/* Copy a few chunks of the finished copy into the part file, each checked
 * against the manifest as a source's chunk is. */
static void on_local_step(evutil_socket_t fd, short what, void *arg)
{
    struct download *dl = arg;
    (void)fd, (void)what;
    if (dl->local_path == NULL || dl->state != OP_FETCH_RUNNING)
        return;
    uint8_t *buf = malloc(dl->chunk_size);
    if (buf == NULL) {
        download_local_end(dl, "cannot be read (out of memory)");
        download_pump(dl);
        return;
    }
    for (unsigned n = 0; n < FETCH_LOCAL_PER_TURN; n++) {
        while (dl->local_next < dl->n_chunks && op_sched_have(dl->sched, dl->local_next))
            dl->local_next++;
        if (dl->local_next == dl->n_chunks) {
            log_info("fetch", "%.16s: copied from %s, every chunk checked", dl->hex,
                     dl->local_path);
            download_local_end(dl, NULL);
            break;
        }
        uint32_t i = dl->local_next;
        uint64_t start = (uint64_t)i * dl->chunk_size, left = dl->size - start;
        uint32_t len = left < dl->chunk_size ? (uint32_t)left : dl->chunk_size;
        uint8_t digest[WIRE_HASH_LEN];
        ssize_t got = pread(dl->local_fd, buf, len, (off_t)start);
        if (got != (ssize_t)len) {
            download_local_end(dl, got < 0 ? "cannot be read" : "is shorter than it was");
            break;
        }
        fileid_chunk_hash(buf, len, dl->height, digest);
        if (memcmp(digest, dl->chunk_hashes + (size_t)i * WIRE_HASH_LEN, WIRE_HASH_LEN) != 0) {
            download_local_end(dl, "changed since it was downloaded");
            break;
        }
        char err[256];
        int rc = fetch_file_store_chunk(dl->file, i, buf, len, err, sizeof(err));
        if (rc != 0) {
            free(buf);
            download_local_end(dl, NULL);
            download_fail(dl, "%s", err);
            return;
        }
        op_sched_mark(dl->sched, i);
        dl->local_next++;
    }
    free(buf);
    if (dl->local_path != NULL)
        event_active(dl->local_step, EV_TIMEOUT, 0); /* next turn: let other work run */
    else if (dl->f->env.find_sources && !op_sched_complete(dl->sched))
        dl->f->env.find_sources(dl->id, dl->name, dl->f->env.arg);
    download_pump(dl);
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
    if (!dl->has_manifest) {
        if (dl->m.from != NULL)
            return; /* a MANIFEST_GET is out */
        for (unsigned i = 0; i < dl->n_sources; i++) {
            if (dl->sources[i].state == SRC_OPEN) {
                source_send_manifest_get(&dl->sources[i]);
                return;
            }
        }
        return;
    }
    if (dl->local_path != NULL) {
        if (!event_pending(dl->local_step, EV_TIMEOUT, NULL))
            event_active(dl->local_step, EV_TIMEOUT, 0);
        return;
    }
    if (op_sched_complete(dl->sched)) {
        if (!fetch_file_hashing(dl->file)) {
            char err[256];
            if (fetch_file_finish(dl->file, on_file_hashed, dl, err, sizeof(err)) != 0)
                download_fail(dl, "%s", err);
        }
        return;
    }
    for (unsigned i = 0; i < dl->n_sources; i++)
        source_request(&dl->sources[i]);
    download_notify(dl, false);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct download *dl = arg;
    (void)fd;
    (void)what;
    /* Smoothed rate: half the old, half the last second. */
    dl->rate_bps = (dl->rate_bps + dl->bytes_this_tick * 1000 / FETCH_TICK_MS) / 2;
    dl->bytes_this_tick = 0;
    for (unsigned i = 0; i < dl->n_sources; i++) {
        struct fetch_source *s = &dl->sources[i];
        s->rate_bps = (s->rate_bps + s->bytes_this_tick * 1000 / FETCH_TICK_MS) / 2;
        s->bytes_this_tick = 0;
    }
    uint64_t now = link_now_ms();
    bool any_open = false;
    for (unsigned i = 0; i < dl->n_sources; i++) {
        struct fetch_source *s = &dl->sources[i];
        any_open |= s->state == SRC_OPEN;
        /* A source we wait for that sends nothing at all: its connection
         * died without a word (a router that changed its address, a
         * supernode gone with a relay) — let go and reach it again. */
        uint64_t heard = s->state == SRC_OPEN ? link_last_read_ms(s->link) : now;
        if (heard < dl->bw_released_ms)
            heard = dl->bw_released_ms; /* silent because we held its reading */
        if (s->state == SRC_OPEN && source_waiting(s) && !link_reading_held(s->link) &&
            now - heard > FETCH_STALL_MS) {
            log_info("fetch", "%.16s: source %s sent nothing for %u s: reconnecting", dl->hex,
                     s->short_id, FETCH_STALL_MS / 1000);
            link_close(s->link, MSG_ERR_TIMEOUT, "nothing received");
        }
    }
    /* Whatever waits (a manifest to ask for, chunks, the disk): a pump a
     * second so nothing stalls for want of an event. */
    download_pump(dl);
    if (dl->state != OP_FETCH_RUNNING)
        return;
    bool stuck = (dl->n_sources > 0 || dl->banned_seen) && !any_usable(dl);
    if (stuck) {
        if (dl->no_source_since_ms == 0)
            dl->no_source_since_ms = now;
        if (now - dl->no_source_since_ms >= FETCH_NO_SOURCE_MS) {
            download_fail(dl,
                          "no source left to try: every source was banned or refused, and the "
                          "supernode named no other (last: %s); `get` it again to retry",
                          dl->last_ban[0] ? dl->last_ban : "?");
            return;
        }
    } else {
        dl->no_source_since_ms = 0;
    }
    /* No source connected: ask the supernode now and then; every source
     * banned: ask more often, before giving up. */
    unsigned every = stuck ? FETCH_NO_SOURCE_FIND_MS : FETCH_FIND_SOURCES_MS;
    if ((!any_open || stuck) && now - dl->last_find_ms >= every && dl->f->env.find_sources) {
        dl->last_find_ms = now;
        dl->f->env.find_sources(dl->id, dl->name, dl->f->env.arg);
    }
    download_notify(dl, true);
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
    if (dl->bw_timer)
        event_free(dl->bw_timer);
    download_local_end(dl, NULL);
    if (dl->local_step)
        event_free(dl->local_step);
    fetch_file_close(dl->file);
    op_sched_free(dl->sched);
    free(dl->m.hashes);
    free(dl->chunk_hashes);
    free(dl->name);
    free(dl->out_path);
    free(dl->final_path);
    free(dl);
}

struct download *download_find(const struct op_fetcher *f, const uint8_t *id)
{
    for (struct download *dl = f->downloads; dl; dl = dl->next)
        if (memcmp(dl->id, id, WIRE_HASH_LEN) == 0)
            return dl;
    return NULL;
}

int download_manifest_ready(struct download *dl)
{
    char err[256];
    uint8_t *have = NULL;
    uint32_t n = 0;
    /* The bitmap the store holds for this manifest (empty for a new one). */
    if (op_store_download_get_have(dl->f->env.store, dl->id, &have, &n) != 0 || n != dl->n_chunks) {
        free(have);
        download_fail(dl, "cannot read the download's state: %s",
                      op_store_errmsg(dl->f->env.store));
        return SOVA_ERR_IO;
    }
    op_sched_free(dl->sched);
    dl->sched = op_sched_new(dl->n_chunks, have);
    free(have);
    if (dl->sched == NULL) {
        download_fail(dl, "out of memory");
        return SOVA_ERR_NOMEM;
    }
    int rc = fetch_file_open(dl->f->env.base, dl->f->env.downloads_dir, dl->hex, dl->size,
                             dl->chunk_size, dl->f->env.store, dl->id, &dl->file, err, sizeof(err));
    if (rc != 0) {
        download_fail(dl, "%s", err);
        return rc;
    }
    return 0;
}

/* A download in memory from its stored row (new or resumed). */
int download_open(struct op_fetcher *f, const struct op_store_download *row, struct download **out,
                  char *err, size_t errlen)
{
    struct download *dl = calloc(1, sizeof(*dl));
    if (dl == NULL)
        return SOVA_ERR_NOMEM;
    dl->f = f;
    dl->local_fd = -1;
    memcpy(dl->id, row->id, WIRE_HASH_LEN);
    for (size_t i = 0; i < WIRE_HASH_LEN; i++)
        snprintf(dl->hex + 2 * i, 3, "%02x", row->id[i]);
    dl->name = strdup(row->name);
    dl->out_path = row->out_path ? strdup(row->out_path) : NULL;
    dl->size_hint = row->size_hint;
    dl->chunk_size = row->chunk_size;
    int height = fileid_height_of(row->chunk_size);
    dl->tick = evtimer_new(f->env.base, on_tick, dl);
    dl->local_step = event_new(f->env.base, -1, 0, on_local_step, dl);
    dl->bw_timer = evtimer_new(f->env.base, on_download_bw, dl);
    dl->state = row->paused ? OP_FETCH_PAUSED : OP_FETCH_QUEUED;
    dl->priority = row->priority;
    dl->seq = row->seq;
    dl->chunks_have_saved = row->n_have;
    op_bw_init(&dl->bw, 0, FETCH_BW_MIN_BURST, link_now_ms());
    if (!dl->name || !dl->tick || !dl->local_step || !dl->bw_timer ||
        (row->out_path && !dl->out_path)) {
        download_free(dl);
        return SOVA_ERR_NOMEM;
    }
    if (height < 0) {
        snprintf(err, errlen, "a chunk size of %u bytes is not one sources serve", row->chunk_size);
        download_free(dl);
        return SOVA_ERR_INVALID;
    }
    dl->height = (unsigned)height;
    dl->next = f->downloads;
    f->downloads = dl;
    if (row->has_manifest) {
        dl->has_manifest = true;
        dl->size = row->size;
        memcpy(dl->root, row->root, WIRE_HASH_LEN);
        dl->n_chunks = row->n_chunks;
        dl->chunk_hashes = malloc(row->n_chunks ? (size_t)row->n_chunks * WIRE_HASH_LEN : 1);
        if (dl->chunk_hashes == NULL) {
            snprintf(err, errlen, "out of memory");
            download_fail(dl, "out of memory");
            return SOVA_ERR_NOMEM;
        }
        if (row->n_chunks > 0)
            memcpy(dl->chunk_hashes, row->chunk_hashes, (size_t)row->n_chunks * WIRE_HASH_LEN);
    }
    *out = dl;
    return 0;
}

void download_start(struct download *dl)
{
    struct op_fetcher *f = dl->f;
    dl->state = OP_FETCH_RUNNING;
    dl->last_progress_ms = dl->last_find_ms = dl->run_started_ms = link_now_ms();
    dl->first_byte_ms = 0;
    dl->no_source_since_ms = 0;
    dl->error[0] = '\0';
    if (dl->has_manifest && download_manifest_ready(dl) != 0)
        return; /* failed, stays listed */
    fetch_set_timer_ms(dl->tick, FETCH_TICK_MS);
    log_info("fetch", "%.16s: running (%u of %u chunks verified)", dl->hex,
             dl->sched ? op_sched_have_count(dl->sched) : 0, dl->n_chunks);
    /* Fresh sources from the supernode: those a hit named may be gone or
     * banned already. */
    if (f->env.find_sources && dl->local_path == NULL)
        f->env.find_sources(dl->id, dl->name, f->env.arg);
    download_pump(dl);
}

void download_suspend(struct download *dl, enum op_fetch_state to)
{
    if (dl->state != OP_FETCH_RUNNING) {
        dl->state = to;
        return;
    }
    evtimer_del(dl->tick);
    download_local_end(dl, NULL);
    for (unsigned i = 0; i < dl->n_sources; i++)
        source_free(&dl->sources[i]);
    memset(dl->sources, 0, sizeof(dl->sources));
    dl->n_sources = 0;
    free(dl->m.hashes);
    memset(&dl->m, 0, sizeof(dl->m));
    /* what is written becomes durable and marked (fetch_file_close) */
    fetch_file_close(dl->file);
    dl->file = NULL;
    dl->chunks_have_saved = 0;
    if (dl->has_manifest) {
        uint8_t *have = NULL;
        uint32_t n = 0;
        if (op_store_download_get_have(dl->f->env.store, dl->id, &have, &n) == 0 && have != NULL)
            for (uint32_t i = 0; i < n; i++)
                dl->chunks_have_saved += op_store_bitmap_get(have, i);
        free(have);
    }
    op_sched_free(dl->sched);
    dl->sched = NULL;
    dl->rate_bps = dl->bytes_this_tick = 0;
    dl->disk_full_ms = 0;
    dl->state = to;
    log_info("fetch", "%.16s: %s, %u of %u chunks verified and kept", dl->hex,
             to == OP_FETCH_PAUSED ? "paused" : "back in the queue", dl->chunks_have_saved,
             dl->n_chunks);
}

void download_unlink(struct op_fetcher *f, struct download *dl)
{
    struct download **pp = &f->downloads;
    while (*pp != dl)
        pp = &(*pp)->next;
    *pp = dl->next;
    download_free(dl);
}

/* ---- the queue ------------------------------------------------------------------- */

/* Does a come before b in the queue? */
bool queue_before(const struct download *a, const struct download *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->seq < b->seq;
}

unsigned queue_position(const struct download *dl)
{
    if (dl->state != OP_FETCH_QUEUED)
        return 0;
    unsigned pos = 1;
    for (const struct download *o = dl->f->downloads; o; o = o->next)
        if (o != dl && o->state == OP_FETCH_QUEUED && queue_before(o, dl))
            pos++;
    return pos;
}

static struct download *queue_first(const struct op_fetcher *f)
{
    struct download *best = NULL;
    for (struct download *dl = f->downloads; dl; dl = dl->next)
        if (dl->state == OP_FETCH_QUEUED && (best == NULL || queue_before(dl, best)))
            best = dl;
    return best;
}

static void schedule_now(struct op_fetcher *f)
{
    struct download *dl;
    while ((f->max_active == 0 || op_fetch_running(f) < f->max_active) &&
           (dl = queue_first(f)) != NULL) {
        log_info("fetch", "%.16s: %s leaves the queue (%zu of %u running)", dl->hex, dl->name,
                 op_fetch_running(f), f->max_active);
        download_start(dl);
    }
}

/* Once a second: whoever follows a queued download hears where it stands
 * (a `get` waiting in the queue is not idle), and the queue moves on. */
static void on_queue_tick(evutil_socket_t fd, short what, void *arg)
{
    struct op_fetcher *f = arg;
    (void)fd, (void)what;
    schedule_now(f);
    for (struct download *dl = f->downloads; dl; dl = dl->next)
        if (dl->state == OP_FETCH_QUEUED && dl->watchers != NULL)
            download_notify(dl, true);
}

void queue_schedule(struct op_fetcher *f, bool now)
{
    if (now)
        schedule_now(f);
    else
        event_active(f->queue_tick, EV_TIMEOUT, 0);
}

int queue_init(struct op_fetcher *f)
{
    f->queue_tick = event_new(f->env.base, -1, EV_PERSIST, on_queue_tick, f);
    if (f->queue_tick == NULL)
        return SOVA_ERR_NOMEM;
    struct timeval every = {.tv_sec = FETCH_QUEUE_TICK_MS / 1000,
                            .tv_usec = (FETCH_QUEUE_TICK_MS % 1000) * 1000};
    event_add(f->queue_tick, &every);
    return 0;
}

void queue_free(struct op_fetcher *f)
{
    if (f->queue_tick != NULL)
        event_free(f->queue_tick);
    f->queue_tick = NULL;
}

/* ---- API ------------------------------------------------------------------------ */

struct op_fetcher *op_fetcher_new(const struct op_fetch_env *env)
{
    struct op_fetcher *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->env = *env;
    if (f->env.chunk_size == 0)
        f->env.chunk_size = OP_FETCH_CHUNK_SIZE;
    f->direct_params = *env->params;
    if (env->direct_timeout_ms != 0)
        f->direct_params.handshake_timeout_ms = env->direct_timeout_ms;
    f->max_active = env->max_active;
    op_bw_init(&f->bw, 0, FETCH_BW_MIN_BURST, link_now_ms());
    f->bw_timer = evtimer_new(env->base, on_fetcher_bw, f);
    if (f->bw_timer == NULL || queue_init(f) != 0) {
        if (f->bw_timer)
            event_free(f->bw_timer);
        free(f);
        return NULL;
    }
    return f;
}

uint64_t op_fetch_bytes_in(const struct op_fetcher *f)
{
    return f->bytes_in;
}

void op_fetch_set_limit(struct op_fetcher *f, uint64_t bps)
{
    op_bw_set_rate(&f->bw, bps, FETCH_BW_MIN_BURST, link_now_ms());
    if (f->bw_wait)
        on_fetcher_bw(-1, 0, f); /* a higher rate (or none) may end the wait now */
}

int op_fetch_set_download_limit(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], uint64_t bps)
{
    struct download *dl = download_find(f, id);
    if (dl == NULL || dl->state != OP_FETCH_RUNNING)
        return SOVA_ERR_NOT_FOUND;
    dl->limit_bps = bps;
    op_bw_set_rate(&dl->bw, bps, FETCH_BW_MIN_BURST, link_now_ms());
    if (dl->bw_wait)
        on_download_bw(-1, 0, dl);
    if (bps)
        log_info("fetch", "%.16s: download limit %llu kB/s", dl->hex,
                 (unsigned long long)(bps / 1000));
    else
        log_info("fetch", "%.16s: download limit off", dl->hex);
    return 0;
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
    queue_free(f);
    if (f->bw_timer)
        event_free(f->bw_timer);
    free(f);
}

static int resume_one(const struct op_store_download *row, void *arg)
{
    struct op_fetcher *f = arg;
    struct download *dl;
    char err[256];
    if (download_find(f, row->id))
        return 0;
    if (download_open(f, row, &dl, err, sizeof(err)) != 0) {
        log_warn("fetch", "cannot resume download of %s: %s", row->name, err);
        return 0;
    }
    log_info("fetch", "%.16s: resuming %s, %u of %u chunks already verified%s%s", dl->hex, dl->name,
             row->n_have, row->n_chunks, row->has_manifest ? "" : " (no manifest yet)",
             row->paused ? " (paused)" : "");
    return 0;
}

/* A download made before file IDs left its part file (named by the file's
 * SHA-256): its chunks can never be checked against an ID; remove it. */
static int drop_legacy_part(const struct op_store_legacy *l, void *arg)
{
    const struct op_fetcher *f = arg;
    char path[4096];
    if (l->state == OP_DOWNLOAD_COMPLETE || f->env.downloads_dir == NULL)
        return 0;
    int n = snprintf(path, sizeof(path), "%s/%s/", f->env.downloads_dir, FETCH_PARTIAL_DIR);
    for (size_t i = 0; i < OP_STORE_HASH_LEN && n > 0 && (size_t)n + 3 < sizeof(path); i++)
        n += snprintf(path + n, sizeof(path) - (size_t)n, "%02x", l->sha256[i]);
    if (n > 0 && (size_t)n + 6 < sizeof(path)) {
        snprintf(path + n, sizeof(path) - (size_t)n, ".part");
        if (unlink(path) == 0)
            log_info("fetch", "removed %s: a download of %s made by an older Sova (%s)", path,
                     l->name, OP_STORE_LEGACY_REASON);
    }
    return 0;
}

int op_fetcher_resume_all(struct op_fetcher *f)
{
    op_store_legacy_foreach(f->env.store, drop_legacy_part, f);
    fetch_file_drop_orphans(f->env.downloads_dir, f->env.store);
    int rc = op_store_download_foreach(f->env.store, true, resume_one, f);
    queue_schedule(f, true);
    return rc;
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

void op_fetch_add_sources(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN],
                          const struct msg_source *sources, size_t n)
{
    struct download *dl = download_find(f, id);
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
        source_try_upgrade(s);
    }
}

bool op_fetch_punch_note(struct op_fetcher *f, const struct msg_punch_note *n)
{
    for (struct download *dl = f->downloads; dl; dl = dl->next) {
        for (unsigned i = 0; i < dl->n_sources; i++) {
            struct fetch_source *s = &dl->sources[i];
            bool punching = (s->path == NAT_PATH_PUNCH && s->state == SRC_CONNECTING) ||
                            s->probe_path == NAT_PATH_PUNCH;
            if (punching && memcmp(s->token, n->token, WIRE_TOKEN_LEN) == 0 &&
                memcmp(s->peer_id, n->peer_id, WIRE_ID_LEN) == 0)
                return source_punch_note(s, n);
        }
    }
    return false;
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
            bool ladder = s->path == NAT_PATH_REVERSAL && s->state == SRC_CONNECTING &&
                          memcmp(s->token, token, WIRE_TOKEN_LEN) == 0;
            bool probe = s->probe_path == NAT_PATH_REVERSAL && s->probe == NULL &&
                         memcmp(s->probe_token, token, WIRE_TOKEN_LEN) == 0;
            if (!ladder && !probe)
                continue;
            if (memcmp(s->peer_id, peer->id, WIRE_ID_LEN) != 0) {
                log_warn("fetch", "%.16s: %s answered the reversal meant for %s: refused", dl->hex,
                         link_name(l), s->short_id);
                return false;
            }
            if (probe)
                source_adopt_probe(s, l); /* moves the transfer off its relay */
            else
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
        download_progress(dl, &p);
        fn(&p, arg);
    }
}

void op_fetch_foreach_source(const struct op_fetcher *f, op_fetch_source_fn *fn, void *arg)
{
    static const char *const states[] = {"waiting", "connecting", "open", "banned"};
    for (const struct download *dl = f->downloads; dl; dl = dl->next) {
        for (unsigned i = 0; dl->state == OP_FETCH_RUNNING && i < dl->n_sources; i++) {
            const struct fetch_source *s = &dl->sources[i];
            bool linked = s->link != NULL && s->state == SRC_OPEN;
            struct op_fetch_source_info info = {
                .download_id = dl->id,
                .name = dl->name,
                .peer_id = s->peer_id,
                .state = states[s->state],
                .path = nat_path_str(s->path),
                .addr = linked && s->path != NAT_PATH_RELAY ? link_remote_addr(s->link) : NULL,
                .incoming = s->path == NAT_PATH_REVERSAL,
                .bytes = s->bytes,
                .rate_bps = s->rate_bps,
            };
            fn(&info, arg);
        }
    }
}

bool op_fetch_lookup(const struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN],
                     op_fetch_each_fn *fn, void *arg)
{
    const struct download *dl = download_find(f, id);
    if (dl == NULL)
        return false;
    struct op_fetch_progress p;
    download_progress(dl, &p);
    fn(&p, arg);
    return true;
}

size_t op_fetch_running(const struct op_fetcher *f)
{
    size_t n = 0;
    for (const struct download *dl = f->downloads; dl; dl = dl->next)
        n += dl->state == OP_FETCH_RUNNING;
    return n;
}
