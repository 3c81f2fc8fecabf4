/* A cache of keys without data, run by one replacement policy: what that
 * policy would hold on a stream of demand accesses. The trace replayer
 * (src/trace/replay.c) and the duel policy's shadow caches run it.
 *
 * Accesses come in groups (one layer's experts for one token) that are
 * pinned together as the real cache pins them: no key of the current group
 * is evicted for another. A group holds at most n_slots keys. */
#ifndef MP_CACHE_POLICY_SIM_H
#define MP_CACHE_POLICY_SIM_H

#include "cache/policy.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mp_policy_sim {
    const mp_policy_ops *ops;
    void *st;            /* the policy's state */
    uint32_t n_slots;
    uint32_t used;       /* slots filled so far */
    int64_t *key_slot;   /* (n_keys) slot of a key, -1 if absent */
    uint32_t *slot_key;  /* (n_slots) */
    uint64_t *pinned_in; /* (n_keys) the group that last pinned the key */
    uint64_t group;      /* the current group, from 1 */
} mp_policy_sim;

/* An empty cache of n_slots; false on OOM (s is then freed). Keys as in
 * policy.h's create. */
bool mp_policy_sim_init(mp_policy_sim *s, const mp_policy_ops *ops, uint32_t n_slots, uint32_t n_keys,
                        uint32_t n_experts);
void mp_policy_sim_free(mp_policy_sim *s);

/* Key (< n_keys) belongs to the current group: pin every key of a group
 * before its first access. */
static inline void mp_policy_sim_pin(mp_policy_sim *s, uint32_t key) { s->pinned_in[key] = s->group; }

/* One demand access: 1 on a hit; 0 on a miss, after evicting the policy's
 * victim if the cache is full and filling key; -1 when the policy named no
 * evictable slot (*victim gets what it named; nothing changed). */
int mp_policy_sim_access(mp_policy_sim *s, uint32_t key, int64_t *victim);

/* The current group ends (the policy's on_group_done) and the next begins. */
void mp_policy_sim_end_group(mp_policy_sim *s);

#endif
