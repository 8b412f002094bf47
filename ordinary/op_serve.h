/* op_serve.h - serving shared files to other peers.
 *
 * Another peer connects (TLS, peer<->peer policy: we learn its ID), asks for
 * a file's MANIFEST and GETs chunk ranges by file ID, at the chunk size it
 * chose (any power of two from 64 KiB to 16 MiB); we answer the layer of
 * the file's tree at that size (computed from the kept layer, never by
 * reading the file) and DATA frames read from the share. Only files of the
 * last share scan are served, by ID, never by a path from the network; a
 * file that changed since it was hashed (size, mtime or inode differ) is
 * not served under its old ID (ERROR not-found, and a rescan is requested).
 *
 * What a source answers (docs/PROTOCOL.md, "What a source answers"): an
 * unknown file ID or a first chunk past the end: ERROR 104 NOT_FOUND (the
 * link stays); a range running past the end: served up to the last chunk;
 * a GET of more than OP_SERVE_MAX_GET_CHUNKS chunks or
 * OP_SERVE_MAX_GET_BYTES bytes, or with OP_SERVE_MAX_QUEUED_GETS waiting:
 * ERROR 101 LIMIT_REACHED (the link stays); a chunk size that is no power
 * of two in 64 KiB..16 MiB never gets here: the decoder refuses it (ERROR
 * 15 BAD_VALUE, the link closes).
 *
 * Pacing: DATA for a link is produced only while its output queue is short
 * (the link's drained hook resumes it), and all uploads share one token
 * bucket when an upload limit is set, so memory stays bounded and a slow
 * downloader never holds more than a few frames of ours.
 *
 * Ownership: the server owns the links it accepts and their open files.
 * Nothing blocks but bounded reads of one DATA frame from disk.
 */
#ifndef SOVA_OP_SERVE_H
#define SOVA_OP_SERVE_H

#include "link.h"
#include "tls.h"

#include <event2/bufferevent.h>
#include "op_share.h"

#include <event2/event.h>
#include <stdint.h>

#define OP_SERVE_MAX_QUEUED_GETS 8                   /* GETs a link may have waiting */
#define OP_SERVE_MAX_GET_CHUNKS  64                  /* chunks one GET may ask for */
#define OP_SERVE_MAX_GET_BYTES   (64u * 1024 * 1024) /* ... and bytes (count x chunk size) */
/* A MANIFEST combines at most this many kept-layer hashes (4 GiB of file
 * at 64 KiB): its page holds fewer hashes than asked at large chunk sizes,
 * so one MANIFEST_GET costs a bounded number of SHA-256s. */
#define OP_SERVE_MANIFEST_SPAN 65536
#define OP_SERVE_FRAME_DATA    (256u * 1024)  /* bytes of file per DATA frame */
#define OP_SERVE_MIN_FRAME     (16u * 1024)   /* ... at least, under an upload limit */
#define OP_SERVE_QUEUE_BYTES   (2048u * 1024) /* produce DATA while queued output < this */
#define OP_SERVE_MAX_REVERSALS 8              /* reversal dials at once */

/* Upload slots (op_server_set_slots): the defaults of upload-slots and
 * upload-max-wait-s. */
#define OP_SERVE_SLOTS_DEFAULT       4
#define OP_SERVE_MAX_WAIT_MS_DEFAULT 20000

struct op_server;

struct op_server_stats {
    uint64_t bytes_sent; /* file bytes in DATA frames */
    uint64_t chunks_sent;
    unsigned links;     /* peers connected to us now */
    unsigned uploading; /* of them, with a GET in progress */
    unsigned waiting;   /* of those, waiting for an upload slot */
};

/* share is borrowed and outlives the server. upload_limit_bps 0 = none. */
struct op_server *op_server_new(struct event_base *base, struct op_share *share,
                                const struct link_params *params, uint64_t upload_limit_bps);
/* Serve from share from now on (the share folders changed: op_folders.h).
 * Uploads in progress look their file up again at their next request. */
