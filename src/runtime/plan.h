/* The memory planner: adds up resident weights, KV cache, scratch buffers,
 * a fixed overhead and the expert cache, and refuses a plan that cannot fit
 * with a message that says what would. */
#ifndef MP_PLAN_H
#define MP_PLAN_H

#include "cache/cache.h"
#include "common/err.h"
#include "common/sysinfo.h"
#include "model/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Process memory that is neither weights, KV, scratch nor cache: code,
 * libraries, thread stacks, allocator slack, tokenizer tables, GGUF
 * metadata. Base part measured with `moepager run` on the demo model;
 * the metadata part scales with the file's header (vocabularies). */
#define MP_PLAN_OVERHEAD_BASE (24ull << 20)
/* Tokenizer tables beyond the metadata copies, per vocabulary entry: measured
 * 131 B/token of RSS (moepager tokenize, 102400 vs 248320 tokens: 22.3 vs
 * 41.0 MB) against 3 x ~24 B of metadata the base term counts; without it a
 * 248k-vocab model (Qwen3.5/3.6) overran --mem 8G by ~15 MiB and its cgroup
 * killed it. */
#define MP_PLAN_OVERHEAD_PER_TOKEN 64ull

/* The default budget (no budget option, no --mmap) leaves a margin of what
 * the machine allows to what the plan does not count: kernel memory charged
 * to the cgroup (page tables, io_uring rings), page cache of the buffered
 * reads at load (GGUF header, resident tensors: reclaimable, but charged
 * until reclaimed), the process that started us and the rest of the
 * machine (MemAvailable is a snapshot; others may grow). The margin is
 * 1/16 of the allowance, at least min(512 MiB, 1/8 of it):
 *   8 GiB cgroup -> 512 MiB left, budget 7.5 GiB (issue 9: the
 *     Qwen3-30B-A3B-shaped model ran well at --mem 7600M in an 8G cgroup,
 *     592 MiB left; the plan's total is what the process holds: test_memlimit
 *     runs at --mem equal to a 64 MiB limit);
 *   64 MiB cgroup -> 8 MiB left (1/8: 512 MiB would leave nothing);
 *   24 GiB free -> 1.5 GiB left (1/16: a big machine runs more besides us). */
#define MP_PLAN_MARGIN_MIN (512ull << 20)
#define MP_PLAN_MARGIN_DIV 16     /* 1/16 of the allowance ... */
#define MP_PLAN_MARGIN_MIN_DIV 8  /* ... at least min(MP_PLAN_MARGIN_MIN, 1/8 of it) */

/* The default budget is rounded down to a multiple of this (1 MiB), so the
 * "--mem NM" its note prints gives the very same plan. */
#define MP_PLAN_AUTO_ROUND (1ull << 20)

/* Bytes the default budget leaves free of allowed (see above). */
uint64_t mp_plan_margin(uint64_t allowed);

typedef struct mp_plan_opts {
    uint64_t mem;           /* --mem: whole process budget; 0: none */
    uint64_t cache_bytes;   /* --cache-size: expert cache alone; 0: none */
    uint32_t cache_experts; /* --cache-experts: slots per MoE layer; 0: none */
    int n_ctx, n_batch, n_threads;
    int n_seq; /* KV caches (server slots), each n_ctx long; 0: 1 */
    int n_ckpt; /* recurrent-state checkpoints per sequence (mp_ctx_params.n_ckpt) */
    bool pack;              /* the experts are a pack's blocks (always streamed) */
    size_t align;           /* the io's read alignment (mp_io_file_align); 0: 4096 */
    /* What the machine allows (mp_mem_allowance_read), for the default
     * budget: used only when no budget option above is set. NULL (or
     * allowed 0): map the whole file, as --mmap does. */
    const mp_mem_allowance *machine;
    uint64_t extra_overhead; /* bytes the runtime holds besides (a --predictor's nets) */
} mp_plan_opts;

/* What the default budget decided (opts.machine given, no budget option). */
typedef enum mp_plan_auto {
    MP_PLAN_AUTO_OFF = 0,    /* not asked: a budget option, --mmap, or nothing known of the machine */
    MP_PLAN_AUTO_FITS,       /* the whole file fits the allowance less the margin: every weight read
                              * into RAM (offload with a slot for every expert) when that fits too,
                              * else (or without routed experts) mapped */
    MP_PLAN_AUTO_STREAM,     /* it does not: experts stream with budget = allowance - margin */
    MP_PLAN_AUTO_TOO_SMALL,  /* neither fits: mapped anyway (the machine pages), stream_min says why */
    MP_PLAN_AUTO_NO_EXPERTS, /* mapped does not fit, but no routed experts to stream: mapped anyway */
} mp_plan_auto;

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
    uint64_t budget;       /* opts.mem or the default budget, 0 if none */
    /* The default budget: what was decided and from what. */
    mp_plan_auto auto_mode;
    mp_mem_allowance machine; /* opts.machine's figures (zero when not given) */
    uint64_t margin;          /* mp_plan_margin(machine.allowed) */
    uint64_t mapped_total;    /* the whole-file plan's total, compared with allowed - margin */
    uint64_t stream_min;      /* MP_PLAN_AUTO_TOO_SMALL: the smallest streaming plan */
} mp_plan;

/* Expert byte ranges of a GGUF model: locs[layer * n_expert + e] holds the
 * gate, up and down ranges (n_parts 0 for dense layers). Caller frees. */
int mp_expert_locs_gguf(const mp_model *m, mp_expert_loc **locs, mp_err *err);

/* Makes the plan. Offload when any budget option is set. With none and
 * opts.machine given: map when the whole file fits machine->allowed less
 * mp_plan_margin -- reading every weight into RAM instead (offload with a
 * slot per expert) when that fits as well and the model has routed experts
 * --, else offload with --mem = that figure rounded down to
 * whole MiB; when even the smallest streaming plan does not fit, map (see
 * mp_plan_auto). A pack always streams (a cache of every expert when
 * nothing limits it). Returns MP_OK or MP_E_BUDGET (only for a budget option)
 * with err saying the minimum and its parts. */
int mp_plan_make(const mp_model *m, const mp_expert_loc *locs, const mp_plan_opts *o, mp_plan *p, mp_err *err);

/* One line: "memory plan: resident 1.2 GiB + KV ... = 2.0 GiB (budget 2 GiB)". */
void mp_plan_describe(const mp_plan *p, char *buf, size_t cap);

/* The default budget's announcement when it did not simply map ("" for
 * MP_PLAN_AUTO_OFF and _FITS), one line without a newline, e.g.
 * "plan: the model needs 19.21 GiB mapped, more than this machine allows
 * (cgroup limit 8 GiB, less 512 MiB for the rest): streaming experts with
 * --mem 7680M (--mmap maps the whole file)". */
void mp_plan_note(const mp_plan *p, char *buf, size_t cap);

#endif
