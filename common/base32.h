/* base32.h - RFC 4648 base32 (section 6 alphabet), lowercase, no padding.
 *
 * Node IDs are shown and typed in this form: 32 bytes become 52 characters of
 * [a-z2-7]. Decoding is case-insensitive (people copy IDs out of logs and
 * chats) but otherwise strict, so that each byte string has exactly one
 * accepted text form: no padding, no whitespace, no length that cannot come
 * from the encoder, and the unused low bits of the last character must be 0.
 * Pure functions; no allocation; never block.
 */
#ifndef SOVA_BASE32_H
#define SOVA_BASE32_H

#include <stddef.h>
#include <stdint.h>

/* Characters (without the NUL) that n input bytes encode to: ceil(8n / 5). */
#define BASE32_ENCODED_LEN(n) (((n)*8 + 4) / 5)

/* Encode len bytes of in into out as a NUL-terminated string. outsize must be
 * at least BASE32_ENCODED_LEN(len) + 1. Returns 0, or SOVA_ERR_TOO_LARGE if out
 * is too small (out is then set to "" when outsize > 0). */
int base32_encode(const uint8_t *in, size_t len, char *out, size_t outsize);

/* Decode inlen characters of in into out (outsize bytes) and store the number
 * of bytes in *outlen. Returns 0; SOVA_ERR_BAD_VALUE for a character outside
 * the alphabet (including '=' and NUL) or non-zero unused trailing bits;
 * SOVA_ERR_BAD_LENGTH for a length the encoder never produces (1, 3 or 6
 * modulo 8); SOVA_ERR_TOO_LARGE if out is too small. On error *outlen is 0 and
 * the contents of out are unspecified. */
int base32_decode(const char *in, size_t inlen, uint8_t *out, size_t outsize, size_t *outlen);

#endif
