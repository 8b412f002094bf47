/* op_share_hash.c - one pass over a file: its Sova file ID with the kept
 * layer of its tree, and its SHA-256 (op_share_hash_fd in op_share.h). */
#include "err.h"
#include "fileid.h"
#include "op_share.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read up to len bytes, retrying short reads; the count read, or -1. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

void op_share_hashes_clear(struct op_share_hashes *h)
{
    free(h->layer);
    memset(h, 0, sizeof(*h));
}

int op_share_hash_fd(int fd, uint64_t size, unsigned keep_height, const atomic_bool *cancel,
                     uint8_t *buf, struct op_share_hashes *out, uint64_t *read_bytes)
{
    memset(out, 0, sizeof(*out));
    struct fileid_hasher *h = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = md == NULL ? SOVA_ERR_NOMEM : fileid_hasher_new(keep_height, &h);
    if (rc == 0 && EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        rc = SOVA_ERR_CRYPTO;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (uint64_t done = 0; rc == 0 && done < size;) {
        if (cancel != NULL && atomic_load(cancel)) {
            rc = OP_SHARE_CANCELLED;
            break;
        }
        size_t want =
            size - done < OP_SHARE_READ_BYTES ? (size_t)(size - done) : OP_SHARE_READ_BYTES;
        ssize_t got = read_full(fd, buf, want);
        if (got != (ssize_t)want) {
            if (got >= 0)
                errno = EIO; /* it shrank */
            rc = SOVA_ERR_IO;
            break;
        }
        if (read_bytes != NULL)
            *read_bytes += want;
        fileid_hasher_update(h, buf, want);
        if (EVP_DigestUpdate(md, buf, want) != 1)
            rc = SOVA_ERR_CRYPTO;
        done += want;
    }
    if (rc == 0 && EVP_DigestFinal_ex(md, out->sha256, NULL) != 1)
        rc = SOVA_ERR_CRYPTO;
    uint8_t(*layer)[FILEID_LEN] = NULL;
    if (rc == 0)
        rc = fileid_hasher_final(h, out->id, out->root, &out->size, &layer, &out->n_layer);
    out->layer = (uint8_t *)layer;
    fileid_hasher_free(h);
    EVP_MD_CTX_free(md);
    if (rc != 0)
        op_share_hashes_clear(out);
    return rc;
}
