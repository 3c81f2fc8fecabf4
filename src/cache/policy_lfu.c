/* "lfu-decay": least frequently used, with exponentially decaying counts
 * that outlive eviction.
 *
 * Every key (expert) has a score: the sum over its past uses of g^t, where t
 * is the policy's event clock (fills and hits) and g = 2^(1 / (16 n_slots)).
 * Comparing such sums is the same as comparing use counts that halve every
 * 16 x n_slots events, and among keys with equal counts the one used last
 * scores higher, so recency breaks ties. Keeping the scores of evicted keys
 * (one double per key, n_keys of them) is what makes this better than LRU on
 * routing traces: routing is skewed, a hot expert that was pushed out comes
 * back with its history and is not the next victim.
 *
 * Resident slots sit in a binary min-heap by their key's score; a use only
 * raises a score, so it is one sift-down: O(log n_slots). The victim is the
 * lowest-scored evictable slot, found by a best-first walk of the heap that
 * passes over pinned slots: O((1 + p) log p) for p pinned slots passed.
 *
 * Prefetches: a slot filled by a prefetch is not a use, so it adds nothing to
 * the score and waits in a cold FIFO outside the heap. Its first hit counts
 * as a use and moves it into the heap. Unused prefetches are evicted with the
 * same preference as in "lru": past a grace period of n_slots events, before
 * any heap slot; within it, only when no heap slot can go. */
#include "cache/policy.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

#define LFU_HALF_LIFE_SLOTS 16.0 /* half-life of a count, in n_slots events */
#define LFU_RESCALE_AT 1e250     /* rescale all scores before they overflow */

enum { LFU_NONE = 0, LFU_HEAP = 1, LFU_COLD = 2 };

typedef struct lfu_state {
    uint32_t n_slots, n_keys;
    double *score;       /* (n_keys) decayed use count, scaled by inc */
    double inc;          /* what one use adds now: g^clock, rescaled */
    double growth;       /* g */
    uint32_t *slot_key;  /* (n_slots) */
    uint8_t *where;      /* (n_slots) LFU_NONE/HEAP/COLD */
    uint32_t *heap;      /* (n_slots) slots; heap[0] has the lowest score */
    uint32_t *heap_pos;  /* (n_slots) index of the slot in heap */
    uint32_t heap_len;
    uint32_t *walk;      /* (n_slots) scratch: heap indices for the victim walk */
    uint32_t *cprev, *cnext; /* (n_slots + 1) cold FIFO, sentinel n_slots */
    uint64_t *filled_at; /* (n_slots) clock at a prefetch fill */
    uint64_t clock;
} lfu_state;

static double lfu_slot_score(const lfu_state *s, uint32_t slot) { return s->score[s->slot_key[slot]]; }

static void lfu_heap_set(lfu_state *s, uint32_t i, uint32_t slot)
{
    s->heap[i] = slot;
    s->heap_pos[slot] = i;
}

static void lfu_sift_up(lfu_state *s, uint32_t i)
{
    uint32_t slot = s->heap[i];
    double sc = lfu_slot_score(s, slot);
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (lfu_slot_score(s, s->heap[p]) <= sc) break;
        lfu_heap_set(s, i, s->heap[p]);
        i = p;
    }
    lfu_heap_set(s, i, slot);
}

static void lfu_sift_down(lfu_state *s, uint32_t i)
{
    uint32_t slot = s->heap[i];
    double sc = lfu_slot_score(s, slot);
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= s->heap_len) break;
        if (c + 1 < s->heap_len && lfu_slot_score(s, s->heap[c + 1]) < lfu_slot_score(s, s->heap[c])) c++;
        if (lfu_slot_score(s, s->heap[c]) >= sc) break;
        lfu_heap_set(s, i, s->heap[c]);
        i = c;
    }
    lfu_heap_set(s, i, slot);
}

static void lfu_heap_push(lfu_state *s, uint32_t slot)
{
    lfu_heap_set(s, s->heap_len++, slot);
    lfu_sift_up(s, s->heap_len - 1);
    s->where[slot] = LFU_HEAP;
}

