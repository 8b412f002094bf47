/* op_fetch_source.c - one source of a download: reach it (the connection
 * ladder of nat_path.h: direct TLS, else connection reversal, else a relay
 * hole punch, else a relay circuit; always TLS with the peer<->peer policy,
 * so whatever the way, the
 * other end must hold the source's key), fetch the manifest and check it
 * against the file ID, request chunks, receive and verify them against the
 * checked manifest, retry with backoff, ban a source that lied. */
#define SOVA_OP_FETCH_INTERNAL
#include "err.h"
#include "fileid.h"
#include "log.h"
#include "op_fetch_int.h"
#include "sova_assert.h"

#include <ifaddrs.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void source_connect(struct fetch_source *s);
static void source_connect_direct(struct fetch_source *s);
static void probe_failed(struct fetch_source *s, const char *why);
static void probe_cancel(struct fetch_source *s);
static void path_failed(struct fetch_source *s, const char *why);

static uint32_t chunk_len(const struct download *dl, uint32_t index)
{
    uint64_t start = (uint64_t)index * dl->chunk_size;
    uint64_t left = dl->size - start;
    return left < dl->chunk_size ? (uint32_t)left : dl->chunk_size;
}

static void source_schedule_retry(struct fetch_source *s)
{
    if (s->state == SRC_BANNED || s->dl->state != OP_FETCH_RUNNING)
        return;
    s->state = SRC_IDLE;
    s->path = NAT_PATH_NONE;
    s->failed = NAT_PATH_NONE; /* the next round starts from the cheapest way */
    unsigned jitter = s->retry_ms / 4 ? (unsigned)(random() % (s->retry_ms / 4)) : 0;
    fetch_set_timer_ms(s->retry, s->retry_ms + jitter);
    s->retry_ms = s->retry_ms * 2 > FETCH_RETRY_MAX_MS ? FETCH_RETRY_MAX_MS : s->retry_ms * 2;
    /* Its address may have changed (a restarted peer): ask the supernode. */
    if (s->dl->f->env.locate)
        s->dl->f->env.locate(s->peer_id, s->dl->f->env.arg);
}

static void source_release_slots(struct fetch_source *s)
{
    for (unsigned i = 0; i < OP_SCHED_PIPELINE; i++)
        s->slots[i].index = -1;
    if (s->dl->sched)
        op_sched_source_lost(s->dl->sched, s->idx);
}

void source_send_manifest_get(struct fetch_source *s)
{
    struct download *dl = s->dl;
    struct msg m = {.type = MSG_MANIFEST_GET};
    memcpy(m.u.manifest_get.file_id, dl->id, WIRE_HASH_LEN);
    m.u.manifest_get.chunk_size = dl->chunk_size;
    m.u.manifest_get.first_chunk = dl->m.have;
    /* The first page: as many as a page holds (an empty file's has none);
     * then what is left, asked only while something is (never 0). */
    uint32_t left = dl->m.started ? dl->m.n_chunks - dl->m.have : FETCH_MANIFEST_PAGE;
    SOVA_ASSERT(left > 0);
    m.u.manifest_get.count = left < FETCH_MANIFEST_PAGE ? left : FETCH_MANIFEST_PAGE;
    dl->m.from = s;
    s->manifest_asked = true;
    link_send(s->link, &m);
}

void source_request(struct fetch_source *s)
{
    struct download *dl = s->dl;
    if (s->state != SRC_OPEN || dl->sched == NULL || dl->state != OP_FETCH_RUNNING ||
        dl->local_path != NULL)
        return;
    for (unsigned i = 0; i < OP_SCHED_PIPELINE; i++) {
        struct fetch_chunk *slot = &s->slots[i];
        if (slot->index >= 0)
            continue;
        int64_t c = op_sched_next(dl->sched, s->idx);
        if (c < 0)
            return;
        uint32_t len = chunk_len(dl, (uint32_t)c);
        if (slot->cap < len) {
            uint8_t *p = realloc(slot->data, len);
            if (p == NULL) {
                op_sched_done(dl->sched, (uint32_t)c, s->idx, true); /* never */
                return;
            }
            slot->data = p;
            slot->cap = len;
        }
        slot->index = c;
        slot->got = 0;
        slot->len = len;
        struct msg m = {.type = MSG_GET};
        memcpy(m.u.get.file_id, dl->id, WIRE_HASH_LEN);
        m.u.get.chunk_size = dl->chunk_size;
        m.u.get.first_chunk = (uint32_t)c;
        m.u.get.count = 1;
        link_send(s->link, &m);
    }
}

/* The ways the download's sources were reached, for `get` and status. */
static void note_path(struct download *dl, enum nat_path p)
{
    dl->paths_used |= 1u << p;
    size_t used = 0;
    dl->via[0] = '\0';
    for (int i = NAT_PATH_DIRECT; i <= NAT_PATH_RELAY; i++) {
        if (!(dl->paths_used & (1u << i)))
            continue;
        int w = snprintf(dl->via + used, sizeof(dl->via) - used, "%s%s", used ? "+" : "",
                         nat_path_str((enum nat_path)i));
        if (w > 0 && (size_t)w < sizeof(dl->via) - used)
            used += (size_t)w;
    }
}

/* The way in words, as `route` shows it: "direct: <address described>". */
static void route_direct(char *out, size_t n, const struct wire_addr *a, uint8_t reach)
{
    static const char direct[] = "direct: ";
    memcpy(out, direct, sizeof(direct));
    nat_addr_describe(a, reach, out + sizeof(direct) - 1, n - sizeof(direct) + 1);
}

/* "reversal: it connected from <its address>", from the incoming link. */
static void route_reversal(char *out, size_t n, const struct link *l)
{
    char from[64] = "?";
    const struct wire_addr *ra = link_remote_addr(l);
    if (ra != NULL && ra->family != 0)
        wire_addr_format(ra, from, sizeof(from));
    snprintf(out, n, "reversal: it connected from %s", from);
}

