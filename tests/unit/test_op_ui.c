/* The web UI's logins and sessions (op_ui.h), pure parts driven with a
 * clock of our own: a login link works once and for its time only, a
 * session cookie is found by its name and secret only, idle sessions end,
 * the least recent gives way when all are taken, and the CSRF token must
 * match exactly. The pages themselves are tried in a real browser
 * (tests/e2e/test_ui.sh). */
#include "cunit_main.h"
#include "op_ui.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#define KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void test_token_works_once_and_in_time(void)
{
    struct op_ui *ui = op_ui_new(KEY, 7377, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ui);
    char a[OP_UI_SECRET_HEX + 1], b[OP_UI_SECRET_HEX + 1];
    CU_ASSERT_EQUAL(op_ui_token_new(ui, 1000, a), 0);
    CU_ASSERT_EQUAL(op_ui_token_new(ui, 1000, b), 0);
    CU_ASSERT_EQUAL(strlen(a), OP_UI_SECRET_HEX);
    CU_ASSERT_NOT_EQUAL(strcmp(a, b), 0);
    CU_ASSERT_TRUE(op_ui_token_take(ui, a, 2000));
    CU_ASSERT_FALSE(op_ui_token_take(ui, a, 2000));                      /* once */
    CU_ASSERT_FALSE(op_ui_token_take(ui, b, 1000 + OP_UI_TOKEN_TTL_MS)); /* expired */
    char c[OP_UI_SECRET_HEX + 1];
    CU_ASSERT_EQUAL(op_ui_token_new(ui, 5000, c), 0);
    char wrong[OP_UI_SECRET_HEX + 1];
    memcpy(wrong, c, sizeof(wrong));
    wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
    CU_ASSERT_FALSE(op_ui_token_take(ui, wrong, 5000));
    c[OP_UI_SECRET_HEX - 1] = '\0'; /* a prefix */
    CU_ASSERT_FALSE(op_ui_token_take(ui, c, 5000));
    CU_ASSERT_FALSE(op_ui_token_take(ui, "", 5000));
    CU_ASSERT_FALSE(op_ui_token_take(ui, NULL, 5000));
    CU_ASSERT_FALSE(op_ui_token_take(ui, KEY, 5000)); /* the API key is not a link */
    /* More links than slots: the oldest gives way, the newest work. */
    char many[OP_UI_MAX_TOKENS + 1][OP_UI_SECRET_HEX + 1];
    for (int i = 0; i <= OP_UI_MAX_TOKENS; i++)
        CU_ASSERT_EQUAL(op_ui_token_new(ui, 10000 + (uint64_t)i, many[i]), 0);
    CU_ASSERT_FALSE(op_ui_token_take(ui, many[0], 20000));
    CU_ASSERT_TRUE(op_ui_token_take(ui, many[OP_UI_MAX_TOKENS], 20000));
    op_ui_free(ui);
}

static void cookie_of(const struct op_ui *ui, const struct op_ui_session *s, char *out, size_t n)
{
    snprintf(out, n, "theme=dark; %s=%s; other=1", op_ui_cookie_name(ui), op_ui_session_id(s));
}

static void test_sessions(void)
{
    struct op_ui *ui = op_ui_new(KEY, 7377, false);
    CU_ASSERT_STRING_EQUAL(op_ui_cookie_name(ui), "sova_session_7377");
    struct op_ui_session *s = op_ui_session_new(ui, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char cookie[256];
    cookie_of(ui, s, cookie, sizeof(cookie));
    CU_ASSERT_PTR_EQUAL(op_ui_session_find(ui, cookie, 2000), s);
    /* another port's cookie of the same value is not ours */
    char other[256];
    snprintf(other, sizeof(other), "sova_session_7378=%s", op_ui_session_id(s));
    CU_ASSERT_PTR_NULL(op_ui_session_find(ui, other, 2000));
    snprintf(other, sizeof(other), "xsova_session_7377=%s", op_ui_session_id(s));
    CU_ASSERT_PTR_NULL(op_ui_session_find(ui, other, 2000));
    snprintf(other, sizeof(other), "sova_session_7377=%sx", op_ui_session_id(s));
    CU_ASSERT_PTR_NULL(op_ui_session_find(ui, other, 2000));
    CU_ASSERT_PTR_NULL(op_ui_session_find(ui, "sova_session_7377=", 2000));
    CU_ASSERT_PTR_NULL(op_ui_session_find(ui, NULL, 2000));
    /* CSRF: exactly the session's token */
    CU_ASSERT_TRUE(op_ui_csrf_matches(s, op_ui_session_csrf(s)));
    CU_ASSERT_FALSE(op_ui_csrf_matches(s, op_ui_session_id(s)));
    CU_ASSERT_FALSE(op_ui_csrf_matches(s, NULL));
    CU_ASSERT_FALSE(op_ui_csrf_matches(s, ""));
    /* idle too long: over */
    CU_ASSERT_PTR_NULL(op_ui_session_find(ui, cookie, 2000 + OP_UI_SESSION_IDLE_MS + 1));
    CU_ASSERT_PTR_NULL(op_ui_session_find(ui, cookie, 3000));
    /* log out */
    s = op_ui_session_new(ui, 5000);
    cookie_of(ui, s, cookie, sizeof(cookie));
    op_ui_session_end(ui, s);
    CU_ASSERT_PTR_NULL(op_ui_session_find(ui, cookie, 5000));
    op_ui_free(ui);
}

static void test_least_recent_session_gives_way(void)
{
    struct op_ui *ui = op_ui_new(KEY, 1, true);
    char cookies[OP_UI_MAX_SESSIONS][256];
    for (int i = 0; i < OP_UI_MAX_SESSIONS; i++) {
        struct op_ui_session *s = op_ui_session_new(ui, 1000 + (uint64_t)i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        cookie_of(ui, s, cookies[i], sizeof(cookies[i]));
    }
    /* the first is used again: the second is now the least recent */
    CU_ASSERT_PTR_NOT_NULL(op_ui_session_find(ui, cookies[0], 5000));
    struct op_ui_session *n = op_ui_session_new(ui, 6000);
    CU_ASSERT_PTR_NOT_NULL(n);
    CU_ASSERT_PTR_NULL(op_ui_session_find(ui, cookies[1], 6000));
    CU_ASSERT_PTR_NOT_NULL(op_ui_session_find(ui, cookies[0], 6000));
    CU_ASSERT_PTR_NOT_NULL(op_ui_session_find(ui, cookies[2], 6000));
    op_ui_free(ui);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("op_ui", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "a login link works once and in time", test_token_works_once_and_in_time);
    CU_add_test(s, "sessions: cookie, CSRF, idle, log out", test_sessions);
    CU_add_test(s, "the least recent session gives way", test_least_recent_session_gives_way);
    return 0;
}
