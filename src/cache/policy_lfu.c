/* "lfu-decay" and "lfu-cycle": least frequently used, with exponentially
 * decaying counts that outlive eviction; "lfu-cycle" also weighs how soon an
 * expert's layer runs again.
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
 * "lfu-cycle": the forward pass visits layers in order, 0 .. L-1, then again
 * for the next token, so an expert of the layer after the current one gets
 * its next chance to be used one layer from now, and one of the current layer
 * (outside the experts in use) L layers from now: keeping it ties its slot up
 * d = ((layer - current - 1) mod L) + 1 layers, the current layer being that
 * of the last demand use (a prefetch fill does not move it). lfu-cycle evicts
 * the lowest score / sqrt(d). Mostly this orders the many rarely used experts
 * that every layer leaves behind: those of the layer that just ran go first,
 * those whose layer is next are kept for it. score / d (hits per slot-layer)
 * does as well on the FLAME-MoE-290M trace, but the square root never lost
 * to lfu-decay on synthetic traces, where score / d fell below it with
 * caches of half a layer's experts. With one cache for all layers on FLAME
 * it hits 0.6-0.9 points more than lfu-decay at every size from 4 to 32
 * experts per layer, on either half of the sequences
 * (docs/measurements/policy-2026-12-06.md). With one layer (d is always 1)
 * it is lfu-decay exactly. Keys of a layer are consecutive: layer = key /
 * n_experts (the create argument).
 *
 * Resident slots sit in binary min-heaps by their key's score, one heap per
 * layer for lfu-cycle (one in all for lfu-decay): a use only raises a score,
 * so it is one sift-down: O(log n_slots). The victim is the lowest-scored
 * evictable slot of each heap, found by a best-first walk that passes over
 * pinned slots (O((1 + p) log p) for p pinned slots passed), then the lowest
 * score / sqrt(d) among the heaps: O(L) more per eviction, for L layers.
 *
 * Prefetches: a slot filled by a prefetch is not a use, so it adds nothing to
 * the score and waits in a cold FIFO outside the heaps. Its first hit counts
 * as a use and moves it into a heap. Unused prefetches are evicted with the
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
    uint32_t n_experts;  /* keys per layer (lfu-cycle); n_keys for lfu-decay */
    uint32_t n_heaps;    /* layers: ceil(n_keys / n_experts) */
    uint32_t hcap;       /* entries per heap: n_slots, or min(n_slots, n_experts) per layer */
    uint32_t cur;        /* layer of the last demand use */
    double *rsqrt_d;     /* (n_heaps + 1) 1 / sqrt(d) for d = 1 .. n_heaps */
    double *score;       /* (n_keys) decayed use count, scaled by inc */
    double inc;          /* what one use adds now: g^clock, rescaled */
    double growth;       /* g */
    uint32_t *slot_key;  /* (n_slots) */
    uint8_t *where;      /* (n_slots) LFU_NONE/HEAP/COLD */
    uint32_t *heap;      /* (n_heaps x hcap) slots; heap h is heap[h * hcap ..], lowest score first */
    uint32_t *heap_len;  /* (n_heaps) */
    uint32_t *heap_pos;  /* (n_slots) index of the slot in its heap */
    uint32_t *walk;      /* (hcap) scratch: heap indices for the victim walk */
    uint32_t *cprev, *cnext; /* (n_slots + 1) cold FIFO, sentinel n_slots */
    uint64_t *filled_at; /* (n_slots) clock at a prefetch fill */
    uint64_t clock;
} lfu_state;

static double lfu_slot_score(const lfu_state *s, uint32_t slot) { return s->score[s->slot_key[slot]]; }

static uint32_t lfu_layer(const lfu_state *s, uint32_t key) { return key / s->n_experts; }

static uint32_t *lfu_heap(lfu_state *s, uint32_t h) { return s->heap + (size_t)h * s->hcap; }

static void lfu_heap_set(lfu_state *s, uint32_t *hp, uint32_t i, uint32_t slot)
{
    hp[i] = slot;
    s->heap_pos[slot] = i;
}

static void lfu_sift_up(lfu_state *s, uint32_t h, uint32_t i)
{
    uint32_t *hp = lfu_heap(s, h);
    uint32_t slot = hp[i];
    double sc = lfu_slot_score(s, slot);
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (lfu_slot_score(s, hp[p]) <= sc) break;
        lfu_heap_set(s, hp, i, hp[p]);
        i = p;
    }
    lfu_heap_set(s, hp, i, slot);
}

