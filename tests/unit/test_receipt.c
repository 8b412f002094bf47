/* test_receipt.c - credit receipts (common/receipt.h): the signed bytes are
 * what docs/CREDITS.md says, a receipt signed by the downloader verifies,
 * and a forged one (a field changed after signing), one signed by a
 * different key, one whose key is not the downloader's, and one whose file
 * ID does not commit to its size and root (or whose bytes exceed the
 * size) are refused. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <string.h>

#include "err.h"
#include "fileid.h"
#include "receipt.h"

static EVP_PKEY *key_d, *key_e; /* the downloader, and somebody else */
static uint8_t id_d[WIRE_ID_LEN], id_e[WIRE_ID_LEN];

/* A fresh Ed25519 key and its node ID as identity.c computes it (SHA-256
 * of the SPKI DER); NULL on failure (suite setup cannot assert). */
static EVP_PKEY *new_key(uint8_t id[WIRE_ID_LEN])
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    unsigned char *der = NULL;
    int n = k ? i2d_PUBKEY(k, &der) : -1;
    unsigned dlen = 0;
    bool ok = n > 0 && EVP_Digest(der, (size_t)n, id, &dlen, EVP_sha256(), NULL) == 1;
    OPENSSL_free(der);
    if (!ok) {
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

static int suite_init(void)
{
    key_d = new_key(id_d);
    key_e = new_key(id_e);
    return key_d && key_e ? 0 : -1;
}

static void test_key_id(void)
{
    uint8_t raw[MSG_RECEIPT_KEY_LEN], again[WIRE_ID_LEN];
    size_t len = sizeof(raw);
    CU_ASSERT_FATAL(EVP_PKEY_get_raw_public_key(key_d, raw, &len) == 1);
    CU_ASSERT_EQUAL(receipt_key_id(raw, again), 0);
    CU_ASSERT(memcmp(again, id_d, WIRE_ID_LEN) == 0);
}

static int suite_clean(void)
{
    EVP_PKEY_free(key_d);
    EVP_PKEY_free(key_e);
    return 0;
}

static struct msg_receipt sample(void)
{
    struct msg_receipt r;
    memset(&r, 0, sizeof(r));
    memcpy(r.downloader_id, id_d, WIRE_ID_LEN);
    memset(r.source_id, 0x72, WIRE_ID_LEN);
    /* A file of 3 MiB whose root is 0x73...: its ID is what fileid_make says. */
    r.file_size = 3 << 20;
    memset(r.root, 0x73, WIRE_HASH_LEN);
    fileid_make(r.file_size, r.root, r.file_id);
    r.bytes = 1048576;
    r.seq = 5;
    r.time_s = 1700000000;
    return r;
}

static void test_signed_bytes(void)
{
    struct msg_receipt r = sample();
    uint8_t tbs[RECEIPT_TBS_LEN];
    CU_ASSERT_EQUAL(receipt_tbs(&r, tbs), RECEIPT_TBS_LEN);
    CU_ASSERT_EQUAL(RECEIPT_TBS_LEN, 16 + 96 + 8 + 32 + 24);
    CU_ASSERT_EQUAL(RECEIPT_TBS_LEN, 176);
    CU_ASSERT(memcmp(tbs, "sova receipt v2\0", 16) == 0);
    CU_ASSERT(memcmp(tbs + 16, id_d, WIRE_ID_LEN) == 0);
    CU_ASSERT_EQUAL(tbs[16 + 32], 0x72);
    CU_ASSERT(memcmp(tbs + 16 + 64, r.file_id, WIRE_HASH_LEN) == 0);
    static const uint8_t size[8] = {0, 0, 0, 0, 0, 0x30, 0, 0};
    CU_ASSERT(memcmp(tbs + 112, size, sizeof(size)) == 0);
    CU_ASSERT_EQUAL(tbs[120], 0x73);
    CU_ASSERT_EQUAL(tbs[151], 0x73);
    static const uint8_t tail[24] = {0, 0, 0, 0, 0, 0x10, 0, 0,    0,    0,    0,    0,
                                     0, 0, 0, 5, 0, 0,    0, 0x00, 0x65, 0x53, 0xf1, 0x00};
    CU_ASSERT(memcmp(tbs + 152, tail, sizeof(tail)) == 0);
}

static void test_sign_and_verify(void)
{
    struct msg_receipt r = sample();
    CU_ASSERT_EQUAL_FATAL(receipt_sign(&r, key_d), 0);
    CU_ASSERT_EQUAL(receipt_verify(&r), RECEIPT_OK);
    /* Whoever holds the bytes can check them: encode, decode, verify. */
    struct msg m = {.type = MSG_RECEIPT}, got;
    m.u.receipt = r;
    struct wire_limits lim = wire_limits_default();
    struct wire_buf out;
    wire_buf_init(&out);
    CU_ASSERT_EQUAL_FATAL(msg_encode(&m, &lim, &out, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(msg_decode(MSG_RECEIPT, out.data + WIRE_FRAME_HDR_SIZE,
                                     out.len - WIRE_FRAME_HDR_SIZE, &lim, &got, NULL),
                          0);
    CU_ASSERT_EQUAL(receipt_verify(&got.u.receipt), RECEIPT_OK);
    msg_clear(&got);
    wire_buf_free(&out);
}

static void test_forged(void)
{
    struct msg_receipt r = sample();
    CU_ASSERT_EQUAL_FATAL(receipt_sign(&r, key_d), 0);
    struct msg_receipt f = r;
    f.bytes *= 100; /* more bytes than the downloader signed for */
    CU_ASSERT_EQUAL(receipt_verify(&f), RECEIPT_FORGED);
    f = r;
    f.source_id[0] ^= 1; /* credit moved to someone else */
    CU_ASSERT_EQUAL(receipt_verify(&f), RECEIPT_FORGED);
    f = r;
    f.seq++; /* a "new" receipt made from an old one */
    CU_ASSERT_EQUAL(receipt_verify(&f), RECEIPT_FORGED);
    f = r;
    f.file_size++; /* a bigger file, to make room for more bytes */
    CU_ASSERT_EQUAL(receipt_verify(&f), RECEIPT_FORGED);
    f = r;
    f.signature[10] ^= 0x40;
    CU_ASSERT_EQUAL(receipt_verify(&f), RECEIPT_FORGED);
    CU_ASSERT_STRING_EQUAL(receipt_verdict_name(RECEIPT_FORGED), "forged");
}

static void test_wrong_key(void)
{
    /* E signs a receipt in D's name: E's key is not D's. */
    struct msg_receipt r = sample();
    CU_ASSERT_EQUAL(receipt_sign(&r, key_e), SOVA_ERR_INVALID); /* we never do that */
    memcpy(r.downloader_id, id_e, WIRE_ID_LEN);
    CU_ASSERT_EQUAL_FATAL(receipt_sign(&r, key_e), 0);
    memcpy(r.downloader_id, id_d, WIRE_ID_LEN); /* now claim to be D */
    CU_ASSERT_EQUAL(receipt_verify(&r), RECEIPT_WRONG_KEY);
    /* D's key in the receipt, but the signature is E's. */
    struct msg_receipt d = sample(), e = sample();
    CU_ASSERT_EQUAL_FATAL(receipt_sign(&d, key_d), 0);
    memcpy(e.downloader_id, id_e, WIRE_ID_LEN);
    CU_ASSERT_EQUAL_FATAL(receipt_sign(&e, key_e), 0);
    memcpy(d.signature, e.signature, MSG_RECEIPT_SIG_LEN);
    CU_ASSERT_EQUAL(receipt_verify(&d), RECEIPT_FORGED);
    /* A key that is no Ed25519 point at all. */
    memset(d.pubkey, 0xFF, MSG_RECEIPT_KEY_LEN);
    enum receipt_verdict v = receipt_verify(&d);
    CU_ASSERT(v == RECEIPT_FORGED || v == RECEIPT_WRONG_KEY);
    CU_ASSERT_STRING_EQUAL(receipt_verdict_name(RECEIPT_WRONG_KEY), "wrong_key");
}

/* The size check needs no signature: the ID must commit to (size, root),
 * and the bytes must fit in the size. */
static void test_size_bound(void)
{
    struct msg_receipt r = sample();
    CU_ASSERT_EQUAL(receipt_check_size(&r), RECEIPT_OK);
    r.bytes = r.file_size;
    CU_ASSERT_EQUAL(receipt_check_size(&r), RECEIPT_OK);
    r.bytes = r.file_size + 1; /* more than the whole file */
    CU_ASSERT_EQUAL(receipt_check_size(&r), RECEIPT_BAD_SIZE);
    r = sample();
    r.bytes = 1ull << 40; /* "1 TiB of a 3 MiB file" */
    CU_ASSERT_EQUAL(receipt_check_size(&r), RECEIPT_BAD_SIZE);
    r = sample();
    r.file_size = 1ull << 40; /* a size the ID does not commit to */
    CU_ASSERT_EQUAL(receipt_check_size(&r), RECEIPT_BAD_SIZE);
    r = sample();
    r.root[0] ^= 1; /* another root */
    CU_ASSERT_EQUAL(receipt_check_size(&r), RECEIPT_BAD_SIZE);
    r = sample();
    r.file_size = UINT64_MAX; /* past FILEID_MAX_SIZE: never an ID's */
    r.bytes = 1ull << 63;
    fileid_make(r.file_size, r.root, r.file_id);
    CU_ASSERT_EQUAL(receipt_check_size(&r), RECEIPT_BAD_SIZE);
    r = sample();
    r.bytes = 0;
    CU_ASSERT_EQUAL(receipt_check_size(&r), RECEIPT_BAD_SIZE);
    CU_ASSERT_STRING_EQUAL(receipt_verdict_name(RECEIPT_BAD_SIZE), "bad_size");
}

int test_register(void)
{
    CU_pSuite s = CU_add_suite("receipt", suite_init, suite_clean);
    if (!s)
        return -1;
    CU_add_test(s, "a raw key's node ID is its SPKI hash", test_key_id);
    CU_add_test(s, "the signed bytes", test_signed_bytes);
    CU_add_test(s, "sign and verify, through the wire", test_sign_and_verify);
    CU_add_test(s, "forged receipts are refused", test_forged);
    CU_add_test(s, "a receipt signed by a different key is refused", test_wrong_key);
    CU_add_test(s, "a receipt's bytes are bounded by the size its ID commits to", test_size_bound);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
