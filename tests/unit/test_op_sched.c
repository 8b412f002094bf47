/* The download scheduler: pipelining, failures and bans, lost sources, the
 * end game, and resume from a bitmap. */
#include "cunit_main.h"
#include "op_sched.h"

#include <CUnit/CUnit.h>
#include <stdlib.h>

static void test_sequential_and_pipeline(void)
{
    struct op_sched *s = op_sched_new(5, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 0);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 1);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), -1); /* pipeline of 2 is full */
    CU_ASSERT_EQUAL(op_sched_next(s, 1), 2);  /* another source takes the next */
    CU_ASSERT_FALSE(op_sched_done(s, 0, 0, true));
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 3);
    CU_ASSERT_EQUAL(op_sched_have_count(s), 1);
    CU_ASSERT_TRUE(op_sched_have(s, 0));
    op_sched_free(s);
}

static void test_failure_bans_after_two(void)
{
    struct op_sched *s = op_sched_new(4, NULL);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 0);
    CU_ASSERT_FALSE(op_sched_done(s, 0, 0, false)); /* first failure */
    /* the bad source is not asked for chunk 0 again */
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 1);
    CU_ASSERT_EQUAL(op_sched_next(s, 1), 0);       /* a good source gets it */
    CU_ASSERT_TRUE(op_sched_done(s, 1, 0, false)); /* second failure: banned */
    CU_ASSERT_TRUE(op_sched_banned(s, 0));
    CU_ASSERT_EQUAL(op_sched_next(s, 0), -1);
    CU_ASSERT_FALSE(op_sched_banned(s, 1));
    op_sched_free(s);
}

/* A banned source's index given to a new source starts clean; chunks
 * marked by a finished copy (op_sched_mark) are had. */
static void test_forget_and_mark(void)
{
    struct op_sched *s = op_sched_new(4, NULL);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 0);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 1);
    CU_ASSERT_FALSE(op_sched_done(s, 0, 0, false));
    CU_ASSERT_TRUE(op_sched_done(s, 1, 0, false));
    CU_ASSERT_TRUE(op_sched_banned(s, 0));
    CU_ASSERT_EQUAL(op_sched_next(s, 0), -1);
    op_sched_source_forget(s, 0);
    CU_ASSERT_FALSE(op_sched_banned(s, 0));
    CU_ASSERT_EQUAL(op_sched_inflight(s, 0), 0);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 0); /* chunk 0 no longer "served wrongly by 0" */
    op_sched_mark(s, 2);
    op_sched_mark(s, 2); /* twice: counted once */
    CU_ASSERT_TRUE(op_sched_have(s, 2));
    CU_ASSERT_EQUAL(op_sched_have_count(s), 1);
    CU_ASSERT_TRUE(op_sched_done(s, 0, 0, true) == false);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 1);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 3); /* 2 is had */
    op_sched_free(s);
}

static void test_lost_source_releases(void)
{
    struct op_sched *s = op_sched_new(3, NULL);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 0);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 1);
    op_sched_source_lost(s, 0);
    CU_ASSERT_EQUAL(op_sched_inflight(s, 0), 0);
    CU_ASSERT_EQUAL(op_sched_next(s, 1), 0);
    CU_ASSERT_EQUAL(op_sched_next(s, 1), 1);
    op_sched_free(s);
}

static void test_end_game_duplicates_once(void)
{
    struct op_sched *s = op_sched_new(2, NULL);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 0);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 1);
    /* an idle source may duplicate the oldest chunk in flight */
    CU_ASSERT_EQUAL(op_sched_next(s, 1), 0);
    CU_ASSERT_EQUAL(op_sched_next(s, 1), -1); /* but only while idle */
    CU_ASSERT_FALSE(op_sched_done(s, 0, 1, true));
    CU_ASSERT_FALSE(op_sched_done(s, 0, 0, true)); /* the duplicate: ignored */
    CU_ASSERT_EQUAL(op_sched_have_count(s), 1);
    CU_ASSERT_FALSE(op_sched_done(s, 1, 0, true));
    CU_ASSERT_TRUE(op_sched_complete(s));
    CU_ASSERT_EQUAL(op_sched_next(s, 1), -1);
    op_sched_free(s);
}

static void test_resume_from_bitmap(void)
{
    uint8_t have[2] = {0xd0, 0x80}; /* chunks 0, 1, 3, 8 */
    struct op_sched *s = op_sched_new(10, have);
    CU_ASSERT_EQUAL(op_sched_have_count(s), 4);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 2);
    CU_ASSERT_EQUAL(op_sched_next(s, 0), 4);
    CU_ASSERT_EQUAL(op_sched_next(s, 1), 5);
    CU_ASSERT_EQUAL(op_sched_bitmap(s)[0], 0xd0);
    op_sched_free(s);
}

static void test_zero_chunks_is_complete(void)
{
    struct op_sched *s = op_sched_new(0, NULL);
    CU_ASSERT_TRUE(op_sched_complete(s));
    CU_ASSERT_EQUAL(op_sched_next(s, 0), -1);
    op_sched_free(s);
}

/* Random outcomes across sources: the download always completes unless all
 * sources are banned, and no chunk is counted twice. */
static void test_random_runs_complete(void)
{
    srand(7);
    for (int run = 0; run < 200; run++) {
        uint32_t n = 1 + (uint32_t)(rand() % 40);
        struct op_sched *s = op_sched_new(n, NULL);
        unsigned good = 3; /* sources 0..2 never fail; 3..5 fail half the time */
        for (int step = 0; step < 100000 && !op_sched_complete(s); step++) {
            unsigned src = (unsigned)(rand() % 6);
            int64_t c = op_sched_next(s, src);
            if (c < 0)
                continue;
            bool ok = src < good || rand() % 2;
            if (rand() % 10 == 0)
                op_sched_source_lost(s, src);
            else
                op_sched_done(s, (uint32_t)c, src, ok);
        }
        CU_ASSERT_TRUE(op_sched_complete(s));
        CU_ASSERT_EQUAL(op_sched_have_count(s), n);
        for (unsigned src = 0; src < good; src++)
            CU_ASSERT_FALSE(op_sched_banned(s, src));
        op_sched_free(s);
    }
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("op_sched", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "sequential and pipeline", test_sequential_and_pipeline);
    CU_add_test(s, "two failures ban a source", test_failure_bans_after_two);
    CU_add_test(s, "a lost source releases its chunks", test_lost_source_releases);
    CU_add_test(s, "a forgotten source starts clean; marked chunks are had", test_forget_and_mark);
    CU_add_test(s, "end game duplicates once", test_end_game_duplicates_once);
    CU_add_test(s, "resume from bitmap", test_resume_from_bitmap);
    CU_add_test(s, "zero chunks", test_zero_chunks_is_complete);
    CU_add_test(s, "random runs complete", test_random_runs_complete);
    return 0;
}
