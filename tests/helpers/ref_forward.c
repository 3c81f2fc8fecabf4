/* Reference forward pass in double precision; see ref_forward.h.
 *
 * Deliberately naive: one token at a time, every matrix-vector product a
 * double loop over dequantised weights, no threads, no SIMD. Weights are kept
 * as the float values mp_dequantize_row() produces (exact); activations,
 * norms, RoPE, softmax and the KV cache are double. */
#include "ref_forward.h"

#include "common/types.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A dequantised tensor viewed as nrows rows of ncols (ncols = GGUF ne[0];
 * nrows = ne[1] * ne[2] * ne[3]). w == NULL means "absent". */
typedef struct ref_mat {
    float *w;
    int64_t ncols, nrows;
    uint32_t type; /* the file's type (decides the activation rounding) */
} ref_mat;

typedef struct ref_layer {
    ref_mat attn_norm;                  /* (n_embd) */
    ref_mat wq, wk, wv, wo;             /* (n_head*hd, n_embd), (n_kv*hd, n_embd) x2, (n_embd, n_head*hd) */
    ref_mat bq, bk, bv, bo;             /* optional biases */
    ref_mat q_norm, k_norm;             /* (hd) per head or (full width); optional */
    ref_mat ffn_norm;                   /* (n_embd) */
    ref_mat ffn_gate, ffn_up, ffn_down; /* dense: (n_ff, n_embd) x2, (n_embd, n_ff) */
    ref_mat router;                     /* (n_expert, n_embd) */
    ref_mat gate_exps, up_exps;         /* (n_expert * n_ff, n_embd); gate optional */
    ref_mat down_exps;                  /* (n_expert * n_embd, n_ff) */
    ref_mat gate_up_exps;               /* fused: (n_expert * 2 n_ff, n_embd), gate rows first per expert */
    ref_mat probs_b;                    /* (n_expert) selection bias, optional */
    ref_mat gate_sh, up_sh, down_sh;    /* shared experts: (n_sh, n_embd) x2, (n_embd, n_sh) */
    ref_mat gate_inp_sh;                /* qwen2moe: (1, n_embd), the shared expert's sigmoid gate */
    /* deepseek2 MLA */
    ref_mat wq_a, q_a_norm, wq_b;       /* (q_lora, n_embd), (q_lora), (n_head*dk, q_lora) */
    ref_mat wkv_a, kv_a_norm;           /* (kv_lora + n_rot, n_embd), (kv_lora) */
    ref_mat wk_b, wv_b;                 /* (n_head*kv_lora, nope), (n_head*dv, kv_lora) */
    ref_mat wkv_b;                      /* (n_head*(nope+dv), kv_lora) */
    /* gpt-oss */
    ref_mat sinks;                      /* (n_head) per-head sink logits */
    ref_mat router_b;                   /* (n_expert) router bias */
    ref_mat gate_exps_b, up_exps_b;     /* (n_expert * n_ff) per-expert biases */
    ref_mat down_exps_b;                /* (n_expert * n_embd) */
    bool swa;                           /* a sliding-window layer */
    bool dense;                         /* a dense FFN layer (leading dense layers) */
    double *k_cache, *v_cache;          /* (n_ctx, n_head_kv*hd); MLA latent: (n_ctx, kv_lora + n_rot) */
} ref_layer;

enum ref_arch { REF_LLAMA, REF_QWEN3MOE, REF_OLMOE, REF_DEEPSEEK2, REF_GLM4MOE, REF_QWEN2MOE, REF_GPTOSS, REF_MINIMAX };

struct mp_ref_model {
    enum ref_arch arch;
    char arch_name[32];
    mp_ref_opts opts;

    int n_embd, n_layer, n_head, n_head_kv, head_dim, n_rot, n_vocab;
    int n_expert, n_expert_used, n_ff;
    double eps, rope_base, rope_freq_scale;
    bool rope_neox, norm_topk;
    /* deepseek2 / glm4moe */
    int n_nextn, n_dense_lead, n_shared, n_ff_dense, n_group, n_group_used;
    int n_ff_sh; /* shared FFN width: n_ff * n_shared, or qwen2moe's own */
    bool sigmoid;
    double w_scale;
    bool mla, mla_split;
    int q_lora, kv_lora, mla_dk, mla_dv, nope, kv_w; /* kv_w: KV cache row width */
    double yarn_ext, rope_mag, kq_scale, n_ctx_orig; /* rope_mag: cos/sin magnitude */
    double *mq, *mkv, *mo;
    /* gpt-oss: sliding window (tokens a query sees, itself included), the
     * window layers' rope base */
    int n_swa;
    double rope_base_swa;

    ref_mat tok_embd;    /* (n_vocab, n_embd) */
    ref_mat output_norm; /* (n_embd) */
    ref_mat output;      /* (n_vocab, n_embd); may alias tok_embd */
    ref_mat rope_freqs;  /* optional (n_rot/2) divisors of theta */
    ref_layer *layers;

    int n_past;
    /* scratch, sized at load */
    double *x, *xn, *q, *k, *v, *att, *attn_out, *scores, *ffn_a, *ffn_b, *ffn_out, *router_p;
    double *xq;     /* (max row length) activation after rounding to the dot type */
    double *logits; /* (n_vocab) */
};

/* ---------------------------------------------------------------- loading */

static int load_mat(const mp_gguf *g, const char *name, bool required, int64_t ncols,
                    int64_t nrows, ref_mat *out, mp_err *err)
{
    memset(out, 0, sizeof *out);
    const mp_gguf_tensor *t = mp_gguf_find_tensor(g, name);
    if (!t) {
        if (!required) return MP_OK;
        return mp_err_set(err, MP_E_CORRUPT, "%s: tensor '%s' is missing", mp_gguf_path(g), name);
    }
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    if (t->ne[0] != ncols || (nrows >= 0 && rows != nrows))
        return mp_err_set(err, MP_E_CORRUPT,
                          "%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]",
                          mp_gguf_path(g), name, (long long)t->ne[0], (long long)rows,
                          (long long)ncols, (long long)nrows);
    const uint8_t *src = mp_gguf_tensor_data(g, t);
    size_t row_bytes = mp_row_size(t->type, t->ne[0]);
    if (!src || row_bytes == 0)
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: tensor '%s': cannot read type %s",
                          mp_gguf_path(g), name, mp_type_name(t->type));
    out->w = malloc((size_t)(rows * ncols) * sizeof(float));
    if (!out->w)
        return mp_err_set(err, MP_E_NOMEM, "%s: tensor '%s': out of memory", mp_gguf_path(g), name);
    out->ncols = ncols;
    out->nrows = rows;
    out->type = t->type;
    for (int64_t r = 0; r < rows; r++) {
        int rc = mp_dequantize_row(t->type, src + (size_t)r * row_bytes, out->w + r * ncols, ncols);
        if (rc != MP_OK)
            return mp_err_set(err, rc, "%s: tensor '%s' (type %s): dequantisation failed at row %lld",
                              mp_gguf_path(g), name, mp_type_name(t->type), (long long)r);
    }
    return MP_OK;
}

static int load_layer_mat(const mp_gguf *g, int il, const char *what, bool required, int64_t ncols,
                          int64_t nrows, ref_mat *out, mp_err *err)
{
    char name[128];
    snprintf(name, sizeof name, "blk.%d.%s", il, what);
    return load_mat(g, name, required, ncols, nrows, out, err);
}

/* Reads <arch>.<suffix> as u32; absent keys give def (or an error when def < 0). */
static int get_hp_u32(const mp_gguf *g, const char *arch, const char *suffix, int64_t def, int *out,
                      mp_err *err)
{
    char key[128];
    uint32_t v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = mp_gguf_get_u32(g, key, &v, err);
    if (rc == MP_E_NOTFOUND) {
        if (def < 0)
            return mp_err_set(err, MP_E_CORRUPT, "%s: metadata key '%s' is missing", mp_gguf_path(g), key);
        *out = (int)def;
        return MP_OK;
    }
    if (rc != MP_OK) return rc;
    if (v > (1u << 30))
        return mp_err_set(err, MP_E_CORRUPT, "%s: metadata key '%s' = %u is out of range",
                          mp_gguf_path(g), key, v);
    *out = (int)v;
    return MP_OK;
}

static int get_hp_f64(const mp_gguf *g, const char *arch, const char *suffix, double def, double *out,
                      bool required, mp_err *err)
{
    char key[128];
    float v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = mp_gguf_get_f32(g, key, &v, err);
    if (rc == MP_E_NOTFOUND) {
        if (required)
            return mp_err_set(err, MP_E_CORRUPT, "%s: metadata key '%s' is missing", mp_gguf_path(g), key);
        *out = def;
        return MP_OK;
    }
    if (rc != MP_OK) return rc;
    *out = v; /* llama.cpp stores these hparams as float: use the float value */
    return MP_OK;
}

static void free_mat(ref_mat *m, const ref_mat *keep)
{
    if (m->w && (!keep || m->w != keep->w)) free(m->w);
    m->w = NULL;
}

