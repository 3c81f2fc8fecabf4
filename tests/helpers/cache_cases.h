/* Cases shared by test_cache_pread.c and test_cache_uring.c (one program
 * per io backend, so the pread half runs where io_uring is missing): the
 * expert cache (src/cache/cache.c) on a real file with plain-GGUF-like
 * expert locations (three unaligned ranges per expert in three per-layer
 * tensors): eviction order, pinning under pressure, the minimum cache,
 * async delivery order, prefetch, I/O errors and verify failures, a
 * random-access stress with faults that compares every expert's bytes with
 * the file, and the io failing under the cache (a stalled read, a submit
 * that fails or starts nothing): one exact message naming the file, layer,
 * expert and offset, in bounded time, every later call refused. Included
 * once per program (static functions: CHECK counts into that program). */
#ifndef MP_TEST_CACHE_CASES_H
#define MP_TEST_CACHE_CASES_H

#define _GNU_SOURCE
#include "cache/cache.h"
#include "helpers/cache_fixture.h"
#include "mp_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_LAYERS 4
#define N_EXPERTS 8
#define N_KEYS (N_LAYERS * N_EXPERTS)

/* The file and its GGUF-like expert locations (helpers/cache_fixture.c):
 * per layer gate, up and down tensors of N_EXPERTS odd-sized experts,
 * 32-byte aligned, the last expert's tail not 4096 aligned. */
static mp_fixture fx;

static int check_bytes(uint32_t layer, uint32_t expert, const mp_expert_ptrs *p)
{
    return mp_fixture_check(&fx, layer, expert, p);
}

/* ---- a strict LRU, private to this test, for exact eviction order ----- */
typedef struct tlru {
    uint32_t n;
    uint64_t clock, *last; /* last use per slot; 0 = unused */
} tlru;
static void *tlru_create(uint32_t n_slots, uint32_t n_keys, uint32_t n_experts)
{
    tlru *t = calloc(1, sizeof *t);
    t->n = n_slots;
    t->last = calloc(n_slots, sizeof *t->last);
    return t;
}
static void tlru_destroy(void *st)
{
    tlru *t = st;
    free(t->last);
    free(t);
}
static void tlru_touch(void *st, uint32_t slot, uint32_t key) { ((tlru *)st)->last[slot] = ++((tlru *)st)->clock; }
static void tlru_fill(void *st, uint32_t slot, uint32_t key, mp_fill_kind k) { tlru_touch(st, slot, key); }
static void tlru_evict(void *st, uint32_t slot, uint32_t key) { ((tlru *)st)->last[slot] = 0; }
static int64_t tlru_victim(void *st, mp_evictable_fn ok, void *ctx)
{
    tlru *t = st;
    int64_t best = -1;
    for (uint32_t i = 0; i < t->n; i++)
        if (t->last[i] && ok(ctx, i) && (best < 0 || t->last[i] < t->last[best])) best = i;
    return best;
}
static const mp_policy_ops tlru_ops = { "test-lru", "strict LRU", tlru_create, tlru_destroy,
                                        tlru_fill, tlru_touch, tlru_evict, tlru_victim, NULL, NULL };

/* ---- helpers ----------------------------------------------------------- */
static const char *g_path;
static bool g_hugepages;
static char g_note[512]; /* the last cache's announcements */
static uint32_t g_timeout_ms; /* io timeout of the next caches; 0: the default */

static mp_cache *make_cache(mp_io_kind kind, const char *path, uint32_t n_slots,
                            const mp_policy_ops *pol, const char *fault, mp_cache_verify_fn verify)
{
    mp_io_opts o = { .depth = 8, .fault_spec = fault, .timeout_ms = g_timeout_ms };
    mp_io *io = NULL;
    mp_err err;
    mp_err_clear(&err);
    char note[256];
    int rc = mp_io_open(kind, path, &o, &io, note, sizeof note, &err);
    CHECKF(rc == MP_OK, "%s", err.msg);
    if (rc < 0) return NULL;
    mp_cache_config cfg = { .n_layers = N_LAYERS, .n_experts = N_EXPERTS, .locs = fx.locs,
                            .n_slots = n_slots, .io = io, .policy = pol, .verify = verify,
                            .hugepages = g_hugepages };
    mp_cache *c = NULL;
    rc = mp_cache_create(&cfg, &c, g_note, sizeof g_note, &err);
    CHECKF(rc == MP_OK, "%s", err.msg);
    if (rc < 0) mp_io_free(io);
    return c;
}