void op_server_set_share(struct op_server *srv, struct op_share *share);
/* Frees every link at once (shutdown). NULL is fine. */
void op_server_free(struct op_server *srv);
/* A new total upload rate (reload); 0 = none. Uploads running go on at it. */
void op_server_set_upload_limit(struct op_server *srv, uint64_t upload_limit_bps);

/* Take an accepted connection (fd and ssl are owned by the server now). */
void op_server_accept(struct op_server *srv, evutil_socket_t fd, SSL *ssl,
                      const struct sockaddr *sa, socklen_t len);

void op_server_stats(const struct op_server *srv, struct op_server_stats *out);

/* One peer connected to us (`sova-peer peers`): borrowed for the call. */
struct op_server_peer {
    const uint8_t *peer_id;       /* its node ID (TLS identity) */
    const struct wire_addr *addr; /* its address; NULL through a relay circuit */
    const char *path;    /* "direct" (it connected), "reversal" (we did), "holepunch", "relay" */
    uint64_t bytes_sent; /* file bytes in DATA to it */
    uint64_t rate_bps;   /* over the last second or so */
    bool uploading;      /* a GET in progress */
};
typedef void op_server_peer_fn(const struct op_server_peer *p, void *arg);
/* Every peer connected to us whose link is open. */
void op_server_foreach_peer(const struct op_server *srv, op_server_peer_fn *fn, void *arg);

/* Upload slots (docs/CREDITS.md, "Priority"; op_slots.h): at most `slots`
 * peers are sent DATA at once; the others wait, the one with the most
 * credit first, none longer than max_wait_ms without a chunk. */
void op_server_set_slots(struct op_server *srv, unsigned slots, uint64_t max_wait_ms);
/* The credit of a requester as far as we know it now (0 unknown); the
 * daemon may look it up and tell us later with op_server_credit_known(). */
typedef uint64_t op_server_credit_fn(const uint8_t peer_id[WIRE_ID_LEN], void *arg);
/* A RECEIPT from a downloader whose TLS identity is peer_id; borrowed for
 * the call. */
typedef void op_server_receipt_fn(const uint8_t peer_id[WIRE_ID_LEN], const struct msg_receipt *r,
                                  void *arg);
void op_server_set_credit(struct op_server *srv, op_server_credit_fn *credit_of,
                          op_server_receipt_fn *on_receipt, void *arg);
void op_server_credit_known(struct op_server *srv, const uint8_t peer_id[WIRE_ID_LEN],
                            uint64_t credit);

/* An accepted connection whose HELLO carries a connect_token answers a
 * CONNECT of ours (reversal): it is offered to fn, which returns true when
 * it took the link (link_set_hooks); otherwise the server closes it. */
typedef bool op_server_adopt_fn(struct link *l, void *arg);
void op_server_set_adopt(struct op_server *srv, op_server_adopt_fn *fn, void *arg);

/* Serve a peer that reached us through a relay circuit: stream (from
 * nat_relay, owned from now) carries TLS; ssl is a server SSL expecting the
 * circuit's origin. */
void op_server_wrap(struct op_server *srv, struct bufferevent *stream, SSL *ssl, const char *name);
/* The same for a connection made by a hole punch (op_punch.h): a plain TCP
 * bufferevent, owned from now; ssl a server SSL expecting the downloader. */
void op_server_wrap_punched(struct op_server *srv, struct bufferevent *stream, SSL *ssl,
                            const char *name);

/* Connection reversal: a downloader that can be reached, while we cannot,
 * asked us (CONNECT_REQUEST) to connect out to it. Dial addrs in turn (TLS expecting requester,
 * HELLO with token) and serve it once connected. At most OP_SERVE_MAX_REVERSALS at once. tls is
 * borrowed and outlives the server. */
void op_server_reverse(struct op_server *srv, struct tls_ctx *tls,
                       const uint8_t requester[WIRE_ID_LEN], const uint8_t token[WIRE_TOKEN_LEN],
                       const struct wire_addr *addrs, size_t n);

#endif
