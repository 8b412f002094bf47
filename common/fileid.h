/* fileid.h - a file's Sova ID commits to its content and its size.
 *
 * As BitTorrent v2 (BEP 52) does, the content is the root of a SHA-256
 * merkle tree over 16 KiB blocks: each block's hash is a leaf (the last
 * block may be shorter and is hashed as it is), a node is the SHA-256 of
 * its two children's hashes, and the tree has a fixed height of
 * FILEID_ROOT_HEIGHT: the leaves are padded with 32 zero bytes (so a layer
 * of any height reduces to the same root). The ID binds the size in:
 *
 *     ID = SHA-256("sova file id v2" 0x00 || u64 size, big-endian || root)
 *
 * So a source cannot pass off other content or another size under an ID.
 *
 * A **layer** is the row of hashes at one height of the tree: height h has
 * one hash per chunk of 2^h blocks (16 KiB << h), ceil(size / chunk) of
 * them, the last chunk's subtree padded with zero leaves. A downloader
 * asks a source for the layer at the chunk size it chose (a MANIFEST),
 * checks it against the ID with fileid_root_from_layer() before it asks for
 * any chunk, then checks each chunk with fileid_chunk_hash(). The whole-file
 * SHA-256 (what sha256sum prints) is computed besides, for people.
 *
 * Pure functions over buffers (OpenSSL's SHA-256); the hasher owns its
 * memory; thread-safe (no shared state). */
#ifndef SOVA_FILEID_H
#define SOVA_FILEID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FILEID_LEN         32
#define FILEID_BLOCK       16384u /* leaf block size, bytes */
#define FILEID_MAX_HEIGHT  16     /* chunks of at most 16 KiB << 16 = 1 GiB */
#define FILEID_ROOT_HEIGHT 48     /* the root: 2^48 leaves, 4 EiB */
#define FILEID_MAX_SIZE    (1ull << 62)

/* The height of a chunk size (a power of two from FILEID_BLOCK up), or -1. */
int fileid_height_of(uint64_t chunk_size);
/* Chunks of 16 KiB << height in a file of size bytes. */
uint64_t fileid_chunks(uint64_t size, unsigned height);

/* The ID of a file of size bytes with this root. */
void fileid_make(uint64_t size, const uint8_t root[FILEID_LEN], uint8_t id[FILEID_LEN]);
/* Whether id is the ID of (size, root); false past FILEID_MAX_SIZE. */
bool fileid_check(const uint8_t id[FILEID_LEN], uint64_t size, const uint8_t root[FILEID_LEN]);

/* The hash of a subtree of 2^height zero leaves (height 0: 32 zero bytes). */
void fileid_pad_hash(unsigned height, uint8_t out[FILEID_LEN]);
/* The hash of one chunk of a tree of 16 KiB << height chunks: its len
 * bytes (1..chunk size; the last chunk of a file may be shorter), padded
 * with zero leaves to 2^height. */
void fileid_chunk_hash(const void *data, size_t len, unsigned height, uint8_t out[FILEID_LEN]);
/* The root from the n hashes of the layer at height (n 0 for an empty
 * file), each level padded with fileid_pad_hash() of its height, up to
 * FILEID_ROOT_HEIGHT. 0, or SOVA_ERR_NOMEM. */
int fileid_root_from_layer(const uint8_t (*layer)[FILEID_LEN], size_t n, unsigned height,
                           uint8_t root[FILEID_LEN]);
/* Whether the layer at height (n hashes) is that of the file with id and
 * size: n is the chunk count and the root it makes is in the ID. */
bool fileid_check_layer(const uint8_t id[FILEID_LEN], uint64_t size,
                        const uint8_t (*layer)[FILEID_LEN], size_t n, unsigned height);
/* The layer at height to from the n hashes of the layer at height from
 * (from <= to): writes fileid_chunks-many hashes to out (room for
 * ceil(n / 2^(to - from))) and returns how many. */
size_t fileid_layer_up(const uint8_t (*in)[FILEID_LEN], size_t n, unsigned from, unsigned to,
                       uint8_t (*out)[FILEID_LEN]);

/* Hashing a file as it is read, in order. keep_height is the layer kept
 * for manifests (a source answers any height at or above it). */
struct fileid_hasher;
int fileid_hasher_new(unsigned keep_height, struct fileid_hasher **out);
void fileid_hasher_update(struct fileid_hasher *h, const void *data, size_t len);
/* The ID, the root and the size of what was fed, and the kept layer
 * (malloc'ed, *n_layer hashes; NULL for an empty file), handed to the
 * caller. 0 or SOVA_ERR_NOMEM (then nothing is handed over). The hasher
 * is spent: free it. */
int fileid_hasher_final(struct fileid_hasher *h, uint8_t id[FILEID_LEN], uint8_t root[FILEID_LEN],
                        uint64_t *size, uint8_t (**layer)[FILEID_LEN], size_t *n_layer);
void fileid_hasher_free(struct fileid_hasher *h);

#endif
