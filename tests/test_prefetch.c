/* Prefetch rules of the expert cache, on a real file with real reads:
 *  - demand reads go ahead of queued prefetches (priority order);
 *  - prefetched experts that turn out unused are evicted before proven ones;
 *  - a prefetch of an expert already loading starts no second read, and a
 *    prefetch of an expert that was just evicted reloads the right bytes;
 *  - a prefetch that finds no room is abandoned (dropped) and never blocks;
 *  - a demand that catches a queued prefetch promotes it (a late hit). */
#include "cache/policy.h"
#include "helpers/cache_fixture.h"
#include "io/io.h"
#include "mp_test.h"

#include <stdio.h>

static mp_fixture fx;

static void demand(mp_cache *c, uint32_t l, uint32_t e)
{
    mp_expert_ptrs p;
    mp_err err = {0};
    int rc = mp_cache_acquire(c, l, e, &p, &err);
    CHECKF(rc == MP_OK, "acquire %u/%u: %s", l, e, err.msg);
    if (rc == MP_OK) {
        CHECKF(mp_fixture_check(&fx, l, e, &p), "layer %u expert %u: wrong bytes", l, e);
        mp_cache_release(c, l, e);
    }
}

/* Depth 1 and slow reads: prefetches A (in flight), B, C (queued), then a
 * demand D. D must be read before B and C. */
static void test_priority(mp_io_kind kind)
{
    mp_err err = {0};
    mp_cache *c = mp_fixture_cache(&fx, kind, 1, 8, NULL, "delay=1,delay_us=20000", &err);
    CHECKF(c != NULL, "%s", err.msg);
    if (!c) return;
    CHECK(mp_cache_request(c, 0, 0, MP_CACHE_PREFETCH, &err) == MP_OK);
    CHECK(mp_cache_request(c, 0, 1, MP_CACHE_PREFETCH, &err) == MP_OK);
    CHECK(mp_cache_request(c, 0, 2, MP_CACHE_PREFETCH, &err) == MP_OK);
    CHECK(mp_cache_request(c, 0, 3, MP_CACHE_DEMAND, &err) == MP_OK);
    mp_cache_ready r;
    CHECK(mp_cache_wait_any(c, &r, &err) == 1 && r.expert == 3);
    /* expert 0 was already in flight; 1 and 2 waited behind the demand */
    CHECKF(!mp_cache_contains(c, 0, 2), "a queued prefetch was read before the demand");
    mp_cache_release(c, 0, 3);
    mp_cache_free(c);
}

/* Prefetch insertion rule (both policies): a prefetched slot is protected
 * for n_slots events, so a prediction for the next layer survives until it
 * is used; after that, if still unused, it is evicted before any expert that
 * was demanded. 3 slots: A and B demanded, P prefetched. */
static void test_unused_prefetch_goes_first(mp_io_kind kind, const mp_policy_ops *pol)
{
    mp_err err = {0};
    mp_cache_ready r;
    for (int expire = 0; expire < 2; expire++) {
        mp_cache *c = mp_fixture_cache(&fx, kind, 4, 3, pol, NULL, &err);
        CHECKF(c != NULL, "%s", err.msg);
        if (!c) return;
        demand(c, 1, 0);                                                     /* A */
        CHECK(mp_cache_request(c, 1, 7, MP_CACHE_PREFETCH, &err) == MP_OK); /* P */
        for (int spin = 0; spin < 2000000 && !mp_cache_contains(c, 1, 7); spin++) (void)mp_cache_poll(c, &r, &err);
        CHECKF(mp_cache_contains(c, 1, 7), "a prefetch never became ready through mp_cache_poll");
        demand(c, 1, 1); /* B */
        if (expire)
            for (int i = 0; i < 4; i++) demand(c, 1, (uint32_t)(i & 1)); /* A, B, A, B: P's grace runs out */
        demand(c, 1, 2); /* C needs a victim */
        if (expire) {
            CHECKF(!mp_cache_contains(c, 1, 7), "policy %s kept an unused prefetch over proven experts", pol->name);
            CHECK(mp_cache_contains(c, 1, 0) && mp_cache_contains(c, 1, 1) && mp_cache_contains(c, 1, 2));
        } else {
            CHECKF(mp_cache_contains(c, 1, 7), "policy %s evicted a fresh prefetch before it could be used", pol->name);
        }
        mp_cache_free(c);
    }
}

static void test_prefetch_loading_and_evicted(mp_io_kind kind)
{
    mp_err err = {0};
    mp_cache *c = mp_fixture_cache(&fx, kind, 4, 2, NULL, "delay=1,delay_us=5000", &err);
    CHECKF(c != NULL, "%s", err.msg);
    if (!c) return;
    mp_cache_stats st;
    CHECK(mp_cache_request(c, 2, 4, MP_CACHE_PREFETCH, &err) == MP_OK);
    mp_cache_get_stats(c, &st, NULL, false);
    const uint64_t loads = st.loads;
    CHECK(mp_cache_request(c, 2, 4, MP_CACHE_PREFETCH, &err) == MP_OK); /* still loading */
    mp_cache_get_stats(c, &st, NULL, false);
    CHECKF(st.loads == loads, "a second prefetch of a loading expert started another load");
    demand(c, 2, 4); /* late hit: promoted, not re-read */
    mp_cache_get_stats(c, &st, NULL, false);
    CHECK(st.loads == loads && st.misses == 0);
    /* evict 2/4 by demanding two others, then prefetch it again: reloads */
    demand(c, 2, 5);
    demand(c, 2, 6);
    CHECK(!mp_cache_contains(c, 2, 4));
    CHECK(mp_cache_request(c, 2, 4, MP_CACHE_PREFETCH, &err) == MP_OK);
    demand(c, 2, 4); /* bytes checked inside */
    /* no room at all: both slots pinned -> the prefetch is dropped at once */
    mp_expert_ptrs p1, p2;
    CHECK(mp_cache_acquire(c, 3, 0, &p1, &err) == MP_OK);
    CHECK(mp_cache_acquire(c, 3, 1, &p2, &err) == MP_OK);
    CHECK(mp_cache_request(c, 3, 2, MP_CACHE_PREFETCH, &err) == MP_E_AGAIN);
    mp_cache_release(c, 3, 0);
    mp_cache_release(c, 3, 1);
    mp_cache_free(c);
}

int main(void)
{
    if (mp_fixture_make(&fx, mp_test_build_dir(), "test_prefetch.bin", 4, 8) != 0) {
        fprintf(stderr, "cannot write the fixture file\n");
        return 1;
    }
    mp_io_kind kinds[2] = {MP_IO_URING, MP_IO_PREAD};
    bool have_uring = true;
    for (int k = 0; k < 2; k++) {
        mp_io *io = NULL;
        if (kinds[k] == MP_IO_URING && mp_io_open(MP_IO_URING, fx.path, NULL, &io, NULL, 0, NULL) != MP_OK) {
            have_uring = false;
            continue;
        }
        mp_io_free(io);
        test_priority(kinds[k]);
        for (const mp_policy_ops *const *p = mp_policy_list(); *p; p++) test_unused_prefetch_goes_first(kinds[k], *p);
        test_prefetch_loading_and_evicted(kinds[k]);
    }
    mp_fixture_free(&fx);
    if (mp_test_failures) MP_TEST_DONE();
    if (!have_uring) MP_TEST_SKIP("io_uring is unavailable here (the pread paths passed)");
    MP_TEST_DONE();
}
