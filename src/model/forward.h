/* A context: the KV cache, scratch buffers and thread pool for running a
 * model. Evaluation appends tokens at position n_past. A chunk of T tokens
 * runs layer by layer as matrix-matrix products (prefill); T = 1 is decode.
 * All buffers are allocated at create time: evaluation never allocates. */
#ifndef MP_FORWARD_H
#define MP_FORWARD_H

#include "common/err.h"
#include "experts/experts.h"
#include "model/model.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mp_ctx_params {
    int n_ctx;     /* KV cache length in tokens (0: min(model's, 4096)) */
    int n_batch;   /* max tokens per forward chunk (0: 512) */
    int n_threads; /* 0: all online CPUs */
    int n_seq;     /* KV caches (sequences) sharing the scratch and the threads; 0: 1 */
    int n_ckpt;    /* recurrent-state checkpoints per sequence (mp_ctx_truncate); 0: none */
} mp_ctx_params;

/* Called once per (token, MoE layer) with the selected experts (best first)
 * and their final weights; used for routing traces and statistics. */
typedef void (*mp_route_fn)(void *ud, int layer, int pos, const int32_t *experts, const float *weights, int k,
                            const float *h);

/* Replaces the routing of one token at one MoE layer (layer: the model's
 * layer index, pos: the token's position). Called after the model's own
 * routing with its choice in experts[k] (best first) and weights[k], which
 * it may overwrite (experts in [0, n_expert)). Returns MP_OK, or a negative
 * status with err filled, which fails the eval. The route callback then
 * sees the replaced choice. Routing replay (--routing-trace) uses it, so the
 * model knows nothing of traces. */
typedef int (*mp_route_override_fn)(void *ud, int layer, int pos, int32_t *experts, float *weights, int k,
                                    mp_err *err);

typedef struct mp_ctx mp_ctx;

/* The context borrows m and x (both must outlive it). */
int mp_ctx_create(mp_ctx **out, const mp_model *m, mp_experts *x, const mp_ctx_params *p, mp_err *err);
void mp_ctx_free(mp_ctx *c); /* NULL-safe */

/* Sliding-window layers (gpt-oss) keep the keys of a window, not of the
 * context: a run of cells that slides forward, its first cell a multiple of
 * MP_SWA_ALIGN positions (the flash attention's key tile, so tiles stay
 * aligned to position 0 as llama.cpp's are to cell 0). */
#define MP_SWA_ALIGN 64

/* KV cells of layer il: n_ctx, or fewer for a sliding-window layer (its
 * window, the alignment and one chunk of n_batch, padded to 256). */
int mp_ctx_kv_cells(const mp_model *m, uint32_t il, int n_ctx, int n_batch);

/* Bytes the context allocates for the KV cache of one sequence (with the
 * recurrent state of Gated DeltaNet layers, which mp_ctx_state_bytes gives
 * alone: it does not grow with n_ctx) and for scratch, for the memory
 * planner (same formulas as create). */
uint64_t mp_ctx_kv_bytes(const mp_model *m, int n_ctx, int n_batch);
uint64_t mp_ctx_state_bytes(const mp_model *m); /* also one checkpoint's (n_ckpt) */
uint64_t mp_ctx_scratch_bytes(const mp_model *m, int n_ctx, int n_batch, int n_threads);

int mp_ctx_n_ctx(const mp_ctx *c);
/* Sequences: each has its own KV cache (n_ctx positions) and n_past; eval,
 * truncate and n_past act on the current one (0 after create). A server
 * interleaves its requests' steps by switching between them; the scratch,
 * thread pool and the model's experts stay shared. */
int mp_ctx_n_seq(const mp_ctx *c);
int mp_ctx_n_ckpt(const mp_ctx *c); /* checkpoints per sequence in effect (0 without recurrent layers) */
int mp_ctx_n_batch(const mp_ctx *c);
void mp_ctx_set_seq(mp_ctx *c, int seq); /* 0 <= seq < n_seq */
int mp_ctx_seq(const mp_ctx *c);
int mp_ctx_n_past(const mp_ctx *c);
/* Forgets positions >= n_past (0 clears the cache and any recurrent state).
 * MP_E_RANGE (nothing changed) when n_past is beyond n_past, negative, or
 * 0 < n_past < mp_ctx_truncate_min: sliding-window layers no longer hold keys
 * the next token there would see. MP_E_UNSUPPORTED (nothing changed) for
 * 0 < n_past < the current n_past on a model with recurrent (Gated DeltaNet)
 * layers, unless n_past is a checkpoint's position: their state holds no
 * earlier position, so the caller truncates to the checkpoint below
 * (mp_ctx_resume_point) or to 0 and re-evaluates the rest of the prefix it
 * keeps. A checkpoint is a copy of the sequence's recurrent state taken at
 * the end of each eval of more than one token (a prompt), n_ckpt per
 * sequence, the lowest position replaced first; truncating drops those past
 * the new n_past. A failed eval clears a recurrent model's sequence to 0. */
int mp_ctx_truncate(mp_ctx *c, int n_past);
int mp_ctx_truncate_min(const mp_ctx *c); /* 0: any n_past */
/* The largest position <= n_past that mp_ctx_truncate accepts now (the
 * current n_past when n_past is beyond it; 0 when nothing below is kept). */
int mp_ctx_resume_point(const mp_ctx *c, int n_past);

void mp_ctx_set_route_cb(mp_ctx *c, mp_route_fn fn, void *ud);
void mp_ctx_set_route_override(mp_ctx *c, mp_route_override_fn fn, void *ud); /* NULL: the model's own */
/* Hands resident matmuls with a device copy and the routed experts to a
 * compute backend (gpu/backend.h; borrowed, must outlive its use); NULL:
 * everything on the CPU. A "sim" backend changes no result. */
struct mp_backend;
void mp_ctx_set_backend(mp_ctx *c, struct mp_backend *be);

/* Evaluates ids[0..n) at positions n_past.. and advances n_past. logits
 * (may be NULL) receives n_vocab floats for the last token, or n * n_vocab
 * for every token when all is true. Fails with MP_E_RANGE when the context
 * would overflow, MP_E_INVAL for an out-of-range id, or the expert
 * provider's error; on failure n_past is unchanged (0 when a sliding-window
 * layer had already moved past what the old n_past needs). */
int mp_ctx_eval(mp_ctx *c, const int32_t *ids, int n, float *logits, bool all, mp_err *err);

#endif
