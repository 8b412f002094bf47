/* test_sn_flow.c - credit seen from an evaluator (supernode/credit/sn_flow.h)
 * over records the ledger really keeps (sn_ledger.h): a farm of 100
 * identities that sign for each other and for a beneficiary gives it
 * nothing at an evaluator the farm never served, however large the
 * receipts; an honest uploader's credit counts directly and through the
 * peers it served; folded entries count nothing; nothing wraps. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <string.h>

#include "fileid.h"
#include "sn_credit.h"
#include "sn_flow.h"
#include "sn_ledger.h"

#define NOW   1700000000u
#define MIB   (1024ull * 1024)
#define TIB   (1ull << 40)
#define CAP   SN_CREDIT_CAP_DEFAULT
#define FARM  100
#define BENEF 200 /* the farm's beneficiary */
#define EVAL  201 /* an honest evaluator the farm never served */
#define HON   202 /* an honest uploader */
#define MID   203 /* an honest peer between HON and EVAL */

static void id_of(uint8_t out[WIRE_ID_LEN], unsigned n)
{
    memset(out, 0xA5, WIRE_ID_LEN);
    out[0] = (uint8_t)n;
    out[1] = (uint8_t)(n >> 8);
}

static struct sn_ledger *ledger(void)
{
    struct sn_ledger_config cfg = {.max_records = 100000};
    return sn_ledger_new(&cfg);
}

static uint64_t seq = 1;

/* down signs that it received bytes from src (both records counted). */
static void upload(struct sn_ledger *l, unsigned src, unsigned down, uint64_t bytes, uint64_t t)
{
    struct msg_receipt r;
    memset(&r, 0, sizeof(r));
    id_of(r.downloader_id, down);
    id_of(r.source_id, src);
    r.bytes = bytes;
    r.seq = seq++;
    r.time_s = t;
    /* The whole of a made-up file of `bytes` bytes: the ledger checks that
     * the ID commits to that size (receipt_check_size()). */
    r.file_size = bytes;
    memset(r.root, 0x73, sizeof(r.root));
    fileid_make(bytes, r.root, r.file_id);
    CU_ASSERT_EQUAL(sn_ledger_apply(l, &r, 3, NOW), RECEIPT_OK);
}

/* credit of x as seen by e, from l's records. */
static uint64_t seen(struct sn_ledger *l, unsigned x, unsigned e)
{
    uint8_t xi[WIRE_ID_LEN], ei[WIRE_ID_LEN];
    id_of(xi, x);
    id_of(ei, e);
    struct msg_ledger_put xb, eb;
    const struct msg_ledger_put *xr = sn_ledger_export(l, xi, &xb) ? &xb : NULL;
    const struct msg_ledger_put *er = sn_ledger_export(l, ei, &eb) ? &eb : NULL;
    return sn_flow_credit(xi, xr, ei, er, CAP);
}

/* The farm signs for each other (a ring, each member 1 TiB to the next two)
 * and each member says it received 1 TiB (the most the ledger takes per
 * receipt is far above: it takes it) from the beneficiary. */
static void build_farm(struct sn_ledger *l)
{
    for (unsigned i = 0; i < FARM; i++) {
        upload(l, i, (i + 1) % FARM, TIB, NOW - 100);
        upload(l, i, (i + 2) % FARM, TIB, NOW - 100);
        upload(l, BENEF, i, TIB, NOW - 50);
    }
}

static void test_farm_mints_nothing(void)
{
    struct sn_ledger *l = ledger();
    build_farm(l);
    /* The evaluator has its own history, with honest peers only. */
    upload(l, HON, EVAL, 8 * MIB, NOW - 10);
    upload(l, MID, EVAL, 2 * MIB, NOW - 10);
    CU_ASSERT_EQUAL(seen(l, BENEF, EVAL), 0);
    for (unsigned i = 0; i < FARM; i++)
        CU_ASSERT_EQUAL(seen(l, i, EVAL), 0);
    /* The farm sees the beneficiary rich (its own view: worth nothing to others). */
    CU_ASSERT_EQUAL(seen(l, BENEF, 0), CAP);
    /* Honest credit is there, direct. */
    CU_ASSERT_EQUAL(seen(l, HON, EVAL), 8 * MIB);
    sn_ledger_free(l);
}

static void test_farm_bound_is_what_the_farm_served(void)
{
    struct sn_ledger *l = ledger();
    build_farm(l);
    /* The evaluator once downloaded 3 MiB from farm member 7 (real service). */
    upload(l, 7, EVAL, 3 * MIB, NOW - 10);
    /* The beneficiary gets at most that, through member 7, however many
     * identities signed how much. */
    CU_ASSERT_EQUAL(seen(l, BENEF, EVAL), 3 * MIB);
    /* Members that uploaded "1 TiB" to 7 get the same bound, not more. */
    CU_ASSERT_EQUAL(seen(l, 6, EVAL), 3 * MIB);
    CU_ASSERT_EQUAL(seen(l, 5, EVAL), 3 * MIB);
    CU_ASSERT_EQUAL(seen(l, 7, EVAL), 3 * MIB); /* its own direct service */
    CU_ASSERT_EQUAL(seen(l, 50, EVAL), 0);
    sn_ledger_free(l);
}