static int acq(mp_cache *c, uint32_t l, uint32_t e)
{
    mp_expert_ptrs p;
    mp_err err;
    mp_err_clear(&err);
    int rc = mp_cache_acquire(c, l, e, &p, &err);
    CHECKF(rc == MP_OK, "acquire %u/%u: %s", l, e, err.msg);
    if (rc == MP_OK) CHECKF(check_bytes(l, e, &p), "layer %u expert %u: wrong bytes", l, e);
    return rc;
}

static void use(mp_cache *c, uint32_t l, uint32_t e)
{
    if (acq(c, l, e) == MP_OK) mp_cache_release(c, l, e);
}

/* ---- tests ------------------------------------------------------------- */

static void test_slot_size(void)
{
    /* Three ranges, each rounded out on its own: an unaligned 9037 bytes
     * touch at most 4 pages, 7005 at most 3; a pack-like single aligned
     * range needs exactly its length. */
    uint64_t s = mp_cache_slot_bytes(fx.locs, N_KEYS, 4096);
    CHECKF(s % 4096 == 0 && s >= 9037 * 2 + 7005 && s <= 2 * 16384 + 12288, "slot %llu",
           (unsigned long long)s);
    mp_expert_loc one = { .part = { { 8192, 4096 * 3 } }, .n_parts = 1 };
    CHECK(mp_cache_slot_bytes(&one, 1, 4096) == 3 * 4096);
    /* Overlapping rounded-out ranges are read once. */
    mp_expert_loc tiny = { .part = { { 100, 50 }, { 200, 50 }, { 5000, 10 } }, .n_parts = 3 };
    CHECK(mp_cache_slot_bytes(&tiny, 1, 4096) == 8192);
}

static void test_eviction_order(mp_io_kind kind, const mp_policy_ops *pol)
{
    mp_cache *c = make_cache(kind, g_path, 3, pol, NULL, NULL);
    if (!c) return;
    use(c, 0, 0); /* A */
    use(c, 0, 1); /* B */
    use(c, 0, 2); /* C */
    use(c, 0, 0); /* A is now the most recent; B the least */
    use(c, 1, 3); /* D evicts B */
    CHECK(mp_cache_contains(c, 0, 0) && !mp_cache_contains(c, 0, 1) && mp_cache_contains(c, 0, 2));
    use(c, 2, 4); /* E evicts C */
    CHECK(mp_cache_contains(c, 0, 0) && !mp_cache_contains(c, 0, 2) && mp_cache_contains(c, 1, 3));
    mp_cache_stats t, pl[N_LAYERS];
    mp_cache_get_stats(c, &t, pl, true);
    CHECKF(t.hits == 1 && t.misses == 5 && t.evictions == 2 && t.errors == 0,
           "hits %llu misses %llu evictions %llu", (unsigned long long)t.hits,
           (unsigned long long)t.misses, (unsigned long long)t.evictions);
    CHECK(pl[0].evictions == 2 && pl[0].misses == 3 && pl[1].misses == 1 && pl[2].misses == 1);
    CHECK(t.loads == 5 && t.reads == 15 && t.bytes_read >= 5 * (9037 * 2 + 7005));
    mp_cache_get_stats(c, &t, NULL, false);
    CHECK(t.hits == 0 && t.misses == 0); /* reset */
    mp_cache_free(c);
}

