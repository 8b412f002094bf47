/* test_base32.c - RFC 4648 base32: test vectors, strict decoding, node IDs. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "base32.h"
#include "err.h"
#include "identity.h"

/* RFC 4648 section 10, lowercased and without the '=' padding. */
static const struct {
    const char *plain;
    const char *encoded;
} rfc4648_vectors[] = {
    {"", ""},
    {"f", "my"},
    {"fo", "mzxq"},
    {"foo", "mzxw6"},
    {"foob", "mzxw6yq"},
    {"fooba", "mzxw6ytb"},
    {"foobar", "mzxw6ytboi"},
};
#define N_VECTORS (sizeof(rfc4648_vectors) / sizeof(rfc4648_vectors[0]))

static void test_encode_rfc4648_vectors(void)
{
    for (size_t i = 0; i < N_VECTORS; i++) {
        const char *plain = rfc4648_vectors[i].plain;
        char out[32];
        CU_ASSERT_EQUAL(base32_encode((const uint8_t *)plain, strlen(plain), out, sizeof(out)), 0);
        CU_ASSERT_STRING_EQUAL(out, rfc4648_vectors[i].encoded);
        CU_ASSERT_EQUAL(strlen(out), BASE32_ENCODED_LEN(strlen(plain)));
    }
}

static void test_decode_rfc4648_vectors_any_case(void)
{
    for (size_t i = 0; i < N_VECTORS; i++) {
        const char *enc = rfc4648_vectors[i].encoded;
        char upper[32];
        size_t len = strlen(enc);
        for (size_t j = 0; j <= len; j++)
            upper[j] = (char)(enc[j] >= 'a' && enc[j] <= 'z' ? enc[j] - 'a' + 'A' : enc[j]);
        const char *forms[] = {enc, upper};
        for (size_t f = 0; f < 2; f++) {
            uint8_t out[16];
            size_t got = 99;
            CU_ASSERT_EQUAL(base32_decode(forms[f], len, out, sizeof(out), &got), 0);
            CU_ASSERT_EQUAL(got, strlen(rfc4648_vectors[i].plain));
            CU_ASSERT(memcmp(out, rfc4648_vectors[i].plain, got) == 0);
        }
    }
}

static void expect_decode_error(const char *in, int want)
{
    uint8_t out[64];
    size_t got = 99;
    int rc = base32_decode(in, strlen(in), out, sizeof(out), &got);
    if (rc != want)
        fprintf(stderr, "\n  decode(\"%s\") = %d, expected %d\n", in, rc, want);
    CU_ASSERT_EQUAL(rc, want);
    CU_ASSERT_EQUAL(got, 0);
}

static void test_decode_is_strict(void)
{
    /* Lengths the encoder never produces. */
    expect_decode_error("m", SOVA_ERR_BAD_LENGTH);
    expect_decode_error("mzx", SOVA_ERR_BAD_LENGTH);
    expect_decode_error("mzxw6y", SOVA_ERR_BAD_LENGTH);
    expect_decode_error("mzxw6ytbo", SOVA_ERR_BAD_LENGTH);
    /* Characters outside the alphabet: padding, digits 0/1/8/9, space. */
    expect_decode_error("my======", SOVA_ERR_BAD_VALUE);
    expect_decode_error("mzxw6yt1", SOVA_ERR_BAD_VALUE);
    expect_decode_error("mzxw6yt8", SOVA_ERR_BAD_VALUE);
    expect_decode_error("mz w6ytb", SOVA_ERR_BAD_VALUE);
    expect_decode_error("mzxw-ytb", SOVA_ERR_BAD_VALUE);
    /* Non-zero unused bits: "mz" would also decode to "f" if not rejected. */
    expect_decode_error("mz", SOVA_ERR_BAD_VALUE);
    expect_decode_error("mzxr", SOVA_ERR_BAD_VALUE);
    /* An embedded NUL inside the given length is a bad character. */
    uint8_t out[8];
    size_t got = 99;
    CU_ASSERT_EQUAL(base32_decode("my\0a", 4, out, sizeof(out), &got), SOVA_ERR_BAD_VALUE);
}