void mp_ref_model_free(mp_ref_model *m)
{
    if (!m) return;
    if (m->layers) {
        for (int il = 0; il < m->n_layer; il++) {
            ref_layer *L = &m->layers[il];
            if (L->gate_up_exps.w) L->gate_exps.w = L->up_exps.w = NULL; /* views of the fused tensor */
            ref_mat *mats[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->bq, &L->bk, &L->bv,
                               &L->bo, &L->q_norm, &L->k_norm, &L->ffn_norm, &L->ffn_gate, &L->ffn_up,
                               &L->ffn_down, &L->router, &L->gate_exps, &L->up_exps, &L->down_exps,
                               &L->gate_up_exps, &L->probs_b, &L->gate_sh, &L->up_sh, &L->down_sh,
                               &L->wq_a, &L->q_a_norm, &L->wq_b, &L->wkv_a, &L->kv_a_norm, &L->wk_b,
                               &L->wv_b, &L->wkv_b, &L->gate_inp_sh, &L->sinks, &L->router_b,
                               &L->gate_exps_b, &L->up_exps_b, &L->down_exps_b};
            for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) free_mat(mats[i], NULL);
            free(L->k_cache);
            free(L->v_cache);
        }
        free(m->layers);
    }
    free_mat(&m->output, &m->tok_embd);
    free_mat(&m->tok_embd, NULL);
    free_mat(&m->output_norm, NULL);
    free_mat(&m->rope_freqs, NULL);
    double *bufs[] = {m->x, m->xn, m->q, m->k, m->v, m->att, m->attn_out, m->scores,
                      m->ffn_a, m->ffn_b, m->ffn_out, m->router_p, m->xq, m->logits, m->mq, m->mkv, m->mo};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(m);
}

/* deepseek2 / glm4moe keys (as llama.cpp's loaders read them; see
 * src/model/model.c for the engine's copy, written separately). YaRN
 * magnitudes are computed in double: the cancel-and-reapply factors of
 * llama.cpp's context setup drop out. */
static int read_hparams_ds(mp_ref_model *m, const mp_gguf *g, const char *arch, mp_err *err)
{
    const char *path = mp_gguf_path(g);
    const bool ds = m->arch == REF_DEEPSEEK2;
    int rc, v = 0;
    if ((rc = get_hp_u32(g, arch, "embedding_length", -1, &m->n_embd, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "block_count", -1, &m->n_layer, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "nextn_predict_layers", 0, &m->n_nextn, err))) return rc;
    m->n_layer -= m->n_nextn;
    if ((rc = get_hp_u32(g, arch, "attention.head_count", -1, &m->n_head, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "attention.head_count_kv", m->n_head, &m->n_head_kv, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "attention.key_length", -1, &m->head_dim, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "attention.value_length", -1, &m->mla_dv, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "rope.dimension_count", -1, &m->n_rot, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "expert_count", -1, &m->n_expert, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "expert_used_count", -1, &m->n_expert_used, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "expert_feed_forward_length", -1, &m->n_ff, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "feed_forward_length", 0, &m->n_ff_dense, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "expert_shared_count", -1, &m->n_shared, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "leading_dense_block_count", 0, &m->n_dense_lead, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "expert_group_count", 0, &m->n_group, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "expert_group_used_count", 0, &m->n_group_used, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "expert_gating_func", 0, &v, err))) return rc;
    m->sigmoid = v == 2 || (v == 0 && !ds);
    if (v > 2) return mp_err_set(err, MP_E_UNSUPPORTED, "%s: gating function %d", path, v);
    if ((rc = get_hp_f64(g, arch, "attention.layer_norm_rms_epsilon", 0, &m->eps, true, err))) return rc;
    if ((rc = get_hp_f64(g, arch, "rope.freq_base", 10000.0, &m->rope_base, false, err))) return rc;
    if ((rc = get_hp_f64(g, arch, "expert_weights_scale", 0.0, &m->w_scale, false, err))) return rc;
    char key[128];
    snprintf(key, sizeof key, "%s.expert_weights_norm", arch);
    bool b = false;
    rc = mp_gguf_get_bool(g, key, &b, err);
    if (rc != MP_OK && rc != MP_E_NOTFOUND) return rc;
    m->norm_topk = b;
    m->rope_neox = !ds;
    m->rope_mag = 1.0;
    m->rope_freq_scale = 1.0;
    m->n_ctx_orig = 0;
    int ctx_train = 0, orig = 0;
    if ((rc = get_hp_u32(g, arch, "context_length", 2048, &ctx_train, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "rope.scaling.original_context_length", ctx_train, &orig, err))) return rc;
    m->n_ctx_orig = orig;
    if (!ds) {
        m->kq_scale = 1.0 / sqrt((double)m->head_dim);
        return MP_OK;
    }
    /* MLA */
    int dk_mla = 0, dv_mla = 0, nv = 0;
    if ((rc = get_hp_u32(g, arch, "attention.kv_lora_rank", -1, &m->kv_lora, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "vocab_size", 0, &nv, err))) return rc;
    const bool lite = m->n_layer == 27 || m->n_layer == 26 || (m->n_layer == 48 && nv == 128256);
    if (!lite && (rc = get_hp_u32(g, arch, "attention.q_lora_rank", -1, &m->q_lora, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "attention.key_length_mla", 0, &dk_mla, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "attention.value_length_mla", 0, &dv_mla, err))) return rc;
    m->mla = true;
    m->mla_split = dk_mla && dv_mla;
    m->mla_dk = m->mla_split ? dk_mla : m->head_dim;
    if (m->mla_split) m->mla_dv = dv_mla;
    m->nope = m->mla_dk - m->n_rot;
    m->kv_w = m->mla_split ? m->kv_lora + m->n_rot : m->n_head * m->mla_dk;
    m->head_dim = m->mla_dk;
    if (m->nope <= 0 || m->kv_lora <= 0) return mp_err_set(err, MP_E_CORRUPT, "%s: bad MLA ranks", path);
    /* rope scaling */
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *st = mp_gguf_get_str(g, key);
    double factor = 0, log_mul = 0, attn = 1;
    if ((rc = get_hp_f64(g, arch, "rope.scaling.factor", 0, &factor, false, err))) return rc;
    if ((rc = get_hp_f64(g, arch, "rope.scaling.yarn_log_multiplier", 0, &log_mul, false, err))) return rc;
    if ((rc = get_hp_f64(g, arch, "rope.scaling.attn_factor", 1, &attn, false, err))) return rc;
    log_mul /= 0.1f; /* stored as 0.1 * mscale_all_dim (llama.cpp divides by the float 0.1) */
    if ((!st || strcmp(st, "none")) && factor > 0) m->rope_freq_scale = 1.0 / factor;
    const double f = 1.0 / m->rope_freq_scale;
#define GET_MSCALE(s_, m_) ((s_) <= 1.0 ? 1.0 : 0.1 * (m_) * log(s_) + 1.0)
    m->rope_mag = attn;
    if (st && !strcmp(st, "yarn")) {
        m->yarn_ext = 1.0;
        if (log_mul != 0) m->rope_mag *= GET_MSCALE(f, log_mul != 1.0 ? log_mul : 1.0) / GET_MSCALE(f, log_mul);
        else m->rope_mag *= GET_MSCALE(f, 1.0);
    } else if (st && strcmp(st, "none") && strcmp(st, "linear")) {
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: rope scaling '%s' is not supported", path, st);
    }
#undef GET_MSCALE
    /* deepseek2.cpp: mscale = magnitude * (1 + 0.1 log_mul ln f); kq = mscale^2 / sqrt(dk) */
    const double mscale = m->rope_mag * (1.0 + 0.1 * log_mul * log(f));
    m->kq_scale = mscale * mscale / sqrt((double)m->mla_dk);
    return MP_OK;
}

/* gpt-oss (llama.cpp src/models/openai-moe.cpp, llama-context.cpp's YaRN
 * factors): NEOX RoPE, YaRN when rope.scaling.type says so (cos/sin scaled by
 * attn_factor * (1 + 0.1 ln factor); gpt-oss does not read a
 * yarn_log_multiplier), attention scale 1/sqrt(head_dim), a
 * sliding window (attention.sliding_window) on the layers of the pattern
 * (attention.sliding_window_pattern N, absent: 2; layer il slides when
 * il % N < N - 1, i.e. the even layers), rope.freq_base_swa on those layers.
 * The shared part (sizes, experts, eps, base) is read by read_hparams. */
