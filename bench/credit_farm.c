/* credit_farm.c - the farm bound of docs/CREDITS.md, measured: a farm of N
 * identities (N = 10, 100, 1000) signs receipts for each other (a ring,
 * two each) and for a beneficiary B (1 TiB each); an honest evaluator E
 * has downloaded from honest peers only, or also 1 MiB from one farm
 * member M. In a third variant M also signs 1 TiB for every other member
 * (a star: the best a farm can do with what it served E). B's credit as
 * seen by E, and the credit of all N + 1 identities at E summed, through
 * the real ledger (sn_ledger.h: records bounded at 128 entries a
 * direction) and the real view (sn_flow.h), against what the rule before
 * issue 13 gave B (every farm member's receipts at the fresh-identity
 * weight, 1/8, before the per-pair cap: N x min(cap, 1 TiB / 8)), and the
 * time one view takes (two records exported from the ledger and
 * sn_flow_credit()).
 *
 * Not a test: it prints a table (docs/PERFORMANCE.md, "The credit farm
 * bound"). Run: ./build/bench/credit_farm */
#include "clock.h"
#include "fileid.h"
#include "sn_credit.h"
#include "sn_flow.h"
#include "sn_ledger.h"

#include <stdio.h>
#include <string.h>

#define NOW  1700000000u
#define MIB  (1024ull * 1024)
#define TIB  (1ull << 40)
#define CAP  SN_CREDIT_CAP_DEFAULT
#define B_ID 60000u
#define E_ID 60001u
#define HON  60002u /* honest peers E downloaded from: 60002.. */

static void id_of(uint8_t out[WIRE_ID_LEN], unsigned n)
{
    memset(out, 0x5A, WIRE_ID_LEN);
    out[0] = (uint8_t)n;
    out[1] = (uint8_t)(n >> 8);
}

static uint64_t seq = 1;

static void upload(struct sn_ledger *l, unsigned src, unsigned down, uint64_t bytes, uint64_t t)
{
    struct msg_receipt r;
    memset(&r, 0, sizeof(r));
    id_of(r.source_id, src);
    id_of(r.downloader_id, down);
    r.bytes = bytes;
    r.seq = seq++;
    r.time_s = t;
    /* The whole of a made-up file of `bytes` bytes: the ledger checks that
     * the ID commits to that size (receipt_check_size()). */
    r.file_size = bytes;
    memset(r.root, 0x73, sizeof(r.root));
    fileid_make(bytes, r.root, r.file_id);
    sn_ledger_apply(l, &r, MSG_LEDGER_SIDE_SOURCE | MSG_LEDGER_SIDE_DOWNLOADER, NOW);
}

static uint64_t view(const struct sn_ledger *l, unsigned x, unsigned e)
{
    uint8_t xi[WIRE_ID_LEN], ei[WIRE_ID_LEN];
    id_of(xi, x);
    id_of(ei, e);
    struct msg_ledger_put xb, eb;
    const struct msg_ledger_put *xr = sn_ledger_export(l, xi, &xb) ? &xb : NULL;
    const struct msg_ledger_put *er = sn_ledger_export(l, ei, &eb) ? &eb : NULL;
    return sn_flow_credit(xi, xr, ei, er, CAP);
}

enum farm_mode { NOT_SERVED, SERVED_RING, SERVED_STAR };
static const char *const mode_names[] = {"no", "1 MiB", "1 MiB, star"};

/* The farm of n, and E's own history: 20 honest sources (and, served, 1 MiB
 * from the farm member M = n - 1 that signed for B last: with n > 128 the
 * others' entries in B's record are folded, and a path through a folded
 * entry counts nothing; star: M also signs 1 TiB for every other member).
 * Receipts are dated in order, as they come. */
static struct sn_ledger *build(unsigned n, enum farm_mode mode)
{
    struct sn_ledger_config cfg = {.max_records = 1000000};
    struct sn_ledger *l = sn_ledger_new(&cfg);
    uint64_t t = NOW - 100000;
    for (unsigned i = 0; i < n; i++) {
        upload(l, i, (i + 1) % n, TIB, t++);
        upload(l, i, (i + 2) % n, TIB, t++);
    }
    if (mode == SERVED_STAR)
        for (unsigned i = 0; i + 3 < n; i++) /* n - 3, n - 2 are in the ring already */
            upload(l, i, n - 1, TIB, t++);
    for (unsigned i = 0; i < n; i++)
        upload(l, B_ID, i, TIB, t++);
    for (unsigned i = 0; i < 20; i++)
        upload(l, HON + i, E_ID, 10 * MIB, t++);
    if (mode != NOT_SERVED)
        upload(l, n - 1, E_ID, MIB, t++);
    return l;
}

int main(void)
{
    printf("%6s  %-11s  %14s  %16s  %18s  %12s  %10s\n", "N", "E served", "B's credit at E",
           "all N+1 at E", "before issue 13", "B's uploaded", "one view");
    const unsigned sizes[] = {10, 100, 1000};
    for (size_t k = 0; k < 3; k++) {
        for (int mode = NOT_SERVED; mode <= SERVED_STAR; mode++) {
            unsigned n = sizes[k];
            struct sn_ledger *l = build(n, (enum farm_mode)mode);
            uint64_t t0 = sova_mono_ms(), credit = 0;
            const unsigned reps = 20000;
            for (unsigned r = 0; r < reps; r++)
                credit = view(l, B_ID, E_ID);
            uint64_t ms = sova_mono_ms() - t0;
            uint64_t all = credit; /* B, and every member */
            for (unsigned i = 0; i < n; i++)
                all = sn_sat_add(all, view(l, i, E_ID));
            uint64_t old = (uint64_t)n * sn_min_u64(CAP, TIB / 8); /* the old rule */
            uint8_t b[WIRE_ID_LEN];
            id_of(b, B_ID);
            struct msg_credit_record rec;
            sn_ledger_get(l, b, &rec);
            printf("%6u  %-11s  %11llu B  %12llu B  %13llu MiB  %8llu TiB  %7.1f us\n", n,
                   mode_names[mode], (unsigned long long)credit, (unsigned long long)all,
                   (unsigned long long)(old / MIB), (unsigned long long)(rec.uploaded / TIB),
                   (double)ms * 1000.0 / reps);
            sn_ledger_free(l);
        }
    }
    return 0;
}
