#include "runtime/predictor_file.h"

#include "common/types.h"
#include "gguf/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_u32_key(const mp_gguf *g, const char *path, const char *key, uint32_t *v, mp_err *err)
{
    if (mp_gguf_get_u32(g, key, v, NULL) != MP_OK)
        return mp_err_set(err, MP_E_INVAL, "%s: no %s (a uint32): not a predictor written by train_predictor.py", path,
                          key);
    return MP_OK;
}

/* An integer array of exactly n elements (any integer type) into out[n]. */
static int get_int_arr(const mp_gguf *g, const char *path, const char *key, uint64_t *n, int64_t **out, mp_err *err)
{
    uint32_t type;
    const void *data;
    if (mp_gguf_get_arr(g, key, &type, n, &data, NULL) != MP_OK)
        return mp_err_set(err, MP_E_INVAL, "%s: no %s (an array of integers)", path, key);
    if (*n == 0 || *n > MP_PRED_FILE_MAX_NETS)
        return mp_err_set(err, MP_E_INVAL, "%s: %s has %llu entries (1 to %d nets)", path, key,
                          (unsigned long long)*n, MP_PRED_FILE_MAX_NETS);
    if (!(*out = malloc(sizeof(int64_t) * (size_t)*n))) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < *n; i++) {
        switch (type) {
        case MP_GGUF_INT32: (*out)[i] = ((const int32_t *)data)[i]; break;
        case MP_GGUF_UINT32: (*out)[i] = ((const uint32_t *)data)[i]; break;
        case MP_GGUF_INT64: (*out)[i] = ((const int64_t *)data)[i]; break;
        case MP_GGUF_UINT64: (*out)[i] = (int64_t)(((const uint64_t *)data)[i] & INT64_MAX); break;
        default:
            free(*out);
            *out = NULL;
            return mp_err_set(err, MP_E_INVAL, "%s: %s is an array of %s, not of integers", path, key,
                              mp_gguf_vtype_name(type));
        }
    }
    return MP_OK;
}

/* Tensor net.I.NAME into *out: F32, the shape given (ne0, ne1; ne1 = 0
 * for a vector). */
static int net_tensor(const mp_gguf *g, const char *path, int i, const char *name, int64_t ne0, int64_t ne1,
                      const float **out, mp_err *err)
{
    char full[64];
    snprintf(full, sizeof full, "net.%d.%s", i, name);
    const mp_gguf_tensor *t = mp_gguf_find_tensor(g, full);
    if (!t) return mp_err_set(err, MP_E_INVAL, "%s: net %d: tensor %s is missing", path, i, full);
    const uint32_t nd = ne1 ? 2 : 1;
    if (t->type != MP_TYPE_F32 || t->n_dims != nd || t->ne[0] != ne0 || (ne1 && t->ne[1] != ne1))
        return mp_err_set(err, MP_E_INVAL, "%s: net %d: %s is %s [%lld, %lld] (%u dims), expected f32 [%lld, %lld]",
                          path, i, full, mp_type_name(t->type), (long long)t->ne[0],
                          (long long)(t->n_dims > 1 ? t->ne[1] : 1), t->n_dims, (long long)ne0,
                          (long long)(ne1 ? ne1 : 1));
    if (!(*out = mp_gguf_tensor_data(g, t)))
        return mp_err_set(err, MP_E_INVAL, "%s: net %d: %s has no data", path, i, full);
    return MP_OK;
}