static int read_hparams_gptoss(mp_ref_model *m, const mp_gguf *g, const char *arch, mp_err *err)
{
    const char *path = mp_gguf_path(g);
    char key[128];
    int rc, pattern = 2, ff = 0;
    if ((rc = get_hp_u32(g, arch, "attention.sliding_window", -1, &m->n_swa, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "attention.sliding_window_pattern", 2, &pattern, err))) return rc;
    if ((rc = get_hp_f64(g, arch, "rope.freq_base_swa", m->rope_base, &m->rope_base_swa, false, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "expert_feed_forward_length", -1, &ff, err))) return rc;
    if ((rc = get_hp_f64(g, arch, "expert_weights_scale", 0.0, &m->w_scale, false, err))) return rc;
    if (m->n_swa <= 0 || m->n_expert == 0)
        return mp_err_set(err, MP_E_CORRUPT, "%s: gpt-oss needs a sliding window (%d) and experts (%d)", path,
                          m->n_swa, m->n_expert);
    m->layers = calloc((size_t)m->n_layer, sizeof *m->layers);
    if (!m->layers) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);
    for (int il = 0; il < m->n_layer; il++) m->layers[il].swa = pattern == 0 || il % pattern < pattern - 1;
    m->rope_neox = true;
    m->norm_topk = false;
    m->rope_mag = 1.0;
    m->rope_freq_scale = 1.0;
    m->kq_scale = 1.0 / sqrt((double)m->head_dim);
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *st = mp_gguf_get_str(g, key);
    double factor = 0, attn = 1;
    int ctx_train = 0, orig = 0;
    if ((rc = get_hp_f64(g, arch, "rope.scaling.factor", 0, &factor, false, err))) return rc;
    if ((rc = get_hp_f64(g, arch, "rope.scaling.attn_factor", 1, &attn, false, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "context_length", 2048, &ctx_train, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "rope.scaling.original_context_length", ctx_train, &orig, err))) return rc;
    m->n_ctx_orig = orig;
    if ((!st || strcmp(st, "none")) && factor > 0) m->rope_freq_scale = 1.0 / factor;
    m->rope_mag = attn;
    if (st && !strcmp(st, "yarn")) {
        const double f = 1.0 / m->rope_freq_scale;
        m->yarn_ext = 1.0;
        if (f > 1.0) m->rope_mag *= 1.0 + 0.1 * log(f);
    } else if (st && strcmp(st, "none") && strcmp(st, "linear")) {
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: rope scaling '%s' is not supported", path, st);
    }
    return MP_OK;
}

static int read_hparams(mp_ref_model *m, const mp_gguf *g, mp_err *err)
{
    const char *path = mp_gguf_path(g);
    const char *arch = mp_gguf_get_str(g, "general.architecture");
    int rc;
    if (!arch) return mp_err_set(err, MP_E_CORRUPT, "%s: general.architecture is missing", path);
    if (!strcmp(arch, "llama")) m->arch = REF_LLAMA;
    else if (!strcmp(arch, "qwen3moe")) m->arch = REF_QWEN3MOE;
    else if (!strcmp(arch, "olmoe")) m->arch = REF_OLMOE;
    else if (!strcmp(arch, "deepseek2")) m->arch = REF_DEEPSEEK2;
    else if (!strcmp(arch, "glm4moe")) m->arch = REF_GLM4MOE;
    else if (!strcmp(arch, "qwen2moe")) m->arch = REF_QWEN2MOE;
    else if (!strcmp(arch, "gpt-oss")) m->arch = REF_GPTOSS;
    else if (!strcmp(arch, "minimax-m2")) m->arch = REF_MINIMAX;
    else return mp_err_set(err, MP_E_UNSUPPORTED, "%s: architecture '%s' is not supported", path, arch);
    snprintf(m->arch_name, sizeof m->arch_name, "%s", arch);
    if (m->arch == REF_DEEPSEEK2 || m->arch == REF_GLM4MOE) return read_hparams_ds(m, g, arch, err);

    if ((rc = get_hp_u32(g, arch, "embedding_length", -1, &m->n_embd, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "block_count", -1, &m->n_layer, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "attention.head_count", -1, &m->n_head, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "attention.head_count_kv", m->n_head, &m->n_head_kv, err))) return rc;
    if (m->n_embd <= 0 || m->n_layer <= 0 || m->n_head <= 0 || m->n_head_kv <= 0 ||
        m->n_head % m->n_head_kv != 0)
        return mp_err_set(err, MP_E_CORRUPT, "%s: bad hyperparameters n_embd=%d n_layer=%d n_head=%d n_head_kv=%d",
                          path, m->n_embd, m->n_layer, m->n_head, m->n_head_kv);
    int hd_v;
    if ((rc = get_hp_u32(g, arch, "attention.key_length", m->n_embd / m->n_head, &m->head_dim, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "attention.value_length", m->n_embd / m->n_head, &hd_v, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "rope.dimension_count", m->head_dim, &m->n_rot, err))) return rc;
    if (hd_v != m->head_dim || m->head_dim <= 0 || m->n_rot <= 0 || m->n_rot > m->head_dim || m->n_rot % 2)
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: head sizes k=%d v=%d rot=%d are not supported",
                          path, m->head_dim, hd_v, m->n_rot);
    if ((rc = get_hp_u32(g, arch, "expert_count", 0, &m->n_expert, err))) return rc;
    if ((rc = get_hp_u32(g, arch, "expert_used_count", 0, &m->n_expert_used, err))) return rc;
    if (m->n_expert_used > m->n_expert || (m->n_expert > 0 && m->n_expert_used == 0))
        return mp_err_set(err, MP_E_CORRUPT, "%s: expert_used_count %d vs expert_count %d", path,
                          m->n_expert_used, m->n_expert);
    if (m->arch != REF_LLAMA && m->n_expert == 0)
        return mp_err_set(err, MP_E_CORRUPT, "%s: %s needs experts", path, arch);

    if ((rc = get_hp_f64(g, arch, "attention.layer_norm_rms_epsilon", 0, &m->eps, true, err))) return rc;
    if ((rc = get_hp_f64(g, arch, "rope.freq_base", 10000.0, &m->rope_base, false, err))) return rc;

    char key[128];
    if (m->arch == REF_GPTOSS) return read_hparams_gptoss(m, g, arch, err);
    /* Only unscaled or linearly scaled RoPE (what these architectures ship). */
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *scaling = mp_gguf_get_str(g, key);
    if (scaling && strcmp(scaling, "none") && strcmp(scaling, "linear"))
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s: rope scaling '%s' is not supported", path, scaling);
    double factor = 0;
    if ((rc = get_hp_f64(g, arch, "rope.scaling.factor", 0, &factor, false, err))) return rc;
    m->rope_freq_scale = factor == 0 ? 1.0 : 1.0 / factor;

    /* llama.cpp: normal RoPE for llama, NEOX for qwen3moe and olmoe; the
     * top-k weights are renormalised for llama (Mixtral) and qwen3moe only. */
    m->rope_neox = m->arch != REF_LLAMA;
    m->norm_topk = m->arch != REF_OLMOE && m->arch != REF_QWEN2MOE;
    m->rope_mag = 1.0;
    m->kq_scale = 1.0 / sqrt((double)m->head_dim);
    if (m->arch == REF_QWEN2MOE) {
        /* llama.cpp qwen2moe.cpp: softmax, no renormalisation, no scale (the
         * gating keys are not read); expert width n_ff / n_used unless given;
         * one shared expert, its width n_ff unless given */
        int nff = 0;
        if ((rc = get_hp_u32(g, arch, "feed_forward_length", 0, &nff, err))) return rc;
        if ((rc = get_hp_u32(g, arch, "expert_feed_forward_length", nff / m->n_expert_used, &m->n_ff, err))) return rc;
        if ((rc = get_hp_u32(g, arch, "expert_shared_feed_forward_length", nff, &m->n_ff_sh, err))) return rc;
        m->n_shared = 1;
        m->sigmoid = false;
        m->w_scale = 0;
    }
    if (m->arch == REF_MINIMAX) {
        /* llama.cpp minimax-m2.cpp: q/k norms over the whole projections,
         * the file's gating (required), exp_probs_b, weights renormalised,
         * no scale; experts feed_forward_length wide */
        int gf = 0;
        if ((rc = get_hp_u32(g, arch, "feed_forward_length", -1, &m->n_ff, err))) return rc;
        if ((rc = get_hp_u32(g, arch, "expert_gating_func", -1, &gf, err))) return rc;
        if (gf != 1 && gf != 2) return mp_err_set(err, MP_E_UNSUPPORTED, "%s: gating function %d", path, gf);
        m->sigmoid = gf == 2;
        m->w_scale = 0;
    }
    return MP_OK;
}

/* deepseek2 / glm4moe layers. Expert matrices are (n_expert * rows) x cols;
 * a fused ffn_gate_up_exps is kept whole (gate rows first per expert). */
