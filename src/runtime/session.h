/* A session wires the parts together: model + memory plan + expert provider
 * (mapped file, or the expert cache streaming from disk) + context
 * (+ tokenizer). */
#ifndef MP_SESSION_H
#define MP_SESSION_H

#include "cache/cache.h"
#include "common/err.h"
#include "model/experts.h"
#include "model/forward.h"
#include "model/model.h"
#include "prefetch/predict.h"
#include "runtime/plan.h"
#include "tokenizer/tokenizer.h"

typedef struct mp_session_params {
    const char *model_path;
    int n_ctx, n_batch, n_threads;
    bool need_tokenizer; /* fail if the file has no usable tokenizer */
    /* Memory budget: any of these streams experts through the cache. */
    uint64_t mem;           /* --mem: whole process */
    uint64_t cache_bytes;   /* --cache-size */
    uint32_t cache_experts; /* --cache-experts: slots per MoE layer */
    const char *io;         /* "auto" (NULL), "uring", "pread" */
    unsigned io_depth;      /* 0: default */
    const char *policy;     /* replacement policy name; NULL: default */
    const char *fault_spec; /* I/O fault injection (tests); NULL: none */
    uint32_t io_timeout_ms; /* a read wait this long without progress fails the run; 0: 30000 */
    /* Prefetch (only when experts stream through the cache). */
    mp_prefetch_cfg prefetch;
    bool prefetch_set;      /* false: the default (MP_DEFAULT_PREFETCH) */
    const char *trace_out;  /* write the routing of every token and layer here */
    bool no_preload;        /* don't fill a cache that holds every expert at start */
    bool no_hugepages;      /* don't ask for transparent huge pages for the cache slab */
} mp_session_params;

/* Chosen by measurement (issue 4's note, bench model: Mixtral-style Q8_0,
 * 2.4 GB, 16 layers x 16 experts, top-2; caches of 25% and 50% of the expert
 * bytes; three sweeps, 3 cold repetitions each). Lookahead that prefetches
 * every top-2 pick read 29-81% more bytes per token (precision 50-72%) and
 * decoded from 10% faster to 22% slower than no prefetch, because the disk is
 * the bottleneck there. Keeping only picks with gate probability >= 0.5 = 1/k
 * (precision 65-85%), d=2 decoded 6-19% faster than none at both sizes in all
 * three sweeps (13% on average); d=1 gave -1% to +21% (12%), d=3 0% to +13%. */
#define MP_DEFAULT_PREFETCH MP_PREFETCH_LOOKAHEAD
#define MP_DEFAULT_LOOKAHEAD 2
/* -1: 1/k (k experts used per token), 0.5 on the bench model. An absolute 0.5
 * would switch prefetch off on models with many experts: in the FLAME-MoE
 * trace (64 experts, top-6) only 0.7% of first picks reach 0.5. */
#define MP_DEFAULT_PREFETCH_MIN_PROB (-1.0f)

typedef struct mp_session {
    mp_model *model;
    mp_experts *experts;
    mp_ctx *ctx;
    mp_tokenizer *tok; /* NULL when the file has none and none was required */
    mp_plan plan;
    mp_cache *cache;   /* NULL when experts are mapped */
    void *resident_buf;
    mp_predictor *pred;
    mp_prefetch_cfg prefetch; /* in effect */
    struct mp_trace_writer *trace;
    bool preloaded;               /* every expert was read at start */
    mp_cache_stats preload_stats; /* what that cost */
    uint64_t trace_errors;
    char note[1024];   /* announcements (fallbacks), "\n"-separated; "" if none */
} mp_session;

int mp_session_open(mp_session **out, const mp_session_params *p, mp_err *err);
void mp_session_free(mp_session *s); /* NULL-safe */

#endif