static void test_pinning(mp_io_kind kind)
{
    mp_cache *c = make_cache(kind, g_path, 2, &tlru_ops, NULL, NULL);
    if (!c) return;
    mp_expert_ptrs p;
    mp_err err;
    acq(c, 0, 0);
    acq(c, 0, 1);
    /* Every slot pinned: a clear MP_E_BUDGET, nothing changes. */
    mp_err_clear(&err);
    CHECK(mp_cache_acquire(c, 0, 2, &p, &err) == MP_E_BUDGET && strstr(err.msg, "pinned"));
    mp_err_clear(&err);
    CHECK(mp_cache_request(c, 0, 2, MP_CACHE_DEMAND, &err) == MP_E_BUDGET);
    CHECK(mp_cache_request(c, 0, 2, MP_CACHE_PREFETCH, NULL) == MP_E_AGAIN);
    CHECK(mp_cache_contains(c, 0, 0) && mp_cache_contains(c, 0, 1));
    /* A pinned expert acquired twice needs two releases. */
    acq(c, 0, 0);
    mp_cache_release(c, 0, 0);
    mp_cache_release(c, 0, 1); /* only B is evictable now, though A is older */
    acq(c, 0, 2);
    CHECK(mp_cache_contains(c, 0, 0) && !mp_cache_contains(c, 0, 1));
    mp_cache_release(c, 0, 2);
    mp_cache_release(c, 0, 0);
    mp_cache_free(c);
}

/* Decode-like loop with exactly k slots: request the top-k, compute in
 * delivery order, release. Hits are delivered before misses. */
static void test_minimum_and_async(mp_io_kind kind, const char *fault)
{
    enum { K = 2 };
    mp_err err;
    /* A budget below k slots is refused with the minimum in the message. */
    {
        mp_io *io = NULL;
        mp_err_clear(&err);
        CHECK(mp_io_open(kind, g_path, NULL, &io, NULL, 0, &err) == MP_OK);
        uint64_t slot = mp_cache_slot_bytes(fx.locs, N_KEYS, mp_io_align(io));
        mp_cache_config cfg = { .n_layers = N_LAYERS, .n_experts = N_EXPERTS, .locs = fx.locs,
                                .budget_bytes = K * slot - 1, .min_slots = K, .io = io };
        mp_cache *c = NULL;
        CHECK(mp_cache_create(&cfg, &c, NULL, 0, &err) == MP_E_BUDGET && !c &&
              strstr(err.msg, "at least 2 slots"));
        cfg.budget_bytes = K * slot;
        mp_err_clear(&err);
        CHECK(mp_cache_create(&cfg, &c, NULL, 0, &err) == MP_OK && mp_cache_n_slots(c) == K);
        mp_cache_free(c); /* frees io */
    }
    mp_cache *c = make_cache(kind, g_path, K, NULL, fault, NULL);
    if (!c) return;
    uint64_t seed = 99;
    for (int tok = 0; tok < 12; tok++)
        for (uint32_t l = 0; l < N_LAYERS; l++) {
            uint32_t e[K];
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            e[0] = (uint32_t)(seed >> 33) % N_EXPERTS;
            e[1] = (e[0] + 1 + (uint32_t)(seed >> 45) % (N_EXPERTS - 1)) % N_EXPERTS;
            bool hit[K];
            for (int j = 0; j < K; j++) hit[j] = mp_cache_contains(c, l, e[j]);
            mp_err_clear(&err);
            int rq = mp_cache_request_layer(c, l, e, K, &err);
            CHECKF(rq == MP_OK, "%s", err.msg);
            CHECK(mp_cache_outstanding(c) == K);
            int n = 0;
            mp_cache_ready r;
            int rc;
            while ((rc = mp_cache_wait_any(c, &r, &err)) == 1) {
                int j = r.layer == l && r.expert == e[0] ? 0 : 1;
                CHECK(r.layer == l && r.expert == e[j]);
                CHECKF(check_bytes(r.layer, r.expert, &r.ptrs), "wrong bytes %u/%u", l, e[j]);
                if (n == 0 && (hit[0] || hit[1])) CHECK(hit[j]); /* hits first */
                mp_cache_release(c, r.layer, r.expert);
                n++;
            }
            CHECK(rc == 0 && n == K);
        }
    mp_cache_stats t;
    mp_cache_get_stats(c, &t, NULL, false);
    CHECK(t.hits + t.misses == 12 * N_LAYERS * K && t.errors == 0);
    mp_cache_free(c);
}

