/* ctl_internal.h - what ctl.c, ctl_server.c and ctl_client.c share. Not for
 * use outside the ctl module: include ctl.h. */
#ifndef SOVA_CTL_INTERNAL_H
#define SOVA_CTL_INTERNAL_H

#ifndef SOVA_CTL_MODULE
#error "ctl_internal.h is private to the ctl module; include ctl.h"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

/* Fill a sockaddr_un for path. SOVA_ERR_INVALID with err filled when the path
 * is empty or longer than sun_path can hold. */
int ctl_sockaddr_init(const char *path, struct sockaddr_un *sa, socklen_t *len, char *err,
                      size_t errlen);

/* Make text safe to send, log and print, in place: control characters
 * become '?', and with ascii_only every byte outside printable ASCII does
 * too (for text quoting hostile input, which may not be valid UTF-8). */
void ctl_sanitize_text(char *s, bool ascii_only);

static inline struct timeval ctl_timeval_ms(unsigned ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

#endif
