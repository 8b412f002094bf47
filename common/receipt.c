/* receipt.c - signing and checking credit receipts (receipt.h). */
#include "receipt.h"
#include "err.h"
#include "fileid.h"

#include <openssl/x509.h>
#include <string.h>

static const char *const verdict_names[RECEIPT_VERDICTS] = {
    [RECEIPT_OK] = "ok",
    [RECEIPT_FORGED] = "forged",
    [RECEIPT_WRONG_KEY] = "wrong_key",
    [RECEIPT_MISDIRECTED] = "misdirected",
    [RECEIPT_STALE] = "stale",
    [RECEIPT_REPLAYED] = "replayed",
    [RECEIPT_BAD_SIZE] = "bad_size",
};

const char *receipt_verdict_name(enum receipt_verdict v)
{
    return (unsigned)v < RECEIPT_VERDICTS ? verdict_names[v] : "?";
}

size_t receipt_tbs(const struct msg_receipt *r, uint8_t out[RECEIPT_TBS_LEN])
{
    size_t n = 0;
    memcpy(out, RECEIPT_DOMAIN, sizeof(RECEIPT_DOMAIN)); /* with its zero byte */
    n += sizeof(RECEIPT_DOMAIN);
    memcpy(out + n, r->downloader_id, WIRE_ID_LEN);
    n += WIRE_ID_LEN;
    memcpy(out + n, r->source_id, WIRE_ID_LEN);
    n += WIRE_ID_LEN;
    memcpy(out + n, r->file_id, WIRE_HASH_LEN);
    n += WIRE_HASH_LEN;
    wire_put_be(out + n, r->file_size, 8);
    n += 8;
    memcpy(out + n, r->root, WIRE_HASH_LEN);
    n += WIRE_HASH_LEN;
    const uint64_t nums[3] = {r->bytes, r->seq, r->time_s};
    for (int i = 0; i < 3; i++, n += 8)
        wire_put_be(out + n, nums[i], 8);
    return n;
}

int receipt_key_id(const uint8_t pubkey[MSG_RECEIPT_KEY_LEN], uint8_t id[WIRE_ID_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pubkey, MSG_RECEIPT_KEY_LEN);
    if (k == NULL)
        return SOVA_ERR_CRYPTO;
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(k, &der);
    unsigned dlen = 0;
    int ok = len > 0 && EVP_Digest(der, (size_t)len, id, &dlen, EVP_sha256(), NULL) == 1 &&
             dlen == WIRE_ID_LEN;
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    return ok ? 0 : SOVA_ERR_CRYPTO;
}

int receipt_sign(struct msg_receipt *r, EVP_PKEY *key)
{
    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519)
        return SOVA_ERR_INVALID;
    size_t klen = MSG_RECEIPT_KEY_LEN;
    uint8_t id[WIRE_ID_LEN];
    if (EVP_PKEY_get_raw_public_key(key, r->pubkey, &klen) != 1 || klen != MSG_RECEIPT_KEY_LEN ||
        receipt_key_id(r->pubkey, id) != 0)
        return SOVA_ERR_CRYPTO;
    if (memcmp(id, r->downloader_id, WIRE_ID_LEN) != 0)
        return SOVA_ERR_INVALID;
    uint8_t tbs[RECEIPT_TBS_LEN];
    size_t n = receipt_tbs(r, tbs), slen = MSG_RECEIPT_SIG_LEN;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, r->signature, &slen, tbs, n) == 1 && slen == MSG_RECEIPT_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : SOVA_ERR_CRYPTO;
}

enum receipt_verdict receipt_verify(const struct msg_receipt *r)
{
    uint8_t id[WIRE_ID_LEN];
    if (receipt_key_id(r->pubkey, id) != 0)
        return RECEIPT_FORGED;
    if (memcmp(id, r->downloader_id, WIRE_ID_LEN) != 0)
        return RECEIPT_WRONG_KEY;
    EVP_PKEY *k =
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, r->pubkey, MSG_RECEIPT_KEY_LEN);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t tbs[RECEIPT_TBS_LEN];
    size_t n = receipt_tbs(r, tbs);
    int ok = k != NULL && ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(ctx, r->signature, MSG_RECEIPT_SIG_LEN, tbs, n) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    return ok ? RECEIPT_OK : RECEIPT_FORGED;
}

enum receipt_verdict receipt_check_size(const struct msg_receipt *r)
{
    return r->bytes >= 1 && r->bytes <= r->file_size &&
                   fileid_check(r->file_id, r->file_size, r->root)
               ? RECEIPT_OK
               : RECEIPT_BAD_SIZE;
}
