/* op_join.c - a federation bundle checked and imported (op_join.h). */
#include "op_join.h"

#include "err.h"
#include "identity.h"
#include "statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUNDLE_FORMAT  "sova-bundle 1"
#define BUNDLE_SIG_MAX 512 /* bytes of a signature (Ed25519: 64) */

/* A parsed bundle: pointers into the file's text (buf). */
struct bundle {
    char *buf;
    size_t signed_len; /* bytes the signature covers */
    const char *sig_b64;
    char bootstrap[CONFIG_MAX_LINE + 1];
    X509 *root;
    char root_id[NODE_ID_STR_LEN + 1];
};

static int bundle_text_ok(struct bundle *b, size_t n, const char *path, char *err, size_t errlen);

static int read_bundle(const char *path, struct bundle *b, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return SOVA_ERR_IO;
    }
    b->buf = malloc(OP_BUNDLE_MAX + 1);
    size_t n = b->buf ? fread(b->buf, 1, OP_BUNDLE_MAX + 1, f) : 0;
    bool bad = ferror(f) != 0;
    fclose(f);
    if (b->buf == NULL)
        return SOVA_ERR_NOMEM;
    if (bad) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return SOVA_ERR_IO;
    }
    return bundle_text_ok(b, n, path, err, errlen);
}

static int bundle_text_ok(struct bundle *b, size_t n, const char *path, char *err, size_t errlen)
{
    if (n > OP_BUNDLE_MAX || memchr(b->buf, '\0', n) != NULL) {
        snprintf(err, errlen, "%s: not a Sova federation bundle (%s)", path,
                 n > OP_BUNDLE_MAX ? "larger than 64 KiB" : "binary data");
        return SOVA_ERR_BAD_VALUE;
    }
    b->buf[n] = '\0';
    return 0;
}

static int add_bootstrap(struct bundle *b, const char *ep, int lineno, const char *path, char *err,
                         size_t errlen)
{
    char host[256];
    uint16_t port;
    if (config_parse_endpoint(ep, host, sizeof(host), &port) != 0 || port == 0) {
        snprintf(err, errlen, "%s:%d: bootstrap '%.64s' is not HOST:PORT", path, lineno, ep);
        return SOVA_ERR_BAD_VALUE;
    }
    size_t have = strlen(b->bootstrap);
    if (have + strlen(ep) + 2 > sizeof(b->bootstrap) - sizeof("bootstrap = ")) {
        snprintf(err, errlen, "%s:%d: too many bootstrap supernodes for one config line", path,
                 lineno);
        return SOVA_ERR_BAD_VALUE;
    }
    snprintf(b->bootstrap + have, sizeof(b->bootstrap) - have, "%s%s", have ? "," : "", ep);
    return 0;
}

static int read_root(struct bundle *b, const char *pem, size_t len, const char *path, char *err,
                     size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    b->root = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    EVP_PKEY *key = b->root ? X509_get0_pubkey(b->root) : NULL;
    uint8_t id[NODE_ID_LEN];
    if (key == NULL || node_id_from_x509(b->root, id) != 0)
        return identity_errorf(err, errlen, SOVA_ERR_BAD_VALUE,
                               "%s: its root certificate cannot be read", path);
    node_id_format(id, b->root_id);
    if (X509_check_ca(b->root) < 1 ||
        X509_NAME_cmp(X509_get_subject_name(b->root), X509_get_issuer_name(b->root)) != 0 ||
        X509_verify(b->root, key) != 1)
        return identity_errorf(err, errlen, SOVA_ERR_BAD_VALUE,
                               "%s: its certificate (ID %s) is not a self-signed CA: not a "
                               "federation root",
                               path, b->root_id);
    return 0;
}

