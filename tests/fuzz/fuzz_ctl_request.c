/* fuzz_ctl_request.c - one control request line, as the daemon's control
 * socket hands it to ctl_request_decode().
 *
 * For any bytes: decoding never crashes, leaks or reads out of bounds; a
 * failure leaves a non-empty, printable message; a success yields a struct
 * inside every documented limit. Any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap + 1);
    if (n > cap)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            abort();
}

static void check_request(const struct ctl_request *req)
{
    switch (req->cmd) {
    case CTL_CMD_STATUS:
    case CTL_CMD_DOWNLOADS:
    case CTL_CMD_PEERS:
    case CTL_CMD_METRICS:
    case CTL_CMD_SHARES:
    case CTL_CMD_UI_LOGIN:
        return;
    case CTL_CMD_SHARE_ADD:
    case CTL_CMD_SHARE_REMOVE: {
        const char *p = req->u.folder.path;
        if (strnlen(p, CTL_MAX_PATH + 1) > CTL_MAX_PATH || p[0] != '/')
            abort();
        return;
    }
    case CTL_CMD_SEARCH: {
        const struct ctl_search *s = &req->u.search;
        if (s->n_words < 1 || s->n_words > CTL_MAX_WORDS)
            abort();
        for (size_t i = 0; i < s->n_words; i++) {
            size_t n = strnlen(s->words[i], CTL_MAX_WORD_LEN + 1);
            if (n == 0 || n > CTL_MAX_WORD_LEN)
                abort();
        }
        if (s->max < 1 || s->max > CTL_SEARCH_MAX_LIMIT || s->timeout_ms < 1 ||
            s->timeout_ms > CTL_SEARCH_TIMEOUT_LIMIT)
            abort();
        return;
    }
    case CTL_CMD_GET: {
        const struct ctl_get *g = &req->u.get;
        if (strnlen(g->out, CTL_MAX_PATH + 1) > CTL_MAX_PATH ||
            (g->out[0] != '\0' && g->out[0] != '/'))
            abort();
        if (strnlen(g->name, CTL_MAX_NAME + 1) > CTL_MAX_NAME || strchr(g->name, '/') != NULL)
            abort();
        if (g->priority > CTL_PRIORITY_UNSET)
            abort();
        return;
    }
    case CTL_CMD_PAUSE:
    case CTL_CMD_RESUME:
    case CTL_CMD_CANCEL:
    case CTL_CMD_REMOVE:
        return;
    case CTL_CMD_PRIORITY:
        if (req->u.xfer.priority >= CTL_PRIORITY_UNSET)
            abort();
        return;
    case CTL_CMD_LIMITS: {
        const struct ctl_limits *l = &req->u.limits;
        const unsigned v[] = {l->upload_kbps, l->download_kbps, l->alt_upload_kbps,
                              l->alt_download_kbps};
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
            if (v[i] != CTL_UNSET && v[i] > CTL_KBPS_MAX)
                abort();
        if (strnlen(l->turtle, CTL_MAX_TURTLE + 1) > CTL_MAX_TURTLE)
            abort();
        return;
    }
    case CTL_CMD_LIMIT:
        if (req->u.limit.kbps > CTL_KBPS_MAX)
            abort();
        return;
    }
    abort(); /* a command outside the enum */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ctl_request req;
    char err[CTL_ERR_MAX];
    err[0] = '\0';
    int rc = ctl_request_decode((const char *)data, size, &req, err, sizeof(err));
    if (rc == 0)
        check_request(&req);
    else if (rc > 0 || err[0] == '\0')
        abort();
    else
        check_text(err, sizeof(err) - 1);
    ctl_request_clear(&req);
    return 0;
}
