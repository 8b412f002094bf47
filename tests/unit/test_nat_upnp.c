/* test_nat_upnp.c - the port-mapping decisions (nat/nat_map_fsm.h) with a
 * fake clock and made-up router answers: discovery and its backoff, map at
 * once, 718 -> other ports, 725 -> permanent lease, renew at half the lease,
 * checks that find the mapping gone or a new external address, a gateway
 * that stops answering, refresh, NAT-PMP epochs. And the worker thread that
 * runs the router calls (nat/nat_worker.h): jobs handed over and results
 * taken back as nat_upnp.c does on the loop, then stopped, with jobs that
 * never reach a router. */
/* tsan: yes (the worker thread's handoff, under ThreadSanitizer) */
#include "cunit_main.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "nat_map_fsm.h"
/* nat_worker.h is private to nat/ (it #errors elsewhere); this test is the
 * one outsider allowed in, to drive the thread directly. */
#define SOVA_NAT_INTERNAL
#include "nat_worker.h"

#include <poll.h>

#define PORT 7071
#define GW   "http://10.1.0.1:5000/ctl/IPConn"

static struct nat_map_fsm *fsm_with(uint32_t lease_s, uint32_t check_s)
{
    struct nat_map_fsm_params p = {
        .internal_port = PORT, .lease_s = lease_s, .check_interval_s = check_s, .seed = 42};
    struct nat_map_fsm *f = NULL;
    CU_ASSERT_FATAL(nat_map_fsm_new(&p, &f) == 0);
    return f;
}

static struct nat_upnp_status status_of(const struct nat_map_fsm *f)
{
    struct nat_upnp_status st;
    nat_map_fsm_status(f, &st);
    return st;
}

/* The job due at now; fails the test if it is not of kind. */
static struct nat_job expect_job(struct nat_map_fsm *f, uint64_t now, enum nat_job_kind kind)
{
    struct nat_job job;
    bool due = nat_map_fsm_next_job(f, now, &job);
    CU_ASSERT(due);
    if (!due || job.kind != kind)
        fprintf(stderr, "\nexpected a %s job at %llu, got %s (phase %s)\n", nat_job_kind_str(kind),
                (unsigned long long)now, due ? nat_job_kind_str(job.kind) : "nothing",
                nat_fsm_phase_str(nat_map_fsm_phase(f)));
    CU_ASSERT_EQUAL(job.kind, kind);
    return job;
}

static void expect_nothing(struct nat_map_fsm *f, uint64_t now)
{
    struct nat_job job;
    CU_ASSERT_FALSE(nat_map_fsm_next_job(f, now, &job));
}

static struct nat_job_result result(enum nat_job_kind kind, enum nat_outcome out)
{
    struct nat_job_result r;
    memset(&r, 0, sizeof(r));
    r.kind = kind;
    r.outcome = out;
    return r;
}

static struct nat_job_result igd_found(const char *external_ip)
{
    struct nat_job_result r = result(NAT_JOB_DISCOVER, NAT_OUT_OK);
    r.method = NAT_METHOD_UPNP;
    snprintf(r.gateway, sizeof(r.gateway), "%s", GW);
    snprintf(r.lan_addr, sizeof(r.lan_addr), "10.1.0.10");
    snprintf(r.external_ip, sizeof(r.external_ip), "%s", external_ip);
    return r;
}

static struct nat_job_result map_ok(const struct nat_job *job, const char *external_ip)
{
    struct nat_job_result r = result(NAT_JOB_MAP, NAT_OUT_OK);
    r.external_port = job->external_port;
    r.lease_s = job->lease_s;
    snprintf(r.external_ip, sizeof(r.external_ip), "%s", external_ip);
    return r;
}

static struct nat_job_result refused(enum nat_job_kind kind, int code, const char *text)
{
    struct nat_job_result r = result(kind, NAT_OUT_REFUSED);
    r.code = code;
    snprintf(r.error, sizeof(r.error), "%s", text);
    return r;
}

/* start at t, find the IGD, map: returns the fsm MAPPED at t. */
static struct nat_map_fsm *mapped_fsm(uint32_t lease_s, uint32_t check_s, uint64_t t)
{
    struct nat_map_fsm *f = fsm_with(lease_s, check_s);
    nat_map_fsm_start(f, t);
    expect_job(f, t, NAT_JOB_DISCOVER);
    struct nat_job_result r = igd_found("20.0.0.1");
    nat_map_fsm_on_result(f, t, &r);
    struct nat_job job = expect_job(f, t, NAT_JOB_MAP);
    r = map_ok(&job, "20.0.0.1");
    nat_map_fsm_on_result(f, t, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_MAPPED);
    return f;
}

/* ---- tests --------------------------------------------------------------- */

