/* Routing: which experts a token goes to, with the architecture's exact
 * rule (as llama.cpp's build_moe_ffn), and the same router offered to the
 * streamer's predictor. */
#ifndef MP_ROUTE_H
#define MP_ROUTE_H

#include "model/model.h"

#include <stdint.h>

#include <stdbool.h>

#define MP_ROUTE_MAX_EXPERTS 4096 /* hparams checks n_expert <= this */
#define MP_ROUTE_MAX_USED 64

/* One token: logits (n_expert router outputs; overwritten with the gate
 * probabilities) -> sel[k] (best first) and their weights w[k], as
 * llama.cpp's build_moe_ffn: softmax or sigmoid; selection on probs + bias
 * (bias: n_expert floats or NULL) within the n_group_used groups whose two
 * best scores sum highest (when n_group > 1); weights = the unbiased probs
 * of the picks, renormalised when the model says so, scaled. */
void mp_route_token(const mp_hparams *hp, const float *bias, float *logits, int32_t *sel, float *w);

/* True when layer's routing is softmax top-k over the router alone (no
 * sigmoid, bias or groups): its gate probabilities rank the experts. */
bool mp_route_is_plain_softmax(const mp_model *m, int layer);

/* mp_gate_fn (experts/predict.h) for model m (passed as ud): layer's FFN
 * norm and router applied to the residual row h. Plain softmax routing:
 * the softmax probabilities. Otherwise (sigmoid, selection bias, groups)
 * the layer's real selection: its k experts carry their routing weights
 * normalised to sum 1, all others 0. */
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
