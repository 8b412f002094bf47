/* op_slots.h - who a source uploads to when more peers ask than it has
 * upload slots (docs/CREDITS.md, "Priority"). Sans-I/O: the caller passes
 * the time and an opaque handle per requester (op_serve.c: its upload).
 *
 * A requester with GETs queued wants a slot. Free slots go to the waiting
 * requester ranked best: first any that has waited max_wait_ms or more
 * since it was last served (longest wait first), then the most credit,
 * then the longest wait. A slot holder keeps its slot while it has GETs,
 * but at each chunk it completes it yields to a waiting requester that
 * outranks it (one that is starving, or has more credit): so the richest
 * requester is served first, and everyone else still gets a chunk at
 * least every max_wait_ms. A requester with no credit is served, later.
 *
 * Memory: one small entry per requester (the caller's links are bounded).
 * Not thread-safe; nothing blocks.
 */
#ifndef SOVA_OP_SLOTS_H
#define SOVA_OP_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct op_slots;

/* slots >= 1. NULL when out of memory. */
struct op_slots *op_slots_new(unsigned slots, uint64_t max_wait_ms);
void op_slots_free(struct op_slots *s);
/* New settings (reload); holders beyond a smaller count yield at their
 * next chunk. */
void op_slots_configure(struct op_slots *s, unsigned slots, uint64_t max_wait_ms);

/* who has something to send: it waits (or keeps its slot). 0 or
 * SOVA_ERR_NOMEM. */
int op_slots_want(struct op_slots *s, const void *who, uint64_t credit, uint64_t now_ms);
/* Its credit became known or changed. Unknown handles are ignored. */
void op_slots_set_credit(struct op_slots *s, const void *who, uint64_t credit);
/* who has nothing more to send, or is gone: its slot (if any) is free. */
void op_slots_leave(struct op_slots *s, const void *who);
bool op_slots_holds(const struct op_slots *s, const void *who);
/* who (a holder) finished a chunk: true if it keeps its slot, false if it
 * yields to a better waiter (it then waits again, as served now). */
bool op_slots_chunk_done(struct op_slots *s, const void *who, uint64_t now_ms);
/* Give a free slot to the best waiter: returns it, or NULL when no slot is
 * free or nobody waits. Call until NULL. */
const void *op_slots_grant(struct op_slots *s, uint64_t now_ms);

size_t op_slots_waiting(const struct op_slots *s);
size_t op_slots_held(const struct op_slots *s);

#endif
