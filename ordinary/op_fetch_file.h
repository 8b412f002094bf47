/* op_fetch_file.h - the part file of one download.
 *
 * DOWNLOADS/.sova-partial/<hex>.part holds the chunks verified so far at
 * their offsets; it is made only once a manifest checked against the file
 * ID gave the size (never at a size a hit or a source claimed). A chunk is
 * written and fdatasync'ed before its bit is set in op_store, so after a
 * crash every bit vouches for bytes on disk. The whole file's SHA-256 (for
 * people: what sha256sum prints) is fed as the prefix of chunks on disk
 * grows; when all chunks are in, fetch_file_finish() feeds the rest off
 * the critical path (a few chunks per loop turn, never one long read).
 * Then the file is committed: fsync'ed and linked to its final name, never
 * overwriting an existing file.
 *
 * Ownership: the download owns its fetch_file; fetch_file_commit() and
 * fetch_file_close() end it. Disk calls run on the caller's thread and are
 * bounded (one chunk, or a few during verification).
 */
#ifndef SOVA_OP_FETCH_FILE_H
#define SOVA_OP_FETCH_FILE_H

#include "op_store.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FETCH_PARTIAL_DIR            ".sova-partial" /* inside the downloads folder */
#define FETCH_VERIFY_CHUNKS_PER_TURN 4               /* chunks hashed per loop turn */
#define FETCH_SYNC_CHUNKS            16              /* chunks made durable together (one fsync) */
#define FETCH_SYNC_MS                250             /* ... or after this long */

struct fetch_file;

/* Open (or create) the part file of hex for a file of size bytes (a
 * verified size) whose download is id in the store. */
int fetch_file_open(struct event_base *base, const char *downloads_dir, const char *hex,
                    uint64_t size, uint32_t chunk_size, struct op_store *store,
                    const uint8_t id[OP_STORE_HASH_LEN], struct fetch_file **out, char *err,
                    size_t errlen);

/* Write chunk index (len bytes, already verified). It becomes durable and
 * marked verified in the store with its batch: after FETCH_SYNC_CHUNKS
 * chunks or FETCH_SYNC_MS, whichever comes first (fdatasync first, then one
 * store transaction), and at verify, commit and close. */
int fetch_file_store_chunk(struct fetch_file *ff, uint32_t index, const uint8_t *data, uint32_t len,
                           char *err, size_t errlen);

/* Every chunk is in: make them durable and finish the file's SHA-256,
 * incrementally; done(sha256) runs from the loop (sha256 NULL: the part
 * file could not be read back). */
typedef void fetch_file_hashed_fn(const uint8_t *sha256, void *arg);
int fetch_file_finish(struct fetch_file *ff, fetch_file_hashed_fn *done, void *arg, char *err,
                      size_t errlen);
bool fetch_file_hashing(const struct fetch_file *ff);

/* Move the verified file into place: out_path if given, else
 * downloads_dir/name, or "name (1)", "name (2)"... if taken. On success
 * *path (malloc'd) is where it went and ff is freed; on failure ff stays. */
int fetch_file_commit(struct fetch_file *ff, const char *downloads_dir, const char *name,
                      const char *out_path, char **path, char *err, size_t errlen);

/* Close without committing (the part file stays for a later resume). NULL ok. */
void fetch_file_close(struct fetch_file *ff);

/* At start: delete the part files of downloads_dir that no download
 * needs: <hex>.part whose file ID has no row in store, or a complete one
 * (a crash between `cancel` deleting the rows and the part file, or
 * between a finished file's link into place and the part name's unlink).
 * A part file of an active or failed download stays; on a store error
 * nothing is deleted. Returns how many were deleted. Blocks (readdir,
 * unlink): call before the loop runs. */
unsigned fetch_file_drop_orphans(const char *downloads_dir, struct op_store *store);

/* A file name from the network made safe for the downloads folder: no path
 * separators, no leading dots, no control characters, not empty. Pure. */
void fetch_file_safe_name(const char *name, char *out, size_t outlen);

#endif