static void lfu_heap_remove(lfu_state *s, uint32_t slot)
{
    uint32_t i = s->heap_pos[slot];
    uint32_t last = s->heap[--s->heap_len];
    s->where[slot] = LFU_NONE;
    if (i == s->heap_len) return;
    lfu_heap_set(s, i, last);
    lfu_sift_up(s, i);
    lfu_sift_down(s, s->heap_pos[last]);
}

static void lfu_cold_unlink(lfu_state *s, uint32_t slot)
{
    s->cnext[s->cprev[slot]] = s->cnext[slot];
    s->cprev[s->cnext[slot]] = s->cprev[slot];
    s->where[slot] = LFU_NONE;
}

static void lfu_cold_push(lfu_state *s, uint32_t slot)
{
    uint32_t head = s->n_slots;
    s->cnext[slot] = head;
    s->cprev[slot] = s->cprev[head];
    s->cnext[s->cprev[head]] = slot;
    s->cprev[head] = slot;
    s->where[slot] = LFU_COLD;
}

static void lfu_detach(lfu_state *s, uint32_t slot)
{
    if (s->where[slot] == LFU_HEAP) lfu_heap_remove(s, slot);
    else if (s->where[slot] == LFU_COLD) lfu_cold_unlink(s, slot);
}

/* Advances the clock; a use of key (UINT32_MAX: none) adds g^clock. */
static void lfu_tick(lfu_state *s, uint32_t key)
{
    s->clock++;
    s->inc *= s->growth;
    if (s->inc > LFU_RESCALE_AT) {
        /* Scaling every score by one positive factor keeps the heap order. */
        for (uint32_t k = 0; k < s->n_keys; k++) s->score[k] /= LFU_RESCALE_AT;
        s->inc /= LFU_RESCALE_AT;
    }
    if (key != UINT32_MAX) s->score[key] += s->inc;
}

static void lfu_destroy(void *st)
{
    lfu_state *s = st;
    if (!s) return;
    free(s->score);
    free(s->slot_key);
    free(s->where);
    free(s->heap);
    free(s->heap_pos);
    free(s->walk);
    free(s->cprev);
    free(s->cnext);
    free(s->filled_at);
    free(s);
}

static void *lfu_create(uint32_t n_slots, uint32_t n_keys)
{
    lfu_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t ns = (size_t)n_slots + 1;
    s->n_slots = n_slots;
    s->n_keys = n_keys;
    s->score = calloc((size_t)n_keys + 1, sizeof *s->score);
    s->slot_key = calloc(ns, sizeof *s->slot_key);
    s->where = calloc(ns, 1);
    s->heap = calloc(ns, sizeof *s->heap);
    s->heap_pos = calloc(ns, sizeof *s->heap_pos);
    s->walk = calloc(ns, sizeof *s->walk);
    s->cprev = calloc(ns, sizeof *s->cprev);
    s->cnext = calloc(ns, sizeof *s->cnext);
    s->filled_at = calloc(ns, sizeof *s->filled_at);
    if (!s->score || !s->slot_key || !s->where || !s->heap || !s->heap_pos || !s->walk || !s->cprev ||
        !s->cnext || !s->filled_at) {
        lfu_destroy(s);
        return NULL;
    }
    s->inc = 1.0;
    s->growth = exp2(1.0 / (LFU_HALF_LIFE_SLOTS * (n_slots ? n_slots : 1)));
    s->cprev[n_slots] = s->cnext[n_slots] = n_slots;
    return s;
}

static void lfu_on_fill(void *st, uint32_t slot, uint32_t key, mp_fill_kind kind)
{
    lfu_state *s = st;
    assert(slot < s->n_slots && key < s->n_keys);
    lfu_detach(s, slot);
    s->slot_key[slot] = key;
    if (kind == MP_FILL_PREFETCH) {
        lfu_tick(s, UINT32_MAX);
        s->filled_at[slot] = s->clock;
        lfu_cold_push(s, slot);
    } else {
        lfu_tick(s, key);
        lfu_heap_push(s, slot);
    }
}

