/* msg_core.c - schemas of the messages every link speaks: HELLO, ERROR,
 * PING/PONG. Layouts: docs/PROTOCOL.md, "Core messages". */
#define SOVA_MSG_INTERNAL
#include "err.h"
#include "msg_schema.h"

static void hello_connect_token_io(struct wire_io *io, void *ctx)
{
    struct msg_hello *m = ctx;
    wire_io_raw(io, "connect_token", m->connect_token, WIRE_TOKEN_LEN);
}

void msg_hello_io(struct wire_io *io, void *body)
{
    struct msg_hello *m = body;
    wire_io_u16_in(io, "version_min", &m->version_min, 1, UINT16_MAX);
    wire_io_u16_in(io, "version_max", &m->version_max, m->version_min, UINT16_MAX);
    wire_io_u32(io, "capabilities", &m->capabilities);
    wire_io_u8_in(io, "role", &m->role, MSG_ROLE_SUPERNODE, MSG_ROLE_PEER);
    wire_io_str(io, "agent", &m->agent, io->lim->max_agent_len, 0);
    const struct wire_ext ext[] = {
        {MSG_EXT_HELLO_CONNECT_TOKEN, &m->has_connect_token, hello_connect_token_io, m},
    };
    wire_io_ext(io, ext, sizeof(ext) / sizeof(ext[0]));
}

static void error_retry_after_io(struct wire_io *io, void *ctx)
{
    struct msg_error *m = ctx;
    wire_io_u32(io, "retry_after_ms", &m->retry_after_ms);
}

static void error_redirect_io(struct wire_io *io, void *ctx)
{
    struct msg_error *m = ctx;
    WIRE_IO_ADDRS(io, "redirect", m->redirect, m->n_redirect);
}

void msg_error_io(struct wire_io *io, void *body)
{
    struct msg_error *m = body;
    wire_io_u16_in(io, "code", &m->code, 1, UINT16_MAX);
    wire_io_u8(io, "offending_type", &m->offending_type);
    wire_io_str(io, "text", &m->text, io->lim->max_error_text, 0);
    const struct wire_ext ext[] = {
        {MSG_EXT_ERROR_RETRY_AFTER, &m->has_retry_after, error_retry_after_io, m},
        {MSG_EXT_ERROR_REDIRECT, &m->has_redirect, error_redirect_io, m},
    };
    wire_io_ext(io, ext, sizeof(ext) / sizeof(ext[0]));
}

void msg_ping_io(struct wire_io *io, void *body)
{
    struct msg_ping *m = body;
    wire_io_u64(io, "nonce", &m->nonce);
}
