/* nat_worker.c - the thread that runs blocking router jobs (see nat_worker.h). */
#include "clock.h"
#include "nat_worker.h"

#include "err.h"
#include "nat_igd.h"
#include "nat_pmp.h"
#include "nat_pcp.h"

#include <errno.h>
#include <event2/util.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct nat_worker {
    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* a job was posted, or quit */
    pthread_cond_t done; /* the thread finished (CLOCK_MONOTONIC) */
    pthread_t thread;
    int refs;         /* the loop and the thread */
    bool job_pending; /* posted, not taken by the thread yet */
    bool busy;        /* posted, result not taken by the loop yet */
    bool result_ready;
    bool quit;
    bool exited;
    bool loop_gone; /* the loop stopped listening: do not write to notify */
    bool holds;     /* a mapping is held, as of the last finished job */
    struct nat_job job;
    struct nat_job_result result;
    int notify_rd, notify_wr;
    int unmap_code; /* the final delete, valid once exited */
    char unmap_error[160];

    /* the thread's own */
    char description[80];
    struct nat_igd *igd;
    struct nat_pmp *pmp;
    struct nat_pcp *pcp;
    enum nat_method held_method; /* the mapping we hold, NONE if none */
    uint16_t held_external, held_internal;
    char held_gateway[128];
};

static void worker_destroy(struct nat_worker *w)
{
    nat_igd_free(w->igd);
    nat_pmp_free(w->pmp);
    nat_pcp_free(w->pcp);
    if (w->notify_wr >= 0)
        close(w->notify_wr);
    if (w->notify_rd >= 0)
        close(w->notify_rd);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static const char *current_gateway(const struct nat_worker *w, enum nat_method m)
{
    return m == NAT_METHOD_UPNP  ? nat_igd_control_url(w->igd)
           : m == NAT_METHOD_PCP ? nat_pcp_gateway(w->pcp)
                                 : nat_pmp_gateway(w->pmp);
}

static void discover(struct nat_worker *w, const struct nat_job *job, struct nat_job_result *r)
{
    /* PCP first (RFC 6887, the newest of the three), then UPnP IGD, then
     * NAT-PMP. */
    char pcp_error[sizeof(r->error)] = "";
    bool pmp_worth = job->natpmp;
    if (job->ipv6) { /* a pinhole: PCP is the one of the three that makes them here */
        nat_pcp_discover(w->pcp, job, r);
        goto found;
    }
    if (job->pcp) {
        nat_pcp_discover(w->pcp, job, r);
        if (r->outcome == NAT_OUT_OK)
            goto found;
        snprintf(pcp_error, sizeof(pcp_error), "%s", r->error);
        pmp_worth = pmp_worth && !nat_pcp_silent(w->pcp); /* same port, same server */
        memset(r, 0, sizeof(*r));
        r->kind = job->kind;
    }
    nat_igd_discover(w->igd, job->discover_ms, r);
    if (r->outcome != NAT_OUT_OK && pmp_worth) {
        struct nat_job_result pmp = {.kind = NAT_JOB_DISCOVER};
        nat_pmp_discover(w->pmp, &pmp);
        if (pmp.outcome == NAT_OUT_OK) {
            *r = pmp;
        } else {
            char both[sizeof(r->error)];
            snprintf(both, sizeof(both), "%.50s; %.50s; %.55s", pcp_error, r->error, pmp.error);
            memcpy(r->error, both, sizeof(both));
        }
    } else if (r->outcome != NAT_OUT_OK && pcp_error[0] != '\0') {
        char both[sizeof(r->error)];
        snprintf(both, sizeof(both), "%.75s; %.80s", pcp_error, r->error);
        memcpy(r->error, both, sizeof(both));
    }
found:
    /* The mapping held at a gateway we no longer see cannot be deleted; it
     * ends with its lease. */
    if (w->held_method != NAT_METHOD_NONE &&
        (r->outcome != NAT_OUT_OK || r->method != w->held_method ||
         strcmp(w->held_gateway, current_gateway(w, w->held_method)) != 0))
        w->held_method = NAT_METHOD_NONE;
}

static void run_job(struct nat_worker *w, const struct nat_job *job, struct nat_job_result *r)
{
    memset(r, 0, sizeof(*r));
    r->kind = job->kind;
    r->method = job->method;
    switch (job->kind) {
    case NAT_JOB_DISCOVER:
        discover(w, job, r);
        return;
    case NAT_JOB_MAP:
        if (job->method == NAT_METHOD_UPNP)
            nat_igd_map(w->igd, job, w->description, r);
        else if (job->method == NAT_METHOD_PCP)
            nat_pcp_map(w->pcp, job, r);
        else
            nat_pmp_map(w->pmp, job, r);
        if (r->outcome == NAT_OUT_OK) {
            w->held_method = job->method;
            w->held_external = r->external_port;
            w->held_internal = job->internal_port;
            snprintf(w->held_gateway, sizeof(w->held_gateway), "%s",
                     current_gateway(w, job->method));
        }
        return;
    case NAT_JOB_CHECK:
        if (job->method == NAT_METHOD_UPNP)
            nat_igd_check(w->igd, job, r);
        else if (job->method == NAT_METHOD_PCP)
            nat_pcp_check(w->pcp, job, r);
        else
            nat_pmp_check(w->pmp, job, r);
        if (r->outcome == NAT_OUT_NONE)
            w->held_method = NAT_METHOD_NONE; /* gone, or someone else's now */
        return;
    case NAT_JOB_NONE:
        break;
    }
    r->outcome = NAT_OUT_REFUSED;
    r->code = SOVA_ERR_INTERNAL;
    snprintf(r->error, sizeof(r->error), "worker: unknown job %d", (int)job->kind);
}

static void unmap_held(struct nat_worker *w)
{
    w->unmap_code = 0;
    w->unmap_error[0] = '\0';
    if (w->held_method == NAT_METHOD_UPNP)
        w->unmap_code =
            nat_igd_unmap(w->igd, w->held_external, w->unmap_error, sizeof(w->unmap_error));
    else if (w->held_method == NAT_METHOD_NATPMP)
        w->unmap_code =
            nat_pmp_unmap(w->pmp, w->held_internal, w->unmap_error, sizeof(w->unmap_error));
    else if (w->held_method == NAT_METHOD_PCP)
        w->unmap_code =
            nat_pcp_unmap(w->pcp, w->held_internal, w->unmap_error, sizeof(w->unmap_error));
    w->held_method = NAT_METHOD_NONE;
}

static void *worker_main(void *arg)
{
    struct nat_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->job_pending && !w->quit)
            pthread_cond_wait(&w->wake, &w->mu);
        if (w->quit)
            break;
        struct nat_job job = w->job;
        w->job_pending = false;
        pthread_mutex_unlock(&w->mu);

        struct nat_job_result res;
        run_job(w, &job, &res);

        pthread_mutex_lock(&w->mu);
        w->result = res;
        w->result_ready = true;
        w->holds = w->held_method != NAT_METHOD_NONE;
        if (!w->loop_gone) {
            ssize_t n = send(w->notify_wr, "j", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)n; /* a full socket already wakes the loop */
        }
    }
    pthread_mutex_unlock(&w->mu);

    unmap_held(w); /* read by the loop only after it sees exited, under mu */

    pthread_mutex_lock(&w->mu);
    w->exited = true;
    pthread_cond_broadcast(&w->done);
    bool last = --w->refs == 0;
    pthread_mutex_unlock(&w->mu);
    if (last)
        worker_destroy(w);
    return NULL;
}