static void test_discover_then_map_same_port_with_lease(void)
{
    struct nat_map_fsm *f = fsm_with(0, 0); /* defaults: 3600 s, 60 s */
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_OFF);
    expect_nothing(f, 0);
    nat_map_fsm_start(f, 1000);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_DISCOVERING);
    struct nat_job job = expect_job(f, 1000, NAT_JOB_DISCOVER);
    CU_ASSERT_EQUAL(job.discover_ms, NAT_UPNP_DEFAULT_DISCOVER_MS);
    expect_nothing(f, 1000); /* one job at a time */
    CU_ASSERT_EQUAL(nat_map_fsm_wake_ms(f), UINT64_MAX);

    struct nat_job_result r = igd_found("20.0.0.1");
    nat_map_fsm_on_result(f, 2000, &r);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_MAPPING);
    CU_ASSERT_STRING_EQUAL(st.method, "upnp");
    CU_ASSERT_STRING_EQUAL(st.gateway, GW);
    CU_ASSERT_STRING_EQUAL(st.external_ip, "20.0.0.1");

    job = expect_job(f, 2000, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(job.method, NAT_METHOD_UPNP);
    CU_ASSERT_EQUAL(job.internal_port, PORT);
    CU_ASSERT_EQUAL(job.external_port, PORT); /* external = internal first */
    CU_ASSERT_EQUAL(job.lease_s, NAT_UPNP_DEFAULT_LEASE_S);
    r = map_ok(&job, "20.0.0.1");
    nat_map_fsm_on_result(f, 2010, &r);
    st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_MAPPED);
    CU_ASSERT_EQUAL(st.external_port, PORT);
    CU_ASSERT_EQUAL(st.lease_s, 3600);
    CU_ASSERT_EQUAL(st.mapped_since_ms, 2010);
    CU_ASSERT_EQUAL(st.error_code, 0);
    CU_ASSERT_STRING_EQUAL(st.error, "");
    CU_ASSERT_EQUAL(st.remaps, 0);
    /* The next thing is the check, 60 s later. */
    CU_ASSERT_EQUAL(nat_map_fsm_wake_ms(f), 2010 + 60000);
    nat_map_fsm_free(f);
}

static void test_no_gateway_backs_off(void)
{
    struct nat_map_fsm *f = fsm_with(0, 0);
    nat_map_fsm_start(f, 0);
    uint64_t t = 0, expected_delay = NAT_MAP_RETRY_BASE_MS;
    for (int i = 0; i < 12; i++) {
        expect_job(f, t, NAT_JOB_DISCOVER);
        struct nat_job_result r = result(NAT_JOB_DISCOVER, NAT_OUT_NONE);
        snprintf(r.error, sizeof(r.error), "UPnP: no IGD answered within 1000 ms");
        t += 1000; /* discovery took 1 s */
        nat_map_fsm_on_result(f, t, &r);
        struct nat_upnp_status st = status_of(f);
        CU_ASSERT_EQUAL(st.state, NAT_MAP_NO_GATEWAY);
        CU_ASSERT_STRING_EQUAL(st.error, "UPnP: no IGD answered within 1000 ms");
        CU_ASSERT_PTR_NULL(st.method);
        CU_ASSERT_EQUAL(nat_map_fsm_wake_ms(f), t + expected_delay);
        expect_nothing(f, t + expected_delay - 1);
        t += expected_delay;
        expected_delay *= 2;
        if (expected_delay > NAT_MAP_RETRY_MAX_MS)
            expected_delay = NAT_MAP_RETRY_MAX_MS;
    }
    /* While retrying, the state stays NO_GATEWAY (no flapping). */
    expect_job(f, t, NAT_JOB_DISCOVER);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_NO_GATEWAY);
    /* A gateway at last: mapping, and the backoff is forgotten. */
    struct nat_job_result r = igd_found("20.0.0.1");
    nat_map_fsm_on_result(f, t, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_MAPPING);
    nat_map_fsm_free(f);
}

static void test_private_external_address_is_no_gateway(void)
{
    struct nat_map_fsm *f = fsm_with(0, 0);
    nat_map_fsm_start(f, 0);
    expect_job(f, 0, NAT_JOB_DISCOVER);
    struct nat_job_result r = igd_found("10.1.0.2"); /* an IGD behind another NAT */
    nat_map_fsm_on_result(f, 1000, &r);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_NO_GATEWAY);
    CU_ASSERT_STRING_EQUAL(st.external_ip, "10.1.0.2");
    CU_ASSERT_PTR_NOT_NULL(strstr(st.error, "not public"));
    expect_nothing(f, 1000);
    expect_job(f, 1000 + NAT_MAP_RETRY_BASE_MS, NAT_JOB_DISCOVER);
    nat_map_fsm_free(f);
}

