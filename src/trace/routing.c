/* Routing tables for replay: see routing.h. */
#include "trace/routing.h"

#include <stdlib.h>
#include <string.h>

struct mp_routing {
    char *name;
    int64_t n_pos;
    uint32_t n_layers, k, n_seqs;
    int32_t *experts;   /* (n_pos, n_layers, k); -1 in a hole */
    float *weights;     /* (n_pos, n_layers, k) */
    int64_t *seq_start; /* (n_seqs + 1) first position of each sequence used, then n_pos */
    uint32_t *seq_id;   /* (n_seqs) index of each in the trace's order of first appearance */
    uint64_t n_uniform;
};

void mp_routing_free(mp_routing *r)
{
    if (!r) return;
    free(r->name);
    free(r->experts);
    free(r->weights);
    free(r->seq_start);
    free(r->seq_id);
    free(r);
}

static bool used(const mp_routing_opts *o, const mp_trace_rec *rec) { return !o->one_seq || rec->problem == o->seq; }

int mp_routing_build(const mp_trace *t, const char *name, const mp_routing_opts *o, mp_routing **out, mp_err *err)
{
    *out = NULL;
    int rc = MP_OK;
    int64_t *len = NULL; /* (n_problems) largest token_idx + 1 of each sequence used; 0: unused */
    mp_routing *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name)) || !(len = calloc(t->n_problems + 1, sizeof *len))) goto nomem;
    if (t->n_recs == 0) {
        rc = mp_err_set(err, MP_E_INVAL, "%s: the routing trace has no records", name);
        goto fail;
    }
    if (o->one_seq && o->seq >= t->n_problems) {
        rc = mp_err_set(err, MP_E_INVAL, "%s: no sequence %u: the trace has %u (0..%u, in order of first appearance)",
                        name, o->seq, t->n_problems, t->n_problems - 1);
        goto fail;
    }
    /* every record used must fit the model */
    uint32_t layers_seen = 0;
    for (size_t i = 0; i < t->n_recs; i++) {
        const mp_trace_rec *rec = &t->recs[i];
        if (!used(o, rec)) continue;
        if (rec->layer >= o->n_layers) {
            rc = mp_err_set(err, MP_E_INVAL,
                            "%s:%u: layer %u, but the model has %u MoE layers (trace layer i is the model's i-th "
                            "MoE layer)",
                            name, rec->line, rec->layer, o->n_layers);
            goto fail;
        }
        if (rec->k != o->k) {
            rc = mp_err_set(err, MP_E_INVAL, "%s:%u: %u experts per token, but the model routes each token to %u (k)",
                            name, rec->line, rec->k, o->k);
            goto fail;
        }
        for (uint32_t j = 0; j < rec->k; j++)
            if (t->experts[rec->off + j] >= o->n_experts) {
                rc = mp_err_set(err, MP_E_INVAL, "%s:%u: expert %u, but the model's MoE layers have %u experts", name,
                                rec->line, t->experts[rec->off + j], o->n_experts);
                goto fail;
            }
        if (rec->token_idx >= MP_ROUTING_MAX_POS) {
            rc = mp_err_set(err, MP_E_INVAL, "%s:%u: token_idx %lld: positions from %lld on cannot be replayed", name,
                            rec->line, (long long)rec->token_idx, (long long)MP_ROUTING_MAX_POS);
            goto fail;
        }
        if (rec->layer + 1 > layers_seen) layers_seen = rec->layer + 1;
        if (rec->token_idx + 1 > len[rec->problem]) len[rec->problem] = rec->token_idx + 1;
    }
    if (layers_seen < o->n_layers) {
        rc = mp_err_set(err, MP_E_INVAL, "%s: the trace routes %u MoE layers, but the model has %u", name, layers_seen,
                        o->n_layers);
        goto fail;
    }
    /* positions: the chosen sequence, or the sequences one after another */
    const uint32_t n_seqs = o->one_seq ? 1 : t->n_problems;
    if (!(r->seq_start = calloc(n_seqs + 1, sizeof *r->seq_start)) || !(r->seq_id = calloc(n_seqs, sizeof *r->seq_id)))
        goto nomem;
    int64_t pos = 0;
    for (uint32_t s = 0; s < n_seqs; s++) {
        const uint32_t id = o->one_seq ? o->seq : s;
        r->seq_id[s] = id;
        r->seq_start[s] = pos;
        pos += len[id];
        if (pos > MP_ROUTING_MAX_POS) {
            rc = mp_err_set(err, MP_E_INVAL, "%s: the sequences hold more than %lld positions together (replay one with "
                                             "--routing-seq)",
                            name, (long long)MP_ROUTING_MAX_POS);
            goto fail;
        }
    }
    r->seq_start[n_seqs] = pos;
    r->n_pos = pos;
    r->n_layers = o->n_layers;
    r->k = o->k;
    r->n_seqs = n_seqs;
    const uint64_t entries = (uint64_t)pos * o->n_layers * o->k;
    if (entries > MP_ROUTING_MAX_ENTRIES) {
        rc = mp_err_set(err, MP_E_INVAL, "%s: %lld positions x %u layers x %u experts is too large a table (at most %llu)",
                        name, (long long)pos, o->n_layers, o->k, (unsigned long long)MP_ROUTING_MAX_ENTRIES);
        goto fail;
    }
    if (!(r->experts = malloc(sizeof *r->experts * (entries ? entries : 1))) ||
        !(r->weights = malloc(sizeof *r->weights * (entries ? entries : 1))))
        goto nomem;
    memset(r->experts, 0xff, sizeof *r->experts * entries);
    for (size_t i = 0; i < t->n_recs; i++) {
        const mp_trace_rec *rec = &t->recs[i];
        if (!used(o, rec)) continue;
        const int64_t p = (o->one_seq ? 0 : r->seq_start[rec->problem]) + rec->token_idx;
        const size_t at = ((size_t)p * o->n_layers + rec->layer) * o->k;
        if (r->experts[at] >= 0) {
            rc = mp_err_set(err, MP_E_INVAL, "%s:%u: a second record for sequence %u, token_idx %lld, layer %u", name,
                            rec->line, rec->problem, (long long)rec->token_idx, rec->layer);
            goto fail;
        }
        for (uint32_t j = 0; j < o->k; j++) {
            r->experts[at + j] = (int32_t)t->experts[rec->off + j];
            r->weights[at + j] = rec->has_probs ? t->probs[rec->off + j] : 1.0f / (float)o->k;
        }
        if (!rec->has_probs) r->n_uniform++;
    }
    free(len);
    *out = r;
    return MP_OK;
