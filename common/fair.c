/* fair.c - a pool shared fairly among groups of holders (fair.h). */
#include "fair.h"
#include "err.h"
#include "sova_assert.h"

#include <arpa/inet.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fair_group {
    uint8_t key[FAIR_KEY_MAX];
    uint8_t key_len;
    uint64_t amount;
    size_t holders;
    size_t heap_pos;
    struct fair_holder *head, *tail;
};

struct fair_pool {
    uint64_t capacity, group_cap, used;
    enum fair_victim victim;
    void *root;               /* tsearch tree of struct fair_group * */
    struct fair_group **heap; /* max-heap by amount */
    size_t n, cap;
    size_t holders;
};

const char *fair_verdict_str(enum fair_verdict v)
{
    switch (v) {
    case FAIR_OK:
        return "ok";
    case FAIR_OVER_SHARE:
        return "over share";
    case FAIR_DISPLACE:
        return "displace";
    case FAIR_FULL:
        return "full";
    }
    return "?";
}

static int group_cmp(const void *a, const void *b)
{
    const struct fair_group *x = a, *y = b;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return memcmp(x->key, y->key, x->key_len);
}

static struct fair_group *group_find(const struct fair_pool *p, const void *key, size_t len)
{
    if (len > FAIR_KEY_MAX)
        return NULL;
    struct fair_group probe = {.key_len = (uint8_t)len};
    memcpy(probe.key, key, len);
    void *const *node = tfind(&probe, &p->root, group_cmp);
    return node ? *node : NULL;
}

/* ---- the heap of groups by amount ------------------------------------------------ */

static void heap_place(struct fair_pool *p, size_t i, struct fair_group *g)
{
    p->heap[i] = g;
    g->heap_pos = i;
}

static void sift_up(struct fair_pool *p, size_t i)
{
    struct fair_group *g = p->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (p->heap[parent]->amount >= g->amount)
            break;
        heap_place(p, i, p->heap[parent]);
        i = parent;
    }
    heap_place(p, i, g);
}

static void sift_down(struct fair_pool *p, size_t i)
{
    struct fair_group *g = p->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, big = i;
        uint64_t best = g->amount;
        if (l < p->n && p->heap[l]->amount > best) {
            big = l;
            best = p->heap[l]->amount;
        }
        if (r < p->n && p->heap[r]->amount > best)
            big = r;
        if (big == i)
            break;
        heap_place(p, i, p->heap[big]);
        i = big;
    }
    heap_place(p, i, g);
}

static void heap_fix(struct fair_pool *p, struct fair_group *g)
{
    sift_up(p, g->heap_pos);
    sift_down(p, g->heap_pos);
}

static void heap_remove(struct fair_pool *p, struct fair_group *g)
{
    size_t i = g->heap_pos;
    SOVA_ASSERT(i < p->n && p->heap[i] == g);
    struct fair_group *last = p->heap[--p->n];
    if (last != g) {
        heap_place(p, i, last);
        heap_fix(p, last);
    }
}

/* ---- life ---------------------------------------------------------------------------- */

struct fair_pool *fair_pool_new(uint64_t capacity, uint64_t group_cap, enum fair_victim victim)
{
    struct fair_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->capacity = capacity;
    p->group_cap = group_cap;
    p->victim = victim;
    return p;
}

void fair_pool_set_limits(struct fair_pool *p, uint64_t capacity, uint64_t group_cap)
{
    p->capacity = capacity;
    p->group_cap = group_cap;
}

void fair_pool_free(struct fair_pool *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++) {
        tdelete(p->heap[i], &p->root, group_cmp);
        free(p->heap[i]);
    }
    free(p->heap);
    free(p);
}

/* ---- holders ------------------------------------------------------------------------- */

static struct fair_group *group_make(struct fair_pool *p, const void *key, size_t len)
{
    struct fair_group *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->key_len = (uint8_t)len;
    memcpy(g->key, key, len);
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        struct fair_group **heap = realloc(p->heap, cap * sizeof(*heap));
        if (heap == NULL) {
            free(g);
            return NULL;
        }
        p->heap = heap;
        p->cap = cap;
    }
    void **node = tsearch(g, &p->root, group_cmp);
    if (node == NULL) {
        free(g);
        return NULL;
    }
    SOVA_ASSERT(*node == g); /* group_find found none */
    heap_place(p, p->n++, g);
    return g;
}

static void list_append(struct fair_group *g, struct fair_holder *h)
{
    h->next = NULL;
    h->prev = g->tail;
    if (g->tail)
        g->tail->next = h;
    else
        g->head = h;
    g->tail = h;
}

static void list_unlink(struct fair_group *g, struct fair_holder *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        g->head = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        g->tail = h->prev;
    h->prev = h->next = NULL;
}

int fair_join(struct fair_pool *p, struct fair_holder *h, const void *key, size_t key_len,
              uint64_t amount, void *owner)
{
    if (key_len > FAIR_KEY_MAX || h->group != NULL)
        return SOVA_ERR_INVALID;
    struct fair_group *g = group_find(p, key, key_len);
    if (g == NULL && (g = group_make(p, key, key_len)) == NULL)
        return SOVA_ERR_NOMEM;
    h->group = g;
    h->owner = owner;
    h->amount = amount;
    list_append(g, h);
    g->holders++;
    g->amount += amount;
    p->used += amount;
    p->holders++;
    sift_up(p, g->heap_pos);
    return 0;
}

