/* nat_netwatch.h - the host's network changing under a peer (a new DHCP
 * lease, Wi-Fi to cable, a cable pulled, a new default route): rtnetlink
 * (Linux), read on the event loop, no thread and no polling.
 *
 * A burst of kernel messages (an address goes, another comes, routes
 * follow) makes one changed() call, NAT_NETWATCH_SETTLE_MS after the last of
 * them; the owner then looks at what it cares about (its local addresses)
 * and acts only when that changed. Messages about other things (links'
 * statistics, neighbours) are read and dropped.
 *
 * Owner: the peer daemon (ordinary/op_daemon.c), which frees it before its
 * event base. nat_netwatch_relevant() is pure and bounded (fuzz_netwatch).
 */
#ifndef SOVA_NAT_NETWATCH_H
#define SOVA_NAT_NETWATCH_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#define NAT_NETWATCH_SETTLE_MS 300 /* quiet time after a burst before changed() */

struct nat_netwatch;
typedef void nat_netwatch_fn(void *arg);

/* Watch addresses and routes (IPv4 and IPv6). 0, or a negative enum
 * sova_err with err set (no rtnetlink here: the caller goes on without,
 * relying on its periodic checks). */
int nat_netwatch_new(struct event_base *base, nat_netwatch_fn *changed, void *arg,
                     struct nat_netwatch **out, char *err, size_t errlen);
void nat_netwatch_free(struct nat_netwatch *w);

/* Does buf (len bytes, one read from an rtnetlink socket) hold a message
 * about an address or a route? Reads only within len; a truncated or
 * malformed message ends the walk. */
bool nat_netwatch_relevant(const void *buf, size_t len);

#endif
