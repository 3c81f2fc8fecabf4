#include "predict.h"

#include "kernels/kernels.h"
#include "model/ops.h"
#include "trace/trace.h"

#include <stdlib.h>
#include <string.h>

struct mp_predictor {
    const mp_model *m;
    mp_prefetch_cfg cfg;
    int max_tokens;
    float *xn;      /* (n_embd) normed row */
    uint8_t *xq;    /* activation row for the router */
    float *logits;  /* (n_expert) */
    int32_t *count; /* (n_expert) votes over the chunk's tokens */
    float *score;   /* (n_expert) summed probabilities */
    /* oracle: experts of (pos, layer), k each; -1 where unknown */
    int32_t *oracle;
    int oracle_npos, oracle_k;
};

int mp_prefetch_kind_parse(const char *s, mp_prefetch_kind *out)
{
    if (!strcmp(s, "none")) *out = MP_PREFETCH_NONE;
    else if (!strcmp(s, "lookahead")) *out = MP_PREFETCH_LOOKAHEAD;
    else if (!strcmp(s, "oracle")) *out = MP_PREFETCH_ORACLE;
    else return MP_E_INVAL;
    return MP_OK;
}

const char *mp_prefetch_kind_name(mp_prefetch_kind k)
{
    return k == MP_PREFETCH_LOOKAHEAD ? "lookahead" : k == MP_PREFETCH_ORACLE ? "oracle" : "none";
}

