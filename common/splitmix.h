/* splitmix.h - one step of splitmix64 (Steele, Lea and Flood 2014), the
 * small generator the sans-I/O modules and the peer's session draw from:
 * fast, 64 bits of state, every seed a good one. Not for secrets (OpenSSL's
 * RAND_bytes is); the caller seeds it (from RAND_bytes, or a test's fixed
 * seed) and owns the state. Pure.
 */
#ifndef SOVA_SPLITMIX_H
#define SOVA_SPLITMIX_H

#include <stdint.h>

static inline uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif
