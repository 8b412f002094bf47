/* op_hook.h - the completion hook: a command run when a download completes
 * (option on-complete, like Transmission's script-torrent-done), with the
 * file in its environment:
 *
 *   SOVA_FILE_PATH  where the finished file is (absolute)
 *   SOVA_FILE_NAME  its name
 *   SOVA_FILE_ID    its Sova file ID (64 hex digits)
 *   SOVA_FILE_SIZE  its size in bytes
 *   SOVA_FILE_SHA256 its SHA-256 (what sha256sum prints)
 *
 * The command line is given to /bin/sh -c, started with posix_spawn(3) in
 * a process group of its own, stdin from /dev/null, stdout and stderr the
 * daemon's. The daemon never waits for it: SIGCHLD is an event on the loop
 * (evsignal), and each run has a timer; one still running after its
 * timeout is killed (SIGKILL to its process group, so what it started
 * goes too). Every outcome is logged on one line with the download's ID:
 * started, finished, failed (its exit status; 127: not found), killed by a
 * signal, or killed for its timeout. Runs are capped (OP_HOOK_MAX_RUNNING);
 * beyond, a completion's hook is not run, and that is logged.
 *
 * Loop thread only. The hook owns its children's bookkeeping; freeing it
 * (at shutdown) leaves running hooks alone, their exit unobserved. */
#ifndef SOVA_OP_HOOK_H
#define SOVA_OP_HOOK_H

#include <event2/event.h>
#include <stdint.h>

#define OP_HOOK_MAX_RUNNING 16 /* hooks running at once */

struct op_hook;

struct op_hook_file {
    const char *path, *name;
    const uint8_t *id;     /* 32 bytes */
    const uint8_t *sha256; /* 32 bytes, or NULL */
    uint64_t size;
};

/* NULL when out of memory (or SIGCHLD cannot be watched). */
struct op_hook *op_hook_new(struct event_base *base);
void op_hook_free(struct op_hook *h);

/* Run command (NULL or "": nothing) for file, killed after timeout_s
 * seconds (0: never). Never blocks. */
void op_hook_run(struct op_hook *h, const char *command, uint64_t timeout_s,
                 const struct op_hook_file *file);

/* Runs started, finished with status 0, failed (any other ending). */
struct op_hook_stats {
    uint64_t started, succeeded, failed, running;
};
void op_hook_stats(const struct op_hook *h, struct op_hook_stats *out);

#endif
