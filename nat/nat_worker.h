/* nat_worker.h - the thread that runs blocking miniupnpc/libnatpmp jobs.
 *
 * Private to nat/. One worker per nat_upnp. The loop posts one job at a
 * time (nat_worker_post); the worker runs it off the loop, stores the result
 * and writes a byte to a socketpair; the loop, woken by a read event on
 * nat_worker_fd(), takes the result (nat_worker_take). Only a mutex and two
 * condition variables are shared; the worker never touches libevent.
 *
 * The worker remembers the mapping it holds on the router (from successful
 * MAP jobs) and deletes it when told to stop, so a mapping made by a job
 * still running when the owner stops is deleted too.
 *
 * Lifetime: the state is reference-counted by the loop and the thread.
 * nat_worker_stop() waits a bounded time; if the worker is still blocked in
 * the router, it is detached and frees the state itself when it returns.
 */
#ifndef SOVA_NAT_WORKER_H
#define SOVA_NAT_WORKER_H

#ifndef SOVA_NAT_INTERNAL
#error "nat_worker.h is private to nat/"
#endif

#include "nat_map_fsm.h"

#include <stdbool.h>
#include <stddef.h>

struct nat_worker;

/* Start the thread. description is copied (the UPnP mapping's name).
 * 0, SOVA_ERR_NOMEM or SOVA_ERR_IO (socketpair or thread), err filled. */
int nat_worker_start(const char *description, struct nat_worker **out, char *err, size_t errlen);
/* The read end to watch for EV_READ; owned by the worker, valid until stop. */
int nat_worker_fd(const struct nat_worker *w);
/* Hand over a job; false if one is still running (a caller bug). */
bool nat_worker_post(struct nat_worker *w, const struct nat_job *job);
/* After the fd became readable: true with the finished job's result. */
bool nat_worker_take(struct nat_worker *w, struct nat_job_result *out);
/* Tell the worker to finish its job, delete the mapping it holds and exit;
 * wait at most wait_ms. true if it did in time (code/err: how the delete
 * went, 0/"" if fine or nothing was held), false if it is still blocked in a
 * router call (it was detached and still deletes the mapping if the process
 * lives on; *holds says whether it held one after its last job). w is gone
 * either way; the caller must have removed its event on nat_worker_fd()
 * first. Blocks the caller up to wait_ms. */
bool nat_worker_stop(struct nat_worker *w, unsigned wait_ms, bool *holds, int *code, char *err,
                     size_t errlen);

#endif
