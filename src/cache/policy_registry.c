/* The built-in replacement policies. The first entry is the default: it was
 * picked by replaying the FLAME-MoE-290M routing trace (tests and
 * bench/bench_trace_replay.c, docs/measurements/policy-2026-12-06.md):
 * frequency with decay beats LRU at every capacity from 4 to 32 experts per
 * layer, and lfu-cycle, which also weighs how soon an expert's layer runs
 * again, beats lfu-decay by 0.6-0.9 points with one cache for all layers and
 * equals it with a cache per layer. */
#include "cache/policy.h"

#include <stddef.h>
#include <string.h>

extern const mp_policy_ops mp_policy_lfu_cycle_ops;
extern const mp_policy_ops mp_policy_lfu_decay_ops;
extern const mp_policy_ops mp_policy_lru_ops;
extern const mp_policy_ops mp_policy_duel_ops;

static const mp_policy_ops *const mp_policies[] = {
    &mp_policy_lfu_cycle_ops,
    &mp_policy_lfu_decay_ops,
    &mp_policy_lru_ops,
    &mp_policy_duel_ops,
    NULL,
};

const mp_policy_ops *const *mp_policy_list(void) { return mp_policies; }

const mp_policy_ops *mp_policy_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; mp_policies[i]; i++)
        if (strcmp(mp_policies[i]->name, name) == 0) return mp_policies[i];
    return NULL;
}

const mp_policy_ops *mp_policy_default(void) { return mp_policies[0]; }
