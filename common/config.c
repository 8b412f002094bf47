#include "config.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_HOST_MAX 256

static void *field_at(void *settings, const struct config_option *opt)
{
    return (char *)settings + opt->offset;
}

static const void *field_at_const(const void *settings, const struct config_option *opt)
{
    return (const char *)settings + opt->offset;
}

static void err_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const struct config_option *config_find(const struct config_schema *schema, const char *name)
{
    for (size_t i = 0; i < schema->count; i++)
        if (strcmp(schema->options[i].name, name) == 0)
            return &schema->options[i];
    return NULL;
}

int config_parse_endpoint(const char *text, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    const char *h = text;
    size_t hlen;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return SOVA_ERR_INVALID;
        h = text + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL)
            return SOVA_ERR_INVALID;
        hlen = (size_t)(colon - text);
        if (memchr(text, ':', hlen) != NULL) /* bare IPv6 needs brackets */
            return SOVA_ERR_INVALID;
    }
    if (hlen == 0 || hlen >= hostlen)
        return SOVA_ERR_INVALID;
    for (size_t i = 0; i < hlen; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '_' || c == '%'))
            return SOVA_ERR_INVALID;
    }
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return SOVA_ERR_INVALID;
    unsigned long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return SOVA_ERR_INVALID;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535)
        return SOVA_ERR_INVALID;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)v;
    return 0;
}

static int parse_uint(const char *value, uint64_t *out)
{
    if (value[0] < '0' || value[0] > '9')
        return SOVA_ERR_INVALID;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0')
        return SOVA_ERR_INVALID;
    *out = (uint64_t)v;
    return 0;
}

