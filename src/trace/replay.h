/* Trace replay: how many expert loads a cache of a given size would have
 * needed for a recorded routing, under a replacement policy from the
 * registry (cache/policy.h) or under Belady's optimal offline policy.
 *
 * The access model. A trace becomes a sequence of groups: for every token
 * (sequences in order of first appearance, tokens by token_idx), for every
 * layer in increasing order, the group of that layer's k experts, as keys
 * key = layer * n_experts + expert. The k experts of a group are needed at
 * the same time (the forward pass pins them together), so while a group is
 * being loaded none of its keys may be evicted: every policy, and Belady,
 * evicts only keys outside the current group. A cache smaller than k cannot
 * hold a group; then that group's experts are streamed one at a time (each
 * is its own group of one) and only the expert being loaded is pinned.
 *
 * Per-layer mode gives every layer its own cache of `capacity` slots (the
 * usual "experts per layer" setting of MoE offloading); global mode shares
 * capacity * n_layers slots among all layers. Every access is a hit (the key
 * was resident when its group started) or a miss (a load). Caches start
 * empty, so the first use of every key is a miss. */
#ifndef MP_TRACE_REPLAY_H
#define MP_TRACE_REPLAY_H

#include "cache/policy.h"
#include "common/err.h"
#include "trace/trace.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mp_replay_stats {
    uint64_t accesses; /* expert uses replayed (sum of k) */
    uint64_t hits;
    uint64_t misses;   /* accesses - hits: loads */
} mp_replay_stats;

typedef enum mp_replay_mode { MP_REPLAY_PER_LAYER = 0, MP_REPLAY_GLOBAL = 1 } mp_replay_mode;

/* Replays trace t through policy ops with `capacity` slots per layer (see
 * the mode above) and fills *st. Returns MP_OK, MP_E_INVAL (capacity 0,
 * capacity * n_layers overflows 32 bits, or a policy that picked no or a
 * wrong victim), MP_E_NOMEM. */
int mp_trace_replay(const mp_trace *t, const mp_policy_ops *ops, uint32_t capacity, mp_replay_mode mode,
                    mp_replay_stats *st, mp_err *err);

/* The same accesses under Belady's MIN (evict the resident key, outside the
 * current group, whose next use is farthest away): the fewest misses any
 * policy can have under this access model. Exact; O(n log n) for n accesses. */
int mp_trace_belady(const mp_trace *t, uint32_t capacity, mp_replay_mode mode, mp_replay_stats *st,
                    mp_err *err);

/* The building blocks, on a plain group sequence: group g is
 * keys[group_off[g] .. group_off[g + 1]), n_groups + 1 offsets, keys below
 * n_keys and distinct within a group (MP_E_INVAL otherwise). One cache of
 * `capacity` slots; the keys have no layers (the policy is created with
 * n_experts = n_keys, policy.h), while the trace functions above give it
 * the trace's layers. Used by the trace functions above and by tests. */
int mp_replay_groups(const mp_policy_ops *ops, const uint32_t *keys, const size_t *group_off, size_t n_groups,
                     uint32_t n_keys, uint32_t capacity, mp_replay_stats *st, mp_err *err);
int mp_replay_groups_belady(const uint32_t *keys, const size_t *group_off, size_t n_groups, uint32_t n_keys,
                            uint32_t capacity, mp_replay_stats *st, mp_err *err);

#endif
