/* identity.c - key pairs, certificates and node IDs; see identity.h. */
#include "identity.h"
#include "err.h"
#include "log.h"
#include "statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define LOG_MOD "identity"
/* Subject CN of a peer's self-signed certificate. The CN carries no trust:
 * peers are known by their key, so every peer uses the same name. */
#define PEER_CERT_CN "sova-peer"
/* RFC 5280 4.1.2.5: "no well-defined expiration date" for a peer's
 * self-signed certificate, whose only job is to carry the key. */
#define PEER_CERT_NOT_AFTER "99991231235959Z"
/* notBefore is set this far in the past so that a peer whose clock is a little
 * behind still accepts a freshly made certificate. */
#define PEER_CERT_BACKDATE_SECONDS 3600
#define CERT_SERIAL_BYTES          16

struct sova_identity {
    EVP_PKEY *key;
    X509 *cert;
    STACK_OF(X509) * chain; /* extra certificates sent after cert; may be NULL */
    uint8_t id[NODE_ID_LEN];
    char id_str[NODE_ID_STR_LEN + 1];
    char short_id[NODE_ID_SHORT_LEN + 1];
};

/* A whole file read into memory; cleansed on free because it may be a key. */
struct file_buf {
    char *data;
    size_t len;
};

int identity_errorf(char *errbuf, size_t errlen, int code, const char *fmt, ...)
{
    /* Only an OpenSSL failure gets OpenSSL's reason: for anything else a
     * leftover queue entry would be a misleading explanation. */
    unsigned long ossl = code == SOVA_ERR_CRYPTO ? ERR_get_error() : 0;
    if (errbuf != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
        if (ossl != 0 && n >= 0 && (size_t)n < errlen) {
            const char *reason = ERR_reason_error_string(ossl);
            char code_text[128];
            if (reason == NULL) {
                ERR_error_string_n(ossl, code_text, sizeof(code_text));
                reason = code_text;
            }
            snprintf(errbuf + n, errlen - (size_t)n, ": %s", reason);
        }
    }
    ERR_clear_error();
    return code;
}

static void chain_free(STACK_OF(X509) * chain)
{
    sk_X509_pop_free(chain, X509_free); /* accepts NULL */
}

/* ---- node IDs ------------------------------------------------------------ */