static int load_layers_ds(mp_ref_model *m, const mp_gguf *g, mp_err *err)
{
    const int64_t E = m->n_embd, H = m->n_head, NE = m->n_expert, F = m->n_ff;
    int rc;
    for (int il = 0; il < m->n_layer; il++) {
        ref_layer *L = &m->layers[il];
        L->dense = il < m->n_dense_lead;
        if ((rc = load_layer_mat(g, il, "attn_norm.weight", true, E, 1, &L->attn_norm, err))) return rc;
        if (m->mla) {
            const int64_t R = m->n_rot, KL = m->kv_lora, dk = m->mla_dk, dv = m->mla_dv;
            if (m->q_lora > 0) {
                if ((rc = load_layer_mat(g, il, "attn_q_a.weight", true, E, m->q_lora, &L->wq_a, err))) return rc;
                if ((rc = load_layer_mat(g, il, "attn_q_a_norm.weight", true, m->q_lora, 1, &L->q_a_norm, err))) return rc;
                if ((rc = load_layer_mat(g, il, "attn_q_b.weight", true, m->q_lora, H * dk, &L->wq_b, err))) return rc;
            } else if ((rc = load_layer_mat(g, il, "attn_q.weight", true, E, H * dk, &L->wq, err))) {
                return rc;
            }
            if ((rc = load_layer_mat(g, il, "attn_kv_a_mqa.weight", true, E, KL + R, &L->wkv_a, err))) return rc;
            if ((rc = load_layer_mat(g, il, "attn_kv_a_norm.weight", true, KL, 1, &L->kv_a_norm, err))) return rc;
            if (m->mla_split) {
                if ((rc = load_layer_mat(g, il, "attn_k_b.weight", true, m->nope, H * KL, &L->wk_b, err))) return rc;
                if ((rc = load_layer_mat(g, il, "attn_v_b.weight", true, KL, H * dv, &L->wv_b, err))) return rc;
            } else if ((rc = load_layer_mat(g, il, "attn_kv_b.weight", true, KL, H * (m->nope + dv), &L->wkv_b,
                                            err))) {
                return rc;
            }
            if ((rc = load_layer_mat(g, il, "attn_output.weight", true, H * dv, E, &L->wo, err))) return rc;
            if ((rc = load_layer_mat(g, il, "ffn_norm.weight", true, E, 1, &L->ffn_norm, err))) return rc;
        } else {
            const int64_t QW = H * m->head_dim, KW = (int64_t)m->n_head_kv * m->head_dim;
            if ((rc = load_layer_mat(g, il, "attn_q.weight", true, E, QW, &L->wq, err))) return rc;
            if ((rc = load_layer_mat(g, il, "attn_k.weight", true, E, KW, &L->wk, err))) return rc;
            if ((rc = load_layer_mat(g, il, "attn_v.weight", true, E, KW, &L->wv, err))) return rc;
            if ((rc = load_layer_mat(g, il, "attn_output.weight", true, QW, E, &L->wo, err))) return rc;
            if ((rc = load_layer_mat(g, il, "attn_q.bias", false, QW, 1, &L->bq, err))) return rc;
            if ((rc = load_layer_mat(g, il, "attn_k.bias", false, KW, 1, &L->bk, err))) return rc;
            if ((rc = load_layer_mat(g, il, "attn_v.bias", false, KW, 1, &L->bv, err))) return rc;
            const bool whole = m->arch == REF_MINIMAX; /* q/k norms over the whole projections */
            if ((rc = load_layer_mat(g, il, "attn_q_norm.weight", whole, whole ? QW : m->head_dim, 1, &L->q_norm, err)))
                return rc;
            if ((rc = load_layer_mat(g, il, "attn_k_norm.weight", whole, whole ? KW : m->head_dim, 1, &L->k_norm, err)))
                return rc;
            if ((rc = load_layer_mat(g, il,
                                     m->arch == REF_QWEN2MOE || m->arch == REF_MINIMAX ? "ffn_norm.weight"
                                                                                       : "post_attention_norm.weight",
                                     true, E, 1, &L->ffn_norm, err))) return rc;
        }
        if (L->dense) {
            const int64_t FD = m->n_ff_dense;
            if ((rc = load_layer_mat(g, il, "ffn_gate.weight", true, E, FD, &L->ffn_gate, err))) return rc;
            if ((rc = load_layer_mat(g, il, "ffn_up.weight", true, E, FD, &L->ffn_up, err))) return rc;
            if ((rc = load_layer_mat(g, il, "ffn_down.weight", true, FD, E, &L->ffn_down, err))) return rc;
        } else {
            const int64_t S = m->n_ff_sh;
            if ((rc = load_layer_mat(g, il, "ffn_gate_inp.weight", true, E, NE, &L->router, err))) return rc;
            if ((rc = load_layer_mat(g, il, "exp_probs_b.bias", false, NE, 1, &L->probs_b, err))) return rc;
            if ((rc = load_layer_mat(g, il, "ffn_gate_up_exps.weight", false, E, NE * 2 * F, &L->gate_up_exps, err)))
                return rc;
            if (L->gate_up_exps.w) {
                L->gate_exps = L->up_exps = L->gate_up_exps;
            } else {
                if ((rc = load_layer_mat(g, il, "ffn_gate_exps.weight", true, E, NE * F, &L->gate_exps, err))) return rc;
                if ((rc = load_layer_mat(g, il, "ffn_up_exps.weight", true, E, NE * F, &L->up_exps, err))) return rc;
            }
            if ((rc = load_layer_mat(g, il, "ffn_down_exps.weight", true, F, NE * E, &L->down_exps, err))) return rc;
            if (S > 0) {
                if ((rc = load_layer_mat(g, il, "ffn_gate_shexp.weight", true, E, S, &L->gate_sh, err))) return rc;
                if ((rc = load_layer_mat(g, il, "ffn_up_shexp.weight", true, E, S, &L->up_sh, err))) return rc;
                if ((rc = load_layer_mat(g, il, "ffn_down_shexp.weight", true, S, E, &L->down_sh, err))) return rc;
                if (m->arch == REF_QWEN2MOE &&
                    (rc = load_layer_mat(g, il, "ffn_gate_inp_shexp.weight", true, E, 1, &L->gate_inp_sh, err)))
                    return rc;
            }
        }
        const int64_t KW = m->mla ? m->kv_w : (int64_t)m->n_head_kv * m->head_dim;
        const int64_t VW = m->mla ? (m->mla_split ? 1 : (int64_t)m->n_head * m->mla_dv) : KW;
        L->k_cache = calloc((size_t)(m->opts.n_ctx * KW), sizeof(double));
        L->v_cache = calloc((size_t)(m->opts.n_ctx * VW), sizeof(double));
        if (!L->k_cache || !L->v_cache) return mp_err_set(err, MP_E_NOMEM, "out of memory (KV cache)");
    }
    return MP_OK;
}

