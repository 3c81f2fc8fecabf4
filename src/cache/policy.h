/* Replacement policies for the expert cache, behind one small interface so
 * the cache (src/cache/cache.c) and the trace replayer (bench, issue 5) use
 * the same code.
 *
 * The cache owns n_slots slots. The policy sees events on slots and, when the
 * cache needs room, picks a victim among the slots the cache says are
 * evictable (ready and unpinned). A key identifies an expert:
 * key = layer * n_experts + expert, and is resident in one slot at most.
 * All calls come from one thread (the cache's lock holder); policies need no
 * locking. */
#ifndef MP_CACHE_POLICY_H
#define MP_CACHE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct mp_policy mp_policy;

/* Why a slot was filled: on demand (the forward pass asked for it) or by a
 * prefetch (a prediction); policies may insert prefetches at lower priority
 * and promote them on first use. */
typedef enum mp_fill_kind { MP_FILL_DEMAND = 0, MP_FILL_PREFETCH = 1 } mp_fill_kind;

typedef bool (*mp_evictable_fn)(void *cache_ctx, uint32_t slot);

typedef struct mp_policy_ops {
    const char *name;        /* "lru", ... */
    const char *description; /* one line for --help */
    /* Creates the policy state for n_slots slots and keys below n_keys, of
     * which each layer has n_experts (layer = key / n_experts; n_experts ==
     * n_keys: no layers); NULL on OOM. */
    void *(*create)(uint32_t n_slots, uint32_t n_keys, uint32_t n_experts);
    void (*destroy)(void *st);
    void (*on_fill)(void *st, uint32_t slot, uint32_t key, mp_fill_kind kind);
    void (*on_hit)(void *st, uint32_t slot, uint32_t key);
    void (*on_evict)(void *st, uint32_t slot, uint32_t key);
    /* Returns a slot for which evictable(ctx, slot) is true, or -1 if none. */
    int64_t (*victim)(void *st, mp_evictable_fn evictable, void *ctx);
    /* Optional: the prediction that prefetched this slot has passed unused
     * (its layer ran without it); the slot's grace period ends now, so it
     * is the first to go. */
    void (*on_expire)(void *st, uint32_t slot);
    /* Optional: the demand accesses since the previous call were one group,
     * needed and pinned together (one layer's experts for one token), and
     * are released now. Callers that cannot tell need not call it. */
    void (*on_group_done)(void *st);
} mp_policy_ops;

/* Registry: NULL-terminated list of the built-in policies; lookup by name
 * returns NULL for an unknown name. The first entry is the default. */
const mp_policy_ops *const *mp_policy_list(void);
const mp_policy_ops *mp_policy_find(const char *name);
const mp_policy_ops *mp_policy_default(void);

#endif
