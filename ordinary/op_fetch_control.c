/* op_fetch_control.c - what is asked of the downloads: get (start, join,
 * retry, ask again for a finished file) and transfer control
 * (docs/TRANSFERS.md, "Queue, pause, cancel"): pause, resume, cancel,
 * remove, priority and the queue's limit. The queue itself (at most
 * max_active downloads run, the others wait, the highest priority first,
 * then the oldest) is in op_fetch.c with the downloads' life; calls go one
 * way, from here to there.
 *
 * Every change is written to the store before it is made in memory, and
 * cancel deletes the store rows before the part file: a crash at any
 * point leaves either the old state or the new one, and never a bitmap
 * that vouches for chunks whose part file is gone. */
#define SOVA_OP_FETCH_INTERNAL
#include "err.h"
#include "log.h"
#include "op_fetch_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void op_fetch_set_max_active(struct op_fetcher *f, unsigned max_active)
{
    f->max_active = max_active;
    /* Too many running: the last in the queue's order go back to it. */
    while (max_active != 0 && op_fetch_running(f) > max_active) {
        struct download *last = NULL;
        for (struct download *dl = f->downloads; dl; dl = dl->next)
            if (dl->state == OP_FETCH_RUNNING && (last == NULL || queue_before(last, dl)))
                last = dl;
        if (last == NULL)
            break; /* cannot be: op_fetch_running() counted it */
        download_suspend(last, OP_FETCH_QUEUED);
    }
    queue_schedule(f, true);
}

/* ---- get ------------------------------------------------------------------------ */

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

/* Is the finished file still at path, at its size? (Its content is checked
 * chunk by chunk when it is copied; not when it only stays where it is.) */
static bool finished_file_there(const char *path, uint64_t size)
{
    struct stat st;
    return path != NULL && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           (uint64_t)st.st_size == size;
}

/* A complete download asked for again. Nothing to do if its file is there
 * and no other place is asked; else it becomes active again, its chunks
 * read back from the finished file when it is there (checked against the
 * manifest), from the sources otherwise. *done is set when it is done
 * already (row describes it). */
static int finished_again(struct op_fetcher *f, struct op_store_download *row, const char *out_path,
                          char **local, bool *done, char *err, size_t errlen)
{
    *done = false;
    *local = NULL;
    bool there = finished_file_there(row->path, row->size);
    if (there && (out_path == NULL || strcmp(out_path, row->path) == 0)) {
        *done = true;
        return 0;
    }
    char hex[9];
    snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", row->id[0], row->id[1], row->id[2], row->id[3]);
    if (there) {
        *local = strdup(row->path);
        if (*local == NULL)
            return SOVA_ERR_NOMEM;
        log_info("fetch", "%s: finished as %s; copying it to %s, every chunk checked", hex,
                 row->path, out_path);
    } else {
        log_info("fetch", "%s: the finished file %s is gone: downloading it again", hex,
                 row->path ? row->path : "?");
    }
    if (op_store_download_activate(f->env.store, row->id, out_path, true) != 0) {
        snprintf(err, errlen, "cannot record the download: %s", op_store_errmsg(f->env.store));
        free(*local);
        *local = NULL;
        return SOVA_ERR_IO;
    }
    return 0;
}

/* The download of id in memory, from the store (created, retried, or a
 * finished one again); *done_row is filled when it is complete and
 * nothing needs doing. */
