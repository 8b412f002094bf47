/* op_bw.h - bandwidth limits of the peer: token buckets that may run into
 * debt, and the schedule of the alternative limits ("turtle mode", as
 * Transmission calls it).
 *
 * A download limit cannot refuse bytes that are already on their way, so a
 * bucket here is charged after the fact: op_bw_charge() takes what arrived
 * even when it makes the balance negative, and op_bw_wait_ms() says how long
 * the caller must stop reading before the debt is paid. Over any window the
 * bytes let through are then at most rate * window + burst + one frame, and
 * at least rate * window - burst while data keeps coming.
 *
 * The schedule is "DAYS HH:MM-HH:MM": DAYS is "daily" or a comma list of
 * days and day ranges ("mon-fri", "sat,sun", "mon,wed-fri"); the time range
 * may cross midnight ("22:00-06:00": from 22:00 on a listed day to 06:00
 * the next morning). Times are local wall-clock times given by the caller.
 *
 * Pure: no clock reads, no allocation, no I/O; the caller passes the time. */
#ifndef SOVA_OP_BW_H
#define SOVA_OP_BW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct op_bw_bucket {
    uint64_t rate;  /* bytes a second; 0: unlimited */
    uint64_t burst; /* most saved up */
    int64_t tokens; /* may be negative: a debt */
    uint64_t last_ms;
};

/* A burst of a quarter second's worth, at least min_burst bytes. */
void op_bw_init(struct op_bw_bucket *b, uint64_t rate, uint64_t min_burst, uint64_t now_ms);
/* A new rate (0: unlimited), keeping the balance (at most the new burst). */
void op_bw_set_rate(struct op_bw_bucket *b, uint64_t rate, uint64_t min_burst, uint64_t now_ms);
/* n bytes went through: take them, into debt if need be. */
void op_bw_charge(struct op_bw_bucket *b, uint64_t n, uint64_t now_ms);
/* 0 when the balance is not negative (go on), else the milliseconds until it
 * is back to 0 (stop until then). Always 0 when unlimited. */
uint64_t op_bw_wait_ms(struct op_bw_bucket *b, uint64_t now_ms);

/* ---- the alternative limits' schedule ------------------------------------- */

struct op_bw_schedule {
    bool set;          /* false: no schedule (the alternative limits only by hand) */
    uint8_t days;      /* bit d for day d, 0 = Sunday .. 6 = Saturday */
    uint16_t from_min; /* minutes after midnight, 0..1439 */
    uint16_t to_min;   /* the same; to_min < from_min crosses midnight */
};

/* Parse text ("" or NULL: no schedule). 0, or SOVA_ERR_BAD_VALUE with a
 * message naming the bad part in err. */
int op_bw_schedule_parse(const char *text, struct op_bw_schedule *out, char *err, size_t errlen);
/* Is the schedule's window open at this local time (wday 0 = Sunday)? */
bool op_bw_schedule_active(const struct op_bw_schedule *s, int wday, int hour, int min);

/* Which limits are in force: the alternative ones when the user turned
 * them on, or left them to the schedule and the window is open. */
enum op_bw_turtle { OP_BW_TURTLE_AUTO, OP_BW_TURTLE_ON, OP_BW_TURTLE_OFF };
bool op_bw_turtle_active(enum op_bw_turtle mode, const struct op_bw_schedule *s, int wday, int hour,
                         int min);
/* "auto", "on", "off" and back; -1 for an unknown word. */
const char *op_bw_turtle_name(enum op_bw_turtle mode);
int op_bw_turtle_parse(const char *word);

#endif
