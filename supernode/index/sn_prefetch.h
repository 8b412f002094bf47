/* sn_prefetch.h - SN_PREFETCH(p): a hint to start loading what p points to,
 * so that a search has many cache misses in flight at once instead of one
 * after the other (the index's passes, and the sources of each hit). */
#ifndef SOVA_SN_PREFETCH_H
#define SOVA_SN_PREFETCH_H

#if defined(__GNUC__) || defined(__clang__)
#define SN_PREFETCH(p) __builtin_prefetch(p)
#else
#define SN_PREFETCH(p) ((void)(p))
#endif

#endif
