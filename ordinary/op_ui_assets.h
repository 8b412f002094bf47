/* op_ui_assets.h - the web UI's files (ordinary/ui/), built into the
 * binary by cmake/embed.cmake: nothing is read from disk or the network at
 * run time. Static data, owned by no one. */
#ifndef SOVA_OP_UI_ASSETS_H
#define SOVA_OP_UI_ASSETS_H

#include <stddef.h>

struct op_ui_asset {
    const char *name; /* base name: "index.html", "app.js", ... */
    const unsigned char *data;
    size_t len; /* bytes of data (which has one more, a NUL, after them) */
};

extern const struct op_ui_asset op_ui_assets[];
extern const unsigned op_ui_n_assets;

#endif