int node_id_from_x509(X509 *cert, uint8_t out[NODE_ID_LEN])
{
    if (cert == NULL)
        return SOVA_ERR_INVALID;
    X509_PUBKEY *spki = X509_get_X509_PUBKEY(cert);
    if (spki == NULL)
        return SOVA_ERR_INVALID;
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(spki, &der);
    if (len <= 0)
        return SOVA_ERR_CRYPTO;
    unsigned int mdlen = 0;
    int ok = EVP_Digest(der, (size_t)len, out, &mdlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    return ok == 1 && mdlen == NODE_ID_LEN ? 0 : SOVA_ERR_CRYPTO;
}

void node_id_format(const uint8_t id[NODE_ID_LEN], char out[NODE_ID_STR_LEN + 1])
{
    /* Cannot fail: the buffer size is fixed by the type. */
    (void)base32_encode(id, NODE_ID_LEN, out, NODE_ID_STR_LEN + 1);
}

int node_id_parse(const char *s, uint8_t out[NODE_ID_LEN])
{
    size_t len = strnlen(s, NODE_ID_STR_LEN + 1);
    if (len != NODE_ID_STR_LEN)
        return SOVA_ERR_BAD_LENGTH;
    size_t got = 0;
    int rc = base32_decode(s, len, out, NODE_ID_LEN, &got);
    if (rc != 0)
        return rc;
    return got == NODE_ID_LEN ? 0 : SOVA_ERR_BAD_LENGTH;
}

/* ---- accessors ----------------------------------------------------------- */

void identity_free(struct sova_identity *id)
{
    if (id == NULL)
        return;
    EVP_PKEY_free(id->key);
    X509_free(id->cert);
    chain_free(id->chain);
    free(id);
}

const uint8_t *identity_id(const struct sova_identity *id)
{
    return id->id;
}

const char *identity_id_str(const struct sova_identity *id)
{
    return id->id_str;
}

const char *identity_short_id(const struct sova_identity *id)
{
    return id->short_id;
}

EVP_PKEY *identity_key(const struct sova_identity *id)
{
    return id->key;
}

X509 *identity_cert(const struct sova_identity *id)
{
    return id->cert;
}

STACK_OF(X509) * identity_chain(const struct sova_identity *id)
{
    return id->chain;
}

/* Build an identity from parts the caller hands over (freed on error too). */
static int identity_assemble(EVP_PKEY *key, X509 *cert, STACK_OF(X509) * chain,
                             struct sova_identity **out, char *errbuf, size_t errlen)
{
    struct sova_identity *id = calloc(1, sizeof(*id));
    if (id == NULL) {
        EVP_PKEY_free(key);
        X509_free(cert);
        chain_free(chain);
        return identity_errorf(errbuf, errlen, SOVA_ERR_NOMEM, "out of memory");
    }
    id->key = key;
    id->cert = cert;
    id->chain = chain;
    int rc = node_id_from_x509(cert, id->id);
    if (rc != 0) {
        identity_free(id);
        return identity_errorf(errbuf, errlen, rc, "cannot compute the node ID of the certificate");
    }
    node_id_format(id->id, id->id_str);
    memcpy(id->short_id, id->id_str, NODE_ID_SHORT_LEN);
    id->short_id[NODE_ID_SHORT_LEN] = '\0';
    *out = id;
    return 0;
}

/* ---- reading files ------------------------------------------------------- */

static void file_buf_free(struct file_buf *fb)
{
    if (fb->data != NULL)
        OPENSSL_clear_free(fb->data, fb->len);
    fb->data = NULL;
    fb->len = 0;
}

/* Read a whole key or certificate file. For a key, refuse anything but a
 * regular file that only its owner may read or write. The mode is checked on
 * the open descriptor (fstat), so the file we read is the file we checked.
 * O_NONBLOCK keeps open() from hanging on a FIFO planted at the key's path. */
static int read_file(const char *path, bool is_key, struct file_buf *out, char *errbuf,
                     size_t errlen)
{
    const char *what = is_key ? "key" : "certificate";
    out->data = NULL;
    out->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return identity_errorf(errbuf, errlen, SOVA_ERR_IO, "cannot open %s %s: %s", what, path,
                               strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = identity_errorf(errbuf, errlen, SOVA_ERR_IO, "cannot stat %s %s: %s", what, path,
                             strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = identity_errorf(errbuf, errlen, is_key ? SOVA_ERR_KEY_PERMS : SOVA_ERR_IO,
                             "%s %s is not a regular file", what, path);
    } else if (is_key && st.st_uid != geteuid()) {
        /* Its owner could swap the key for one of theirs, mode 0600 or not. */
        rc = identity_errorf(errbuf, errlen, SOVA_ERR_KEY_PERMS,
                             "key %s belongs to user %u, not to the user running this (%u); "
                             "chown it to that user",
                             path, (unsigned)st.st_uid, (unsigned)geteuid());
    } else if (is_key && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        rc = identity_errorf(errbuf, errlen, SOVA_ERR_KEY_PERMS,
                             "key %s has mode %04o; must not be readable or writable by group or "
                             "others (chmod 600)",
                             path, (unsigned)(st.st_mode & 07777));
    } else if (st.st_size <= 0 || st.st_size > IDENTITY_FILE_MAX) {
        rc = identity_errorf(errbuf, errlen, SOVA_ERR_IO,
                             "%s %s has size %lld; expected 1..%ld bytes", what, path,
                             (long long)st.st_size, IDENTITY_FILE_MAX);
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    out->data = OPENSSL_malloc((size_t)st.st_size);
    if (out->data == NULL) {
        close(fd);
        return identity_errorf(errbuf, errlen, SOVA_ERR_NOMEM, "out of memory reading %s", path);
    }
    while (out->len < (size_t)st.st_size) {
        ssize_t n = read(fd, out->data + out->len, (size_t)st.st_size - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = identity_errorf(errbuf, errlen, SOVA_ERR_IO, "cannot read %s %s: %s", what, path,
                                 n < 0 ? strerror(errno) : "file shrank while reading");
            break;
        }
        out->len += (size_t)n;
    }
    close(fd);
    if (rc != 0)
        file_buf_free(out);
    return rc;
}

/* PEM callback: keys are stored unencrypted; never prompt on a terminal. */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return -1;
}

static int load_key(const char *path, EVP_PKEY **out, char *errbuf, size_t errlen)
{
    struct file_buf fb;
    int rc = read_file(path, true, &fb, errbuf, errlen);
    if (rc != 0)
        return rc;
    BIO *bio = BIO_new_mem_buf(fb.data, (int)fb.len);
    *out = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase_cb, NULL) : NULL;
    BIO_free(bio);
    file_buf_free(&fb);
    if (*out == NULL)
        return identity_errorf(errbuf, errlen, SOVA_ERR_CRYPTO,
                               "key %s is not an unencrypted PEM private key", path);
    if (EVP_PKEY_get_id(*out) != EVP_PKEY_ED25519) {
        /* Every Sova key is Ed25519 (docs/IDENTITY.md): others would refuse it. */
        rc = identity_errorf(errbuf, errlen, SOVA_ERR_KEY_TYPE,
                             "key %s is %s, not Ed25519 (make keys with sova-federation)", path,
                             EVP_PKEY_get0_type_name(*out));
        EVP_PKEY_free(*out);
        *out = NULL;
        return rc;
    }
    return 0;
}

int identity_read_key(const char *path, EVP_PKEY **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    return load_key(path, out, errbuf, errlen);
}

int identity_read_certs(const char *path, STACK_OF(X509) * *out, char *errbuf, size_t errlen)
{
    *out = NULL;
    struct file_buf fb;
    int rc = read_file(path, false, &fb, errbuf, errlen);
    if (rc != 0)
        return rc;
    STACK_OF(X509) *certs = sk_X509_new_null();
    BIO *bio = BIO_new_mem_buf(fb.data, (int)fb.len);
    if (certs == NULL || bio == NULL)
        rc = identity_errorf(errbuf, errlen, SOVA_ERR_NOMEM, "out of memory reading %s", path);
    X509 *cert;
    while (rc == 0 && (cert = PEM_read_bio_X509(bio, NULL, no_passphrase_cb, NULL)) != NULL) {
        if (sk_X509_push(certs, cert) <= 0) {
            X509_free(cert);
            rc = identity_errorf(errbuf, errlen, SOVA_ERR_NOMEM, "out of memory reading %s", path);
        }
    }
    /* The loop ends on "no start line" at the end of the input; anything else
     * means a damaged certificate in the file. */
    if (rc == 0 && sk_X509_num(certs) > 0 &&
        ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
        ERR_clear_error();
    else if (rc == 0)
        rc = identity_errorf(
            errbuf, errlen, SOVA_ERR_CRYPTO,
            sk_X509_num(certs) == 0 ? "no PEM certificate in %s" : "bad certificate in %s", path);
    BIO_free(bio);
    file_buf_free(&fb);
    if (rc != 0) {
        chain_free(certs);
        return rc;
    }
    *out = certs;
    return 0;
}

/* Warn once at load time: an expired supernode certificate makes every peer
 * refuse the supernode, and the log line is where an operator looks first. */
static void warn_if_not_valid_now(X509 *cert, const char *path)
{
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        log_warn(LOG_MOD, "certificate %s has expired; other nodes will refuse it", path);
    else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
        log_warn(LOG_MOD, "certificate %s is not valid yet (check the clock)", path);
}

int identity_load_files(const char *cert_path, const char *key_path, struct sova_identity **out,
                        char *errbuf, size_t errlen)
{
    *out = NULL;
    if (cert_path == NULL || key_path == NULL)
        return identity_errorf(errbuf, errlen, SOVA_ERR_INVALID, "no certificate or key path");
    EVP_PKEY *key = NULL;
    int rc = load_key(key_path, &key, errbuf, errlen);
    if (rc != 0)
        return rc;
    /* The first certificate of the file is the node's own; the rest its chain. */
    STACK_OF(X509) *chain = NULL;
    rc = identity_read_certs(cert_path, &chain, errbuf, errlen);
    if (rc != 0) {
        EVP_PKEY_free(key);
        return rc;
    }
    X509 *cert = sk_X509_shift(chain);
    if (sk_X509_num(chain) == 0) {
        chain_free(chain);
        chain = NULL;
    }
    if (X509_check_private_key(cert, key) != 1) {
        EVP_PKEY_free(key);
        X509_free(cert);
        chain_free(chain);
        return identity_errorf(errbuf, errlen, SOVA_ERR_CRYPTO,
                               "key %s does not match certificate %s", key_path, cert_path);
    }
    warn_if_not_valid_now(cert, cert_path);
    return identity_assemble(key, cert, chain, out, errbuf, errlen);
}

/* ---- creating a peer identity -------------------------------------------- */

/* mkdir -p with mode 0700 for the directories it creates. */
/* The state folder, made 0700 if missing, and this user's alone
 * (statedir.h): no one else may swap its key. */
static int make_dirs(const char *dir, char *errbuf, size_t errlen)
{
    char err[512];
    int rc = statedir_prepare(dir, err, sizeof(err));
    if (rc != 0)
        return identity_errorf(errbuf, errlen, rc, "%s", err);
    return 0;
}

static int join_path(char *buf, size_t size, const char *dir, const char *name, char *errbuf,
                     size_t errlen)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return identity_errorf(errbuf, errlen, SOVA_ERR_INVALID, "path %s/%s is too long", dir,
                               name);
    return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write dir/name so that readers see either no file or the whole file with
 * its final mode: mkstemp() creates the temporary file with mode 0600 (so a
 * key is never readable by others, whatever the umask), fchmod() sets the
 * final mode, fsync() makes the data durable before rename() publishes it,
 * and the directory is fsync'ed so the rename survives a crash. */
static int write_file_atomic(const char *dir, const char *name, const char *data, size_t len,
                             mode_t mode, char *errbuf, size_t errlen)
{
    char final_path[PATH_MAX], tmp_path[PATH_MAX];
    int rc = join_path(final_path, sizeof(final_path), dir, name, errbuf, errlen);
    if (rc != 0)
        return rc;
    int n = snprintf(tmp_path, sizeof(tmp_path), "%s/.%s.XXXXXX", dir, name);
    if (n < 0 || (size_t)n >= sizeof(tmp_path))
        return identity_errorf(errbuf, errlen, SOVA_ERR_INVALID, "path %s is too long", final_path);
    int fd = mkstemp(tmp_path);
    if (fd >= 0)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (fd < 0)
        return identity_errorf(errbuf, errlen, SOVA_ERR_IO, "cannot create a file in %s: %s", dir,
                               strerror(errno));
    if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        rc = identity_errorf(errbuf, errlen, SOVA_ERR_IO, "cannot write %s: %s", tmp_path,
                             strerror(errno));
        close(fd);
        unlink(tmp_path);
        return rc;
    }
    if (close(fd) != 0 || rename(tmp_path, final_path) != 0) {
        rc = identity_errorf(errbuf, errlen, SOVA_ERR_IO, "cannot write %s: %s", final_path,
                             strerror(errno));
        unlink(tmp_path);
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* best effort: some file systems refuse it on directories */
        close(dfd);
    }
    return 0;
}

/* Serialize with bio_method (BIO_s_secmem for keys: cleared when freed) and
 * write atomically. */
static int write_pem_atomic(const char *dir, const char *name, mode_t mode, EVP_PKEY *key,
                            X509 *cert, char *errbuf, size_t errlen)
{
    BIO *bio = BIO_new(key != NULL ? BIO_s_secmem() : BIO_s_mem());
    int ok =
        bio != NULL && (key != NULL ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
                                    : PEM_write_bio_X509(bio, cert));
    char *data = NULL;
    long len = ok ? BIO_get_mem_data(bio, &data) : 0;
    int rc = (ok && len > 0)
                 ? write_file_atomic(dir, name, data, (size_t)len, mode, errbuf, errlen)
                 : identity_errorf(errbuf, errlen, SOVA_ERR_CRYPTO, "cannot encode %s", name);
    BIO_free(bio);
    return rc;
}

static int add_ext(X509 *cert, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

/* A self-signed certificate whose only purpose is to carry key's public half
 * into TLS: CN=sova-peer, random serial, no expiry, an end-entity usable for
 * both TLS client and server authentication (peers are both). */
static X509 *make_self_signed(EVP_PKEY *key)
{
    X509 *cert = X509_new();
    BIGNUM *serial = BN_new();
    unsigned char rnd[CERT_SERIAL_BYTES];
    int ok = cert != NULL && serial != NULL && RAND_bytes(rnd, sizeof(rnd)) == 1;
    if (ok) {
        rnd[0] &= 0x7f; /* serials are positive (RFC 5280 4.1.2.2) */
        rnd[0] |= 0x40; /* and keep their full length */
        ok = BN_bin2bn(rnd, sizeof(rnd), serial) != NULL &&
             BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) != NULL;
    }
    X509_NAME *name = ok ? X509_get_subject_name(cert) : NULL;
    ok = ok && X509_set_version(cert, X509_VERSION_3) == 1 &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)PEER_CERT_CN,
                                    -1, -1, 0) == 1 &&
         X509_set_issuer_name(cert, name) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(cert), -PEER_CERT_BACKDATE_SECONDS) != NULL &&
         ASN1_TIME_set_string_X509(X509_getm_notAfter(cert), PEER_CERT_NOT_AFTER) == 1 &&
         X509_set_pubkey(cert, key) == 1;
    if (ok) {
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
        ok = add_ext(cert, &v3, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
             add_ext(cert, &v3, NID_key_usage, "critical,digitalSignature") == 0 &&
             add_ext(cert, &v3, NID_ext_key_usage, "serverAuth,clientAuth") == 0 &&
             add_ext(cert, &v3, NID_subject_key_identifier, "hash") == 0;
    }
    /* Ed25519 signs the message itself: no separate digest (md = NULL). */
    ok = ok && X509_sign(cert, key, NULL) > 0;
    BN_free(serial);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* Give key a fresh self-signed certificate, store it as dir/node.crt, and
 * build the identity. Takes ownership of key. */
static int certify_and_store(const char *dir, EVP_PKEY *key, struct sova_identity **out,
                             char *errbuf, size_t errlen)
{
    X509 *cert = make_self_signed(key);
    if (cert == NULL) {
        EVP_PKEY_free(key);
        return identity_errorf(errbuf, errlen, SOVA_ERR_CRYPTO,
                               "cannot make a self-signed certificate");
    }
    int rc = write_pem_atomic(dir, IDENTITY_CERT_FILE, 0644, NULL, cert, errbuf, errlen);
    if (rc != 0) {
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc;
    }
    return identity_assemble(key, cert, NULL, out, errbuf, errlen);
}

/* 1 if path names something (even a dangling symlink), 0 if not, <0 error. */
static int path_exists(const char *path, char *errbuf, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    return identity_errorf(errbuf, errlen, SOVA_ERR_IO, "cannot stat %s: %s", path,
                           strerror(errno));
}

int identity_load_or_create(const char *state_dir, struct sova_identity **out, char *errbuf,
                            size_t errlen)
{
    *out = NULL;
    if (state_dir == NULL)
        return identity_errorf(errbuf, errlen, SOVA_ERR_INVALID, "no state directory");
    int rc = make_dirs(state_dir, errbuf, errlen);
    if (rc != 0)
        return rc;
    char key_path[PATH_MAX], cert_path[PATH_MAX];
    if ((rc = join_path(key_path, sizeof(key_path), state_dir, IDENTITY_KEY_FILE, errbuf,
                        errlen)) != 0 ||
        (rc = join_path(cert_path, sizeof(cert_path), state_dir, IDENTITY_CERT_FILE, errbuf,
                        errlen)) != 0)
        return rc;
    int have_key = path_exists(key_path, errbuf, errlen);
    if (have_key < 0)
        return have_key;
    int have_cert = path_exists(cert_path, errbuf, errlen);
    if (have_cert < 0)
        return have_cert;

    if (have_key && have_cert)
        return identity_load_files(cert_path, key_path, out, errbuf, errlen);
    if (!have_key && have_cert)
        /* The ID is the key: making a new one would silently become another
         * node. Let the operator decide. */
        return identity_errorf(errbuf, errlen, SOVA_ERR_IO,
                               "%s exists but its key %s does not; restore the key, or remove "
                               "%s to create a new identity (a new node ID)",
                               cert_path, key_path, cert_path);

    EVP_PKEY *key = NULL;
    if (have_key) {
        rc = load_key(key_path, &key, errbuf, errlen);
        if (rc != 0)
            return rc;
        log_warn(LOG_MOD, "%s is missing; making a new certificate for the existing key",
                 cert_path);
    } else {
        key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (key == NULL)
            return identity_errorf(errbuf, errlen, SOVA_ERR_CRYPTO, "cannot generate a key");
        rc = write_pem_atomic(state_dir, IDENTITY_KEY_FILE, 0600, key, NULL, errbuf, errlen);
        if (rc != 0) {
            EVP_PKEY_free(key);
            return rc;
        }
    }
    rc = certify_and_store(state_dir, key, out, errbuf, errlen);
    if (rc == 0 && !have_key)
        log_info(LOG_MOD, "created a new identity %s in %s", (*out)->id_str, state_dir);
    return rc;
}