static int load_oracle(mp_predictor *p, mp_err *err)
{
    mp_trace *t = NULL;
    int rc = mp_trace_read(p->cfg.oracle_trace, &t, err);
    if (rc) return rc;
    const mp_hparams *hp = &p->m->hp;
    int64_t max_pos = -1;
    for (size_t i = 0; i < t->n_recs; i++)
        if (t->recs[i].token_idx > max_pos) max_pos = t->recs[i].token_idx;
    if (t->n_recs == 0 || max_pos < 0 || max_pos > (1 << 24) || t->n_layers > hp->n_layer || t->n_experts > hp->n_expert) {
        mp_trace_free(t);
        return mp_err_set(err, MP_E_INVAL, "%s: this trace does not fit the model (%u layers, %u experts)",
                          p->cfg.oracle_trace, hp->n_layer, hp->n_expert);
    }
    p->oracle_npos = (int)max_pos + 1;
    p->oracle_k = (int)hp->n_expert_used;
    p->oracle = malloc(sizeof(int32_t) * (size_t)p->oracle_npos * hp->n_layer * p->oracle_k);
    if (!p->oracle) {
        mp_trace_free(t);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    memset(p->oracle, 0xff, sizeof(int32_t) * (size_t)p->oracle_npos * hp->n_layer * p->oracle_k);
    for (size_t i = 0; i < t->n_recs; i++) {
        const mp_trace_rec *r = &t->recs[i];
        int32_t *dst = p->oracle + ((size_t)r->token_idx * hp->n_layer + r->layer) * p->oracle_k;
        for (uint32_t j = 0; j < r->k && (int)j < p->oracle_k; j++) dst[j] = (int32_t)t->experts[r->off + j];
    }
    mp_trace_free(t);
    return MP_OK;
}

int mp_predictor_create(mp_predictor **out, const mp_model *m, const mp_prefetch_cfg *cfg, int max_tokens,
                        mp_err *err)
{
    *out = NULL;
    mp_predictor *p = calloc(1, sizeof *p);
    if (!p) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    p->m = m;
    p->cfg = *cfg;
    if (p->cfg.lookahead < 1) p->cfg.lookahead = 1;
    p->max_tokens = max_tokens;
    const int64_t E = m->hp.n_embd, X = m->hp.n_expert ? m->hp.n_expert : 1;
    p->xn = malloc(sizeof(float) * (size_t)E);
    p->xq = malloc((size_t)E * 4 + 64);
    p->logits = malloc(sizeof(float) * (size_t)X);
    p->count = malloc(sizeof(int32_t) * (size_t)X);
    p->score = malloc(sizeof(float) * (size_t)X);
    int rc = (p->xn && p->xq && p->logits && p->count && p->score) ? MP_OK : mp_err_set(err, MP_E_NOMEM, "out of memory");
    if (!rc && cfg->kind == MP_PREFETCH_ORACLE) {
        if (!cfg->oracle_trace) rc = mp_err_set(err, MP_E_INVAL, "--prefetch oracle needs --oracle-trace FILE (a --trace-out of an identical run)");
        else rc = load_oracle(p, err);
    }
    if (rc) {
        mp_predictor_free(p);
        return rc;
    }
    *out = p;
    return MP_OK;
}

void mp_predictor_free(mp_predictor *p)
{
    if (!p) return;
    free(p->xn);
    free(p->xq);
    free(p->logits);
    free(p->count);
    free(p->score);
    free(p->oracle);
    free(p);
}

/* Orders the experts with votes or probability mass by (votes, summed
 * probability), best first, and writes at most cap of them. */
static int rank(const mp_predictor *p, int X, int32_t *out, int cap)
{
    int n = 0;
    for (int e = 0; e < X; e++) {
        if (p->count[e] == 0 && p->score[e] <= 0.0f) continue;
        /* insertion into the sorted prefix out[0..n) */
        int i;
        if (n < cap) {
            i = n++;
        } else {
            i = cap - 1; /* full: replace the worst if e beats it */
            if (p->count[out[i]] > p->count[e] ||
                (p->count[out[i]] == p->count[e] && p->score[out[i]] >= p->score[e]))
                continue;
        }
        while (i > 0 && (p->count[out[i - 1]] < p->count[e] ||
                         (p->count[out[i - 1]] == p->count[e] && p->score[out[i - 1]] < p->score[e]))) {
            out[i] = out[i - 1];
            i--;
        }
        out[i] = e;
    }
    return n;
}

int mp_predict(mp_predictor *p, const mp_predict_in *in, int target, int32_t *out, int cap)
{
    const mp_model *m = p->m;
    const mp_hparams *hp = &m->hp;
    if (target < 0 || target >= (int)hp->n_layer || !mp_layer_is_moe(&m->layers[target])) return 0;
    const int X = (int)hp->n_expert, K = (int)hp->n_expert_used;
    memset(p->count, 0, sizeof(int32_t) * (size_t)X);
    memset(p->score, 0, sizeof(float) * (size_t)X);
    if (p->cfg.kind == MP_PREFETCH_ORACLE) {
        for (int t = 0; t < in->T; t++) {
            const int pos = in->pos0 + t;
            if (pos >= p->oracle_npos) continue;
            const int32_t *r = p->oracle + ((size_t)pos * hp->n_layer + target) * p->oracle_k;
            for (int j = 0; j < p->oracle_k; j++)
                if (r[j] >= 0 && r[j] < X) p->count[r[j]]++;
        }
        return rank(p, X, out, cap);
    }
    if (p->cfg.kind != MP_PREFETCH_LOOKAHEAD) return 0;
    const mp_layer *l = &m->layers[target];
    const int64_t E = hp->n_embd;
    const int want = K + p->cfg.extra < X ? K + p->cfg.extra : X;
    const float min_prob = mp_predict_min_prob(p);
    for (int t = 0; t < in->T; t++) {
        mp_rmsnorm(p->xn, in->h + (int64_t)t * E, l->ffn_norm.data, E, hp->rms_eps);
        mp_quantize_act(l->ffn_gate_inp.type, p->xn, p->xq, E);
        mp_matmul_rows(l->ffn_gate_inp.type, l->ffn_gate_inp.data, E, 0, X, p->xq, 1, p->logits, X);
        mp_softmax(p->logits, X);
        /* top `want` of this token */
        for (int s = 0; s < want; s++) {
            int best = -1;
            for (int e = 0; e < X; e++)
                if (p->logits[e] >= 0.0f && (best < 0 || p->logits[e] > p->logits[best])) best = e;
            if (best < 0 || p->logits[best] < min_prob) break; /* sorted: the rest are lower */
            if (s < K) p->count[best]++;
            p->score[best] += p->logits[best];
            p->logits[best] = -1.0f;
        }
    }
    return rank(p, X, out, cap);
}

bool mp_predict_crosses_tokens(const mp_predictor *p) { return p && p->cfg.kind == MP_PREFETCH_ORACLE; }

float mp_predict_min_prob(const mp_predictor *p)
{
    return p->cfg.min_prob >= 0.0f ? p->cfg.min_prob : 1.0f / (float)p->m->hp.n_expert_used;
}