static void test_prefetch(mp_io_kind kind)
{
    mp_cache *c = make_cache(kind, g_path, 4, &tlru_ops, NULL, NULL);
    if (!c) return;
    mp_err err;
    mp_err_clear(&err);
    CHECK(mp_cache_request(c, 1, 5, MP_CACHE_PREFETCH, &err) == MP_OK);
    CHECK(mp_cache_request(c, 1, 6, MP_CACHE_PREFETCH, &err) == MP_OK);
    CHECK(mp_cache_outstanding(c) == 0); /* prefetches are never delivered */
    mp_cache_ready r;
    CHECK(mp_cache_poll(c, &r, &err) == 0);
    acq(c, 1, 5); /* hit or late hit, never a miss */
    mp_cache_release(c, 1, 5);
    /* A demand on an expert a prefetch is still reading: poll until it lands. */
    CHECK(mp_cache_request(c, 1, 6, MP_CACHE_DEMAND, &err) == MP_OK);
    int rc;
    while ((rc = mp_cache_poll(c, &r, &err)) == MP_E_AGAIN) {}
    CHECK(rc == 1 && r.layer == 1 && r.expert == 6 && check_bytes(1, 6, &r.ptrs));
    mp_cache_release(c, 1, 6);
    mp_cache_stats t;
    mp_cache_get_stats(c, &t, NULL, true);
    CHECK(t.prefetches == 2 && t.prefetch_used == 2 && t.misses == 0 && t.hits + t.late_hits == 2);
    /* Pin all four slots: prefetch is dropped, not blocking, not evicting. */
    for (uint32_t e = 0; e < 4; e++) acq(c, 2, e);
    CHECK(mp_cache_request(c, 3, 0, MP_CACHE_PREFETCH, &err) == MP_E_AGAIN);
    for (uint32_t e = 0; e < 4; e++) CHECK(mp_cache_contains(c, 2, e));
    mp_cache_get_stats(c, &t, NULL, false);
    CHECK(t.prefetch_dropped == 1);
    for (uint32_t e = 0; e < 4; e++) mp_cache_release(c, 2, e);
    mp_cache_free(c);
}

/* With mp_cache_prefetch_own_layer_first (a cache of about k per layer), a
 * prefetch makes room in its own layer first: the layer's other experts
 * are the ones needed furthest ahead when the prediction is right. A
 * predicted expert that is present is guarded from the prefetches until its
 * layer has run; then room comes from another layer. */
static void test_prefetch_room(mp_io_kind kind)
{
    mp_cache *c = make_cache(kind, g_path, 4, &tlru_ops, NULL, NULL);
    if (!c) return;
    mp_cache_prefetch_own_layer_first(c, true);
    use(c, 0, 0); /* the least recent */
    use(c, 0, 1);
    use(c, 1, 2); /* layer 1's least recent */
    use(c, 1, 3);
    CHECK(mp_cache_request(c, 1, 4, MP_CACHE_PREFETCH, NULL) == MP_OK);
    CHECK(mp_cache_present(c, 0, 0) && mp_cache_present(c, 0, 1) && !mp_cache_present(c, 1, 2) &&
          mp_cache_present(c, 1, 3) && mp_cache_present(c, 1, 4));
    CHECK(mp_cache_request(c, 1, 3, MP_CACHE_PREFETCH, NULL) == MP_OK); /* present: guarded */
    CHECK(mp_cache_request(c, 1, 5, MP_CACHE_PREFETCH, NULL) == MP_OK);
    CHECK(!mp_cache_present(c, 0, 0) && mp_cache_present(c, 0, 1) && mp_cache_present(c, 1, 3) &&
          mp_cache_present(c, 1, 4) && mp_cache_present(c, 1, 5));
    use(c, 1, 3);
    use(c, 1, 4);
    use(c, 1, 5);
    mp_cache_layer_done(c, 1); /* the guard ends with the layer */
    CHECK(mp_cache_request(c, 1, 6, MP_CACHE_PREFETCH, NULL) == MP_OK);
    CHECK(!mp_cache_present(c, 1, 3) && mp_cache_present(c, 0, 1) && mp_cache_present(c, 1, 6));
    mp_cache_stats t;
    mp_cache_get_stats(c, &t, NULL, false);
    CHECKF(t.prefetches == 3 && t.prefetch_used == 2 && t.misses == 4, "prefetches %llu used %llu misses %llu",
           (unsigned long long)t.prefetches, (unsigned long long)t.prefetch_used, (unsigned long long)t.misses);
    mp_cache_free(c);
}

