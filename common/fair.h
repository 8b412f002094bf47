/* fair.h - a pool shared fairly among groups of holders: the handshake
 * slots of a listener, the bytes its links buffer for frames not complete
 * yet, a supernode's relay circuits, links waiting for REGISTER, index
 * records (docs/LIMITS.md, "Fair shares").
 *
 * A pool has a capacity (0: none) and a cap per group (0: none). A holder
 * is the caller's object (a link, a circuit, a session) and belongs to one
 * group: the address prefix it comes from (fair_key_prefix: a /24 for IPv4,
 * a /56 for IPv6, what one home or one hosting customer gets), one address
 * (fair_key_addr), an identity, or any key of up to FAIR_KEY_MAX bytes. It
 * holds an amount: 1 for a slot, n for bytes. Before a holder (or a newcomer
 * of some key) takes more, the caller asks fair_check() (fair_check_key()):
 *
 *   FAIR_OK          its group stays within its cap and the pool within its
 *                    capacity: take it (fair_set, or fair_join a newcomer);
 *   FAIR_OVER_SHARE  its group would pass the cap per group: refuse it;
 *   FAIR_DISPLACE    the pool is full, but room can be made fairly: end
 *                    *victim (the caller closes what it stands for and
 *                    fair_leave()s it), then ask again;
 *   FAIR_FULL        the pool is full and no one holds more than is fair:
 *                    refuse it.
 *
 * Who gives way when the pool is full: the group holding the most. With
 * FAIR_VICTIM_OLDEST (slots) only to a group that, after taking its slot,
 * still holds fewer than that group had left (so two groups never pass a
 * slot back and forth, and shares converge to equal: max-min fairness); its
 * holder least recently joined or touched goes (fair_touch() marks a holder
 * active, e.g. a circuit that carried data). With FAIR_VICTIM_LARGEST
 * (bytes) to anyone: the holder of the most bytes in the group of the most
 * bytes goes, which may be the one asking.
 *
 * Pure: no clock, no I/O, no global state. Groups are found in a balanced
 * tree (tsearch: O(log groups), whatever keys a remote chooses, no hash to
 * flood) and the group holding the most is the top of a binary heap
 * (O(log groups) per change); a victim costs O(1) (OLDEST, holders of
 * amount 0 skipped) or O(holders of its group) (LARGEST). Memory: one group
 * (about 100 bytes) per distinct key held; holders are the caller's (embed
 * a struct fair_holder, zeroed). Not thread-safe. */
#ifndef SOVA_FAIR_H
#define SOVA_FAIR_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAIR_KEY_MAX 34 /* a tag byte and a node ID fit */

struct fair_pool;
struct fair_group;

/* The caller's part of a holder: zero it before use; in a pool while
 * group != NULL. Fields are the pool's (read amount if you like). */
struct fair_holder {
    struct fair_group *group;
    struct fair_holder *prev, *next; /* the group's holders, least recently joined/touched first */
    uint64_t amount;
    void *owner; /* the caller's object, handed back as a victim */
};

enum fair_victim {
    FAIR_VICTIM_OLDEST,  /* slots: the holder least recently joined or touched */
    FAIR_VICTIM_LARGEST, /* bytes: the holder of the most */
};

enum fair_verdict {
    FAIR_OK,
    FAIR_OVER_SHARE,
    FAIR_DISPLACE,
    FAIR_FULL,
};

/* "ok", "over share", "displace", "full". */
const char *fair_verdict_str(enum fair_verdict v);

/* A new empty pool; NULL when memory is short. */
struct fair_pool *fair_pool_new(uint64_t capacity, uint64_t group_cap, enum fair_victim victim);
/* Change the limits (a reload): what is held stays, only what is asked
 * from now on is checked. */
void fair_pool_set_limits(struct fair_pool *p, uint64_t capacity, uint64_t group_cap);
/* Free the pool and its groups; holders still in it are left with a stale
 * group (the caller is tearing everything down). NULL is fine. */
void fair_pool_free(struct fair_pool *p);

/* Put h (zeroed, or left) in the group of key with `amount` (taken without
 * a check: ask fair_check_key() first). 0, SOVA_ERR_INVALID (key longer
 * than FAIR_KEY_MAX or h in a pool already) or SOVA_ERR_NOMEM. */
int fair_join(struct fair_pool *p, struct fair_holder *h, const void *key, size_t key_len,
              uint64_t amount, void *owner);
/* h leaves (its amount goes back); an empty group is freed. A holder not
 * in the pool is fine. */
void fair_leave(struct fair_pool *p, struct fair_holder *h);
/* May h hold `more` on top of what it holds? See above. *victim is set
 * with FAIR_DISPLACE (may be h itself with FAIR_VICTIM_LARGEST), else
 * NULL. A holder not in the pool is always FAIR_OK. Nothing changes. */
enum fair_verdict fair_check(const struct fair_pool *p, const struct fair_holder *h, uint64_t more,
                             struct fair_holder **victim);
/* The same for a newcomer of group key that would hold `more`. */
enum fair_verdict fair_check_key(const struct fair_pool *p, const void *key, size_t key_len,
                                 uint64_t more, struct fair_holder **victim);
/* h now holds amount (no check: grow only after fair_check()). */
void fair_set(struct fair_pool *p, struct fair_holder *h, uint64_t amount);
/* h was active: the last of its group to go with FAIR_VICTIM_OLDEST. */
void fair_touch(struct fair_pool *p, struct fair_holder *h);

/* What the pool holds: in all, how many groups and holders, and the most
 * one group holds. */
uint64_t fair_used(const struct fair_pool *p);
size_t fair_groups(const struct fair_pool *p);
size_t fair_holders(const struct fair_pool *p);
uint64_t fair_top(const struct fair_pool *p);
/* What h's group holds (0 for a holder not in the pool), and what the
 * group of key holds (0 when none). */
uint64_t fair_group_amount(const struct fair_holder *h);
uint64_t fair_key_amount(const struct fair_pool *p, const void *key, size_t key_len);

/* Keys from addresses: the prefix (IPv4 /24, IPv6 /56) and the address
 * (IPv4 /32, IPv6 /64: one host or one home network). Return the length
 * written to key (at most FAIR_KEY_MAX); the family is part of the key. */
size_t fair_key_prefix(const struct wire_addr *a, uint8_t key[FAIR_KEY_MAX]);
size_t fair_key_addr(const struct wire_addr *a, uint8_t key[FAIR_KEY_MAX]);
/* "20.0.1.0/24", "2001:db8:0:100::/56" for logs (buf of 64 bytes). */
const char *fair_prefix_str(const struct wire_addr *a, char *buf, size_t cap);

#endif