static void test_conflict_718_tries_other_ports_then_fails(void)
{
    struct nat_map_fsm *f = fsm_with(0, 0);
    nat_map_fsm_start(f, 0);
    expect_job(f, 0, NAT_JOB_DISCOVER);
    struct nat_job_result r = igd_found("20.0.0.1");
    nat_map_fsm_on_result(f, 0, &r);
    uint16_t seen[NAT_MAP_PORT_TRIES];
    for (unsigned i = 0; i < NAT_MAP_PORT_TRIES; i++) {
        struct nat_job job = expect_job(f, 0, NAT_JOB_MAP);
        seen[i] = job.external_port;
        CU_ASSERT(job.external_port >= NAT_MAP_RANDOM_PORT_MIN);
        for (unsigned j = 0; j < i; j++)
            CU_ASSERT_NOT_EQUAL(seen[j], job.external_port);
        CU_ASSERT_EQUAL(status_of(f).external_port, job.external_port);
        r = refused(NAT_JOB_MAP, 718, "AddPortMapping: 718 ConflictInMappingEntry");
        nat_map_fsm_on_result(f, 0, &r);
    }
    CU_ASSERT_EQUAL(seen[0], PORT);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_FAILED);
    CU_ASSERT_EQUAL(st.error_code, 718);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.error, "AddPortMapping: 718 ConflictInMappingEntry"));
    CU_ASSERT_EQUAL(st.external_port, 0);
    /* Retry later, from discovery. */
    CU_ASSERT_EQUAL(nat_map_fsm_wake_ms(f), NAT_MAP_FAIL_RETRY_BASE_MS);
    expect_job(f, NAT_MAP_FAIL_RETRY_BASE_MS, NAT_JOB_DISCOVER);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_FAILED);
    nat_map_fsm_free(f);
}

static void test_conflict_then_success_on_a_random_port(void)
{
    struct nat_map_fsm *f = fsm_with(0, 0);
    nat_map_fsm_start(f, 0);
    expect_job(f, 0, NAT_JOB_DISCOVER);
    struct nat_job_result r = igd_found("20.0.0.1");
    nat_map_fsm_on_result(f, 0, &r);
    expect_job(f, 0, NAT_JOB_MAP);
    r = refused(NAT_JOB_MAP, 718, "AddPortMapping: 718 ConflictInMappingEntry");
    nat_map_fsm_on_result(f, 0, &r);
    struct nat_job job = expect_job(f, 0, NAT_JOB_MAP);
    CU_ASSERT_NOT_EQUAL(job.external_port, PORT);
    r = map_ok(&job, "20.0.0.1");
    nat_map_fsm_on_result(f, 5, &r);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_MAPPED);
    CU_ASSERT_EQUAL(st.external_port, job.external_port);
    CU_ASSERT_EQUAL(st.error_code, 0);
    /* A refresh asks for the port we hold first. */
    nat_map_fsm_refresh(f, 10);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_DISCOVERING);
    expect_job(f, 10, NAT_JOB_DISCOVER);
    r = igd_found("20.0.0.1");
    nat_map_fsm_on_result(f, 10, &r);
    struct nat_job again = expect_job(f, 10, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(again.external_port, job.external_port);
    CU_ASSERT_EQUAL(status_of(f).remaps, 0);
    r = map_ok(&again, "20.0.0.1");
    nat_map_fsm_on_result(f, 12, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_MAPPED);
    CU_ASSERT_EQUAL(status_of(f).remaps, 1); /* the refresh's mapping replaced the one held */
    nat_map_fsm_free(f);
}

