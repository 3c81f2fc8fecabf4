/* The VRAM tier: what goes into device memory, which routed experts sit in
 * its expert cache, and where each expert of a layer runs.
 *
 *   plan      mp_vram_plan_make: the resident part first (embeddings,
 *             attention, norms, routers, shared experts, dense layers,
 *             output head, KV cache, scratch), then the rest of the budget
 *             as VRAM expert slots; refused with the minimum and why.
 *   cache     slots keyed by (layer, expert), each with a decayed use count;
 *             an expert is promoted RAM -> VRAM when the cost model says it
 *             pays, evicting the slot with the lowest count (never one in
 *             use by the current layer).
 *   cost      per expert and chunk: CPU time (weights streamed from RAM by
 *             the CPU, in tiles of tokens) against the copy plus GPU time;
 *             the constants are measured at start on a device, or given
 *             (the "sim" device: the CPU backend posing as a device with its
 *             own budget, so the tier logic runs in CI without a GPU).
 *
 * Single-threaded: the forward pass's thread owns it. */
#ifndef MP_GPU_TIER_H
#define MP_GPU_TIER_H

#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mp_device_kind { MP_DEVICE_NONE = 0, MP_DEVICE_SIM = 1, MP_DEVICE_CUDA = 2 } mp_device_kind;

/* ---- the plan ---------------------------------------------------------------- */

typedef struct mp_vram_plan {
    uint64_t budget;        /* --vram */
    uint64_t resident;      /* every non-expert weight */
    uint64_t kv;            /* KV cache for the context */
    uint64_t scratch;       /* activations, staging */
    uint64_t expert_bytes;  /* one routed expert (gate + up + down) */
    uint64_t expert_cache;  /* slots * expert_bytes */
    uint32_t slots;         /* VRAM expert slots */
    uint32_t n_experts;     /* routed experts in the model (slots never exceed it) */
    uint32_t min_slots;     /* one layer's top-k */
} mp_vram_plan;

/* Fills p. Fails with MP_E_BUDGET when budget < resident + kv + scratch +
 * min_slots experts, err naming the minimum and its parts. */
int mp_vram_plan_make(mp_vram_plan *p, uint64_t budget, uint64_t resident, uint64_t kv, uint64_t scratch,
                      uint64_t expert_bytes, uint32_t n_experts, uint32_t min_slots, mp_err *err);
/* One line: "vram 6.0 GiB: resident 1.2 GiB + KV 0.4 GiB + scratch 0.1 GiB + 2870 experts x 1.5 MiB" */
void mp_vram_plan_describe(const mp_vram_plan *p, char *buf, size_t cap);

/* ---- the cost model --------------------------------------------------------- */

typedef struct mp_tier_costs {
    double pcie_Bps;     /* RAM -> VRAM copy, bytes/s */
    double cpu_Bps;      /* one CPU expert over one token: weight bytes/s */
    double cpu_tok_tile; /* tokens a CPU pass over the weights serves (matmul tile) */
    double gpu_Bps;      /* a GPU expert: weight bytes/s */
    double gpu_launch_s; /* a GPU expert's fixed cost (launches, activation copies) */
} mp_tier_costs;

/* Seconds to run an expert of `bytes` over T tokens on the CPU / on the GPU
 * (weights already in VRAM) / to copy it up. */
double mp_tier_cpu_s(const mp_tier_costs *c, uint64_t bytes, int T);
double mp_tier_gpu_s(const mp_tier_costs *c, uint64_t bytes, int T);
double mp_tier_copy_s(const mp_tier_costs *c, uint64_t bytes);

/* ---- the VRAM expert cache and placement ------------------------------------- */

typedef enum mp_run_where {
    MP_RUN_CPU = 0,     /* RAM tier: the activation goes to the CPU's kernels */
    MP_RUN_GPU_HIT = 1, /* in VRAM already */
    MP_RUN_GPU_COPY = 2 /* copied into a VRAM slot now (promotion), then run there */
} mp_run_where;

typedef struct mp_tier_stats_gpu {
    uint64_t demands;     /* (layer, expert) uses asked for, one per chunk */
    uint64_t hits;        /* in VRAM */
    uint64_t promotions;  /* copied RAM -> VRAM */
    uint64_t evictions;
    uint64_t bytes_up;    /* RAM -> VRAM */
    uint64_t run_gpu, run_cpu;
    double stall_s;       /* copy time not hidden (modelled for sim; measured for cuda) */
    double est_cpu_s, est_gpu_s; /* the cost model's estimate of the time each side ran */
} mp_tier_stats_gpu;

typedef struct mp_tier mp_tier;

typedef struct mp_tier_params {
    mp_device_kind kind;
    mp_vram_plan plan;
    mp_tier_costs costs;
    uint32_t n_layer, n_expert; /* keys: layer < n_layer, expert < n_expert */
    double decay;               /* use counts times this per token (0: 0.95) */
} mp_tier_params;

int mp_tier_create(mp_tier **out, const mp_tier_params *p, mp_err *err);
void mp_tier_free(mp_tier *t); /* NULL-safe */
mp_device_kind mp_tier_device(const mp_tier *t);
const mp_vram_plan *mp_tier_plan(const mp_tier *t);

/* Decides where expert `expert` of `layer` runs over T tokens, promoting
 * it into a VRAM slot when that pays (*slot: its slot for the GPU cases,
 * -1 for the CPU). Counts the use. Slots used since mp_tier_begin_layer are
 * never evicted before the next mp_tier_begin_layer. */
mp_run_where mp_tier_place(mp_tier *t, int layer, int expert, int T, int *slot);
/* A new layer: the previous layer's slots may be evicted again. Called once
 * per MoE layer per chunk, in layer order; a layer at or below the last one
 * starts a new chunk of `tokens` tokens (the clock the use counts decay by). */
void mp_tier_begin_layer(mp_tier *t, int layer, int tokens);
/* True when (layer, expert) is in VRAM now (no counting). */
bool mp_tier_resident(const mp_tier *t, int layer, int expert);
void mp_tier_get_stats(const mp_tier *t, mp_tier_stats_gpu *out);
void mp_tier_add_stall(mp_tier *t, double s);

#endif