/* Reads fail for one expert (an offset inside its down range): a clear
 * error naming the file, layer, expert and offset; nothing stays pinned;
 * other experts still work. */
static void test_io_error(mp_io_kind kind)
{
    const mp_expert_loc *bad = &fx.locs[2 * N_EXPERTS + 3];
    char spec[64];
    snprintf(spec, sizeof spec, "eio_off=%llu", (unsigned long long)(bad->part[2].offset + 10));
    mp_cache *c = make_cache(kind, g_path, 2, &tlru_ops, spec, NULL);
    if (!c) return;
    mp_expert_ptrs p;
    mp_err err;
    for (int round = 0; round < 2; round++) { /* the fault is permanent */
        mp_err_clear(&err);
        CHECK(mp_cache_acquire(c, 2, 3, &p, &err) == MP_E_IO);
        CHECKF(strstr(err.msg, g_path) && strstr(err.msg, "layer 2 expert 3") &&
                   strstr(err.msg, "offset") && strstr(err.msg, strerror(EIO)),
               "message: %s", err.msg);
        CHECK(!mp_cache_contains(c, 2, 3));
    }
    /* Async: the failing expert is delivered as an error, the good one as data. */
    mp_err_clear(&err);
    CHECK(mp_cache_request(c, 2, 3, MP_CACHE_DEMAND, &err) == MP_OK);
    CHECK(mp_cache_request(c, 2, 4, MP_CACHE_DEMAND, &err) == MP_OK);
    int ok = 0, bad_n = 0, rc;
    mp_cache_ready r;
    for (;;) {
        mp_err_clear(&err);
        rc = mp_cache_wait_any(c, &r, &err);
        if (rc == 0) break;
        if (rc == 1) {
            CHECK(r.layer == 2 && r.expert == 4 && check_bytes(2, 4, &r.ptrs));
            mp_cache_release(c, 2, 4);
            ok++;
        } else {
            CHECK(rc == MP_E_IO && r.layer == 2 && r.expert == 3 && strstr(err.msg, "expert 3"));
            bad_n++;
        }
    }
    CHECK(ok == 1 && bad_n == 1);
    /* Both slots usable: no pin was left behind. */
    acq(c, 0, 0);
    acq(c, 0, 1);
    mp_cache_release(c, 0, 0);
    mp_cache_release(c, 0, 1);
    mp_cache_stats t;
    mp_cache_get_stats(c, &t, NULL, false);
    CHECK(t.errors == 3);
    /* abandon drops undelivered demands and their pins. */
    CHECK(mp_cache_request(c, 1, 1, MP_CACHE_DEMAND, &err) == MP_OK);
    CHECK(mp_cache_request(c, 1, 2, MP_CACHE_DEMAND, &err) == MP_OK);
    mp_cache_abandon(c);
    CHECK(mp_cache_outstanding(c) == 0);
    acq(c, 3, 0);
    acq(c, 3, 1);
    mp_cache_release(c, 3, 0);
    mp_cache_release(c, 3, 1);
    mp_cache_free(c);
}

static int verify_calls;
static int verify_fail_1_2(void *ctx, uint32_t layer, uint32_t expert, void *slot,
                           uint64_t slot_bytes, mp_expert_ptrs *ptrs, mp_err *err)
{
    verify_calls++;
    if (!check_bytes(layer, expert, ptrs))
        return mp_err_set(err, MP_E_CHECKSUM, "verify saw wrong bytes");
    if (layer == 1 && expert == 2)
        return mp_err_set(err, MP_E_CHECKSUM, "%s: layer 1 expert 2: checksum mismatch", "pack");
    return MP_OK;
}