static void test_725_falls_back_to_a_permanent_lease(void)
{
    struct nat_map_fsm *f = fsm_with(600, 60);
    nat_map_fsm_start(f, 0);
    expect_job(f, 0, NAT_JOB_DISCOVER);
    struct nat_job_result r = igd_found("20.0.0.1");
    nat_map_fsm_on_result(f, 0, &r);
    struct nat_job job = expect_job(f, 0, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(job.lease_s, 600);
    r = refused(NAT_JOB_MAP, 725, "AddPortMapping: 725 OnlyPermanentLeasesSupported");
    nat_map_fsm_on_result(f, 0, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_MAPPING);
    CU_ASSERT_EQUAL(status_of(f).error_code, 725);
    job = expect_job(f, 0, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(job.lease_s, 0);
    CU_ASSERT_EQUAL(job.external_port, PORT); /* the same port, only the lease changes */
    r = map_ok(&job, "20.0.0.1");
    nat_map_fsm_on_result(f, 0, &r);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_MAPPED);
    CU_ASSERT_EQUAL(st.lease_s, 0);
    CU_ASSERT_EQUAL(st.error_code, 0);
    /* Permanent: no renewal, only checks. */
    uint64_t t = 0;
    for (int i = 0; i < 3; i++) {
        t += 60000;
        expect_nothing(f, t - 1);
        expect_job(f, t, NAT_JOB_CHECK);
        r = result(NAT_JOB_CHECK, NAT_OUT_OK);
        snprintf(r.external_ip, sizeof(r.external_ip), "20.0.0.1");
        nat_map_fsm_on_result(f, t, &r);
    }
    /* The router forgets it: mapped again, still permanent. */
    t += 60000;
    expect_job(f, t, NAT_JOB_CHECK);
    r = refused(NAT_JOB_CHECK, 714, "GetSpecificPortMappingEntry: 714 NoSuchEntryInArray");
    r.outcome = NAT_OUT_NONE;
    nat_map_fsm_on_result(f, t, &r);
    job = expect_job(f, t, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(job.lease_s, 0);
    nat_map_fsm_free(f);
}

static void test_renew_at_half_lease(void)
{
    struct nat_map_fsm *f = mapped_fsm(100, 3600, 0); /* check later than renew */
    CU_ASSERT_EQUAL(nat_map_fsm_wake_ms(f), 50000);
    expect_nothing(f, 49999);
    struct nat_job job = expect_job(f, 50000, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(job.external_port, PORT);
    CU_ASSERT_EQUAL(job.lease_s, 100);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_MAPPED); /* renewing is not news */
    struct nat_job_result r = map_ok(&job, "20.0.0.1");
    nat_map_fsm_on_result(f, 50000, &r);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_MAPPED);
    CU_ASSERT_EQUAL(st.mapped_since_ms, 1); /* unchanged by the renewal (0 is shown as 1) */
    CU_ASSERT_EQUAL(st.remaps, 0);
    CU_ASSERT_EQUAL(nat_map_fsm_wake_ms(f), 100000);
    nat_map_fsm_free(f);
}

static void test_check_finds_mapping_gone_and_maps_again(void)
{
    struct nat_map_fsm *f = mapped_fsm(3600, 2, 0);
    expect_nothing(f, 1999);
    struct nat_job job = expect_job(f, 2000, NAT_JOB_CHECK);
    CU_ASSERT_EQUAL(job.external_port, PORT);
    struct nat_job_result r = result(NAT_JOB_CHECK, NAT_OUT_NONE);
    r.code = 714;
    snprintf(r.error, sizeof(r.error), "GetSpecificPortMappingEntry: 714 NoSuchEntryInArray");
    nat_map_fsm_on_result(f, 2000, &r);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_MAPPING);
    CU_ASSERT_EQUAL(st.error_code, 714);
    job = expect_job(f, 2000, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(job.external_port, PORT);
    r = map_ok(&job, "20.0.0.1");
    nat_map_fsm_on_result(f, 2010, &r);
    st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_MAPPED);
    CU_ASSERT_EQUAL(st.remaps, 1);
    CU_ASSERT_EQUAL(st.mapped_since_ms, 2010);
    CU_ASSERT_EQUAL(st.error_code, 0);
    nat_map_fsm_free(f);
}

static void test_check_finds_new_external_address(void)
{
    struct nat_map_fsm *f = mapped_fsm(3600, 2, 0);
    expect_job(f, 2000, NAT_JOB_CHECK);
    struct nat_job_result r = result(NAT_JOB_CHECK, NAT_OUT_OK);
    snprintf(r.external_ip, sizeof(r.external_ip), "20.0.5.5");
    nat_map_fsm_on_result(f, 2000, &r);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_MAPPING);
    CU_ASSERT_STRING_EQUAL(st.external_ip, "20.0.5.5");
    struct nat_job job = expect_job(f, 2000, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(job.external_port, PORT);
    r = map_ok(&job, "20.0.5.5");
    nat_map_fsm_on_result(f, 2000, &r);
    st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_MAPPED);
    CU_ASSERT_STRING_EQUAL(st.external_ip, "20.0.5.5");
    CU_ASSERT_EQUAL(st.remaps, 1);
    /* The same address again is no news. */
    expect_job(f, 4000, NAT_JOB_CHECK);
    r = result(NAT_JOB_CHECK, NAT_OUT_OK);
    snprintf(r.external_ip, sizeof(r.external_ip), "20.0.5.5");
    nat_map_fsm_on_result(f, 4000, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_MAPPED);
    CU_ASSERT_EQUAL(status_of(f).remaps, 1);
    nat_map_fsm_free(f);
}

