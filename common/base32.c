#include "base32.h"
#include "err.h"

static const char base32_alphabet[32] = "abcdefghijklmnopqrstuvwxyz234567";

/* Value of one character, or -1. Upper case is accepted on input only. */
static int base32_value(char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

int base32_encode(const uint8_t *in, size_t len, char *out, size_t outsize)
{
    if (outsize == 0)
        return SOVA_ERR_TOO_LARGE;
    if (len > (SIZE_MAX - 5) / 8 || BASE32_ENCODED_LEN(len) >= outsize) {
        out[0] = '\0';
        return SOVA_ERR_TOO_LARGE;
    }
    /* A bit accumulator: at most 12 bits are pending at any time. */
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = base32_alphabet[(acc >> bits) & 31];
        }
    }
    if (bits > 0)
        out[o++] = base32_alphabet[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    return 0;
}

int base32_decode(const char *in, size_t inlen, uint8_t *out, size_t outsize, size_t *outlen)
{
    *outlen = 0;
    /* 8 characters carry 5 bytes; a partial group of 1, 3 or 6 characters
     * would leave 5, 7 or 6 spare bits, which no encoder produces. */
    size_t rem = inlen % 8;
    if (rem == 1 || rem == 3 || rem == 6)
        return SOVA_ERR_BAD_LENGTH;
    size_t need = inlen / 8 * 5 + rem * 5 / 8;
    if (need > outsize)
        return SOVA_ERR_TOO_LARGE;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        int v = base32_value(in[i]);
        if (v < 0)
            return SOVA_ERR_BAD_VALUE;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Canonical form only: the spare low bits of the last character are 0. */
    if ((acc & ((1u << bits) - 1)) != 0)
        return SOVA_ERR_BAD_VALUE;
    *outlen = o;
    return 0;
}
