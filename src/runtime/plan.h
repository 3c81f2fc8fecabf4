/* The memory planner: adds up resident weights, KV cache, scratch buffers,
 * a fixed overhead and the expert cache, and refuses a plan that cannot fit
 * with a message that says what would. */
#ifndef MP_PLAN_H
#define MP_PLAN_H

#include "cache/cache.h"
#include "common/err.h"
#include "model/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Process memory that is neither weights, KV, scratch nor cache: code,
 * libraries, thread stacks, allocator slack, tokenizer tables, GGUF
 * metadata. Base part measured with `moepager run` on the demo model;
 * the metadata part scales with the file's header (vocabularies). */
#define MP_PLAN_OVERHEAD_BASE (24ull << 20)

typedef struct mp_plan_opts {
    uint64_t mem;           /* --mem: whole process budget; 0: none */
    uint64_t cache_bytes;   /* --cache-size: expert cache alone; 0: none */
    uint32_t cache_experts; /* --cache-experts: slots per MoE layer; 0: none */
    int n_ctx, n_batch, n_threads;
    bool pack;              /* the experts are a pack's blocks (always streamed) */
} mp_plan_opts;

typedef struct mp_plan {
    bool offload;          /* experts streamed through the cache (else mapped) */
    uint64_t resident;     /* resident weights */
    uint64_t kv, scratch, overhead;
    uint64_t slot_bytes;   /* one cache slot */
    uint32_t slots;        /* cache slots */
    uint32_t min_slots;    /* experts pinned at once (top-k of a layer) */
    uint32_t n_moe_layers;
    uint64_t n_experts_total; /* experts in the model */
    uint64_t cache_bytes;  /* slots * slot_bytes */
    uint64_t expert_bytes; /* all routed-expert bytes in the file */
    uint64_t total;        /* resident + kv + scratch + overhead + cache (or file for mmap) */
    uint64_t budget;       /* opts.mem, 0 if none */
} mp_plan;

/* Expert byte ranges of a GGUF model: locs[layer * n_expert + e] holds the
 * gate, up and down ranges (n_parts 0 for dense layers). Caller frees. */
int mp_expert_locs_gguf(const mp_model *m, mp_expert_loc **locs, mp_err *err);

/* Makes the plan. Offload when any budget option is set, and always for a
 * pack (a cache of every expert without a budget). Returns MP_OK or
 * MP_E_BUDGET with err saying the minimum and its parts. */
int mp_plan_make(const mp_model *m, const mp_expert_loc *locs, const mp_plan_opts *o, mp_plan *p, mp_err *err);

/* One line: "memory plan: resident 1.2 GiB + KV ... = 2.0 GiB (budget 2 GiB)". */
void mp_plan_describe(const mp_plan *p, char *buf, size_t cap);

#endif