static void test_gateway_gone_rediscovers_now_then_backs_off(void)
{
    struct nat_map_fsm *f = mapped_fsm(3600, 2, 0);
    expect_job(f, 2000, NAT_JOB_CHECK);
    struct nat_job_result r = result(NAT_JOB_CHECK, NAT_OUT_UNREACHABLE);
    r.code = -3;
    snprintf(r.error, sizeof(r.error), "GetSpecificPortMappingEntry: -3 Miniupnpc HTTP error");
    nat_map_fsm_on_result(f, 5000, &r);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_DISCOVERING);
    CU_ASSERT_EQUAL(st.mapped_since_ms, 0);
    CU_ASSERT_EQUAL(st.error_code, -3);
    CU_ASSERT_STRING_EQUAL(st.gateway, "");
    expect_job(f, 5000, NAT_JOB_DISCOVER); /* at once */
    r = result(NAT_JOB_DISCOVER, NAT_OUT_NONE);
    nat_map_fsm_on_result(f, 6000, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_NO_GATEWAY);
    /* second failure in a row: 2 s */
    CU_ASSERT_EQUAL(nat_map_fsm_wake_ms(f), 6000 + 2 * NAT_MAP_RETRY_BASE_MS);
    expect_job(f, 8000, NAT_JOB_DISCOVER);
    r = igd_found("20.0.0.1");
    nat_map_fsm_on_result(f, 9000, &r);
    struct nat_job job = expect_job(f, 9000, NAT_JOB_MAP);
    r = map_ok(&job, "20.0.0.1");
    nat_map_fsm_on_result(f, 9000, &r);
    st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_MAPPED);
    CU_ASSERT_EQUAL(st.remaps, 1); /* lost and mapped again */
    nat_map_fsm_free(f);
}

static void test_renew_conflict_means_the_router_forgot_us(void)
{
    struct nat_map_fsm *f = mapped_fsm(100, 3600, 0);
    expect_job(f, 50000, NAT_JOB_MAP);
    struct nat_job_result r =
        refused(NAT_JOB_MAP, 718, "AddPortMapping: 718 ConflictInMappingEntry");
    nat_map_fsm_on_result(f, 50000, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_MAPPING);
    struct nat_job job = expect_job(f, 50000, NAT_JOB_MAP);
    CU_ASSERT_NOT_EQUAL(job.external_port, PORT); /* someone else has it now */
    r = map_ok(&job, "20.0.0.1");
    nat_map_fsm_on_result(f, 50000, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_MAPPED);
    CU_ASSERT_EQUAL(status_of(f).remaps, 1);
    nat_map_fsm_free(f);
}

static void test_refused_mapping_fails_with_router_code(void)
{
    struct nat_map_fsm *f = fsm_with(0, 0);
    nat_map_fsm_start(f, 0);
    expect_job(f, 0, NAT_JOB_DISCOVER);
    struct nat_job_result r = igd_found("20.0.0.1");
    nat_map_fsm_on_result(f, 0, &r);
    expect_job(f, 0, NAT_JOB_MAP);
    r = refused(NAT_JOB_MAP, 606, "AddPortMapping: 606 Action not authorized");
    nat_map_fsm_on_result(f, 0, &r);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_FAILED);
    CU_ASSERT_EQUAL(st.error_code, 606);
    CU_ASSERT_STRING_EQUAL(st.error, "AddPortMapping: 606 Action not authorized");
    /* Second failure in a row waits twice as long. */
    expect_job(f, NAT_MAP_FAIL_RETRY_BASE_MS, NAT_JOB_DISCOVER);
    r = igd_found("20.0.0.1");
    nat_map_fsm_on_result(f, NAT_MAP_FAIL_RETRY_BASE_MS, &r);
    expect_job(f, NAT_MAP_FAIL_RETRY_BASE_MS, NAT_JOB_MAP);
    r = refused(NAT_JOB_MAP, 606, "AddPortMapping: 606 Action not authorized");
    nat_map_fsm_on_result(f, NAT_MAP_FAIL_RETRY_BASE_MS, &r);
    CU_ASSERT_EQUAL(nat_map_fsm_wake_ms(f), 3 * NAT_MAP_FAIL_RETRY_BASE_MS);
    nat_map_fsm_free(f);
}

