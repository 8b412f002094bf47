/* op_sched.h - which chunk of a download to ask which source for.
 *
 * Pure and sans-I/O (STYLE.md 3): the download code reports what happened
 * (a source joined, a chunk verified or failed, a source went away) and asks
 * what to request next. Policy:
 *  - each source has at most OP_SCHED_PIPELINE chunks in flight;
 *  - a source gets the lowest missing chunk that is not in flight, skipping
 *    chunks it already served wrongly;
 *  - when nothing is left but chunks in flight elsewhere (the end game), an
 *    idle source may take a duplicate of the oldest one, so one slow source
 *    cannot hold up the end; the first verified copy wins;
 *  - a source whose chunks fail verification OP_SCHED_MAX_FAILURES times is
 *    banned for this download.
 * Sources are small integers chosen by the caller (0..OP_SCHED_MAX_SOURCES-1).
 * The scheduler owns its memory; nothing here blocks.
 */
#ifndef SOVA_OP_SCHED_H
#define SOVA_OP_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OP_SCHED_MAX_SOURCES  16
#define OP_SCHED_PIPELINE     2 /* chunks in flight per source */
#define OP_SCHED_MAX_FAILURES 2 /* bad chunks before a source is banned */

struct op_sched;

/* n_chunks chunks; have (may be NULL) is a bitmap of chunks already verified
 * in op_store's layout: chunk i is have[i / 8] & (0x80 >> (i % 8)). NULL on
 * allocation failure. */
struct op_sched *op_sched_new(uint32_t n_chunks, const uint8_t *have);
void op_sched_free(struct op_sched *s);

/* The next chunk source should fetch, marked in flight for it; -1 if none
 * now (pipeline full, banned, or nothing left for it). */
int64_t op_sched_next(struct op_sched *s, unsigned source);

/* Outcome of a chunk source delivered. ok: verified and stored. Returns true
 * if this failure got the source banned. A verified duplicate is ignored. */
bool op_sched_done(struct op_sched *s, uint32_t chunk, unsigned source, bool ok);

/* A chunk verified without a source (read from a finished copy of the
 * file): marked had, as op_sched_done(ok) does. */
void op_sched_mark(struct op_sched *s, uint32_t chunk);

/* A chunk source delivered fine that we could not keep (the disk is full):
 * it becomes missing again, nobody is blamed. */
void op_sched_release(struct op_sched *s, uint32_t chunk, unsigned source);

/* The source went away: its chunks in flight become available again. */
void op_sched_source_lost(struct op_sched *s, unsigned source);
/* The source's index is given to another source (its own was banned):
 * everything about it is forgotten — in flight, failures, ban, the chunks
 * it served wrongly. */
void op_sched_source_forget(struct op_sched *s, unsigned source);

bool op_sched_banned(const struct op_sched *s, unsigned source);
bool op_sched_have(const struct op_sched *s, uint32_t chunk);
uint32_t op_sched_have_count(const struct op_sched *s);
uint32_t op_sched_chunks(const struct op_sched *s);
bool op_sched_complete(const struct op_sched *s);
/* Chunks source has in flight now. */
unsigned op_sched_inflight(const struct op_sched *s, unsigned source);
/* Bitmap of verified chunks: (n_chunks + 7) / 8 bytes, borrowed. */
const uint8_t *op_sched_bitmap(const struct op_sched *s);

#endif
