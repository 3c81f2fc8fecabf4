/* The expert cache: routed experts live on disk and are read on demand
 * into a fixed slab of slots, so the model runs inside a memory budget.
 *
 * A slot holds one expert: its up to three byte ranges (gate, up, down of
 * a plain GGUF, or one block of a pack) each rounded out to the I/O
 * alignment and read straight into the slot (O_DIRECT when the file
 * allows). Slot states: EMPTY -> LOADING (reads in flight) -> READY.
 * A slot is evicted only when READY with no pins: a caller using an expert
 * or waiting for it holds a pin, and a LOADING slot is never chosen. The
 * replacement policy (policy.h; the registry's first, lfu-cycle, by
 * default) picks among evictable slots.
 *
 * Two ways in:
 *  - synchronous: mp_cache_acquire blocks until the expert is READY and
 *    pins it; mp_cache_release unpins.
 *  - asynchronous, for computing experts in the order they land:
 *      for e in E: mp_cache_request(c, L, e, MP_CACHE_DEMAND)    (pins)
 *      while (mp_cache_wait_any(c, &r) == 1) compute(r); release(r)
 *    Hits are delivered first, misses as their reads complete. PREFETCH
 *    requests start reads at low priority for experts predicted to be
 *    needed soon; they never pin, never block, never evict a pinned slot,
 *    and queued prefetch reads wait behind demand reads (a prefetch that a
 *    demand catches while still queued is promoted).
 *
 * Pressure: when a demand needs a slot and every slot is pinned or
 * LOADING, the call waits for reads in flight (a LOADING slot becomes
 * evictable when its prefetch lands); if every slot is pinned by callers
 * it fails with MP_E_BUDGET rather than deadlock. The minimum workable
 * cache is therefore the number of experts pinned at once (top-k of one
 * layer for the decode loop above).
 *
 * Threads: every call comes from one thread (the forward pass's). Reads
 * run in the kernel (io_uring) or in the pread pool; completions are
 * reaped in the caller's thread inside acquire/request/wait_any/poll, so
 * the cache has no locks. mp_cache_poll lets the forward pass reap while
 * it computes. */
#ifndef MP_CACHE_H
#define MP_CACHE_H

#include "cache/policy.h"
#include "common/err.h"
#include "io/io.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mp_cache mp_cache;

#define MP_EXPERT_MAX_PARTS 3

typedef struct mp_byte_range {
    uint64_t offset; /* in the file */
    uint64_t len;    /* bytes; any alignment */
} mp_byte_range;

/* Where one expert's bytes are. n_parts == 0: the expert cannot be
 * requested (e.g. a layer without routed experts). min_slot_bytes: the
 * slot must hold at least this many bytes, more than the ranges read when
 * a verify hook decodes in place (a pack's lz4 block grows to its raw
 * size); 0: the ranges' bytes. */
typedef struct mp_expert_loc {
    mp_byte_range part[MP_EXPERT_MAX_PARTS];
    uint32_t n_parts;
    uint64_t min_slot_bytes;
} mp_expert_loc;

/* An expert inside its slot: part[i] points at the first byte of range i
 * (not aligned beyond what the file offset implies). Valid while pinned. */
typedef struct mp_expert_ptrs {
    const void *part[MP_EXPERT_MAX_PARTS];
    uint64_t len[MP_EXPERT_MAX_PARTS];
    uint32_t n_parts;
    uint32_t slot;
    /* Set by the verify hook, carried with the pointers (0 otherwise): bit i
     * says part i was rewritten into another layout (the runtime's repacking,
     * kernels.h); the cache does not look at it. */
    uint32_t layout;
} mp_expert_ptrs;

/* Called on every completed load before the slot becomes READY, with ptrs
 * at the ranges as read. Returns MP_OK, or a negative status
 * (MP_E_CHECKSUM) with err naming what failed; the slot is then emptied
 * and the load fails with that status. May rewrite the slot's bytes and
 * ptrs (part, len, n_parts) inside [slot, slot + slot_bytes) (e.g. after
 * decompressing in place): the rewritten ptrs are what acquire and
 * delivery hand out for this fill. */
typedef int (*mp_cache_verify_fn)(void *ctx, uint32_t layer, uint32_t expert, void *slot,
                                  uint64_t slot_bytes, mp_expert_ptrs *ptrs, mp_err *err);

