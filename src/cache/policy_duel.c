/* "duel": lfu-cycle or LRU, whichever would have hit more on the recent
 * accesses.
 *
 * Neither inner policy wins everywhere (docs/measurements/policy-2026-12-06.md):
 * on FLAME-MoE-290M routing, where a layer's next token reuses its experts
 * at chance, lfu-cycle beats LRU by 5-9 points with one cache for all
 * layers; on the trained demo model at 2 experts per layer, where routing
 * has locality, LRU beats lfu-cycle by 1-5 points. The duel runs both on
 * the same demand accesses in two shadow caches of n_slots keys each (the
 * inner policies' own code, each evicting its own victims: what that policy
 * would hold had it run the cache alone) and counts each shadow's hits with
 * a half-life of 4 x n_slots accesses (at least 64). The real cache gets the
 * victim of the policy whose shadow is ahead; both inner policies rank the
 * real slots all along (they see every event), so a switch takes effect at
 * the next eviction. Hysteresis, significance tests on the hits only one
 * shadow had, longer or shorter half-lives, and steering the real cache
 * towards the leader's shadow contents were all measured, none better.
 *
 * Shadows replay a group (one layer's experts for one token, pinned together
 * in the real cache) as the real cache does: none of its keys may be
 * evicted for another. Groups end at on_group_done, or where the caller
 * never calls it, at a change of layer, a repeated key or n_slots keys.
 * The shadows see a group when it ends, so the lead lags by one group.
 *
 * Cost per demand access: the two inner policies' own (lfu-cycle: O(log n)
 * plus O(L) per eviction), three times over (real ranking, two shadows),
 * and LRU's O(1) three times. Memory: three lfu-cycle and LRU states, and
 * per shadow (policy_sim.h) a key -> slot map and a group stamp per key, and
 * one more stamp per key for the group being gathered. Prefetch fills, expiries and
 * evictions reach the inner rankings of the real slots only; a prefetch is
 * not an access, its first hit is. */
#include "cache/policy.h"
#include "cache/policy_sim.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

extern const mp_policy_ops mp_policy_lfu_cycle_ops;
extern const mp_policy_ops mp_policy_lru_ops;

#define DUEL_HALF_LIFE_SLOTS 4.0 /* half-life of a shadow's hit count, in n_slots accesses */
#define DUEL_HALF_LIFE_MIN 64.0  /* ... and at least this many accesses */
#define DUEL_RESCALE_AT 1e250    /* rescale both hit counts before they overflow */

enum { DUEL_LFU = 0, DUEL_LRU = 1, DUEL_N = 2 };

static const mp_policy_ops *duel_inner(int i) { return i == DUEL_LFU ? &mp_policy_lfu_cycle_ops : &mp_policy_lru_ops; }

/* A cache of n_slots keys run by one inner policy on the demand accesses. */
typedef struct duel_shadow {
    mp_policy_sim sim;
    double hits; /* decayed hit count, in units of duel_state.inc */
} duel_shadow;

typedef struct duel_state {
    uint32_t n_slots, n_keys, n_experts;
    void *real[DUEL_N];  /* each inner policy's ranking of the real slots */
    duel_shadow sh[DUEL_N];
    uint32_t *grp;       /* (max(n_slots, 1)) keys of the current group, in access order */
    uint32_t grp_cap, grp_len, grp_layer;
    uint64_t *in_grp;    /* (n_keys) id of the last group that used the key, 0: none */
    uint64_t grp_id;     /* id of the current group, from 1 */
    double inc, growth;  /* a shadow hit adds inc; inc grows by growth per access */
    int lead;            /* DUEL_LFU or DUEL_LRU: whose victims the real cache gets */
} duel_state;


static void duel_destroy(void *st)
{
    duel_state *s = st;
    if (!s) return;
    for (int i = 0; i < DUEL_N; i++) {
        if (s->real[i]) duel_inner(i)->destroy(s->real[i]);
        if (s->sh[i].sim.ops) mp_policy_sim_free(&s->sh[i].sim);
    }
    free(s->grp);
    free(s->in_grp);
    free(s);
}