static void test_check_refused_falls_back_to_renewing(void)
{
    struct nat_map_fsm *f = mapped_fsm(3600, 2, 0);
    expect_job(f, 2000, NAT_JOB_CHECK);
    struct nat_job_result r =
        refused(NAT_JOB_CHECK, 401, "GetSpecificPortMappingEntry: 401 Invalid Action");
    nat_map_fsm_on_result(f, 2000, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_MAPPED);
    struct nat_job job = expect_job(f, 2000, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(job.external_port, PORT);
    nat_map_fsm_free(f);
}

static void test_refresh_while_a_job_runs_waits_for_it(void)
{
    struct nat_map_fsm *f = mapped_fsm(3600, 2, 0);
    expect_job(f, 2000, NAT_JOB_CHECK);
    nat_map_fsm_refresh(f, 2001); /* the check is still out */
    expect_nothing(f, 2001);
    struct nat_job_result r = result(NAT_JOB_CHECK, NAT_OUT_OK);
    snprintf(r.external_ip, sizeof(r.external_ip), "20.0.0.1");
    nat_map_fsm_on_result(f, 2002, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_DISCOVERING);
    expect_job(f, 2002, NAT_JOB_DISCOVER);
    /* A stale result of another kind is ignored. */
    r = result(NAT_JOB_MAP, NAT_OUT_OK);
    nat_map_fsm_on_result(f, 2003, &r);
    CU_ASSERT_EQUAL(nat_map_fsm_phase(f), NAT_FSM_DISCOVERING);
    nat_map_fsm_free(f);
}

static void test_stop_and_start_again(void)
{
    struct nat_map_fsm *f = mapped_fsm(3600, 60, 0);
    nat_map_fsm_stop(f, 0, NULL);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.state, NAT_MAP_OFF);
    CU_ASSERT_EQUAL(st.external_port, 0);
    CU_ASSERT_EQUAL(st.mapped_since_ms, 0);
    CU_ASSERT_EQUAL(nat_map_fsm_wake_ms(f), UINT64_MAX);
    expect_nothing(f, 1000000);
    struct nat_job_result r = result(NAT_JOB_CHECK, NAT_OUT_OK);
    nat_map_fsm_on_result(f, 1000, &r); /* late result: ignored */
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_OFF);
    nat_map_fsm_stop(f, -3, "DeletePortMapping: -3 Miniupnpc HTTP error");
    CU_ASSERT_EQUAL(status_of(f).error_code, -3);
    nat_map_fsm_start(f, 5000);
    expect_job(f, 5000, NAT_JOB_DISCOVER);
    CU_ASSERT_EQUAL(status_of(f).error_code, 0);
    nat_map_fsm_free(f);
}

