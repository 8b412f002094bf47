/* op_join.h - `sova-peer join BUNDLE`: a federation bundle, checked and
 * imported.
 *
 * A bundle (made by `deploy/sova-federation bundle DIR`) is a text file:
 *
 *   # comment lines
 *   sova-bundle 1
 *   bootstrap HOST:PORT          (one line per supernode, at least one)
 *   -----BEGIN CERTIFICATE-----  (the federation root certificate)
 *   ...
 *   -----END CERTIFICATE-----
 *   signature BASE64
 *
 * The signature is the root key's (Ed25519) over every byte before the
 * signature line. A bundle is good when that signature verifies with the
 * root certificate's key, the certificate is a self-signed CA, every
 * bootstrap is HOST:PORT, and the root is the one the peer expects: the
 * --root-id given, and the federation-ca the peer already uses (from its
 * config or an earlier join; --force switches from an earlier join).
 * Import writes STATE/federation/root.crt and STATE/federation/joined.conf
 * (op_config.h), each whole or not at all; nothing is written for a bad
 * bundle. Blocking file I/O: for the command line only.
 */
#ifndef SOVA_OP_JOIN_H
#define SOVA_OP_JOIN_H

#include "identity.h"
#include "op_config.h"

#include <stdbool.h>
#include <stddef.h>

#define OP_BUNDLE_MAX (64 * 1024) /* bytes of a bundle file */

struct op_join_opts {
    const char *root_id; /* the root's node ID the user expects, or NULL */
    bool force;          /* replace an earlier join's root */
};

/* Check the bundle at path against s (the peer's loaded settings) and
 * import it into s->state_dir. On success msg tells what was done (for the
 * user); on failure err says why. 0, SOVA_ERR_IO (cannot read or write),
 * SOVA_ERR_BAD_VALUE (not a bundle, bad signature, bad certificate),
 * SOVA_ERR_ID_MISMATCH (not the expected root). */
int op_join(const struct op_settings *s, const char *path, const struct op_join_opts *opts,
            char *msg, size_t msglen, char *err, size_t errlen);

/* The bundle in text (len bytes, any content: a file's, or a fuzzer's)
 * parsed and its signature checked against its own root, without reading
 * or writing anything: root_id and bootstrap (cap bytes) are filled when it
 * is good. 0, SOVA_ERR_BAD_VALUE with err saying why (name is used in it),
 * SOVA_ERR_NOMEM. */
int op_bundle_check(const char *text, size_t len, const char *name,
                    char root_id[NODE_ID_STR_LEN + 1], char *bootstrap, size_t cap, char *err,
                    size_t errlen);

#endif