static void on_source_opened(struct link *l, void *arg)
{
    struct fetch_source *s = arg;
    s->state = SRC_OPEN;
    s->retry_ms = FETCH_RETRY_MIN_MS;
    note_path(s->dl, s->path);
    if (s->path == NAT_PATH_REVERSAL) {
        route_reversal(s->route, sizeof(s->route), l);
    } else if (s->path == NAT_PATH_RELAY) {
        snprintf(s->route, sizeof(s->route), "relay: through our supernode");
    }
    /* holepunch: the route was written when the punch connected */
    snprintf(s->dl->route, sizeof(s->dl->route), "%s", s->route);
    log_info("fetch", "%.16s: connected to source %s (%s)", s->dl->hex, link_name(l),
             s->route[0] ? s->route : nat_path_str(s->path));
    if (s->path == NAT_PATH_RELAY) /* look for a cheaper way now and then */
        fetch_set_timer_ms(s->upgrade, FETCH_UPGRADE_MS);
    download_apply_hold(s->dl); /* under a limit in debt, a new source waits too */
    download_pump(s->dl);
}

/* s lied: ban it for this download (in the store too: also after a
 * restart or a retry), report it, drop what it said, close its link, and
 * go on with the others. */
static void source_ban(struct fetch_source *s, const char *why)
{
    struct download *dl = s->dl;
    log_warn("fetch", "%.16s: source %s banned for this download and reported: %s", dl->hex,
             s->short_id, why);
    if (dl->m.from == s) { /* its manifest pages go: none of it is kept */
        free(dl->m.hashes);
        memset(&dl->m, 0, sizeof(dl->m));
    }
    s->manifest_asked = false;
    if (op_store_bad_source_ban(dl->f->env.store, dl->id, s->peer_id, why) != 0)
        log_warn("fetch", "%.16s: cannot record the ban: %s", dl->hex,
                 op_store_errmsg(dl->f->env.store));
    s->state = SRC_BANNED;
    if (dl->f->env.report)
        dl->f->env.report(s->peer_id, dl->id, MSG_REPORT_BAD_DATA, dl->f->env.arg);
    source_release_slots(s);
    download_banned(dl, s, why);
    if (s->link)
        link_close(s->link, MSG_ERR_BAD_VALUE, why);
    download_pump(dl); /* the next source is asked (its manifest, its chunks) */
}

static void source_bad_chunk(struct fetch_source *s, uint32_t chunk, const char *why)
{
    struct download *dl = s->dl;
    dl->chunks_failed++;
    uint32_t failures = 0;
    char reason[96];
    snprintf(reason, sizeof(reason), "chunk %u %s", chunk, why);
    op_store_bad_source_record(dl->f->env.store, dl->id, s->peer_id, reason, &failures);
    bool banned = op_sched_done(dl->sched, chunk, s->idx, false);
    log_warn("fetch", "%.16s: chunk %u from %s %s (failure %u of this source)", dl->hex, chunk,
             s->short_id, why, failures);
    if (banned) {
        snprintf(reason, sizeof(reason), "%d chunks did not match the file ID's manifest",
                 OP_SCHED_MAX_FAILURES);
        source_ban(s, reason);
    }
}

/* A verified chunk from s: the source gets a signed receipt for it. */
static void send_receipt(struct fetch_source *s, uint32_t len)
{
    const struct op_fetch_env *env = &s->dl->f->env;
    struct msg m = {.type = MSG_RECEIPT};
    if (env->receipt == NULL || s->link == NULL ||
        env->receipt(s->peer_id, s->dl->id, s->dl->size, s->dl->root, len, &m.u.receipt,
                     env->arg) != 0)
        return;
    link_send(s->link, &m);
}

static void chunk_complete(struct fetch_source *s, struct fetch_chunk *slot)
{
    struct download *dl = s->dl;
    uint32_t index = (uint32_t)slot->index;
    slot->index = -1;
    uint8_t digest[WIRE_HASH_LEN];
    fileid_chunk_hash(slot->data, slot->len, dl->height, digest);
    if (memcmp(digest, dl->chunk_hashes + (size_t)index * WIRE_HASH_LEN, WIRE_HASH_LEN) != 0) {
        source_bad_chunk(s, index, "failed verification, discarded");
        return;
    }
    send_receipt(s, slot->len);
    if (op_sched_have(dl->sched, index)) {
        op_sched_done(dl->sched, index, s->idx, true); /* an end-game duplicate */
        return;
    }
    char err[256];
    int rc = fetch_file_store_chunk(dl->file, index, slot->data, slot->len, err, sizeof(err));
    if (rc == SOVA_ERR_NO_SPACE) {
        /* Not the source's fault and not the end: keep what is verified,
         * fetch this chunk again once there is room (download_pump waits). */
        op_sched_release(dl->sched, index, s->idx);
        download_disk_full(dl, err);
        return;
    }
    if (rc != 0) {
        download_fail(dl, "%s", err);
        return;
    }
    op_sched_done(dl->sched, index, s->idx, true);
    dl->waiting[0] = '\0'; /* written: there is room again */
    dl->chunks_fetched++;
    dl->last_progress_ms = link_now_ms();
}

static void on_data(struct fetch_source *s, const struct msg_data *d)
{
    struct download *dl = s->dl;
    struct fetch_chunk *slot = NULL;
    for (unsigned i = 0; i < OP_SCHED_PIPELINE; i++)
        if (s->slots[i].index == (int64_t)d->chunk_index)
            slot = &s->slots[i];
    if (memcmp(d->file_id, dl->id, WIRE_HASH_LEN) != 0 || slot == NULL || d->offset != slot->got ||
        d->data.len > slot->len - slot->got) {
        log_warn("fetch", "%.16s: source %s sent DATA we did not ask for (chunk %u offset %u)",
                 dl->hex, s->short_id, d->chunk_index, d->offset);
        link_close(s->link, MSG_ERR_PROTOCOL, "unexpected DATA");
        return;
    }
    if (dl->first_byte_ms == 0) { /* 0 means none yet: a first byte at once counts 1 ms */
        uint64_t ms = link_now_ms() - dl->run_started_ms;
        dl->first_byte_ms = ms ? ms : 1;
    }
    memcpy(slot->data + slot->got, d->data.ptr, d->data.len);
    slot->got += (uint32_t)d->data.len;
    dl->bytes_this_tick += d->data.len;
    s->bytes += d->data.len;
    s->bytes_this_tick += d->data.len;
    download_charge(dl, d->data.len);
    if (slot->got == slot->len)
        chunk_complete(s, slot);
    download_pump(dl);
}

