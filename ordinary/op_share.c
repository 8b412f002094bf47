/* op_share.c - the share worker: scans run on a thread of their own (with
 * their own store connection) and their results are delivered on the event
 * loop, in order, through a pipe watched by a libevent event.
 *
 * Threads. The loop thread owns every libevent object, `current` and the
 * request counter's writes; the worker owns `baseline` and its store
 * connection; the queue of finished results, `stopping` and the request
 * counters are under `mu`. Results are immutable snapshots shared by
 * reference count, so the worker can compare its next scan with the last
 * result while the loop serves from it. */
#define OP_SHARE_INTERNAL
#include "op_share_int.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOD "share"

struct op_share {
    struct event_base *base;
    struct event *wake;
    int wake_fd[2]; /* worker writes [1], loop reads [0] */
    op_share_done_fn *cb;
    void *cb_arg;
    struct op_store *st; /* used by the worker only once it runs */
    char **folders;      /* cfg.n_folders, NULL-terminated (share_root alone, or none) */
    char **excludes;
    struct op_share_config cfg; /* points at folders and excludes */
    pthread_t thread;
    bool thread_started;
    atomic_bool cancel;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    uint64_t requested; /* rescan requests so far (written by the loop) */
    uint64_t started;   /* the request the latest scan answers (worker) */
    uint64_t dropped;   /* a request whose scan ran out of memory (worker) */
    bool stopping;
    struct snapshot *q_head, *q_tail; /* finished, not delivered */
    /* worker only */
    struct snapshot *baseline; /* the last successful result */
    /* loop only */
    uint64_t delivered; /* the request the last delivered result answers */
    struct snapshot *current;
};

static void *worker_main(void *arg)
{
    struct op_share *sh = arg;
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        while (!sh->stopping && sh->started == sh->requested)
            pthread_cond_wait(&sh->cv, &sh->mu);
        if (sh->stopping)
            break;
        uint64_t gen = sh->requested; /* later requests make one more scan */
        sh->started = gen;
        pthread_mutex_unlock(&sh->mu);
        struct snapshot *snap = share_scan_run(sh->st, &sh->cfg, sh->baseline, &sh->cancel);
        pthread_mutex_lock(&sh->mu);
        if (snap != NULL && snap->pub.status == SHARE_SCAN_CANCELLED) {
            share_snapshot_unref(snap);
            continue;
        }
        if (snap == NULL) { /* nothing to deliver, but the request is answered */
            log_error(MOD, "share scan: out of memory");
            sh->dropped = gen;
        } else {
            if (snap->pub.status == 0) {
                share_snapshot_unref(sh->baseline);
                sh->baseline = share_snapshot_ref(snap);
            }
            snap->gen = gen;
            if (sh->q_tail != NULL)
                sh->q_tail->next = snap;
            else
                sh->q_head = snap;
            sh->q_tail = snap;
        }
        /* A full pipe already holds a wake-up: nothing to do on EAGAIN. */
        ssize_t n = write(sh->wake_fd[1], "", 1);
        (void)n;
    }
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

static struct snapshot *queue_pop(struct op_share *sh)
{
    pthread_mutex_lock(&sh->mu);
    struct snapshot *s = sh->q_head;
    if (s != NULL) {
        sh->q_head = s->next;
        if (sh->q_head == NULL)
            sh->q_tail = NULL;
        s->next = NULL;
    }
    pthread_mutex_unlock(&sh->mu);
    return s;
}

/* Loop thread: deliver every finished scan, in order. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct op_share *sh = arg;
    char drain[64];
    (void)what;
    while (read(fd, drain, sizeof(drain)) > 0)
        ;
    struct snapshot *s;
    while ((s = queue_pop(sh)) != NULL) {
        sh->delivered = s->gen;
        if (s->pub.status == 0) {
            share_snapshot_unref(sh->current);
            sh->current = s; /* takes the queue's reference */
        }
        sh->cb(&s->pub, sh->cb_arg);
        if (s->pub.status != 0)
            share_snapshot_unref(s);
    }
    pthread_mutex_lock(&sh->mu);
    if (sh->dropped > sh->delivered)
        sh->delivered = sh->dropped;
    pthread_mutex_unlock(&sh->mu);
}

static int set_fd_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 &&
                   fcntl(fd, F_SETFD, FD_CLOEXEC) == 0
               ? 0
               : -1;
}

/* A copy of path without trailing '/' (but "/" stays "/"). */
static char *folder_dup(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    return strndup(path, n);
}

