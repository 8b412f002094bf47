/* ctl.c - the pure part of the control channel: the request decoder, hex
 * helpers and what the server and client share.
 *
 * The decoder is table-driven: each command lists its fields (name, kind,
 * required, where it goes in struct ctl_request, bounds, default), so adding
 * an argument is one table line and every field gets the same strictness:
 * unknown fields and wrong types are errors that name the field. */
#define SOVA_CTL_MODULE
#include "ctl.h"
#include "ctl_internal.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- shared helpers ------------------------------------------------------ */

void ctl_sanitize_text(char *s, bool ascii_only)
{
    for (; *s; s++) {
        unsigned char b = (unsigned char)*s;
        if (b < 0x20 || b == 0x7f || (ascii_only && b > 0x7f))
            *s = '?';
    }
}

int ctl_sockaddr_init(const char *path, struct sockaddr_un *sa, socklen_t *len, char *err,
                      size_t errlen)
{
    size_t n = path ? strlen(path) : 0;
    memset(sa, 0, sizeof(*sa));
    if (n == 0) {
        snprintf(err, errlen, "control socket path is empty");
        return SOVA_ERR_INVALID;
    }
    if (n >= sizeof(sa->sun_path)) {
        snprintf(err, errlen, "control socket path is too long (%zu bytes, at most %zu): %s", n,
                 sizeof(sa->sun_path) - 1, path);
        return SOVA_ERR_INVALID;
    }
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* ---- hex ----------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The one hex decoder; *bad_pos tells the decoder's caller where it failed. */
static int hex32_decode_at(const char *hex, size_t len, uint8_t out[CTL_HASH_LEN], size_t *bad_pos)
{
    *bad_pos = 0;
    if (len != CTL_HEX32_LEN)
        return SOVA_ERR_BAD_LENGTH;
    for (size_t i = 0; i < CTL_HASH_LEN; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            *bad_pos = 2 * i + (hi < 0 ? 0 : 1);
            return SOVA_ERR_BAD_VALUE;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int ctl_hex32_decode(const char *hex, size_t len, uint8_t out[CTL_HASH_LEN])
{
    size_t bad_pos;
    return hex32_decode_at(hex, len, out, &bad_pos);
}

void ctl_hex32(const uint8_t hash[CTL_HASH_LEN], char out[CTL_HEX32_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < CTL_HASH_LEN; i++) {
        out[2 * i] = digits[hash[i] >> 4];
        out[2 * i + 1] = digits[hash[i] & 0xf];
    }
    out[CTL_HEX32_LEN] = '\0';
}

json_t *ctl_json_hex32(const uint8_t hash[CTL_HASH_LEN])
{
    char hex[CTL_HEX32_LEN + 1];
    ctl_hex32(hash, hex);
    return json_string(hex);
}

/* ---- the command table --------------------------------------------------- */

enum field_kind {
    FIELD_WORDS,    /* array of non-empty strings -> struct ctl_search words */
    FIELD_UINT,     /* integer in [min, max] -> unsigned */
    FIELD_HASH,     /* 64 hex characters -> uint8_t[32] */
    FIELD_PATH,     /* absolute path of at most max bytes -> char[max + 1] */
    FIELD_FILENAME, /* file name (no '/', not . or ..) of at most max bytes */
    FIELD_BOOL,     /* true or false -> bool (false when absent) */
    FIELD_PRIORITY, /* "low", "normal" or "high" -> unsigned enum ctl_priority */
};

struct field_spec {
    const char *name;
    enum field_kind kind;
    bool required;
    size_t offset;     /* into struct ctl_request */
    unsigned min, max; /* FIELD_UINT: range; FIELD_WORDS: count; strings: max bytes */
    unsigned dflt;     /* FIELD_UINT when absent */
};

struct cmd_spec {
    const char *name;
    enum ctl_cmd cmd;
    const struct field_spec *fields;
    size_t n_fields;
};

#define REQ_OFF(member) offsetof(struct ctl_request, member)
#define N_ELEMS(a)      (sizeof(a) / sizeof((a)[0]))

static const struct field_spec search_fields[] = {
    {"words", FIELD_WORDS, true, REQ_OFF(u.search), 1, CTL_MAX_WORDS, 0},
    {"max", FIELD_UINT, false, REQ_OFF(u.search.max), 1, CTL_SEARCH_MAX_LIMIT,
     CTL_SEARCH_MAX_DEFAULT},
    {"timeout_ms", FIELD_UINT, false, REQ_OFF(u.search.timeout_ms), 1, CTL_SEARCH_TIMEOUT_LIMIT,
     CTL_SEARCH_TIMEOUT_DEFAULT},
};

static const struct field_spec get_fields[] = {
    {"id", FIELD_HASH, true, REQ_OFF(u.get.id), 0, 0, 0},
    {"out", FIELD_PATH, false, REQ_OFF(u.get.out), 1, CTL_MAX_PATH, 0},
    {"name", FIELD_FILENAME, false, REQ_OFF(u.get.name), 1, CTL_MAX_NAME, 0},
    {"priority", FIELD_PRIORITY, false, REQ_OFF(u.get.priority), 0, 0, CTL_PRIORITY_UNSET},
    {"background", FIELD_BOOL, false, REQ_OFF(u.get.background), 0, 0, 0},
};

static const struct field_spec xfer_fields[] = {
    {"id", FIELD_HASH, true, REQ_OFF(u.xfer.id), 0, 0, 0},
};

static const struct field_spec remove_fields[] = {
    {"id", FIELD_HASH, true, REQ_OFF(u.xfer.id), 0, 0, 0},
    {"delete_data", FIELD_BOOL, false, REQ_OFF(u.xfer.delete_data), 0, 0, 0},
};

static const struct field_spec priority_fields[] = {
    {"id", FIELD_HASH, true, REQ_OFF(u.xfer.id), 0, 0, 0},
    {"priority", FIELD_PRIORITY, true, REQ_OFF(u.xfer.priority), 0, 0, CTL_PRIORITY_UNSET},
};

static const struct field_spec folder_fields[] = {
    {"path", FIELD_PATH, true, REQ_OFF(u.folder.path), 1, CTL_MAX_PATH, 0},
};

static const struct field_spec limits_fields[] = {
    {"upload_kbps", FIELD_UINT, false, REQ_OFF(u.limits.upload_kbps), 0, CTL_KBPS_MAX, CTL_UNSET},
    {"download_kbps", FIELD_UINT, false, REQ_OFF(u.limits.download_kbps), 0, CTL_KBPS_MAX,
     CTL_UNSET},
    {"alt_upload_kbps", FIELD_UINT, false, REQ_OFF(u.limits.alt_upload_kbps), 0, CTL_KBPS_MAX,
     CTL_UNSET},
    {"alt_download_kbps", FIELD_UINT, false, REQ_OFF(u.limits.alt_download_kbps), 0, CTL_KBPS_MAX,
     CTL_UNSET},
    /* a word: the file-name rule (no '/') is all it needs here */
    {"turtle", FIELD_FILENAME, false, REQ_OFF(u.limits.turtle), 1, CTL_MAX_TURTLE, 0},
};

static const struct field_spec limit_fields[] = {
    {"id", FIELD_HASH, true, REQ_OFF(u.limit.id), 0, 0, 0},
    {"kbps", FIELD_UINT, true, REQ_OFF(u.limit.kbps), 0, CTL_KBPS_MAX, 0},
};

static const struct cmd_spec commands[] = {
    {"status", CTL_CMD_STATUS, NULL, 0},
    {"search", CTL_CMD_SEARCH, search_fields, N_ELEMS(search_fields)},
    {"get", CTL_CMD_GET, get_fields, N_ELEMS(get_fields)},
    {"downloads", CTL_CMD_DOWNLOADS, NULL, 0},
    {"peers", CTL_CMD_PEERS, NULL, 0},
    {"metrics", CTL_CMD_METRICS, NULL, 0},
    {"pause", CTL_CMD_PAUSE, xfer_fields, N_ELEMS(xfer_fields)},
    {"resume", CTL_CMD_RESUME, xfer_fields, N_ELEMS(xfer_fields)},
    {"cancel", CTL_CMD_CANCEL, xfer_fields, N_ELEMS(xfer_fields)},
    {"remove", CTL_CMD_REMOVE, remove_fields, N_ELEMS(remove_fields)},
    {"priority", CTL_CMD_PRIORITY, priority_fields, N_ELEMS(priority_fields)},
    {"share_add", CTL_CMD_SHARE_ADD, folder_fields, N_ELEMS(folder_fields)},
    {"share_remove", CTL_CMD_SHARE_REMOVE, folder_fields, N_ELEMS(folder_fields)},
    {"shares", CTL_CMD_SHARES, NULL, 0},
    {"limits", CTL_CMD_LIMITS, limits_fields, N_ELEMS(limits_fields)},
    {"limit", CTL_CMD_LIMIT, limit_fields, N_ELEMS(limit_fields)},
    {"ui_login", CTL_CMD_UI_LOGIN, NULL, 0},
};

static const char *const priority_names[] = {"low", "normal", "high"};

const char *ctl_priority_name(unsigned priority)
{
    return priority < N_ELEMS(priority_names) ? priority_names[priority] : "?";
}

const char *ctl_cmd_name(enum ctl_cmd cmd)
{
    for (size_t i = 0; i < N_ELEMS(commands); i++)
        if (commands[i].cmd == cmd)
            return commands[i].name;
    return "?";
}

/* ---- decoding ------------------------------------------------------------ */

/* Field names in messages come from the client: at most this many bytes. */
#define QUOTE_MAX "40"

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        ctl_sanitize_text(err, true);
    }
    return code;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

static int wrong_type(const struct field_spec *f, const char *expected, const json_t *v, char *err,
                      size_t errlen)
{
    return fail(err, errlen, SOVA_ERR_BAD_VALUE, "field \"%s\" must be %s, not %s", f->name,
                expected, json_kind(v));
}

/* A JSON string of 1..max bytes without NUL (jansson refuses \u0000 unless
 * asked, but a decoder does not lean on a caller's flags). what names it in
 * errors: 'field "out"' or 'word 2 of "words"'. */
static int take_string(const json_t *v, const char *what, size_t max, const char **s, size_t *n,
                       char *err, size_t errlen)
{
    *s = json_string_value(v);
    *n = json_string_length(v);
    if (*n == 0)
        return fail(err, errlen, SOVA_ERR_BAD_VALUE, "%s is empty", what);
    if (*n > max)
        return fail(err, errlen, SOVA_ERR_BAD_VALUE, "%s is %zu bytes, at most %zu", what, *n, max);
    if (memchr(*s, '\0', *n) != NULL)
        return fail(err, errlen, SOVA_ERR_BAD_VALUE, "%s contains a NUL character", what);
    return 0;
}

static int decode_words(const struct field_spec *f, const json_t *v, struct ctl_search *out,
                        char *err, size_t errlen)
{
    if (!json_is_array(v))
        return wrong_type(f, "an array of strings", v, err, errlen);
    size_t count = json_array_size(v);
    if (count < f->min)
        return fail(err, errlen, SOVA_ERR_BAD_VALUE, "field \"%s\" must hold at least %u word",
                    f->name, f->min);
    if (count > f->max)
        return fail(err, errlen, SOVA_ERR_BAD_VALUE, "field \"%s\" has %zu words, at most %u",
                    f->name, count, f->max);
    for (size_t i = 0; i < count; i++) {
        const json_t *w = json_array_get(v, i);
        char what[64];
        snprintf(what, sizeof(what), "word %zu of \"%s\"", i + 1, f->name);
        if (!json_is_string(w))
            return fail(err, errlen, SOVA_ERR_BAD_VALUE, "%s must be a string, not %s", what,
                        json_kind(w));
        const char *s;
        size_t n;
        int rc = take_string(w, what, CTL_MAX_WORD_LEN, &s, &n, err, errlen);
        if (rc != 0)
            return rc;
        memcpy(out->words[i], s, n);
        out->words[i][n] = '\0';
    }
    out->n_words = count;
    return 0;
}

static int decode_field(const struct field_spec *f, const json_t *v, struct ctl_request *req,
                        char *err, size_t errlen)
{
    char *dst = (char *)req + f->offset;
    char what[64];
    snprintf(what, sizeof(what), "field \"%s\"", f->name);

    switch (f->kind) {
    case FIELD_WORDS:
        return decode_words(f, v, (struct ctl_search *)(void *)dst, err, errlen);
    case FIELD_UINT: {
        if (!json_is_integer(v))
            return wrong_type(f, "an integer", v, err, errlen);
        json_int_t x = json_integer_value(v);
        if (x < (json_int_t)f->min || x > (json_int_t)f->max)
            return fail(err, errlen, SOVA_ERR_BAD_VALUE,
                        "field \"%s\" must be between %u and %u, got %" JSON_INTEGER_FORMAT,
                        f->name, f->min, f->max, x);
        unsigned u = (unsigned)x;
        memcpy(dst, &u, sizeof(u));
        return 0;
    }
    case FIELD_HASH: {
        if (!json_is_string(v))
            return wrong_type(f, "a string of 64 hex characters", v, err, errlen);
        size_t n = json_string_length(v), bad;
        int rc = hex32_decode_at(json_string_value(v), n, (uint8_t *)dst, &bad);
        if (rc == SOVA_ERR_BAD_LENGTH)
            return fail(err, errlen, SOVA_ERR_BAD_VALUE,
                        "field \"%s\" must be %d hex characters, got %zu", f->name, CTL_HEX32_LEN,
                        n);
        if (rc != 0)
            return fail(err, errlen, SOVA_ERR_BAD_VALUE,
                        "field \"%s\" has a character that is not hex at position %zu", f->name,
                        bad + 1);
        return 0;
    }
    case FIELD_PATH:
    case FIELD_FILENAME: {
        if (!json_is_string(v))
            return wrong_type(f, "a string", v, err, errlen);
        const char *s;
        size_t n;
        int rc = take_string(v, what, f->max, &s, &n, err, errlen);
        if (rc != 0)
            return rc;
        /* The daemon's working directory is not the CLI's: a relative path
         * would land somewhere the user did not mean. */
        if (f->kind == FIELD_PATH && s[0] != '/')
            return fail(err, errlen, SOVA_ERR_BAD_VALUE, "%s must be an absolute path", what);
        if (f->kind == FIELD_FILENAME &&
            (memchr(s, '/', n) != NULL || strcmp(s, ".") == 0 || strcmp(s, "..") == 0))
            return fail(err, errlen, SOVA_ERR_BAD_VALUE,
                        "%s must be a file name (no '/', not \".\" or \"..\")", what);
        memcpy(dst, s, n);
        dst[n] = '\0';
        return 0;
    }
    case FIELD_BOOL: {
        if (!json_is_boolean(v))
            return wrong_type(f, "true or false", v, err, errlen);
        bool b = json_is_true(v);
        memcpy(dst, &b, sizeof(b));
        return 0;
    }
    case FIELD_PRIORITY: {
        const char *s = json_string_value(v);
        for (unsigned p = 0; s != NULL && p < N_ELEMS(priority_names); p++) {
            if (strcmp(s, priority_names[p]) == 0) {
                memcpy(dst, &p, sizeof(p));
                return 0;
            }
        }
        return fail(err, errlen, SOVA_ERR_BAD_VALUE,
                    "field \"%s\" must be \"high\", \"normal\" or \"low\"", f->name);
    }
    }
    return fail(err, errlen, SOVA_ERR_INTERNAL, "internal error: field kind %d", (int)f->kind);
}

static const struct cmd_spec *find_command(const char *name)
{
    for (size_t i = 0; i < N_ELEMS(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int unknown_command(const char *name, char *err, size_t errlen)
{
    char known[192] = "";
    size_t used = 0;
    for (size_t i = 0; i < N_ELEMS(commands) && used < sizeof(known); i++)
        used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "",
                                 commands[i].name);
    return fail(err, errlen, SOVA_ERR_UNKNOWN_TYPE,
                "unknown command \"%." QUOTE_MAX "s\" (known: %s)", name, known);
}

/* Apply the command's fields from obj (which holds "cmd" too). */
static int decode_args(const struct cmd_spec *cs, json_t *obj, struct ctl_request *out, char *err,
                       size_t errlen)
{
    uint32_t seen = 0;
    for (size_t i = 0; i < cs->n_fields; i++)
        if (cs->fields[i].kind == FIELD_UINT || cs->fields[i].kind == FIELD_PRIORITY)
            memcpy((char *)out + cs->fields[i].offset, &cs->fields[i].dflt, sizeof(unsigned));

    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "cmd") == 0)
            continue;
        size_t i = 0;
        while (i < cs->n_fields && strcmp(cs->fields[i].name, key) != 0)
            i++;
        if (i == cs->n_fields)
            return fail(err, errlen, SOVA_ERR_BAD_VALUE,
                        "unknown field \"%." QUOTE_MAX "s\" for command \"%s\"", key, cs->name);
        int rc = decode_field(&cs->fields[i], v, out, err, errlen);
        if (rc != 0)
            return rc;
        seen |= 1u << i;
    }
    for (size_t i = 0; i < cs->n_fields; i++)
        if (cs->fields[i].required && !(seen & (1u << i)))
            return fail(err, errlen, SOVA_ERR_BAD_VALUE, "missing field \"%s\" for command \"%s\"",
                        cs->fields[i].name, cs->name);
    return 0;
}

int ctl_request_decode(const char *line, size_t len, struct ctl_request *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (len > CTL_MAX_REQUEST)
        return fail(err, errlen, SOVA_ERR_TOO_LARGE, "request too long (%zu bytes, at most %d)",
                    len, CTL_MAX_REQUEST);

    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        return fail(err, errlen, SOVA_ERR_BAD_VALUE, "not valid JSON: %s (at byte %d)", jerr.text,
                    jerr.position);

    int rc;
    const json_t *cmd = json_object_get(root, "cmd");
    const struct cmd_spec *cs;
    if (!json_is_object(root))
        rc = fail(err, errlen, SOVA_ERR_BAD_VALUE, "request must be a JSON object, not %s",
                  json_kind(root));
    else if (cmd == NULL)
        rc = fail(err, errlen, SOVA_ERR_BAD_VALUE, "missing field \"cmd\"");
    else if (!json_is_string(cmd))
        rc = fail(err, errlen, SOVA_ERR_BAD_VALUE, "field \"cmd\" must be a string, not %s",
                  json_kind(cmd));
    else if ((cs = find_command(json_string_value(cmd))) == NULL)
        rc = unknown_command(json_string_value(cmd), err, errlen);
    else {
        out->cmd = cs->cmd;
        rc = decode_args(cs, root, out, err, errlen);
    }
    json_decref(root);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

void ctl_request_clear(struct ctl_request *req)
{
    if (req != NULL)
        memset(req, 0, sizeof(*req));
}