/* The whole manifest is in and made the root: it is the download's now. */
static void manifest_checked(struct fetch_source *s)
{
    struct download *dl = s->dl;
    struct manifest_in *m = &dl->m;
    int rc = op_store_download_set_manifest(dl->f->env.store, dl->id, m->size, m->root, m->hashes,
                                            m->n_chunks);
    if (rc != 0) {
        download_fail(dl, "cannot record the manifest: %s", op_store_errmsg(dl->f->env.store));
        return;
    }
    dl->has_manifest = true;
    dl->size = m->size;
    memcpy(dl->root, m->root, WIRE_HASH_LEN);
    dl->n_chunks = m->n_chunks;
    free(dl->chunk_hashes);
    dl->chunk_hashes = m->hashes;
    memset(m, 0, sizeof(*m));
    s->manifest_asked = false;
    log_info("fetch", "%.16s: manifest from %s matches the file ID: %llu bytes, %u chunks of %u",
             dl->hex, s->short_id, (unsigned long long)dl->size, dl->n_chunks, dl->chunk_size);
    if (download_manifest_ready(dl) != 0)
        return;
    download_pump(dl);
}

/* A MANIFEST page. Every check is against the file ID, never against what
 * a hit or another source said: the first page's size and root must make
 * the ID (a false size is refused here, before anything is allocated for
 * it), later pages must repeat them, and the hashes, once all are in, must
 * make the root. */
static void on_manifest(struct fetch_source *s, const struct msg_manifest *pg)
{
    struct download *dl = s->dl;
    struct manifest_in *m = &dl->m;
    char why[128];
    if (m->from != s || !s->manifest_asked || dl->has_manifest) {
        log_warn("fetch", "%.16s: source %s sent a MANIFEST we did not ask for", dl->hex,
                 s->short_id);
        link_close(s->link, MSG_ERR_PROTOCOL, "unexpected MANIFEST");
        return;
    }
    if (memcmp(pg->file_id, dl->id, WIRE_HASH_LEN) != 0) {
        source_ban(s, "its manifest is of another file");
        return;
    }
    if (pg->chunk_size != dl->chunk_size) {
        snprintf(why, sizeof(why), "its manifest has chunks of %u bytes, %u were asked for",
                 pg->chunk_size, dl->chunk_size);
        source_ban(s, why);
        return;
    }
    if (!m->started) {
        if (!fileid_check(dl->id, pg->file_size, pg->root)) {
            snprintf(why, sizeof(why),
                     "its manifest's size (%llu bytes) and root do not make the file ID",
                     (unsigned long long)pg->file_size);
            source_ban(s, why);
            return;
        }
        uint64_t n = fileid_chunks(pg->file_size, dl->height); /* < 2^32: the decoder checked */
        m->hashes = malloc(n ? (size_t)n * WIRE_HASH_LEN : 1);
        if (m->hashes == NULL) {
            download_fail(dl, "out of memory for a manifest of %llu chunks", (unsigned long long)n);
            return;
        }
        m->started = true;
        m->size = pg->file_size;
        memcpy(m->root, pg->root, WIRE_HASH_LEN);
        m->n_chunks = (uint32_t)n;
    } else if (pg->file_size != m->size || memcmp(pg->root, m->root, WIRE_HASH_LEN) != 0) {
        source_ban(s, "its manifest changed size or root between pages");
        return;
    }
    if (pg->first_chunk != m->have || (pg->n_chunk_hashes == 0 && m->have < m->n_chunks)) {
        snprintf(why, sizeof(why),
                 "its manifest page from chunk %u has %zu hashes (from chunk %u was asked)",
                 pg->first_chunk, pg->n_chunk_hashes, m->have);
        source_ban(s, why);
        return;
    }
    /* first_chunk + n <= the chunk count of its size: the decoder checked,
     * and its size is the file's. */
    memcpy(m->hashes + (size_t)m->have * WIRE_HASH_LEN, pg->chunk_hashes,
           pg->n_chunk_hashes * WIRE_HASH_LEN);
    m->have += (uint32_t)pg->n_chunk_hashes;
    if (m->have < m->n_chunks) {
        source_send_manifest_get(s);
        return;
    }
    if (!fileid_check_layer(dl->id, m->size, (const uint8_t(*)[FILEID_LEN])m->hashes, m->n_chunks,
                            dl->height)) {
        source_ban(s, "its manifest's chunk hashes do not make the file ID");
        return;
    }
    manifest_checked(s);
}

static void on_source_message(struct link *l, const struct msg *m, void *arg)
{
    struct fetch_source *s = arg;
    (void)l;
    if (s->dl->state != OP_FETCH_RUNNING)
        return;
    switch (m->type) {
    case MSG_DATA:
        on_data(s, &m->u.data);
        return;
    case MSG_MANIFEST:
        on_manifest(s, &m->u.manifest);
        return;
    case MSG_ERROR:
        /* e.g. NOT_FOUND: the source no longer shares the file. */
        if (m->u.error.code == MSG_ERR_NOT_FOUND) {
            struct download *dl = s->dl;
            log_info("fetch", "%.16s: source %s does not have the file", dl->hex, s->short_id);
            if (dl->f->env.report)
                dl->f->env.report(s->peer_id, dl->id, MSG_REPORT_REFUSED, dl->f->env.arg);
            if (dl->m.from == s) { /* nothing it said is kept */
                free(dl->m.hashes);
                memset(&dl->m, 0, sizeof(dl->m));
            }
            s->manifest_asked = false;
            s->state = SRC_BANNED;
            source_release_slots(s);
            download_banned(dl, s, "it does not have the file");
            link_close(s->link, 0, NULL);
            download_pump(dl);
        }
        return;
    default:
        /* Valid, but not what a source sends: ERROR 100 and the link closes. */
        link_close(s->link, MSG_ERR_PROTOCOL, "a source does not send that");
    }
}

static void path_failed(struct fetch_source *s, const char *why);