int mp_ref_model_load(mp_ref_model **out, const char *path, const mp_ref_opts *opts, mp_err *err)
{
    mp_gguf *g = NULL;
    mp_ref_model *m = calloc(1, sizeof *m);
    int rc;
    *out = NULL;
    if (!m) return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);
    if (opts) m->opts = *opts;
    if (m->opts.n_ctx <= 0) m->opts.n_ctx = 4096;

    if ((rc = mp_gguf_open(&g, path, NULL, err))) goto fail;
    if ((rc = read_hparams(m, g, err))) goto fail;

    const int64_t E = m->n_embd, HD = m->head_dim;
    const int64_t QW = (int64_t)m->n_head * HD, KW = (int64_t)m->n_head_kv * HD;

    const mp_gguf_tensor *te = mp_gguf_find_tensor(g, "token_embd.weight");
    if (!te) {
        rc = mp_err_set(err, MP_E_CORRUPT, "%s: tensor 'token_embd.weight' is missing", path);
        goto fail;
    }
    m->n_vocab = (int)te->ne[1];
    if ((rc = load_mat(g, "token_embd.weight", true, E, -1, &m->tok_embd, err))) goto fail;
    if ((rc = load_mat(g, "output_norm.weight", true, E, 1, &m->output_norm, err))) goto fail;
    if ((rc = load_mat(g, "output.weight", false, E, m->n_vocab, &m->output, err))) goto fail;
    if (!m->output.w) m->output = m->tok_embd; /* tied head */
    if ((rc = load_mat(g, "rope_freqs.weight", false, m->n_rot / 2, 1, &m->rope_freqs, err))) goto fail;

    if (!m->layers) m->layers = calloc((size_t)m->n_layer, sizeof *m->layers); /* gpt-oss: already (swa flags) */
    if (!m->layers) { rc = mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path); goto fail; }

    if (m->arch != REF_QWEN2MOE) m->n_ff_sh = m->n_ff * m->n_shared;
    if (m->arch == REF_DEEPSEEK2 || m->arch == REF_GLM4MOE || m->arch == REF_QWEN2MOE || m->arch == REF_MINIMAX) {
        if ((rc = load_layers_ds(m, g, err))) goto fail;
        goto scratch;
    }
    if (m->n_expert > 0) {
        const mp_gguf_tensor *t = mp_gguf_find_tensor(g, "blk.0.ffn_up_exps.weight");
        if (!t) { rc = mp_err_set(err, MP_E_CORRUPT, "%s: tensor 'blk.0.ffn_up_exps.weight' is missing", path); goto fail; }
        m->n_ff = (int)t->ne[1];
    } else {
        const mp_gguf_tensor *t = mp_gguf_find_tensor(g, "blk.0.ffn_up.weight");
        if (!t) { rc = mp_err_set(err, MP_E_CORRUPT, "%s: tensor 'blk.0.ffn_up.weight' is missing", path); goto fail; }
        m->n_ff = (int)t->ne[1];
    }
    const int64_t FF = m->n_ff, NE = m->n_expert;

    /* q/k norm widths: per head for qwen3moe, the whole projection for olmoe. */
    const int64_t qn = m->arch == REF_QWEN3MOE ? HD : QW, kn = m->arch == REF_QWEN3MOE ? HD : KW;

    for (int il = 0; il < m->n_layer; il++) {
        ref_layer *L = &m->layers[il];
        if (mp_gguf_find_tensor(g, "blk.0.attn_qkv.weight")) {
            rc = mp_err_set(err, MP_E_UNSUPPORTED, "%s: fused attn_qkv tensors are not supported", path);
            goto fail;
        }
        if ((rc = load_layer_mat(g, il, "attn_norm.weight", true, E, 1, &L->attn_norm, err))) goto fail;
        if ((rc = load_layer_mat(g, il, "attn_q.weight", true, E, QW, &L->wq, err))) goto fail;
        if ((rc = load_layer_mat(g, il, "attn_k.weight", true, E, KW, &L->wk, err))) goto fail;
        if ((rc = load_layer_mat(g, il, "attn_v.weight", true, E, KW, &L->wv, err))) goto fail;
        if ((rc = load_layer_mat(g, il, "attn_output.weight", true, QW, E, &L->wo, err))) goto fail;
        if ((rc = load_layer_mat(g, il, "attn_q.bias", false, QW, 1, &L->bq, err))) goto fail;
        if ((rc = load_layer_mat(g, il, "attn_k.bias", false, KW, 1, &L->bk, err))) goto fail;
        if ((rc = load_layer_mat(g, il, "attn_v.bias", false, KW, 1, &L->bv, err))) goto fail;
        if ((rc = load_layer_mat(g, il, "attn_output.bias", false, E, 1, &L->bo, err))) goto fail;
        if (m->arch == REF_QWEN3MOE || m->arch == REF_OLMOE) {
            if ((rc = load_layer_mat(g, il, "attn_q_norm.weight", true, qn, 1, &L->q_norm, err))) goto fail;
            if ((rc = load_layer_mat(g, il, "attn_k_norm.weight", true, kn, 1, &L->k_norm, err))) goto fail;
        }
        if ((rc = load_layer_mat(g, il, m->arch == REF_GPTOSS ? "post_attention_norm.weight" : "ffn_norm.weight", true,
                                 E, 1, &L->ffn_norm, err))) goto fail;
        if (m->arch == REF_GPTOSS) {
            if ((rc = load_layer_mat(g, il, "attn_sinks.weight", true, m->n_head, 1, &L->sinks, err))) goto fail;
            if ((rc = load_layer_mat(g, il, "ffn_gate_inp.bias", true, NE, 1, &L->router_b, err))) goto fail;
            if ((rc = load_layer_mat(g, il, "ffn_gate_exps.bias", true, FF, NE, &L->gate_exps_b, err))) goto fail;
            if ((rc = load_layer_mat(g, il, "ffn_up_exps.bias", true, FF, NE, &L->up_exps_b, err))) goto fail;
            if ((rc = load_layer_mat(g, il, "ffn_down_exps.bias", true, E, NE, &L->down_exps_b, err))) goto fail;
        }
        if (NE == 0) {
            if ((rc = load_layer_mat(g, il, "ffn_gate.weight", true, E, FF, &L->ffn_gate, err))) goto fail;
            if ((rc = load_layer_mat(g, il, "ffn_up.weight", true, E, FF, &L->ffn_up, err))) goto fail;
            if ((rc = load_layer_mat(g, il, "ffn_down.weight", true, FF, E, &L->ffn_down, err))) goto fail;
        } else {
            if ((rc = load_layer_mat(g, il, "ffn_gate_inp.weight", true, E, NE, &L->router, err))) goto fail;
            if ((rc = load_layer_mat(g, il, "ffn_gate_exps.weight", m->arch != REF_LLAMA, E, NE * FF,
                                     &L->gate_exps, err))) goto fail;
            if ((rc = load_layer_mat(g, il, "ffn_up_exps.weight", true, E, NE * FF, &L->up_exps, err))) goto fail;
            if ((rc = load_layer_mat(g, il, "ffn_down_exps.weight", true, FF, NE * E, &L->down_exps, err))) goto fail;
        }
        L->k_cache = calloc((size_t)(m->opts.n_ctx * KW), sizeof(double));
        L->v_cache = calloc((size_t)(m->opts.n_ctx * KW), sizeof(double));
        if (!L->k_cache || !L->v_cache) { rc = mp_err_set(err, MP_E_NOMEM, "%s: out of memory (KV cache)", path); goto fail; }
    }

scratch:;
    int64_t big = E;
    const int64_t QW2 = (int64_t)m->n_head * (m->mla ? m->mla_dk + m->kv_lora + m->mla_dv : HD);
    const int64_t KW2 = m->mla ? m->kv_w + (int64_t)m->n_head * (m->mla_dk + m->mla_dv) : KW;
    if (QW2 > big) big = QW2;
    if (KW2 > big) big = KW2;
    if (m->n_ff > big) big = m->n_ff;
    if (m->n_ff_dense > big) big = m->n_ff_dense;
    if ((int64_t)m->n_ff * m->n_shared > big) big = (int64_t)m->n_ff * m->n_shared;
    if (m->n_ff_sh > big) big = m->n_ff_sh;
    if (m->q_lora > big) big = m->q_lora;
    m->mq = calloc((size_t)big, sizeof(double));
    m->mkv = calloc((size_t)big, sizeof(double));
    m->mo = calloc((size_t)big, sizeof(double));
    if (!m->mq || !m->mkv || !m->mo) {
        rc = mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    m->x = calloc((size_t)E, sizeof(double));
    m->xn = calloc((size_t)E, sizeof(double));
    m->q = calloc((size_t)big, sizeof(double));
    m->k = calloc((size_t)big, sizeof(double));
    m->v = calloc((size_t)big, sizeof(double));
    m->att = calloc((size_t)big, sizeof(double));
    m->attn_out = calloc((size_t)E, sizeof(double));
    m->scores = calloc((size_t)m->opts.n_ctx, sizeof(double));
    m->ffn_a = calloc((size_t)big, sizeof(double));
    m->ffn_b = calloc((size_t)big, sizeof(double));
    m->ffn_out = calloc((size_t)E, sizeof(double));
    m->router_p = calloc((size_t)(m->n_expert > 0 ? m->n_expert : 1), sizeof(double));
    m->xq = calloc((size_t)big, sizeof(double));
    m->logits = calloc((size_t)m->n_vocab, sizeof(double));
    if (!m->xq || !m->logits || !m->x || !m->xn || !m->q || !m->k || !m->v || !m->att || !m->attn_out || !m->scores ||
        !m->ffn_a || !m->ffn_b || !m->ffn_out || !m->router_p) {
        rc = mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    mp_gguf_free(g);
    *out = m;
    return MP_OK;
fail:
    mp_gguf_free(g);
    mp_ref_model_free(m);
    return rc;
}

int mp_ref_n_vocab(const mp_ref_model *m) { return m->n_vocab; }
int mp_ref_n_past(const mp_ref_model *m) { return m->n_past; }
const char *mp_ref_arch(const mp_ref_model *m) { return m->arch_name; }
void mp_ref_reset(mp_ref_model *m) { m->n_past = 0; }

/* ------------------------------------------------------------ arithmetic */

/* Rounds an activation row the way llama.cpp's CPU backend converts it
 * before a product with a weight of type wtype (ggml's vec_dot_type):
 *   F32 weights: the float value;  F16 / BF16: to that half type;
 *   Q4_0 / Q5_0 / Q5_1 / Q8_0 / IQ4_NL / MXFP4: Q8_0 blocks of 32, d = amax/127
 *                stored as f16, q = round(x / d) (ties to even: the x86 path); Q5_1's
 *                Q8_1 has the same bytes (its min term then uses fp16(d * sum q), which
 *                this exact sum does not round: 2^-11 of that term);
 *   Q2_K / Q3_K / Q4_K / Q5_K / Q6_K / IQ4_XS: Q8_K blocks of 256, iscale = -127/x_amax (x_amax the
 *                element of largest magnitude, with its sign), q =
 *                min(127, round(iscale * x)), d = 1/iscale as float.
 * out[i] is the value the product then sees (d * q). */
static void act_round(uint32_t wtype, const double *x, double *out, int64_t n)
{
    switch (wtype) {
    case MP_TYPE_F16:
        for (int64_t i = 0; i < n; i++) out[i] = mp_fp16_to_fp32(mp_fp32_to_fp16((float)x[i]));
        return;
    case MP_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) out[i] = mp_bf16_to_fp32(mp_fp32_to_bf16((float)x[i]));
        return;
    case MP_TYPE_Q4_0:
    case MP_TYPE_Q5_0:
    case MP_TYPE_Q5_1:
    case MP_TYPE_Q8_0:
    case MP_TYPE_IQ4_NL:
    case MP_TYPE_MXFP4:
        for (int64_t b = 0; b + 32 <= n; b += 32) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf((float)x[b + j]));
            const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            const float dh = mp_fp16_to_fp32(mp_fp32_to_fp16(d));
            for (int j = 0; j < 32; j++) out[b + j] = (double)dh * nearbyintf((float)x[b + j] * id);
        }
        return;
    case MP_TYPE_Q2_K:
    case MP_TYPE_Q3_K:
    case MP_TYPE_Q4_K:
    case MP_TYPE_Q5_K:
    case MP_TYPE_Q6_K:
    case MP_TYPE_IQ4_XS:
        for (int64_t b = 0; b + 256 <= n; b += 256) {
            float amax = 0, max = 0;
            for (int j = 0; j < 256; j++) {
                const float ax = fabsf((float)x[b + j]);
                if (ax > amax) { amax = ax; max = (float)x[b + j]; }
            }
            if (amax == 0.0f) {
                for (int j = 0; j < 256; j++) out[b + j] = 0;
                continue;
            }
            const float iscale = -127.0f / max, d = 1.0f / iscale;
            for (int j = 0; j < 256; j++) {
                float q = nearbyintf(iscale * (float)x[b + j]);
                if (q > 127) q = 127;
                out[b + j] = (double)d * q;
            }
        }
        return;
    default:
        for (int64_t i = 0; i < n; i++) out[i] = (float)x[i];
        return;
    }
}

