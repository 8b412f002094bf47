/* sn_federation.c - what the federation does with its supernode links.
 * (Membership gossip, summaries and forwarded search plug in here.) */
#include "log.h"
#include "sn_internal.h"

void sn_fed_hook_link_up(struct sn_daemon *d, struct sn_peer *p, const struct wire_addr *addr,
                         size_t n_addr)
{
    (void)d;
    (void)p;
    (void)addr;
    (void)n_addr;
}

void sn_fed_hook_link_down(struct sn_daemon *d, struct sn_peer *p)
{
    (void)d;
    log_info("fed", "%s: supernode link down", link_name(p->link));
}

void sn_fed_hook_message(struct sn_daemon *d, struct sn_peer *p, const struct msg *m)
{
    (void)d;
    if (m->type != MSG_ERROR)
        link_send_error(p->link, MSG_ERR_PROTOCOL, m->type, "not served on supernode links yet");
}