static void lfu_sift_down(lfu_state *s, uint32_t h, uint32_t i)
{
    uint32_t *hp = lfu_heap(s, h);
    uint32_t n = s->heap_len[h];
    uint32_t slot = hp[i];
    double sc = lfu_slot_score(s, slot);
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && lfu_slot_score(s, hp[c + 1]) < lfu_slot_score(s, hp[c])) c++;
        if (lfu_slot_score(s, hp[c]) >= sc) break;
        lfu_heap_set(s, hp, i, hp[c]);
        i = c;
    }
    lfu_heap_set(s, hp, i, slot);
}

static uint32_t lfu_heap_of(const lfu_state *s, uint32_t slot) { return lfu_layer(s, s->slot_key[slot]); }

static void lfu_heap_push(lfu_state *s, uint32_t slot)
{
    uint32_t h = lfu_heap_of(s, slot);
    /* a heap never holds more than hcap: at most n_slots slots, and the
     * cache keeps a key in one slot at most (policy.h), so a layer's heap
     * holds at most n_experts; a caller that breaks this gets an assert, not
     * an overflow */
    assert(s->heap_len[h] < s->hcap);
    if (s->heap_len[h] >= s->hcap) return;
    lfu_heap_set(s, lfu_heap(s, h), s->heap_len[h]++, slot);
    lfu_sift_up(s, h, s->heap_len[h] - 1);
    s->where[slot] = LFU_HEAP;
}