/* y[r] = sum_c W[r][c] * x[c] for rows [r0, r0 + n) of W; x is first rounded
 * with act_round unless the model was loaded with act_exact. */
static void matvec(mp_ref_model *m, const ref_mat *W, int64_t r0, int64_t n, const double *x, double *y)
{
    if (!m->opts.act_exact) {
        act_round(W->type, x, m->xq, W->ncols);
        x = m->xq;
    }
    for (int64_t r = 0; r < n; r++) {
        const float *row = W->w + (r0 + r) * W->ncols;
        double s = 0;
        for (int64_t c = 0; c < W->ncols; c++) s += (double)row[c] * x[c];
        y[r] = s;
    }
}

static void add_bias(const ref_mat *b, double *y, int64_t n)
{
    if (!b->w) return;
    for (int64_t i = 0; i < n; i++) y[i] += b->w[i];
}

/* out = x / sqrt(mean(x^2) + eps) * w, over n elements (in place allowed). */
static void rmsnorm(const double *x, const float *w, double *out, int64_t n, double eps)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    double scale = 1.0 / sqrt(ss / (double)n + eps);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * (double)w[i];
}

/* Rotates the first n_rot dims of one head vector at position pos.
 * normal: pairs (2i, 2i+1); NEOX: pairs (i, i + n_rot/2).
 * theta_i = pos * freq_scale * base^(-2i/n_rot) / freq_factor_i. */
static void rope_head(const mp_ref_model *m, double *v, int pos)
{
    const int half = m->n_rot / 2;
    /* YaRN (deepseek2): between interpolated and extrapolated angles over the
     * dims whose wavelength lies between the correction dims of beta_fast 32
     * and beta_slow 1; rope_mag scales cos and sin */
    double low = 0, high = 0;
    if (m->yarn_ext != 0) {
#define CORR_DIM(b_) (m->n_rot * log(m->n_ctx_orig / ((b_) * 2 * M_PI)) / (2 * log(m->rope_base)))
        low = floor(CORR_DIM(32.0));
        high = ceil(CORR_DIM(1.0));
#undef CORR_DIM
        if (low < 0) low = 0;
        if (high > m->n_rot - 1) high = m->n_rot - 1;
    }
    for (int i = 0; i < half; i++) {
        const double extrap = (double)pos * pow(m->rope_base, -2.0 * i / m->n_rot);
        double theta = m->rope_freq_scale * extrap;
        if (m->yarn_ext != 0) {
            double y = (i - low) / fmax(0.001, high - low);
            const double mix = (1 - fmin(1, fmax(0, y))) * m->yarn_ext;
            theta = theta * (1 - mix) + extrap * mix;
        }
        if (m->rope_freqs.w) theta /= m->rope_freqs.w[i];
        const double c = cos(theta) * m->rope_mag, s = sin(theta) * m->rope_mag;
        const int i0 = m->rope_neox ? i : 2 * i, i1 = m->rope_neox ? i + half : 2 * i + 1;
        const double a = v[i0], b = v[i1];
        v[i0] = a * c - b * s;
        v[i1] = a * s + b * c;
    }
}

static double silu(double x) { return x / (1.0 + exp(-x)); }

static double round_f16(double x) { return mp_fp16_to_fp32(mp_fp32_to_fp16((float)x)); }

/* x += attention(rmsnorm(x)) for the token at position pos. */
static void attention(mp_ref_model *m, ref_layer *L, int pos)
{
    const int HD = m->head_dim, QW = m->n_head * HD, KW = m->n_head_kv * HD;
    const int group = m->n_head / m->n_head_kv;

    rmsnorm(m->x, L->attn_norm.w, m->xn, m->n_embd, m->eps);
    matvec(m, &L->wq, 0, QW, m->xn, m->q);
    matvec(m, &L->wk, 0, KW, m->xn, m->k);
    matvec(m, &L->wv, 0, KW, m->xn, m->v);
    add_bias(&L->bq, m->q, QW);
    add_bias(&L->bk, m->k, KW);
    add_bias(&L->bv, m->v, KW);

    if (m->arch == REF_QWEN3MOE || (m->arch == REF_GLM4MOE && L->q_norm.w)) { /* per-head norms, shared weights (hd) */
        for (int h = 0; h < m->n_head; h++) rmsnorm(m->q + h * HD, L->q_norm.w, m->q + h * HD, HD, m->eps);
        for (int h = 0; h < m->n_head_kv; h++) rmsnorm(m->k + h * HD, L->k_norm.w, m->k + h * HD, HD, m->eps);
    } else if (m->arch == REF_OLMOE || m->arch == REF_MINIMAX) { /* one norm over the whole projection */
        rmsnorm(m->q, L->q_norm.w, m->q, QW, m->eps);
        rmsnorm(m->k, L->k_norm.w, m->k, KW, m->eps);
    }
    /* gpt-oss: the window layers' own rope base (also in YaRN's correction dims) */
    const double base = m->rope_base;
    if (L->swa) m->rope_base = m->rope_base_swa;
    for (int h = 0; h < m->n_head; h++) rope_head(m, m->q + h * HD, pos);
    for (int h = 0; h < m->n_head_kv; h++) rope_head(m, m->k + h * HD, pos);
    m->rope_base = base;

    if (!m->opts.kv_double) {
        for (int i = 0; i < KW; i++) m->k[i] = round_f16(m->k[i]);
        for (int i = 0; i < KW; i++) m->v[i] = round_f16(m->v[i]);
    }
    memcpy(L->k_cache + (size_t)pos * KW, m->k, (size_t)KW * sizeof(double));
    memcpy(L->v_cache + (size_t)pos * KW, m->v, (size_t)KW * sizeof(double));

    const double scale = m->kq_scale;
    /* a window layer sees the n_swa positions up to and including pos
     * (llama.cpp's LLAMA_SWA_TYPE_STANDARD masks pos - t >= n_swa) */
    const int t0 = L->swa && pos - m->n_swa + 1 > 0 ? pos - m->n_swa + 1 : 0;
    for (int h = 0; h < m->n_head; h++) {
        const double *qh = m->q + h * HD;
        const int kvh = h / group;
        double mx = -INFINITY, sum = 0;
        for (int t = t0; t <= pos; t++) {
            const double *kt = L->k_cache + (size_t)t * KW + kvh * HD;
            double s = 0;
            for (int d = 0; d < HD; d++) s += qh[d] * kt[d];
            m->scores[t] = s * scale;
            if (m->scores[t] > mx) mx = m->scores[t];
        }
        /* gpt-oss: the head's sink logit joins the softmax's denominator only
         * (no value): softmax over [scores, sink], the sink's share dropped */
        const double sink = L->sinks.w ? L->sinks.w[h] : -INFINITY;
        if (sink > mx) mx = sink;
        if (L->sinks.w) sum += exp(sink - mx);
        for (int t = t0; t <= pos; t++) {
            m->scores[t] = exp(m->scores[t] - mx);
            sum += m->scores[t];
        }
        double *oh = m->att + h * HD;
        for (int d = 0; d < HD; d++) oh[d] = 0;
        for (int t = t0; t <= pos; t++) {
            const double *vt = L->v_cache + (size_t)t * KW + kvh * HD;
            const double p = m->scores[t] / sum;
            for (int d = 0; d < HD; d++) oh[d] += p * vt[d];
        }
    }
    matvec(m, &L->wo, 0, m->n_embd, m->att, m->attn_out);
    add_bias(&L->bo, m->attn_out, m->n_embd);
    for (int i = 0; i < m->n_embd; i++) m->x[i] += m->attn_out[i];
}

/* out = down(silu(gate . x) * (up . x)) using rows [g0, g0+FF) of gate/up and
 * [d0, d0+E) of down. gate may be absent (then silu(up)). */
static void swiglu(mp_ref_model *m, const ref_mat *gate, const ref_mat *up, const ref_mat *down,
                   int64_t g0, int64_t d0, const double *x, double *out)
{
    const int64_t FF = m->n_ff;
    matvec(m, up, g0, FF, x, m->ffn_b);
    if (gate->w) {
        matvec(m, gate, g0, FF, x, m->ffn_a);
        for (int64_t i = 0; i < FF; i++) m->ffn_a[i] = silu(m->ffn_a[i]) * m->ffn_b[i];
    } else {
        for (int64_t i = 0; i < FF; i++) m->ffn_a[i] = silu(m->ffn_b[i]);
    }
    matvec(m, down, d0, m->n_embd, m->ffn_a, out);
}

/* gpt-oss experts (llama.cpp build_moe_ffn with LLAMA_EXPERT_GATING_FUNC_TYPE_
 * SOFTMAX_WEIGHT and LLM_FFN_SWIGLU_OAI_MOE): router logits W x + b; the k
 * largest logits pick the experts, their weights the softmax over those k
 * logits (not renormalised, scaled by expert_weights_scale when not 0 or 1);
 * each expert: g = W_g x + b_g, u = W_u x + b_u, a = min(g, 7) *
 * sigmoid(1.702 min(g, 7)) * (clamp(u, -7, 7) + 1), out = W_d a + b_d. */
