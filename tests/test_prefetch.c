/* Prefetch rules of the expert cache, on a real file with real reads:
 *  - demand reads go ahead of queued prefetches (priority order), and a
 *    prefetch read starts beside small demand reads in flight;
 *  - prefetched experts that turn out unused are evicted before proven ones,
 *    at once when their layer has run without them (mp_cache_layer_done);
 *  - a prefetch never evicts another prefetch still waiting for its layer,
 *    except that, with room from the layer's own experts first, a newer
 *    prediction of the same layer supersedes older ones (what they fetched
 *    and it does not name may go);
 *  - a prefetch takes the policy's victim, or with
 *    mp_cache_prefetch_own_layer_first one of its own layer's experts;
 *  - a prefetch of an expert already loading starts no second read, and a
 *    prefetch of an expert that was just evicted reloads the right bytes;
 *  - a prefetch that finds no room is abandoned (dropped) and never blocks;
 *  - a demand that catches a queued prefetch promotes it (a late hit). */
#include "cache/policy.h"
#include "common/sysinfo.h"
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

/* How long a test polls for a read to land before calling it lost: only a
 * hang comes near it (reads here take at most a second). */
#define POLL_LIMIT_S 30.0

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

/* Depth 8, so there is room in flight for everything: a prefetch requested
 * while a demand's reads are in flight starts beside them when they are
 * small (the fixture's experts are a few KiB: MP_IO_LOW_BESIDE; large ones
 * are test_low_beside_high's, in the io tests). The
 * demand's read takes 1 s, so that a loaded machine descheduling this thread
 * between the two requests cannot let it finish first (with 20 ms it did,
 * under a load average of 24). */
static void test_prefetch_waits_for_demand(mp_io_kind kind)
{
    mp_err err = {0};
    mp_cache *c = mp_fixture_cache(&fx, kind, 8, 8, NULL, "delay=1,delay_us=1000000", &err);
    CHECKF(c != NULL, "%s", err.msg);
    if (!c) return;
    mp_io_counters k0, k1, k2;
    mp_io_get_counters(mp_cache_io(c), &k0, false);
    CHECK(mp_cache_request(c, 0, 3, MP_CACHE_DEMAND, &err) == MP_OK);
    mp_io_get_counters(mp_cache_io(c), &k1, false);
    CHECKF(k1.reads > k0.reads, "the demand's reads did not start");
    CHECK(mp_cache_request(c, 0, 4, MP_CACHE_PREFETCH, &err) == MP_OK);
    mp_io_get_counters(mp_cache_io(c), &k2, false);
    CHECKF(k2.reads > k1.reads, "a prefetch waited behind a small demand read in flight (%llu reads, %llu before)",
           (unsigned long long)k2.reads, (unsigned long long)k1.reads);
    mp_cache_ready r;
    CHECK(mp_cache_wait_any(c, &r, &err) == 1 && r.expert == 3);
    mp_cache_release(c, 0, 3);
    /* with the demand done, the prefetch goes */
    for (double t0 = mp_time_s(); !mp_cache_contains(c, 0, 4) && mp_time_s() - t0 < POLL_LIMIT_S;)
        (void)mp_cache_poll(c, &r, &err);
    CHECKF(mp_cache_contains(c, 0, 4), "the prefetch never ran after the demand finished");
    demand(c, 0, 4);
    mp_cache_stats st;
    mp_cache_get_stats(c, &st, NULL, false);
    CHECK(st.prefetch_used == 1 && st.misses == 1);
    mp_cache_free(c);
}

/* Prefetch insertion rule (both policies): a prefetched slot is protected
 * for n_slots events, so a prediction for the next layer survives until it
 * is used; after that, if still unused, it is evicted before any expert that
 * was demanded. The grace ends at once when P's layer has run without it
 * (mp_cache_layer_done), but not for a prefetch that was used or one of
 * another layer. 3 slots: A and B demanded, P prefetched. */
