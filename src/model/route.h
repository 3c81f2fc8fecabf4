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

#endif
