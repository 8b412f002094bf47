/* sn_keepalive.c - see sn_keepalive.h. */
#include "sn_keepalive.h"

static uint16_t cap_u16(uint64_t v)
{
    return v > UINT16_MAX ? UINT16_MAX : (uint16_t)v;
}

struct sn_keepalive sn_keepalive_advise(uint64_t keepalive_s, uint64_t peer_timeout_s,
                                        uint64_t max_pings_per_s, size_t peers)
{
    uint64_t ka = keepalive_s ? keepalive_s : 1;
    uint64_t to = peer_timeout_s < ka ? ka : peer_timeout_s;
    if (max_pings_per_s > 0 && peers / ka >= max_pings_per_s) {
        uint64_t want = (peers + max_pings_per_s - 1) / max_pings_per_s;
        if (want > ka) {
            /* to * want / ka, rounded up, without overflow for sane inputs. */
            to = (to * want + ka - 1) / ka;
            ka = want;
        }
    }
    struct sn_keepalive k = {.keepalive_s = cap_u16(ka), .peer_timeout_s = cap_u16(to)};
    if (k.peer_timeout_s < k.keepalive_s)
        k.peer_timeout_s = k.keepalive_s;
    return k;
}

static bool off_by_an_eighth(uint32_t told, uint32_t now)
{
    uint32_t diff = told > now ? told - now : now - told;
    return diff * 8 > now;
}

bool sn_keepalive_stale(struct sn_keepalive told, struct sn_keepalive now)
{
    return off_by_an_eighth(told.keepalive_s, now.keepalive_s) ||
           off_by_an_eighth(told.peer_timeout_s, now.peer_timeout_s);
}
