/* Belady's MIN (trace/replay.c) against an exhaustive search over every
 * eviction choice, on many small random group sequences; and every policy in
 * the registry never beats it. */
#include "mp_test.h"
#include "trace/replay.h"

#include <stdint.h>
#include <string.h>

#define MAXG 16

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* The brute force works on the groups as replayed: groups larger than the
 * cache are split into single keys (replay.h), written out again here. */
static int n_eff;
static uint32_t eff_mask[MAXG * 4];
static int cap;
static int memo[MAXG * 4 + 1][64];

static int popc(uint32_t x) { return __builtin_popcount(x); }

/* Fewest misses from group g on with resident set `mask`, trying every set of
 * evictions (outside the group) a miss can make. */
static int best(int g, uint32_t mask)
{
    if (g == n_eff) return 0;
    if (memo[g][mask] >= 0) return memo[g][mask];
    uint32_t G = eff_mask[g], miss = G & ~mask;
    int m = popc(miss);
    int need = popc(mask) + m - cap; /* evictions needed */
    int r = 1 << 30;
    if (need <= 0) {
        r = m + best(g + 1, mask | G);
    } else {
        uint32_t cand = mask & ~G;
        for (uint32_t ev = cand;; ev = (ev - 1) & cand) { /* all subsets of cand */
            if (popc(ev) == need) {
                int v = m + best(g + 1, (mask & ~ev) | G);
                if (v < r) r = v;
            }
            if (ev == 0) break;
        }
    }
    memo[g][mask] = r;
    return r;
}

static int brute(const uint32_t *keys, const size_t *off, size_t ng, int capacity)
{
    cap = capacity;
    n_eff = 0;
    for (size_t g = 0; g < ng; g++) {
        size_t sz = off[g + 1] - off[g];
        if ((int)sz <= capacity) {
            uint32_t m = 0;
            for (size_t i = off[g]; i < off[g + 1]; i++) m |= 1u << keys[i];
            eff_mask[n_eff++] = m;
        } else {
            for (size_t i = off[g]; i < off[g + 1]; i++) eff_mask[n_eff++] = 1u << keys[i];
        }
    }
    memset(memo, -1, sizeof memo);
    return best(0, 0);
}

int main(void)
{
    /* A hand-checked case: cache 2, singletons A B C A B: MIN keeps A at C
     * (evicts B, used later than A), so A hits, B misses: 1 hit. */
    {
        uint32_t keys[] = {0, 1, 2, 0, 1};
        size_t off[] = {0, 1, 2, 3, 4, 5};
        mp_replay_stats st;
        CHECK(mp_replay_groups_belady(keys, off, 5, 3, 2, &st, NULL) == MP_OK);
        CHECK(st.accesses == 5 && st.hits == 1 && st.misses == 4);
    }
    /* Pinning: cache 3, groups {0,1} {2,3} {0,1}. Without the pin MIN could
     * keep 0 and 1 through the second group; with it one of them must go. */
    {
        uint32_t keys[] = {0, 1, 2, 3, 0, 1};
        size_t off[] = {0, 2, 4, 6};
        mp_replay_stats st;
        CHECK(mp_replay_groups_belady(keys, off, 3, 4, 3, &st, NULL) == MP_OK);
        CHECK(st.hits == 1 && st.misses == 5);
    }
    /* Bad input is refused, not crashed on. */
    {
        uint32_t keys[] = {0, 0};
        size_t off[] = {0, 2};
        mp_replay_stats st;
        mp_err e;
        mp_err_clear(&e);
        CHECK(mp_replay_groups_belady(keys, off, 1, 4, 2, &st, &e) == MP_E_INVAL);
        uint32_t big[] = {9};
        size_t off1[] = {0, 1};
        CHECK(mp_replay_groups_belady(big, off1, 1, 4, 2, &st, NULL) == MP_E_INVAL);
        CHECK(mp_replay_groups_belady(big, off1, 1, 10, 0, &st, NULL) == MP_E_INVAL);
    }

    const mp_policy_ops *const *pols = mp_policy_list();
    int cases = 0;
    for (int iter = 0; iter < 3000; iter++) {
        int capacity = 2 + (int)rnd(3);    /* 2..4 */
        uint32_t n_keys = 3 + rnd(4);      /* 3..6 */
        uint32_t kmax = 1 + rnd(3);        /* groups of 1..3 keys (some larger than the cache) */
        uint32_t keys[MAXG * 3];
        size_t off[MAXG + 1];
        size_t ng = 0, n = 0;
        off[0] = 0;
        while (n < 14) {
            uint32_t k = 1 + rnd(kmax);
            if (n + k > 14) k = (uint32_t)(14 - n);
            uint32_t used = 0;
            for (uint32_t j = 0; j < k; j++) {
                uint32_t x;
                do x = rnd(n_keys);
                while (used >> x & 1);
                used |= 1u << x;
                keys[n++] = x;
            }
            off[++ng] = n;
        }
        mp_replay_stats st;
        mp_err e;
        mp_err_clear(&e);
        int rc = mp_replay_groups_belady(keys, off, ng, n_keys, (uint32_t)capacity, &st, &e);
        CHECKF(rc == MP_OK, "%s", e.msg);
        int opt = brute(keys, off, ng, capacity);
        CHECKF((int)st.misses == opt, "iter %d: cap %d keys %u: Belady %llu misses, exhaustive %d", iter,
               capacity, n_keys, (unsigned long long)st.misses, opt);
        CHECK(st.accesses == n && st.hits + st.misses == n);
        for (size_t p = 0; pols[p]; p++) {
            mp_replay_stats ps;
            mp_err_clear(&e);
            rc = mp_replay_groups(pols[p], keys, off, ng, n_keys, (uint32_t)capacity, &ps, &e);
            CHECKF(rc == MP_OK, "%s: %s", pols[p]->name, e.msg);
            CHECKF(ps.misses >= st.misses, "%s beats Belady: %llu < %llu", pols[p]->name,
                   (unsigned long long)ps.misses, (unsigned long long)st.misses);
            CHECK(ps.accesses == n);
        }
        cases++;
        if (mp_test_failures > 20) break;
    }
    CHECK(cases == 3000);
    MP_TEST_DONE();
}