typedef struct mp_cache_config {
    uint32_t n_layers, n_experts;
    const mp_expert_loc *locs;     /* [n_layers * n_experts]; copied */
    uint32_t n_slots;              /* slot count; 0: from budget_bytes */
    uint64_t budget_bytes;         /* slab size when n_slots == 0 */
    uint32_t min_slots;            /* refuse a smaller cache; 0: 1 */
    mp_io *io;                     /* owned by the cache once create succeeds */
    const mp_policy_ops *policy;   /* NULL: mp_policy_default() */
    const char *file_name;         /* for messages; NULL: mp_io_path(io) */
    mp_cache_verify_fn verify;     /* NULL: none */
    void *verify_ctx;
    bool hugepages;                /* madvise(MADV_HUGEPAGE) the slab */
    bool no_fixed_buffers;         /* do not register the slab with io_uring */
} mp_cache_config;

typedef enum mp_cache_prio { MP_CACHE_DEMAND = 0, MP_CACHE_PREFETCH = 1 } mp_cache_prio;

typedef struct mp_cache_stats {
    uint64_t hits;            /* demanded and READY */
    uint64_t late_hits;       /* demanded while a prefetch was still reading it */
    uint64_t misses;          /* demanded and absent: a demand load started */
    uint64_t evictions;       /* READY experts dropped for room (counted on their layer) */
    uint64_t loads;           /* loads started (demand + prefetch) */
    uint64_t reads;           /* read requests issued (1..3 per load) */
    uint64_t bytes_read;      /* bytes read into slots, rounded-out spans */
    uint64_t wait_ns;         /* time callers blocked waiting for I/O */
    uint64_t prefetches;      /* prefetch loads started */
    uint64_t prefetch_used;   /* prefetched experts later demanded */
    uint64_t prefetch_dropped;/* prefetches refused: no evictable slot */
    uint64_t prefetch_wasted; /* prefetched experts evicted without being used */
    uint64_t wasted_bytes;    /* bytes those read */
    uint64_t errors;          /* failed loads (I/O or verify) */
} mp_cache_stats;

/* Field-wise a += b and a -= b: every field is a uint64_t counter. */
void mp_cache_stats_add(mp_cache_stats *a, const mp_cache_stats *b);
void mp_cache_stats_sub(mp_cache_stats *a, const mp_cache_stats *b);

/* Prefetch quality of a stats record: precision = prefetched experts that
 * were used / prefetched; in-time recall = demands served by a prefetch
 * that had finished (used - late hits) / demands. NaN when undefined. */
void mp_cache_prefetch_quality(const mp_cache_stats *st, double *precision, double *recall);

/* A demanded expert handed back by mp_cache_wait_any / mp_cache_poll. */
typedef struct mp_cache_ready {
    uint32_t layer, expert;
    mp_expert_ptrs ptrs;
} mp_cache_ready;

/* Bytes one slot needs for these experts: max over experts of the sum of
 * their ranges rounded out to align (overlapping rounded ranges merged) or
 * of min_slot_bytes, itself a multiple of align. 0 if no expert has parts.
 * For the planner. */
uint64_t mp_cache_slot_bytes(const mp_expert_loc *locs, uint64_t n, size_t align);

/* Creates the cache: allocates the slab once (aligned to mp_io_align(io),
 * which may exceed a page, and to 2 MiB for huge pages; optionally huge
 * pages) and registers it with the io as fixed buffers (1 GiB chunks)
 * unless told not to. Announcements (fixed buffers refused, huge pages)
 * go to note[note_cap] as "\n"-separated lines, "" if none; note may be
 * NULL.
 * Returns MP_OK; MP_E_BUDGET if the budget holds fewer than min_slots
 * slots (err says the minimum in bytes); MP_E_INVAL for a location past
 * the end of the file; MP_E_NOMEM. On failure the io stays the caller's. */
int mp_cache_create(const mp_cache_config *cfg, mp_cache **out, char *note, size_t note_cap,
                    mp_err *err);

/* Waits for reads in flight (cancelling them first if the io failed; at
 * most the io timeout), frees the slab, the io and the cache (NULL-safe).
 * Pointers from the cache are invalid afterwards. If a read is still stuck
 * in the kernel then, the slab stays mapped (leaked) so that read cannot
 * write into memory reused for something else. */
void mp_cache_free(mp_cache *c);

uint32_t mp_cache_n_slots(const mp_cache *c);
uint64_t mp_cache_slot_size(const mp_cache *c);  /* bytes per slot */
mp_io *mp_cache_io(mp_cache *c);

/* Blocks until (layer, expert) is READY, pins it and fills *out.
 * Returns MP_OK; MP_E_IO (err: "FILE: layer L expert E: read of N bytes at
 * offset O failed: REASON") or the verify hook's status, with nothing left
 * pinned; MP_E_BUDGET if every slot is pinned. */
int mp_cache_acquire(mp_cache *c, uint32_t layer, uint32_t expert, mp_expert_ptrs *out,
                     mp_err *err);

/* Drops one pin taken by acquire or by a delivered DEMAND request. */
void mp_cache_release(mp_cache *c, uint32_t layer, uint32_t expert);