static void *duel_create(uint32_t n_slots, uint32_t n_keys, uint32_t n_experts)
{
    duel_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n_slots = n_slots;
    s->n_keys = n_keys;
    s->n_experts = n_experts && n_experts <= n_keys ? n_experts : (n_keys ? n_keys : 1);
    s->grp_cap = n_slots ? n_slots : 1;
    s->grp = calloc(s->grp_cap, sizeof *s->grp);
    s->in_grp = calloc((size_t)n_keys + 1, sizeof *s->in_grp);
    if (!s->grp || !s->in_grp) goto fail;
    for (int i = 0; i < DUEL_N; i++) {
        s->real[i] = duel_inner(i)->create(n_slots, n_keys, n_experts);
        if (!s->real[i] || !mp_policy_sim_init(&s->sh[i].sim, duel_inner(i), n_slots, n_keys, n_experts)) goto fail;
    }
    double hl = DUEL_HALF_LIFE_SLOTS * n_slots;
    s->grp_id = 1;
    s->inc = 1.0;
    s->growth = exp2(1.0 / (hl > DUEL_HALF_LIFE_MIN ? hl : DUEL_HALF_LIFE_MIN));
    s->lead = DUEL_LFU;
    return s;
fail:
    duel_destroy(s);
    return NULL;
}

/* Replays the group through both shadows, counts their hits and updates
 * the lead. */
static void duel_flush(duel_state *s)
{
    for (int i = 0; i < DUEL_N; i++)
        for (uint32_t g = 0; g < s->grp_len; g++) mp_policy_sim_pin(&s->sh[i].sim, s->grp[g]);
    for (uint32_t g = 0; g < s->grp_len; g++) {
        for (int i = 0; i < DUEL_N; i++) {
            /* a group holds at most n_slots keys, so an unpinned slot is left */
            const int r = mp_policy_sim_access(&s->sh[i].sim, s->grp[g], NULL);
            assert(r >= 0);
            if (r > 0) s->sh[i].hits += s->inc;
        }
        s->inc *= s->growth;
        if (s->inc > DUEL_RESCALE_AT) {
            /* one factor for both keeps their order */
            for (int i = 0; i < DUEL_N; i++) s->sh[i].hits /= DUEL_RESCALE_AT;
            s->inc /= DUEL_RESCALE_AT;
        }
    }
    for (int i = 0; i < DUEL_N; i++) mp_policy_sim_end_group(&s->sh[i].sim);
    s->grp_len = 0;
    s->grp_id++;
    if (s->sh[1 - s->lead].hits > s->sh[s->lead].hits) s->lead = 1 - s->lead;
}

/* A demand access joins the current group, or ends it and starts the next. */
static void duel_access(duel_state *s, uint32_t key)
{
    uint32_t layer = key / s->n_experts;
    if (s->grp_len > 0 && (layer != s->grp_layer || s->in_grp[key] == s->grp_id || s->grp_len == s->grp_cap))
        duel_flush(s);
    s->grp_layer = layer;
    s->in_grp[key] = s->grp_id;
    s->grp[s->grp_len++] = key;
}

static void duel_on_fill(void *st, uint32_t slot, uint32_t key, mp_fill_kind kind)
{
    duel_state *s = st;
    assert(slot < s->n_slots && key < s->n_keys);
    for (int i = 0; i < DUEL_N; i++) duel_inner(i)->on_fill(s->real[i], slot, key, kind);
    if (kind == MP_FILL_DEMAND) duel_access(s, key);
}

static void duel_on_hit(void *st, uint32_t slot, uint32_t key)
{
    duel_state *s = st;
    assert(slot < s->n_slots && key < s->n_keys);
    for (int i = 0; i < DUEL_N; i++) duel_inner(i)->on_hit(s->real[i], slot, key);
    duel_access(s, key);
}

static void duel_on_evict(void *st, uint32_t slot, uint32_t key)
{
    duel_state *s = st;
    for (int i = 0; i < DUEL_N; i++) duel_inner(i)->on_evict(s->real[i], slot, key);
}

static void duel_on_expire(void *st, uint32_t slot)
{
    duel_state *s = st;
    for (int i = 0; i < DUEL_N; i++) duel_inner(i)->on_expire(s->real[i], slot);
}

static void duel_on_group_done(void *st)
{
    duel_state *s = st;
    if (s->grp_len > 0) duel_flush(s);
}

static int64_t duel_victim(void *st, mp_evictable_fn evictable, void *ctx)
{
    duel_state *s = st;
    return duel_inner(s->lead)->victim(s->real[s->lead], evictable, ctx);
}

const mp_policy_ops mp_policy_duel_ops = {
    .name = "duel",
    .description = "lfu-cycle or lru, whichever hits more in shadow caches over the last 4 x slots accesses",
    .create = duel_create,
    .destroy = duel_destroy,
    .on_fill = duel_on_fill,
    .on_hit = duel_on_hit,
    .on_evict = duel_on_evict,
    .on_expire = duel_on_expire,
    .on_group_done = duel_on_group_done,
    .victim = duel_victim,
};
