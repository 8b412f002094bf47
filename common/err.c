#include "err.h"

const char *sova_err_str(int code)
{
    switch ((enum sova_err)code) {
    case SOVA_OK:
        return "ok";
    case SOVA_ERR_NOMEM:
        return "out of memory";
    case SOVA_ERR_IO:
        return "input/output error";
    case SOVA_ERR_INVALID:
        return "invalid argument";
    case SOVA_ERR_INTERNAL:
        return "internal error";
    case SOVA_ERR_TIMEOUT:
        return "timed out";
    case SOVA_ERR_NOT_FOUND:
        return "not found";
    case SOVA_ERR_REFUSED:
        return "connection refused";
    case SOVA_ERR_UNREACHABLE:
        return "host or network unreachable";
    case SOVA_ERR_NO_SPACE:
        return "no space left on the disk";
    case SOVA_ERR_TRUNCATED:
        return "truncated field";
    case SOVA_ERR_TOO_LARGE:
        return "value exceeds limit";
    case SOVA_ERR_BAD_LENGTH:
        return "bad frame length";
    case SOVA_ERR_UNKNOWN_TYPE:
        return "unknown message type";
    case SOVA_ERR_TRAILING:
        return "trailing bytes";
    case SOVA_ERR_BAD_VALUE:
        return "bad field value";
    case SOVA_ERR_VERSION:
        return "no common protocol version";
    case SOVA_ERR_KEY_PERMS:
        return "private key is readable by others";
    case SOVA_ERR_CRYPTO:
        return "cryptographic library error";
    case SOVA_ERR_CERT_CHAIN:
        return "certificate does not chain to the federation root";
    case SOVA_ERR_ID_MISMATCH:
        return "node ID mismatch";
    case SOVA_ERR_NO_CERT:
        return "no certificate presented";
    case SOVA_ERR_KEY_TYPE:
        return "the key is not Ed25519";
    case SOVA_ERR_UNSAFE_DIR:
        return "a folder another user owns or may write to";
    case SOVA_ERR_FOREIGN:
        return "the daemon belongs to another user";
    case SOVA_ERR_CONFIG:
        return "configuration error";
    case SOVA_ERR_USAGE:
        return "usage error";
    case SOVA_ERR_UNKNOWN_PEER:
        return "unknown peer";
    case SOVA_ERR_PEER_EXISTS:
        return "peer already attached";
    case SOVA_ERR_PEER_FILES:
        return "peer's file limit reached";
    case SOVA_ERR_PEER_NAME_BYTES:
        return "peer's file name bytes limit reached";
    case SOVA_ERR_INDEX_FULL:
        return "index is full";
    case SOVA_ERR_UNSAFE_NAME:
        return "a name with control characters, bidirectional overrides or invalid UTF-8";
    case SOVA_ERR_PREFIX_RECORDS:
        return "records of the peers of your network (/24 or /56) over its share";
    case SOVA_ERR_KEYWORD_FULL:
        return "keyword holds all the postings it may";
    case SOVA_ERR_HOLDER_FULL:
        return "holder supernode publishes all the postings it may";
    }
    return "unknown error";
}
