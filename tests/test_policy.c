/* Replacement policies (cache/policy.h): the registry, LRU's eviction order
 * on hand-made event sequences, prefetch-aware insertion, what makes
 * lfu-decay differ from LRU and lfu-cycle differ from lfu-decay (and where
 * they must not), and for every policy, with and without layers: victims
 * are always evictable, and none is found when nothing is. */
#include "mp_test.h"
#include "trace/replay.h"
#include "trace/trace.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
    CHECK(mp_policy_find("lfu-cycle") != NULL);
    CHECK(mp_policy_find("duel") != NULL);
    CHECK(mp_policy_find("nope") == NULL);
    CHECK(mp_policy_find(NULL) == NULL);
}

static void test_lru_order(void)
{
    const mp_policy_ops *o = mp_policy_find("lru");
    memset(pinned, 0, sizeof pinned);
    void *s = o->create(4, 100, 100);
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
    void *s = o->create(4, 100, 100);
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
    void *s = o->create(2, 10, 10);
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
    void *ls = l->create(2, 10, 10);
    l->on_fill(ls, 0, 7, MP_FILL_DEMAND);
    l->on_fill(ls, 1, 8, MP_FILL_DEMAND);
    l->on_hit(ls, 1, 8);
    CHECK(l->victim(ls, evictable, NULL) == 0);
    l->destroy(ls);
    o->destroy(s);
}

/* Random events on every policy: the victim is always an evictable resident
 * slot; -1 exactly when none is. */
