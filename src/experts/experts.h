/* The streamer: the one door through which the forward pass reaches
 * routed-expert weights. The forward pass says which experts a layer needs
 * and computes them as they become ready; everything about where the bytes
 * are (a mapped file, or the expert cache reading a GGUF or a pack), how many
 * are requested at once (the streaming window) and what is loaded ahead
 * (the predictor and its prefetches) lives behind this header.
 *
 * One MoE layer of a chunk, from the forward pass's side:
 *
 *     mp_experts_begin_layer(x, L, needed, n, &view, err);
 *     while ((k = mp_experts_next(x, ex, w, MP_EXPERTS_BATCH_MAX, err)) > 0) {
 *         compute experts ex[0..k) with weights w[0..k);
 *         mp_experts_release(x, ex, k);
 *     }
 *     if (k < 0) fail;                    nothing is left pinned
 *     mp_experts_end_layer(x);
 *
 * and mp_experts_poll(x) between compute tasks, from the same thread.
 *
 * Inside: at most `window` experts are requested and not yet released (half
 * the cache's slots, at least k, at most MP_EXPERTS_BATCH_MAX), so a cache
 * smaller than a layer's expert count works and prefetches keep room. Once
 * the layer's last expert is requested, the predictor's picks for layers
 * L+1 .. L+d are queued as low-priority loads; after the layer, the unused
 * ones are expired (they were wrong). Hits are delivered first, misses as
 * their reads land.
 *
 * Not thread-safe: one thread (the forward pass's) drives a streamer. */
#ifndef MP_EXPERTS_H
#define MP_EXPERTS_H

#include "common/err.h"
#include "experts/predict.h"

#include <stdbool.h>
#include <stdint.h>

/* Most experts handed out by one mp_experts_next, and most requested and
 * not yet released at once (the window's cap). */
#define MP_EXPERTS_BATCH_MAX 64
/* Most experts a layer may have (router width). */
#define MP_EXPERTS_MAX 4096

/* Weights of one expert, in the layer's tensor types and shapes (gate/up:
 * n_ff_exp rows of n_embd; down: n_embd rows of n_ff_exp). */
typedef struct mp_expert_w {
    const void *gate;
    const void *up;
    const void *down;
    /* bit 0 gate, 1 up, 2 down: that matrix is in the interleaved row layout
     * (kernels.h; the cache slot's fill hook rewrote it); 0 for mapped views */
    uint8_t repacked;
} mp_expert_w;

/* The model as the streamer sees it. */
typedef struct mp_experts_shape {
    uint32_t n_layer, n_expert, n_expert_used, n_embd;
    const uint8_t *is_moe; /* [n_layer]: 1 for layers with routed experts; copied */
} mp_experts_shape;

typedef struct mp_experts mp_experts;
struct mp_cache;

/* Views into a mapped file: views[layer * n_expert + expert] (copied; the
 * mapping must outlive the streamer). Never fails after creation. */
int mp_experts_open_mapped(mp_experts **out, const mp_experts_shape *sh, const mp_expert_w *views, mp_err *err);
/* Through the expert cache (borrowed: it must outlive the streamer). */
int mp_experts_open_cached(mp_experts **out, const mp_experts_shape *sh, struct mp_cache *cache, mp_err *err);
void mp_experts_free(mp_experts *x); /* NULL-safe */

/* Prefetching: creates the predictor for cfg (kind NONE: none). gate is the
 * model's router for lookahead (see predict.h); gate_ud is passed to it.
 * Meaningful only for a streamer that loads (cached); a mapped one accepts
 * and ignores predictions. Returns MP_OK, MP_E_INVAL (bad config, e.g. an
 * oracle without a trace) or the trace reader's error. */
int mp_experts_set_prefetch(mp_experts *x, const mp_prefetch_cfg *cfg, mp_gate_fn gate, const void *gate_ud,
                            mp_err *err);
/* The prefetch configuration in effect (kind NONE when there is none) and
 * the gate-probability threshold lookahead applies (its default resolved). */
mp_prefetch_cfg mp_experts_prefetch(const mp_experts *x);
float mp_experts_prefetch_min_prob(const mp_experts *x);
/* The adaptive lookahead's counters since the streamer was made (zeros
 * for other predictors). */
mp_predict_stats mp_experts_predict_stats(const mp_experts *x);

/* What the predictor may look at while layer L runs for a chunk of T tokens
 * at positions pos0..: h is (T, n_embd), the residual entering L's FFN. */
typedef struct mp_experts_view {
    int pos0, T;
    const float *h;
} mp_experts_view;

/* Starts MoE layer `layer` of a chunk: experts needed[0..n) (distinct,
 * each < n_expert; n <= n_expert) will be delivered by mp_experts_next.
 * view is borrowed until mp_experts_end_layer. Returns MP_OK or MP_E_INVAL
 * (a bad list, or a layer already begun and not ended). */
int mp_experts_begin_layer(mp_experts *x, int layer, const int *needed, int n, const mp_experts_view *view,
                           mp_err *err);
/* Hands out between 1 and cap ready experts, pinned (blocks until at least
 * one is ready): ex[i] and their weights w[i]. Returns the count; 0 when
 * every needed expert has been handed out; or a negative status (I/O,
 * checksum, budget) with err naming the file, layer, expert and offset, in
 * which case nothing handed out by this call stays pinned and the layer's
 * remaining demands are dropped. */
int mp_experts_next(mp_experts *x, int *ex, mp_expert_w *w, int cap, mp_err *err);
/* Unpins experts handed out by mp_experts_next. */
void mp_experts_release(mp_experts *x, const int *ex, int n);
/* Ends the layer: predictions for it that were not used are expired. */
void mp_experts_end_layer(mp_experts *x);
/* Lets finished reads be reaped and queued ones start; never blocks and
 * hands nothing out. Cheap; call it between compute tasks. */
void mp_experts_poll(mp_experts *x);

#endif