static int load(const mp_gguf *g, const char *path, const mp_experts_shape *sh, mp_pred_file *f, int64_t *src,
                int64_t *dst, int64_t *ahead, uint64_t n, bool prev_h, mp_err *err)
{
    const uint32_t n_layer = sh->n_layer, n_embd = sh->n_embd, n_expert = sh->n_expert;
    const uint8_t *is_moe = sh->is_moe;
    /* the model layer of each MoE layer index */
    int64_t layer_of[MP_PRED_FILE_MAX_LAYERS];
    int64_t n_moe = 0;
    for (uint32_t l = 0; l < n_layer && n_moe < MP_PRED_FILE_MAX_LAYERS; l++)
        if (is_moe[l]) layer_of[n_moe++] = l;
    /* shapes and layers first, then one allocation for every net's weights */
    uint64_t floats = 0;
    int *hidden = calloc(n, sizeof *hidden);
    int64_t *n_in = calloc(n, sizeof *n_in); /* fc1's input: n_embd, or + n_expert (prev_picks) */
    if (!hidden || !n_in) {
        free(hidden);
        free(n_in);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    int rc = MP_OK;
    for (uint64_t i = 0; i < n && !rc; i++) {
        const int ii = (int)i;
        if (src[i] < 0 || src[i] >= n_moe || dst[i] < 0 || dst[i] >= n_moe)
            rc = mp_err_set(err, MP_E_INVAL, "%s: net %d maps MoE layer %lld to MoE layer %lld, but the model has %lld "
                                             "layers with routed experts",
                            path, ii, (long long)src[i], (long long)dst[i], (long long)n_moe);
        else if (ahead[i] != 0 && ahead[i] != 1)
            rc = mp_err_set(err, MP_E_INVAL, "%s: net %d predicts %lld tokens ahead (0 or 1)", path, ii,
                            (long long)ahead[i]);
        else if ((ahead[i] == 0) != (dst[i] > src[i]))
            rc = mp_err_set(err, MP_E_INVAL, "%s: net %d maps layer %lld to layer %lld %s (the same token needs a "
                                             "later layer, the next token this one or an earlier one)",
                            path, ii, (long long)src[i], (long long)dst[i],
                            ahead[i] ? "of the next token" : "of the same token");
        for (uint64_t j = 0; j < i && !rc; j++)
            if (src[j] == src[i] && dst[j] == dst[i] && ahead[j] == ahead[i])
                rc = mp_err_set(err, MP_E_INVAL, "%s: nets %d and %d both map layer %lld to layer %lld", path, (int)j,
                                ii, (long long)src[i], (long long)dst[i]);
        if (rc) break;
        char name[64];
        snprintf(name, sizeof name, "net.%d.fc1.bias", ii);
        const mp_gguf_tensor *t = mp_gguf_find_tensor(g, name);
        if (!t) {
            rc = mp_err_set(err, MP_E_INVAL, "%s: net %d: tensor %s is missing", path, ii, name);
            break;
        }
        const int64_t H = t->ne[0];
        if (t->n_dims != 1 || H < MP_PRED_NET_ALIGN || H > MP_PRED_NET_MAX_HIDDEN || H % MP_PRED_NET_ALIGN) {
            rc = mp_err_set(err, MP_E_INVAL, "%s: net %d: a hidden layer of %lld (a multiple of %d, at most %d)", path,
                            ii, (long long)H, MP_PRED_NET_ALIGN, MP_PRED_NET_MAX_HIDDEN);
            break;
        }
        hidden[i] = (int)H;
        /* the input: h; with predictor.prev_h, h and dst's last residual; else h, or h
         * and the flags of dst's last picks (prev_picks) */
        snprintf(name, sizeof name, "net.%d.fc1.weight", ii);
        const mp_gguf_tensor *w = mp_gguf_find_tensor(g, name);
        if (prev_h) n_in[i] = 2 * (int64_t)n_embd;
        else n_in[i] = w && w->ne[0] == (int64_t)n_embd + n_expert ? (int64_t)n_embd + n_expert : (int64_t)n_embd;
        floats += (uint64_t)H * ((uint64_t)n_in[i] + 1 + n_expert) + n_expert;
    }
    if (!rc && (!(f->nets = calloc(n, sizeof *f->nets)) || !(f->data = malloc(sizeof(float) * floats))))
        rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
    float *at = f->data;
    for (uint64_t i = 0; i < n && !rc; i++) {
        const int ii = (int)i, H = hidden[i];
        const float *w1, *b1, *w2, *b2;
        if ((rc = net_tensor(g, path, ii, "fc1.weight", n_in[i], H, &w1, err)) ||
            (rc = net_tensor(g, path, ii, "fc1.bias", H, 0, &b1, err)) ||
            (rc = net_tensor(g, path, ii, "fc2.weight", H, n_expert, &w2, err)) ||
            (rc = net_tensor(g, path, ii, "fc2.bias", n_expert, 0, &b2, err)))
            break;
        mp_pred_net *nt = &f->nets[i];
        nt->src = (int)layer_of[src[i]];
        nt->dst = (int)layer_of[dst[i]];
        nt->ahead = (int)ahead[i];
        nt->hidden = H;
        nt->prev_h = prev_h;
        nt->prev_picks = !prev_h && n_in[i] != n_embd;
        float *pw1 = at, *pb1 = pw1 + (size_t)n_in[i] * H, *pw2 = pb1 + H, *pb2 = pw2 + (size_t)n_expert * H;
        at = pb2 + n_expert;
        memcpy(pw1, w1, sizeof(float) * (size_t)n_in[i] * H); /* [n_in, H]: row j is W1's row j */
        memcpy(pb1, b1, sizeof(float) * (size_t)H);
        memcpy(pw2, w2, sizeof(float) * (size_t)n_expert * H);
        memcpy(pb2, b2, sizeof(float) * n_expert);
        nt->w1 = pw1;
        nt->b1 = pb1;
        nt->w2 = pw2;
        nt->b2 = pb2;
    }
    free(hidden);
    free(n_in);
    if (!rc) {
        f->n_nets = (int)n;
        /* and the layers' last residuals the predictor keeps for prev_h nets */
        f->bytes = (floats + (prev_h ? (uint64_t)n_layer * n_embd : 0)) * sizeof(float);
    }
    return rc;
}

int mp_pred_file_load(const char *path, const mp_experts_shape *sh, mp_pred_file *out, mp_err *err)
{
    const uint32_t n_embd = sh->n_embd, n_expert = sh->n_expert, k = sh->n_expert_used;
    mp_gguf *g = NULL;
    int rc = mp_gguf_open(&g, path, NULL, err);
    if (rc) return rc;
    mp_pred_file f = {0};
    int64_t *src = NULL, *dst = NULL, *ahead = NULL;
    uint64_t ns = 0, nd = 0, na = 0;
    uint32_t fe = 0, fx = 0, fk = 0;
    const char *arch = mp_gguf_get_str(g, "general.architecture");
    if (!arch || strcmp(arch, "moepager-predictor"))
        rc = mp_err_set(err, MP_E_INVAL, "%s: architecture '%s', not 'moepager-predictor': not a predictor file", path,
                        arch ? arch : "(none)");
    if (!rc) rc = get_u32_key(g, path, "predictor.n_embd", &fe, err);
    if (!rc) rc = get_u32_key(g, path, "predictor.n_expert", &fx, err);
    if (!rc) rc = get_u32_key(g, path, "predictor.n_expert_used", &fk, err);
    if (!rc && (fe != n_embd || fx != n_expert || fk != k))
        rc = mp_err_set(err, MP_E_INVAL, "%s: made for a model of n_embd %u with %u experts (%u used), but this model "
                                         "has n_embd %u with %u experts (%u used)",
                        path, fe, fx, fk, n_embd, n_expert, k);
    if (!rc) rc = get_int_arr(g, path, "predictor.src", &ns, &src, err);
    if (!rc) rc = get_int_arr(g, path, "predictor.dst", &nd, &dst, err);
    if (!rc) rc = get_int_arr(g, path, "predictor.ahead", &na, &ahead, err);
    if (!rc && (nd != ns || na != ns))
        rc = mp_err_set(err, MP_E_INVAL, "%s: predictor.src, dst and ahead have %llu, %llu and %llu entries", path,
                        (unsigned long long)ns, (unsigned long long)nd, (unsigned long long)na);
    /* optional: 1 when every net also takes its layer's last residual */
    uint32_t prev_h = 0;
    if (!rc && mp_gguf_get(g, "predictor.prev_h") &&
        (mp_gguf_get_u32(g, "predictor.prev_h", &prev_h, NULL) != MP_OK || prev_h > 1))
        rc = mp_err_set(err, MP_E_INVAL, "%s: predictor.prev_h must be a uint32 of 0 or 1", path);
    if (!rc) rc = load(g, path, sh, &f, src, dst, ahead, ns, prev_h == 1, err);
    free(src);
    free(dst);
    free(ahead);
    mp_gguf_free(g);
    if (rc) {
        mp_pred_file_free(&f);
        return rc;
    }
    *out = f;
    return MP_OK;
}

void mp_pred_file_free(mp_pred_file *f)
{
    if (!f) return;
    free(f->nets);
    free(f->data);
    f->nets = NULL;
    f->data = NULL;
    f->n_nets = 0;
}