static void test_verify(mp_io_kind kind)
{
    mp_cache *c = make_cache(kind, g_path, 3, NULL, NULL, verify_fail_1_2);
    if (!c) return;
    mp_expert_ptrs p;
    mp_err err;
    verify_calls = 0;
    use(c, 1, 1);
    mp_err_clear(&err);
    CHECK(mp_cache_acquire(c, 1, 2, &p, &err) == MP_E_CHECKSUM && strstr(err.msg, "checksum"));
    CHECK(!mp_cache_contains(c, 1, 2));
    use(c, 1, 1); /* hit: not verified again */
    CHECK(verify_calls == 2);
    mp_cache_free(c);
}

/* Many random acquires through a small cache, with faults that must be
 * recovered from; every expert's bytes checked. Several experts pinned at
 * once, as a prefill would. */
static void test_stress(mp_io_kind kind, const char *path, const char *fault, int iters)
{
    mp_cache *c = make_cache(kind, path, 5, NULL, fault, NULL);
    if (!c) return;
    uint64_t s = 7;
    mp_err err;
    for (int it = 0; it < iters; it++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t l = (uint32_t)(s >> 40) % N_LAYERS, e[3];
        int n = 1 + (int)((s >> 20) % 3);
        for (int j = 0; j < n; j++) {
            e[j] = (uint32_t)(s >> (8 * j + 3)) % N_EXPERTS;
            bool dup = false;
            for (int q = 0; q < j; q++) dup |= e[q] == e[j];
            if (dup) e[j] = (e[j] + 1 + j) % N_EXPERTS; /* may still repeat: fine */
        }
        if (it % 3 == 0) { /* a prediction for the next layer */
            mp_cache_request(c, (l + 1) % N_LAYERS, (uint32_t)(s >> 50) % N_EXPERTS,
                             MP_CACHE_PREFETCH, NULL);
        }
        if (it % 2) {
            for (int j = 0; j < n; j++) acq(c, l, e[j]);
        } else {
            for (int j = 0; j < n; j++) {
                mp_err_clear(&err);
                int rc = mp_cache_request(c, l, e[j], MP_CACHE_DEMAND, &err);
                CHECKF(rc == MP_OK, "%s", err.msg);
            }
            mp_cache_ready r;
            int rc, got = 0;
            while ((rc = mp_cache_wait_any(c, &r, &err)) == 1) {
                CHECKF(check_bytes(r.layer, r.expert, &r.ptrs), "wrong bytes %u/%u", r.layer,
                       r.expert);
                got++;
            }
            CHECK(rc == 0 && got == n);
        }
        for (int j = 0; j < n; j++) mp_cache_release(c, l, e[j]);
    }
    mp_cache_stats t;
    mp_cache_get_stats(c, &t, NULL, false);
    CHECK(t.errors == 0 && t.evictions > 0);
    mp_cache_free(c);
}


/* ---- the io fails under the cache ------------------------------------- */

static double secs_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* The file offset of an expert's first read: its lowest range rounded
 * down to the io alignment (4096 for these files). */
static uint64_t first_read_offset(uint32_t l, uint32_t e)
{
    const mp_expert_loc *x = &fx.locs[l * N_EXPERTS + e];
    uint64_t m = UINT64_MAX;
    for (uint32_t i = 0; i < x->n_parts; i++)
        if (x->part[i].offset < m) m = x->part[i].offset;
    return m & ~(uint64_t)4095;
}

/* Every call after the failure returns it at once, with the same message. */
static void refuses_all(mp_cache *c, const char *want)
{
    mp_expert_ptrs p;
    mp_cache_ready r;
    mp_err err;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mp_err_clear(&err);
    CHECKF(mp_cache_acquire(c, 0, 0, &p, &err) == MP_E_IO && !strcmp(err.msg, want), "%s", err.msg);
    mp_err_clear(&err);
    CHECK(mp_cache_request(c, 3, 7, MP_CACHE_DEMAND, &err) == MP_E_IO && !strcmp(err.msg, want));
    CHECK(mp_cache_request(c, 3, 6, MP_CACHE_PREFETCH, NULL) == MP_E_IO);
    mp_err_clear(&err);
    CHECK(mp_cache_wait_any(c, &r, &err) == MP_E_IO && !strcmp(err.msg, want));
    CHECK(mp_cache_poll(c, &r, NULL) == MP_E_IO);
    mp_cache_reap(c);
    mp_cache_abandon(c);
    CHECK(secs_since(&t0) < 0.5);
}

