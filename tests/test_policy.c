/* Replacement policies (cache/policy.h): the registry, LRU's eviction order
 * on hand-made event sequences, prefetch-aware insertion, what makes
 * lfu-decay differ from LRU, and for every policy: victims are always
 * evictable, and none is found when nothing is. */
#include "mp_test.h"
#include "trace/replay.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static bool pinned[64];
static bool evictable(void *ctx, uint32_t slot)
{
    (void)ctx;
    return !pinned[slot];
}

static uint64_t rng = 12345;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void test_registry(void)
{
    const mp_policy_ops *const *l = mp_policy_list();
    CHECK(l && l[0]);
    CHECK(mp_policy_default() == l[0]);
    size_t n = 0;
    for (; l[n]; n++) {
        CHECK(l[n]->name && l[n]->description && l[n]->create && l[n]->destroy && l[n]->on_fill &&
              l[n]->on_hit && l[n]->on_evict && l[n]->victim);
        CHECK(mp_policy_find(l[n]->name) == l[n]);
        for (size_t j = 0; j < n; j++) CHECK(strcmp(l[j]->name, l[n]->name) != 0);
    }
    CHECK(n >= 2);
    CHECK(mp_policy_find("lru") != NULL);
    CHECK(mp_policy_find("lfu-decay") != NULL);
    CHECK(mp_policy_find("nope") == NULL);
    CHECK(mp_policy_find(NULL) == NULL);
}

static void test_lru_order(void)
{
    const mp_policy_ops *o = mp_policy_find("lru");
    memset(pinned, 0, sizeof pinned);
    void *s = o->create(4, 100);
    CHECK(s != NULL);
    /* fill slots 0..3 with keys 10..13, then touch 0 and 2 */
    for (uint32_t i = 0; i < 4; i++) o->on_fill(s, i, 10 + i, MP_FILL_DEMAND);
    o->on_hit(s, 0, 10);
    o->on_hit(s, 2, 12);
    /* recency, oldest first: 1 3 0 2 */
    CHECK(o->victim(s, evictable, NULL) == 1);
    pinned[1] = true; /* the scan skips pinned slots */
    CHECK(o->victim(s, evictable, NULL) == 3);
    pinned[3] = true;
    CHECK(o->victim(s, evictable, NULL) == 0);
    pinned[0] = pinned[2] = true;
    CHECK(o->victim(s, evictable, NULL) == -1);
    memset(pinned, 0, sizeof pinned);
    /* evict 1, refill it with key 20: now oldest first 3 0 2 1 */
    o->on_evict(s, 1, 11);
    o->on_fill(s, 1, 20, MP_FILL_DEMAND);
    CHECK(o->victim(s, evictable, NULL) == 3);
    o->on_evict(s, 3, 13);
    CHECK(o->victim(s, evictable, NULL) == 0);
    o->on_evict(s, 0, 10);
    CHECK(o->victim(s, evictable, NULL) == 2);
    o->on_evict(s, 2, 12);
    CHECK(o->victim(s, evictable, NULL) == 1);
    o->on_evict(s, 1, 20);
    CHECK(o->victim(s, evictable, NULL) == -1); /* empty */
    o->destroy(s);

    /* The same through the replayer: cache 2, A B A C B A -> only the
     * second A hits (C evicts B, B evicts A, A evicts C). */
    uint32_t keys[] = {0, 1, 0, 2, 1, 0};
    size_t off[] = {0, 1, 2, 3, 4, 5, 6};
    mp_replay_stats st;
    CHECK(mp_replay_groups(o, keys, off, 6, 3, 2, &st, NULL) == MP_OK);
    CHECK(st.hits == 1 && st.misses == 5);
    /* groups pin: cache 3, {0,1} {2} {0} {3,2}: at {3,2} LRU order is 1 2 0
     * but 2 is pinned, so 1 goes; then {1}: 0 (older than 3 and 2) goes. */
    uint32_t k2[] = {0, 1, 2, 0, 3, 2, 1, 0};
    size_t o2[] = {0, 2, 3, 4, 6, 7, 8};
    CHECK(mp_replay_groups(o, k2, o2, 6, 4, 3, &st, NULL) == MP_OK);
    CHECK(st.hits == 2 && st.misses == 6); /* hits: 0 at g2, 2 at g3 */
}