static int download_load(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], const char *name,
                         uint64_t size_hint, const char *out_path, unsigned priority,
                         struct download **out, struct op_store_download *done_row, bool *done,
                         char *err, size_t errlen)
{
    *done = false;
    bool existed = false;
    struct op_store_download row = {0};
    bool found = false;
    int rc = op_store_download_create(f->env.store, id, name, size_hint, f->env.chunk_size,
                                      out_path, &existed);
    if (rc == 0)
        rc = op_store_download_get(f->env.store, id, &row, &found);
    if (rc != 0 || !found) {
        snprintf(err, errlen, "cannot record the download: %s", op_store_errmsg(f->env.store));
        op_store_download_clear(&row);
        return rc ? rc : SOVA_ERR_IO;
    }
    char *local = NULL;
    if (row.state == OP_DOWNLOAD_COMPLETE) {
        rc = finished_again(f, &row, out_path, &local, done, err, errlen);
        if (rc != 0 || *done) {
            *done_row = row;
            if (rc != 0)
                op_store_download_clear(done_row);
            return rc;
        }
    } else if (existed && (row.state == OP_DOWNLOAD_FAILED || out_path != NULL || row.paused)) {
        rc = op_store_download_activate(f->env.store, id, out_path, false); /* try again */
    }
    if (rc == 0 && priority <= OP_STORE_PRIORITY_HIGH)
        rc = op_store_download_set_priority(f->env.store, id, priority);
    op_store_download_clear(&row);
    if (rc == 0)
        rc = op_store_download_get(f->env.store, id, &row, &found);
    if (rc != 0 || !found) {
        snprintf(err, errlen, "cannot record the download: %s", op_store_errmsg(f->env.store));
        op_store_download_clear(&row);
        free(local);
        return rc ? rc : SOVA_ERR_IO;
    }
    rc = download_open(f, &row, out, err, errlen);
    op_store_download_clear(&row);
    if (rc != 0) {
        free(local);
        return rc;
    }
    struct download *dl = *out;
    if (local != NULL) {
        dl->local_fd = open(local, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        dl->local_path = local;
        if (dl->local_fd < 0)
            download_local_end(dl, "cannot be opened");
    }
    log_info("fetch", "%.16s: download of %s (%llu bytes said the hit) %s, priority %u", dl->hex,
             dl->name, (unsigned long long)size_hint, !existed ? "started" : "resumed",
             dl->priority);
    if (dl->local_path != NULL)
        download_start(dl); /* a copy of a finished file does not wait in the queue */
    return 0;
}

int op_fetch_get(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], const char *name,
                 uint64_t size_hint, const char *out_path, unsigned priority, op_fetch_watch_fn *fn,
                 void *arg, struct op_fetch_watch **watch, char *err, size_t errlen)
{
    if (watch)
        *watch = NULL;
    struct download *dl = download_find(f, id);
    if (dl != NULL && dl->state == OP_FETCH_DONE &&
        (out_path == NULL || strcmp(out_path, dl->final_path) == 0) &&
        finished_file_there(dl->final_path, dl->size)) {
        if (fn != NULL) { /* done in this run, and still there */
            struct op_fetch_progress p;
            download_progress(dl, &p);
            p.via = "already here";
            p.route = NULL; /* nothing was fetched this time */
            fn(&p, arg);
        }
        return 0;
    }
    if (dl != NULL && (dl->state == OP_FETCH_DONE || dl->state == OP_FETCH_FAILED ||
                       (dl->state == OP_FETCH_PAUSED && out_path != NULL))) {
        /* Failed: try again. Done in this run: the store knows where it went,
         * and whether it is to be copied or fetched again. */
        download_unlink(f, dl);
        dl = NULL;
    }
    if (dl == NULL) {
        struct op_store_download row = {0};
        bool done = false;
        int rc = download_load(f, id, name, size_hint, out_path, priority, &dl, &row, &done, err,
                               errlen);
        if (rc != 0)
            return rc;
        if (done) {
            if (fn != NULL) {
                struct op_fetch_progress p = {
                    .id = row.id,
                    .name = row.name,
                    .size_known = true,
                    .size = row.size,
                    .size_hint = row.size_hint,
                    .chunk_size = row.chunk_size,
                    .bytes_have = row.size,
                    .chunks_have = row.n_chunks,
                    .n_chunks = row.n_chunks,
                    .state = OP_FETCH_DONE,
                    .path = row.path,
                    .sha256 = row.has_sha256 ? row.sha256 : NULL,
                    .via = "already here",
                };
                fn(&p, arg);
            }
            op_store_download_clear(&row);
            return 0;
        }
    } else {
        /* Known in this run: a paused one is wanted again; a new priority
         * is kept. */
        if (priority <= OP_STORE_PRIORITY_HIGH && priority != dl->priority) {
            if (op_store_download_set_priority(f->env.store, id, priority) != 0) {
                snprintf(err, errlen, "cannot record the priority: %s",
                         op_store_errmsg(f->env.store));
                return SOVA_ERR_IO;
            }
            dl->priority = priority;
        }
        if (dl->state == OP_FETCH_PAUSED) {
            int rc = op_fetch_resume(f, id, err, errlen);
            if (rc != 0)
                return rc;
        }
    }
    /* Start it if there is room, before it is watched: a start that fails
     * at once (the part file cannot be opened) is this call's error, not a
     * report to a watcher whose request is still being answered. */
    queue_schedule(f, true);
    if (dl->state == OP_FETCH_FAILED) {
        snprintf(err, errlen, "%s", dl->error);
        return SOVA_ERR_IO;
    }
    if (fn != NULL && add_watch(dl, fn, arg, watch) != 0)
        return SOVA_ERR_NOMEM;
    download_pump(dl);
    return 0;
}

/* ---- one download ------------------------------------------------------------------ */