static void on_source_closed(struct link *l, int why, void *arg)
{
    struct fetch_source *s = arg;
    (void)l;
    bool was_open = s->state == SRC_OPEN;
    s->link = NULL;
    probe_cancel(s);          /* the way it was to replace is gone: the ladder starts again */
    if (s->dl->m.from == s) { /* a manifest half received: the next source starts it again */
        free(s->dl->m.hashes);
        memset(&s->dl->m, 0, sizeof(s->dl->m));
    }
    s->manifest_asked = false;
    source_release_slots(s);
    if (s->state == SRC_BANNED || s->dl->state != OP_FETCH_RUNNING)
        return;
    const char *reason = why ? sova_err_str(why) : "closed";
    if (!was_open) {
        /* This way did not work: the next address, or the next way. */
        if (s->path == NAT_PATH_DIRECT && ++s->direct_tries < s->n_addrs &&
            s->direct_tries < FETCH_DIRECT_MAX_ADDRS) {
            log_info("fetch", "%.16s: source %s: direct: %s, trying its next address", s->dl->hex,
                     s->short_id, reason);
            s->state = SRC_IDLE;
            source_connect_direct(s);
            return;
        }
        path_failed(s, reason);
        return;
    }
    log_info("fetch", "%.16s: source %s unavailable (%s), retrying", s->dl->hex, s->short_id,
             reason);
    source_schedule_retry(s);
    download_pump(s->dl);
}

static const struct link_hooks source_hooks = {
    .opened = on_source_opened,
    .message = on_source_message,
    .closed = on_source_closed,
};

/* ---- the connection ladder ------------------------------------------------------- */

/* Our interfaces' networks (nat_subnet), for telling a LAN address of
 * ours from one of another LAN. */
