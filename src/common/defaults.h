/* The one table of defaults: what a setting is when the user gives none.
 * The planner, the context, the session and the CLI (through the public
 * API's mp_params_default) all resolve their settings here, so that the
 * figure the planner counts is the one the run uses. */
#ifndef MP_DEFAULTS_H
#define MP_DEFAULTS_H

#include "common/sysinfo.h"

#include <stdint.h>

/* Context length: the model's training context, at most this. */
#define MP_DEFAULT_N_CTX_MAX 4096
/* Tokens per forward chunk (prefill batch). */
#define MP_DEFAULT_N_BATCH 512
/* Threads: 0 means every CPU this process may run on (mp_n_cpus). */
#define MP_DEFAULT_THREADS 0
/* Reads in flight per io backend. */
#define MP_DEFAULT_IO_DEPTH 16
/* Prefetch, chosen by measurement (issue 4's note, bench model:
 * Mixtral-style Q8_0, 2.4 GB, 16 layers x 16 experts, top-2; caches of 25%
 * and 50% of the expert bytes; three sweeps, 3 cold repetitions each).
 * Lookahead that prefetches every top-2 pick read 29-81% more bytes per
 * token (precision 50-72%) and decoded from 10% faster to 22% slower than no
 * prefetch, because the disk is the bottleneck there. Keeping only picks
 * with gate probability >= 0.5 = 1/k (precision 65-85%), d=2 decoded 6-19%
 * faster than none at both sizes in all three sweeps (13% on average); d=1
 * gave -1% to +21% (12%), d=3 0% to +13%. */
#define MP_DEFAULT_PREFETCH MP_PREFETCH_LOOKAHEAD
#define MP_DEFAULT_LOOKAHEAD 2
/* -1: 1/k (k experts used per token), 0.5 on the bench model. An absolute
 * 0.5 would switch prefetch off on models with many experts: in the
 * FLAME-MoE trace (64 experts, top-6) only 0.7% of first picks reach 0.5. */
#define MP_DEFAULT_PREFETCH_MIN_PROB (-1.0f)

/* n_ctx as asked (> 0), else the training context capped at MP_DEFAULT_N_CTX_MAX. */
static inline int mp_default_n_ctx(int asked, uint32_t n_ctx_train)
{
    if (asked > 0) return asked;
    return n_ctx_train > 0 && n_ctx_train < MP_DEFAULT_N_CTX_MAX ? (int)n_ctx_train : MP_DEFAULT_N_CTX_MAX;
}

/* n_batch as asked (> 0) or MP_DEFAULT_N_BATCH, at most n_ctx. */
static inline int mp_default_n_batch(int asked, int n_ctx)
{
    int b = asked > 0 ? asked : MP_DEFAULT_N_BATCH;
    return b > n_ctx ? n_ctx : b;
}

/* Threads as asked (> 0), else every CPU this process may use. */
static inline int mp_default_threads(int asked) { return asked > 0 ? asked : mp_n_cpus(); }

#endif