int nat_worker_start(const char *description, struct nat_worker **out, char *err, size_t errlen)
{
    *out = NULL;
    struct nat_worker *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return SOVA_ERR_NOMEM;
    }
    w->notify_rd = w->notify_wr = -1;
    snprintf(w->description, sizeof(w->description), "%s", description ? description : "sova");
    w->igd = nat_igd_new();
    w->pmp = nat_pmp_new();
    w->pcp = nat_pcp_new();
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->done, &attr);
    pthread_condattr_destroy(&attr);
    if (!w->igd || !w->pmp || !w->pcp) {
        worker_destroy(w);
        snprintf(err, errlen, "out of memory");
        return SOVA_ERR_NOMEM;
    }
    int sv[2];
    if (evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        worker_destroy(w);
        return SOVA_ERR_IO;
    }
    w->notify_rd = sv[0];
    w->notify_wr = sv[1];
    evutil_make_socket_nonblocking(sv[0]);
    evutil_make_socket_closeonexec(sv[0]);
    evutil_make_socket_closeonexec(sv[1]);

    /* The thread takes no signals: they stay with the loop's thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    w->refs = 2;
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "pthread_create: %s", strerror(rc));
        worker_destroy(w);
        return SOVA_ERR_IO;
    }
    *out = w;
    return 0;
}

int nat_worker_fd(const struct nat_worker *w)
{
    return w->notify_rd;
}

bool nat_worker_post(struct nat_worker *w, const struct nat_job *job)
{
    pthread_mutex_lock(&w->mu);
    bool ok = !w->busy && !w->quit;
    if (ok) {
        w->job = *job;
        w->job_pending = true;
        w->busy = true;
        w->result_ready = false;
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);
    return ok;
}

bool nat_worker_take(struct nat_worker *w, struct nat_job_result *out)
{
    char buf[16];
    while (recv(w->notify_rd, buf, sizeof(buf), 0) > 0)
        ;
    pthread_mutex_lock(&w->mu);
    bool ready = w->result_ready;
    if (ready) {
        *out = w->result;
        w->result_ready = false;
        w->busy = false;
    }
    pthread_mutex_unlock(&w->mu);
    return ready;
}

bool nat_worker_stop(struct nat_worker *w, unsigned wait_ms, bool *holds, int *code, char *err,
                     size_t errlen)
{
    struct timespec deadline = sova_mono_deadline(wait_ms);
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_signal(&w->wake);
    while (!w->exited)
        if (pthread_cond_timedwait(&w->done, &w->mu, &deadline) == ETIMEDOUT)
            break;
    bool finished = w->exited;
    *holds = !finished && w->holds;
    *code = finished ? w->unmap_code : 0;
    snprintf(err, errlen, "%s", finished ? w->unmap_error : "");
    w->loop_gone = true;
    close(w->notify_rd);
    w->notify_rd = -1;
    pthread_t thread = w->thread;
    bool last = --w->refs == 0;
    pthread_mutex_unlock(&w->mu);
    if (finished)
        pthread_join(thread, NULL);
    else
        pthread_detach(thread);
    if (last)
        worker_destroy(w);
    return finished;
}