static size_t our_subnets(struct nat_subnet *out, size_t cap)
{
    size_t n = 0;
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return 0;
    for (struct ifaddrs *i = ifs; i && n < cap; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_netmask == NULL ||
            (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        socklen_t len = i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                          : sizeof(struct sockaddr_in6);
        struct wire_addr mask;
        if (wire_addr_from_sockaddr(&out[n].addr, i->ifa_addr, len) != 0 ||
            wire_addr_from_sockaddr(&mask, i->ifa_netmask, len) != 0)
            continue;
        unsigned bits = 0;
        for (size_t b = 0; b < (mask.family == WIRE_ADDR_IPV4 ? 4u : 16u); b++)
            bits += (unsigned)__builtin_popcount(mask.ip[b]);
        out[n++].prefix_len = bits;
    }
    freeifaddrs(ifs);
    return n;
}

/* The source's addresses in the order to try them: a LAN address on one
 * of our networks first (fastest), then the public ones, and last a private
 * address on none of our networks (the source behind our public address
 * but on another LAN: a guest Wi-Fi, a second router). That last one often
 * could only time out, but behind a double NAT it is routed: kept, but
 * tried only when the others failed. */
static void sort_addrs(struct fetch_source *s)
{
    struct download *dl = s->dl;
    {
        struct nat_subnet nets[16];
        size_t n_nets = our_subnets(nets, 16), n = 0;
        struct wire_addr sorted[WIRE_MAX_ADDRS] = {{0}};
        for (int rank = 0; rank < 3; rank++)
            for (size_t i = 0; i < s->n_addrs; i++) {
                const struct wire_addr *c = &s->addrs[i];
                int r = !wire_addr_is_local(c) ? 1 : nat_addr_on_link(c, nets, n_nets) ? 0 : 2;
                if (r != rank)
                    continue;
                sorted[n++] = *c;
                if (rank == 2 && n > 1) {
                    char where[64];
                    wire_addr_format(c, where, sizeof(where));
                    log_info("fetch",
                             "%.16s: source %s: direct: %s is a LAN address not on our network: "
                             "tried last",
                             dl->hex, s->short_id, where);
                }
            }
        memcpy(s->addrs, sorted, n * sizeof(sorted[0]));
    }
}

/* The race to the source's addresses is over: TLS on the winner, which
 * must prove the source's key like any other direct connection. A winner
 * whose TLS fails leaves the addresses after it to try in turn. */
static void on_direct_raced(evutil_socket_t fd, int index, const char *why, void *arg)
{
    struct fetch_source *s = arg;
    struct download *dl = s->dl;
    const struct op_fetch_env *env = &dl->f->env;
    dial_race_free(s->race);
    s->race = NULL;
    if (fd < 0) {
        path_failed(s, why);
        return;
    }
    /* The winner as dialed (the source's list may have been renewed by a
     * LOCATE meanwhile; then the next round starts from its top). */
    size_t at = s->race_index[index];
    struct wire_addr won = {0};
    wire_addr_from_sockaddr(&won, (const struct sockaddr *)&s->race_addrs[index],
                            s->race_lens[index]);
    bool same = at < s->n_addrs && wire_addr_equal(&s->addrs[at], &won);
    s->next_addr = same ? at + 1 : 0;
    s->direct_tries = same ? (unsigned)at : FETCH_DIRECT_MAX_ADDRS;
    route_direct(s->route, sizeof(s->route), &won, s->reach);
    SSL *ssl = NULL;
    if (tls_ctx_client(env->tls, TLS_EXPECT_PEER_ID, s->peer_id, &ssl) != 0) {
        evutil_closesocket(fd);
        path_failed(s, "cannot make a connection");
        return;
    }
    s->state = SRC_CONNECTING;
    s->link = link_connected(env->base, fd, (const struct sockaddr *)&s->race_addrs[index],
                             s->race_lens[index], ssl, &dl->f->direct_params, &source_hooks, s);
    if (s->link == NULL)
        path_failed(s, "cannot open a socket");
}

/* Several addresses at the start of a round (a LAN and a public one, or
 * IPv6 and IPv4): raced, Happy Eyeballs (dial_race.h), in the order
 * sort_addrs gave, each family's order kept. true if the race runs. */
static bool direct_race(struct fetch_source *s)
{
    struct download *dl = s->dl;
    size_t n = 0;
    for (size_t i = 0; i < s->n_addrs && n < FETCH_DIRECT_MAX_ADDRS; i++) {
        socklen_t len = wire_addr_to_sockaddr(&s->addrs[i], &s->race_addrs[n]);
        if (len == 0)
            continue;
        s->race_lens[n] = len;
        s->race_index[n++] = (uint8_t)i;
    }
    if (n < 2)
        return false;
    unsigned timeout = dl->f->direct_params.handshake_timeout_ms;
    s->race = dial_race_start(dl->f->env.base, s->race_addrs, s->race_lens, n, NULL, 0,
                              timeout ? timeout : FETCH_DIRECT_RACE_MS, on_direct_raced, s);
    if (s->race == NULL)
        return false;
    s->state = SRC_CONNECTING;
    snprintf(s->route, sizeof(s->route), "direct: %zu addresses raced", n);
    return true;
}

static void source_connect_direct(struct fetch_source *s)
{
    struct download *dl = s->dl;
    const struct op_fetch_env *env = &dl->f->env;
    if (s->next_addr == 0) { /* at the start of a round */
        sort_addrs(s);
        if (direct_race(s))
            return;
    }
    const struct wire_addr *a = &s->addrs[s->next_addr++ % s->n_addrs];
    route_direct(s->route, sizeof(s->route), a, s->reach);
    struct sockaddr_storage ss;
    socklen_t len = wire_addr_to_sockaddr(a, &ss);
    SSL *ssl = NULL;
    if (len == 0 || tls_ctx_client(env->tls, TLS_EXPECT_PEER_ID, s->peer_id, &ssl) != 0) {
        path_failed(s, "cannot make a connection");
        return;
    }
    s->state = SRC_CONNECTING;
    s->link = link_connect(env->base, (struct sockaddr *)&ss, len, ssl, &dl->f->direct_params,
                           &source_hooks, s);
    if (s->link == NULL)
        path_failed(s, "cannot open a socket");
}

/* Our end of the punch connected (a TCP simultaneous open, or the
 * source's SYN answered ours): run TLS over it as the client, expecting
 * the source's key, as on any other way. */
static const struct link_hooks probe_hooks;

/* A hole punch failed: as the way being tried, or as a probe beside a relay. */
static void punch_failed(struct fetch_source *s, const char *why)
{
    if (s->probe_path == NAT_PATH_PUNCH)
        probe_failed(s, why);
    else
        path_failed(s, why);
}

static void on_punched(struct bufferevent *bev, const char *why, void *arg)
{
    struct fetch_source *s = arg;
    const struct op_fetch_env *env = &s->dl->f->env;
    unsigned attempts = nat_punch_attempts(s->punch);
    nat_punch_free(s->punch);
    s->punch = NULL;
    if (bev == NULL) {
        char msg[192];
        snprintf(msg, sizeof(msg), "%s (%u connects)", why, attempts);
        punch_failed(s, msg);
        return;
    }
    SSL *ssl = NULL;
    if (tls_ctx_client(env->tls, TLS_EXPECT_PEER_ID, s->peer_id, &ssl) != 0) {
        bufferevent_free(bev);
        punch_failed(s, "out of memory");
        return;
    }
    bool probe = s->probe_path == NAT_PATH_PUNCH;
    struct link *l = link_wrap(env->base, bev, ssl, false, s->short_id, env->params,
                               probe ? &probe_hooks : &source_hooks, s);
    if (l == NULL)
        punch_failed(s, "out of memory");
    else if (probe)
        s->probe = l;
    else
        s->link = l;
}

bool source_punch_note(struct fetch_source *s, const struct msg_punch_note *n)
{
    const struct op_fetch_env *env = &s->dl->f->env;
    if (s->punch == NULL || n->step == MSG_PUNCH_OFFER || n->step == MSG_PUNCH_SYNC)
        return false;
    evtimer_del(s->path_timer);
    if (n->step == MSG_PUNCH_NO) {
        punch_failed(s, "the source cannot punch (its NAT changes ports, it is busy, or its "
                        "supernode could not reach it)");
        return true;
    }
    if (!nat_punch_routable(&n->addr)) {
        punch_failed(s, n->addr.family == WIRE_ADDR_IPV4 ? "no route to its IPv4 address"
                                                         : "no route to its IPv6 address");
        return true;
    }
    /* READY: tell it to dial now, and dial ourselves after half the round
     * trip the OFFER and READY took, so both SYNs leave together. */
    uint64_t rtt = link_now_ms() - s->punch_sent_ms;
    struct msg_punch sync = {.step = MSG_PUNCH_SYNC};
    memcpy(sync.peer_id, s->peer_id, WIRE_ID_LEN);
    memcpy(sync.token, s->token, WIRE_TOKEN_LEN);
    static const char punched[] = "holepunch: ";
    char *route = s->probe_path == NAT_PATH_PUNCH ? s->probe_route : s->route;
    memcpy(route, punched, sizeof(punched));
    nat_addr_describe(&n->addr, MSG_REACH_UNREACHABLE, route + sizeof(punched) - 1,
                      sizeof(s->route) - sizeof(punched) + 1);
    if (env->punch(&sync, env->arg) != 0 ||
        nat_punch_start(s->punch, &n->addr, nat_punch_delay_ms(rtt), env->punch_timeout_ms,
                        on_punched, s) != 0) {
        punch_failed(s, "cannot ask the supernode");
        return true;
    }
    char where[64];
    log_info("fetch", "%.16s: source %s: punching to %s from port %u in %u ms (round trip %llu ms)",
             s->dl->hex, s->short_id, wire_addr_format(&n->addr, where, sizeof(where)),
             nat_punch_port(s->punch), nat_punch_delay_ms(rtt), (unsigned long long)rtt);
    return true;
}

/* Start a hole punch: our end bound to a port, the OFFER naming it. */
static int source_punch_offer(struct fetch_source *s, const struct op_fetch_self *self)
{
    const struct op_fetch_env *env = &s->dl->f->env;
    char err[128];
    uint8_t family = self->has_observed ? self->observed.family : WIRE_ADDR_IPV4;
    s->punch = nat_punch_new(env->base, family, env->params->bind_addr, env->params->bind_len, err,
                             sizeof(err));
    if (s->punch == NULL) {
        log_warn("fetch", "%.16s: source %s: cannot punch: %s", s->dl->hex, s->short_id, err);
        return -1;
    }
    RAND_bytes(s->token, sizeof(s->token));
    struct msg_punch offer = {.step = MSG_PUNCH_OFFER, .port = nat_punch_port(s->punch)};
    memcpy(offer.peer_id, s->peer_id, WIRE_ID_LEN);
    memcpy(offer.token, s->token, WIRE_TOKEN_LEN);
    s->punch_sent_ms = link_now_ms();
    if (env->punch(&offer, env->arg) != 0) {
        nat_punch_free(s->punch);
        s->punch = NULL;
        return -1;
    }
    fetch_set_timer_ms(s->path_timer, env->punch_timeout_ms);
    return 0;
}

static void on_relay_ready(struct bufferevent *stream, uint16_t reason, void *arg)
{
    struct fetch_source *s = arg;
    const struct op_fetch_env *env = &s->dl->f->env;
    s->circuit = NULL;
    if (stream == NULL) {
        path_failed(s, msg_error_code_str(reason));
        return;
    }
    SSL *ssl = NULL;
    if (tls_ctx_client(env->tls, TLS_EXPECT_PEER_ID, s->peer_id, &ssl) != 0) {
        bufferevent_free(stream);
        path_failed(s, "out of memory");
        return;
    }
    s->link = link_wrap(env->base, stream, ssl, false, s->short_id, env->params, &source_hooks, s);
    if (s->link == NULL)
        path_failed(s, "out of memory");
}

static void on_path_timer(evutil_socket_t fd, short what, void *arg)
{
    struct fetch_source *s = arg;
    (void)fd, (void)what;
    if (s->state == SRC_CONNECTING && s->path == NAT_PATH_REVERSAL && s->link == NULL)
        path_failed(s, "the source did not connect to us in time");
    else if (s->state == SRC_CONNECTING && s->path == NAT_PATH_PUNCH && s->link == NULL)
        path_failed(s, "the source did not answer our punch in time");
    else if (s->probe_path == NAT_PATH_PUNCH && s->probe == NULL)
        probe_failed(s, "the source did not answer our punch in time");
    else if (s->probe_path == NAT_PATH_REVERSAL && s->probe == NULL)
        probe_failed(s, "the source did not connect to us in time");
}

/* None of the source's addresses is of the family the supernode sees us
 * at (an IPv6-only peer and an IPv4-only one): it could not connect to
 * us, nor we punch to it. */
static bool family_apart(const struct fetch_source *s, const struct op_fetch_self *self)
{
    if (!self->has_observed || s->n_addrs == 0)
        return false;
    for (size_t i = 0; i < s->n_addrs; i++)
        if (s->addrs[i].family == self->observed.family)
            return false;
    return true;
}

/* What the ladder decides from (nat_path_facts): the source as we know
 * it, and ourselves as the daemon tells (self, filled too). */
static void ladder_facts(const struct fetch_source *s, struct op_fetch_self *self,
                         struct nat_path_facts *f)
{
    const struct op_fetch_env *env = &s->dl->f->env;
    *self = (struct op_fetch_self){0};
    if (env->self)
        env->self(self, env->arg);
    *f = (struct nat_path_facts){
        .source_reach = s->reach,
        .source_addrs = s->n_addrs > 0,
        .self_reach = self->reach,
        .attached = self->attached && env->reverse != NULL,
        .relay_offered = self->relay_offered && env->relay != NULL,
        .punch_offered = self->punch_offered && env->punch != NULL,
        .self_nat = self->nat,
        .allowed = env->ways,
        .family_apart = family_apart(s, self),
    };
    for (size_t i = 0; self->has_observed && i < s->n_addrs; i++)
        f->same_network |= wire_addr_same_ip(&s->addrs[i], &self->observed);
}

/* Try the next way to the source after the one that failed (or the
 * cheapest, at the start of a round). */
static void source_connect(struct fetch_source *s)
{
    struct download *dl = s->dl;
    const struct op_fetch_env *env = &dl->f->env;
    if (s->state != SRC_IDLE || dl->state != OP_FETCH_RUNNING)
        return;
    struct op_fetch_self self;
    struct nat_path_facts facts;
    ladder_facts(s, &self, &facts);
    char why[256];
    enum nat_path p = nat_path_next(&facts, s->failed, why, sizeof(why));
    log_info("fetch", "%.16s: source %s: %s", dl->hex, s->short_id, why);
    if (p == NAT_PATH_NONE) {
        source_schedule_retry(s);
        return;
    }
    s->path = p;
    s->state = SRC_CONNECTING;
    switch (p) {
    case NAT_PATH_DIRECT:
        s->direct_tries = 0;
        s->next_addr = 0;
        s->state = SRC_IDLE;
        source_connect_direct(s);
        return;
    case NAT_PATH_REVERSAL:
        RAND_bytes(s->token, sizeof(s->token));
        if (env->reverse(s->peer_id, s->token, env->arg) != 0) {
            path_failed(s, "no supernode to ask");
            return;
        }
        fetch_set_timer_ms(s->path_timer, env->reversal_timeout_ms);
        return;
    case NAT_PATH_PUNCH:
        if (source_punch_offer(s, &self) != 0)
            path_failed(s, "no supernode to ask");
        return;
    default:
        RAND_bytes(s->token, sizeof(s->token));
        if (env->relay(s->peer_id, s->token, env->relay_timeout_ms, on_relay_ready, s, &s->circuit,
                       env->arg) != 0) {
            s->circuit = NULL;
            path_failed(s, "cannot ask the supernode for a circuit");
        }
        return;
    }
}

static void path_failed(struct fetch_source *s, const char *why)
{
    log_info("fetch", "%.16s: source %s: %s failed: %s", s->dl->hex, s->short_id,
             nat_path_str(s->path), why);
    evtimer_del(s->path_timer);
    nat_punch_free(s->punch);
    s->punch = NULL;
    s->failed = s->path;
    s->path = NAT_PATH_NONE;
    s->state = SRC_IDLE;
    source_connect(s);
}

/* ---- moving off a relay (the upgrade) ------------------------------------------------ */

/* A link that was replaced: it closes without telling anyone. */
static const struct link_hooks retired_hooks = {0};

static void probe_cancel(struct fetch_source *s)
{
    if (s->upgrade != NULL)
        evtimer_del(s->upgrade);
    if (s->probe_path == NAT_PATH_NONE)
        return;
    s->probe_path = NAT_PATH_NONE;
    nat_punch_free(s->punch);
    s->punch = NULL;
    evtimer_del(s->path_timer);
    if (s->probe != NULL) {
        link_set_hooks(s->probe, &retired_hooks, NULL);
        link_close(s->probe, 0, NULL);
        s->probe = NULL;
    }
}

static void probe_failed(struct fetch_source *s, const char *why)
{
    log_info("fetch", "%.16s: source %s: %s in the background failed (%s): staying on the relay",
             s->dl->hex, s->short_id, nat_path_str(s->probe_path), why);
    s->probe = NULL; /* closing already, or never made */
    probe_cancel(s);
    s->upgrade_after_ms = link_now_ms() + FETCH_UPGRADE_RETRY_MS; /* no look before then */
    if (s->state == SRC_OPEN && s->path == NAT_PATH_RELAY)
        fetch_set_timer_ms(s->upgrade, FETCH_UPGRADE_RETRY_MS);
}

/* The cheaper way is up: the transfer moves to it. What the relay link had
 * in flight (unverified) is asked again on the new one; what is verified
 * stays. */
static void on_probe_opened(struct link *l, void *arg)
{
    struct fetch_source *s = arg;
    struct download *dl = s->dl;
    struct link *old = s->link;
    enum nat_path to = s->probe_path;
    s->probe = NULL;
    s->probe_path = NAT_PATH_NONE;
    if (old != NULL) {
        link_set_hooks(old, &retired_hooks, NULL);
        link_close(old, 0, NULL);
    }
    if (dl->m.from == s) { /* a manifest half received: asked again */
        free(dl->m.hashes);
        memset(&dl->m, 0, sizeof(dl->m));
    }
    s->manifest_asked = false;
    source_release_slots(s);
    s->link = l;
    s->path = to;
    memcpy(s->route, s->probe_route, sizeof(s->route));
    link_set_hooks(l, &source_hooks, s);
    log_info("fetch", "%.16s: source %s: moved from the relay to %s (%u chunks verified, kept)",
             dl->hex, s->short_id, s->route, dl->sched ? op_sched_have_count(dl->sched) : 0);
    on_source_opened(l, s);
}

static void on_probe_closed(struct link *l, int why, void *arg)
{
    (void)l;
    probe_failed(arg, why ? sova_err_str(why) : "closed");
}

static void on_probe_message(struct link *l, const struct msg *m, void *arg)
{
    (void)m, (void)arg; /* nothing was asked on it yet: a source does not speak first */
    link_close(l, MSG_ERR_PROTOCOL, "a source does not send that");
}

static const struct link_hooks probe_hooks = {
    .opened = on_probe_opened,
    .message = on_probe_message,
    .closed = on_probe_closed,
};

/* On a relay: if the ladder now gives a cheaper way (the source became
 * reachable, or a punch that failed may work now), try it beside the
 * relay. */
void source_try_upgrade(struct fetch_source *s)
{
    struct download *dl = s->dl;
    const struct op_fetch_env *env = &dl->f->env;
    if (s->state != SRC_OPEN || s->path != NAT_PATH_RELAY || s->probe_path != NAT_PATH_NONE ||
        dl->state != OP_FETCH_RUNNING || link_now_ms() < s->upgrade_after_ms)
        return; /* not on a relay, a probe out, or resting after one failed */
    struct op_fetch_self self;
    struct nat_path_facts facts;
    ladder_facts(s, &self, &facts);
    char why[256];
    enum nat_path p = nat_path_next(&facts, NAT_PATH_NONE, why, sizeof(why));
    if (p != NAT_PATH_DIRECT && p != NAT_PATH_PUNCH && p != NAT_PATH_REVERSAL)
        return;
    log_info("fetch", "%.16s: source %s: on a relay; %s, in the background", dl->hex, s->short_id,
             why);
    s->probe_path = p;
    if (p == NAT_PATH_PUNCH) {
        if (source_punch_offer(s, &self) != 0)
            probe_failed(s, "no supernode to ask");
        return;
    }
    if (p == NAT_PATH_REVERSAL) {
        /* We became reachable (our mapping came up): the source connects
         * to us with a token of the probe's own; op_fetch_adopt hands its
         * link to source_adopt_probe. */
        RAND_bytes(s->probe_token, sizeof(s->probe_token));
        if (env->reverse(s->peer_id, s->probe_token, env->arg) != 0) {
            probe_failed(s, "no supernode to ask");
            return;
        }
        fetch_set_timer_ms(s->path_timer, env->reversal_timeout_ms);
        return;
    }
    sort_addrs(s);
    route_direct(s->probe_route, sizeof(s->probe_route), &s->addrs[0], s->reach);
    struct sockaddr_storage ss;
    socklen_t len = wire_addr_to_sockaddr(&s->addrs[0], &ss);
    SSL *ssl = NULL;
    if (len == 0 || tls_ctx_client(env->tls, TLS_EXPECT_PEER_ID, s->peer_id, &ssl) != 0) {
        probe_failed(s, "cannot make a connection");
        return;
    }
    s->probe = link_connect(env->base, (struct sockaddr *)&ss, len, ssl, &dl->f->direct_params,
                            &probe_hooks, s);
    if (s->probe == NULL)
        probe_failed(s, "cannot open a socket");
}

/* Every FETCH_UPGRADE_MS on a relay: where is the source now? The answer
 * (op_fetch_located) looks for a cheaper way; without a supernode to ask,
 * look with what we know. */
static void on_upgrade(evutil_socket_t fd, short what, void *arg)
{
    struct fetch_source *s = arg;
    const struct op_fetch_env *env = &s->dl->f->env;
    (void)fd, (void)what;
    if (s->state != SRC_OPEN || s->path != NAT_PATH_RELAY || s->dl->state != OP_FETCH_RUNNING)
        return;
    fetch_set_timer_ms(s->upgrade, FETCH_UPGRADE_MS);
    if (env->locate)
        env->locate(s->peer_id, env->arg);
    else
        source_try_upgrade(s);
}

void source_adopt_probe(struct fetch_source *s, struct link *l)
{
    evtimer_del(s->path_timer);
    route_reversal(s->probe_route, sizeof(s->probe_route), l);
    s->probe = l;
    link_set_hooks(l, &probe_hooks, s);
    on_probe_opened(l, s);
}

void source_adopt(struct fetch_source *s, struct link *l)
{
    evtimer_del(s->path_timer);
    s->link = l;
    link_set_hooks(l, &source_hooks, s);
    on_source_opened(l, s);
}

bool source_waiting(const struct fetch_source *s)
{
    if (s->manifest_asked && s->dl->m.from == s)
        return true;
    for (unsigned i = 0; i < OP_SCHED_PIPELINE; i++)
        if (s->slots[i].index >= 0)
            return true;
    return false;
}

void source_stop(struct fetch_source *s)
{
    evtimer_del(s->retry);
    evtimer_del(s->path_timer);
    if (s->circuit != NULL) {
        nat_relay_cancel(s->circuit);
        s->circuit = NULL;
    }
    probe_cancel(s);
    nat_punch_free(s->punch);
    s->punch = NULL;
    dial_race_free(s->race);
    s->race = NULL;
    if (s->link)
        link_close(s->link, 0, NULL);
}

void source_free(struct fetch_source *s)
{
    dial_race_free(s->race);
    if (s->circuit != NULL)
        nat_relay_cancel(s->circuit);
    nat_punch_free(s->punch);
    s->punch = NULL;
    if (s->probe != NULL) {
        link_set_hooks(s->probe, &retired_hooks, NULL);
        link_free_now(s->probe);
    }
    link_free_now(s->link);
    if (s->upgrade)
        event_free(s->upgrade);
    if (s->retry)
        event_free(s->retry);
    if (s->path_timer)
        event_free(s->path_timer);
    for (unsigned j = 0; j < OP_SCHED_PIPELINE; j++)
        free(s->slots[j].data);
}

static void on_source_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    source_connect(arg);
}