static void test_prefetch(const mp_policy_ops *o)
{
    memset(pinned, 0, sizeof pinned);
    void *s = o->create(4, 100);
    CHECK(s != NULL);
    o->on_fill(s, 0, 1, MP_FILL_DEMAND);
    o->on_fill(s, 1, 2, MP_FILL_DEMAND);
    o->on_fill(s, 2, 3, MP_FILL_DEMAND);
    o->on_fill(s, 3, 4, MP_FILL_PREFETCH);
    /* a fresh prefetch is in its grace period: a proven slot goes first */
    CHECKF(o->victim(s, evictable, NULL) == 0, "%s", o->name);
    /* ...unless every proven slot is pinned */
    pinned[0] = pinned[1] = pinned[2] = true;
    CHECKF(o->victim(s, evictable, NULL) == 3, "%s", o->name);
    memset(pinned, 0, sizeof pinned);
    /* n_slots events later an unused prefetch goes before any proven slot */
    for (int i = 0; i < 4; i++) o->on_hit(s, 0, 1);
    CHECKF(o->victim(s, evictable, NULL) == 3, "%s", o->name);
    /* a hit promotes it: it is now the most recently used */
    o->on_hit(s, 3, 4);
    for (int i = 0; i < 8; i++) o->on_hit(s, 0, 1);
    int64_t v = o->victim(s, evictable, NULL);
    CHECKF(v == 1 || v == 2, "%s: victim %lld", o->name, (long long)v);
    o->destroy(s);
}

static void test_lfu_decay(void)
{
    /* A hot key survives a scan of one-off keys that LRU lets push it out:
     * cache 2, key 0 used 5 times, then 1 2 3 4 5 each once, then 0. */
    uint32_t keys[] = {0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 0};
    size_t off[12];
    for (int i = 0; i <= 11; i++) off[i] = (size_t)i;
    mp_replay_stats lru, lfu;
    CHECK(mp_replay_groups(mp_policy_find("lru"), keys, off, 11, 6, 2, &lru, NULL) == MP_OK);
    CHECK(mp_replay_groups(mp_policy_find("lfu-decay"), keys, off, 11, 6, 2, &lfu, NULL) == MP_OK);
    CHECK(lru.hits == 4 && lfu.hits == 5);
    /* History outlives eviction: key 7 used three times, evicted, filled
     * again; key 8 used twice, the last time after 7 came back. LRU would
     * evict 7 (least recent); lfu-decay remembers 7's uses and evicts 8. */
    const mp_policy_ops *o = mp_policy_find("lfu-decay");
    memset(pinned, 0, sizeof pinned);
    void *s = o->create(2, 10);
    o->on_fill(s, 0, 7, MP_FILL_DEMAND);
    o->on_hit(s, 0, 7);
    o->on_hit(s, 0, 7);
    o->on_fill(s, 1, 8, MP_FILL_DEMAND);
    CHECK(o->victim(s, evictable, NULL) == 1); /* 8 used once, 7 three times */
    o->on_evict(s, 0, 7);                     /* the cache dropped 7 anyway */
    o->on_fill(s, 0, 9, MP_FILL_DEMAND);
    o->on_evict(s, 0, 9);
    o->on_fill(s, 0, 7, MP_FILL_DEMAND);      /* 7 returns with its history */
    o->on_hit(s, 1, 8);
    CHECK(o->victim(s, evictable, NULL) == 1);
    const mp_policy_ops *l = mp_policy_find("lru");
    void *ls = l->create(2, 10);
    l->on_fill(ls, 0, 7, MP_FILL_DEMAND);
    l->on_fill(ls, 1, 8, MP_FILL_DEMAND);
    l->on_hit(ls, 1, 8);
    CHECK(l->victim(ls, evictable, NULL) == 0);
    l->destroy(ls);
    o->destroy(s);
}

/* Random events on every policy: the victim is always an evictable resident
 * slot; -1 exactly when none is. */
static void test_random(const mp_policy_ops *o)
{
    enum { NS = 13, NK = 40 };
    bool resident[NS] = {false};
    uint32_t key[NS] = {0};
    void *s = o->create(NS, NK);
    CHECK(s != NULL);
    for (int it = 0; it < 20000; it++) {
        uint32_t slot = rnd(NS);
        switch (rnd(4)) {
        case 0:
            if (resident[slot]) o->on_evict(s, slot, key[slot]);
            key[slot] = rnd(NK);
            o->on_fill(s, slot, key[slot], rnd(3) ? MP_FILL_DEMAND : MP_FILL_PREFETCH);
            resident[slot] = true;
            break;
        case 1:
            if (resident[slot]) o->on_hit(s, slot, key[slot]);
            break;
        case 2:
            if (resident[slot]) o->on_evict(s, slot, key[slot]), resident[slot] = false;
            break;
        default: {
            bool any = false;
            for (int i = 0; i < NS; i++) {
                pinned[i] = !resident[i] || rnd(3) == 0;
                any |= !pinned[i];
            }
            int64_t v = o->victim(s, evictable, NULL);
            if (any) CHECKF(v >= 0 && v < NS && !pinned[v], "%s: victim %lld", o->name, (long long)v);
            else CHECKF(v == -1, "%s: victim %lld with none evictable", o->name, (long long)v);
        }
        }
        if (mp_test_failures > 10) break;
    }
    memset(pinned, 0, sizeof pinned);
    o->destroy(s);
}

int main(void)
{
    test_registry();
    test_lru_order();
    test_lfu_decay();
    for (const mp_policy_ops *const *p = mp_policy_list(); *p; p++) {
        test_prefetch(*p);
        test_random(*p);
    }
    MP_TEST_DONE();
}
