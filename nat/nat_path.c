/* nat_path.c - reachability and path choice, pure (nat_path.h). */
#include "nat_path.h"

#include <stdio.h>
#include <string.h>

const char *nat_reach_str(uint8_t reach)
{
    switch (reach) {
    case MSG_REACH_PUBLIC:
        return "public";
    case MSG_REACH_MAPPED:
        return "mapped";
    case MSG_REACH_UNREACHABLE:
        return "unreachable";
    default:
        return "unknown";
    }
}

static const char *outcome_str(uint8_t o)
{
    switch (o) {
    case MSG_DIALBACK_OK:
        return "ok";
    case MSG_DIALBACK_REFUSED:
        return "refused";
    case MSG_DIALBACK_TIMEOUT:
        return "timed out";
    case MSG_DIALBACK_TLS_FAILED:
        return "TLS failed";
    case MSG_DIALBACK_ID_MISMATCH:
        return "another peer answered";
    default:
        return "not tried (not the address the supernode sees)";
    }
}

static bool addr_set(const struct wire_addr *a)
{
    return a != NULL && (a->family == WIRE_ADDR_IPV4 || a->family == WIRE_ADDR_IPV6) &&
           a->port != 0;
}

static size_t add_unique(struct wire_addr *out, size_t n, size_t cap, const struct wire_addr *a)
{
    if (!addr_set(a) || n >= cap)
        return n;
    for (size_t i = 0; i < n; i++)
        if (wire_addr_equal(&out[i], a))
            return n;
    out[n] = *a;
    return n + 1;
}

static bool unspecified(const struct wire_addr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->ip, zero, a->family == WIRE_ADDR_IPV4 ? 4 : 16) == 0;
}

size_t nat_reach_candidates(const struct wire_addr *mapped, const struct wire_addr *listen,
                            const struct wire_addr *observed, uint16_t listen_port,
                            struct wire_addr *out, size_t cap)
{
    size_t n = add_unique(out, 0, cap, mapped);
    if (addr_set(listen) && !unspecified(listen))
        n = add_unique(out, n, cap, listen);
    if (addr_set(observed) && listen_port != 0) {
        struct wire_addr o = *observed;
        o.port = listen_port;
        n = add_unique(out, n, cap, &o);
    }
    return n;
}

static bool is_local(const struct nat_reach_facts *f, const struct wire_addr *a)
{
    for (size_t i = 0; i < f->n_local; i++)
        if (wire_addr_same_ip(&f->local[i], a))
            return true;
    return false;
}

