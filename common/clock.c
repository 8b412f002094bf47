/* clock.c - see clock.h. */
#include "clock.h"

static uint64_t read_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sova_mono_ms(void)
{
    return read_ms(CLOCK_MONOTONIC);
}

uint64_t sova_wall_ms(void)
{
    return read_ms(CLOCK_REALTIME);
}

struct timespec sova_mono_deadline(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