/* The lines before "signature": format, bootstrap lines, the root's PEM. */
static int parse_bundle(struct bundle *b, const char *path, char *err, size_t errlen)
{
    char *sig = strstr(b->buf, "\nsignature ");
    while (sig != NULL && strstr(sig + 1, "\nsignature ") != NULL)
        sig = strstr(sig + 1, "\nsignature ");
    if (sig == NULL) {
        snprintf(err, errlen, "%s: not signed (no 'signature' line): not a Sova federation bundle",
                 path);
        return SOVA_ERR_BAD_VALUE;
    }
    b->signed_len = (size_t)(sig - b->buf) + 1;
    b->sig_b64 = sig + sizeof("\nsignature ") - 1;
    bool format = false;
    const char *pem = NULL, *pem_end = NULL;
    int lineno = 0;
    for (char *line = b->buf; line < b->buf + b->signed_len;) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        lineno++;
        int rc = 0;
        if (pem != NULL && pem_end == NULL) {
            if (strcmp(line, "-----END CERTIFICATE-----") == 0)
                pem_end = nl;
        } else if (line[0] == '\0' || line[0] == '#') {
            /* a comment */
        } else if (!format) {
            if (strcmp(line, BUNDLE_FORMAT) != 0) {
                snprintf(err, errlen,
                         "%s:%d: not a Sova federation bundle (expected '%s', found '%.40s')", path,
                         lineno, BUNDLE_FORMAT, line);
                rc = SOVA_ERR_BAD_VALUE;
            }
            format = true;
        } else if (strncmp(line, "bootstrap ", 10) == 0) {
            rc = add_bootstrap(b, line + 10, lineno, path, err, errlen);
        } else if (strcmp(line, "-----BEGIN CERTIFICATE-----") == 0 && pem == NULL) {
            pem = line;
        } else {
            snprintf(err, errlen, "%s:%d: unexpected line '%.40s'", path, lineno, line);
            rc = SOVA_ERR_BAD_VALUE;
        }
        *nl = '\n';
        if (rc != 0)
            return rc;
        line = nl + 1;
    }
    if (!format || pem_end == NULL || b->bootstrap[0] == '\0') {
        snprintf(err, errlen, "%s: not a complete Sova federation bundle (%s)", path,
                 !format           ? "no 'sova-bundle 1' line"
                 : pem_end == NULL ? "no root certificate"
                                   : "no bootstrap supernode");
        return SOVA_ERR_BAD_VALUE;
    }
    return read_root(b, pem, (size_t)(pem_end - pem) + 1, path, err, errlen);
}

static int check_signature(const struct bundle *b, const char *path, char *err, size_t errlen)
{
    char b64[2 * BUNDLE_SIG_MAX];
    size_t n = strcspn(b->sig_b64, "\r\n");
    const char *rest = b->sig_b64 + n + strspn(b->sig_b64 + n, "\r\n");
    unsigned char sig[2 * BUNDLE_SIG_MAX];
    int len = -1;
    if (n > 0 && n < sizeof(b64) && n % 4 == 0 && *rest == '\0') {
        memcpy(b64, b->sig_b64, n);
        b64[n] = '\0';
        len = EVP_DecodeBlock(sig, (const unsigned char *)b64, (int)n);
        for (size_t i = n; len > 0 && i > 0 && b64[i - 1] == '='; i--)
            len--; /* EVP_DecodeBlock counts the padding */
    }
    if (len <= 0) {
        snprintf(err, errlen, "%s: its signature line is not one line of base64 at the end", path);
        return SOVA_ERR_BAD_VALUE;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok =
        ctx != NULL &&
        EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, X509_get0_pubkey(b->root)) == 1 &&
        EVP_DigestVerify(ctx, sig, (size_t)len, (const unsigned char *)b->buf, b->signed_len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return identity_errorf(err, errlen, SOVA_ERR_BAD_VALUE,
                               "%s: bad signature: the bundle was changed after it was signed, or "
                               "not signed with the key of its root %s",
                               path, b->root_id);
    return 0;
}

/* Is the bundle's root the one the user and the peer expect? */
static int check_root(const struct bundle *b, const struct op_settings *s,
                      const struct op_join_opts *o, char *err, size_t errlen)
{
    uint8_t want[NODE_ID_LEN], have[NODE_ID_LEN];
    if (o->root_id != NULL && node_id_parse(o->root_id, want) != 0) {
        snprintf(err, errlen, "--root-id '%.60s' is not a node ID (52 base32 characters)",
                 o->root_id);
        return SOVA_ERR_USAGE;
    }
    node_id_parse(b->root_id, have);
    if (o->root_id != NULL && memcmp(want, have, NODE_ID_LEN) != 0) {
        snprintf(err, errlen,
                 "wrong root: the bundle's federation root is %s, not %s (--root-id); "
                 "nothing was changed",
                 b->root_id, o->root_id);
        return SOVA_ERR_ID_MISMATCH;
    }
    if (s->federation_ca == NULL)
        return 0;
    char joined[4096];
    snprintf(joined, sizeof(joined), "%s/%s", s->state_dir, OP_JOINED_CA);
    bool is_joined = strcmp(s->federation_ca, joined) == 0;
    STACK_OF(X509) *certs = NULL;
    char why[256];
    if (identity_read_certs(s->federation_ca, &certs, why, sizeof(why)) != 0) {
        if (is_joined)
            return 0; /* an earlier join's root is gone: this one replaces it */
        snprintf(err, errlen, "cannot read the federation-ca this peer uses: %s", why);
        return SOVA_ERR_IO;
    }
    bool same = false;
    char used[NODE_ID_STR_LEN + 1] = "?";
    for (int i = 0; i < sk_X509_num(certs); i++) {
        uint8_t id[NODE_ID_LEN];
        if (node_id_from_x509(sk_X509_value(certs, i), id) != 0)
            continue;
        same |= memcmp(id, have, NODE_ID_LEN) == 0;
        if (i == 0)
            node_id_format(id, used);
    }
    sk_X509_pop_free(certs, X509_free);
    if (same || (is_joined && o->force))
        return 0;
    snprintf(err, errlen,
             "wrong root: this peer uses the federation root %s (federation-ca = %s), not the "
             "bundle's %s; nothing was changed (%s)",
             used, s->federation_ca, b->root_id,
             is_joined ? "`sova-peer join --force BUNDLE` switches federations"
                       : "set federation-ca in your config to join another federation");
    return SOVA_ERR_ID_MISMATCH;
}

/* Write text to path whole: a temporary file, synced, renamed over it. */
static int write_whole(const char *path, const char *text, size_t len, mode_t mode, char *err,
                       size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return SOVA_ERR_IO;
    }
    return 0;
}

