/* err.h - the one error enum of Sova.
 *
 * Every fallible function returns 0 on success or a negative enum sova_err.
 * Codes that travel in ERROR frames are listed in docs/PROTOCOL.md with their
 * numeric value; never renumber an existing code, only append.
 */
#ifndef SOVA_ERR_H
#define SOVA_ERR_H

enum sova_err {
    SOVA_OK = 0,
    /* generic */
    SOVA_ERR_NOMEM = -1,       /* allocation failed */
    SOVA_ERR_IO = -2,          /* read/write/open failed (errno tells more) */
    SOVA_ERR_INVALID = -3,     /* bad argument from the caller */
    SOVA_ERR_INTERNAL = -4,    /* an invariant failed; a bug */
    SOVA_ERR_TIMEOUT = -5,     /* the remote did not answer in time */
    SOVA_ERR_NOT_FOUND = -6,   /* no such file, peer or record */
    SOVA_ERR_REFUSED = -7,     /* the remote host refused the TCP connection */
    SOVA_ERR_UNREACHABLE = -8, /* no route to the remote host or network */
    SOVA_ERR_NO_SPACE = -9,    /* the disk (or quota) is full */
    /* wire decoding */
    SOVA_ERR_TRUNCATED = -10,    /* a field runs past the end of its buffer */
    SOVA_ERR_TOO_LARGE = -11,    /* a length or count exceeds its limit */
    SOVA_ERR_BAD_LENGTH = -12,   /* frame length field is impossible (e.g. 0) */
    SOVA_ERR_UNKNOWN_TYPE = -13, /* message type not known to this version */
    SOVA_ERR_TRAILING = -14,     /* bytes left over after the last field */
    SOVA_ERR_BAD_VALUE = -15,    /* a field's value is out of its domain */
    SOVA_ERR_VERSION = -16,      /* no protocol version in common */
    /* identity and TLS */
    SOVA_ERR_KEY_PERMS = -20,   /* private key file readable by others */
    SOVA_ERR_CRYPTO = -21,      /* OpenSSL reported an error */
    SOVA_ERR_CERT_CHAIN = -22,  /* certificate does not chain to the root */
    SOVA_ERR_ID_MISMATCH = -23, /* remote node ID differs from the expected one */
    SOVA_ERR_NO_CERT = -24,     /* remote presented no certificate */
    SOVA_ERR_KEY_TYPE = -25,    /* a key that is not Ed25519 */
    SOVA_ERR_UNSAFE_DIR = -26,  /* a folder another user owns or may write to */
    SOVA_ERR_FOREIGN = -27,     /* the daemon on a control socket is another user's */
    /* configuration */
    SOVA_ERR_CONFIG = -30, /* bad config file or option (message says where) */
    SOVA_ERR_USAGE = -31,  /* bad command line */
    /* supernode index (supernode/sn_index.h) */
    SOVA_ERR_UNKNOWN_PEER = -40,    /* no such peer attached */
    SOVA_ERR_PEER_EXISTS = -41,     /* the peer is attached already */
    SOVA_ERR_PEER_FILES = -42,      /* the peer publishes as many files as it may */
    SOVA_ERR_PEER_NAME_BYTES = -43, /* the peer's file names use all the bytes it may */
    SOVA_ERR_INDEX_FULL = -44,      /* the index holds as many records as it may */
    SOVA_ERR_UNSAFE_NAME = -45,     /* a name with control or bidi characters, or not UTF-8 */
    SOVA_ERR_PREFIX_RECORDS = -46,  /* the peers of one address prefix publish all they may */
    /* keyword directory (supernode/search/sn_kwdir.h) */
    SOVA_ERR_KEYWORD_FULL = -47, /* the keyword holds as many postings as it may */
    SOVA_ERR_HOLDER_FULL = -48,  /* the holder supernode publishes as many postings as it may */
};

/* A short constant English phrase for code; never NULL. */
const char *sova_err_str(int code);

#endif