static void lfu_on_hit(void *st, uint32_t slot, uint32_t key)
{
    lfu_state *s = st;
    assert(slot < s->n_slots && key < s->n_keys);
    if (s->where[slot] == LFU_HEAP && s->slot_key[slot] == key) {
        lfu_tick(s, key);
        lfu_sift_down(s, s->heap_pos[slot]);
        return;
    }
    lfu_detach(s, slot);
    s->slot_key[slot] = key;
    lfu_tick(s, key);
    lfu_heap_push(s, slot);
}

static void lfu_on_evict(void *st, uint32_t slot, uint32_t key)
{
    (void)key;
    lfu_state *s = st;
    assert(slot < s->n_slots);
    lfu_detach(s, slot);
}

static void lfu_on_expire(void *st, uint32_t slot)
{
    lfu_state *s = st;
    assert(slot < s->n_slots);
    if (s->where[slot] != LFU_COLD) return;
    /* to the head of the cold list, grace period over */
    lfu_cold_unlink(s, slot);
    uint32_t head = s->n_slots, first = s->cnext[head];
    s->cprev[slot] = head;
    s->cnext[slot] = first;
    s->cprev[first] = slot;
    s->cnext[head] = slot;
    s->where[slot] = LFU_COLD;
    s->filled_at[slot] = 0;
}

/* Best-first walk of the heap: walk[] is itself a min-heap of heap indices,
 * holding the frontier below the pinned slots passed so far. */
static int64_t lfu_heap_victim(lfu_state *s, mp_evictable_fn evictable, void *ctx)
{
    if (s->heap_len == 0) return -1;
    uint32_t n = 0;
    s->walk[n++] = 0;
    while (n > 0) {
        uint32_t i = s->walk[0];
        uint32_t slot = s->heap[i];
        if (evictable(ctx, slot)) return slot;
        /* pop walk[0] */
        uint32_t last = s->walk[--n];
        uint32_t j = 0;
        if (n > 0) {
            double sc = lfu_slot_score(s, s->heap[last]);
            for (;;) {
                uint32_t c = 2 * j + 1;
                if (c >= n) break;
                if (c + 1 < n && lfu_slot_score(s, s->heap[s->walk[c + 1]]) <
                                     lfu_slot_score(s, s->heap[s->walk[c]]))
                    c++;
                if (lfu_slot_score(s, s->heap[s->walk[c]]) >= sc) break;
                s->walk[j] = s->walk[c];
                j = c;
            }
            s->walk[j] = last;
        }
        /* push the children of heap index i; the walk never holds more than
         * heap_len entries since each heap index enters at most once. */
        for (uint32_t c = 2 * i + 1; c <= 2 * i + 2 && c < s->heap_len; c++) {
            double sc = lfu_slot_score(s, s->heap[c]);
            uint32_t k = n++;
            while (k > 0) {
                uint32_t p = (k - 1) / 2;
                if (lfu_slot_score(s, s->heap[s->walk[p]]) <= sc) break;
                s->walk[k] = s->walk[p];
                k = p;
            }
            s->walk[k] = c;
        }
    }
    return -1;
}

static int64_t lfu_victim(void *st, mp_evictable_fn evictable, void *ctx)
{
    lfu_state *s = st;
    uint32_t head = s->n_slots;
    for (uint32_t i = s->cnext[head]; i != head; i = s->cnext[i]) {
        if (s->filled_at[i] + s->n_slots > s->clock) break;
        if (evictable(ctx, i)) return i;
    }
    int64_t v = lfu_heap_victim(s, evictable, ctx);
    if (v >= 0) return v;
    for (uint32_t i = s->cnext[head]; i != head; i = s->cnext[i])
        if (evictable(ctx, i)) return i;
    return -1;
}

const mp_policy_ops mp_policy_lfu_decay_ops = {
    .name = "lfu-decay",
    .description = "least frequently used, counts halve every 16 x slots accesses and outlive eviction",
    .create = lfu_create,
    .destroy = lfu_destroy,
    .on_fill = lfu_on_fill,
    .on_hit = lfu_on_hit,
    .on_evict = lfu_on_evict,
    .on_expire = lfu_on_expire,
    .victim = lfu_victim,
};
