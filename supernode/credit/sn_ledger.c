/* sn_ledger.c - the credit records this supernode holds (sn_ledger.h). */
#include "sn_ledger.h"
#include "err.h"
#include "sn_credit.h"
#include "sn_hashtab.h"
#include "sova_assert.h"

#include <stdlib.h>
#include <string.h>

struct entries {
    struct msg_ledger_entry *v;
    size_t n, cap;
};

struct record {
    uint8_t id[WIRE_ID_LEN];
    uint64_t base_up, base_down, base_uptime;
    uint64_t horizon_s, session_horizon_ms;
    struct entries up, down;
    struct msg_ledger_session sess[MSG_MAX_LEDGER_SESSIONS];
    size_t n_sess;
    bool dirty; /* in the ledger's dirty list */
};

struct sn_ledger {
    struct sn_ledger_config cfg;
    struct record **recs; /* id in the table = index here */
    size_t n, cap;
    struct sn_hashtab table;
    struct sn_ledger_stats st;
    uint8_t (*dirty)[WIRE_ID_LEN]; /* changed or gone since the last take (track_dirty) */
    size_t n_dirty, cap_dirty;
};

/* Remember that id changed; false when memory is short (then the store
 * misses it until its next change: the other holders still have it). */
static bool dirty_push(struct sn_ledger *l, const uint8_t id[WIRE_ID_LEN])
{
    if (l->n_dirty == l->cap_dirty) {
        size_t cap = l->cap_dirty ? l->cap_dirty * 2 : 64;
        uint8_t(*v)[WIRE_ID_LEN] = realloc(l->dirty, cap * sizeof(*v));
        if (v == NULL)
            return false;
        l->dirty = v;
        l->cap_dirty = cap;
    }
    memcpy(l->dirty[l->n_dirty++], id, WIRE_ID_LEN);
    return true;
}

static void mark(struct sn_ledger *l, struct record *r)
{
    if (l->cfg.track_dirty && !r->dirty)
        r->dirty = dirty_push(l, r->id);
}

static uint32_t key_hash(const struct sn_ledger *l, const uint8_t id[WIRE_ID_LEN])
{
    return (uint32_t)sn_hashtab_siphash(l->cfg.hash_key, id, WIRE_ID_LEN);
}

static bool key_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct sn_ledger *l = ctx;
    return memcmp(l->recs[idx]->id, key, WIRE_ID_LEN) == 0;
}

static struct record *find(const struct sn_ledger *l, const uint8_t id[WIRE_ID_LEN])
{
    uint32_t i = sn_hashtab_find(&l->table, key_hash(l, id), key_eq, l, id);
    return i == SN_HASHTAB_NONE ? NULL : l->recs[i];
}

