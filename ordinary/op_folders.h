/* op_folders.h - the peer's share folders, live: the --share folder of the
 * configuration plus those added at run time (`sova-peer share add DIR`,
 * kept in the store), scanned by one share worker (op_share.h) and watched
 * with inotify so that a file dropped in or removed is published or
 * unpublished at once (docs/SHARES.md).
 *
 * How it is driven. The inotify descriptor is an event on the daemon's
 * loop: any change under a folder (a file closed after writing, moved in
 * or out, deleted; a directory created; a folder itself deleted, moved
 * away or back) asks the worker for a rescan after OP_FOLDERS_SETTLE_MS,
 * coalesced. The scan walks every folder (stat only: the cache vouches
 * for unchanged files) and hashes what is new on the worker thread; it
 * adds the watches of directories it meets. An inotify queue overflow
 * rescans too; the periodic rescan of the daemon stays as the fallback
 * (and is the only way without inotify). A folder that cannot be opened is
 * reported missing (logged once, shown by status and `share list`): its
 * files are unpublished until it comes back.
 *
 * Adding or removing a folder replaces the share worker (op_share_free,
 * op_share_new over the new list): its first scan compares with the
 * store's rows, so the daemon's done callback sees the removed folder's
 * files as removed and the new folder's as added. The replaced hook tells
 * the daemon the new struct op_share (for serving and status); the old
 * one is freed after the hook returns.
 *
 * Everything here runs on the loop thread. op_folders_add/remove check
 * the folder with stat(2), access(2) and realpath(3) on the loop: local
 * metadata calls (a folder on a hung network mount would stall them).
 */
#ifndef SOVA_OP_FOLDERS_H
#define SOVA_OP_FOLDERS_H

#include "op_share.h"
#include "op_store.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define OP_FOLDERS_SETTLE_MS      150 /* from an inotify event to the rescan it asks for */
#define OP_FOLDERS_MAX            64  /* share folders at once */
#define OP_FOLDERS_READS_PER_TURN 16  /* inotify reads (16 KiB each) per loop turn */

struct op_folders;

struct op_folders_config {
    struct event_base *base;
    struct op_store *store;          /* the daemon's connection: the added folders */
    const char *db_path;             /* for the worker's own connection */
    const char *config_folder;       /* --share, or NULL */
    const char *state_dir;           /* a folder inside it is refused */
    const char *const *exclude_dirs; /* never shared (the downloads' part files) */
    size_t n_exclude_dirs;
    op_share_done_fn *done; /* each scan's result, on the loop */
    /* The share worker was replaced (a folder added or removed): use now
     * (NULL: no folder left) from here on. */
    void (*replaced)(struct op_share *now, void *arg);
    void *arg;
};

/* Load the added folders from the store, start the worker (when there is
 * a folder) and its first scan. cfg is copied. On error *out is NULL and
 * err says why. */
int op_folders_new(const struct op_folders_config *cfg, struct op_folders **out, char *err,
                   size_t errlen);
void op_folders_free(struct op_folders *f);

/* The current share worker, or NULL when no folder is shared. */
struct op_share *op_folders_share(const struct op_folders *f);
/* The periodic rescan: asked unless one is running. */
void op_folders_rescan(struct op_folders *f);

/* Share one more folder (absolute path), at once and after restarts. A
 * folder that does not exist, is not a folder, cannot be read, is shared
 * already, or is inside a shared folder or holds one: nothing changes,
 * SOVA_ERR_INVALID or SOVA_ERR_NOT_FOUND, and err says which in words. */
int op_folders_add(struct op_folders *f, const char *path, char *err, size_t errlen);
/* Stop sharing an added folder. SOVA_ERR_NOT_FOUND for a folder not
 * shared, SOVA_ERR_INVALID for the configuration's --share folder;
 * nothing changes then. */
int op_folders_remove(struct op_folders *f, const char *path, char *err, size_t errlen);

/* Share folders, those of them missing at the last scan, and the inotify
 * wake-ups that asked for a rescan. */
struct op_folders_stats {
    size_t folders, missing;
    uint64_t events;
};
void op_folders_stats(const struct op_folders *f, struct op_folders_stats *out);

/* [{path, origin: "config"|"added", state: "shared"|"missing"|"scanning",
 * error?, files, bytes, ignored, patterns}]: new reference. */
json_t *op_folders_json(const struct op_folders *f);

#endif
