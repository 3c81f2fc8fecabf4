#include "model/route.h"

#include "experts/predict.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

void mp_route_token(const mp_hparams *hp, float *logits, int32_t *sel, float *w)
{
    const int X = (int)hp->n_expert, K = (int)hp->n_expert_used;
    mp_softmax(logits, X);
    for (int s = 0; s < K; s++) {
        int best = -1;
        for (int e = 0; e < X; e++) {
            int taken = 0;
            for (int p = 0; p < s; p++) taken |= sel[p] == e;
            if (!taken && (best < 0 || logits[e] > logits[best])) best = e;
        }
        sel[s] = best;
        w[s] = logits[best];
    }
    if (hp->norm_topk) {
        /* ggml_sum_rows sums in double (ggml_vec_sum_f32), then rounds: with
         * k >= 3 a float sum differs */
        double dsum = 0.0;
        for (int s = 0; s < K; s++) dsum += (double)w[s];
        float sum = (float)dsum;
        if (sum < 6.103515625e-5f) sum = 6.103515625e-5f;
        for (int s = 0; s < K; s++) w[s] /= sum;
    }
    if (hp->expert_weights_scale != 0.0f && hp->expert_weights_scale != 1.0f)
        for (int s = 0; s < K; s++) w[s] *= hp->expert_weights_scale;
}

void mp_model_gate_probs(const void *model, int layer, const float *h, float *probs, void *scratch)
{
    const mp_model *m = model;
    const mp_hparams *hp = &m->hp;
    const mp_layer *l = &m->layers[layer];
    const int64_t E = hp->n_embd, X = hp->n_expert;
    float *xn = scratch;                              /* (E) normed row */
    void *xq = (char *)scratch + (((size_t)E * 4 + 63) & ~(size_t)63); /* activation row, <= E * 4 bytes */
    mp_rmsnorm(xn, h, l->ffn_norm.data, E, hp->rms_eps);
    mp_quantize_act(l->ffn_gate_inp.type, xn, xq, E);
    mp_matmul_rows(l->ffn_gate_inp.type, l->ffn_gate_inp.data, E, 0, X, xq, 1, probs, X);
    mp_softmax(probs, X);
}