/* The record of id, made if needed; NULL when the ledger is full. */
static struct record *get_or_add(struct sn_ledger *l, const uint8_t id[WIRE_ID_LEN])
{
    struct record *r = find(l, id);
    if (r != NULL)
        return r;
    if (l->n >= l->cfg.max_records) {
        l->st.dropped_full++;
        return NULL;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct record **p = realloc(l->recs, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        l->recs = p;
        l->cap = cap;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL || sn_hashtab_insert(&l->table, key_hash(l, id), (uint32_t)l->n) != 0) {
        free(r);
        return NULL;
    }
    memcpy(r->id, id, WIRE_ID_LEN);
    l->recs[l->n++] = r;
    return r;
}

static void record_free(struct record *r)
{
    free(r->up.v);
    free(r->down.v);
    free(r);
}

struct sn_ledger *sn_ledger_new(const struct sn_ledger_config *cfg)
{
    struct sn_ledger *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->cfg = *cfg;
    if (l->cfg.max_age_s == 0)
        l->cfg.max_age_s = SN_LEDGER_MAX_AGE_S;
    if (l->cfg.max_future_s == 0)
        l->cfg.max_future_s = SN_LEDGER_MAX_FUTURE_S;
    sn_hashtab_init(&l->table);
    return l;
}

void sn_ledger_clear(struct sn_ledger *l)
{
    for (size_t i = 0; i < l->n; i++)
        record_free(l->recs[i]);
    l->n = 0;
    l->st.entries = 0;
    sn_hashtab_free(&l->table);
    sn_hashtab_init(&l->table);
    l->n_dirty = 0;
}

void sn_ledger_free(struct sn_ledger *l)
{
    if (l == NULL)
        return;
    sn_ledger_clear(l);
    free(l->recs);
    free(l->dirty);
    free(l);
}

bool sn_ledger_has(const struct sn_ledger *l, const uint8_t peer_id[WIRE_ID_LEN])
{
    return find(l, peer_id) != NULL;
}

size_t sn_ledger_take_dirty(struct sn_ledger *l, uint8_t (*out)[WIRE_ID_LEN], size_t cap)
{
    size_t n = 0;
    while (n < cap && l->n_dirty > 0) {
        const uint8_t *id = l->dirty[--l->n_dirty];
        struct record *r = find(l, id);
        if (r != NULL)
            r->dirty = false;
        memcpy(out[n++], id, WIRE_ID_LEN);
    }
    return n;
}

void sn_ledger_touch(struct sn_ledger *l, const uint8_t peer_id[WIRE_ID_LEN])
{
    if (!l->cfg.track_dirty)
        return;
    struct record *r = find(l, peer_id);
    if (r != NULL)
        mark(l, r);
    else
        dirty_push(l, peer_id);
}

size_t sn_ledger_dirty_count(const struct sn_ledger *l)
{
    return l->n_dirty;
}

void sn_ledger_remove(struct sn_ledger *l, const uint8_t id[WIRE_ID_LEN])
{
    uint32_t h = key_hash(l, id);
    uint32_t i = sn_hashtab_find(&l->table, h, key_eq, l, id);
    if (i == SN_HASHTAB_NONE)
        return;
    sn_hashtab_remove(&l->table, h, i);
    size_t had = l->recs[i]->up.n + l->recs[i]->down.n;
    SOVA_ASSERT(l->st.entries >= had); /* every entry of every record is counted */
    l->st.entries -= had;
    if (l->cfg.track_dirty)
        dirty_push(l, id); /* the store deletes it */
    record_free(l->recs[i]);
    size_t last = l->n - 1;
    if (i != last) {
        l->recs[i] = l->recs[last];
        sn_hashtab_replace(&l->table, key_hash(l, l->recs[i]->id), (uint32_t)last, i);
    }
    l->n--;
}

/* ---- entries ------------------------------------------------------------------- */

static struct msg_ledger_entry *entry_find(struct entries *e, const uint8_t id[WIRE_ID_LEN])
{
    for (size_t i = 0; i < e->n; i++)
        if (memcmp(e->v[i].peer_id, id, WIRE_ID_LEN) == 0)
            return &e->v[i];
    return NULL;
}

/* Fold the entry last heard of longest ago into the base numbers. */
static void fold_oldest(struct sn_ledger *l, struct record *r, struct entries *e, bool up)
{
    size_t old = 0;
    for (size_t i = 1; i < e->n; i++)
        if (e->v[i].last_time < e->v[old].last_time)
            old = i;
    const struct msg_ledger_entry *x = &e->v[old];
    if (up)
        r->base_up = sn_sat_add(r->base_up, x->bytes);
    else
        r->base_down = sn_sat_add(r->base_down, x->bytes);
    if (x->last_time > r->horizon_s)
        r->horizon_s = x->last_time;
    e->v[old] = e->v[--e->n];
    l->st.entries--;
}

/* A new entry for id (zeroed but for the ID); NULL when out of memory. */
static struct msg_ledger_entry *entry_add(struct sn_ledger *l, struct record *r, struct entries *e,
                                          bool up, const uint8_t id[WIRE_ID_LEN])
{
    if (e->n == MSG_MAX_LEDGER_ENTRIES)
        fold_oldest(l, r, e, up);
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        struct msg_ledger_entry *v = realloc(e->v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        e->v = v;
        e->cap = cap;
    }
    struct msg_ledger_entry *x = &e->v[e->n++];
    memset(x, 0, sizeof(*x));
    memcpy(x->peer_id, id, WIRE_ID_LEN);
    l->st.entries++;
    /* What a LEDGER_PUT can carry, and what the store reads back, relies on it. */
    SOVA_ASSERT(e->n <= MSG_MAX_LEDGER_ENTRIES);
    return x;
}

/* Count receipt r in record rec (side up: rec is the source's). */
static enum receipt_verdict count_side(struct sn_ledger *l, struct record *rec, bool up,
                                       const struct msg_receipt *r)
{
    struct entries *e = up ? &rec->up : &rec->down;
    const uint8_t *other = up ? r->downloader_id : r->source_id;
    struct msg_ledger_entry *x = entry_find(e, other);
    if (x != NULL && r->seq <= x->last_seq)
        return RECEIPT_REPLAYED;
    if (x == NULL && r->time_s <= rec->horizon_s)
        return RECEIPT_STALE; /* it may be in a folded entry */
    if (x == NULL && (x = entry_add(l, rec, e, up, other)) == NULL)
        return RECEIPT_STALE; /* out of memory: not counted */
    x->last_seq = r->seq;
    if (r->time_s > x->last_time)
        x->last_time = r->time_s;
    x->bytes = sn_sat_add(x->bytes, r->bytes);
    mark(l, rec);
    return RECEIPT_OK;
}

enum receipt_verdict sn_ledger_apply(struct sn_ledger *l, const struct msg_receipt *r,
                                     uint8_t sides, uint64_t now_s)
{
    enum receipt_verdict v = RECEIPT_OK;
    if (memcmp(r->downloader_id, r->source_id, WIRE_ID_LEN) == 0)
        v = RECEIPT_MISDIRECTED;
    else if (receipt_check_size(r) != RECEIPT_OK)
        v = RECEIPT_BAD_SIZE; /* bytes beyond the size its file ID commits to */
    else if (sn_sat_add(r->time_s, l->cfg.max_age_s) < now_s ||
             r->time_s > sn_sat_add(now_s, l->cfg.max_future_s))
        v = RECEIPT_STALE;
    for (int side = 0; v == RECEIPT_OK && side < 2; side++) {
        bool up = side == 0;
        if (!(sides & (up ? MSG_LEDGER_SIDE_SOURCE : MSG_LEDGER_SIDE_DOWNLOADER)))
            continue;
        struct record *rec = get_or_add(l, up ? r->source_id : r->downloader_id);
        if (rec == NULL)
            continue; /* counted in dropped_full */
        enum receipt_verdict s = count_side(l, rec, up, r);
        if (s != RECEIPT_OK)
            v = s;
        else
            l->st.applied++;
    }
    if (v != RECEIPT_OK)
        l->st.rejected[v]++;
    return v;
}

/* ---- sessions ------------------------------------------------------------------- */

/* True when r changed. */
static bool session_put(struct record *r, const uint8_t sn_id[WIRE_ID_LEN], uint64_t start_ms,
                        uint64_t seconds)
{
    for (size_t i = 0; i < r->n_sess; i++) {
        struct msg_ledger_session *s = &r->sess[i];
        if (s->start_ms == start_ms && memcmp(s->sn_id, sn_id, WIRE_ID_LEN) == 0) {
            if (seconds <= s->seconds)
                return false;
            s->seconds = seconds;
            return true;
        }
    }
    if (start_ms <= r->session_horizon_ms)
        return false; /* folded already */
    if (r->n_sess == MSG_MAX_LEDGER_SESSIONS) {
        size_t old = 0;
        for (size_t i = 1; i < r->n_sess; i++)
            if (r->sess[i].start_ms < r->sess[old].start_ms)
                old = i;
        r->base_uptime = sn_sat_add(r->base_uptime, r->sess[old].seconds);
        if (r->sess[old].start_ms > r->session_horizon_ms)
            r->session_horizon_ms = r->sess[old].start_ms;
        r->sess[old] = r->sess[--r->n_sess];
        if (start_ms <= r->session_horizon_ms)
            return true;
    }
    struct msg_ledger_session *s = &r->sess[r->n_sess++];
    memcpy(s->sn_id, sn_id, WIRE_ID_LEN);
    s->start_ms = start_ms;
    s->seconds = seconds;
    return true;
}

void sn_ledger_uptime(struct sn_ledger *l, const uint8_t peer_id[WIRE_ID_LEN],
                      const uint8_t sn_id[WIRE_ID_LEN], uint64_t start_ms, uint64_t seconds)
{
    struct record *r = get_or_add(l, peer_id);
    if (r == NULL)
        return;
    l->st.uptime_reports++;
    if (session_put(r, sn_id, start_ms, seconds))
        mark(l, r);
}

/* ---- reading, export and merge ---------------------------------------------------- */

bool sn_ledger_get(const struct sn_ledger *l, const uint8_t peer_id[WIRE_ID_LEN],
                   struct msg_credit_record *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->peer_id, peer_id, WIRE_ID_LEN);
    const struct record *r = find(l, peer_id);
    if (r == NULL)
        return false;
    out->found = 1;
    out->uploaded = r->base_up;
    out->downloaded = r->base_down;
    out->uptime_s = r->base_uptime;
    for (size_t i = 0; i < r->up.n; i++)
        out->uploaded = sn_sat_add(out->uploaded, r->up.v[i].bytes);
    for (size_t i = 0; i < r->down.n; i++)
        out->downloaded = sn_sat_add(out->downloaded, r->down.v[i].bytes);
    for (size_t i = 0; i < r->n_sess; i++)
        out->uptime_s = sn_sat_add(out->uptime_s, r->sess[i].seconds);
    return true;
}