/* An honest chain: HON uploads to MID, MID uploads to EVAL. */
static void test_honest_chain(void)
{
    struct sn_ledger *l = ledger();
    upload(l, HON, MID, 10 * MIB, NOW - 20);
    upload(l, MID, EVAL, 4 * MIB, NOW - 10);
    CU_ASSERT_EQUAL(seen(l, HON, EVAL), 4 * MIB); /* min(10, 4) through MID */
    CU_ASSERT_EQUAL(seen(l, MID, EVAL), 4 * MIB);
    upload(l, HON, EVAL, 1 * MIB, NOW - 5);
    CU_ASSERT_EQUAL(seen(l, HON, EVAL), 5 * MIB); /* plus its direct service */
    CU_ASSERT_EQUAL(seen(l, EVAL, HON), 0);       /* flows have a direction */
    CU_ASSERT_EQUAL(seen(l, HON, HON), 0);        /* no view of oneself */
    /* The cap. */
    for (unsigned i = 0; i < 3; i++)
        upload(l, HON, EVAL, 512 * MIB, NOW - 4);
    CU_ASSERT_EQUAL(seen(l, HON, EVAL), CAP);
    /* The self view: each downloader's direct credit, summed. */
    uint8_t hon[WIRE_ID_LEN];
    id_of(hon, HON);
    struct msg_ledger_put hb;
    CU_ASSERT_FATAL(sn_ledger_export(l, hon, &hb));
    CU_ASSERT_EQUAL(sn_flow_self(&hb, CAP), 10 * MIB + CAP);
    CU_ASSERT_EQUAL(sn_flow_self(NULL, CAP), 0);
    sn_ledger_free(l);
}

/* A record keeps its 128 most recent counterparties a direction: a path
 * through a folded one counts nothing (the view only ever loses). */
static void test_folded_entries(void)
{
    struct sn_ledger *l = ledger();
    upload(l, HON, MID, 10 * MIB, NOW - 1000); /* HON's oldest downloader */
    upload(l, MID, EVAL, 4 * MIB, NOW - 10);
    CU_ASSERT_EQUAL(seen(l, HON, EVAL), 4 * MIB);
    for (unsigned i = 0; i < MSG_MAX_LEDGER_ENTRIES; i++)
        upload(l, HON, 1000 + i, MIB, NOW - 500 + i);
    uint8_t hon[WIRE_ID_LEN];
    id_of(hon, HON);
    struct msg_ledger_put hb;
    CU_ASSERT_FATAL(sn_ledger_export(l, hon, &hb));
    CU_ASSERT_EQUAL(hb.n_uploads, MSG_MAX_LEDGER_ENTRIES);
    CU_ASSERT_EQUAL(hb.base_uploaded, 10 * MIB); /* MID's entry, folded */
    CU_ASSERT_EQUAL(seen(l, HON, EVAL), 0);
    sn_ledger_free(l);
}

/* Records near the top of a u64 (merged from a holder): sums saturate, the
 * credit stays within the cap. */
static void test_no_wrap(void)
{
    uint8_t x[WIRE_ID_LEN], e[WIRE_ID_LEN];
    id_of(x, 1);
    id_of(e, 2);
    struct msg_ledger_entry up[MSG_MAX_LEDGER_ENTRIES], down[MSG_MAX_LEDGER_ENTRIES];
    for (unsigned i = 0; i < MSG_MAX_LEDGER_ENTRIES; i++) {
        memset(&up[i], 0, sizeof(up[i]));
        memset(&down[i], 0, sizeof(down[i]));
        id_of(up[i].peer_id, 100 + i);
        id_of(down[i].peer_id, 100 + i);
        up[i].bytes = down[i].bytes = UINT64_MAX;
    }
    id_of(up[0].peer_id, 2); /* X -> E direct, at the top too */
    struct msg_ledger_put xr = {.uploads = up, .n_uploads = MSG_MAX_LEDGER_ENTRIES};
    struct msg_ledger_put er = {.downloads = down, .n_downloads = MSG_MAX_LEDGER_ENTRIES};
    memcpy(xr.peer_id, x, WIRE_ID_LEN);
    memcpy(er.peer_id, e, WIRE_ID_LEN);
    CU_ASSERT_EQUAL(sn_flow_credit(x, &xr, e, &er, CAP), CAP);
    CU_ASSERT_EQUAL(sn_flow_credit(x, &xr, e, &er, UINT64_MAX), UINT64_MAX);
    CU_ASSERT_EQUAL(sn_flow_self(&xr, UINT64_MAX), UINT64_MAX);
    CU_ASSERT_EQUAL(sn_flow_credit(x, NULL, e, &er, CAP), 0);
    CU_ASSERT_EQUAL(sn_flow_credit(x, &xr, e, NULL, CAP), CAP); /* the direct entry */
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_flow", NULL, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "a farm of 100 signing 1 TiB receipts gives nothing at an evaluator",
                test_farm_mints_nothing);
    CU_add_test(s, "what a farm gives is at most what it served the evaluator",
                test_farm_bound_is_what_the_farm_served);
    CU_add_test(s, "honest chains: direct and through one peer, capped, directed",
                test_honest_chain);
    CU_add_test(s, "folded entries count nothing", test_folded_entries);
    CU_add_test(s, "sums saturate, credit within the cap", test_no_wrap);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