static void test_random(const mp_policy_ops *o, uint32_t n_experts)
{
    enum { NS = 13, NK = 40 };
    bool resident[NS] = {false};
    uint32_t key[NS] = {0};
    void *s = o->create(NS, NK, n_experts);
    CHECK(s != NULL);
    for (int it = 0; it < 20000; it++) {
        uint32_t slot = rnd(NS);
        switch (rnd(5)) {
        case 0: {
            if (resident[slot]) o->on_evict(s, slot, key[slot]);
            resident[slot] = false;
            /* a key is resident in one slot at most (policy.h) */
            uint32_t k;
            bool taken;
            do {
                k = rnd(NK);
                taken = false;
                for (int i = 0; i < NS; i++) taken |= resident[i] && key[i] == k;
            } while (taken);
            key[slot] = k;
            o->on_fill(s, slot, key[slot], rnd(3) ? MP_FILL_DEMAND : MP_FILL_PREFETCH);
            resident[slot] = true;
            break;
        }
        case 4:
            if (resident[slot] && o->on_expire) o->on_expire(s, slot);
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

/* lfu-cycle on a hand-made sequence: 3 layers of 4 experts (key = layer *
 * 4 + expert), 4 slots. Counts decay by 2^(-1/64) per event here, too little
 * to change any order below. */
static void test_lfu_cycle_order(void)
{
    const mp_policy_ops *o = mp_policy_find("lfu-cycle"), *d = mp_policy_find("lfu-decay");
    CHECK(o != NULL && d != NULL);
    memset(pinned, 0, sizeof pinned);
    void *s = o->create(4, 12, 4), *ds = d->create(4, 12, 4);
    /* slot 0: key 1 (layer 0) used 4 times; slot 1: key 9 (layer 2) once;
     * slot 2: key 5 (layer 1) 3 times; slot 3: key 2 (layer 0) once, last */
    void *both[2] = {s, ds};
    const mp_policy_ops *ops[2] = {o, d};
    for (int i = 0; i < 2; i++) {
        ops[i]->on_fill(both[i], 0, 1, MP_FILL_DEMAND);
        for (int j = 0; j < 3; j++) ops[i]->on_hit(both[i], 0, 1);
        ops[i]->on_fill(both[i], 1, 9, MP_FILL_DEMAND);
        ops[i]->on_fill(both[i], 2, 5, MP_FILL_DEMAND);
        ops[i]->on_hit(both[i], 2, 5);
        ops[i]->on_hit(both[i], 2, 5);
        ops[i]->on_fill(both[i], 3, 2, MP_FILL_DEMAND);
    }
    /* Layer 0 ran last: layer 1 runs next (d = 1), layer 2 after (d = 2),
     * layer 0 last (d = 3). count / sqrt(d): key 1 4/1.73 = 2.3, key 9
     * 1/1.41 = 0.71, key 5 3/1 = 3, key 2 1/1.73 = 0.58. lfu-decay goes by
     * count alone: key 9 (one use, like key 2, but earlier) first. */
    CHECK(o->victim(s, evictable, NULL) == 3);
    CHECK(d->victim(ds, evictable, NULL) == 1);
    pinned[3] = true;
    CHECK(o->victim(s, evictable, NULL) == 1);
    pinned[1] = true;
    CHECK(o->victim(s, evictable, NULL) == 0); /* 2.3 < 3; lfu-decay: key 5 (3 < 4) */
    CHECK(d->victim(ds, evictable, NULL) == 2);
    pinned[0] = true;
    CHECK(o->victim(s, evictable, NULL) == 2);
    pinned[2] = true;
    CHECK(o->victim(s, evictable, NULL) == -1);
    memset(pinned, 0, sizeof pinned);
    /* A demand use of key 9 makes layer 2 the current one: layer 0 is next
     * (d = 1), then layer 1 (d = 2), layer 2 (d = 3). count / sqrt(d): key 1
     * 4/1 = 4, key 2 1/1 = 1, key 5 3/1.41 = 2.1, key 9 2/1.73 = 1.2. */
    o->on_hit(s, 1, 9);
    CHECK(o->victim(s, evictable, NULL) == 3);
    pinned[1] = pinned[3] = true;
    CHECK(o->victim(s, evictable, NULL) == 2); /* before the use of key 9: slot 0 */
    memset(pinned, 0, sizeof pinned);
    /* A prefetch fill is not a use: it moves neither counts nor the current
     * layer. Key 2 out, key 4 (layer 1) prefetched into slot 3: in its grace
     * period, so the heaps give the victim, key 9 (1.2). Had the prefetch
     * made layer 1 current, key 5 (3/1.73) would go before key 9 (2/1). */
    o->on_evict(s, 3, 2);
    o->on_fill(s, 3, 4, MP_FILL_PREFETCH);
    CHECK(o->victim(s, evictable, NULL) == 1);
    /* its prediction passed unused: first to go, before any used expert */
    o->on_expire(s, 3);
    CHECK(o->victim(s, evictable, NULL) == 3);
    /* ...unless it is pinned (a caller is using it) */
    pinned[3] = true;
    CHECK(o->victim(s, evictable, NULL) == 1);
    memset(pinned, 0, sizeof pinned);
    o->destroy(s);
    d->destroy(ds);
}

/* Without layers (n_experts == n_keys: every d is 1) lfu-cycle is lfu-decay:
 * the same victim after every event of a random sequence with pins and
 * prefetches. */
static void test_lfu_cycle_no_layers(void)
{
    const mp_policy_ops *o = mp_policy_find("lfu-cycle"), *d = mp_policy_find("lfu-decay");
    enum { NS = 9, NK = 30 };
    void *s = o->create(NS, NK, NK), *ds = d->create(NS, NK, NK);
    bool resident[NS] = {false};
    uint32_t key[NS] = {0};
    int same = 0, compared = 0;
    for (int it = 0; it < 5000; it++) {
        uint32_t slot = rnd(NS);
        if (rnd(3) == 0) {
            if (resident[slot]) o->on_evict(s, slot, key[slot]), d->on_evict(ds, slot, key[slot]);
            resident[slot] = false;
            uint32_t k;
            bool taken;
            do {
                k = rnd(NK);
                taken = false;
                for (int i = 0; i < NS; i++) taken |= resident[i] && key[i] == k;
            } while (taken);
            key[slot] = k;
            mp_fill_kind kind = rnd(4) ? MP_FILL_DEMAND : MP_FILL_PREFETCH;
            o->on_fill(s, slot, k, kind);
            d->on_fill(ds, slot, k, kind);
            resident[slot] = true;
        } else if (resident[slot]) {
            o->on_hit(s, slot, key[slot]);
            d->on_hit(ds, slot, key[slot]);
        }
        for (int i = 0; i < NS; i++) pinned[i] = !resident[i] || rnd(4) == 0;
        int64_t a = o->victim(s, evictable, NULL), b = d->victim(ds, evictable, NULL);
        compared++;
        same += a == b;
    }
    CHECKF(same == compared, "lfu-cycle without layers: %d of %d victims as lfu-decay", same, compared);
    memset(pinned, 0, sizeof pinned);
    o->destroy(s);
    d->destroy(ds);
}

/* The trace replayer gives the policy the trace's layers: on a synthetic
 * skewed trace (4 layers of 16 experts, top-2, 300 tokens) lfu-cycle equals
 * lfu-decay with a cache per layer (one layer each) and differs from it with
 * one cache for all layers. */
static void test_lfu_cycle_replay(void)
{
    size_t cap = 300 * 4 * 96, len = 0;
    char *buf = malloc(cap);
    CHECK(buf != NULL);
    if (!buf) return;
    for (int tok = 0; tok < 300; tok++)
        for (int l = 0; l < 4; l++) {
            /* expert popularity ~ 1/(1 + e): a low id is likelier */
            uint32_t a = rnd(16) * rnd(16) / 16, b;
            do b = rnd(16) * rnd(16) / 16; while (b == a);
            len += (size_t)snprintf(buf + len, cap - len,
                                    "{\"problem_id\": 0, \"token_idx\": %d, \"layer\": %d, \"experts\": [%u, %u]}\n",
                                    tok, l, a, b);
        }
    mp_trace *t = NULL;
    mp_err e;
    mp_err_clear(&e);
    CHECKF(mp_trace_parse("synthetic", buf, len, &t, &e) == MP_OK, "%s", e.msg);
    free(buf);
    if (!t) return;
    const mp_policy_ops *o = mp_policy_find("lfu-cycle"), *d = mp_policy_find("lfu-decay");
    mp_replay_stats a, b;
    for (uint32_t c = 2; c <= 8; c *= 2) {
        CHECK(mp_trace_replay(t, o, c, MP_REPLAY_PER_LAYER, &a, &e) == MP_OK);
        CHECK(mp_trace_replay(t, d, c, MP_REPLAY_PER_LAYER, &b, &e) == MP_OK);
        CHECKF(a.hits == b.hits, "per-layer %u: lfu-cycle %llu, lfu-decay %llu", c, (unsigned long long)a.hits,
               (unsigned long long)b.hits);
        CHECK(mp_trace_replay(t, o, c, MP_REPLAY_GLOBAL, &a, &e) == MP_OK);
        CHECK(mp_trace_replay(t, d, c, MP_REPLAY_GLOBAL, &b, &e) == MP_OK);
        CHECKF(a.hits != b.hits, "global %u: lfu-cycle %llu, lfu-decay %llu", c, (unsigned long long)a.hits,
               (unsigned long long)b.hits);
        printf("synthetic, %u per layer: global lfu-cycle %llu hits, lfu-decay %llu (of %llu)\n", c,
               (unsigned long long)a.hits, (unsigned long long)b.hits, (unsigned long long)a.accesses);
    }
    mp_trace_free(t);
}

/* duel follows whichever inner policy is hitting more. Two synthetic
 * streams, one key per group, 8 slots: "scan", hot keys 0-5 between
 * one-off keys (LRU lets the one-offs push the hot keys out, lfu-cycle
 * keeps them), and "drift", a working set of 4 keys that moves on by one
 * key every 16 accesses (lfu-cycle's counts keep the old keys over the new
 * one, LRU does not). On each, duel must be near the better policy and well
 * above the worse; on one stream of both, one after the other, above both:
 * only switching can do that. */
static size_t duel_stream(uint32_t *keys, size_t n, bool drift, uint32_t base)
{
    uint32_t cold = 1000;
    for (size_t i = 0; i < n; i++) {
        if (drift) keys[i] = base + (uint32_t)(i / 16) + rnd(4);
        else keys[i] = i % 2 ? cold++ : rnd(6);
    }
    return n;
}

static void test_duel(void)
{
    enum { N = 4000, NK = 8000, CAP = 8 };
    const mp_policy_ops *duel = mp_policy_find("duel"), *lru = mp_policy_find("lru"),
                        *lfu = mp_policy_find("lfu-cycle");
    CHECK(duel != NULL && duel->on_group_done != NULL);
    if (!duel) return;
    uint32_t *keys = malloc(2 * N * sizeof *keys);
    size_t *off = malloc((2 * N + 1) * sizeof *off);
    CHECK(keys && off);
    if (!keys || !off) goto done;
    for (size_t i = 0; i <= 2 * N; i++) off[i] = i;
    duel_stream(keys, N, false, 0);
    duel_stream(keys + N, N, true, 2000);
    static const char *names[] = {"scan", "drift", "scan then drift"};
    const size_t from[] = {0, N, 0}, len[] = {N, N, 2 * N};
    for (int t = 0; t < 3; t++) {
        mp_replay_stats d, r, f;
        CHECK(mp_replay_groups(duel, keys + from[t], off, len[t], NK, CAP, &d, NULL) == MP_OK);
        CHECK(mp_replay_groups(lru, keys + from[t], off, len[t], NK, CAP, &r, NULL) == MP_OK);
        CHECK(mp_replay_groups(lfu, keys + from[t], off, len[t], NK, CAP, &f, NULL) == MP_OK);
        printf("duel, %s: lru %llu hits, lfu-cycle %llu, duel %llu (of %llu)\n", names[t],
               (unsigned long long)r.hits, (unsigned long long)f.hits, (unsigned long long)d.hits,
               (unsigned long long)d.accesses);
        uint64_t best = r.hits > f.hits ? r.hits : f.hits, worst = r.hits > f.hits ? f.hits : r.hits;
        if (t < 2) CHECKF(best > worst + d.accesses / 10, "%s: the stream does not separate the policies", names[t]);
        if (t < 2) CHECKF(d.hits + d.accesses / 50 >= best && d.hits > worst + d.accesses / 10,
                          "%s: duel %llu hits, lru %llu, lfu-cycle %llu", names[t], (unsigned long long)d.hits,
                          (unsigned long long)r.hits, (unsigned long long)f.hits);
        else CHECKF(d.hits > best + d.accesses / 10, "%s: duel %llu hits, lru %llu, lfu-cycle %llu", names[t],
                    (unsigned long long)d.hits, (unsigned long long)r.hits, (unsigned long long)f.hits);
    }
done:
    free(keys);
    free(off);
}

int main(void)
{
    test_registry();
    test_lru_order();
    test_lfu_decay();
    for (const mp_policy_ops *const *p = mp_policy_list(); *p; p++) {
        test_prefetch(*p);
        test_random(*p, 40); /* no layers */
        test_random(*p, 8);  /* 5 layers of 8 */
        test_random(*p, 3);  /* 14 layers, the last one short */
    }
    test_lfu_cycle_order();
    test_lfu_cycle_no_layers();
    test_lfu_cycle_replay();
    test_duel();
    MP_TEST_DONE();
}
