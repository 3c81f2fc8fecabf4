/* Routing: which experts a token goes to, with the architecture's exact
 * rule (as llama.cpp's build_moe_ffn), and the same router offered to the
 * streamer's predictor. */
#ifndef MP_ROUTE_H
#define MP_ROUTE_H

#include "model/model.h"

#include <stdint.h>

/* One token: logits (n_expert router outputs; overwritten with the gate
 * probabilities) -> sel[k] (best first) and their weights w[k]: softmax,
 * top-k, renormalised when the architecture says so, scaled. */
void mp_route_token(const mp_hparams *hp, float *logits, int32_t *sel, float *w);

/* mp_gate_fn (experts/predict.h) for model m (passed as ud): layer's FFN
 * norm, router and softmax applied to the residual row h. */
void mp_model_gate_probs(const void *m, int layer, const float *h, float *probs, void *scratch);

/* Lookahead's compact routers: a q8_0 copy of every f32 router (rows a
 * multiple of 32), a quarter of its bytes, so that applying a later layer's
 * router costs the forward thread a quarter of the memory traffic (on a
 * Qwen3-30B-A3B shape, 48 routers of 1 MiB read twice a token at d = 2 took
 * ~5% of decode). Predictions only: the routing itself always uses the
 * model's own router. The copy borrows m (it must outlive it). */
typedef struct mp_gate_copy mp_gate_copy;
uint64_t mp_model_gate_copy_bytes(const mp_model *m); /* what create allocates, for the planner */
int mp_model_gate_copy_create(mp_gate_copy **out, const mp_model *m, mp_err *err);
void mp_model_gate_copy_free(mp_gate_copy *g); /* NULL-safe */
/* mp_gate_fn with ud = an mp_gate_copy: as mp_model_gate_probs, with the
 * copy where there is one. */
void mp_model_gate_probs_compact(const void *g, int layer, const float *h, float *probs, void *scratch);

#endif