nomem:
    rc = mp_err_set(err, MP_E_NOMEM, "%s: out of memory building the routing table", name);
fail:
    free(len);
    mp_routing_free(r);
    return rc;
}

int mp_routing_load(const char *path, const mp_routing_opts *o, mp_routing **out, mp_err *err)
{
    *out = NULL;
    mp_trace *t = NULL;
    int rc = mp_trace_read(path, &t, err);
    if (!rc) rc = mp_routing_build(t, path, o, out, err);
    mp_trace_free(t);
    return rc;
}

const int32_t *mp_routing_get(const mp_routing *r, int64_t pos, uint32_t layer, const float **weights)
{
    if (pos < 0 || pos >= r->n_pos || layer >= r->n_layers) return NULL;
    const size_t at = ((size_t)pos * r->n_layers + layer) * r->k;
    if (r->experts[at] < 0) return NULL;
    if (weights) *weights = r->weights + at;
    return r->experts + at;
}

const char *mp_routing_name(const mp_routing *r) { return r->name; }
int64_t mp_routing_n_pos(const mp_routing *r) { return r->n_pos; }
uint32_t mp_routing_n_seqs(const mp_routing *r) { return r->n_seqs; }
uint32_t mp_routing_k(const mp_routing *r) { return r->k; }
uint64_t mp_routing_n_uniform(const mp_routing *r) { return r->n_uniform; }

void mp_routing_locate(const mp_routing *r, int64_t pos, uint32_t *seq, int64_t *token_idx)
{
    uint32_t lo = 0, hi = r->n_seqs; /* the last s with seq_start[s] <= pos */
    while (hi - lo > 1) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if (r->seq_start[mid] <= pos) lo = mid;
        else hi = mid;
    }
    *seq = r->seq_id[lo];
    *token_idx = pos - r->seq_start[lo];
}
