/* clock.h - the two clocks Sova reads, in one place.
 *
 * Code that decides something (timers, limits, protocol state) never reads
 * a clock itself: the I/O layer calls one of these and passes `now_ms` in,
 * so tests and the simulator drive the same code with a fake clock. Outside
 * common/ no file calls clock_gettime(), time() or gettimeofday() (checked
 * by tests/check/test_layers.sh).
 *
 * Neither call blocks; both are safe from any thread. */
#ifndef SOVA_CLOCK_H
#define SOVA_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC: for durations and deadlines. */
uint64_t sova_mono_ms(void);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME): for what other hosts
 * compare (incarnations, summary versions, receipt dates). May jump. */
uint64_t sova_wall_ms(void);
/* An absolute CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait
 * on a condition variable set to CLOCK_MONOTONIC. */
struct timespec sova_mono_deadline(uint64_t ms);

#endif
