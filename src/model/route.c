#include "model/route.h"

#include "experts/predict.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

#include <math.h>
#include <stdlib.h>

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
    else if (hp->gating != MP_GATING_SOFTMAX_WEIGHT) /* gpt-oss: probs = the raw logits */
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
    if (hp->gating == MP_GATING_SOFTMAX_WEIGHT) mp_softmax(w, K); /* softmax over the k picks */
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
    return m->hp.gating == MP_GATING_SOFTMAX && m->hp.n_group <= 1 && !m->layers[layer].exp_probs_b.info;
}

/* The router's output for one row: FFN norm, then the router matrix (the
 * model's own, or lookahead's compact copy), then the gating function. */
static void gate_probs(const mp_model *m, int layer, const float *h, float *probs, void *scratch, uint32_t wtype,
                       const void *W)
{
    const mp_hparams *hp = &m->hp;
    const mp_layer *l = &m->layers[layer];
    const int64_t E = hp->n_embd, X = hp->n_expert;
    float *xn = scratch;                              /* (E) normed row */
    void *xq = (char *)scratch + (((size_t)E * 4 + 63) & ~(size_t)63); /* activation row, <= E * 4 bytes */
    mp_rmsnorm(xn, h, l->ffn_norm.data, E, hp->rms_eps);
    mp_quantize_act(wtype, xn, xq, E);
    mp_matmul_rows(wtype, W, E, 0, X, xq, 1, probs, X);
    if (l->ffn_gate_inp_b.info) /* gpt-oss's router bias */
        for (int64_t e = 0; e < X; e++) probs[e] += ((const float *)l->ffn_gate_inp_b.data)[e];
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

void mp_model_gate_probs(const void *model, int layer, const float *h, float *probs, void *scratch)
{
    const mp_model *m = model;
    const mp_tensor *r = &m->layers[layer].ffn_gate_inp;
    gate_probs(m, layer, h, probs, scratch, r->type, r->data);
}

/* ---- lookahead's compact routers ---------------------------------------- */

struct mp_gate_copy {
    const mp_model *m;
    void **q8; /* [n_layer]: the router in q8_0, NULL where it is kept as is */
};

/* A router worth a copy: f32 (what GGUF files keep routers in) with rows
 * that split into q8_0 blocks. */
static bool copyable(const mp_model *m, const mp_tensor *r)
{
    return r->info && r->type == MP_TYPE_F32 && m->hp.n_expert && m->hp.n_embd % 32 == 0;
}

uint64_t mp_model_gate_copy_bytes(const mp_model *m)
{
    uint64_t b = 0;
    for (uint32_t il = 0; il < m->hp.n_layer; il++)
        if (copyable(m, &m->layers[il].ffn_gate_inp))
            b += (uint64_t)mp_row_size(MP_TYPE_Q8_0, m->hp.n_embd) * m->hp.n_expert;
    return b;
}

int mp_model_gate_copy_create(mp_gate_copy **out, const mp_model *m, mp_err *err)
{
    *out = NULL;
    mp_gate_copy *g = calloc(1, sizeof *g);
    if (g) g->q8 = calloc(m->hp.n_layer ? m->hp.n_layer : 1, sizeof *g->q8);
    if (!g || !g->q8) {
        if (g) free(g->q8);
        free(g);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    g->m = m;
    const int64_t E = m->hp.n_embd, X = m->hp.n_expert;
    const size_t row = mp_row_size(MP_TYPE_Q8_0, E);
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        const mp_tensor *r = &m->layers[il].ffn_gate_inp;
        if (!r->data || !copyable(m, r)) continue;
        if (!(g->q8[il] = malloc(row * (size_t)X))) {
            mp_model_gate_copy_free(g);
            return mp_err_set(err, MP_E_NOMEM, "out of memory");
        }
        /* q8_0 weights have the layout of q8_0 activations: 32 int8 and an f16 scale */
        for (int64_t e = 0; e < X; e++)
            mp_quantize_act(MP_TYPE_Q8_0, (const float *)r->data + e * E, (char *)g->q8[il] + (size_t)e * row, E);
    }
    *out = g;
    return MP_OK;
}

void mp_model_gate_copy_free(mp_gate_copy *g)
{
    if (!g) return;
    for (uint32_t il = 0; g->q8 && il < g->m->hp.n_layer; il++) free(g->q8[il]);
    free(g->q8);
    free(g);
}

void mp_model_gate_probs_compact(const void *ud, int layer, const float *h, float *probs, void *scratch)
{
    const mp_gate_copy *g = ud;
    if (!g->q8[layer]) {
        mp_model_gate_probs(g->m, layer, h, probs, scratch);
        return;
    }
    gate_probs(g->m, layer, h, probs, scratch, MP_TYPE_Q8_0, g->q8[layer]);
}
