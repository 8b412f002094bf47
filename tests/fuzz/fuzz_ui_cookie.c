/* fuzz_ui_cookie.c - what a browser (or anyone who reaches the web UI's
 * port) sends to be let in (ordinary/op_ui.h): a Cookie header, a login
 * link's token and an X-Sova-CSRF header, all arbitrary bytes. Checked: no
 * crash, no read past the input, and nothing guessed lets anyone in — a
 * header that does not hold the session's exact cookie finds no session,
 * and neither a token nor a CSRF value that is not the real one passes. */
#include "op_ui.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct op_ui *ui = op_ui_new(KEY, 7377, false);
    struct op_ui_session *s = ui ? op_ui_session_new(ui, 1000) : NULL;
    char token[OP_UI_SECRET_HEX + 1];
    if (s == NULL || op_ui_token_new(ui, 1000, token) != 0) {
        op_ui_free(ui);
        free(text);
        return 0;
    }
    char real[128];
    snprintf(real, sizeof(real), "%s=%s", op_ui_cookie_name(ui), op_ui_session_id(s));
    struct op_ui_session *found = op_ui_session_find(ui, text, 2000);
    if (found != NULL && strstr(text, real) == NULL)
        abort(); /* let in without the cookie */
    if (op_ui_csrf_matches(s, text) && strcmp(text, op_ui_session_csrf(s)) != 0)
        abort();
    if (op_ui_token_take(ui, text, 2000) && strcmp(text, token) != 0)
        abort();
    op_ui_free(ui);
    free(text);
    return 0;
}
