/* "lru": least recently used, O(1) per event, with prefetch-aware insertion.
 *
 * Two intrusive doubly-linked lists over the slots:
 *   hot:  slots filled on demand or hit at least once, most recent at the head;
 *   cold: slots filled by a prefetch and not used yet, in fill order.
 * A hit moves a slot to the head of hot (so a prefetch is promoted on first
 * use). The victim is, in order of preference:
 *   1. the oldest evictable cold slot whose grace period is over: an unused
 *      prefetch gets n_slots events (fills and hits) to be used, then it goes
 *      before any slot that has proven itself;
 *   2. the least recently used evictable hot slot (scanning from the tail,
 *      skipping pinned slots: cost O(1 + pinned slots passed));
 *   3. the oldest evictable cold slot still in its grace period. */
#include "cache/policy.h"

#include <assert.h>
#include <stdlib.h>

enum { LRU_NONE = 0, LRU_HOT = 1, LRU_COLD = 2 };

typedef struct lru_state {
    uint32_t n_slots;
    uint32_t hot, cold;   /* sentinel indices: n_slots and n_slots + 1 */
    uint32_t *prev, *next; /* (n_slots + 2) */
    uint8_t *where;        /* (n_slots) LRU_NONE/HOT/COLD */
    uint64_t *filled_at;   /* (n_slots) clock at a prefetch fill */
    uint64_t clock;        /* events seen (fills and hits) */
} lru_state;

static void lru_unlink(lru_state *s, uint32_t i)
{
    s->next[s->prev[i]] = s->next[i];
    s->prev[s->next[i]] = s->prev[i];
    s->where[i] = LRU_NONE;
}

/* Inserts i right after the sentinel head (the most recent end). */
static void lru_push_front(lru_state *s, uint32_t head, uint32_t i)
{
    s->prev[i] = head;
    s->next[i] = s->next[head];
    s->prev[s->next[head]] = i;
    s->next[head] = i;
}

/* Inserts i right before the sentinel: the newest end of a FIFO whose oldest
 * entry is next[head]. */
static void lru_push_back(lru_state *s, uint32_t head, uint32_t i)
{
    s->next[i] = head;
    s->prev[i] = s->prev[head];
    s->next[s->prev[head]] = i;
    s->prev[head] = i;
}

static void lru_destroy(void *st)
{
    lru_state *s = st;
    if (!s) return;
    free(s->prev);
    free(s->next);
    free(s->where);
    free(s->filled_at);
    free(s);
}

static void *lru_create(uint32_t n_slots, uint32_t n_keys, uint32_t n_experts)
{
    (void)n_keys;
    (void)n_experts;
    lru_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n_slots = n_slots;
    s->hot = n_slots;
    s->cold = n_slots + 1;
    s->prev = malloc(((size_t)n_slots + 2) * sizeof *s->prev);
    s->next = malloc(((size_t)n_slots + 2) * sizeof *s->next);
    s->where = calloc((size_t)n_slots + 1, 1);
    s->filled_at = calloc((size_t)n_slots + 1, sizeof *s->filled_at);
    if (!s->prev || !s->next || !s->where || !s->filled_at) {
        lru_destroy(s);
        return NULL;
    }
    s->prev[s->hot] = s->next[s->hot] = s->hot;
    s->prev[s->cold] = s->next[s->cold] = s->cold;
    return s;
}

static void lru_on_fill(void *st, uint32_t slot, uint32_t key, mp_fill_kind kind)
{
    (void)key;
    lru_state *s = st;
    assert(slot < s->n_slots);
    if (s->where[slot] != LRU_NONE) lru_unlink(s, slot);
    s->clock++;
    if (kind == MP_FILL_PREFETCH) {
        lru_push_back(s, s->cold, slot);
        s->where[slot] = LRU_COLD;
        s->filled_at[slot] = s->clock;
    } else {
        lru_push_front(s, s->hot, slot);
        s->where[slot] = LRU_HOT;
    }
}

static void lru_on_hit(void *st, uint32_t slot, uint32_t key)
{
    (void)key;
    lru_state *s = st;
    assert(slot < s->n_slots);
    if (s->where[slot] != LRU_NONE) lru_unlink(s, slot);
    s->clock++;
    lru_push_front(s, s->hot, slot);
    s->where[slot] = LRU_HOT;
}

static void lru_on_evict(void *st, uint32_t slot, uint32_t key)
{
    (void)key;
    lru_state *s = st;
    assert(slot < s->n_slots);
    if (s->where[slot] != LRU_NONE) lru_unlink(s, slot);
}

static void lru_on_expire(void *st, uint32_t slot)
{
    lru_state *s = st;
    assert(slot < s->n_slots);
    if (s->where[slot] != LRU_COLD) return;
    lru_unlink(s, slot);
    lru_push_front(s, s->cold, slot); /* first in line, grace period over */
    s->where[slot] = LRU_COLD;
    s->filled_at[slot] = 0;
}

static int64_t lru_victim(void *st, mp_evictable_fn evictable, void *ctx)
{
    lru_state *s = st;
    /* 1. unused prefetches past their grace period, oldest first */
    for (uint32_t i = s->next[s->cold]; i != s->cold; i = s->next[i]) {
        if (s->filled_at[i] + s->n_slots > s->clock) break;
        if (evictable(ctx, i)) return i;
    }
    /* 2. least recently used proven slot */
    for (uint32_t i = s->prev[s->hot]; i != s->hot; i = s->prev[i])
        if (evictable(ctx, i)) return i;
    /* 3. any unused prefetch */
    for (uint32_t i = s->next[s->cold]; i != s->cold; i = s->next[i])
        if (evictable(ctx, i)) return i;
    return -1;
}

const mp_policy_ops mp_policy_lru_ops = {
    .name = "lru",
    .description = "least recently used; unused prefetches are evicted first",
    .create = lru_create,
    .destroy = lru_destroy,
    .on_fill = lru_on_fill,
    .on_hit = lru_on_hit,
    .on_evict = lru_on_evict,
    .on_expire = lru_on_expire,
    .victim = lru_victim,
};
