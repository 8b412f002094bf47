/* sn_rate.c - see sn_rate.h. */
#include "sn_rate.h"
#include "err.h"

#include <stddef.h>
#include <stdint.h>

#define MILLI 1000u

void sn_rate_init(struct sn_rate *r, uint64_t rate, uint64_t burst, uint64_t now_ms)
{
    r->rate = rate;
    r->burst = (burst ? burst : rate) * MILLI;
    r->tokens = r->burst;
    r->last_ms = now_ms;
}

static void refill(struct sn_rate *r, uint64_t now_ms);

void sn_rate_set(struct sn_rate *r, uint64_t rate, uint64_t burst, uint64_t now_ms)
{
    if (r->rate != 0)
        refill(r, now_ms);
    uint64_t saved = r->rate != 0 ? r->tokens : UINT64_MAX;
    r->rate = rate;
    r->burst = (burst ? burst : rate) * MILLI;
    r->tokens = saved < r->burst ? saved : r->burst;
    r->last_ms = now_ms;
}

static void refill(struct sn_rate *r, uint64_t now_ms)
{
    if (now_ms <= r->last_ms)
        return;
    uint64_t elapsed = now_ms - r->last_ms;
    r->last_ms = now_ms;
    /* ms * units/s = milli-units; a gap that fills the bucket fills it (and
     * keeps the product from overflowing). */
    if (elapsed >= r->burst / r->rate + 1) {
        r->tokens = r->burst;
        return;
    }
    uint64_t add = elapsed * r->rate;
    r->tokens = r->burst - r->tokens < add ? r->burst : r->tokens + add;
}

uint64_t sn_rate_available(struct sn_rate *r, uint64_t now_ms)
{
    if (r->rate == 0)
        return UINT64_MAX;
    refill(r, now_ms);
    return r->tokens / MILLI;
}

int sn_rate_take(struct sn_rate *r, uint64_t n, uint64_t now_ms, uint64_t *wait_ms)
{
    if (r->rate == 0)
        return 0;
    refill(r, now_ms);
    uint64_t need = n * MILLI;
    if (r->tokens >= need) {
        r->tokens -= need;
        return 0;
    }
    if (wait_ms != NULL)
        *wait_ms = (need - r->tokens + r->rate - 1) / r->rate;
    return SOVA_ERR_NOT_FOUND;
}
