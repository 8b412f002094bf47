/* test_text.c - text from the network made safe (common/text.h): which
 * names pass, and how the rest is shown - every C0/C1 control, DEL, each
 * bidirectional formatting character, invalid and overlong UTF-8 caught at
 * its offset; escapes that a terminal does not obey, cut at a character
 * boundary, never overflowing. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

static enum text_verdict check(const char *s, size_t *at)
{
    return text_check(s, strlen(s), at);
}

static void test_safe_names(void)
{
    size_t at = 99;
    CU_ASSERT_EQUAL(check("holiday video 2024.mkv", &at), TEXT_OK);
    CU_ASSERT_EQUAL(at, 99); /* untouched when safe */
    CU_ASSERT_EQUAL(check("Ångström – 東京 – émoji 🎉.txt", NULL), TEXT_OK);
    CU_ASSERT_EQUAL(text_check("", 0, NULL), TEXT_OK);
}

static void test_controls(void)
{
    char s[8];
    size_t at;
    for (int c = 0; c < 0x20; c++) {
        snprintf(s, sizeof(s), "ab%c", c ? c : 'x');
        if (c == 0) {
            CU_ASSERT_EQUAL(text_check("ab\0", 3, &at), TEXT_CONTROL);
        } else {
            CU_ASSERT_EQUAL(check(s, &at), TEXT_CONTROL);
        }
        CU_ASSERT_EQUAL(at, 2);
    }
    CU_ASSERT_EQUAL(check("a\x7f", &at), TEXT_CONTROL);
    CU_ASSERT_EQUAL(at, 1);
    CU_ASSERT_EQUAL(check("a\xc2\x80z", &at), TEXT_CONTROL);   /* U+0080 */
    CU_ASSERT_EQUAL(check("a\xc2\x9b[2J", &at), TEXT_CONTROL); /* C1 CSI */
    CU_ASSERT_EQUAL(check("a\xc2\xa0z", NULL), TEXT_OK);       /* U+00A0 is printable */
    CU_ASSERT_EQUAL(check("\x1b]0;pwned\x07", &at), TEXT_CONTROL);
    CU_ASSERT_EQUAL(at, 0);
}

static void test_bidi(void)
{
    const char *bidi[] = {"\xd8\x9c",     "\xe2\x80\x8e", "\xe2\x80\x8f", "\xe2\x80\xaa",
                          "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae",
                          "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9"};
    for (size_t i = 0; i < sizeof(bidi) / sizeof(bidi[0]); i++) {
        char s[32];
        snprintf(s, sizeof(s), "invoice%sfdp.exe", bidi[i]);
        size_t at;
        CU_ASSERT_EQUAL(check(s, &at), TEXT_BIDI);
        CU_ASSERT_EQUAL(at, 7);
    }
    CU_ASSERT_EQUAL(check("\xe2\x80\x8d", NULL), TEXT_OK); /* ZWJ is not bidi */
}

static void test_bad_utf8(void)
{
    size_t at;
    CU_ASSERT_EQUAL(check("a\x80", &at), TEXT_BAD_UTF8);             /* lone continuation */
    CU_ASSERT_EQUAL(check("a\xc0\xaf", &at), TEXT_BAD_UTF8);         /* overlong '/' */
    CU_ASSERT_EQUAL(check("a\xe0\x80\xaf", &at), TEXT_BAD_UTF8);     /* overlong */
    CU_ASSERT_EQUAL(check("a\xed\xa0\x80", &at), TEXT_BAD_UTF8);     /* surrogate */
    CU_ASSERT_EQUAL(check("a\xf4\x90\x80\x80", &at), TEXT_BAD_UTF8); /* past U+10FFFF */
    CU_ASSERT_EQUAL(check("a\xe2\x80", &at), TEXT_BAD_UTF8);         /* cut short */
    CU_ASSERT_EQUAL(at, 1);
}

static void test_escape(void)
{
    char out[128];
    text_escape(out, sizeof(out), "a\x1b]0;x\x07\nb\\c", 11);
    CU_ASSERT_STRING_EQUAL(out, "a\\e]0;x\\x07\\nb\\\\c");
    const char *rlo = "photo\xe2\x80\xaegpj.exe";
    text_escape(out, sizeof(out), rlo, strlen(rlo));
    CU_ASSERT_STRING_EQUAL(out, "photo\\u{202E}gpj.exe");
    text_escape(out, sizeof(out), "x\xc2\x9by\xff", 5);
    CU_ASSERT_STRING_EQUAL(out, "x\\u{009B}y\\xFF");
    text_escape(out, sizeof(out), "\xc3\xa9t\xc3\xa9", 5);
    CU_ASSERT_STRING_EQUAL(out, "\xc3\xa9t\xc3\xa9"); /* printable UTF-8 kept */
    /* every escaped output is itself safe */
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    char big[2048];
    size_t n = text_escape(big, sizeof(big), all, sizeof(all));
    CU_ASSERT_EQUAL(strlen(big), n);
    CU_ASSERT_EQUAL(text_check(big, n, NULL), TEXT_OK);
}

static void test_escape_bounds(void)
{
    char out[6];
    memset(out, 'Z', sizeof(out));
    /* "ab" fits, the 4-byte escape of ESC does not: cut before it */
    size_t n = text_escape(out, sizeof(out), "ab\x01", 3);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(out, "ab");
    /* a multibyte character is never split */
    n = text_escape(out, 4, "a\xe6\x9d\xb1", 4);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_STRING_EQUAL(out, "a");
    n = text_escape(out, 1, "abc", 3);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(out[0], '\0');
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("text", NULL, NULL);
    if (!s)
        return -1;
    CU_add_test(s, "ordinary and international names are safe", test_safe_names);
    CU_add_test(s, "C0, DEL and C1 controls are caught where they are", test_controls);
    CU_add_test(s, "every bidirectional formatting character is caught", test_bidi);
    CU_add_test(s, "invalid, overlong, surrogate and cut UTF-8 is caught", test_bad_utf8);
    CU_add_test(s, "escapes a terminal does not obey; the result is safe", test_escape);
    CU_add_test(s, "escaping stops at a character boundary, never past the buffer",
                test_escape_bounds);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
