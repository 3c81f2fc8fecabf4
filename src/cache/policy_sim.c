/* A policy-driven cache of keys (see policy_sim.h). */
#include "cache/policy_sim.h"

#include <stdlib.h>
#include <string.h>

static bool sim_evictable(void *ctx, uint32_t slot)
{
    const mp_policy_sim *s = ctx;
    return s->pinned_in[s->slot_key[slot]] != s->group;
}

bool mp_policy_sim_init(mp_policy_sim *s, const mp_policy_ops *ops, uint32_t n_slots, uint32_t n_keys,
                        uint32_t n_experts)
{
    memset(s, 0, sizeof *s);
    s->ops = ops;
    s->n_slots = n_slots;
    s->group = 1;
    s->key_slot = malloc(((size_t)n_keys + 1) * sizeof *s->key_slot);
    s->slot_key = calloc((size_t)n_slots + 1, sizeof *s->slot_key);
    s->pinned_in = calloc((size_t)n_keys + 1, sizeof *s->pinned_in);
    s->st = ops->create(n_slots, n_keys, n_experts);
    if (!s->key_slot || !s->slot_key || !s->pinned_in || !s->st) {
        mp_policy_sim_free(s);
        return false;
    }
    for (uint32_t k = 0; k < n_keys; k++) s->key_slot[k] = -1;
    return true;
}

void mp_policy_sim_free(mp_policy_sim *s)
{
    if (s->st) s->ops->destroy(s->st);
    free(s->key_slot);
    free(s->slot_key);
    free(s->pinned_in);
    memset(s, 0, sizeof *s);
}

int mp_policy_sim_access(mp_policy_sim *s, uint32_t key, int64_t *victim)
{
    if (s->key_slot[key] >= 0) {
        s->ops->on_hit(s->st, (uint32_t)s->key_slot[key], key);
        return 1;
    }
    uint32_t slot;
    if (s->used < s->n_slots) {
        slot = s->used++;
    } else {
        const int64_t v = s->ops->victim(s->st, sim_evictable, s);
        if (victim) *victim = v;
        if (v < 0 || v >= s->n_slots || !sim_evictable(s, (uint32_t)v)) return -1;
        slot = (uint32_t)v;
        s->ops->on_evict(s->st, slot, s->slot_key[slot]);
        s->key_slot[s->slot_key[slot]] = -1;
    }
    s->slot_key[slot] = key;
    s->key_slot[key] = slot;
    s->ops->on_fill(s->st, slot, key, MP_FILL_DEMAND);
    return 0;
}

void mp_policy_sim_end_group(mp_policy_sim *s)
{
    if (s->ops->on_group_done) s->ops->on_group_done(s->st);
    s->group++;
}