static void feed_forward_gptoss(mp_ref_model *m, ref_layer *L)
{
    const int E = m->n_embd, NE = m->n_expert, K = m->n_expert_used;
    const int64_t FF = m->n_ff;
    const double alpha = 1.702, limit = 7.0;
    double *p = m->router_p;
    matvec(m, &L->router, 0, NE, m->xn, p);
    add_bias(&L->router_b, p, NE);
    int sel[256];
    double w[256], mx = -INFINITY, sum = 0;
    bool taken[256] = {false};
    for (int j = 0; j < K; j++) {
        int best = -1;
        for (int e = 0; e < NE; e++)
            if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
        taken[best] = true;
        sel[j] = best;
        if (p[best] > mx) mx = p[best];
    }
    for (int j = 0; j < K; j++) sum += (w[j] = exp(p[sel[j]] - mx));
    for (int j = 0; j < K; j++) {
        w[j] /= sum;
        if (m->w_scale != 0 && m->w_scale != 1) w[j] *= m->w_scale;
    }
    double acc[E];
    for (int i = 0; i < E; i++) acc[i] = 0;
    for (int j = 0; j < K; j++) {
        const int64_t e = sel[j];
        matvec(m, &L->gate_exps, e * FF, FF, m->xn, m->ffn_a);
        matvec(m, &L->up_exps, e * FF, FF, m->xn, m->ffn_b);
        for (int64_t i = 0; i < FF; i++) {
            const double g = fmin(m->ffn_a[i] + L->gate_exps_b.w[e * FF + i], limit);
            const double u = fmin(fmax(m->ffn_b[i] + L->up_exps_b.w[e * FF + i], -limit), limit);
            m->ffn_a[i] = g / (1.0 + exp(-alpha * g)) * (u + 1.0);
        }
        matvec(m, &L->down_exps, e * E, E, m->ffn_a, m->ffn_out);
        for (int i = 0; i < E; i++) acc[i] += w[j] * (m->ffn_out[i] + L->down_exps_b.w[e * E + i]);
    }
    for (int i = 0; i < E; i++) m->x[i] += acc[i];
}

/* x += ffn(rmsnorm(x)): dense SwiGLU, or the routed experts. */
static void feed_forward(mp_ref_model *m, ref_layer *L)
{
    const int E = m->n_embd;
    rmsnorm(m->x, L->ffn_norm.w, m->xn, E, m->eps);
    if (m->n_expert == 0) {
        swiglu(m, &L->ffn_gate, &L->ffn_up, &L->ffn_down, 0, 0, m->xn, m->ffn_out);
        for (int i = 0; i < E; i++) m->x[i] += m->ffn_out[i];
        return;
    }

    const int NE = m->n_expert, K = m->n_expert_used;
    if (m->arch == REF_GPTOSS) {
        feed_forward_gptoss(m, L);
        return;
    }
    /* router: softmax over all experts, then the k largest probabilities */
    double *p = m->router_p, mx = -INFINITY, sum = 0;
    matvec(m, &L->router, 0, NE, m->xn, p);
    for (int e = 0; e < NE; e++) if (p[e] > mx) mx = p[e];
    for (int e = 0; e < NE; e++) { p[e] = exp(p[e] - mx); sum += p[e]; }
    for (int e = 0; e < NE; e++) p[e] /= sum;

    int sel[256];
    double w[256], wsum = 0;
    bool taken[256] = {false};
    for (int j = 0; j < K; j++) {
        int best = -1;
        for (int e = 0; e < NE; e++)
            if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
        taken[best] = true;
        sel[j] = best;
        w[j] = p[best];
        wsum += w[j];
    }
    if (m->norm_topk) {
        if (wsum < 6.103515625e-5) wsum = 6.103515625e-5; /* llama.cpp's guard */
        for (int j = 0; j < K; j++) w[j] /= wsum;
    }

    double acc[E];
    for (int i = 0; i < E; i++) acc[i] = 0;
    for (int j = 0; j < K; j++) {
        const int64_t e = sel[j];
        swiglu(m, &L->gate_exps, &L->up_exps, &L->down_exps, e * m->n_ff, e * E, m->xn, m->ffn_out);
        for (int i = 0; i < E; i++) acc[i] += w[j] * m->ffn_out[i];
    }
    for (int i = 0; i < E; i++) m->x[i] += acc[i];
}

/* Softmax of scores[0..n) * scale in place (max-subtracted, double). */
static void softmax_scaled(double *sc, int n)
{
    double mx = -INFINITY, sum = 0;
    for (int t = 0; t < n; t++) mx = sc[t] > mx ? sc[t] : mx;
    for (int t = 0; t < n; t++) sum += (sc[t] = exp(sc[t] - mx));
    for (int t = 0; t < n; t++) sc[t] /= sum;
}

/* deepseek2's multi-head latent attention for the token at pos: x += W_o
 * (heads of W_UV (attention over the latent)). Split layout: per head the
 * query is absorbed (q_abs = W_UK^T q_nope) and attends to the cached
 * latent c and k_pe (f16 unless kv_double); the head's output is W_UV o_lat.
 * attn_kv_b layout: keys [W_UK c | k_pe] and values W_UV c per head, cached
 * in f16, plain attention. */
static void attention_mla(mp_ref_model *m, ref_layer *L, int pos)
{
    const int H = m->n_head, R = m->n_rot, KL = m->kv_lora, dk = m->mla_dk, dv = m->mla_dv, nope = m->nope;
    rmsnorm(m->x, L->attn_norm.w, m->xn, m->n_embd, m->eps);
    if (m->q_lora > 0) {
        matvec(m, &L->wq_a, 0, m->q_lora, m->xn, m->mq);
        rmsnorm(m->mq, L->q_a_norm.w, m->mq, m->q_lora, m->eps);
        matvec(m, &L->wq_b, 0, (int64_t)H * dk, m->mq, m->q);
    } else {
        matvec(m, &L->wq, 0, (int64_t)H * dk, m->xn, m->q);
    }
    matvec(m, &L->wkv_a, 0, KL + R, m->xn, m->mkv);
    rope_head(m, m->mkv + KL, pos);
    rmsnorm(m->mkv, L->kv_a_norm.w, m->mkv, KL, m->eps);
    for (int h = 0; h < H; h++) rope_head(m, m->q + h * dk + nope, pos);

    if (m->mla_split) {
        const int KW = KL + R;
        double *row = L->k_cache + (size_t)pos * KW;
        for (int i = 0; i < KW; i++) row[i] = m->opts.kv_double ? m->mkv[i] : round_f16(m->mkv[i]);
        for (int h = 0; h < H; h++) {
            const double *qh = m->q + h * dk;
            matvec(m, &L->wk_b, (int64_t)h * KL, KL, qh, m->mo); /* q_abs (KL) */
            for (int t = 0; t <= pos; t++) {
                const double *ct = L->k_cache + (size_t)t * KW;
                double sc = 0;
                for (int r = 0; r < KL; r++) sc += m->mo[r] * ct[r];
                for (int j = 0; j < R; j++) sc += qh[nope + j] * ct[KL + j];
                m->scores[t] = sc * m->kq_scale;
            }
            softmax_scaled(m->scores, pos + 1);
            double *olat = m->mo;
            for (int r = 0; r < KL; r++) olat[r] = 0;
            for (int t = 0; t <= pos; t++)
                for (int r = 0; r < KL; r++) olat[r] += m->scores[t] * L->k_cache[(size_t)t * KW + r];
            matvec(m, &L->wv_b, (int64_t)h * dv, dv, olat, m->att + h * dv);
        }
    } else {
        const int kvw = nope + dv, KW = H * dk, VW = H * dv;
        matvec(m, &L->wkv_b, 0, (int64_t)H * kvw, m->mkv, m->mo);
        double *krow = L->k_cache + (size_t)pos * KW, *vrow = L->v_cache + (size_t)pos * VW;
        for (int h = 0; h < H; h++) {
            for (int d = 0; d < nope; d++) krow[h * dk + d] = m->mo[h * kvw + d];
            for (int j = 0; j < R; j++) krow[h * dk + nope + j] = m->mkv[KL + j];
            for (int d = 0; d < dv; d++) vrow[h * dv + d] = m->mo[h * kvw + nope + d];
        }
        if (!m->opts.kv_double) {
            for (int i = 0; i < KW; i++) krow[i] = round_f16(krow[i]);
            for (int i = 0; i < VW; i++) vrow[i] = round_f16(vrow[i]);
        }
        for (int h = 0; h < H; h++) {
            const double *qh = m->q + h * dk;
            for (int t = 0; t <= pos; t++) {
                const double *kt = L->k_cache + (size_t)t * KW + h * dk;
                double sc = 0;
                for (int d = 0; d < dk; d++) sc += qh[d] * kt[d];
                m->scores[t] = sc * m->kq_scale;
            }
            softmax_scaled(m->scores, pos + 1);
            double *oh = m->att + h * dv;
            for (int d = 0; d < dv; d++) oh[d] = 0;
            for (int t = 0; t <= pos; t++)
                for (int d = 0; d < dv; d++) oh[d] += m->scores[t] * L->v_cache[(size_t)t * VW + h * dv + d];
        }
    }
    matvec(m, &L->wo, 0, m->n_embd, m->att, m->attn_out);
    for (int i = 0; i < m->n_embd; i++) m->x[i] += m->attn_out[i];
}

