/* test_op_bw.c - the peer's bandwidth buckets and the alternative limits'
 * schedule (ordinary/op_bw.h): debts paid at the rate, the long-run rate
 * held to the byte, saturation, and schedules that cross midnight. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "op_bw.h"

static void test_unlimited(void)
{
    struct op_bw_bucket b;
    op_bw_init(&b, 0, 4096, 0);
    op_bw_charge(&b, UINT64_MAX, 1);
    CU_ASSERT_EQUAL(op_bw_wait_ms(&b, 1), 0);
}

static void test_debt_is_paid_at_rate(void)
{
    struct op_bw_bucket b;
    op_bw_init(&b, 100000, 1000, 0); /* 100 kB/s, burst 25,000 */
    CU_ASSERT_EQUAL(b.burst, 25000);
    op_bw_charge(&b, 25000, 0);
    CU_ASSERT_EQUAL(op_bw_wait_ms(&b, 0), 0); /* the burst, exactly */
    op_bw_charge(&b, 50000, 0);               /* half a second of debt */
    uint64_t w = op_bw_wait_ms(&b, 0);
    CU_ASSERT(w >= 500 && w <= 501);
    CU_ASSERT(op_bw_wait_ms(&b, 250) >= 250);
    CU_ASSERT_EQUAL(op_bw_wait_ms(&b, 501), 0);
    /* Idle for an hour: the saved tokens stop at the burst. */
    CU_ASSERT_EQUAL(op_bw_wait_ms(&b, 3600 * 1000), 0);
    CU_ASSERT_EQUAL(b.tokens, 25000);
}

/* A reader that takes 16 KiB frames whenever the bucket lets it, for 100 s
 * of simulated time: the bytes let through in any 10 s window are the
 * rate's, within a burst and a frame. */
static void test_long_run_rate(void)
{
    const uint64_t rate = 1000000, frame = 16384;
    struct op_bw_bucket b;
    op_bw_init(&b, rate, frame, 0);
    static uint64_t at[100001]; /* bytes through by ms */
    uint64_t total = 0, next = 0;
    for (uint64_t ms = 0; ms <= 100000; ms++) {
        while (ms >= next) {
            op_bw_charge(&b, frame, ms);
            total += frame;
            uint64_t w = op_bw_wait_ms(&b, ms);
            next = ms + w;
            if (w == 0)
                continue;
            break;
        }
        at[ms] = total;
    }
    for (uint64_t start = 0; start + 10000 <= 100000; start += 1000) {
        uint64_t got = at[start + 10000] - at[start];
        CU_ASSERT(got <= 10 * rate + b.burst + frame);
        CU_ASSERT(got + b.burst + frame >= 10 * rate);
    }
}

static void test_set_rate_and_saturation(void)
{
    struct op_bw_bucket b;
    op_bw_init(&b, 1000, 100, 0);
    op_bw_charge(&b, UINT64_MAX, 0); /* clamped, never wraps to a credit */
    CU_ASSERT(b.tokens < 0);
    CU_ASSERT(op_bw_wait_ms(&b, 0) > 0);
    op_bw_set_rate(&b, 0, 100, 10); /* unlimited again: no debt kept */
    CU_ASSERT_EQUAL(op_bw_wait_ms(&b, 10), 0);
    op_bw_set_rate(&b, 4000, 100, 10);
    CU_ASSERT_EQUAL(b.burst, 1000);
    CU_ASSERT_EQUAL(b.tokens, 100); /* what unlimited kept: its own burst */
    op_bw_charge(&b, 2100, 10);     /* 2,000 of debt at 4,000/s: half a second */
    CU_ASSERT(op_bw_wait_ms(&b, 10) >= 500);
    op_bw_set_rate(&b, 8000, 100, 10); /* a higher rate pays it sooner */
    CU_ASSERT(op_bw_wait_ms(&b, 10) <= 251);
}

