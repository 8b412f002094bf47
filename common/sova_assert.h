/* sova_assert.h - invariants that must never break, checked in every build.
 *
 * SOVA_ASSERT(expr) is on in release builds too (unlike assert(3), NDEBUG
 * does not remove it), as Tor's tor_assert: when expr is false it logs the
 * file, line, function and the expression at error level and aborts, so
 * systemd restarts the daemon instead of letting it run on corrupt state.
 * Use it where later code relies on the invariant (queue and window
 * accounting, reference counts, ownership), never to check input from the
 * network or the user: that gets an error value and an ERROR frame. */
#ifndef SOVA_ASSERT_H
#define SOVA_ASSERT_H

_Noreturn void sova_assert_failed(const char *file, int line, const char *func, const char *expr);

#define SOVA_ASSERT(expr)                                                                          \
    ((expr) ? (void)0 : sova_assert_failed(__FILE__, __LINE__, __func__, #expr))

#endif