static int parse_bool(const char *value, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(value, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(value, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return SOVA_ERR_INVALID;
}

/* A comma-separated list of endpoints to dial: port 0 makes no sense there. */
static int check_endpoints(const char *value)
{
    char host[CONFIG_HOST_MAX];
    uint16_t port;
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char one[CONFIG_HOST_MAX + 16];
        if (n == 0 || n >= sizeof(one))
            return SOVA_ERR_INVALID;
        memcpy(one, p, n);
        one[n] = '\0';
        if (config_parse_endpoint(one, host, sizeof(host), &port) != 0 || port == 0)
            return SOVA_ERR_INVALID;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

/* A string value must read back the same from a config file: inih strips
 * surrounding blanks and treats ';' or '#' after a blank as a comment, and a
 * line ends at a newline. Such values are refused instead of silently
 * changing between the command line, the file and --print-config. */
static const char *text_problem(const char *value)
{
    size_t n = strlen(value);
    if (n > 0 &&
        (value[0] == ' ' || value[0] == '\t' || value[n - 1] == ' ' || value[n - 1] == '\t'))
        return "starts or ends with a blank";
    if (value[0] == ';' || value[0] == '#')
        return "starts with ';' or '#', which begin a comment";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f)
            return "contains a control character";
        if ((c == ';' || c == '#') && i > 0 && (value[i - 1] == ' ' || value[i - 1] == '\t'))
            return "contains ' ;' or ' #', which begin a comment";
    }
    return NULL;
}

static int replace_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return SOVA_ERR_NOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

/* Parse value into the option's field. On error, err gets the reason without
 * a location prefix; the caller adds where it came from. */
static int apply_value(const struct config_option *opt, void *settings, const char *value,
                       char *err, size_t errlen)
{
    void *field = field_at(settings, opt);
    const char *problem = text_problem(value);
    if (problem != NULL) {
        err_set(err, errlen, "option '%s': the value %s", opt->name, problem);
        return SOVA_ERR_CONFIG;
    }
    /* What --print-config writes ("name = value") must fit a config line. */
    if (strlen(opt->name) + 3 + strlen(value) > CONFIG_MAX_LINE) {
        err_set(err, errlen, "option '%s': the value is longer than %zu bytes", opt->name,
                CONFIG_MAX_LINE - 3 - strlen(opt->name));
        return SOVA_ERR_CONFIG;
    }
    switch (opt->type) {
    case CONFIG_PATH:
        if (value[0] == '\0') {
            err_set(err, errlen, "option '%s': empty path", opt->name);
            return SOVA_ERR_CONFIG;
        }
        return replace_string(field, value);
    case CONFIG_STRING:
        return replace_string(field, value);
    case CONFIG_ENDPOINT: {
        char host[CONFIG_HOST_MAX];
        uint16_t port;
        if (config_parse_endpoint(value, host, sizeof(host), &port) != 0) {
            err_set(err, errlen, "option '%s': '%s' is not HOST:PORT (IPv6 as [ADDR]:PORT)",
                    opt->name, value);
            return SOVA_ERR_CONFIG;
        }
        return replace_string(field, value);
    }
    case CONFIG_ENDPOINTS:
        if (check_endpoints(value) != 0) {
            err_set(err, errlen, "option '%s': '%s' is not a comma-separated list of HOST:PORT",
                    opt->name, value);
            return SOVA_ERR_CONFIG;
        }
        return replace_string(field, value);
    case CONFIG_UINT: {
        uint64_t v;
        if (parse_uint(value, &v) != 0 || v < opt->min || v > opt->max) {
            err_set(err, errlen,
                    "option '%s': '%s' is not a whole number in [%" PRIu64 ", %" PRIu64 "]",
                    opt->name, value, opt->min, opt->max);
            return SOVA_ERR_CONFIG;
        }
        *(uint64_t *)field = v;
        return 0;
    }
    case CONFIG_BOOL:
        if (parse_bool(value, field) != 0) {
            err_set(err, errlen, "option '%s': '%s' is not true/false/yes/no/on/off/1/0", opt->name,
                    value);
            return SOVA_ERR_CONFIG;
        }
        return 0;
    case CONFIG_LOGLEVEL: {
        enum sova_log_level level;
        if (sova_log_level_parse(value, &level) != 0) {
            err_set(err, errlen, "option '%s': '%s' is not one of error, warn, info, debug",
                    opt->name, value);
            return SOVA_ERR_CONFIG;
        }
        *(int *)field = (int)level;
        return 0;
    }
    }
    err_set(err, errlen, "option '%s': unknown type", opt->name);
    return SOVA_ERR_INTERNAL;
}

int config_defaults(const struct config_schema *schema, void *settings, char *err, size_t errlen)
{
    for (size_t i = 0; i < schema->count; i++) {
        const struct config_option *opt = &schema->options[i];
        if (opt->default_value == NULL)
            continue;
        int rc = apply_value(opt, settings, opt->default_value, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int config_set(const struct config_schema *schema, void *settings, const char *name,
               const char *value, char *err, size_t errlen)
{
    const struct config_option *opt = config_find(schema, name);
    if (opt == NULL) {
        err_set(err, errlen, "unknown option --%s (see --help)", name);
        return SOVA_ERR_CONFIG;
    }
    char why[CONFIG_ERR_MAX];
    int rc = apply_value(opt, settings, value, why, sizeof(why));
    if (rc != 0)
        err_set(err, errlen, "command line: %s", why);
    return rc;
}

/* State of one file parse, handed to inih's callback. */
struct load_ctx {
    const struct config_schema *schema;
    void *settings;
    bool *seen; /* per option: already set by this file */
    char why[CONFIG_ERR_MAX];
    int rc;
};

static int load_handler(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *ctx = user;
    if (ctx->rc != 0)
        return 0; /* report only the first error */
    if (section[0] != '\0' && strcmp(section, "supernode") != 0 && strcmp(section, "peer") != 0) {
        snprintf(ctx->why, sizeof(ctx->why),
                 "unknown section [%s] (expected [supernode] or [peer])", section);
        ctx->rc = SOVA_ERR_CONFIG;
        return 0;
    }
    if (section[0] != '\0' && strcmp(section, ctx->schema->section) != 0)
        return 1; /* the other daemon's section */
    const struct config_option *opt = config_find(ctx->schema, name);
    if (opt == NULL) {
        snprintf(ctx->why, sizeof(ctx->why), "unknown option '%s'", name);
        ctx->rc = SOVA_ERR_CONFIG;
        return 0;
    }
    size_t idx = (size_t)(opt - ctx->schema->options);
    if (ctx->seen[idx]) {
        snprintf(ctx->why, sizeof(ctx->why), "option '%s' given twice", name);
        ctx->rc = SOVA_ERR_CONFIG;
        return 0;
    }
    ctx->seen[idx] = true;
    ctx->rc = apply_value(opt, ctx->settings, value, ctx->why, sizeof(ctx->why));
    return ctx->rc == 0;
}

static int finish_load(struct load_ctx *ctx, int line, const char *origin, char *err, size_t errlen)
{
    free(ctx->seen);
    if (line == -2) {
        err_set(err, errlen, "%s: out of memory", origin);
        return SOVA_ERR_NOMEM;
    }
    if (line > 0) {
        if (ctx->rc == 0)
            snprintf(ctx->why, sizeof(ctx->why),
                     "syntax error (expected 'name = value', '[section]' or a comment)");
        err_set(err, errlen, "%s:%d: %s", origin, line, ctx->why);
        return ctx->rc == 0 ? SOVA_ERR_CONFIG : ctx->rc;
    }
    return 0;
}

static int start_load(struct load_ctx *ctx, const struct config_schema *schema, void *settings)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->schema = schema;
    ctx->settings = settings;
    ctx->seen = calloc(schema->count ? schema->count : 1, sizeof(bool));
    return ctx->seen ? 0 : SOVA_ERR_NOMEM;
}

/* inih's knobs are process-wide variables in Debian's build. */
static void configure_inih(void)
{
    /* A continuation line would silently glue text onto the previous value. */
    ini_allow_multiline = false;
}

/* Debian's inih reads lines into a fixed 200-byte buffer and would cut a
 * longer line into two (its ini_max_line variable does not change that):
 * refuse such a line, naming it, before inih sees it. */
static int check_lines(const char *text, const char *origin, char *err, size_t errlen)
{
    int lineno = 1;
    for (const char *p = text; *p; lineno++) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > CONFIG_MAX_LINE) {
            err_set(err, errlen, "%s:%d: line longer than %d bytes", origin, lineno,
                    CONFIG_MAX_LINE);
            return SOVA_ERR_CONFIG;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return 0;
}

int config_load_string(const struct config_schema *schema, void *settings, const char *text,
                       const char *origin, char *err, size_t errlen)
{
    int rc = check_lines(text, origin, err, errlen);
    if (rc != 0)
        return rc;
    struct load_ctx ctx;
    if (start_load(&ctx, schema, settings) != 0)
        return SOVA_ERR_NOMEM;
    configure_inih();
    int line = ini_parse_string(text, load_handler, &ctx);
    return finish_load(&ctx, line, origin, err, errlen);
}

int config_load_file(const struct config_schema *schema, void *settings, const char *path,
                     char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        err_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return SOVA_ERR_CONFIG;
    }
    char *text = malloc(CONFIG_MAX_FILE + 1);
    size_t n = text ? fread(text, 1, CONFIG_MAX_FILE + 1, f) : 0;
    bool bad = ferror(f) != 0;
    fclose(f);
    if (text == NULL)
        return SOVA_ERR_NOMEM;
    int rc = 0;
    if (bad) {
        err_set(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        rc = SOVA_ERR_CONFIG;
    } else if (n > CONFIG_MAX_FILE) {
        err_set(err, errlen, "%s: larger than %d bytes", path, CONFIG_MAX_FILE);
        rc = SOVA_ERR_CONFIG;
    } else if (memchr(text, '\0', n) != NULL) {
        err_set(err, errlen, "%s: contains a NUL byte (not a text file)", path);
        rc = SOVA_ERR_CONFIG;
    } else {
        text[n] = '\0';
        rc = config_load_string(schema, settings, text, path, err, errlen);
    }
    free(text);
    return rc;
}

static void format_value(const struct config_option *opt, const void *settings, char *buf,
                         size_t len)
{
    const void *field = field_at_const(settings, opt);
    switch (opt->type) {
    case CONFIG_STRING:
    case CONFIG_PATH:
    case CONFIG_ENDPOINT:
    case CONFIG_ENDPOINTS: {
        const char *s = *(char *const *)field;
        snprintf(buf, len, "%s", s ? s : "");
        return;
    }
    case CONFIG_UINT:
        snprintf(buf, len, "%" PRIu64, *(const uint64_t *)field);
        return;
    case CONFIG_BOOL:
        snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false");
        return;
    case CONFIG_LOGLEVEL:
        snprintf(buf, len, "%s", sova_log_level_name((enum sova_log_level) * (const int *)field));
        return;
    }
    buf[0] = '\0';
}

static bool is_string_type(enum config_type t)
{
    return t == CONFIG_STRING || t == CONFIG_PATH || t == CONFIG_ENDPOINT || t == CONFIG_ENDPOINTS;
}

void config_print(const struct config_schema *schema, const void *settings, FILE *out)
{
    fprintf(out, "[%s]\n", schema->section);
    for (size_t i = 0; i < schema->count; i++) {
        const struct config_option *opt = &schema->options[i];
        if (is_string_type(opt->type)) {
            /* Strings are printed whole (no buffer to truncate them). */
            const char *v = *(char *const *)field_at_const(settings, opt);
            if (v == NULL)
                fprintf(out, "# %s = (unset)\n", opt->name);
            else
                fprintf(out, "%s = %s\n", opt->name, v);
            continue;
        }
        char value[64];
        format_value(opt, settings, value, sizeof(value));
        fprintf(out, "%s = %s\n", opt->name, value);
    }
}

/* An option's value as text for config_diff; strings are never cut (a
 * config value is shorter than a config line). */
static void diff_value(const struct config_option *opt, const void *settings, char *buf, size_t len)
{
    if (is_string_type(opt->type) && *(char *const *)field_at_const(settings, opt) == NULL)
        snprintf(buf, len, "(unset)");
    else
        format_value(opt, settings, buf, len);
}

size_t config_diff(const struct config_schema *schema, const void *before, const void *after,
                   config_change_fn *fn, void *arg)
{
    size_t changed = 0;
    for (size_t i = 0; i < schema->count; i++) {
        const struct config_option *opt = &schema->options[i];
        char a[CONFIG_MAX_LINE + 1], b[CONFIG_MAX_LINE + 1];
        diff_value(opt, before, a, sizeof(a));
        diff_value(opt, after, b, sizeof(b));
        if (strcmp(a, b) == 0)
            continue;
        changed++;
        if (fn != NULL)
            fn(opt, a, b, arg);
    }
    return changed;
}

int config_copy(const struct config_option *opt, void *dst, const void *src)
{
    void *to = field_at(dst, opt);
    const void *from = field_at_const(src, opt);
    switch (opt->type) {
    case CONFIG_STRING:
    case CONFIG_PATH:
    case CONFIG_ENDPOINT:
    case CONFIG_ENDPOINTS: {
        const char *v = *(char *const *)from;
        char *copy = v ? strdup(v) : NULL;
        if (v != NULL && copy == NULL)
            return SOVA_ERR_NOMEM;
        free(*(char **)to);
        *(char **)to = copy;
        return 0;
    }
    case CONFIG_UINT:
        *(uint64_t *)to = *(const uint64_t *)from;
        return 0;
    case CONFIG_BOOL:
        *(bool *)to = *(const bool *)from;
        return 0;
    case CONFIG_LOGLEVEL:
        *(int *)to = *(const int *)from;
        return 0;
    }
    return SOVA_ERR_INTERNAL;
}

void config_print_help(const struct config_schema *schema, FILE *out)
{
    static const char *const metavar[] = {
        [CONFIG_STRING] = "TEXT",
        [CONFIG_PATH] = "PATH",
        [CONFIG_UINT] = "N",
        [CONFIG_BOOL] = "BOOL",
        [CONFIG_LOGLEVEL] = "LEVEL",
        [CONFIG_ENDPOINT] = "HOST:PORT",
        [CONFIG_ENDPOINTS] = "HOST:PORT[,...]",
    };
    for (size_t i = 0; i < schema->count; i++) {
        const struct config_option *opt = &schema->options[i];
        char flag[96];
        snprintf(flag, sizeof(flag), "--%s %s", opt->name, metavar[opt->type]);
        fprintf(out, "  %-34s %s", flag, opt->help);
        if (opt->default_value)
            fprintf(out, " (default: %s)", opt->default_value[0] ? opt->default_value : "\"\"");
        if (opt->type == CONFIG_UINT)
            fprintf(out, " [%" PRIu64 "..%" PRIu64 "]", opt->min, opt->max);
        fputc('\n', out);
    }
}

void config_free(const struct config_schema *schema, void *settings)
{
    for (size_t i = 0; i < schema->count; i++) {
        const struct config_option *opt = &schema->options[i];
        if (is_string_type(opt->type)) {
            char **slot = field_at(settings, opt);
            free(*slot);
            *slot = NULL;
        }
    }
}

/* Split "--name=value" or "--name value"; returns how many argv slots it used
 * (1 or 2), or 0 if argv[i] is not an option. */
static int split_arg(const struct config_schema *schema, int argc, char *const *argv, int i,
                     char *name, size_t namelen, const char **value)
{
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
        return 0;
    a += 2;
    const char *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    if (n >= namelen)
        n = namelen - 1;
    memcpy(name, a, n);
    name[n] = '\0';
    if (eq) {
        *value = eq + 1;
        return 1;
    }
    const struct config_option *opt = config_find(schema, name);
    bool is_bool = opt != NULL && opt->type == CONFIG_BOOL;
    if (i + 1 >= argc || (is_bool && strncmp(argv[i + 1], "--", 2) == 0)) {
        *value = is_bool ? "true" : NULL;
        return 1;
    }
    *value = argv[i + 1];
    return 2;
}

int config_load_argv(const struct config_schema *schema, void *settings, int argc,
                     char *const *argv, char *err, size_t errlen)
{
    int rc = config_defaults(schema, settings, err, errlen);
    if (rc != 0)
        return rc;
    char name[64];
    const char *value;
    /* The file first, wherever --config stands, so the command line wins. */
    for (int i = 0; i < argc;) {
        int used = split_arg(schema, argc, argv, i, name, sizeof(name), &value);
        if (used == 0) {
            err_set(err, errlen, "unexpected argument '%s' (see --help)", argv[i]);
            return SOVA_ERR_USAGE;
        }
        if (value == NULL) {
            err_set(err, errlen, "option --%s needs a value", name);
            return SOVA_ERR_USAGE;
        }
        if (strcmp(name, "config") == 0) {
            rc = config_load_file(schema, settings, value, err, errlen);
            if (rc != 0)
                return rc;
        }
        i += used;
    }
    for (int i = 0; i < argc;) {
        int used = split_arg(schema, argc, argv, i, name, sizeof(name), &value);
        if (strcmp(name, "config") != 0) {
            rc = config_set(schema, settings, name, value, err, errlen);
            if (rc != 0)
                return rc;
        }
        i += used;
    }
    return 0;
}