bool sn_ledger_export(const struct sn_ledger *l, const uint8_t peer_id[WIRE_ID_LEN],
                      struct msg_ledger_put *out)
{
    memset(out, 0, sizeof(*out));
    struct record *r = find(l, peer_id);
    if (r == NULL)
        return false;
    memcpy(out->peer_id, r->id, WIRE_ID_LEN);
    out->base_uploaded = r->base_up;
    out->base_downloaded = r->base_down;
    out->base_uptime_s = r->base_uptime;
    out->horizon_s = r->horizon_s;
    out->session_horizon_ms = r->session_horizon_ms;
    out->uploads = r->up.v;
    out->n_uploads = r->up.n;
    out->downloads = r->down.v;
    out->n_downloads = r->down.n;
    out->sessions = r->sess;
    out->n_sessions = r->n_sess;
    return true;
}

/* Entries at or before the horizon are in the base numbers now. True
 * when one went. */
static bool drop_folded(struct sn_ledger *l, struct entries *e, uint64_t horizon)
{
    bool dropped = false;
    for (size_t i = 0; i < e->n;) {
        if (e->v[i].last_time <= horizon) {
            e->v[i] = e->v[--e->n];
            SOVA_ASSERT(l->st.entries > 0);
            l->st.entries--;
            dropped = true;
        } else {
            i++;
        }
    }
    return dropped;
}

