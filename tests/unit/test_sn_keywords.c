/* test_sn_keywords.c - the words a file name is found by (sn_keywords.h). */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "sn_keywords.h"

/* ---- keyword rules ------------------------------------------------------------- */
/* The keywords of name, space-separated, in the order kept. */
static const char *name_keywords(const char *name)
{
    static char out[SN_KEYWORDS_MAX * (SN_KEYWORD_MAX_LEN + 1) + 1];
    struct sn_keywords kw;
    sn_keywords_from_name(&kw, name, strlen(name));
    size_t used = 0;
    for (size_t i = 0; i < kw.n; i++) {
        struct wire_str w = sn_keywords_word(&kw, i);
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%.*s", i ? " " : "", (int)w.len,
                                 w.ptr);
    }
    out[used] = '\0';
    return out;
}

static void test_keywords_of_names(void)
{
    CU_ASSERT_STRING_EQUAL(name_keywords("Holiday_Video-2019.MP4"), "mp4 holiday video 2019");
    CU_ASSERT_STRING_EQUAL(name_keywords("The.Big-Lebowski_(1998)[x264],DTS;a+b.mkv"),
                           "mkv the big lebowski 1998 x264 dts");
    CU_ASSERT_STRING_EQUAL(name_keywords("a b c"), "");
    CU_ASSERT_STRING_EQUAL(name_keywords("song song SONG.mp3"), "mp3 song");
    CU_ASSERT_STRING_EQUAL(name_keywords("README"), "readme");
    CU_ASSERT_STRING_EQUAL(name_keywords("archive.tar.gz"), "gz archive tar");
    /* Non-ASCII bytes stay in words and keep their case; ASCII is lowercased. */
    CU_ASSERT_STRING_EQUAL(name_keywords("Caf\xc3\xa9 \xc3\x9c"
                                         "ber.FLAC"),
                           "flac caf\xc3\xa9 \xc3\x9c"
                           "ber");
    CU_ASSERT_STRING_EQUAL(name_keywords("\xe5\x86\x99\xe7\x9c\x9f.jpg"),
                           "jpg \xe5\x86\x99\xe7\x9c\x9f");
}

static void test_keyword_limits(void)
{
    /* 64 bytes is a keyword, 65 is not. */
    char name[200];
    memset(name, 'k', 64);
    snprintf(name + 64, sizeof(name) - 64, " ok.txt");
    CU_ASSERT_EQUAL(strlen(name_keywords(name)), strlen("txt ") + 64 + strlen(" ok"));
    memset(name, 'k', 65);
    snprintf(name + 65, sizeof(name) - 65, " ok.txt");
    CU_ASSERT_STRING_EQUAL(name_keywords(name), "txt ok");

    /* 19 distinct words: 16 kept, the extension among them. */
    const char *many =
        "w01 w02 w03 w04 w05 w06 w07 w08 w09 w10 w11 w12 w13 w14 w15 w16 w17 w18.ext";
    struct sn_keywords kw;
    sn_keywords_from_name(&kw, many, strlen(many));
    CU_ASSERT_EQUAL(kw.n, SN_KEYWORDS_MAX);
    CU_ASSERT(kw.truncated);
    CU_ASSERT_STRING_EQUAL(name_keywords(many),
                           "ext w01 w02 w03 w04 w05 w06 w07 w08 w09 w10 w11 w12 w13 w14 w15");

    /* Queries use the same rule; impossible queries are void. */
    struct wire_str q[2] = {wire_str_from("Big-LEBOWSKI"), wire_str_from("a")};
    sn_keywords_from_query(&kw, q, 2);
    CU_ASSERT_EQUAL(kw.n, 2);
    CU_ASSERT_FALSE(sn_keywords_query_void(&kw));
    q[0] = wire_str_from("a - b");
    sn_keywords_from_query(&kw, q, 1);
    CU_ASSERT(sn_keywords_query_void(&kw));
    memset(name, 'k', 65);
    q[0] = (struct wire_str){name, 65};
    sn_keywords_from_query(&kw, q, 1);
    CU_ASSERT(sn_keywords_query_void(&kw));
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("sn_keywords", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "keywords of names: split, lowercase, extension", test_keywords_of_names);
    CU_add_test(s, "keyword length and count limits; void queries", test_keyword_limits);
    return 0;
}