void fair_leave(struct fair_pool *p, struct fair_holder *h)
{
    struct fair_group *g = h->group;
    if (g == NULL)
        return;
    SOVA_ASSERT(g->holders > 0 && g->amount >= h->amount && p->used >= h->amount);
    list_unlink(g, h);
    g->holders--;
    g->amount -= h->amount;
    p->used -= h->amount;
    p->holders--;
    h->group = NULL;
    h->amount = 0;
    if (g->holders > 0) {
        sift_down(p, g->heap_pos);
        return;
    }
    SOVA_ASSERT(g->amount == 0);
    heap_remove(p, g);
    tdelete(g, &p->root, group_cmp);
    free(g);
}

void fair_set(struct fair_pool *p, struct fair_holder *h, uint64_t amount)
{
    struct fair_group *g = h->group;
    if (g == NULL || amount == h->amount)
        return;
    SOVA_ASSERT(g->amount >= h->amount && p->used >= h->amount);
    g->amount = g->amount - h->amount + amount;
    p->used = p->used - h->amount + amount;
    bool grew = amount > h->amount;
    h->amount = amount;
    if (grew)
        sift_up(p, g->heap_pos);
    else
        sift_down(p, g->heap_pos);
}

void fair_touch(struct fair_pool *p, struct fair_holder *h)
{
    (void)p;
    struct fair_group *g = h->group;
    if (g == NULL || g->tail == h)
        return;
    list_unlink(g, h);
    list_append(g, h);
}

/* ---- the verdict --------------------------------------------------------------------- */

static struct fair_holder *oldest_holding(const struct fair_group *g)
{
    for (struct fair_holder *h = g->head; h; h = h->next)
        if (h->amount > 0)
            return h;
    return NULL;
}

static struct fair_holder *largest_holding(const struct fair_group *g)
{
    struct fair_holder *best = NULL;
    for (struct fair_holder *h = g->head; h; h = h->next)
        if (h->amount > 0 && (best == NULL || h->amount > best->amount))
            best = h;
    return best;
}

/* g: the group asking (NULL for a key not held yet), holding `held`. */
static enum fair_verdict check(const struct fair_pool *p, const struct fair_group *g, uint64_t held,
                               uint64_t more, struct fair_holder **victim)
{
    *victim = NULL;
    if (p->group_cap != 0 && (more > p->group_cap || held > p->group_cap - more))
        return FAIR_OVER_SHARE;
    if (p->capacity == 0 || (more <= p->capacity && p->used <= p->capacity - more))
        return FAIR_OK;
    if (more > p->capacity || p->n == 0)
        return FAIR_FULL;
    const struct fair_group *top = p->heap[0];
    if (p->victim == FAIR_VICTIM_OLDEST) {
        /* Only a group that still holds less than the top after taking
         * its part: shares converge, nothing passes back and forth. */
        if (top == g || held + more >= top->amount)
            return FAIR_FULL;
        *victim = oldest_holding(top);
    } else {
        *victim = largest_holding(top);
    }
    return *victim ? FAIR_DISPLACE : FAIR_FULL;
}

enum fair_verdict fair_check(const struct fair_pool *p, const struct fair_holder *h, uint64_t more,
                             struct fair_holder **victim)
{
    *victim = NULL;
    if (h->group == NULL)
        return FAIR_OK;
    return check(p, h->group, h->group->amount, more, victim);
}

enum fair_verdict fair_check_key(const struct fair_pool *p, const void *key, size_t key_len,
                                 uint64_t more, struct fair_holder **victim)
{
    const struct fair_group *g = group_find(p, key, key_len);
    return check(p, g, g ? g->amount : 0, more, victim);
}

/* ---- numbers ----------------------------------------------------------------------- */

uint64_t fair_used(const struct fair_pool *p)
{
    return p->used;
}

size_t fair_groups(const struct fair_pool *p)
{
    return p->n;
}

size_t fair_holders(const struct fair_pool *p)
{
    return p->holders;
}

uint64_t fair_top(const struct fair_pool *p)
{
    return p->n ? p->heap[0]->amount : 0;
}

uint64_t fair_group_amount(const struct fair_holder *h)
{
    return h->group ? h->group->amount : 0;
}

uint64_t fair_key_amount(const struct fair_pool *p, const void *key, size_t key_len)
{
    const struct fair_group *g = group_find(p, key, key_len);
    return g ? g->amount : 0;
}

/* ---- keys ---------------------------------------------------------------------------- */

static size_t key_of(const struct wire_addr *a, size_t v4_bytes, size_t v6_bytes,
                     uint8_t key[FAIR_KEY_MAX])
{
    size_t n = a->family == WIRE_ADDR_IPV4 ? v4_bytes : v6_bytes;
    key[0] = a->family;
    memcpy(key + 1, a->ip, n);
    return n + 1;
}

size_t fair_key_prefix(const struct wire_addr *a, uint8_t key[FAIR_KEY_MAX])
{
    return key_of(a, 3, 7, key); /* /24, /56 */
}

size_t fair_key_addr(const struct wire_addr *a, uint8_t key[FAIR_KEY_MAX])
{
    return key_of(a, 4, 8, key); /* /32, /64 */
}

const char *fair_prefix_str(const struct wire_addr *a, char *buf, size_t cap)
{
    uint8_t ip[16] = {0};
    char text[INET6_ADDRSTRLEN];
    bool v4 = a->family == WIRE_ADDR_IPV4;
    memcpy(ip, a->ip, v4 ? 3 : 7);
    if (inet_ntop(v4 ? AF_INET : AF_INET6, ip, text, sizeof(text)) == NULL)
        snprintf(text, sizeof(text), "?");
    snprintf(buf, cap, "%s/%d", text, v4 ? 24 : 56);
    return buf;
}