static void test_natpmp_epoch_reset_means_remap(void)
{
    struct nat_map_fsm *f = fsm_with(120, 20);
    nat_map_fsm_start(f, 0);
    expect_job(f, 0, NAT_JOB_DISCOVER);
    struct nat_job_result r = result(NAT_JOB_DISCOVER, NAT_OUT_OK);
    r.method = NAT_METHOD_NATPMP;
    snprintf(r.gateway, sizeof(r.gateway), "10.1.0.1");
    snprintf(r.external_ip, sizeof(r.external_ip), "20.0.0.1");
    r.have_epoch = true;
    r.epoch = 1000;
    nat_map_fsm_on_result(f, 0, &r);
    struct nat_job job = expect_job(f, 0, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(job.method, NAT_METHOD_NATPMP);
    r = map_ok(&job, "20.0.0.1");
    r.external_port = 40000; /* NAT-PMP may grant another port */
    r.lease_s = 60;          /* and a shorter lease */
    r.have_epoch = true;
    r.epoch = 1000;
    nat_map_fsm_on_result(f, 0, &r);
    struct nat_upnp_status st = status_of(f);
    CU_ASSERT_EQUAL(st.external_port, 40000);
    CU_ASSERT_EQUAL(st.lease_s, 60);
    CU_ASSERT_STRING_EQUAL(st.method, "natpmp");
    /* A check (every 20 s) with a sane epoch is no news. */
    CU_ASSERT_EQUAL(nat_map_fsm_wake_ms(f), 20000);
    job = expect_job(f, 20000, NAT_JOB_CHECK);
    CU_ASSERT_EQUAL(job.method, NAT_METHOD_NATPMP);
    r = result(NAT_JOB_CHECK, NAT_OUT_OK);
    snprintf(r.external_ip, sizeof(r.external_ip), "20.0.0.1");
    r.have_epoch = true;
    r.epoch = 1020;
    nat_map_fsm_on_result(f, 20000, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_MAPPED);
    /* Renew at half the granted lease, for the granted port. */
    CU_ASSERT_EQUAL(nat_map_fsm_wake_ms(f), 30000);
    job = expect_job(f, 30000, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(job.external_port, 40000);
    r = map_ok(&job, "20.0.0.1");
    r.lease_s = 60;
    r.have_epoch = true;
    r.epoch = 1030;
    nat_map_fsm_on_result(f, 30000, &r);
    CU_ASSERT_EQUAL(status_of(f).remaps, 0);
    /* A check whose epoch went back: the gateway rebooted, map again. */
    expect_job(f, 50000, NAT_JOB_CHECK);
    r = result(NAT_JOB_CHECK, NAT_OUT_OK);
    snprintf(r.external_ip, sizeof(r.external_ip), "20.0.0.1");
    r.have_epoch = true;
    r.epoch = 5;
    nat_map_fsm_on_result(f, 50000, &r);
    CU_ASSERT_EQUAL(status_of(f).state, NAT_MAP_MAPPING);
    CU_ASSERT_PTR_NOT_NULL(strstr(status_of(f).error, "restarted"));
    job = expect_job(f, 50000, NAT_JOB_MAP);
    CU_ASSERT_EQUAL(job.external_port, 40000);
    r = map_ok(&job, "20.0.0.1");
    r.lease_s = 60;
    nat_map_fsm_on_result(f, 50000, &r);
    CU_ASSERT_EQUAL(status_of(f).remaps, 1);
    nat_map_fsm_free(f);
}

static void test_helpers(void)
{
    CU_ASSERT_EQUAL(nat_backoff_ms(0, 1000, 300000), 0);
    CU_ASSERT_EQUAL(nat_backoff_ms(1, 1000, 300000), 1000);
    CU_ASSERT_EQUAL(nat_backoff_ms(4, 1000, 300000), 8000);
    CU_ASSERT_EQUAL(nat_backoff_ms(10, 1000, 300000), 300000);
    CU_ASSERT_EQUAL(nat_backoff_ms(200, 1000, 300000), 300000);

    CU_ASSERT_TRUE(nat_addr_is_public("2001:db8:1::10")); /* global unicast 2000::/3 */
    CU_ASSERT_TRUE(nat_addr_is_public("20.0.0.1"));
    CU_ASSERT_FALSE(nat_addr_is_public("fe80::1"));
    CU_ASSERT_FALSE(nat_addr_is_public("fd00::1"));
    CU_ASSERT_FALSE(nat_addr_is_public("10.0.0.1"));
    CU_ASSERT_FALSE(nat_addr_is_public(""));
    CU_ASSERT_TRUE(nat_ipv4_is_public("20.0.0.1"));
    CU_ASSERT_TRUE(nat_ipv4_is_public("8.8.8.8"));
    CU_ASSERT_TRUE(nat_ipv4_is_public("100.128.0.1"));
    const char *not_public[] = {
        "",           "0.0.0.0",         "10.1.2.3",    "100.64.0.1", "127.0.0.1",    "169.254.1.1",
        "172.16.0.1", "172.31.255.255",  "192.168.1.1", "192.0.2.7",  "198.51.100.1", "203.0.113.9",
        "224.0.0.1",  "255.255.255.255", "1.2.3",       "::1",        "20.0.0.1x"};
    for (size_t i = 0; i < sizeof(not_public) / sizeof(not_public[0]); i++)
        CU_ASSERT_FALSE(nat_ipv4_is_public(not_public[i]));
    CU_ASSERT_FALSE(nat_ipv4_is_public(NULL));

    /* RFC 6886 3.6: 100 s later, an epoch 100 s on is fine, one that went
     * back or stood still is a reboot. */
    CU_ASSERT_FALSE(nat_pmp_epoch_lost(1000, 0, 1100, 100000));
    CU_ASSERT_FALSE(nat_pmp_epoch_lost(1000, 0, 1088, 100000)); /* slow gateway clock */
    CU_ASSERT_TRUE(nat_pmp_epoch_lost(1000, 0, 1000, 100000));
    CU_ASSERT_TRUE(nat_pmp_epoch_lost(1000, 0, 3, 100000));
    CU_ASSERT_FALSE(nat_pmp_epoch_lost(1000, 0, 999, 0)); /* within 2 s */

    struct nat_upnp_status a, b;
    memset(&a, 0, sizeof(a));
    b = a;
    CU_ASSERT_FALSE(nat_status_differs(&a, &b));
    b.method = "upnp";
    CU_ASSERT_TRUE(nat_status_differs(&a, &b));
    b = a;
    snprintf(b.external_ip, sizeof(b.external_ip), "20.0.0.2");
    CU_ASSERT_TRUE(nat_status_differs(&a, &b));
    b = a;
    b.remaps = 1;
    CU_ASSERT_TRUE(nat_status_differs(&a, &b));

    CU_ASSERT_STRING_EQUAL(nat_map_state_str(NAT_MAP_NO_GATEWAY), "no-gateway");
    CU_ASSERT_STRING_EQUAL(nat_map_state_str(NAT_MAP_MAPPED), "mapped");
    CU_ASSERT_PTR_NULL(nat_method_str(NAT_METHOD_NONE));

    struct nat_map_fsm_params p = {.internal_port = 0};
    struct nat_map_fsm *f = (struct nat_map_fsm *)&p;
    CU_ASSERT_EQUAL(nat_map_fsm_new(&p, &f), SOVA_ERR_INVALID);
    CU_ASSERT_PTR_NULL(f);
    nat_map_fsm_free(NULL);
}

/* ---- the worker thread ----------------------------------------------------- */

/* Wait (bounded) for the worker's result, as on_notify in nat_upnp.c does. */
static bool take_result(struct nat_worker *w, struct nat_job_result *r)
{
    for (int tries = 0; tries < 200; tries++) {
        struct pollfd pfd = {.fd = nat_worker_fd(w), .events = POLLIN};
        if (poll(&pfd, 1, 50) < 0)
            return false;
        if (nat_worker_take(w, r))
            return true;
    }
    return false;
}

static void test_worker_hands_jobs_over_and_stops(void)
{
    struct nat_worker *w = NULL;
    char err[160] = "";
    CU_ASSERT_EQUAL_FATAL(nat_worker_start("sova test", &w, err, sizeof(err)), 0);
    /* A job of no kind never reaches a router: the worker answers it refused. */
    struct nat_job job = {.kind = NAT_JOB_NONE, .internal_port = PORT};
    for (int i = 0; i < 100; i++) {
        CU_ASSERT_TRUE(nat_worker_post(w, &job));
        struct nat_job_result r;
        CU_ASSERT_TRUE_FATAL(take_result(w, &r));
        CU_ASSERT_EQUAL(r.kind, NAT_JOB_NONE);
        CU_ASSERT_EQUAL(r.outcome, NAT_OUT_REFUSED);
        CU_ASSERT_EQUAL(r.code, SOVA_ERR_INTERNAL);
    }
    /* One job at a time: a second post before the result is taken is refused. */
    CU_ASSERT_TRUE(nat_worker_post(w, &job));
    CU_ASSERT_FALSE(nat_worker_post(w, &job));
    /* Stopped with that job posted (running, or done and not taken): in time,
     * nothing held, nothing to delete. */
    bool holds = true;
    int code = -1;
    CU_ASSERT_TRUE(nat_worker_stop(w, 2000, &holds, &code, err, sizeof(err)));
    CU_ASSERT_FALSE(holds);
    CU_ASSERT_EQUAL(code, 0);
    CU_ASSERT_STRING_EQUAL(err, "");
}

static void test_worker_stops_at_once_when_idle(void)
{
    for (int i = 0; i < 20; i++) {
        struct nat_worker *w = NULL;
        char err[160];
        CU_ASSERT_EQUAL_FATAL(nat_worker_start(NULL, &w, err, sizeof(err)), 0);
        bool holds = true;
        int code = -1;
        CU_ASSERT_TRUE(nat_worker_stop(w, 2000, &holds, &code, err, sizeof(err)));
        CU_ASSERT_FALSE(holds);
    }
}

int test_register(void)
{
    CU_pSuite w = CU_add_suite("nat_worker", NULL, NULL);
    if (!w || !CU_add_test(w, "hands jobs over and stops", test_worker_hands_jobs_over_and_stops) ||
        !CU_add_test(w, "stops at once when idle", test_worker_stops_at_once_when_idle))
        return -1;
    CU_pSuite s = CU_add_suite("nat_map_fsm", NULL, NULL);
    if (!s)
        return -1;
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"discover then map the same port with a lease",
         test_discover_then_map_same_port_with_lease},
        {"no gateway backs off", test_no_gateway_backs_off},
        {"private external address is no gateway", test_private_external_address_is_no_gateway},
        {"718 tries other ports then fails", test_conflict_718_tries_other_ports_then_fails},
        {"718 then a random port; refresh keeps it", test_conflict_then_success_on_a_random_port},
        {"725 falls back to a permanent lease", test_725_falls_back_to_a_permanent_lease},
        {"renew at half the lease", test_renew_at_half_lease},
        {"check finds the mapping gone", test_check_finds_mapping_gone_and_maps_again},
        {"check finds a new external address", test_check_finds_new_external_address},
        {"gateway gone: rediscover now, then back off",
         test_gateway_gone_rediscovers_now_then_backs_off},
        {"renew conflict: the router forgot us", test_renew_conflict_means_the_router_forgot_us},
        {"refused mapping keeps the router's code", test_refused_mapping_fails_with_router_code},
        {"check refused: renew instead", test_check_refused_falls_back_to_renewing},
        {"refresh while a job runs", test_refresh_while_a_job_runs_waits_for_it},
        {"stop and start again", test_stop_and_start_again},
        {"NAT-PMP: granted port/lease, epoch reset", test_natpmp_epoch_reset_means_remap},
        {"helpers", test_helpers},
    };
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn))
            return -1;
    return 0;
}