struct fetch_source *source_find(struct download *dl, const uint8_t peer_id[WIRE_ID_LEN])
{
    for (unsigned i = 0; i < dl->n_sources; i++)
        if (memcmp(dl->sources[i].peer_id, peer_id, WIRE_ID_LEN) == 0)
            return &dl->sources[i];
    return NULL;
}

void source_set_addrs(struct fetch_source *s, const struct wire_addr *addrs, size_t n)
{
    /* A copy, one by one: a hit may name a source with no address (and no
     * list at all, addrs NULL). */
    s->n_addrs = 0;
    for (size_t i = 0; i < n && i < WIRE_MAX_ADDRS; i++)
        s->addrs[s->n_addrs++] = addrs[i];
    s->next_addr = 0;
}

/* The slot for a new source: the next free one, else one whose source was
 * banned and let go (a banned source holds no slot for ever, so liars
 * cannot crowd out the honest); -1 when every slot is in use. */
static int slot_pick(const struct download *dl)
{
    if (dl->n_sources < OP_SCHED_MAX_SOURCES)
        return (int)dl->n_sources;
    for (unsigned i = 0; i < dl->n_sources; i++) {
        const struct fetch_source *s = &dl->sources[i];
        if (s->state == SRC_BANNED && s->link == NULL && s->circuit == NULL)
            return (int)i;
    }
    return -1;
}

