#include "model/route.h"

#include "experts/predict.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

#include <stdlib.h>

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
    mp_softmax(probs, X);
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
    return r->data && r->type == MP_TYPE_F32 && m->hp.n_embd % 32 == 0;
}

uint64_t mp_model_gate_copy_bytes(const mp_model *m)
{
    uint64_t b = 0;
    for (uint32_t il = 0; il < m->hp.n_layer; il++)
        if (m->layers[il].ffn_gate_inp.type == MP_TYPE_F32 && m->hp.n_expert && m->hp.n_embd % 32 == 0)
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
        if (!copyable(m, r) || !X) continue;
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
