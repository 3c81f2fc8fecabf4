#include "model/route.h"

#include "experts/predict.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

#include <math.h>

/* Index of the largest of v[0..n) not yet taken (first on ties), -1 if none. */
static int argmax_free(const float *v, int n, const unsigned char *taken)
{
    int best = -1;
    for (int e = 0; e < n; e++)
        if (!taken[e] && (best < 0 || v[e] > v[best])) best = e;
    return best;
}

void mp_route_token(const mp_hparams *hp, const float *bias, float *logits, int32_t *sel, float *w)
{
    const int X = (int)hp->n_expert, K = (int)hp->n_expert_used;
    /* probs: overwrite logits (llama.cpp build_moe_ffn) */
    if (hp->gating == MP_GATING_SIGMOID)
        for (int e = 0; e < X; e++) logits[e] = 1.0f / (1.0f + expf(-logits[e]));
    else
        mp_softmax(logits, X);
    /* selection scores: probs + bias (the bias only chooses; weights come from probs) */
    float score[MP_ROUTE_MAX_EXPERTS];
    unsigned char taken[MP_ROUTE_MAX_EXPERTS] = {0};
    for (int e = 0; e < X; e++) score[e] = bias ? logits[e] + bias[e] : logits[e];
    if (hp->n_group > 1) {
        /* keep the n_group_used groups whose two best scores sum highest */
        const int G = (int)hp->n_group, per = X / G;
        float gscore[MP_ROUTE_MAX_EXPERTS];
        for (int g = 0; g < G; g++) {
            const float *s = score + g * per;
            int a = 0;
            for (int e = 1; e < per; e++)
                if (s[e] > s[a]) a = e;
            int b = a == 0 ? 1 : 0;
            for (int e = 0; e < per; e++)
                if (e != a && s[e] > s[b]) b = e;
            gscore[g] = (float)((double)s[a] + (double)s[b]); /* ggml_sum_rows sums in double */
        }
        unsigned char gkeep[MP_ROUTE_MAX_EXPERTS] = {0}, gtaken[MP_ROUTE_MAX_EXPERTS] = {0};
        for (int i = 0; i < (int)hp->n_group_used; i++) {
            const int g = argmax_free(gscore, G, gtaken);
            gtaken[g] = 1;
            gkeep[g] = 1;
        }
        for (int e = 0; e < X; e++)
            if (!gkeep[e / per]) score[e] = -INFINITY;
    }
    for (int s = 0; s < K; s++) {
        const int best = argmax_free(score, X, taken);
        taken[best] = 1;
        sel[s] = best;
        w[s] = logits[best];
    }
    if (hp->norm_topk) {
        double sum = 0.0; /* ggml_sum_rows: a double accumulator */
        for (int s = 0; s < K; s++) sum += (double)w[s];
        float fs = (float)sum;
        if (fs < 6.103515625e-5f) fs = 6.103515625e-5f;
        for (int s = 0; s < K; s++) w[s] /= fs;
    }
    if (hp->expert_weights_scale != 0.0f && hp->expert_weights_scale != 1.0f)
        for (int s = 0; s < K; s++) w[s] *= hp->expert_weights_scale;
}

bool mp_route_is_plain_softmax(const mp_model *m, int layer)
{
    return m->hp.gating != MP_GATING_SIGMOID && m->hp.n_group <= 1 && !m->layers[layer].exp_probs_b.info;
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
    if (mp_route_is_plain_softmax(m, layer)) {
        mp_softmax(probs, X);
        return;
    }
    /* sigmoid / bias / groups: the layer's own selection; its k experts get
     * their routing weights normalised to sum 1 (so a threshold of 1/k
     * means "at least its share"), every other expert 0 */
    int32_t sel[MP_ROUTE_MAX_USED];
    float w[MP_ROUTE_MAX_USED];
    mp_route_token(hp, l->exp_probs_b.info ? l->exp_probs_b.data : NULL, probs, sel, w);
    const int K = (int)hp->n_expert_used;
    double sum = 0.0;
    for (int s = 0; s < K; s++) sum += (double)w[s];
    for (int64_t e = 0; e < X; e++) probs[e] = 0.0f;
    for (int s = 0; s < K; s++) probs[sel[s]] = sum > 0.0 ? (float)((double)w[s] / sum) : 1.0f / (float)K;
}