static int copy_config(struct op_share *sh, const struct op_share_config *cfg)
{
    size_t n_folders = cfg->n_folders ? cfg->n_folders : cfg->share_root != NULL;
    sh->folders = calloc(n_folders + 1, sizeof(*sh->folders));
    sh->excludes = calloc(cfg->n_exclude_dirs + 1, sizeof(*sh->excludes));
    if (sh->folders == NULL || sh->excludes == NULL)
        return SOVA_ERR_NOMEM;
    sh->cfg = (struct op_share_config){
        .share_root = NULL,
        .folders = (const char *const *)sh->folders,
        .n_folders = n_folders,
        .missing_ok = cfg->missing_ok,
        .watch = cfg->watch,
        .watch_fd = cfg->watch_fd,
        .exclude_dirs = (const char *const *)sh->excludes,
        .n_exclude_dirs = cfg->n_exclude_dirs,
    };
    for (size_t i = 0; i < n_folders; i++)
        if ((sh->folders[i] = folder_dup(cfg->n_folders ? cfg->folders[i] : cfg->share_root)) ==
            NULL)
            return SOVA_ERR_NOMEM;
    for (size_t i = 0; i < cfg->n_exclude_dirs; i++)
        if ((sh->excludes[i] = strdup(cfg->exclude_dirs[i])) == NULL)
            return SOVA_ERR_NOMEM;
    return 0;
}

/* Start the worker with every signal blocked: signals belong to the loop. */
static int start_worker(struct op_share *sh)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&sh->thread, NULL, worker_main, sh);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    sh->thread_started = rc == 0;
    return rc;
}

int op_share_new(struct event_base *base, const struct op_share_config *cfg, const char *db_path,
                 op_share_done_fn *cb, void *arg, struct op_share **out, char *err, size_t errlen)
{
    *out = NULL;
    struct op_share *sh = calloc(1, sizeof(*sh));
    if (sh == NULL)
        return SOVA_ERR_NOMEM;
    sh->base = base;
    sh->cb = cb;
    sh->cb_arg = arg;
    sh->wake_fd[0] = sh->wake_fd[1] = -1;
    atomic_init(&sh->cancel, false);
    pthread_mutex_init(&sh->mu, NULL);
    pthread_cond_init(&sh->cv, NULL);
    int rc = copy_config(sh, cfg);
    const char *why = "out of memory";
    if (rc == 0 && (rc = op_store_open(db_path, &sh->st, err, errlen)) != 0)
        why = NULL; /* err already says it */
    if (rc == 0 && (pipe(sh->wake_fd) != 0 || set_fd_flags(sh->wake_fd[0]) != 0 ||
                    set_fd_flags(sh->wake_fd[1]) != 0)) {
        rc = SOVA_ERR_IO;
        why = strerror(errno);
    }
    if (rc == 0) {
        sh->wake = event_new(base, sh->wake_fd[0], EV_READ | EV_PERSIST, on_wake, sh);
        if (sh->wake == NULL || event_add(sh->wake, NULL) != 0)
            rc = SOVA_ERR_NOMEM;
    }
    if (rc == 0 && start_worker(sh) != 0) {
        rc = SOVA_ERR_INTERNAL;
        why = "cannot start the hashing thread";
    }
    if (rc != 0) {
        if (why != NULL && err != NULL && errlen > 0)
            snprintf(err, errlen, "share %s: %s",
                     cfg->n_folders    ? cfg->folders[0]
                     : cfg->share_root ? cfg->share_root
                                       : "(no folder)",
                     why);
        op_share_free(sh);
        return rc;
    }
    *out = sh;
    return 0;
}

void op_share_rescan(struct op_share *sh)
{
    pthread_mutex_lock(&sh->mu);
    sh->requested++;
    pthread_cond_signal(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
}

bool op_share_busy(const struct op_share *sh)
{
    /* Both counters are written by the loop thread only. */
    return sh->delivered != sh->requested;
}

void op_share_free(struct op_share *sh)
{
    if (sh == NULL)
        return;
    if (sh->thread_started) {
        pthread_mutex_lock(&sh->mu);
        sh->stopping = true;
        atomic_store(&sh->cancel, true);
        pthread_cond_signal(&sh->cv);
        pthread_mutex_unlock(&sh->mu);
        pthread_join(sh->thread, NULL);
    }
    struct snapshot *s;
    while ((s = queue_pop(sh)) != NULL)
        share_snapshot_unref(s);
    share_snapshot_unref(sh->baseline);
    share_snapshot_unref(sh->current);
    if (sh->wake != NULL)
        event_free(sh->wake);
    for (int i = 0; i < 2; i++)
        if (sh->wake_fd[i] >= 0)
            close(sh->wake_fd[i]);
    op_store_close(sh->st);
    for (size_t i = 0; sh->excludes != NULL && i < sh->cfg.n_exclude_dirs; i++)
        free(sh->excludes[i]);
    free(sh->excludes);
    for (size_t i = 0; sh->folders != NULL && sh->folders[i] != NULL; i++)
        free(sh->folders[i]);
    free(sh->folders);
    pthread_cond_destroy(&sh->cv);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

const struct op_share_result *op_share_current(const struct op_share *sh)
{
    return sh->current != NULL ? &sh->current->pub : NULL;
}

const struct op_share_file *op_share_lookup(const struct op_share *sh,
                                            const uint8_t id[OP_HASH_LEN])
{
    return op_share_result_lookup(op_share_current(sh), id);
}

int op_share_abspath(const struct op_share *sh, const struct op_share_file *f, char *buf,
                     size_t cap)
{
    (void)sh;
    int n = snprintf(buf, cap, "%s", f->path);
    return n >= 0 && (size_t)n < cap ? 0 : SOVA_ERR_INVALID;
}