static void test_unused_prefetch_goes_first(mp_io_kind kind, const mp_policy_ops *pol)
{
    mp_err err = {0};
    mp_cache_ready r;
    for (int expire = 0; expire < 3; expire++) {
        mp_cache *c = mp_fixture_cache(&fx, kind, 4, 3, pol, NULL, &err);
        CHECKF(c != NULL, "%s", err.msg);
        if (!c) return;
        demand(c, 1, 0);                                                     /* A */
        CHECK(mp_cache_request(c, 1, 7, MP_CACHE_PREFETCH, &err) == MP_OK); /* P */
        for (double t0 = mp_time_s(); !mp_cache_contains(c, 1, 7) && mp_time_s() - t0 < POLL_LIMIT_S;)
            (void)mp_cache_poll(c, &r, &err);
        CHECKF(mp_cache_contains(c, 1, 7), "a prefetch never became ready through mp_cache_poll");
        demand(c, 1, 1); /* B */
        if (expire == 1)
            for (int i = 0; i < 4; i++) demand(c, 1, (uint32_t)(i & 1)); /* A, B, A, B: P's grace runs out */
        if (expire == 2) {
            mp_cache_layer_done(c, 0); /* another layer: P keeps its grace */
            demand(c, 1, 2);           /* C evicts A or B, not P */
            CHECKF(mp_cache_contains(c, 1, 7), "policy %s: layer 0 done expired a prefetch of layer 1", pol->name);
            mp_cache_layer_done(c, 1); /* layer 1 ran without P: P is wrong */
            demand(c, 1, 3);           /* D: P goes first */
            CHECKF(!mp_cache_contains(c, 1, 7), "policy %s kept an expired prefetch over proven experts", pol->name);
            CHECK(mp_cache_contains(c, 1, 2) && mp_cache_contains(c, 1, 3));
            mp_cache_free(c);
            continue;
        }
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

/* A prefetch never evicts another prefetch still waiting for its layer (it
 * would be read twice, as deep lookahead over a prefill chunk did); once
 * that layer has run without it, it may. 3 slots, 3 prefetches. */
/* A cache of 3 slots holding prefetches of expert 0 of layers 1, 2 and 3,
 * all read; NULL on failure (reported). */
static mp_cache *three_prefetched(mp_io_kind kind, const mp_policy_ops *pol)
{
    mp_err err = {0};
    mp_cache_ready r;
    mp_cache *c = mp_fixture_cache(&fx, kind, 4, 3, pol, NULL, &err);
    CHECKF(c != NULL, "%s", err.msg);
    if (!c) return NULL;
    for (uint32_t l = 1; l <= 3; l++) CHECK(mp_cache_request(c, l, 0, MP_CACHE_PREFETCH, &err) == MP_OK);
    for (double t0 = mp_time_s(); !(mp_cache_contains(c, 1, 0) && mp_cache_contains(c, 2, 0) &&
                                    mp_cache_contains(c, 3, 0)) && mp_time_s() - t0 < POLL_LIMIT_S;)
        (void)mp_cache_poll(c, &r, &err);
    return c;
}

static void test_prefetch_spares_pending_prefetches(mp_io_kind kind, const mp_policy_ops *pol)
{
    mp_err err = {0};
    mp_cache *c = three_prefetched(kind, pol);
    if (!c) return;
    CHECKF(mp_cache_request(c, 1, 5, MP_CACHE_PREFETCH, &err) == MP_E_AGAIN,
           "policy %s: a prefetch evicted a pending one", pol->name);
    CHECK(mp_cache_contains(c, 1, 0) && mp_cache_contains(c, 2, 0) && mp_cache_contains(c, 3, 0));
    mp_cache_layer_done(c, 2); /* layer 2 ran without expert 0 */
    CHECK(mp_cache_request(c, 1, 5, MP_CACHE_PREFETCH, &err) == MP_OK);
    CHECKF(!mp_cache_contains(c, 2, 0) && mp_cache_contains(c, 1, 0) && mp_cache_contains(c, 3, 0),
           "policy %s: the expired prefetch was not the one evicted", pol->name);
    demand(c, 1, 0);
    demand(c, 1, 5);
    mp_cache_free(c);

    /* predicted again after expiring (the next token, the same layer): it is
     * pending again, not the first to go */
    if (!(c = three_prefetched(kind, pol))) return;
    mp_cache_layer_done(c, 1);                                           /* 1/0 expires */
    CHECK(mp_cache_request(c, 1, 0, MP_CACHE_PREFETCH, &err) == MP_OK); /* and is predicted again */
    CHECKF(mp_cache_request(c, 2, 6, MP_CACHE_PREFETCH, &err) == MP_E_AGAIN && mp_cache_contains(c, 1, 0),
           "policy %s: a re-predicted prefetch was evicted as expired", pol->name);
    demand(c, 1, 0);
    mp_cache_free(c);
}

/* Lookahead predicts a layer from two layers back and again from one back:
 * the nearer guess replaces the farther one's picks it does not repeat, and
 * nothing else. */
static void test_nearer_prediction_supersedes(mp_io_kind kind, const mp_policy_ops *pol)
{
    mp_err err = {0};
    mp_cache_ready r;
    mp_cache *c = mp_fixture_cache(&fx, kind, 4, 2, pol, NULL, &err);
    CHECKF(c != NULL, "%s", err.msg);
    if (!c) return;
    mp_cache_prefetch_own_layer_first(c, true);
    mp_cache_prediction_begin(c); /* the farther guess of layer 1: {0, 1} */
    CHECK(mp_cache_request(c, 1, 0, MP_CACHE_PREFETCH, &err) == MP_OK);
    CHECK(mp_cache_request(c, 1, 1, MP_CACHE_PREFETCH, &err) == MP_OK);
    for (double t0 = mp_time_s(); !(mp_cache_contains(c, 1, 0) && mp_cache_contains(c, 1, 1)) &&
                                  mp_time_s() - t0 < POLL_LIMIT_S;)
        (void)mp_cache_poll(c, &r, &err);
    CHECKF(mp_cache_request(c, 1, 2, MP_CACHE_PREFETCH, &err) == MP_E_AGAIN,
           "policy %s: a prediction evicted its own pick", pol->name);
    mp_cache_prediction_begin(c); /* another layer's guess: layer 1's picks are still pending */
    CHECKF(mp_cache_request(c, 2, 0, MP_CACHE_PREFETCH, &err) == MP_E_AGAIN,
           "policy %s: another layer's prediction evicted a pending prefetch", pol->name);
    mp_cache_prediction_begin(c); /* the nearer guess of layer 1: {0, 3} */
    CHECK(mp_cache_request(c, 1, 0, MP_CACHE_PREFETCH, &err) == MP_OK);
    CHECKF(mp_cache_request(c, 1, 3, MP_CACHE_PREFETCH, &err) == MP_OK,
           "policy %s: the nearer prediction found no room", pol->name);
    CHECKF(mp_cache_contains(c, 1, 0) && !mp_cache_present(c, 1, 1) && mp_cache_present(c, 1, 3),
           "policy %s: the nearer prediction replaced the wrong expert", pol->name);
    demand(c, 1, 0);
    demand(c, 1, 3);
    mp_cache_stats st;
    mp_cache_get_stats(c, &st, NULL, false);
    CHECKF(st.misses == 0 && st.prefetch_wasted == 1, "policy %s: %llu misses, %llu wasted (0, 1 expected)",
           pol->name, (unsigned long long)st.misses, (unsigned long long)st.prefetch_wasted);
    mp_cache_free(c);
}

/* LRU order 2/0, 1/0, 1/1: a prefetch of 1/5 evicts 2/0 (the policy's
 * victim), or 1/0 (its own layer's oldest) with own_layer_first. */
static void test_own_layer_first(mp_io_kind kind)
{
    for (int on = 0; on < 2; on++) {
        mp_err err = {0};
        mp_cache *c = mp_fixture_cache(&fx, kind, 4, 3, mp_policy_find("lru"), NULL, &err);
        CHECKF(c != NULL, "%s", err.msg);
        if (!c) return;
        mp_cache_prefetch_own_layer_first(c, on);
        demand(c, 2, 0);
        demand(c, 1, 0);
        demand(c, 1, 1);
        mp_cache_prediction_begin(c);
        CHECK(mp_cache_request(c, 1, 5, MP_CACHE_PREFETCH, &err) == MP_OK);
        const bool own = !mp_cache_present(c, 1, 0) && mp_cache_present(c, 2, 0);
        const bool policy = mp_cache_present(c, 1, 0) && !mp_cache_present(c, 2, 0);
        CHECKF(on ? own : policy, "own_layer_first %d: 2/0 %s, 1/0 %s", on, mp_cache_present(c, 2, 0) ? "kept" : "evicted",
               mp_cache_present(c, 1, 0) ? "kept" : "evicted");
        demand(c, 1, 5);
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
        test_prefetch_waits_for_demand(kinds[k]);
        for (const mp_policy_ops *const *p = mp_policy_list(); *p; p++) {
            test_unused_prefetch_goes_first(kinds[k], *p);
            test_prefetch_spares_pending_prefetches(kinds[k], *p);
            test_nearer_prediction_supersedes(kinds[k], *p);
        }
        test_prefetch_loading_and_evicted(kinds[k]);
        test_own_layer_first(kinds[k]);
    }
    mp_fixture_free(&fx);
    if (mp_test_failures) MP_TEST_DONE();
    if (!have_uring) MP_TEST_SKIP("io_uring is unavailable here (the pread paths passed)");
    MP_TEST_DONE();
}
