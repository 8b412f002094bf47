/* sn_credit.c - the credit arithmetic (sn_credit.h). */
#include "sn_credit.h"

uint16_t sn_credit_weight(uint64_t uploaded, uint64_t uptime_s)
{
    uint64_t by_upload = uploaded >= SN_CREDIT_ESTABLISH_BYTES
                             ? 1000
                             : uploaded / (SN_CREDIT_ESTABLISH_BYTES / 1000);
    uint64_t by_uptime =
        uptime_s >= SN_CREDIT_ESTABLISH_S ? 1000 : uptime_s * 1000 / SN_CREDIT_ESTABLISH_S;
    uint64_t progress = by_upload > by_uptime ? by_upload : by_uptime; /* permille of the way */
    uint64_t w =
        SN_CREDIT_FRESH_WEIGHT + (SN_CREDIT_WEIGHT_FULL - SN_CREDIT_FRESH_WEIGHT) * progress / 1000;
    return (uint16_t)(w > SN_CREDIT_WEIGHT_FULL ? SN_CREDIT_WEIGHT_FULL : w);
}

uint64_t sn_credit_add(uint64_t have, uint64_t bytes, uint16_t weight, uint64_t cap)
{
    if (weight > SN_CREDIT_WEIGHT_FULL)
        weight = SN_CREDIT_WEIGHT_FULL;
    if (have >= cap)
        return have;
    /* bytes / 1000 * weight first keeps a u64 from overflowing. */
    uint64_t add = bytes / 1000 * weight + bytes % 1000 * weight / 1000;
    return add >= cap - have ? cap : have + add;
}

uint64_t sn_credit_uptime(uint64_t uptime_s)
{
    if (uptime_s > SN_CREDIT_UPTIME_MAX_S)
        uptime_s = SN_CREDIT_UPTIME_MAX_S;
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
    unsigned __int128 sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += credits[i];
    for (size_t i = 0; i < n; i++) {
        uint64_t extra =
            sum == 0 ? rest / n : (uint64_t)((unsigned __int128)rest * credits[i] / sum);
        out[i] = each + extra;
    }
}