/* A read that never completes: acquire ends after the timeout with
 * exactly "FILE: no read completed for 0.3 s (layer L expert E, offset N)";
 * so does an async demand (the expert before it still delivered); the
 * cache then refuses everything and frees without hanging. */
static void test_stall(mp_io_kind kind)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    g_timeout_ms = 300;
    char want[700];
    mp_cache *c = make_cache(kind, g_path, 3, &tlru_ops, "stall", NULL);
    if (c) {
        mp_expert_ptrs p;
        mp_err err;
        mp_err_clear(&err);
        CHECK(mp_cache_acquire(c, 2, 3, &p, &err) == MP_E_IO);
        snprintf(want, sizeof want, "%s: no read completed for 0.3 s (layer 2 expert 3, offset %llu)",
                 g_path, (unsigned long long)first_read_offset(2, 3));
        CHECKF(!strcmp(err.msg, want), "message '%s', want '%s'", err.msg, want);
        double s = secs_since(&t0);
        CHECKF(s >= 0.29 && s < 2.0, "stall reported after %.2f s", s);
        refuses_all(c, want);
        mp_cache_stats t;
        mp_cache_get_stats(c, &t, NULL, false);
        CHECK(t.misses == 1);
        mp_cache_free(c);
    }
    /* async: the 4th read (the second expert's first) stalls */
    c = make_cache(kind, g_path, 3, &tlru_ops, "stall=4", NULL);
    if (c) {
        mp_err err;
        mp_err_clear(&err);
        uint32_t e[2] = { 0, 1 };
        CHECK(mp_cache_request_layer(c, 0, e, 2, &err) == MP_OK);
        mp_cache_ready r;
        CHECK(mp_cache_wait_any(c, &r, &err) == 1 && r.layer == 0 && r.expert == 0 &&
              check_bytes(0, 0, &r.ptrs));
        mp_cache_release(c, 0, 0);
        mp_err_clear(&err);
        CHECK(mp_cache_wait_any(c, &r, &err) == MP_E_IO && r.layer == 0 && r.expert == 1);
        snprintf(want, sizeof want, "%s: no read completed for 0.3 s (layer 0 expert 1, offset %llu)",
                 g_path, (unsigned long long)first_read_offset(0, 1));
        CHECKF(!strcmp(err.msg, want), "message '%s', want '%s'", err.msg, want);
        refuses_all(c, want);
        mp_cache_free(c);
    }
    g_timeout_ms = 0;
    double s = secs_since(&t0);
    CHECKF(s < 3.0, "two stalls took %.2f s", s);
}

/* A submit that fails part way or starts nothing (spec), on the nth load:
 * "FILE: layer L expert E: read at offset N: cannot start it: ..."; the
 * slot is never reused (its reads may be in the kernel), every later call
 * is refused, free does not hang. */
static void test_submit_failure(mp_io_kind kind, const char *spec, bool second)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    g_timeout_ms = 500;
    mp_cache *c = make_cache(kind, g_path, 3, &tlru_ops, spec, NULL);
    g_timeout_ms = 0;
    if (!c) return;
    mp_expert_ptrs p;
    mp_err err;
    if (second) acq(c, 1, 0), mp_cache_release(c, 1, 0);
    mp_err_clear(&err);
    CHECK(mp_cache_acquire(c, 1, 1, &p, &err) == MP_E_IO);
    char want[700];
    int n = snprintf(want, sizeof want, "%s: layer 1 expert 1: read at offset %llu: cannot start it: ",
                     g_path, (unsigned long long)first_read_offset(1, 1));
    CHECKF(!strncmp(err.msg, want, (size_t)n) && strstr(err.msg, "(injected)"),
           "%s: message '%s', want '%s...'", spec, err.msg, want);
    snprintf(want, sizeof want, "%s", err.msg);
    refuses_all(c, want);
    mp_cache_free(c);
    double s = secs_since(&t0);
    CHECKF(s < 2.0, "%s: %.2f s", spec, s);

    /* a prefetch that hits the failure: the demand after it is refused */
    c = make_cache(kind, g_path, 3, &tlru_ops, spec, NULL);
    if (!c) return;
    if (second) acq(c, 1, 0), mp_cache_release(c, 1, 0);
    CHECK(mp_cache_request(c, 2, 2, MP_CACHE_PREFETCH, NULL) == MP_E_IO);
    mp_err_clear(&err);
    CHECKF(mp_cache_acquire(c, 2, 2, &p, &err) == MP_E_IO && strstr(err.msg, "layer 2 expert 2"),
           "%s", err.msg);
    mp_cache_free(c);
}

