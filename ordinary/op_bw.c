/* op_bw.c - bandwidth buckets and the alternative limits' schedule (op_bw.h). */
#include "op_bw.h"
#include "err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static uint64_t burst_of(uint64_t rate, uint64_t min_burst)
{
    return rate / 4 > min_burst ? rate / 4 : min_burst;
}

static void refill(struct op_bw_bucket *b, uint64_t now_ms)
{
    if (now_ms <= b->last_ms) {
        return;
    }
    uint64_t dt = now_ms - b->last_ms;
    b->last_ms = now_ms;
    if (b->rate == 0) {
        return;
    }
    /* At most a burst is saved; a debt is paid at rate (saturating: a
     * long idle time cannot overflow the product). */
    uint64_t add = dt >= UINT64_MAX / b->rate ? UINT64_MAX : dt * b->rate / 1000;
    int64_t t = b->tokens;
    if (t < 0) {
        uint64_t debt = (uint64_t)-t;
        if (add < debt) {
            b->tokens = t + (int64_t)add;
            return;
        }
        add -= debt;
        t = 0;
    }
    t = add > b->burst - (uint64_t)t ? (int64_t)b->burst : t + (int64_t)add;
    b->tokens = t;
}

void op_bw_init(struct op_bw_bucket *b, uint64_t rate, uint64_t min_burst, uint64_t now_ms)
{
    b->rate = rate;
    b->burst = burst_of(rate, min_burst);
    b->tokens = (int64_t)b->burst;
    b->last_ms = now_ms;
}

void op_bw_set_rate(struct op_bw_bucket *b, uint64_t rate, uint64_t min_burst, uint64_t now_ms)
{
    refill(b, now_ms);
    b->rate = rate;
    b->burst = burst_of(rate, min_burst);
    if (rate == 0 || b->tokens > (int64_t)b->burst)
        b->tokens = (int64_t)b->burst;
}

void op_bw_charge(struct op_bw_bucket *b, uint64_t n, uint64_t now_ms)
{
    refill(b, now_ms);
    if (b->rate == 0)
        return;
    /* A debt is bounded by what one caller can be handed at once; clamp
     * anyway so no count can wrap. */
    const int64_t floor = INT64_MIN / 2;
    if (n > (uint64_t)INT64_MAX / 2 || b->tokens - (int64_t)n < floor)
        b->tokens = floor;
    else
        b->tokens -= (int64_t)n;
}

uint64_t op_bw_wait_ms(struct op_bw_bucket *b, uint64_t now_ms)
{
    refill(b, now_ms);
    if (b->rate == 0 || b->tokens >= 0)
        return 0;
    uint64_t debt = (uint64_t)-b->tokens;
    uint64_t ms = debt / b->rate * 1000 + (debt % b->rate) * 1000 / b->rate;
    return ms + 1; /* rounded up: after it, the debt is paid */
}

/* ---- schedule ---------------------------------------------------------------------- */

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int day_of(const char *s, size_t n)
{
    if (n != 3)
        return -1;
    for (int d = 0; d < 7; d++)
        if (strncasecmp(s, day_names[d], 3) == 0)
            return d;
    return -1;
}

static int bad(char *err, size_t errlen, const char *text, const char *why)
{
    snprintf(err, errlen,
             "schedule \"%.64s\": %s (like \"mon-fri 09:00-17:00\" or \"daily "
             "22:00-06:00\")",
             text, why);
    return SOVA_ERR_BAD_VALUE;
}

static int parse_days(const char *s, size_t n, uint8_t *days)
{
    *days = 0;
    if (n == 5 && strncasecmp(s, "daily", 5) == 0) {
        *days = 0x7f;
        return 0;
    }
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        /* one item: "mon" or "mon-fri" */
        const char *dash = memchr(s + i, '-', j - i);
        int a, b;
        if (dash == NULL) {
            a = b = day_of(s + i, j - i);
        } else {
            a = day_of(s + i, (size_t)(dash - (s + i)));
            b = day_of(dash + 1, (size_t)(s + j - dash - 1));
        }
        if (a < 0 || b < 0)
            return -1;
        for (int d = a;; d = (d + 1) % 7) { /* "fri-mon" wraps over the weekend */
            *days |= (uint8_t)(1u << d);
            if (d == b)
                break;
        }
        i = j + 1;
        if (j + 1 == n) /* a trailing comma */
            return -1;
    }
    return *days ? 0 : -1;
}

static int parse_hhmm(const char *s, size_t n, uint16_t *out)
{
    if (n != 5 || s[2] != ':')
        return -1;
    for (size_t i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59)
        return -1;
    *out = (uint16_t)(h * 60 + m);
    return 0;
}

int op_bw_schedule_parse(const char *text, struct op_bw_schedule *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL || text[0] == '\0')
        return 0;
    const char *sp = strchr(text, ' ');
    if (sp == NULL || strchr(sp + 1, ' ') != NULL)
        return bad(err, errlen, text, "days and a time range, one space between");
    if (parse_days(text, (size_t)(sp - text), &out->days) != 0)
        return bad(err, errlen, text, "days are \"daily\" or sun..sat, ranges and commas");
    const char *range = sp + 1, *dash = strchr(range, '-');
    if (dash == NULL || parse_hhmm(range, (size_t)(dash - range), &out->from_min) != 0 ||
        parse_hhmm(dash + 1, strlen(dash + 1), &out->to_min) != 0)
        return bad(err, errlen, text, "the time range is HH:MM-HH:MM, 24-hour");
    if (out->from_min == out->to_min)
        return bad(err, errlen, text, "the time range is empty");
    out->set = true;
    return 0;
}

bool op_bw_schedule_active(const struct op_bw_schedule *s, int wday, int hour, int min)
{
    if (!s->set || wday < 0 || wday > 6)
        return false;
    int t = hour * 60 + min;
    if (s->from_min < s->to_min)
        return (s->days & (1u << wday)) && t >= s->from_min && t < s->to_min;
    /* Crosses midnight: the evening of a listed day, or the morning after. */
    int yesterday = (wday + 6) % 7;
    return ((s->days & (1u << wday)) && t >= s->from_min) ||
           ((s->days & (1u << yesterday)) && t < s->to_min);
}

bool op_bw_turtle_active(enum op_bw_turtle mode, const struct op_bw_schedule *s, int wday, int hour,
                         int min)
{
    if (mode == OP_BW_TURTLE_ON)
        return true;
    if (mode == OP_BW_TURTLE_OFF)
        return false;
    return op_bw_schedule_active(s, wday, hour, min);
}

static const char *const turtle_names[] = {"auto", "on", "off"};

const char *op_bw_turtle_name(enum op_bw_turtle mode)
{
    return (unsigned)mode < 3 ? turtle_names[mode] : "?";
}

int op_bw_turtle_parse(const char *word)
{
    for (int i = 0; i < 3; i++)
        if (word != NULL && strcmp(word, turtle_names[i]) == 0)
            return i;
    return -1;
}
