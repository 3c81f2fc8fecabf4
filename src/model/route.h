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

#endif
