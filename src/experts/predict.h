/* Expert predictors for prefetching, behind one interface.
 *
 * At MoE layer L, once the hidden state h that feeds layer L's experts is
 * known, the streamer (stream.c) asks the predictor which experts layers
 * L+1..L+d will pick, and queues them as low-priority loads.
 *   lookahead: apply layer L+d's own FFN norm and router to h (exactly as
 *              that layer would to its own input) and take its top-k (+extra),
 *              keeping only picks with gate probability >= min_prob (by
 *              default 1/k: a pick holding at least its share of k picks).
 *   oracle:    replay the routing recorded by --trace-out in an earlier,
 *              identical run (perfect prediction; an upper bound for
 *              measurements only), or, when the run replays a routing
 *              trace (--routing-trace), that same routing table. Positions
 *              map as trace/routing.h says (sequences concatenated); trace
 *              layer i is the model's i-th MoE layer.
 * Predictions of dense layers are empty, and so are lookahead's of layers
 * past the last one. */
#ifndef MP_PREDICT_H
#define MP_PREDICT_H

#include "common/err.h"

#include <stddef.h>

#include <stdbool.h>
#include <stdint.h>

typedef enum mp_prefetch_kind {
    MP_PREFETCH_NONE = 0,
    MP_PREFETCH_LOOKAHEAD = 1,
    MP_PREFETCH_ORACLE = 2,
} mp_prefetch_kind;

typedef struct mp_prefetch_cfg {
    mp_prefetch_kind kind;
    int lookahead;            /* d: layers ahead (>= 1) */
    int extra;                /* m: also the next m experts by score */
    float min_prob;           /* lookahead: a token's pick is prefetched only if
                               * its gate probability is at least this (0: all;
                               * negative: 1/k, k the experts used per token) */
    const char *oracle_trace; /* routing trace for MP_PREFETCH_ORACLE */
    const struct mp_routing *routing; /* the routing the run replays (borrowed, outlives
                                       * the predictor); the oracle reads it instead of
                                       * oracle_trace; NULL: none */
} mp_prefetch_cfg;

/* Parses "none", "lookahead", "oracle". */
int mp_prefetch_kind_parse(const char *s, mp_prefetch_kind *out);
const char *mp_prefetch_kind_name(mp_prefetch_kind k);

typedef struct mp_predictor mp_predictor;
struct mp_experts_shape;

/* The model's router, for lookahead: fills probs[n_expert] with the gate
 * probabilities layer `layer` gives the hidden row h (n_embd floats, the
 * residual entering that layer's FFN; the FFN norm is applied inside), as
 * that layer's own routing computes them. scratch: MP_GATE_SCRATCH_BYTES
 * bytes, 64-byte aligned. The model supplies it (model/route.h), so the
 * streamer needs no model internals. */
typedef void (*mp_gate_fn)(const void *ud, int layer, const float *h, float *probs, void *scratch);
#define MP_GATE_SCRATCH_BYTES(n_embd) ((size_t)(n_embd) * 8 + 128)

/* What the predictor sees at layer L for a chunk of T tokens. */
typedef struct mp_predict_in {
    int layer;        /* L */
    int pos0, T;      /* positions pos0 .. pos0+T-1 */
    const float *h;   /* (T, n_embd) residual stream entering L's FFN */
} mp_predict_in;

/* Creates a predictor for a model of shape sh (copied). Lookahead calls
 * gate(gate_ud, ...); the oracle borrows cfg->routing, or reads
 * cfg->oracle_trace now (MP_E_INVAL naming the file when it does not fit). */
int mp_predictor_create(mp_predictor **out, const struct mp_experts_shape *sh, const mp_prefetch_cfg *cfg,
                        mp_gate_fn gate, const void *gate_ud, mp_err *err);
void mp_predictor_free(mp_predictor *p); /* NULL-safe */

/* Experts of target_layer predicted from `in`, best first, at most cap.
 * Returns the count (0 for dense layers or target past the last layer). */
int mp_predict(mp_predictor *p, const mp_predict_in *in, int target_layer, int32_t *out, int cap);

/* The gate-probability threshold lookahead applies (min_prob resolved). */
float mp_predict_min_prob(const mp_predictor *p);

/* Whether the predictor also knows the routing of tokens after this chunk,
 * so that a target past the last layer means layer target - n_layer of the
 * next token (the oracle only; lookahead has no next hidden state). */
bool mp_predict_crosses_tokens(const mp_predictor *p);

#endif