/* True when an entry was added or replaced. */
static bool merge_entries(struct sn_ledger *l, struct record *r, struct entries *e, bool up,
                          const struct msg_ledger_entry *in, size_t n)
{
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        struct msg_ledger_entry *x = entry_find(e, in[i].peer_id);
        if (x == NULL) {
            if (in[i].last_time <= r->horizon_s)
                continue;
            x = entry_add(l, r, e, up, in[i].peer_id);
            if (x == NULL)
                return changed;
        } else if (in[i].last_seq <= x->last_seq) {
            continue;
        }
        *x = in[i];
        changed = true;
    }
    return changed;
}

/* *into = max(*into, v); true when it grew. */
static bool raise_to(uint64_t *into, uint64_t v)
{
    if (v <= *into)
        return false;
    *into = v;
    return true;
}

void sn_ledger_merge(struct sn_ledger *l, const struct msg_ledger_put *p)
{
    struct record *r = get_or_add(l, p->peer_id);
    if (r == NULL)
        return;
    l->st.merged++;
    bool changed = r->up.n + r->down.n + r->n_sess == 0; /* new, perhaps */
    changed |= raise_to(&r->base_up, p->base_uploaded);
    changed |= raise_to(&r->base_down, p->base_downloaded);
    changed |= raise_to(&r->base_uptime, p->base_uptime_s);
    changed |= raise_to(&r->horizon_s, p->horizon_s);
    changed |= raise_to(&r->session_horizon_ms, p->session_horizon_ms);
    changed |= drop_folded(l, &r->up, r->horizon_s);
    changed |= drop_folded(l, &r->down, r->horizon_s);
    changed |= merge_entries(l, r, &r->up, true, p->uploads, p->n_uploads);
    changed |= merge_entries(l, r, &r->down, false, p->downloads, p->n_downloads);
    for (size_t i = 0; i < r->n_sess;) {
        if (r->sess[i].start_ms <= r->session_horizon_ms) {
            r->sess[i] = r->sess[--r->n_sess];
            changed = true;
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < p->n_sessions; i++)
        changed |=
            session_put(r, p->sessions[i].sn_id, p->sessions[i].start_ms, p->sessions[i].seconds);
    if (changed)
        mark(l, r);
}

uint8_t (*sn_ledger_keys(const struct sn_ledger *l, size_t *n))[WIRE_ID_LEN]
{
    *n = 0;
    if (l->n == 0)
        return NULL;
    uint8_t(*keys)[WIRE_ID_LEN] = malloc(l->n * sizeof(*keys));
    if (keys == NULL)
        return NULL;
    for (size_t i = 0; i < l->n; i++)
        memcpy(keys[i], l->recs[i]->id, WIRE_ID_LEN);
    *n = l->n;
    return keys;
}

void sn_ledger_stats(const struct sn_ledger *l, struct sn_ledger_stats *out)
{
    *out = l->st;
    out->records = l->n;
}