void nat_reach_classify(const struct nat_reach_facts *f, struct nat_reach *out)
{
    memset(out, 0, sizeof(*out));
    const struct msg_dialback_probe *ok_mapped = NULL, *ok_local = NULL, *ok_other = NULL,
                                    *ok_pinhole = NULL;
    for (size_t i = 0; i < f->n_probes; i++) {
        const struct msg_dialback_probe *p = &f->probes[i];
        if (p->outcome != MSG_DIALBACK_OK)
            continue;
        if (f->mapped != NULL && wire_addr_equal(&p->addr, f->mapped))
            ok_mapped = ok_mapped ? ok_mapped : p;
        else if (f->pinhole != NULL && wire_addr_equal(&p->addr, f->pinhole))
            ok_pinhole = ok_pinhole ? ok_pinhole : p;
        else if (is_local(f, &p->addr))
            ok_local = ok_local ? ok_local : p;
        else
            ok_other = ok_other ? ok_other : p;
    }
    char a[64];
    /* Our own address, but open only while the router keeps the pinhole:
     * mapped, as a port mapping is (it lives as long as the router's state). */
    if (ok_pinhole != NULL && ok_local == NULL) {
        out->reach = MSG_REACH_MAPPED;
        out->proved = ok_pinhole->addr;
        snprintf(out->why, sizeof(out->why),
                 "mapped: the supernode connected to %s through the router's IPv6 firewall "
                 "pinhole",
                 wire_addr_format(&out->proved, a, sizeof(a)));
        return;
    }
    if (ok_local != NULL) {
        out->reach = MSG_REACH_PUBLIC;
        out->proved = ok_local->addr;
        snprintf(out->why, sizeof(out->why),
                 "public: the supernode connected to our own address %s",
                 wire_addr_format(&out->proved, a, sizeof(a)));
        return;
    }
    if (ok_mapped != NULL || ok_other != NULL) {
        out->reach = MSG_REACH_MAPPED;
        out->proved = ok_mapped ? ok_mapped->addr : ok_other->addr;
        snprintf(out->why, sizeof(out->why), "mapped: the supernode connected to %s through %s",
                 wire_addr_format(&out->proved, a, sizeof(a)),
                 ok_mapped ? "the router's port mapping" : "the router (port forwarded)");
        return;
    }
    out->reach = MSG_REACH_UNREACHABLE;
    size_t used = (size_t)snprintf(out->why, sizeof(out->why), "unreachable: %s",
                                   f->mapping_state ? f->mapping_state : "no port mapping");
    for (size_t i = 0; i < f->n_probes && used < sizeof(out->why); i++) {
        int w = snprintf(out->why + used, sizeof(out->why) - used, "; dial-back to %s %s",
                         wire_addr_format(&f->probes[i].addr, a, sizeof(a)),
                         outcome_str(f->probes[i].outcome));
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (f->n_probes == 0 && used < sizeof(out->why))
        snprintf(out->why + used, sizeof(out->why) - used, "; no address to dial back");
}

const char *nat_type_str(enum nat_type t)
{
    switch (t) {
    case NAT_TYPE_NONE:
        return "no NAT";
    case NAT_TYPE_PRESERVES:
        return "keeps ports (looks endpoint-independent)";
    case NAT_TYPE_REWRITES:
        return "rewrites ports (looks symmetric)";
    default:
        return "unknown";
    }
}

enum nat_type nat_type_guess(const struct wire_addr *observed, const struct wire_addr *local,
                             size_t n)
{
    if (n == 0)
        return NAT_TYPE_UNKNOWN;
    bool same_ip = true, same_port = true;
    for (size_t i = 0; i < n; i++) {
        same_ip &= wire_addr_same_ip(&observed[i], &local[i]);
        same_port &= observed[i].port == local[i].port;
    }
    if (same_ip && same_port)
        return NAT_TYPE_NONE;
    return same_port ? NAT_TYPE_PRESERVES : NAT_TYPE_REWRITES;
}

const char *nat_path_str(enum nat_path p)
{
    switch (p) {
    case NAT_PATH_DIRECT:
        return "direct";
    case NAT_PATH_REVERSAL:
        return "reversal";
    case NAT_PATH_PUNCH:
        return "holepunch";
    case NAT_PATH_RELAY:
        return "relay";
    default:
        return "none";
    }
}

/* Can path p be tried? If not, why (appended to why). */
static bool path_possible(const struct nat_path_facts *f, enum nat_path p, enum nat_path failed,
                          char *why, size_t cap)
{
    /* A source behind our own public address is tried directly first (its
     * LAN address, then the public one through the router's loopback); once
     * that failed, reversal and a punch would aim at our own public address
     * too, and fail the same way. */
    bool behind_us = f->same_network && f->source_addrs && failed != NAT_PATH_NONE;
    size_t used = strlen(why);
    const char *no = NULL;
    static const char *const not_allowed[] = {
        [NAT_PATH_DIRECT] = "direct skipped: not allowed (ways)",
        [NAT_PATH_REVERSAL] = "reversal skipped: not allowed (ways)",
        [NAT_PATH_PUNCH] = "holepunch skipped: not allowed (ways)",
        [NAT_PATH_RELAY] = "relay skipped: not allowed (ways)"};
    if (p >= NAT_PATH_DIRECT && p <= NAT_PATH_RELAY && f->allowed != 0 &&
        !(f->allowed & (1u << p))) {
        if (used < cap)
            snprintf(why + used, cap - used, "%s%s", used ? "; " : "", not_allowed[p]);
        return false;
    }
    switch (p) {
    case NAT_PATH_DIRECT:
        if (!f->source_addrs)
            no = "direct skipped: no address of the source known";
        else if (f->source_reach == MSG_REACH_UNREACHABLE && !f->same_network)
            no = "direct skipped: the source is unreachable (its dial-back failed)";
        break;
    case NAT_PATH_REVERSAL:
        if (f->family_apart)
            no = "reversal skipped: the source has no address of our family (IPv4 / IPv6) to "
                 "connect to us from";
        else if (behind_us)
            no = "reversal skipped: the source is behind our own public address and direct "
                 "failed (the LAN does not join us and the router does not loop back)";
        else if (!f->attached)
            no = "reversal skipped: no supernode to ask";
        else if (f->self_reach != MSG_REACH_PUBLIC && f->self_reach != MSG_REACH_MAPPED)
            no = "reversal skipped: we are not reachable ourselves";
        break;
    case NAT_PATH_PUNCH:
        /* Both NATs must keep ports for the other side to aim at ours; the
         * source says NO at once if its own does not. */
        if (f->family_apart)
            no = "holepunch skipped: the source has no address of our family (IPv4 / IPv6)";
        else if (behind_us)
            no = "holepunch skipped: the source is behind our own public address and direct "
                 "failed";
        else if (!f->attached)
            no = "holepunch skipped: no supernode to ask";
        else if (!f->punch_offered)
            no = "holepunch skipped: our supernode does not carry punch notes";
        else if (f->self_nat == NAT_TYPE_REWRITES)
            no = "holepunch skipped: our NAT changes ports (looks symmetric)";
        else if (f->self_nat == NAT_TYPE_UNKNOWN)
            no = "holepunch skipped: what our NAT does to ports is not known yet";
        break;
    case NAT_PATH_RELAY:
        if (!f->attached)
            no = "relay skipped: no supernode";
        else if (!f->relay_offered)
            no = "relay skipped: our supernode does not relay";
        break;
    default:
        return false;
    }
    if (no != NULL && used < cap)
        snprintf(why + used, cap - used, "%s%s", used ? "; " : "", no);
    return no == NULL;
}

enum nat_path nat_path_next(const struct nat_path_facts *f, enum nat_path failed, char *why,
                            size_t cap)
{
    if (cap == 0)
        return NAT_PATH_NONE;
    why[0] = '\0';
    for (int p = (int)failed + 1; p <= NAT_PATH_RELAY; p++) {
        if (!path_possible(f, (enum nat_path)p, failed, why, cap))
            continue;
        size_t used = strlen(why);
        if (used < cap)
            snprintf(why + used, cap - used, "%strying %s", used ? "; " : "",
                     nat_path_str((enum nat_path)p));
        return (enum nat_path)p;
    }
    size_t used = strlen(why);
    if (used < cap)
        snprintf(why + used, cap - used, "%sno way left", used ? "; " : "");
    return NAT_PATH_NONE;
}

/* ---- which address ------------------------------------------------------------------ */

bool nat_addr_on_link(const struct wire_addr *a, const struct nat_subnet *nets, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct nat_subnet *s = &nets[i];
        if (s->addr.family != a->family)
            continue;
        unsigned bits = a->family == WIRE_ADDR_IPV4 ? 32 : 128;
        unsigned len = s->prefix_len < bits ? s->prefix_len : bits;
        unsigned whole = len / 8, rest = len % 8;
        if (memcmp(a->ip, s->addr.ip, whole) != 0)
            continue;
        if (rest != 0) {
            uint8_t mask = (uint8_t)(0xFF << (8 - rest));
            if ((a->ip[whole] & mask) != (s->addr.ip[whole] & mask))
                continue;
        }
        return true;
    }
    return false;
}

void nat_addr_describe(const struct wire_addr *a, uint8_t source_reach, char *out, size_t cap)
{
    char where[64];
    wire_addr_format(a, where, sizeof(where));
    const char *kind = wire_addr_is_local(a)              ? "LAN"
                       : source_reach == MSG_REACH_MAPPED ? "mapped"
                                                          : "public";
    snprintf(out, cap, "%s %s, %s", kind, where, a->family == WIRE_ADDR_IPV4 ? "IPv4" : "IPv6");
}
