/* op_paths.h - where a peer of one desktop user keeps things when no option
 * says otherwise (the XDG base directories):
 *
 *   config     $XDG_CONFIG_HOME/sova/peer.conf (~/.config/sova/peer.conf),
 *              else /etc/sova/peer.conf
 *   state      $XDG_STATE_HOME/sova (~/.local/state/sova)
 *   downloads  the XDG download folder (XDG_DOWNLOAD_DIR of
 *              ~/.config/user-dirs.dirs, as xdg-user-dir DOWNLOAD says),
 *              else ~/Downloads
 *
 * and `sova-peer init`, which writes a commented config. Blocking file
 * reads: for the command line and start-up, never on the loop.
 */
#ifndef SOVA_OP_PATHS_H
#define SOVA_OP_PATHS_H

#include "config.h"

/* The api-listen `sova-peer init` writes: the web UI (docs/UI.md) at
 * http://127.0.0.1:7377/ from the first run. */
#define OP_PATHS_INIT_API_LISTEN "127.0.0.1:7377"

#include <stdbool.h>
#include <stddef.h>

#define OP_PATHS_SYSTEM_CONFIG        "/etc/sova/peer.conf"
#define OP_PATHS_SYSTEM_CONFIG_SHARED "/etc/sova/sova.conf" /* the package's, [peer] section */

/* The user's config file (whether it exists or not). 0, or SOVA_ERR_CONFIG
 * with err saying that neither XDG_CONFIG_HOME nor HOME is set. */
int op_paths_user_config(char *buf, size_t cap, char *err, size_t errlen);
/* The config file `run` reads without --config, the first that exists of:
 * the user's peer.conf, the user's sova.conf (its name in earlier
 * releases), /etc/sova/peer.conf, /etc/sova/sova.conf (the package's file
 * for both daemons, read for its [peer] section). true when there is one. */
bool op_paths_find_config(char *buf, size_t cap);
/* The default state directory. 0 or SOVA_ERR_CONFIG (no HOME). */
int op_paths_state_dir(char *buf, size_t cap, char *err, size_t errlen);
/* The user's download folder. 0 or SOVA_ERR_CONFIG (no HOME). */
int op_paths_downloads(char *buf, size_t cap, char *err, size_t errlen);

/* Write a commented configuration of every option of schema to path: the
 * options in set (argv-style "--name=value", already checked) as settings,
 * every other one as a comment with its default. Refuses an existing file
 * unless force (then it is replaced at once, by a rename). 0, or
 * SOVA_ERR_IO with err filled (naming --force for an existing file). */
int op_paths_write_config(const char *path, const struct config_schema *schema, int setc,
                          char *const *setv, bool force, char *err, size_t errlen);

#endif