/* DEMAND: pins the expert (the caller releases it after it is delivered)
 * and starts its read at high priority if absent; it will be delivered
 * exactly once by mp_cache_wait_any / mp_cache_poll. Returns MP_OK,
 * MP_E_BUDGET (every slot pinned; nothing pinned), or the status of a
 * backend failure.
 * PREFETCH: starts a low-priority read if the expert is absent and a slot
 * is free or evictable. Returns MP_OK (started, loading or present) or
 * MP_E_AGAIN (dropped: no room); never blocks, pins or delivers. */
int mp_cache_request(mp_cache *c, uint32_t layer, uint32_t expert, mp_cache_prio prio,
                     mp_err *err);

/* Demands n experts of one layer at once: those already present (READY or
 * LOADING) are pinned first, so that loading the others cannot evict them.
 * The way the forward pass should ask for its top-k. Returns MP_OK or the
 * first failure (the experts requested before it stay requested). */
int mp_cache_request_layer(mp_cache *c, uint32_t layer, const uint32_t *experts, uint32_t n,
                           mp_err *err);

/* Delivers one demanded expert that is READY (hits first, then misses in
 * completion order), blocking for I/O if none is. Returns 1 with *out
 * filled (pinned); 0 when no demand is outstanding; or a negative status
 * when a demanded load failed: out->layer/expert name it, err says why,
 * and it holds no pin. The other outstanding demands stay outstanding.
 *
 * When the io fails (no read completes for its timeout: "FILE: no read
 * completed for 30 s (layer L expert E, offset N)"; or it cannot start
 * reads: "FILE: layer L expert E: read at offset N: cannot start it:
 * ..."), the CACHE fails: this and every later call (acquire, request,
 * poll) returns MP_E_IO with that message, out naming that expert. No
 * slot is reused from then on, since reads may still be in the kernel;
 * mp_cache_free cancels and drains them (bounded by the io timeout). */
int mp_cache_wait_any(mp_cache *c, mp_cache_ready *out, mp_err *err);

/* Like mp_cache_wait_any but never blocks: reaps finished reads (demand or
 * prefetch, so queued reads start; call it between computations), then
 * returns 1, 0 (nothing outstanding) or MP_E_AGAIN (outstanding, none
 * READY yet), or a negative status as above. */
int mp_cache_poll(mp_cache *c, mp_cache_ready *out, mp_err *err);

/* Reaps finished reads (prefetches included) and starts queued ones, without
 * blocking and without handing anything out: demands that became ready wait
 * for mp_cache_wait_any / mp_cache_poll. Cheap when nothing finished (no
 * system call with io_uring), so it may be called between compute tasks. */
void mp_cache_reap(mp_cache *c);

/* Drops every outstanding, undelivered demand and its pin (after an error,
 * to leave the cache consistent). Reads in flight finish normally. */
void mp_cache_abandon(mp_cache *c);

/* Demands requested and not yet delivered. */
uint32_t mp_cache_outstanding(const mp_cache *c);

/* Does (layer, expert) hold a slot, READY or LOADING? (No stats, no policy
 * update.) */
bool mp_cache_present(const mp_cache *c, uint32_t layer, uint32_t expert);

/* On: a prefetch finds room among its own layer's experts first, and only
 * then where the policy says (off, the default: where the policy says).
 * Pays where the cache holds about k experts per layer (cache.c says why),
 * costs where it holds more: the runtime turns it on below 1.5 k per MoE
 * layer. */
void mp_cache_prefetch_own_layer_first(mp_cache *c, bool on);

/* The MP_CACHE_PREFETCH requests that follow, up to the next call, are one
 * prediction of one layer. With mp_cache_prefetch_own_layer_first, room for
 * them comes first from that layer's own experts, and there a newer
 * prediction supersedes older ones: what they fetched or guarded and it does
 * not name may be evicted for it (until the first call, nothing is
 * superseded). */
void mp_cache_prediction_begin(mp_cache *c);

/* Is (layer, expert) READY now? (No stats, no policy update.) */
bool mp_cache_contains(const mp_cache *c, uint32_t layer, uint32_t expert);

/* The forward pass has finished `layer` for the current chunk: experts of
 * that layer that were prefetched and not used were mispredicted, and go
 * first when room is needed (policy on_expire). Until then, a prefetched
 * expert is never evicted to make room for another prefetch. */
void mp_cache_layer_done(mp_cache *c, uint32_t layer);

/* Copies overall stats into *total and per-layer stats into
 * per_layer[n_layers] (either may be NULL); with reset, zeroes them. */
void mp_cache_get_stats(mp_cache *c, mp_cache_stats *total, mp_cache_stats *per_layer,
                        bool reset);

#endif