static void test_schedule(void)
{
    struct op_bw_schedule s;
    char err[256];
    CU_ASSERT_EQUAL(op_bw_schedule_parse("mon-fri 09:00-17:30", &s, err, sizeof(err)), 0);
    CU_ASSERT(s.set);
    CU_ASSERT(op_bw_schedule_active(&s, 1, 9, 0));
    CU_ASSERT(op_bw_schedule_active(&s, 5, 17, 29));
    CU_ASSERT_FALSE(op_bw_schedule_active(&s, 5, 17, 30));
    CU_ASSERT_FALSE(op_bw_schedule_active(&s, 6, 12, 0)); /* Saturday */
    CU_ASSERT_FALSE(op_bw_schedule_active(&s, 1, 8, 59));

    /* Across midnight: Friday night belongs to Friday, Saturday morning too. */
    CU_ASSERT_EQUAL(op_bw_schedule_parse("fri,sun 22:00-06:00", &s, err, sizeof(err)), 0);
    CU_ASSERT(op_bw_schedule_active(&s, 5, 23, 0));
    CU_ASSERT(op_bw_schedule_active(&s, 6, 5, 59));
    CU_ASSERT_FALSE(op_bw_schedule_active(&s, 6, 22, 0)); /* Saturday night: not listed */
    CU_ASSERT(op_bw_schedule_active(&s, 0, 22, 0));
    CU_ASSERT(op_bw_schedule_active(&s, 1, 0, 30)); /* Sunday's night, into Monday */
    CU_ASSERT_FALSE(op_bw_schedule_active(&s, 1, 6, 0));

    CU_ASSERT_EQUAL(op_bw_schedule_parse("daily 00:00-23:59", &s, err, sizeof(err)), 0);
    CU_ASSERT(op_bw_schedule_active(&s, 3, 12, 0));
    CU_ASSERT_EQUAL(op_bw_schedule_parse("fri-mon 10:00-11:00", &s, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(s.days, (1u << 5) | (1u << 6) | (1u << 0) | (1u << 1));
    CU_ASSERT_EQUAL(op_bw_schedule_parse("", &s, err, sizeof(err)), 0);
    CU_ASSERT_FALSE(s.set);
    CU_ASSERT_FALSE(op_bw_schedule_active(&s, 1, 10, 0));

    static const char *const bad[] = {
        "mon-fri",          "mon-fri 9:00-17:00", "mon-fri 09:00-24:00", "funday 09:00-10:00",
        "mon, 09:00-10:00", "mon 10:00-10:00",    "mon 09:00-10:00 x",   "mon 09:60-10:00",
        "mon 09:00",        "mon,09:00-10:00",    "mon-xyz 09:00-10:00",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(op_bw_schedule_parse(bad[i], &s, err, sizeof(err)), SOVA_ERR_BAD_VALUE);
        CU_ASSERT_FALSE(s.set);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "schedule"));
    }
}

static void test_turtle(void)
{
    struct op_bw_schedule s;
    char err[64];
    CU_ASSERT_EQUAL(op_bw_schedule_parse("sat 10:00-12:00", &s, err, sizeof(err)), 0);
    CU_ASSERT(op_bw_turtle_active(OP_BW_TURTLE_AUTO, &s, 6, 11, 0));
    CU_ASSERT_FALSE(op_bw_turtle_active(OP_BW_TURTLE_AUTO, &s, 6, 13, 0));
    CU_ASSERT(op_bw_turtle_active(OP_BW_TURTLE_ON, &s, 6, 13, 0));
    CU_ASSERT_FALSE(op_bw_turtle_active(OP_BW_TURTLE_OFF, &s, 6, 11, 0));
    CU_ASSERT_EQUAL(op_bw_turtle_parse("on"), OP_BW_TURTLE_ON);
    CU_ASSERT_EQUAL(op_bw_turtle_parse("auto"), OP_BW_TURTLE_AUTO);
    CU_ASSERT_EQUAL(op_bw_turtle_parse("slow"), -1);
    CU_ASSERT_STRING_EQUAL(op_bw_turtle_name(OP_BW_TURTLE_OFF), "off");
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("op_bw", NULL, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "unlimited lets everything through", test_unlimited);
    CU_add_test(s, "a debt is paid at the rate; idle saves a burst", test_debt_is_paid_at_rate);
    CU_add_test(s, "every 10 s window holds the rate within a burst and a frame",
                test_long_run_rate);
    CU_add_test(s, "rate changes keep or drop the debt; no wrap", test_set_rate_and_saturation);
    CU_add_test(s, "schedules: days, ranges, midnight, bad text", test_schedule);
    CU_add_test(s, "turtle on, off, or by the schedule", test_turtle);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