static void test_buffer_sizes(void)
{
    char small[10];
    /* "foobar" needs 10 characters + NUL. */
    CU_ASSERT_EQUAL(base32_encode((const uint8_t *)"foobar", 6, small, sizeof(small)),
                    SOVA_ERR_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(small, "");
    char exact[11];
    CU_ASSERT_EQUAL(base32_encode((const uint8_t *)"foobar", 6, exact, sizeof(exact)), 0);
    uint8_t out[5];
    size_t got = 99;
    CU_ASSERT_EQUAL(base32_decode("mzxw6ytboi", 10, out, sizeof(out), &got), SOVA_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(got, 0);
}

static void test_round_trip_all_lengths(void)
{
    srand(4648);
    for (size_t len = 0; len <= 64; len++) {
        uint8_t in[64], back[64];
        char text[BASE32_ENCODED_LEN(64) + 1];
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)rand();
        CU_ASSERT_EQUAL_FATAL(base32_encode(in, len, text, sizeof(text)), 0);
        CU_ASSERT_EQUAL(strlen(text), BASE32_ENCODED_LEN(len));
        CU_ASSERT_EQUAL(strspn(text, "abcdefghijklmnopqrstuvwxyz234567"), strlen(text));
        size_t got = 0;
        CU_ASSERT_EQUAL(base32_decode(text, strlen(text), back, sizeof(back), &got), 0);
        CU_ASSERT_EQUAL(got, len);
        CU_ASSERT(memcmp(in, back, len) == 0);
    }
}

static void test_node_id_format_and_parse(void)
{
    CU_ASSERT_EQUAL(NODE_ID_STR_LEN, 52);
    uint8_t id[NODE_ID_LEN], back[NODE_ID_LEN];
    for (size_t i = 0; i < NODE_ID_LEN; i++)
        id[i] = (uint8_t)(i * 37 + 11);
    char text[NODE_ID_STR_LEN + 1];
    node_id_format(id, text);
    CU_ASSERT_EQUAL(strlen(text), 52);
    CU_ASSERT_EQUAL(node_id_parse(text, back), 0);
    CU_ASSERT(memcmp(id, back, NODE_ID_LEN) == 0);

    /* Upper case is accepted (IDs get retyped); the result is the same ID. */
    char upper[NODE_ID_STR_LEN + 1];
    for (size_t i = 0; i <= NODE_ID_STR_LEN; i++)
        upper[i] = (char)(text[i] >= 'a' && text[i] <= 'z' ? text[i] - 'a' + 'A' : text[i]);
    memset(back, 0, sizeof(back));
    CU_ASSERT_EQUAL(node_id_parse(upper, back), 0);
    CU_ASSERT(memcmp(id, back, NODE_ID_LEN) == 0);

    /* 32 zero bytes, then the wrong lengths and characters around it. */
    char zeros[NODE_ID_STR_LEN + 2];
    memset(zeros, 'a', NODE_ID_STR_LEN);
    zeros[NODE_ID_STR_LEN] = '\0';
    CU_ASSERT_EQUAL(node_id_parse(zeros, back), 0);
    zeros[NODE_ID_STR_LEN - 1] = 'b'; /* 52nd character has 4 unused bits */
    CU_ASSERT_EQUAL(node_id_parse(zeros, back), SOVA_ERR_BAD_VALUE);
    zeros[NODE_ID_STR_LEN - 1] = 'a';
    zeros[NODE_ID_STR_LEN] = 'a';
    zeros[NODE_ID_STR_LEN + 1] = '\0';
    CU_ASSERT_EQUAL(node_id_parse(zeros, back), SOVA_ERR_BAD_LENGTH);
    zeros[NODE_ID_STR_LEN - 1] = '\0';
    CU_ASSERT_EQUAL(node_id_parse(zeros, back), SOVA_ERR_BAD_LENGTH);
    CU_ASSERT_EQUAL(node_id_parse("", back), SOVA_ERR_BAD_LENGTH);
    memcpy(zeros, text, sizeof(text));
    zeros[10] = '0';
    CU_ASSERT_EQUAL(node_id_parse(zeros, back), SOVA_ERR_BAD_VALUE);
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("base32", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "encode matches RFC 4648 vectors", test_encode_rfc4648_vectors);
    CU_add_test(s, "decode RFC 4648 vectors in any case", test_decode_rfc4648_vectors_any_case);
    CU_add_test(s, "decode rejects bad lengths, characters and bits", test_decode_is_strict);
    CU_add_test(s, "output buffers are bounded", test_buffer_sizes);
    CU_add_test(s, "round trip for lengths 0..64", test_round_trip_all_lengths);
    CU_add_test(s, "node ID is 52 chars and parses back", test_node_id_format_and_parse);
    return 0;
}