/* out = down(silu(gate x) * (up x)) over FF rows from g0 (gate), u0 (up), d0 (down). */
static void swiglu_at(mp_ref_model *m, const ref_mat *gate, int64_t g0, const ref_mat *up, int64_t u0,
                      const ref_mat *down, int64_t d0, int64_t FF, const double *x, double *out)
{
    matvec(m, up, u0, FF, x, m->ffn_b);
    matvec(m, gate, g0, FF, x, m->ffn_a);
    for (int64_t i = 0; i < FF; i++) m->ffn_a[i] = silu(m->ffn_a[i]) * m->ffn_b[i];
    matvec(m, down, d0, m->n_embd, m->ffn_a, out);
}

/* deepseek2 / glm4moe FFN: dense lead layers; otherwise shared experts plus
 * the routed ones: softmax or sigmoid probabilities, selection on probs +
 * bias within the best groups (sum of each group's two best), weights the
 * unbiased probs, renormalised and scaled as the model says. */
static void feed_forward_ds(mp_ref_model *m, ref_layer *L)
{
    const int E = m->n_embd, NE = m->n_expert, K = m->n_expert_used;
    const int64_t F = m->n_ff;
    rmsnorm(m->x, L->ffn_norm.w, m->xn, E, m->eps);
    if (L->dense) {
        swiglu_at(m, &L->ffn_gate, 0, &L->ffn_up, 0, &L->ffn_down, 0, m->n_ff_dense, m->xn, m->ffn_out);
        for (int i = 0; i < E; i++) m->x[i] += m->ffn_out[i];
        return;
    }
    double acc[E];
    for (int i = 0; i < E; i++) acc[i] = 0;
    if (L->gate_sh.w) {
        swiglu_at(m, &L->gate_sh, 0, &L->up_sh, 0, &L->down_sh, 0, m->n_ff_sh, m->xn, m->ffn_out);
        double gs = 1.0; /* qwen2moe: sigmoid of the shared gate's logit */
        if (L->gate_inp_sh.w) {
            double gl;
            matvec(m, &L->gate_inp_sh, 0, 1, m->xn, &gl);
            gs = 1.0 / (1.0 + exp(-gl));
        }
        for (int i = 0; i < E; i++) acc[i] = gs * m->ffn_out[i];
    }
    double *p = m->router_p, sel[256];
    matvec(m, &L->router, 0, NE, m->xn, p);
    if (m->sigmoid) {
        for (int e = 0; e < NE; e++) p[e] = 1.0 / (1.0 + exp(-p[e]));
    } else {
        double mx = -INFINITY, sum = 0;
        for (int e = 0; e < NE; e++) mx = p[e] > mx ? p[e] : mx;
        for (int e = 0; e < NE; e++) sum += (p[e] = exp(p[e] - mx));
        for (int e = 0; e < NE; e++) p[e] /= sum;
    }
    for (int e = 0; e < NE; e++) sel[e] = p[e] + (L->probs_b.w ? L->probs_b.w[e] : 0.0);
    if (m->n_group > 1) {
        const int G = m->n_group, per = NE / G;
        double gs[256];
        bool keep[256] = {false};
        for (int g = 0; g < G; g++) {
            double b1 = -INFINITY, b2 = -INFINITY;
            for (int e = g * per; e < (g + 1) * per; e++) {
                if (sel[e] > b1) { b2 = b1; b1 = sel[e]; }
                else if (sel[e] > b2) b2 = sel[e];
            }
            gs[g] = b1 + b2;
        }
        for (int j = 0; j < m->n_group_used; j++) {
            int best = -1;
            for (int g = 0; g < G; g++)
                if (!keep[g] && (best < 0 || gs[g] > gs[best])) best = g;
            keep[best] = true;
        }
        for (int e = 0; e < NE; e++)
            if (!keep[e / per]) sel[e] = -INFINITY;
    }
    int pick[256];
    double w[256], wsum = 0;
    bool taken[256] = {false};
    for (int j = 0; j < K; j++) {
        int best = -1;
        for (int e = 0; e < NE; e++)
            if (!taken[e] && (best < 0 || sel[e] > sel[best])) best = e;
        taken[best] = true;
        pick[j] = best;
        w[j] = p[best];
        wsum += w[j];
    }
    for (int j = 0; j < K; j++) {
        if (m->norm_topk) w[j] /= wsum < 6.103515625e-5 ? 6.103515625e-5 : wsum;
        if (m->w_scale != 0 && m->w_scale != 1) w[j] *= m->w_scale;
    }
    const bool fused = L->gate_up_exps.w != NULL;
    for (int j = 0; j < K; j++) {
        const int64_t e = pick[j];
        const int64_t g0 = fused ? e * 2 * F : e * F, u0 = fused ? e * 2 * F + F : e * F;
        swiglu_at(m, &L->gate_exps, g0, &L->up_exps, u0, &L->down_exps, e * E, F, m->xn, m->ffn_out);
        for (int i = 0; i < E; i++) acc[i] += w[j] * m->ffn_out[i];
    }
    for (int i = 0; i < E; i++) m->x[i] += acc[i];
}

/* One token at position m->n_past; logits (may be NULL) gets n_vocab floats. */
static void eval_token(mp_ref_model *m, int32_t id, float *logits)
{
    const int E = m->n_embd, pos = m->n_past;
    const float *row = m->tok_embd.w + (int64_t)id * E;
    for (int i = 0; i < E; i++) m->x[i] = row[i];
    const bool ds = m->arch == REF_DEEPSEEK2 || m->arch == REF_GLM4MOE || m->arch == REF_QWEN2MOE ||
                    m->arch == REF_MINIMAX;
    for (int il = 0; il < m->n_layer; il++) {
        if (m->mla) attention_mla(m, &m->layers[il], pos);
        else attention(m, &m->layers[il], pos);
        if (ds) feed_forward_ds(m, &m->layers[il]);
        else feed_forward(m, &m->layers[il]);
    }
    m->n_past++;
    if (!logits) return;
    rmsnorm(m->x, m->output_norm.w, m->xn, E, m->eps);
    matvec(m, &m->output, 0, m->n_vocab, m->xn, m->logits);
    for (int64_t r = 0; r < m->n_vocab; r++) logits[r] = (float)m->logits[r];
}

int mp_ref_eval(mp_ref_model *m, const int32_t *ids, int n, float *logits_out, int all_positions,
                mp_err *err)
{
    if (n <= 0) return mp_err_set(err, MP_E_INVAL, "ref: no tokens to evaluate");
    if (m->n_expert > 256 || m->n_expert_used > 256)
        return mp_err_set(err, MP_E_UNSUPPORTED, "ref: %d experts (%d used) is more than the reference handles",
                          m->n_expert, m->n_expert_used);
    if (m->n_past + n > m->opts.n_ctx)
        return mp_err_set(err, MP_E_RANGE, "ref: context full (%d + %d > %d)", m->n_past, n, m->opts.n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->n_vocab)
            return mp_err_set(err, MP_E_INVAL, "ref: token id %d at %d out of range [0, %d)", ids[i], i,
                              m->n_vocab);
    for (int i = 0; i < n; i++) {
        float *dst = NULL;
        if (logits_out && all_positions) dst = logits_out + (size_t)i * m->n_vocab;
        else if (logits_out && i == n - 1) dst = logits_out;
        eval_token(m, ids[i], dst);
    }
    return MP_OK;
}

int mp_ref_argmax(const float *logits, int n_vocab)
{
    int best = 0;
    for (int v = 1; v < n_vocab; v++) if (logits[v] > logits[best]) best = v;
    return best;
}

int mp_ref_generate(mp_ref_model *m, const int32_t *ids, int n, int n_gen, int32_t *gen_out,
                    float *prompt_logits, mp_err *err)
{
    int rc = MP_OK;
    float *lg = malloc((size_t)m->n_vocab * sizeof(float));
    if (!lg) return mp_err_set(err, MP_E_NOMEM, "ref: out of memory");
    mp_ref_reset(m);
    if ((rc = mp_ref_eval(m, ids, n, lg, 0, err))) goto done;
    if (prompt_logits) memcpy(prompt_logits, lg, (size_t)m->n_vocab * sizeof(float));
    for (int g = 0; g < n_gen; g++) {
        gen_out[g] = mp_ref_argmax(lg, m->n_vocab);
        if (g + 1 < n_gen && (rc = mp_ref_eval(m, &gen_out[g], 1, lg, 0, err))) goto done;
    }
done:
    free(lg);
    return rc;
}

int mp_ref_forward(const char *gguf_path, const int32_t *ids, int n, float *logits_out,
                   int all_positions, mp_err *err)
{
    mp_ref_model *m = NULL;
    int rc = mp_ref_model_load(&m, gguf_path, NULL, err);
    if (rc) return rc;
    rc = mp_ref_eval(m, ids, n, logits_out, all_positions, err);
    mp_ref_model_free(m);
    return rc;
}