static void lfu_heap_remove(lfu_state *s, uint32_t slot)
{
    uint32_t h = lfu_heap_of(s, slot);
    uint32_t *hp = lfu_heap(s, h);
    uint32_t i = s->heap_pos[slot];
    uint32_t last = hp[--s->heap_len[h]];
    s->where[slot] = LFU_NONE;
    if (i == s->heap_len[h]) return;
    lfu_heap_set(s, hp, i, last);
    lfu_sift_up(s, h, i);
    lfu_sift_down(s, h, s->heap_pos[last]);
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

/* Advances the clock; a use of key (UINT32_MAX: none) adds g^clock and makes
 * its layer the current one. */
static void lfu_tick(lfu_state *s, uint32_t key)
{
    s->clock++;
    s->inc *= s->growth;
    if (s->inc > LFU_RESCALE_AT) {
        /* Scaling every score by one positive factor keeps the heap order. */
        for (uint32_t k = 0; k < s->n_keys; k++) s->score[k] /= LFU_RESCALE_AT;
        s->inc /= LFU_RESCALE_AT;
    }
    if (key != UINT32_MAX) {
        s->score[key] += s->inc;
        s->cur = lfu_layer(s, key);
    }
}

static void lfu_destroy(void *st)
{
    lfu_state *s = st;
    if (!s) return;
    free(s->score);
    free(s->rsqrt_d);
    free(s->slot_key);
    free(s->where);
    free(s->heap);
    free(s->heap_len);
    free(s->heap_pos);
    free(s->walk);
    free(s->cprev);
    free(s->cnext);
    free(s->filled_at);
    free(s);
}

/* n_experts: keys per heap; n_keys for a single heap. */
static void *lfu_create_heaps(uint32_t n_slots, uint32_t n_keys, uint32_t n_experts)
{
    lfu_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t ns = (size_t)n_slots + 1;
    if (n_experts == 0 || n_experts > n_keys) n_experts = n_keys ? n_keys : 1;
    s->n_slots = n_slots;
    s->n_keys = n_keys;
    s->n_experts = n_experts;
    s->n_heaps = n_keys ? (n_keys + n_experts - 1) / n_experts : 1;
    /* one heap holds up to every slot; a layer's heap up to its experts */
    s->hcap = s->n_heaps == 1 || n_slots < n_experts ? n_slots : n_experts;
    s->score = calloc((size_t)n_keys + 1, sizeof *s->score);
    s->rsqrt_d = calloc((size_t)s->n_heaps + 1, sizeof *s->rsqrt_d);
    s->slot_key = calloc(ns, sizeof *s->slot_key);
    s->where = calloc(ns, 1);
    s->heap = calloc((size_t)s->n_heaps * s->hcap + 1, sizeof *s->heap);
    s->heap_len = calloc(s->n_heaps, sizeof *s->heap_len);
    s->heap_pos = calloc(ns, sizeof *s->heap_pos);
    s->walk = calloc((size_t)s->hcap + 1, sizeof *s->walk);
    s->cprev = calloc(ns, sizeof *s->cprev);
    s->cnext = calloc(ns, sizeof *s->cnext);
    s->filled_at = calloc(ns, sizeof *s->filled_at);
    if (!s->score || !s->rsqrt_d || !s->slot_key || !s->where || !s->heap || !s->heap_len || !s->heap_pos || !s->walk ||
        !s->cprev || !s->cnext || !s->filled_at) {
        lfu_destroy(s);
        return NULL;
    }
    s->inc = 1.0;
    s->growth = exp2(1.0 / (LFU_HALF_LIFE_SLOTS * (n_slots ? n_slots : 1)));
    s->cprev[n_slots] = s->cnext[n_slots] = n_slots;
    for (uint32_t d = 1; d <= s->n_heaps; d++) s->rsqrt_d[d] = 1.0 / sqrt((double)d);
    return s;
}

static void *lfu_create(uint32_t n_slots, uint32_t n_keys, uint32_t n_experts)
{
    (void)n_experts;
    return lfu_create_heaps(n_slots, n_keys, n_keys);
}

static void *lfu_cycle_create(uint32_t n_slots, uint32_t n_keys, uint32_t n_experts)
{
    return lfu_create_heaps(n_slots, n_keys, n_experts);
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
        lfu_sift_down(s, lfu_heap_of(s, slot), s->heap_pos[slot]);
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

/* Best-first walk of heap h: walk[] is itself a min-heap of heap indices,
 * holding the frontier below the pinned slots passed so far. */
static int64_t lfu_heap_victim(lfu_state *s, uint32_t h, mp_evictable_fn evictable, void *ctx)
{
    const uint32_t *hp = lfu_heap(s, h);
    uint32_t len = s->heap_len[h];
    if (len == 0) return -1;
    uint32_t n = 0;
    s->walk[n++] = 0;
    while (n > 0) {
        uint32_t i = s->walk[0];
        uint32_t slot = hp[i];
        if (evictable(ctx, slot)) return slot;
        /* pop walk[0] */
        uint32_t last = s->walk[--n];
        uint32_t j = 0;
        if (n > 0) {
            double sc = lfu_slot_score(s, hp[last]);
            for (;;) {
                uint32_t c = 2 * j + 1;
                if (c >= n) break;
                if (c + 1 < n && lfu_slot_score(s, hp[s->walk[c + 1]]) < lfu_slot_score(s, hp[s->walk[c]])) c++;
                if (lfu_slot_score(s, hp[s->walk[c]]) >= sc) break;
                s->walk[j] = s->walk[c];
                j = c;
            }
            s->walk[j] = last;
        }
        /* push the children of heap index i; the walk never holds more than
         * len entries since each heap index enters at most once. */
        for (uint32_t c = 2 * i + 1; c <= 2 * i + 2 && c < len; c++) {
            double sc = lfu_slot_score(s, hp[c]);
            uint32_t k = n++;
            while (k > 0) {
                uint32_t p = (k - 1) / 2;
                if (lfu_slot_score(s, hp[s->walk[p]]) <= sc) break;
                s->walk[k] = s->walk[p];
                k = p;
            }
            s->walk[k] = c;
        }
    }
    return -1;
}

/* The lowest score / sqrt(d) over the heaps' own victims. Heaps are visited from
 * the current layer (d = L) down to the next one (d = 1), so a tie goes to
 * the layer whose turn is farthest. */
static int64_t lfu_heaps_victim(lfu_state *s, mp_evictable_fn evictable, void *ctx)
{
    uint32_t L = s->n_heaps;
    int64_t best = -1;
    double best_v = 0;
    for (uint32_t j = 0; j < L; j++) {
        uint32_t h = (s->cur + L - j) % L; /* d = L - j */
        if (s->heap_len[h] == 0) continue;
        int64_t v = lfu_heap_victim(s, h, evictable, ctx);
        if (v < 0) continue;
        double val = lfu_slot_score(s, (uint32_t)v) * s->rsqrt_d[L - j];
        if (best < 0 || val < best_v) {
            best = v;
            best_v = val;
        }
    }
    return best;
}

static int64_t lfu_victim(void *st, mp_evictable_fn evictable, void *ctx)
{
    lfu_state *s = st;
    uint32_t head = s->n_slots;
    for (uint32_t i = s->cnext[head]; i != head; i = s->cnext[i]) {
        if (s->filled_at[i] + s->n_slots > s->clock) break;
        if (evictable(ctx, i)) return i;
    }
    int64_t v = lfu_heaps_victim(s, evictable, ctx);
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

const mp_policy_ops mp_policy_lfu_cycle_ops = {
    .name = "lfu-cycle",
    .description = "lfu-decay, each count divided by the square root of the layers until its layer runs again",
    .create = lfu_cycle_create,
    .destroy = lfu_destroy,
    .on_fill = lfu_on_fill,
    .on_hit = lfu_on_hit,
    .on_evict = lfu_on_evict,
    .on_expire = lfu_on_expire,
    .victim = lfu_victim,
};