void source_add(struct download *dl, const struct msg_source *src)
{
    struct fetch_source *s = source_find(dl, src->peer_id);
    if (s != NULL) {
        s->reach = src->reachability;
        if (src->n_addrs)
            source_set_addrs(s, src->addrs, src->n_addrs);
        return;
    }
    char id[NODE_ID_STR_LEN + 1];
    node_id_format(src->peer_id, id);
    bool banned = false;
    op_store_bad_source_get(dl->f->env.store, dl->id, src->peer_id, NULL, &banned);
    if (banned) { /* banned in an earlier attempt or run: never asked again */
        log_info("fetch", "%.16s: source %.*s was banned for this download: not asked", dl->hex,
                 NODE_ID_SHORT_LEN, id);
        dl->banned_seen = true;
        if (dl->last_ban[0] == '\0')
            snprintf(dl->last_ban, sizeof(dl->last_ban), "%.*s: banned in an earlier attempt",
                     NODE_ID_SHORT_LEN, id);
        return;
    }
    int i = slot_pick(dl);
    if (i < 0)
        return;
    s = &dl->sources[i];
    struct event *retry = evtimer_new(dl->f->env.base, on_source_retry, s);
    struct event *path_timer = evtimer_new(dl->f->env.base, on_path_timer, s);
    struct event *upgrade = evtimer_new(dl->f->env.base, on_upgrade, s);
    if (retry == NULL || path_timer == NULL || upgrade == NULL) {
        if (retry)
            event_free(retry);
        if (path_timer)
            event_free(path_timer);
        if (upgrade)
            event_free(upgrade);
        return;
    }
    if ((unsigned)i < dl->n_sources) {
        log_info("fetch", "%.16s: the slot of banned source %s goes to source %.*s", dl->hex,
                 s->short_id, NODE_ID_SHORT_LEN, id);
        source_free(s);
        if (dl->sched != NULL)
            op_sched_source_forget(dl->sched, (unsigned)i);
    } else {
        dl->n_sources++;
    }
    memset(s, 0, sizeof(*s));
    s->idx = (unsigned)i;
    s->retry = retry;
    s->path_timer = path_timer;
    s->upgrade = upgrade;
    s->reach = src->reachability;
    s->dl = dl;
    memcpy(s->peer_id, src->peer_id, WIRE_ID_LEN);
    snprintf(s->short_id, sizeof(s->short_id), "%.*s", NODE_ID_SHORT_LEN, id);
    s->retry_ms = FETCH_RETRY_MIN_MS;
    for (unsigned k = 0; k < OP_SCHED_PIPELINE; k++)
        s->slots[k].index = -1;
    source_set_addrs(s, src->addrs, src->n_addrs);
    source_connect(s);
}

/* ---- the download's engine ------------------------------------------------------ */

/* Move everything forward: manifest first, then chunks, then the end. */
