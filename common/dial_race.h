/* dial_race.h - Happy Eyeballs (RFC 8305) for a TCP connection to one of
 * several addresses (a supernode's name that resolves to IPv6 and IPv4
 * addresses): the first is dialed at once, the next DIAL_RACE_STAGGER_MS
 * later if none has connected yet (or at once when one fails), in an order
 * that alternates the families starting with IPv6, and
 * the first to connect wins; the others are closed. A broken IPv6 path
 * then costs a quarter of a second, not a connect timeout, and an address
 * that refuses costs nothing.
 *
 * Ownership: the caller owns the struct dial_race (dial_race_free cancels
 * without calling back). The winning socket handed to the callback is the
 * callback's. Nothing blocks. */
#ifndef SOVA_DIAL_RACE_H
#define SOVA_DIAL_RACE_H

#include <event2/event.h>
#include <stddef.h>
#include <sys/socket.h>

#define DIAL_RACE_STAGGER_MS 250 /* RFC 8305's recommended Connection Attempt Delay */
#define DIAL_RACE_MAX        8   /* addresses raced at most */

struct dial_race;

/* Connected: fd (the callback's) to addrs[index]; why NULL. Or every
 * address failed or the deadline passed: fd -1, index -1, why in words.
 * Runs exactly once, unless freed before. */
typedef void dial_race_fn(evutil_socket_t fd, int index, const char *why, void *arg);

/* Race n addresses (at most DIAL_RACE_MAX are used), within timeout_ms in
 * all; bind_addr (port 0, may be NULL) is bound for attempts of its
 * family. The callback runs from the loop, never inside this call. NULL
 * only when out of memory (no callback). */
struct dial_race *dial_race_start(struct event_base *base, const struct sockaddr_storage *addrs,
                                  const socklen_t *lens, size_t n, const struct sockaddr *bind_addr,
                                  socklen_t bind_len, unsigned timeout_ms, dial_race_fn *fn,
                                  void *arg);
/* Cancel (no callback) and free; NULL is fine. */
void dial_race_free(struct dial_race *r);

/* The order to dial families[0..n) in: IPv6 first if there is one (else
 * the first address's family), then alternating (RFC 8305, section 4),
 * each family keeping its own order. Pure; order gets n indexes. */
void dial_race_order(const int *families, size_t n, size_t *order);

#endif
