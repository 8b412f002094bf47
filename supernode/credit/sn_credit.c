/* sn_credit.c - the credit arithmetic (sn_credit.h). */
#include "sn_credit.h"
#include "sova_assert.h"

uint64_t sn_credit_uptime(uint64_t uptime_s)
{
    if (uptime_s > SN_CREDIT_UPTIME_MAX_S)
        uptime_s = SN_CREDIT_UPTIME_MAX_S;
    /* 30 days x 1 MiB is far from wrapping: the cap above keeps it so. */
    return uptime_s * SN_CREDIT_UPTIME_PER_HOUR / 3600;
}

void sn_credit_relay_shares(const uint64_t *credits, size_t n, uint64_t total, unsigned floor_pct,
                            uint64_t *out)
{
    if (n == 0)
        return;
    if (floor_pct > 100)
        floor_pct = 100;
    uint64_t floor_part = total / 100 * floor_pct + total % 100 * floor_pct / 100;
    uint64_t each = floor_part / n, rest = total - floor_part;
    /* n <= SIZE_MAX credits of at most 2^64 - 1: the sum fits 128 bits. */
    unsigned __int128 sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += credits[i];
    uint64_t given = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t extra =
            sum == 0 ? rest / n : (uint64_t)((unsigned __int128)rest * credits[i] / sum);
        out[i] = each + extra;
        given += out[i];
    }
    SOVA_ASSERT(given <= total); /* the relay relies on never handing out more */
}