static void short_hex(const uint8_t id[WIRE_HASH_LEN], char out[17])
{
    for (size_t i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

/* The download id, in this run or only in the store (then *row is filled
 * and *dl NULL). SOVA_ERR_NOT_FOUND with err when neither knows it. */
static int find(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], struct download **dl,
                struct op_store_download *row, char *err, size_t errlen)
{
    *dl = download_find(f, id);
    memset(row, 0, sizeof(*row));
    if (*dl != NULL)
        return 0;
    bool found = false;
    if (op_store_download_get(f->env.store, id, row, &found) != 0) {
        snprintf(err, errlen, "cannot read the download's state: %s",
                 op_store_errmsg(f->env.store));
        return SOVA_ERR_IO;
    }
    if (!found) {
        char hex[2 * WIRE_HASH_LEN + 1];
        for (size_t i = 0; i < WIRE_HASH_LEN; i++)
            snprintf(hex + 2 * i, 3, "%02x", id[i]);
        snprintf(err, errlen, "no download with ID %s (see `sova-peer downloads`)", hex);
        return SOVA_ERR_NOT_FOUND;
    }
    return 0;
}

static const char *state_of(const struct download *dl, const struct op_store_download *row)
{
    return dl != NULL ? op_fetch_state_name(dl->state) : op_download_state_name(row->state);
}

int op_fetch_pause(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], char *err, size_t errlen)
{
    struct download *dl;
    struct op_store_download row;
    int rc = find(f, id, &dl, &row, err, errlen);
    if (rc != 0)
        return rc;
    if (dl == NULL || (dl->state != OP_FETCH_RUNNING && dl->state != OP_FETCH_QUEUED &&
                       dl->state != OP_FETCH_PAUSED)) {
        snprintf(err, errlen, "the download of %s is %s: there is nothing to pause",
                 dl ? dl->name : row.name, state_of(dl, &row));
        op_store_download_clear(&row);
        return SOVA_ERR_INVALID;
    }
    if (dl->state == OP_FETCH_PAUSED)
        return 0;
    if (op_store_download_set_paused(f->env.store, id, true) != 0) {
        snprintf(err, errlen, "cannot record the pause: %s", op_store_errmsg(f->env.store));
        return SOVA_ERR_IO;
    }
    download_suspend(dl, OP_FETCH_PAUSED);
    snprintf(dl->error, sizeof(dl->error), "paused (`sova-peer resume` continues it)");
    download_notify(dl, true); /* ends every watch */
    dl->error[0] = '\0';
    queue_schedule(f, true);
    return 0;
}

int op_fetch_resume(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], char *err, size_t errlen)
{
    struct download *dl;
    struct op_store_download row;
    int rc = find(f, id, &dl, &row, err, errlen);
    if (rc != 0)
        return rc;
    if (dl == NULL || dl->state == OP_FETCH_DONE || dl->state == OP_FETCH_FAILED) {
        snprintf(err, errlen, "the download of %s is %s: `sova-peer get` %s",
                 dl ? dl->name : row.name, state_of(dl, &row),
                 (dl ? dl->state == OP_FETCH_DONE : row.state == OP_DOWNLOAD_COMPLETE)
                     ? "asks for it again"
                     : "tries it again");
        op_store_download_clear(&row);
        return SOVA_ERR_INVALID;
    }
    if (dl->state != OP_FETCH_PAUSED)
        return 0;
    if (op_store_download_set_paused(f->env.store, id, false) != 0) {
        snprintf(err, errlen, "cannot record the resume: %s", op_store_errmsg(f->env.store));
        return SOVA_ERR_IO;
    }
    dl->state = OP_FETCH_QUEUED;
    log_info("fetch", "%.16s: resumed, back in the queue (%u of %u chunks verified)", dl->hex,
             dl->chunks_have_saved, dl->n_chunks);
    queue_schedule(f, true);
    return 0;
}

/* The part file of a download: DOWNLOADS/.sova-partial/<hex>.part. */
static void delete_part(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN])
{
    if (f->env.downloads_dir == NULL)
        return;
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s/", f->env.downloads_dir, FETCH_PARTIAL_DIR);
    for (size_t i = 0; i < WIRE_HASH_LEN && n > 0 && (size_t)n + 3 < sizeof(path); i++)
        n += snprintf(path + n, sizeof(path) - (size_t)n, "%02x", id[i]);
    if (n <= 0 || (size_t)n + 6 >= sizeof(path))
        return;
    snprintf(path + n, sizeof(path) - (size_t)n, ".part");
    if (unlink(path) == 0)
        log_info("fetch", "deleted %s", path);
    else if (errno != ENOENT)
        log_warn("fetch", "cannot delete %s: %s", path, strerror(errno));
}