static int import(const struct bundle *b, const struct op_settings *s, const char *path, char *err,
                  size_t errlen)
{
    char dir[4096], ca[4096], conf[4096], text[2 * CONFIG_MAX_LINE + 512];
    snprintf(dir, sizeof(dir), "%s/%s", s->state_dir, OP_JOINED_DIR);
    snprintf(ca, sizeof(ca), "%s/%s", s->state_dir, OP_JOINED_CA);
    snprintf(conf, sizeof(conf), "%s/%s", s->state_dir, OP_JOINED_CONF);
    int n = snprintf(text, sizeof(text),
                     "# Written by `sova-peer join`: the federation of root %s.\n"
                     "# Join again to change it; your config's options win over these.\n"
                     "[peer]\nbootstrap = %s\nfederation-ca = %s\n",
                     b->root_id, b->bootstrap, ca);
    /* What will be read back must load: check it before writing anything. */
    struct op_settings check;
    memset(&check, 0, sizeof(check));
    int rc = n > 0 && (size_t)n < sizeof(text)
                 ? config_load_string(&op_config_schema, &check, text, conf, err, errlen)
                 : SOVA_ERR_TOO_LARGE;
    config_free(&op_config_schema, &check);
    if (rc == SOVA_ERR_TOO_LARGE)
        snprintf(err, errlen, "%s: the state directory's path is too long", path);
    if (rc != 0)
        return rc;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long pem_len = 0;
    if (bio == NULL || PEM_write_bio_X509(bio, b->root) != 1 ||
        (pem_len = BIO_get_mem_data(bio, &pem)) <= 0) {
        BIO_free(bio);
        return identity_errorf(err, errlen, SOVA_ERR_CRYPTO, "cannot encode the root");
    }
    rc = statedir_prepare(s->state_dir, err, errlen);
    if (rc == 0 && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        rc = SOVA_ERR_IO;
    }
    if (rc == 0)
        rc = write_whole(ca, pem, (size_t)pem_len, 0644, err, errlen);
    if (rc == 0)
        rc = write_whole(conf, text, (size_t)n, 0644, err, errlen);
    BIO_free(bio);
    return rc;
}

int op_join(const struct op_settings *s, const char *path, const struct op_join_opts *opts,
            char *msg, size_t msglen, char *err, size_t errlen)
{
    struct bundle b;
    memset(&b, 0, sizeof(b));
    int rc = read_bundle(path, &b, err, errlen);
    if (rc == 0)
        rc = parse_bundle(&b, path, err, errlen);
    if (rc == 0)
        rc = check_signature(&b, path, err, errlen);
    if (rc == 0)
        rc = check_root(&b, s, opts, err, errlen);
    if (rc == 0)
        rc = import(&b, s, path, err, errlen);
    if (rc == 0)
        snprintf(msg, msglen,
                 "joined the federation of root %s\n"
                 "bootstrap supernodes: %s\n"
                 "imported into %s/%s\n",
                 b.root_id, b.bootstrap, s->state_dir, OP_JOINED_DIR);
    X509_free(b.root);
    free(b.buf);
    return rc;
}

int op_bundle_check(const char *text, size_t len, const char *name,
                    char root_id[NODE_ID_STR_LEN + 1], char *bootstrap, size_t cap, char *err,
                    size_t errlen)
{
    struct bundle b;
    memset(&b, 0, sizeof(b));
    if (len > OP_BUNDLE_MAX) {
        snprintf(err, errlen, "%s: not a Sova federation bundle (larger than 64 KiB)", name);
        return SOVA_ERR_BAD_VALUE;
    }
    b.buf = malloc(len + 1);
    if (b.buf == NULL)
        return SOVA_ERR_NOMEM;
    memcpy(b.buf, text, len);
    int rc = bundle_text_ok(&b, len, name, err, errlen);
    if (rc == 0)
        rc = parse_bundle(&b, name, err, errlen);
    if (rc == 0)
        rc = check_signature(&b, name, err, errlen);
    if (rc == 0) {
        memcpy(root_id, b.root_id, NODE_ID_STR_LEN + 1);
        snprintf(bootstrap, cap, "%s", b.bootstrap);
    }
    X509_free(b.root);
    free(b.buf);
    return rc;
}