/* A device whose O_DIRECT alignment (64 KiB here) is above a page: the
 * slab, every slot and every span are aligned to it, with and without
 * huge pages, and the bytes are right. */
static void test_big_align(mp_io_kind kind)
{
    for (int huge = 0; huge < 2; huge++) {
        g_hugepages = huge;
        mp_cache *c = make_cache(kind, g_path, 4, NULL, "align=65536", NULL);
        g_hugepages = false;
        if (!c) continue;
        CHECK(mp_io_align(mp_cache_io(c)) == 65536 && mp_cache_slot_size(c) % 65536 == 0);
        for (uint32_t k = 0; k < 12; k++) {
            uint32_t l = k % N_LAYERS, e = (k * 3) % N_EXPERTS;
            mp_expert_ptrs p;
            mp_err err;
            mp_err_clear(&err);
            int rc = mp_cache_acquire(c, l, e, &p, &err);
            CHECKF(rc == MP_OK, "%s", err.msg);
            if (rc) continue;
            CHECK(check_bytes(l, e, &p));
            const mp_expert_loc *x = &fx.locs[l * N_EXPERTS + e];
            for (uint32_t i = 0; i < p.n_parts; i++)
                CHECKF((uintptr_t)p.part[i] % 65536 == x->part[i].offset % 65536,
                       "layer %u expert %u part %u at %p: the span is not 64 KiB aligned", l, e, i,
                       p.part[i]);
            mp_cache_release(c, l, e);
        }
        mp_cache_free(c);
    }
}

/* Everything on one backend. */
static void run_all(mp_io_kind kind)
{
    test_eviction_order(kind, &tlru_ops);
    const mp_policy_ops *lru = mp_policy_find("lru");
    if (lru) test_eviction_order(kind, lru);
    test_pinning(kind);
    test_minimum_and_async(kind, NULL);
    test_minimum_and_async(kind, "seed=5,short=0.3,eagain=0.2,delay=0.2,delay_us=200");
    test_prefetch(kind);
    test_prefetch_room(kind);
    test_io_error(kind);
    test_verify(kind);
    test_stress(kind, g_path, "seed=11,short=0.2,eagain=0.1,delay=0.1,delay_us=100", 600);
    test_stall(kind);
    test_submit_failure(kind, "submit_fail", false);
    test_submit_failure(kind, "submit_fail=2", true);
    test_submit_failure(kind, "submit_zero", false);
    test_submit_failure(kind, "submit_zero=2", true);
    test_big_align(kind);
    g_hugepages = true; /* a huge-page slab */
    test_stress(kind, g_path, NULL, 100);
    g_hugepages = false;
}

/* Writes the fixture file; exits 77 if it cannot. */
static void setup(const char *prog)
{
    char name[64];
    snprintf(name, sizeof name, "%s.%d.bin", prog, (int)getpid());
    if (mp_fixture_make(&fx, mp_test_build_dir(), name, N_LAYERS, N_EXPERTS) < 0)
        MP_TEST_SKIP("cannot write %s/%s", mp_test_build_dir(), name);
    g_path = fx.path;
}

/* The same experts from a file on tmpfs (O_DIRECT, or buffered where
 * refused). */
static void test_tmpfs(mp_io_kind kind, const char *prog)
{
    char name[64];
    mp_fixture shm;
    snprintf(name, sizeof name, "mp_%s.%d.bin", prog, (int)getpid());
    if (mp_fixture_make(&shm, "/dev/shm", name, N_LAYERS, N_EXPERTS) == 0)
        test_stress(kind, shm.path, NULL, 200);
    mp_fixture_free(&shm);
}

#endif