int op_fetch_cancel(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], char *err, size_t errlen)
{
    struct download *dl;
    struct op_store_download row;
    int rc = find(f, id, &dl, &row, err, errlen);
    if (rc != 0)
        return rc;
    bool complete = dl ? dl->state == OP_FETCH_DONE : row.state == OP_DOWNLOAD_COMPLETE;
    if (complete) {
        snprintf(err, errlen,
                 "the download of %s is complete: nothing to cancel (`sova-peer remove` forgets "
                 "it)",
                 dl ? dl->name : row.name);
        op_store_download_clear(&row);
        return SOVA_ERR_INVALID;
    }
    op_store_download_clear(&row);
    /* Stop first: the part file's last chunks are made durable and marked
     * in the rows being deleted next. */
    if (dl != NULL && dl->state == OP_FETCH_RUNNING)
        download_suspend(dl, OP_FETCH_QUEUED);
    if (op_store_download_delete(f->env.store, id) != 0) {
        snprintf(err, errlen, "cannot delete the download's state: %s",
                 op_store_errmsg(f->env.store));
        if (dl != NULL)
            queue_schedule(f, true); /* it is queued again, as the store says */
        return SOVA_ERR_IO;
    }
    delete_part(f, id);
    if (dl != NULL) {
        log_info("fetch", "%.16s: cancelled; %s and its partial data deleted", dl->hex, dl->name);
        dl->state = OP_FETCH_FAILED;
        dl->cancelled = true;
        snprintf(dl->error, sizeof(dl->error), "cancelled");
        download_notify(dl, true); /* ends every watch */
        download_unlink(f, dl);
    }
    queue_schedule(f, true);
    return 0;
}

int op_fetch_remove(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], bool delete_data,
                    char **deleted, char *err, size_t errlen)
{
    if (deleted != NULL)
        *deleted = NULL;
    struct download *dl;
    struct op_store_download row;
    int rc = find(f, id, &dl, &row, err, errlen);
    if (rc != 0)
        return rc;
    if (dl != NULL) { /* the store has what the path was, also of this run */
        bool found;
        op_store_download_clear(&row);
        op_store_download_get(f->env.store, id, &row, &found);
    }
    bool active = dl ? dl->state != OP_FETCH_DONE && dl->state != OP_FETCH_FAILED
                     : row.state == OP_DOWNLOAD_ACTIVE;
    if (active) {
        snprintf(err, errlen,
                 "the download of %s is %s: `sova-peer cancel` stops it and deletes what it has",
                 dl ? dl->name : row.name, state_of(dl, &row));
        op_store_download_clear(&row);
        return SOVA_ERR_INVALID;
    }
    bool failed = dl ? dl->state == OP_FETCH_FAILED : row.state == OP_DOWNLOAD_FAILED;
    if (op_store_download_delete(f->env.store, id) != 0) {
        snprintf(err, errlen, "cannot delete the download's state: %s",
                 op_store_errmsg(f->env.store));
        op_store_download_clear(&row);
        return SOVA_ERR_IO;
    }
    if (failed)
        delete_part(f, id); /* its verified chunks have no row left to vouch for them */
    struct stat st;
    if (delete_data && !failed && row.path != NULL && lstat(row.path, &st) == 0 &&
        S_ISREG(st.st_mode)) {
        if (unlink(row.path) == 0) {
            log_info("fetch", "deleted %s, as asked", row.path);
            if (deleted != NULL)
                *deleted = row.path;
            row.path = NULL;
        } else {
            log_warn("fetch", "cannot delete %s: %s", row.path, strerror(errno));
        }
    }
    char hex[17];
    short_hex(id, hex);
    log_info("fetch", "%s: download of %s forgotten", hex, dl ? dl->name : row.name);
    op_store_download_clear(&row);
    if (dl != NULL)
        download_unlink(f, dl);
    return 0;
}

int op_fetch_set_priority(struct op_fetcher *f, const uint8_t id[WIRE_HASH_LEN], unsigned priority,
                          char *err, size_t errlen)
{
    struct download *dl;
    struct op_store_download row;
    int rc = find(f, id, &dl, &row, err, errlen);
    op_store_download_clear(&row);
    if (rc != 0)
        return rc;
    if (op_store_download_set_priority(f->env.store, id, priority) != 0) {
        snprintf(err, errlen, "cannot record the priority: %s", op_store_errmsg(f->env.store));
        return SOVA_ERR_IO;
    }
    if (dl != NULL)
        dl->priority = priority;
    queue_schedule(f, true);
    return 0;
}
