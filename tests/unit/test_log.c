/* test_log.c - a log line (common/log.h) in the journal's format and the
 * plain one: the sd-daemon priority of each level and no timestamp for the
 * journal, "TIME LEVEL module [node] message" elsewhere; messages escaped
 * to one line, long ones cut, always ending in a newline. JOURNAL_STREAM
 * matches only its exact "DEVICE:INODE"; and the problems of
 * --check-config (common/cfgcheck.h): kept in order, counted past the
 * cap, listen addresses numeric, loopback told apart. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "cfgcheck.h"
#include "log.h"

/* The line as a string (sova_log_format writes no NUL). */
static const char *format(char *buf, size_t cap, bool journal, enum sova_log_level level,
                          const char *node, const char *msg)
{
    struct timespec t = {.tv_sec = 1796688000, .tv_nsec = 123456789}; /* 2026-12-08 */
    static char out[2048];
    size_t n = sova_log_format(buf, cap, journal, &t, level, "sn", node, msg, strlen(msg));
    CU_ASSERT_FATAL(n >= 1 && n <= cap - 1);
    CU_ASSERT_EQUAL(buf[n - 1], '\n');
    memcpy(out, buf, n);
    out[n] = '\0';
    return out;
}

static void test_journal_format(void)
{
    char buf[1024];
    CU_ASSERT_STRING_EQUAL(format(buf, sizeof(buf), true, SOVA_LOG_ERROR, "abcd2345", "boom"),
                           "<3>error sn [abcd2345] boom\n");
    CU_ASSERT_STRING_EQUAL(format(buf, sizeof(buf), true, SOVA_LOG_WARN, "abcd2345", "hm"),
                           "<4>warn  sn [abcd2345] hm\n");
    CU_ASSERT_STRING_EQUAL(format(buf, sizeof(buf), true, SOVA_LOG_INFO, "", "up"),
                           "<6>info  sn up\n");
    CU_ASSERT_STRING_EQUAL(format(buf, sizeof(buf), true, SOVA_LOG_DEBUG, NULL, "x"),
                           "<7>debug sn x\n");
}

static void test_plain_format(void)
{
    char buf[1024];
    CU_ASSERT_STRING_EQUAL(format(buf, sizeof(buf), false, SOVA_LOG_INFO, "abcd2345", "up"),
                           "2026-12-08T00:00:00.123Z info  sn [abcd2345] up\n");
    CU_ASSERT_STRING_EQUAL(format(buf, sizeof(buf), false, SOVA_LOG_ERROR, NULL, "boom"),
                           "2026-12-08T00:00:00.123Z error sn boom\n");
}

static void test_one_line(void)
{
    char buf[1024];
    CU_ASSERT_STRING_EQUAL(format(buf, sizeof(buf), true, SOVA_LOG_WARN, NULL, "a\nb\x1b[2J"),
                           "<4>warn  sn a\\nb\\e[2J\n");
    char big[1500];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char small[64];
    const char *line = format(small, sizeof(small), true, SOVA_LOG_INFO, NULL, big);
    CU_ASSERT_EQUAL(strlen(line), sizeof(small) - 1);
    CU_ASSERT_EQUAL(strncmp(line, "<6>info  sn xxx", 15), 0);
    CU_ASSERT_PTR_EQUAL(strchr(line, '\n'), line + strlen(line) - 1); /* one line */
}

static void test_journal_stream(void)
{
    CU_ASSERT_TRUE(sova_log_journal_matches("2049:123456", 2049, 123456));
    CU_ASSERT_FALSE(sova_log_journal_matches("2049:123457", 2049, 123456));
    CU_ASSERT_FALSE(sova_log_journal_matches("2048:123456", 2049, 123456));
    CU_ASSERT_FALSE(sova_log_journal_matches(NULL, 2049, 123456));
    CU_ASSERT_FALSE(sova_log_journal_matches("", 2049, 123456));
    CU_ASSERT_FALSE(sova_log_journal_matches("2049", 2049, 123456));
    CU_ASSERT_FALSE(sova_log_journal_matches("2049:", 2049, 123456));
    CU_ASSERT_FALSE(sova_log_journal_matches("2049:123456x", 2049, 123456));
    CU_ASSERT_FALSE(sova_log_journal_matches(" 2049:123456", 2049, 123456));
    CU_ASSERT_FALSE(sova_log_journal_matches("2049:-1", 2049, 123456));
}

static void test_cfgcheck(void)
{
    struct cfgcheck *c = cfgcheck_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    bool loopback = true;
    cfgcheck_listen(c, "listen", "0.0.0.0:7070", &loopback);
    CU_ASSERT_FALSE(loopback);
    cfgcheck_listen(c, "api-listen", "[::1]:0", &loopback);
    CU_ASSERT_TRUE(loopback);
    cfgcheck_listen(c, "listen", "127.0.0.2:1", &loopback);
    CU_ASSERT_TRUE(loopback);
    CU_ASSERT_EQUAL(cfgcheck_count(c), 0);
    cfgcheck_listen(c, "listen", "example.net:7070", NULL);
    CU_ASSERT_EQUAL(cfgcheck_count(c), 1);
    CU_ASSERT_STRING_EQUAL(
        cfgcheck_problem(c, 0),
        "option 'listen': listen address 'example.net:7070': host must be a numeric address");
    for (int i = 1; i < CFGCHECK_MAX_PROBLEMS + 5; i++)
        cfgcheck_add(c, "problem %d", i);
    CU_ASSERT_EQUAL(cfgcheck_count(c), CFGCHECK_MAX_PROBLEMS + 5);
    CU_ASSERT_STRING_EQUAL(cfgcheck_problem(c, 1), "problem 1");
    CU_ASSERT_PTR_NOT_NULL(cfgcheck_problem(c, CFGCHECK_MAX_PROBLEMS - 1));
    CU_ASSERT_PTR_NULL(cfgcheck_problem(c, CFGCHECK_MAX_PROBLEMS));
    cfgcheck_free(c);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("log", NULL, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "journal: <3>/<4>/<6>/<7> by level, no timestamp", test_journal_format);
    CU_add_test(s, "plain: time, level, module, node, message", test_plain_format);
    CU_add_test(s, "one line: controls escaped, long messages cut", test_one_line);
    CU_add_test(s, "JOURNAL_STREAM matches its exact DEVICE:INODE only", test_journal_stream);
    CU_add_test(s, "check-config problems: in order, counted past the cap; listen addresses",
                test_cfgcheck);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
