/* mp-gen: writes random-weight GGUF models that llama.cpp and moepager load.
 *
 * Architectures (tensor names, shapes and metadata keys as llama.cpp's
 * llama / qwen3moe / olmoe loaders expect them):
 *   llama      dense: blk.N.ffn_{gate,up,down}
 *   llama-moe  Mixtral style: general.architecture "llama" plus
 *              llama.expert_count / expert_used_count, blk.N.ffn_gate_inp
 *              {n_embd, n_expert} and blk.N.ffn_{gate,up,down}_exps (3-D)
 *   qwen3moe   per-head q/k norms {head_dim}, expert_feed_forward_length
 *   olmoe      q/k norms over the full width {n_embd}; no GQA; untied output
 *   minimax-m2 q/k norms over the whole q and k vectors, partial NEOX rope,
 *              exp_probs_b, expert_gating_func (default sigmoid)
 *
 * Values: matrices hold roughly normal values with std ~ 1/sqrt(row length),
 * so every projection keeps activations of order 1; the router gets a larger
 * std so that routing is peaked and varies between tokens; norms are
 * 1 +- 0.1. Quantised tensors are written as valid random blocks (random
 * quants, finite fp16 scales picked so that the dequantised std matches)
 * instead of quantising floats, so generation runs at disk speed. Each
 * tensor has its own xoshiro256++ stream seeded from (--seed, tensor index):
 * output is byte-identical for a given command line however the writer
 * chunks the data.
 *
 * `mp-gen --check FILE` reopens a model with our own reader, rebuilds the
 * tensor list that the file's metadata implies and compares names, shapes
 * and the F32-only tensors, then scans every value (f32/f16/bf16) or block
 * scale (quantised types) for NaN/inf. Exit 0 when the file is sound. */
#include "common/err.h"
#include "common/types.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- PRNG: splitmix64 for seeding, xoshiro256++ for the streams ---------- */

typedef struct mp_rng {
    uint64_t s[4];
} mp_rng;

static uint64_t mp_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void mp_rng_seed(mp_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull) ^ 0x6d6f657061676572ull;
    for (int i = 0; i < 4; i++) r->s[i] = mp_splitmix64(&x);
}

static inline uint64_t mp_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t mp_rng_next(mp_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t out = mp_rotl(s[0] + s[3], 23) + s[0];
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = mp_rotl(s[3], 45);
    return out;
}

static void mp_rng_bytes(mp_rng *r, uint8_t *dst, size_t n)
{
    while (n >= 8) {
        uint64_t v = mp_rng_next(r);
        memcpy(dst, &v, 8);
        dst += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = mp_rng_next(r);
        memcpy(dst, &v, n);
    }
}

/* Irwin-Hall(4) from one 64-bit draw: mean 0, std 1, bounded by +-3.46. */
static inline float mp_rng_normalish(mp_rng *r)
{
    uint64_t v = mp_rng_next(r);
    int32_t s = (int32_t)(v & 0xffff) + (int32_t)((v >> 16) & 0xffff) +
                (int32_t)((v >> 32) & 0xffff) + (int32_t)(v >> 48) - 2 * 65535;
    return (float)s * (1.0f / 37837.2f); /* 37837 = 65536 / sqrt(3) */
}

/* ---- model description ----------------------------------------------- */

typedef enum gen_arch {
    ARCH_LLAMA, ARCH_LLAMA_MOE, ARCH_QWEN3MOE, ARCH_OLMOE, ARCH_DEEPSEEK2, ARCH_GLM4MOE, ARCH_QWEN2MOE, ARCH_GPTOSS,
    ARCH_MINIMAX_M2, ARCH_QWEN3NEXT, ARCH_QWEN35MOE, ARCH_COUNT
} gen_arch;
static const char *const arch_cli_names[] = {"llama",    "llama-moe", "qwen3moe",   "olmoe",     "deepseek2",
                                             "glm4moe",  "qwen2moe",  "gpt-oss",    "minimax-m2", "qwen3next",
                                             "qwen35moe"};
static const char *const arch_gguf_names[] = {"llama",    "llama",    "qwen3moe",   "olmoe",     "deepseek2",
                                              "glm4moe",  "qwen2moe", "gpt-oss",    "minimax-m2", "qwen3next",
                                              "qwen35moe"};

/* What a tensor is for; picks its type (--type mixes, --*-type overrides)
 * and the std of its values. */
typedef enum gen_role {
    ROLE_NORM,     /* 1-D, F32, 1 +- 0.1 */
    ROLE_ROUTER,   /* ffn_gate_inp, F32 */
    ROLE_EMBD,     /* token_embd */
    ROLE_OUTPUT,   /* output.weight */
    ROLE_ATTN,     /* attn_q, attn_k, attn_output */
    ROLE_ATTN_V,   /* attn_v (Q6_K in the _m mixes) */
    ROLE_FFN,      /* dense ffn_gate, ffn_up */
    ROLE_FFN_DOWN, /* dense ffn_down (Q6_K in the _m mixes) */
    ROLE_EXP,      /* ffn_gate_exps, ffn_up_exps */
    ROLE_EXP_DOWN, /* ffn_down_exps (Q6_K in the _m mixes) */
    ROLE_ATTN_KB,  /* deepseek2 attn_k_b / attn_v_b (3-D, per head): the attention type where
                      its row length fits the block size, else q8_0, else f16 (as
                      llama-quantize falls back for rows that do not fit) */
    ROLE_BIAS,     /* exp_probs_b: F32, std 0.1 */
    ROLE_SSM_A,    /* Gated DeltaNet ssm_a = -exp(A_log): F32, negative (decay < 1) */
    ROLE_CONV      /* ssm_conv1d {d_conv, channels}: F32 (rows of 4 fit no block) */
} gen_role;

typedef struct gen_tensor {
    char name[64];
    gen_role role;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[MP_GGUF_MAX_DIMS];
    float scale;     /* target std of the values (matrices) */
    uint64_t nbytes;
} gen_tensor;

typedef struct gen_opts {
    gen_arch arch;
    const char *type_name;  /* as given to --type */
    uint32_t type;          /* base matrix type */
    uint32_t type_hi;       /* attn_v/ffn_down/output type (== type unless a _m mix) */
    int attn_type, expert_type, embd_type; /* -1: not overridden */
    uint32_t ftype;         /* general.file_type (llama_ftype) */
    int64_t n_embd, n_head, n_head_kv, head_dim, n_ff, n_ff_exp, n_layer;
    int64_t n_expert, n_expert_used, n_vocab, n_ctx;
    float rope_base, eps;
    bool tied_output;
    bool fit_types;         /* --fit-types: rows that don't fit a type's block fall back (fit_type) */
    uint64_t seed;
    const char *out, *vocab, *name;
    bool quiet;
    bool n_vocab_set;
    /* deepseek2 (MLA + shared experts + gating options) */
    int64_t q_lora, kv_lora, rope_dim, nope_dim, v_dim; /* MLA ranks and per-head dims */
    bool mla_kv_b;            /* older layout: one attn_kv_b instead of attn_k_b / attn_v_b */
    int64_t n_dense_lead, n_shared, n_group, n_group_used;
    int gating;               /* llama.cpp expert_gating_func: 1 softmax, 2 sigmoid; 0 = the arch default (key absent but for minimax-m2), -1 = key absent */
    bool probs_bias, weights_norm, fused_gate_up;
    float weights_scale;
    float yarn_factor, yarn_log_mul; /* yarn_factor 0: no rope scaling */
    int64_t yarn_orig;
    /* glm4moe (also uses n_dense_lead, n_shared, gating, weights_norm/scale) */
    bool attn_bias, qk_norm;
    int64_t n_rot;            /* rotated dims per head (partial rotary); 0: head_dim / 2 */
    int64_t n_nextn;          /* NextN/MTP blocks appended (counted in block_count) */
    /* qwen2moe (also uses attn_bias) */
    int64_t n_ff_shexp;       /* the shared expert's width; 0: n_ff */
    int fused_qkv;            /* 1: one attn_qkv (+ attn_qkv.bias); 2: with separate q/k/v biases */
    bool shexp_key;           /* write expert_shared_feed_forward_length (only when given) */
    /* gpt-oss (also uses head_dim, yarn_*) */
    int64_t n_swa, swa_pattern; /* sliding window; pattern 0: key absent (llama.cpp's default 2) */
    float rope_base_swa;        /* 0: key absent */
    /* qwen3next / qwen35moe (also use head_dim, n_rot, n_ff_shexp): Gated
     * DeltaNet layers, every full_attn-th layer full attention */
    int64_t ssm_state, ssm_k_heads, ssm_v_heads, ssm_conv, full_attn;
    bool ssm_split;             /* qwen35moe: ssm_beta + ssm_alpha instead of ssm_ba */
    bool ssm_legacy;            /* qwen3next: one ssm_in (older converters) instead of attn_qkv + attn_gate */
} gen_opts;

typedef struct gen_model {
    gen_tensor *t;
    size_t n, cap;
} gen_model;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mp-gen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static bool is_moe(gen_arch a) { return a != ARCH_LLAMA; }

/* First rounding-compatible type for a row of ne0 elements: the wanted
 * type, else q8_0, else f16. */
static uint32_t fit_type(uint32_t t, int64_t ne0)
{
    if (ne0 % mp_type_get(t)->blck_size == 0) return t;
    if (ne0 % 32 == 0 && t != MP_TYPE_F32 && t != MP_TYPE_F16 && t != MP_TYPE_BF16) return MP_TYPE_Q8_0;
    return t == MP_TYPE_F32 ? MP_TYPE_F32 : MP_TYPE_F16;
}

static uint32_t role_type(const gen_opts *o, gen_role role)
{
    switch (role) {
    case ROLE_NORM:
    case ROLE_BIAS:
    case ROLE_SSM_A:
    case ROLE_CONV:
    case ROLE_ROUTER: return MP_TYPE_F32;
    case ROLE_ATTN_KB: return o->attn_type >= 0 ? (uint32_t)o->attn_type : o->type;
    case ROLE_EMBD: return o->embd_type >= 0 ? (uint32_t)o->embd_type : o->type;
    case ROLE_OUTPUT: return o->embd_type >= 0 ? (uint32_t)o->embd_type : o->type_hi;
    case ROLE_ATTN: return o->attn_type >= 0 ? (uint32_t)o->attn_type : o->type;
    case ROLE_ATTN_V: return o->attn_type >= 0 ? (uint32_t)o->attn_type : o->type_hi;
    case ROLE_FFN: return o->type;
    case ROLE_FFN_DOWN: return o->type_hi;
    case ROLE_EXP: return o->expert_type >= 0 ? (uint32_t)o->expert_type : o->type;
    case ROLE_EXP_DOWN: return o->expert_type >= 0 ? (uint32_t)o->expert_type : o->type_hi;
    }
    return o->type;
}

static void model_add(gen_model *m, const gen_opts *o, gen_role role, int64_t ne0, int64_t ne1,
                      int64_t ne2, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void model_add(gen_model *m, const gen_opts *o, gen_role role, int64_t ne0, int64_t ne1,
                      int64_t ne2, const char *fmt, ...)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->t = realloc(m->t, m->cap * sizeof(*m->t));
        if (!m->t) die("out of memory");
    }
    gen_tensor *t = &m->t[m->n++];
    memset(t, 0, sizeof(*t));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof(t->name), fmt, ap);
    va_end(ap);
    t->role = role;
    t->type = role_type(o, role);
    if (role == ROLE_ATTN_KB || o->fit_types) t->type = fit_type(t->type, ne0);
    t->ne[0] = ne0;
    t->ne[1] = ne1 ? ne1 : 1;
    t->ne[2] = ne2 ? ne2 : 1;
    t->ne[3] = 1;
    t->n_dims = ne2 ? 3 : ne1 ? 2 : 1;
    /* Std of the values: 1/sqrt(fan_in) keeps each projection's output at
     * the scale of its (normalised) input. */
    t->scale = 1.0f / sqrtf((float)ne0);
    if (role == ROLE_ROUTER) t->scale = 4.0f / sqrtf((float)ne0); /* peaked, token-dependent routing */
    if (role == ROLE_OUTPUT) t->scale = 2.0f / sqrtf((float)ne0); /* logits std ~2 */
    if (role == ROLE_EMBD) t->scale = o->tied_output ? 2.0f / sqrtf((float)ne0) : 1.0f;
    if (role == ROLE_BIAS) t->scale = 0.1f;
}

/* glm4moe (llama.cpp src/models/glm4-moe.cpp load_arch_tensors): GQA
 * attention with biases and optional per-head q/k norms, post_attention_norm
 * before the FFN, dense lead, routed + shared experts with exp_probs_b, then
 * n_nextn MTP blocks (a full MoE layer plus nextn.*) that llama.cpp skips. */
static void model_build_glm4moe(gen_model *m, const gen_opts *o)
{
    const int64_t E = o->n_embd, hd = o->head_dim, X = o->n_expert, F = o->n_ff_exp;
    const int64_t nq = o->n_head * hd, nkv = o->n_head_kv * hd;
    model_add(m, o, ROLE_EMBD, E, o->n_vocab, 0, "token_embd.weight");
    for (int64_t i = 0; i < o->n_layer + o->n_nextn; i++) {
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".attn_norm.weight", i);
        model_add(m, o, ROLE_ATTN, E, nq, 0, "blk.%" PRId64 ".attn_q.weight", i);
        if (o->attn_bias) model_add(m, o, ROLE_BIAS, nq, 0, 0, "blk.%" PRId64 ".attn_q.bias", i);
        model_add(m, o, ROLE_ATTN, E, nkv, 0, "blk.%" PRId64 ".attn_k.weight", i);
        if (o->attn_bias) model_add(m, o, ROLE_BIAS, nkv, 0, 0, "blk.%" PRId64 ".attn_k.bias", i);
        model_add(m, o, ROLE_ATTN_V, E, nkv, 0, "blk.%" PRId64 ".attn_v.weight", i);
        if (o->attn_bias) model_add(m, o, ROLE_BIAS, nkv, 0, 0, "blk.%" PRId64 ".attn_v.bias", i);
        model_add(m, o, ROLE_ATTN, nq, E, 0, "blk.%" PRId64 ".attn_output.weight", i);
        if (o->qk_norm) {
            model_add(m, o, ROLE_NORM, hd, 0, 0, "blk.%" PRId64 ".attn_q_norm.weight", i);
            model_add(m, o, ROLE_NORM, hd, 0, 0, "blk.%" PRId64 ".attn_k_norm.weight", i);
        }
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".post_attention_norm.weight", i);
        if (i < o->n_dense_lead) {
            model_add(m, o, ROLE_FFN, E, o->n_ff, 0, "blk.%" PRId64 ".ffn_gate.weight", i);
            model_add(m, o, ROLE_FFN_DOWN, o->n_ff, E, 0, "blk.%" PRId64 ".ffn_down.weight", i);
            model_add(m, o, ROLE_FFN, E, o->n_ff, 0, "blk.%" PRId64 ".ffn_up.weight", i);
        } else {
            model_add(m, o, ROLE_ROUTER, E, X, 0, "blk.%" PRId64 ".ffn_gate_inp.weight", i);
            model_add(m, o, ROLE_BIAS, X, 0, 0, "blk.%" PRId64 ".exp_probs_b.bias", i);
            model_add(m, o, ROLE_EXP, E, F, X, "blk.%" PRId64 ".ffn_gate_exps.weight", i);
            model_add(m, o, ROLE_EXP_DOWN, F, E, X, "blk.%" PRId64 ".ffn_down_exps.weight", i);
            model_add(m, o, ROLE_EXP, E, F, X, "blk.%" PRId64 ".ffn_up_exps.weight", i);
            const int64_t S = F * o->n_shared;
            model_add(m, o, ROLE_FFN, E, S, 0, "blk.%" PRId64 ".ffn_gate_shexp.weight", i);
            model_add(m, o, ROLE_FFN_DOWN, S, E, 0, "blk.%" PRId64 ".ffn_down_shexp.weight", i);
            model_add(m, o, ROLE_FFN, E, S, 0, "blk.%" PRId64 ".ffn_up_shexp.weight", i);
        }
        if (i >= o->n_layer) {
            model_add(m, o, ROLE_ATTN, 2 * E, E, 0, "blk.%" PRId64 ".nextn.eh_proj.weight", i);
            model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".nextn.enorm.weight", i);
            model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".nextn.hnorm.weight", i);
            model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".nextn.shared_head_norm.weight", i);
        }
    }
    model_add(m, o, ROLE_NORM, E, 0, 0, "output_norm.weight");
    if (!o->tied_output) model_add(m, o, ROLE_OUTPUT, E, o->n_vocab, 0, "output.weight");
}

/* qwen2moe (llama.cpp src/models/qwen2moe.cpp load_arch_tensors): GQA
 * attention with optional q/k/v biases (Qwen1.5-MoE and Qwen2-57B have
 * them), routed experts, and one shared expert with a 1-D f32 gate. */
static void model_build_qwen2moe(gen_model *m, const gen_opts *o)
{
    const int64_t E = o->n_embd, hd = o->head_dim, X = o->n_expert, F = o->n_ff_exp, S = o->n_ff_shexp;
    const int64_t nq = o->n_head * hd, nkv = o->n_head_kv * hd;
    model_add(m, o, ROLE_EMBD, E, o->n_vocab, 0, "token_embd.weight");
    for (int64_t i = 0; i < o->n_layer; i++) {
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".attn_norm.weight", i);
        if (o->fused_qkv) {
            /* one projection, rows [q | k | v] (llama.cpp create_tensor_qkv) */
            model_add(m, o, ROLE_ATTN, E, nq + 2 * nkv, 0, "blk.%" PRId64 ".attn_qkv.weight", i);
            if (o->attn_bias && o->fused_qkv == 1)
                model_add(m, o, ROLE_BIAS, nq + 2 * nkv, 0, 0, "blk.%" PRId64 ".attn_qkv.bias", i);
            if (o->attn_bias && o->fused_qkv == 2) {
                model_add(m, o, ROLE_BIAS, nq, 0, 0, "blk.%" PRId64 ".attn_q.bias", i);
                model_add(m, o, ROLE_BIAS, nkv, 0, 0, "blk.%" PRId64 ".attn_k.bias", i);
                model_add(m, o, ROLE_BIAS, nkv, 0, 0, "blk.%" PRId64 ".attn_v.bias", i);
            }
        } else {
            model_add(m, o, ROLE_ATTN, E, nq, 0, "blk.%" PRId64 ".attn_q.weight", i);
            if (o->attn_bias) model_add(m, o, ROLE_BIAS, nq, 0, 0, "blk.%" PRId64 ".attn_q.bias", i);
            model_add(m, o, ROLE_ATTN, E, nkv, 0, "blk.%" PRId64 ".attn_k.weight", i);
            if (o->attn_bias) model_add(m, o, ROLE_BIAS, nkv, 0, 0, "blk.%" PRId64 ".attn_k.bias", i);
            model_add(m, o, ROLE_ATTN_V, E, nkv, 0, "blk.%" PRId64 ".attn_v.weight", i);
            if (o->attn_bias) model_add(m, o, ROLE_BIAS, nkv, 0, 0, "blk.%" PRId64 ".attn_v.bias", i);
        }
        model_add(m, o, ROLE_ATTN, nq, E, 0, "blk.%" PRId64 ".attn_output.weight", i);
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".ffn_norm.weight", i);
        model_add(m, o, ROLE_ROUTER, E, X, 0, "blk.%" PRId64 ".ffn_gate_inp.weight", i);
        model_add(m, o, ROLE_EXP, E, F, X, "blk.%" PRId64 ".ffn_gate_exps.weight", i);
        model_add(m, o, ROLE_EXP_DOWN, F, E, X, "blk.%" PRId64 ".ffn_down_exps.weight", i);
        model_add(m, o, ROLE_EXP, E, F, X, "blk.%" PRId64 ".ffn_up_exps.weight", i);
        /* the gate logit with std ~1: the shared expert's weight varies per token */
        model_add(m, o, ROLE_ROUTER, E, 0, 0, "blk.%" PRId64 ".ffn_gate_inp_shexp.weight", i);
        m->t[m->n - 1].scale = 1.0f / sqrtf((float)E);
        model_add(m, o, ROLE_FFN, E, S, 0, "blk.%" PRId64 ".ffn_gate_shexp.weight", i);
        model_add(m, o, ROLE_FFN_DOWN, S, E, 0, "blk.%" PRId64 ".ffn_down_shexp.weight", i);
        model_add(m, o, ROLE_FFN, E, S, 0, "blk.%" PRId64 ".ffn_up_shexp.weight", i);
    }
    model_add(m, o, ROLE_NORM, E, 0, 0, "output_norm.weight");
    if (!o->tied_output) model_add(m, o, ROLE_OUTPUT, E, o->n_vocab, 0, "output.weight");
}

/* gpt-oss (llama.cpp src/models/openai-moe.cpp load_arch_tensors): GQA
 * with biases on q/k/v/o, per-head sink logits, post_attention_norm before
 * the FFN, a router with a bias, experts with biases. */
static void model_build_gptoss(gen_model *m, const gen_opts *o)
{
    const int64_t E = o->n_embd, hd = o->head_dim, X = o->n_expert, F = o->n_ff_exp;
    const int64_t nq = o->n_head * hd, nkv = o->n_head_kv * hd;
    model_add(m, o, ROLE_EMBD, E, o->n_vocab, 0, "token_embd.weight");
    for (int64_t i = 0; i < o->n_layer; i++) {
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".attn_norm.weight", i);
        model_add(m, o, ROLE_ATTN, E, nq, 0, "blk.%" PRId64 ".attn_q.weight", i);
        model_add(m, o, ROLE_BIAS, nq, 0, 0, "blk.%" PRId64 ".attn_q.bias", i);
        model_add(m, o, ROLE_ATTN, E, nkv, 0, "blk.%" PRId64 ".attn_k.weight", i);
        model_add(m, o, ROLE_BIAS, nkv, 0, 0, "blk.%" PRId64 ".attn_k.bias", i);
        model_add(m, o, ROLE_ATTN_V, E, nkv, 0, "blk.%" PRId64 ".attn_v.weight", i);
        model_add(m, o, ROLE_BIAS, nkv, 0, 0, "blk.%" PRId64 ".attn_v.bias", i);
        model_add(m, o, ROLE_ATTN, nq, E, 0, "blk.%" PRId64 ".attn_output.weight", i);
        model_add(m, o, ROLE_BIAS, E, 0, 0, "blk.%" PRId64 ".attn_output.bias", i);
        model_add(m, o, ROLE_BIAS, o->n_head, 0, 0, "blk.%" PRId64 ".attn_sinks.weight", i);
        m->t[m->n - 1].scale = 1.0f; /* sinks of the order of the attention logits */
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".post_attention_norm.weight", i);
        model_add(m, o, ROLE_ROUTER, E, X, 0, "blk.%" PRId64 ".ffn_gate_inp.weight", i);
        model_add(m, o, ROLE_BIAS, X, 0, 0, "blk.%" PRId64 ".ffn_gate_inp.bias", i);
        model_add(m, o, ROLE_EXP, E, F, X, "blk.%" PRId64 ".ffn_gate_exps.weight", i);
        model_add(m, o, ROLE_BIAS, F, X, 0, "blk.%" PRId64 ".ffn_gate_exps.bias", i);
        model_add(m, o, ROLE_EXP, E, F, X, "blk.%" PRId64 ".ffn_up_exps.weight", i);
        model_add(m, o, ROLE_BIAS, F, X, 0, "blk.%" PRId64 ".ffn_up_exps.bias", i);
        model_add(m, o, ROLE_EXP_DOWN, F, E, X, "blk.%" PRId64 ".ffn_down_exps.weight", i);
        model_add(m, o, ROLE_BIAS, E, X, 0, "blk.%" PRId64 ".ffn_down_exps.bias", i);
    }
    model_add(m, o, ROLE_NORM, E, 0, 0, "output_norm.weight");
    if (!o->tied_output) model_add(m, o, ROLE_OUTPUT, E, o->n_vocab, 0, "output.weight");
}

/* qwen3next / qwen35moe (llama.cpp src/models/qwen3next.cpp, qwen35moe.cpp
 * load_arch_tensors): Gated DeltaNet layers (attn_qkv + attn_gate, a short
 * conv, ssm_ba or ssm_beta + ssm_alpha, ssm_dt.bias, ssm_a, ssm_norm,
 * ssm_out) and every full_attn-th layer gated attention (attn_q of
 * 2 x n_head x head_dim: per head [query | gate]; per-head q/k norms); all
 * layers post_attention_norm, routed experts and a sigmoid-gated shared
 * expert. */
static void model_build_qwen3next(gen_model *m, const gen_opts *o)
{
    const int64_t E = o->n_embd, hd = o->head_dim, X = o->n_expert, F = o->n_ff_exp, S = o->n_ff_shexp;
    const int64_t nq = o->n_head * hd, nkv = o->n_head_kv * hd;
    const int64_t dk = o->ssm_state, Hk = o->ssm_k_heads, Hv = o->ssm_v_heads;
    const int64_t key_dim = dk * Hk, value_dim = dk * Hv, conv_dim = 2 * key_dim + value_dim;
    model_add(m, o, ROLE_EMBD, E, o->n_vocab, 0, "token_embd.weight");
    for (int64_t i = 0; i < o->n_layer; i++) {
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".attn_norm.weight", i);
        if ((i + 1) % o->full_attn == 0) {
            model_add(m, o, ROLE_ATTN, E, 2 * nq, 0, "blk.%" PRId64 ".attn_q.weight", i);
            model_add(m, o, ROLE_ATTN, E, nkv, 0, "blk.%" PRId64 ".attn_k.weight", i);
            model_add(m, o, ROLE_ATTN_V, E, nkv, 0, "blk.%" PRId64 ".attn_v.weight", i);
            model_add(m, o, ROLE_ATTN, nq, E, 0, "blk.%" PRId64 ".attn_output.weight", i);
            model_add(m, o, ROLE_NORM, hd, 0, 0, "blk.%" PRId64 ".attn_q_norm.weight", i);
            model_add(m, o, ROLE_NORM, hd, 0, 0, "blk.%" PRId64 ".attn_k_norm.weight", i);
        } else {
            if (o->ssm_legacy) {
                model_add(m, o, ROLE_ATTN, E, conv_dim + value_dim, 0, "blk.%" PRId64 ".ssm_in.weight", i);
            } else {
                model_add(m, o, ROLE_ATTN, E, conv_dim, 0, "blk.%" PRId64 ".attn_qkv.weight", i);
                model_add(m, o, ROLE_ATTN, E, value_dim, 0, "blk.%" PRId64 ".attn_gate.weight", i);
            }
            model_add(m, o, ROLE_CONV, o->ssm_conv, conv_dim, 0, "blk.%" PRId64 ".ssm_conv1d.weight", i);
            model_add(m, o, ROLE_BIAS, Hv, 0, 0, "blk.%" PRId64 ".ssm_dt.bias", i);
            model_add(m, o, ROLE_SSM_A, Hv, 0, 0, "blk.%" PRId64 ".ssm_a", i);
            if (o->ssm_split) {
                model_add(m, o, ROLE_ATTN, E, Hv, 0, "blk.%" PRId64 ".ssm_beta.weight", i);
                model_add(m, o, ROLE_ATTN, E, Hv, 0, "blk.%" PRId64 ".ssm_alpha.weight", i);
            } else {
                model_add(m, o, ROLE_ATTN, E, 2 * Hv, 0, "blk.%" PRId64 ".ssm_ba.weight", i);
            }
            model_add(m, o, ROLE_NORM, dk, 0, 0, "blk.%" PRId64 ".ssm_norm.weight", i);
            model_add(m, o, ROLE_ATTN, value_dim, E, 0, "blk.%" PRId64 ".ssm_out.weight", i);
        }
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".post_attention_norm.weight", i);
        model_add(m, o, ROLE_ROUTER, E, X, 0, "blk.%" PRId64 ".ffn_gate_inp.weight", i);
        model_add(m, o, ROLE_EXP, E, F, X, "blk.%" PRId64 ".ffn_gate_exps.weight", i);
        model_add(m, o, ROLE_EXP_DOWN, F, E, X, "blk.%" PRId64 ".ffn_down_exps.weight", i);
        model_add(m, o, ROLE_EXP, E, F, X, "blk.%" PRId64 ".ffn_up_exps.weight", i);
        model_add(m, o, ROLE_ROUTER, E, 0, 0, "blk.%" PRId64 ".ffn_gate_inp_shexp.weight", i);
        m->t[m->n - 1].scale = 1.0f / sqrtf((float)E);
        model_add(m, o, ROLE_FFN, E, S, 0, "blk.%" PRId64 ".ffn_gate_shexp.weight", i);
        model_add(m, o, ROLE_FFN_DOWN, S, E, 0, "blk.%" PRId64 ".ffn_down_shexp.weight", i);
        model_add(m, o, ROLE_FFN, E, S, 0, "blk.%" PRId64 ".ffn_up_shexp.weight", i);
    }
    model_add(m, o, ROLE_NORM, E, 0, 0, "output_norm.weight");
    if (!o->tied_output) model_add(m, o, ROLE_OUTPUT, E, o->n_vocab, 0, "output.weight");
}

/* deepseek2 (llama.cpp src/models/deepseek2.cpp load_arch_tensors): MLA
 * attention, leading dense layers, routed + shared experts. */
static void model_build_deepseek2(gen_model *m, const gen_opts *o)
{
    const int64_t E = o->n_embd, H = o->n_head, X = o->n_expert, F = o->n_ff_exp;
    const int64_t dk = o->nope_dim + o->rope_dim;
    model_add(m, o, ROLE_EMBD, E, o->n_vocab, 0, "token_embd.weight");
    for (int64_t i = 0; i < o->n_layer; i++) {
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".attn_norm.weight", i);
        if (o->q_lora > 0) {
            model_add(m, o, ROLE_ATTN, E, o->q_lora, 0, "blk.%" PRId64 ".attn_q_a.weight", i);
            model_add(m, o, ROLE_NORM, o->q_lora, 0, 0, "blk.%" PRId64 ".attn_q_a_norm.weight", i);
            model_add(m, o, ROLE_ATTN, o->q_lora, H * dk, 0, "blk.%" PRId64 ".attn_q_b.weight", i);
        } else {
            model_add(m, o, ROLE_ATTN, E, H * dk, 0, "blk.%" PRId64 ".attn_q.weight", i);
        }
        model_add(m, o, ROLE_ATTN, E, o->kv_lora + o->rope_dim, 0, "blk.%" PRId64 ".attn_kv_a_mqa.weight", i);
        model_add(m, o, ROLE_NORM, o->kv_lora, 0, 0, "blk.%" PRId64 ".attn_kv_a_norm.weight", i);
        if (o->mla_kv_b) {
            model_add(m, o, ROLE_ATTN_V, o->kv_lora, H * (o->nope_dim + o->v_dim), 0, "blk.%" PRId64 ".attn_kv_b.weight",
                      i);
        } else {
            model_add(m, o, ROLE_ATTN_KB, o->nope_dim, o->kv_lora, H, "blk.%" PRId64 ".attn_k_b.weight", i);
            model_add(m, o, ROLE_ATTN_KB, o->kv_lora, o->v_dim, H, "blk.%" PRId64 ".attn_v_b.weight", i);
        }
        model_add(m, o, ROLE_ATTN, H * o->v_dim, E, 0, "blk.%" PRId64 ".attn_output.weight", i);
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".ffn_norm.weight", i);
        if (i < o->n_dense_lead) {
            model_add(m, o, ROLE_FFN, E, o->n_ff, 0, "blk.%" PRId64 ".ffn_gate.weight", i);
            model_add(m, o, ROLE_FFN, E, o->n_ff, 0, "blk.%" PRId64 ".ffn_up.weight", i);
            model_add(m, o, ROLE_FFN_DOWN, o->n_ff, E, 0, "blk.%" PRId64 ".ffn_down.weight", i);
            continue;
        }
        model_add(m, o, ROLE_ROUTER, E, X, 0, "blk.%" PRId64 ".ffn_gate_inp.weight", i);
        if (o->probs_bias) model_add(m, o, ROLE_BIAS, X, 0, 0, "blk.%" PRId64 ".exp_probs_b.bias", i);
        if (o->fused_gate_up) {
            model_add(m, o, ROLE_EXP, E, 2 * F, X, "blk.%" PRId64 ".ffn_gate_up_exps.weight", i);
        } else {
            model_add(m, o, ROLE_EXP, E, F, X, "blk.%" PRId64 ".ffn_gate_exps.weight", i);
            model_add(m, o, ROLE_EXP, E, F, X, "blk.%" PRId64 ".ffn_up_exps.weight", i);
        }
        model_add(m, o, ROLE_EXP_DOWN, F, E, X, "blk.%" PRId64 ".ffn_down_exps.weight", i);
        const int64_t S = F * o->n_shared;
        model_add(m, o, ROLE_FFN, E, S, 0, "blk.%" PRId64 ".ffn_gate_shexp.weight", i);
        model_add(m, o, ROLE_FFN, E, S, 0, "blk.%" PRId64 ".ffn_up_shexp.weight", i);
        model_add(m, o, ROLE_FFN_DOWN, S, E, 0, "blk.%" PRId64 ".ffn_down_shexp.weight", i);
    }
    model_add(m, o, ROLE_NORM, E, 0, 0, "output_norm.weight");
    if (!o->tied_output) model_add(m, o, ROLE_OUTPUT, E, o->n_vocab, 0, "output.weight");
}

/* The tensor list llama.cpp's loader asks for, in the usual file order. */
static void model_build(gen_model *m, const gen_opts *o)
{
    const int64_t E = o->n_embd, hd = o->head_dim;
    const int64_t nq = o->n_head * hd, nkv = o->n_head_kv * hd;
    const int64_t X = o->n_expert;
    const int64_t ffe = o->arch == ARCH_QWEN3MOE ? o->n_ff_exp : o->n_ff; /* minimax-m2: n_ff, as llama.cpp */
    m->n = 0;
    if (o->arch == ARCH_DEEPSEEK2) {
        model_build_deepseek2(m, o);
        return;
    }
    if (o->arch == ARCH_GLM4MOE) {
        model_build_glm4moe(m, o);
        return;
    }
    if (o->arch == ARCH_QWEN2MOE) {
        model_build_qwen2moe(m, o);
        return;
    }
    if (o->arch == ARCH_GPTOSS) {
        model_build_gptoss(m, o);
        return;
    }
    if (o->arch == ARCH_QWEN3NEXT || o->arch == ARCH_QWEN35MOE) {
        model_build_qwen3next(m, o);
        return;
    }
    model_add(m, o, ROLE_EMBD, E, o->n_vocab, 0, "token_embd.weight");
    for (int64_t i = 0; i < o->n_layer; i++) {
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".attn_norm.weight", i);
        model_add(m, o, ROLE_ATTN, E, nq, 0, "blk.%" PRId64 ".attn_q.weight", i);
        model_add(m, o, ROLE_ATTN, E, nkv, 0, "blk.%" PRId64 ".attn_k.weight", i);
        model_add(m, o, ROLE_ATTN_V, E, nkv, 0, "blk.%" PRId64 ".attn_v.weight", i);
        model_add(m, o, ROLE_ATTN, nq, E, 0, "blk.%" PRId64 ".attn_output.weight", i);
        if (o->arch == ARCH_QWEN3MOE) {
            model_add(m, o, ROLE_NORM, hd, 0, 0, "blk.%" PRId64 ".attn_q_norm.weight", i);
            model_add(m, o, ROLE_NORM, hd, 0, 0, "blk.%" PRId64 ".attn_k_norm.weight", i);
        } else if (o->arch == ARCH_OLMOE || o->arch == ARCH_MINIMAX_M2) {
            model_add(m, o, ROLE_NORM, nq, 0, 0, "blk.%" PRId64 ".attn_q_norm.weight", i);
            model_add(m, o, ROLE_NORM, nkv, 0, 0, "blk.%" PRId64 ".attn_k_norm.weight", i);
        }
        model_add(m, o, ROLE_NORM, E, 0, 0, "blk.%" PRId64 ".ffn_norm.weight", i);
        if (!is_moe(o->arch)) {
            model_add(m, o, ROLE_FFN, E, o->n_ff, 0, "blk.%" PRId64 ".ffn_gate.weight", i);
            model_add(m, o, ROLE_FFN, E, o->n_ff, 0, "blk.%" PRId64 ".ffn_up.weight", i);
            model_add(m, o, ROLE_FFN_DOWN, o->n_ff, E, 0, "blk.%" PRId64 ".ffn_down.weight", i);
        } else {
            model_add(m, o, ROLE_ROUTER, E, X, 0, "blk.%" PRId64 ".ffn_gate_inp.weight", i);
            if (o->arch == ARCH_MINIMAX_M2) model_add(m, o, ROLE_BIAS, X, 0, 0, "blk.%" PRId64 ".exp_probs_b.bias", i);
            model_add(m, o, ROLE_EXP, E, ffe, X, "blk.%" PRId64 ".ffn_gate_exps.weight", i);
            model_add(m, o, ROLE_EXP, E, ffe, X, "blk.%" PRId64 ".ffn_up_exps.weight", i);
            model_add(m, o, ROLE_EXP_DOWN, ffe, E, X, "blk.%" PRId64 ".ffn_down_exps.weight", i);
        }
    }
    model_add(m, o, ROLE_NORM, E, 0, 0, "output_norm.weight");
    if (!o->tied_output) model_add(m, o, ROLE_OUTPUT, E, o->n_vocab, 0, "output.weight");
}

/* Fills nbytes and checks every row length against its type's block size.
 * Returns false with msg naming the tensor. */
static bool model_size(gen_model *m, char *msg, size_t cap)
{
    for (size_t i = 0; i < m->n; i++) {
        gen_tensor *t = &m->t[i];
        const mp_type_info *ti = mp_type_get(t->type);
        if (t->ne[0] % ti->blck_size != 0) {
            snprintf(msg, cap,
                     "tensor '%s' has rows of %" PRId64 " elements; %s needs a multiple of %u "
                     "(choose --n-embd/--n-ff/--n-ff-exp/--head-dim accordingly)",
                     t->name, t->ne[0], ti->name, ti->blck_size);
            return false;
        }
        t->nbytes = mp_row_size(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    }
    return true;
}

/* ---- random payloads ----------------------------------------------------
 * Each generator writes n whole units (one element for float types, one
 * block for quantised ones) of tensor t to dst. */

/* Per-block fp16 scale factors around 1 (mean square ~1.05): blocks differ. */
static const float block_jitter[4] = {0.7f, 0.9f, 1.1f, 1.3f};

static void gen_float(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    if (t->role == ROLE_NORM) {
        for (size_t i = 0; i < n; i++) {
            float v = 1.0f + 0.2f * ((float)(mp_rng_next(r) >> 40) * (1.0f / 16777216.0f) - 0.5f);
            memcpy(dst + 4 * i, &v, 4);
        }
        return;
    }
    if (t->role == ROLE_SSM_A) { /* -exp(A_log), A_log ~ N(0, 0.5): decays exp(g) in (0, 1) */
        for (size_t i = 0; i < n; i++) {
            float v = -expf(0.5f * mp_rng_normalish(r));
            memcpy(dst + 4 * i, &v, 4);
        }
        return;
    }
    const float s = t->scale;
    switch (t->type) {
    case MP_TYPE_F32: /* also ROLE_BIAS: std 0.1 around 0 */
        for (size_t i = 0; i < n; i++) {
            float v = s * mp_rng_normalish(r);
            memcpy(dst + 4 * i, &v, 4);
        }
        break;
    case MP_TYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = mp_fp32_to_fp16(s * mp_rng_normalish(r));
            memcpy(dst + 2 * i, &h, 2);
        }
        break;
    case MP_TYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = mp_fp32_to_bf16(s * mp_rng_normalish(r));
            memcpy(dst + 2 * i, &h, 2);
        }
        break;
    default: break;
    }
}

static inline void put_f16(uint8_t *p, float v)
{
    uint16_t h = mp_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/* Q8_0 {fp16 d; int8 q[32]}: uniform int8 has std 73.9. */
static void gen_q8_0(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    const float d0 = t->scale / 73.9f;
    for (size_t b = 0; b < n; b++, dst += 34) {
        mp_rng_bytes(r, dst, 34);
        put_f16(dst, d0 * block_jitter[dst[0] & 3]);
    }
}

/* Q4_0 {fp16 d; u8 qs[16]}: value (q - 8) * d, std of q - 8 is 4.64. */
static void gen_q4_0(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    const float d0 = t->scale / 4.64f;
    for (size_t b = 0; b < n; b++, dst += 18) {
        mp_rng_bytes(r, dst, 18);
        put_f16(dst, d0 * block_jitter[dst[0] & 3]);
    }
}

/* Q5_0 {fp16 d; u8 qh[4]; u8 qs[16]}: value d*(q-16), q uniform in 0..31
 * (std 9.23): std 9.23*d. */
static void gen_q5_0(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    const float d0 = t->scale / 9.23f;
    for (size_t b = 0; b < n; b++, dst += 22) {
        mp_rng_bytes(r, dst, 22);
        put_f16(dst, d0 * block_jitter[dst[0] & 3]);
    }
}

/* Q5_1 {fp16 d, m; u8 qh[4]; u8 qs[16]}: value d*q + m, q uniform in 0..31;
 * m = -15.5*d centres the block: std 9.23*d. */
static void gen_q5_1(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    const float d0 = t->scale / 9.23f;
    for (size_t b = 0; b < n; b++, dst += 24) {
        mp_rng_bytes(r, dst, 24);
        const float d = d0 * block_jitter[dst[0] & 3];
        put_f16(dst, d);
        put_f16(dst + 2, -15.5f * d);
    }
}

/* 6-bit scales/mins of Q4_K and Q5_K, packed as ggml's get_scale_min_k4
 * unpacks them: sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scale) and
 * 4-7 (min); sub-blocks 4-7 as low nibble (scale) / high nibble (min) of
 * bytes 8-11 with their top 2 bits in the top bits of bytes 0-3 / 4-7. */
static void pack_k4_scales(uint8_t q[12], const uint8_t sc[8], const uint8_t mn[8])
{
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        q[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
}

/* Q4_K {fp16 d, dmin; u8 scales[12]; u8 qs[128]}: value d*sc*q - dmin*m
 * with q in 0..15. dmin = d and m = round(7.5*sc) centre each sub-block;
 * sc in 4..7 (rms 5.6) and std(q) 4.61 give std 25.9*d. */
static void gen_q4_K(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    static const uint8_t mins[4] = {30, 38, 45, 53};
    const float d0 = t->scale / 25.9f;
    for (size_t b = 0; b < n; b++, dst += 144) {
        uint64_t v = mp_rng_next(r);
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; j++) {
            sc[j] = (uint8_t)(4 + ((v >> (2 * j)) & 3));
            mn[j] = mins[(v >> (2 * j)) & 3];
        }
        float d = d0 * block_jitter[(v >> 16) & 3];
        put_f16(dst, d);
        put_f16(dst + 2, d);
        pack_k4_scales(dst + 4, sc, mn);
        mp_rng_bytes(r, dst + 16, 128);
    }
}

/* Q5_K {fp16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: value
 * d*sc*q - dmin*m with q in 0..31 (std 9.23); sc in {2,3,4,3} (rms 3.08),
 * m = round(15.5*sc): std 28.5*d. */
static void gen_q5_K(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    static const uint8_t scs[4] = {2, 3, 4, 3}, mins[4] = {31, 47, 62, 47};
    const float d0 = t->scale / 28.5f;
    for (size_t b = 0; b < n; b++, dst += 176) {
        uint64_t v = mp_rng_next(r);
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; j++) {
            sc[j] = scs[(v >> (2 * j)) & 3];
            mn[j] = mins[(v >> (2 * j)) & 3];
        }
        float d = d0 * block_jitter[(v >> 16) & 3];
        put_f16(dst, d);
        put_f16(dst + 2, d);
        pack_k4_scales(dst + 4, sc, mn);
        mp_rng_bytes(r, dst + 16, 160);
    }
}

/* Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; fp16 d}: value d*sc*(q-32)
 * with q in 0..63 (std 18.5); sc in 8..15 (rms 12.4): std 230*d. */
static void gen_q6_K(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    const float d0 = t->scale / 230.0f;
    for (size_t b = 0; b < n; b++, dst += 210) {
        mp_rng_bytes(r, dst, 192);
        uint64_t v = mp_rng_next(r);
        for (int j = 0; j < 16; j++) dst[192 + j] = (uint8_t)(8 + ((v >> (3 * j)) & 7));
        put_f16(dst + 208, d0 * block_jitter[(v >> 48) & 3]);
    }
}

/* Q2_K {u8 scales[16]; u8 qs[64]; fp16 d, dmin}: value d*sc*q - dmin*m with
 * q in 0..3 (std 1.12); sc in 6..9 (rms 7.6), m = round(1.5*sc) centres each
 * sub-block (dmin = d): std 8.5*d. */
static void gen_q2_K(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    static const uint8_t mins[4] = {9, 11, 12, 14};
    const float d0 = t->scale / 8.5f;
    for (size_t b = 0; b < n; b++, dst += 84) {
        const uint64_t v = mp_rng_next(r);
        for (int j = 0; j < 16; j++) dst[j] = (uint8_t)((6 + ((v >> (2 * j)) & 3)) | (mins[(v >> (2 * j)) & 3] << 4));
        mp_rng_bytes(r, dst + 16, 64);
        const float d = d0 * block_jitter[(v >> 32) & 3];
        put_f16(dst + 80, d);
        put_f16(dst + 82, d);
    }
}

/* Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; fp16 d}: value d*(s-32)*q
 * with q in -4..3 (std 2.29); stored scales s = 40..47 (scale 8..15, rms
 * 11.7): low nibbles 8..15, top bits 2 in every 2-bit field: std 26.8*d. */
static void gen_q3_K(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    const float d0 = t->scale / 26.8f;
    for (size_t b = 0; b < n; b++, dst += 110) {
        mp_rng_bytes(r, dst, 96);
        const uint64_t v = mp_rng_next(r);
        for (int j = 0; j < 8; j++)
            dst[96 + j] = (uint8_t)((8 + ((v >> (3 * j)) & 7)) | ((8 + ((v >> (3 * j + 24)) & 7)) << 4));
        memset(dst + 104, 0xAA, 4);
        put_f16(dst + 108, d0 * block_jitter[(v >> 48) & 3]);
    }
}

/* IQ4_NL {fp16 d; u8 qs[16]}: value d*kvalues_iq4nl[idx], levels -127..113
 * (std 67.2 over uniform indices): std 67.2*d. */
static void gen_iq4_nl(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    const float d0 = t->scale / 67.2f;
    for (size_t b = 0; b < n; b++, dst += 18) {
        mp_rng_bytes(r, dst, 18);
        put_f16(dst, d0 * block_jitter[dst[2] & 3]);
    }
}

/* IQ4_XS {fp16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]}: value
 * d*(s-32)*kvalues[idx]; stored s = 40..47 (low nibbles 8..15, top bits 2):
 * std 67.2*11.7*d = 786*d. */
static void gen_iq4_xs(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    const float d0 = t->scale / 786.f;
    for (size_t b = 0; b < n; b++, dst += 136) {
        const uint64_t v = mp_rng_next(r);
        put_f16(dst, d0 * block_jitter[(v >> 32) & 3]);
        dst[2] = dst[3] = 0xAA;
        for (int j = 0; j < 4; j++) dst[4 + j] = (uint8_t)((8 + ((v >> (3 * j)) & 7)) | ((8 + ((v >> (3 * j + 12)) & 7)) << 4));
        mp_rng_bytes(r, dst + 8, 128);
    }
}

/* MXFP4 {u8 e; u8 qs[16]}: value kvalues_mxfp4[code] * 2^(e-128); uniform
 * codes have rms 5.85 on the doubled table, so e = 128 + log2(std / 5.85),
 * jittered by one octave either way per block. */
static void gen_mxfp4(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    int e0 = 128 + (int)lrintf(log2f(t->scale / 5.85f));
    if (e0 < 3) e0 = 3;
    if (e0 > 250) e0 = 250;
    for (size_t b = 0; b < n; b++, dst += 17) {
        mp_rng_bytes(r, dst, 17);
        static const int jit[4] = {-1, 0, 0, 1};
        dst[0] = (uint8_t)(e0 + jit[dst[0] & 3]);
    }
}

static void gen_units(const gen_tensor *t, mp_rng *r, uint8_t *dst, size_t n)
{
    switch (t->type) {
    case MP_TYPE_F32:
    case MP_TYPE_F16:
    case MP_TYPE_BF16: gen_float(t, r, dst, n); break;
    case MP_TYPE_Q8_0: gen_q8_0(t, r, dst, n); break;
    case MP_TYPE_Q4_0: gen_q4_0(t, r, dst, n); break;
    case MP_TYPE_Q4_K: gen_q4_K(t, r, dst, n); break;
    case MP_TYPE_Q5_K: gen_q5_K(t, r, dst, n); break;
    case MP_TYPE_Q6_K: gen_q6_K(t, r, dst, n); break;
    case MP_TYPE_Q2_K: gen_q2_K(t, r, dst, n); break;
    case MP_TYPE_Q3_K: gen_q3_K(t, r, dst, n); break;
    case MP_TYPE_IQ4_NL: gen_iq4_nl(t, r, dst, n); break;
    case MP_TYPE_IQ4_XS: gen_iq4_xs(t, r, dst, n); break;
    case MP_TYPE_MXFP4: gen_mxfp4(t, r, dst, n); break;
    case MP_TYPE_Q5_0: gen_q5_0(t, r, dst, n); break;
    case MP_TYPE_Q5_1: gen_q5_1(t, r, dst, n); break;
    default: memset(dst, 0, n * mp_type_get(t->type)->type_size); break;
    }
}

/* ---- streaming fill callback ------------------------------------------- */

typedef struct gen_fill {
    const gen_model *m;
    uint64_t seed;
    int64_t idx;        /* tensor in progress, -1 before the first */
    uint64_t done;      /* its bytes handed out so far */
    mp_rng rng;
    uint8_t carry[256]; /* one generated unit not yet fully handed out */
    size_t carry_off, carry_len;
    /* progress */
    bool progress, tty;
    uint64_t total, written;
    double t0, last_print;
    int last_pct;
} gen_fill;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress_print(gen_fill *f, bool final)
{
    int pct = f->total ? (int)(100.0 * (double)f->written / (double)f->total) : 100;
    double t = now_s();
    if (!final) {
        /* A line every 10% when logging to a file, ~4 updates/s on a tty. */
        if (f->tty ? (t - f->last_print < 0.25) : (pct / 10 == f->last_pct / 10)) return;
    }
    f->last_pct = pct;
    f->last_print = t;
    double el = t - f->t0;
    fprintf(stderr, "%smp-gen: %3d%% %8.1f / %.1f MB  %.0f MB/s%s", f->tty ? "\r" : "", pct,
            (double)f->written / 1e6, (double)f->total / 1e6,
            el > 0 ? (double)f->written / 1e6 / el : 0.0, f->tty && !final ? "" : "\n");
    fflush(stderr);
}

static int gen_fill_cb(void *ctx, uint64_t idx, void *buf, size_t size, mp_err *err)
{
    gen_fill *f = ctx;
    if (idx >= f->m->n) return mp_err_set(err, MP_E_INVAL, "mp-gen: fill asked for tensor %" PRIu64, idx);
    const gen_tensor *t = &f->m->t[idx];
    if ((int64_t)idx != f->idx || f->done >= t->nbytes) {
        /* A new tensor, or the same one again from its start. */
        f->idx = (int64_t)idx;
        f->done = 0;
        f->carry_off = f->carry_len = 0;
        mp_rng_seed(&f->rng, f->seed, idx);
    }
    if (size > t->nbytes - f->done)
        return mp_err_set(err, MP_E_INVAL,
                          "mp-gen: fill for tensor '%s' asked for %zu bytes at offset %" PRIu64
                          " of %" PRIu64,
                          t->name, size, f->done, t->nbytes);
    const size_t unit = mp_type_get(t->type)->type_size;
    uint8_t *out = buf;
    size_t left = size;
    if (f->carry_off < f->carry_len) {
        size_t k = f->carry_len - f->carry_off;
        if (k > left) k = left;
        memcpy(out, f->carry + f->carry_off, k);
        f->carry_off += k;
        out += k;
        left -= k;
    }
    size_t whole = left / unit;
    if (whole) {
        gen_units(t, &f->rng, out, whole);
        out += whole * unit;
        left -= whole * unit;
    }
    if (left) {
        gen_units(t, &f->rng, f->carry, 1);
        memcpy(out, f->carry, left);
        f->carry_off = left;
        f->carry_len = unit;
    }
    f->done += size;
    f->written += size;
    if (f->progress) progress_print(f, false);
    return MP_OK;
}

/* ---- vocabulary -------------------------------------------------------- */

/* Tiny open-addressing string set for keeping generated pieces unique. */
typedef struct str_set {
    char **slot;
    size_t cap;
} str_set;

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Adds s (not copied: must outlive the set); false if already present. */
static bool str_set_add(str_set *set, char *s)
{
    size_t i = str_hash(s) & (set->cap - 1);
    while (set->slot[i]) {
        if (strcmp(set->slot[i], s) == 0) return false;
        i = (i + 1) & (set->cap - 1);
    }
    set->slot[i] = s;
    return true;
}

#define SPM_SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's word boundary */

/* A llama-style SPM vocabulary: 0 <unk>, 1 <s>, 2 </s>, 3..258 byte tokens
 * <0x00>..<0xFF>, then NORMAL pieces with scores -1, -2, ... (SPM merges by
 * score, so earlier pieces win): the word boundary, single characters,
 * boundary+letter, bigrams, common words, and generated filler words. */
static void vocab_build(int64_t n_vocab, char ***toks_out, float **scores_out, int32_t **types_out)
{
    enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };
    char **toks = calloc((size_t)n_vocab, sizeof(*toks));
    float *scores = calloc((size_t)n_vocab, sizeof(*scores));
    int32_t *types = calloc((size_t)n_vocab, sizeof(*types));
    str_set set = {0};
    set.cap = 1;
    while (set.cap < 2 * (size_t)n_vocab + 16) set.cap <<= 1;
    set.slot = calloc(set.cap, sizeof(*set.slot));
    if (!toks || !scores || !types || !set.slot) die("out of memory");

    int64_t n = 0;
    char tmp[64];
#define ADD_TOK(str, type_)                                                    \
    do {                                                                       \
        char *s_ = strdup(str);                                                \
        if (!s_) die("out of memory");                                         \
        if (!str_set_add(&set, s_)) { free(s_); break; }                       \
        toks[n] = s_;                                                          \
        types[n] = (type_);                                                    \
        scores[n] = (type_) == TT_NORMAL ? -(float)(n - 258) : 0.0f;           \
        n++;                                                                   \
    } while (0)

    ADD_TOK("<unk>", TT_UNKNOWN);
    ADD_TOK("<s>", TT_CONTROL);
    ADD_TOK("</s>", TT_CONTROL);
    for (int b = 0; b < 256; b++) {
        snprintf(tmp, sizeof(tmp), "<0x%02X>", b);
        ADD_TOK(tmp, TT_BYTE);
    }
    static const char letters[] = "etaoinsrhldcumfpgwybvkxjqz";
    static const char *const bigrams[] = {"th", "he", "in", "er", "an", "re", "nd", "on", "en",
                                          "at", "ou", "ed", "ha", "to", "or", "it", "is", "hi",
                                          "es", "ng", "st", "ar", "te", "se", "le", "al"};
    static const char *const words[] = {
        "the",  "of",    "and",   "to",    "in",    "a",     "is",    "that",  "for",
        "it",   "as",    "was",   "with",  "be",    "by",    "on",    "not",   "he",
        "this", "are",   "or",    "his",   "from",  "at",    "which", "but",   "have",
        "an",   "had",   "they",  "you",   "were",  "their", "one",   "all",   "we",
        "can",  "her",   "has",   "there", "been",  "if",    "more",  "when",  "will",
        "would", "who",  "so",    "no",    "she",   "other", "its",   "may",   "these",
        "what", "them",  "than",  "some",  "him",   "time",  "into",  "only",  "do",
        "hello", "world", "model", "expert", "token", "memory", "disk", "cache", "page"};
    const int64_t limit = n_vocab;
    if (n < limit) ADD_TOK(SPM_SPACE, TT_NORMAL);
    for (const char *c = letters; *c && n < limit; c++) {
        tmp[0] = *c;
        tmp[1] = 0;
        ADD_TOK(tmp, TT_NORMAL);
    }
    for (const char *c = letters; *c && n < limit; c++) {
        snprintf(tmp, sizeof(tmp), SPM_SPACE "%c", *c);
        ADD_TOK(tmp, TT_NORMAL);
    }
    for (const char *c = "0123456789.,!?'\"-:;()"; *c && n < limit; c++) {
        tmp[0] = *c;
        tmp[1] = 0;
        ADD_TOK(tmp, TT_NORMAL);
    }
    for (size_t i = 0; i < sizeof(bigrams) / sizeof(*bigrams) && n < limit; i++)
        ADD_TOK(bigrams[i], TT_NORMAL);
    for (size_t i = 0; i < sizeof(words) / sizeof(*words) && n < limit; i++) {
        snprintf(tmp, sizeof(tmp), SPM_SPACE "%s", words[i]);
        ADD_TOK(tmp, TT_NORMAL);
    }
    /* Filler: boundary + every 2-letter, then 3-letter, ... word. */
    for (uint64_t len = 2, k = 0; n < limit;) {
        uint64_t span = 1;
        for (uint64_t j = 0; j < len; j++) span *= 26;
        if (k == span) {
            len++;
            k = 0;
            continue;
        }
        char *p = tmp + snprintf(tmp, sizeof(tmp), SPM_SPACE);
        uint64_t x = k++;
        for (uint64_t j = 0; j < len; j++, x /= 26) *p++ = letters[x % 26];
        *p = 0;
        ADD_TOK(tmp, TT_NORMAL);
    }
#undef ADD_TOK
    free(set.slot);
    *toks_out = toks;
    *scores_out = scores;
    *types_out = types;
}

/* ---- option parsing -------------------------------------------------- */

static void usage(FILE *f)
{
    fputs(
        "usage: mp-gen [options] -o FILE      write a random-weight GGUF model\n"
        "       mp-gen --check FILE [-q]      verify a model written by mp-gen\n"
        "       mp-gen --self-test            check the generator's chunked output\n"
        "\n"
        "  --arch A            llama | llama-moe | qwen3moe | olmoe | deepseek2 | glm4moe | qwen2moe |\n"
        "                      gpt-oss | minimax-m2 | qwen3next | qwen35moe\n"
        "                      (default llama)\n"
        "  --type T            matrix type: f32 f16 bf16 q8_0 q4_0 q2_K q3_K q4_K q5_K\n"
        "                      q6_K q5_0 q5_1 iq4_nl iq4_xs mxfp4,\n"
        "                      or q4_K_m / q5_K_m (attn_v, ffn_down(_exps) and output\n"
        "                      in q6_K, the rest q4_K / q5_K)  (default f32)\n"
        "  --expert-type T     type of ffn_{gate,up,down}_exps (overrides --type)\n"
        "  --attn-type T       type of attn_{q,k,v,output}\n"
        "  --embd-type T       type of token_embd and output\n"
        "  --n-embd N          (64)     --n-head N (4)     --n-head-kv N (2)\n"
        "  --head-dim N        qwen3moe only (default n_embd/n_head)\n"
        "  --n-ff N            dense / expert FFN width (128)\n"
        "  --n-ff-exp N        qwen3moe expert FFN width (default n_ff)\n"
        "  --n-layer N (2)     --n-expert N (4)     --n-expert-used N (2)\n"
        "  --n-vocab N         built-in SPM vocabulary size (384, >= 260)\n"
        "  --vocab FILE.gguf   copy every tokenizer.* key from FILE; n_vocab from it\n"
        "  --n-ctx N           context_length (2048)\n"
        "  --rope-base F (10000)   --eps F (1e-5)\n"
        "  --tied-output       no output.weight (llama.cpp reuses token_embd)\n"
        "  --fit-types         a tensor whose rows are not a multiple of its type's block\n"
        "                      (e.g. DeepSeek-V2-Lite's 1408-wide expert down) falls back to\n"
        "                      q8_0 (f16 if not a multiple of 32), as llama-quantize falls\n"
        "                      back; without it such a row is an error\n"
        "deepseek2 (MLA attention, shared experts):\n"
        "  --q-lora N (0: attn_q)  --kv-lora N (128)  --rope-dim N (16)  --nope-dim N (32)\n"
        "  --v-dim N (32)      --mla-kv-b: the older attn_kv_b layout (else attn_k_b/attn_v_b)\n"
        "  --n-dense-lead N (0)  --n-shared N (1)  --n-group N --n-group-used N\n"
        "  --gating softmax|sigmoid|none|N  --probs-bias (exp_probs_b)  --weights-norm\n"
        "  --weights-scale F   --fused-gate-up (ffn_gate_up_exps)\n"
        "  --yarn FACTOR [--yarn-orig N] [--yarn-log-mul F (stored as given: 0.1*mscale_all_dim)]\n"
        "glm4moe (also --n-dense-lead --n-shared --gating --weights-norm --weights-scale --head-dim):\n"
        "  --attn-bias (q/k/v biases)  --qk-norm (per-head q/k norms)  --n-rot N (head_dim/2)\n"
        "  --n-nextn N (MTP blocks appended, counted in block_count; llama.cpp skips them)\n"
        "qwen2moe (q/k/v biases always; --n-ff-exp, default n_ff):\n"
        "  --n-ff-shexp N      the sigmoid-gated shared expert's width (without it: no key, n_ff)\n"
        "  --fused-qkv         one attn_qkv (and attn_qkv.bias) instead of attn_q/k/v\n"
        "  --fused-qkv-split-bias  one attn_qkv with the separate attn_q/k/v biases\n"
        "gpt-oss (biases, sinks, router bias; also --head-dim --n-ff-exp --yarn --yarn-orig):\n"
        "  --swa N (16)  --swa-pattern N (key absent: llama.cpp's 2, even layers slide)\n"
        "  --rope-base-swa F (key absent: rope.freq_base)\n"
        "minimax-m2 (also --head-dim, --n-rot (head_dim/2), --gating (sigmoid; none: key absent)):\n"
        "  expert width n_ff (feed_forward_length, as llama.cpp sizes them); exp_probs_b always\n"
        "qwen3next / qwen35moe (--head-dim, --n-rot (head_dim/4), --n-ff-exp, --n-ff-shexp):\n"
        "  --ssm-state N (32)  DeltaNet head size  --ssm-k-heads N (2)  --ssm-v-heads N (2 x k)\n"
        "  --ssm-conv N (4)    conv kernel         --full-attn N (4): every Nth layer full attention\n"
        "  --ssm-legacy        qwen3next: one ssm_in (older converters) for attn_qkv + attn_gate\n"
        "  --name S            general.name\n"
        "  --seed N            (1234); output is identical for identical options\n"
        "  -o FILE             output path\n"
        "  -q                  quiet (no progress, no summary)\n"
        "  -h, --help\n"
        "\n"
        "Quantised types need row lengths that are multiples of their block size\n"
        "(32 for q8_0/q4_0/q5_0/q5_1/iq4_nl, 256 for the K types and iq4_xs). Norms and the router\n"
        "(ffn_gate_inp) are always f32. olmoe forces n_head_kv = n_head.\n",
        f);
}

static int parse_type(const char *s)
{
    static const struct {
        const char *name;
        uint32_t type;
    } tab[] = {{"f32", MP_TYPE_F32},   {"f16", MP_TYPE_F16},   {"bf16", MP_TYPE_BF16},
               {"q8_0", MP_TYPE_Q8_0}, {"q4_0", MP_TYPE_Q4_0}, {"q4_K", MP_TYPE_Q4_K},
               {"q5_K", MP_TYPE_Q5_K}, {"q6_K", MP_TYPE_Q6_K}, {"q2_K", MP_TYPE_Q2_K},
               {"q3_K", MP_TYPE_Q3_K}, {"iq4_nl", MP_TYPE_IQ4_NL}, {"iq4_xs", MP_TYPE_IQ4_XS},
               {"mxfp4", MP_TYPE_MXFP4}, {"q5_0", MP_TYPE_Q5_0},  {"q5_1", MP_TYPE_Q5_1}};
    for (size_t i = 0; i < sizeof(tab) / sizeof(*tab); i++)
        if (strcasecmp(s, tab[i].name) == 0) return (int)tab[i].type;
    return -1;
}

static uint32_t llama_ftype(uint32_t type)
{
    switch (type) {
    case MP_TYPE_F32: return 0;
    case MP_TYPE_F16: return 1;
    case MP_TYPE_Q4_0: return 2;
    case MP_TYPE_Q8_0: return 7;
    case MP_TYPE_Q5_0: return 8;
    case MP_TYPE_Q5_1: return 9;
    case MP_TYPE_Q4_K: return 14; /* Q4_K_S */
    case MP_TYPE_Q5_K: return 16; /* Q5_K_S */
    case MP_TYPE_Q6_K: return 18;
    case MP_TYPE_Q2_K: return 10;
    case MP_TYPE_Q3_K: return 11; /* Q3_K_S */
    case MP_TYPE_IQ4_NL: return 25;
    case MP_TYPE_IQ4_XS: return 30;
    case MP_TYPE_BF16: return 32;
    case MP_TYPE_MXFP4: return 38; /* LLAMA_FTYPE_MOSTLY_MXFP4_MOE */
    default: return 0;
    }
}

static int64_t parse_int(const char *opt, const char *v, int64_t lo)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 0);
    if (errno || end == v || *end || x < lo) die("%s: bad value '%s' (need an integer >= %" PRId64 ")", opt, v, lo);
    return x;
}

static float parse_float(const char *opt, const char *v)
{
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (errno || end == v || *end || !isfinite(x)) die("%s: bad value '%s'", opt, v);
    return x;
}

static void parse_args(int argc, char **argv, gen_opts *o, const char **check)
{
    memset(o, 0, sizeof(*o));
    o->arch = ARCH_LLAMA;
    o->type_name = "f32";
    o->type = o->type_hi = MP_TYPE_F32;
    o->attn_type = o->expert_type = o->embd_type = -1;
    o->n_embd = 64;
    o->n_head = 4;
    o->n_head_kv = 2;
    o->n_ff = 128;
    o->n_layer = 2;
    o->n_expert = 4;
    o->n_expert_used = 2;
    o->n_vocab = 384;
    o->n_ctx = 2048;
    o->rope_base = 10000.0f;
    o->eps = 1e-5f;
    o->seed = 1234;
    *check = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (die("%s needs a value", a), (char *)NULL))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = true;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            o->out = NEXT();
        } else if (!strcmp(a, "--check")) {
            *check = NEXT();
        } else if (!strcmp(a, "--arch")) {
            const char *v = NEXT();
            int k = -1;
            for (int j = 0; j < ARCH_COUNT; j++)
                if (!strcmp(v, arch_cli_names[j])) k = j;
            if (k < 0)
                die("--arch: unknown architecture '%s' (llama, llama-moe, qwen3moe, olmoe, deepseek2, glm4moe, qwen2moe, "
                    "gpt-oss, minimax-m2, qwen3next, qwen35moe)",
                    v);
            o->arch = (gen_arch)k;
        } else if (!strcmp(a, "--type")) {
            const char *v = NEXT();
            o->type_name = v;
            if (!strcasecmp(v, "q4_K_m")) {
                o->type = MP_TYPE_Q4_K;
                o->type_hi = MP_TYPE_Q6_K;
                o->ftype = 15;
            } else if (!strcasecmp(v, "q5_K_m")) {
                o->type = MP_TYPE_Q5_K;
                o->type_hi = MP_TYPE_Q6_K;
                o->ftype = 17;
            } else {
                int t = parse_type(v);
                if (t < 0) die("--type: unknown type '%s' (see --help)", v);
                o->type = o->type_hi = (uint32_t)t;
                o->ftype = llama_ftype((uint32_t)t);
            }
        } else if (!strcmp(a, "--expert-type") || !strcmp(a, "--attn-type") || !strcmp(a, "--embd-type")) {
            const char *v = NEXT();
            int t = parse_type(v);
            if (t < 0) die("%s: unknown type '%s' (see --help)", a, v);
            if (a[3] == 'x') /* --expert-type (a[2] is 'e' for --embd-type too) */ o->expert_type = t;
            else if (a[2] == 'a') o->attn_type = t;
            else o->embd_type = t;
        } else if (!strcmp(a, "--n-embd")) {
            o->n_embd = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--n-head")) {
            o->n_head = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--n-head-kv")) {
            o->n_head_kv = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--head-dim")) {
            o->head_dim = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--n-ff")) {
            o->n_ff = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--n-ff-exp")) {
            o->n_ff_exp = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--fused-qkv")) {
            o->fused_qkv = 1;
        } else if (!strcmp(a, "--fused-qkv-split-bias")) {
            o->fused_qkv = 2;
        } else if (!strcmp(a, "--n-ff-shexp")) {
            o->n_ff_shexp = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--n-layer")) {
            o->n_layer = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--n-expert")) {
            o->n_expert = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--n-expert-used")) {
            o->n_expert_used = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--n-vocab")) {
            o->n_vocab = parse_int(a, NEXT(), 260);
            o->n_vocab_set = true;
        } else if (!strcmp(a, "--n-ctx") || !strcmp(a, "--n-ctx-train")) {
            o->n_ctx = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--rope-base")) {
            o->rope_base = parse_float(a, NEXT());
        } else if (!strcmp(a, "--eps")) {
            o->eps = parse_float(a, NEXT());
        } else if (!strcmp(a, "--tied-output")) {
            o->tied_output = true;
        } else if (!strcmp(a, "--fit-types")) {
            o->fit_types = true;
        } else if (!strcmp(a, "--seed")) {
            o->seed = (uint64_t)parse_int(a, NEXT(), 0);
        } else if (!strcmp(a, "--vocab")) {
            o->vocab = NEXT();
        } else if (!strcmp(a, "--name")) {
            o->name = NEXT();
        } else if (!strcmp(a, "--q-lora")) {
            o->q_lora = parse_int(a, NEXT(), 0);
        } else if (!strcmp(a, "--kv-lora")) {
            o->kv_lora = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--rope-dim")) {
            o->rope_dim = parse_int(a, NEXT(), 2);
        } else if (!strcmp(a, "--nope-dim")) {
            o->nope_dim = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--v-dim")) {
            o->v_dim = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--mla-kv-b")) {
            o->mla_kv_b = true;
        } else if (!strcmp(a, "--n-dense-lead")) {
            o->n_dense_lead = parse_int(a, NEXT(), 0);
        } else if (!strcmp(a, "--n-shared")) {
            o->n_shared = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--n-group")) {
            o->n_group = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--n-group-used")) {
            o->n_group_used = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--gating")) {
            const char *v = NEXT();
            if (!strcmp(v, "softmax")) o->gating = 1;
            else if (!strcmp(v, "sigmoid")) o->gating = 2;
            else if (!strcmp(v, "none")) o->gating = -1; /* key absent */
            else o->gating = (int)parse_int(a, v, 0); /* a raw value, for bad-input tests */
        } else if (!strcmp(a, "--probs-bias")) {
            o->probs_bias = true;
        } else if (!strcmp(a, "--weights-norm")) {
            o->weights_norm = true;
        } else if (!strcmp(a, "--weights-scale")) {
            o->weights_scale = parse_float(a, NEXT());
        } else if (!strcmp(a, "--fused-gate-up")) {
            o->fused_gate_up = true;
        } else if (!strcmp(a, "--yarn")) {
            o->yarn_factor = parse_float(a, NEXT());
        } else if (!strcmp(a, "--yarn-orig")) {
            o->yarn_orig = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--attn-bias")) {
            o->attn_bias = true;
        } else if (!strcmp(a, "--qk-norm")) {
            o->qk_norm = true;
        } else if (!strcmp(a, "--n-rot")) {
            o->n_rot = parse_int(a, NEXT(), 2);
        } else if (!strcmp(a, "--n-nextn")) {
            o->n_nextn = parse_int(a, NEXT(), 0);
        } else if (!strcmp(a, "--swa")) {
            o->n_swa = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--swa-pattern")) {
            o->swa_pattern = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--rope-base-swa")) {
            o->rope_base_swa = parse_float(a, NEXT());
        } else if (!strcmp(a, "--ssm-state")) {
            o->ssm_state = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--ssm-k-heads")) {
            o->ssm_k_heads = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--ssm-v-heads")) {
            o->ssm_v_heads = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--ssm-conv")) {
            o->ssm_conv = parse_int(a, NEXT(), 2);
        } else if (!strcmp(a, "--ssm-legacy")) {
            o->ssm_legacy = true;
        } else if (!strcmp(a, "--full-attn")) {
            o->full_attn = parse_int(a, NEXT(), 1);
        } else if (!strcmp(a, "--yarn-log-mul")) {
            o->yarn_log_mul = parse_float(a, NEXT());
        } else {
            usage(stderr);
            die("unknown option '%s'", a);
        }
#undef NEXT
    }
}

/* Cross-option checks and derived values; dies with a message. */
static void opts_finish(gen_opts *o)
{
    if (o->arch == ARCH_QWEN3NEXT || o->arch == ARCH_QWEN35MOE) {
        if (!o->head_dim) {
            if (o->n_embd % o->n_head) die("n_embd must be a multiple of n_head (or give --head-dim)");
            o->head_dim = o->n_embd / o->n_head;
        }
        if (!o->n_rot) o->n_rot = o->head_dim / 4; /* partial_rotary_factor 0.25 */
        if (o->n_rot % 2 || o->n_rot > o->head_dim) die("--n-rot must be even and <= head_dim");
        if (o->n_head % o->n_head_kv) die("n_head must be a multiple of n_head_kv");
        if (!o->n_ff_exp) o->n_ff_exp = o->n_ff;
        o->shexp_key = o->n_ff_shexp != 0;
        if (!o->n_ff_shexp) o->n_ff_shexp = o->n_ff; /* llama.cpp's default without the key */
        if (!o->ssm_state) o->ssm_state = 32;
        if (!o->ssm_k_heads) o->ssm_k_heads = 2;
        if (!o->ssm_v_heads) o->ssm_v_heads = 2 * o->ssm_k_heads;
        if (!o->ssm_conv) o->ssm_conv = 4;
        if (!o->full_attn) o->full_attn = 4;
        if (o->ssm_v_heads % o->ssm_k_heads) die("--ssm-v-heads must be a multiple of --ssm-k-heads");
        if (o->n_expert_used > o->n_expert) die("n_expert_used > n_expert");
        o->ssm_split = o->arch == ARCH_QWEN35MOE;
        if (o->ssm_legacy && o->arch != ARCH_QWEN3NEXT) die("--ssm-legacy is qwen3next's");
        if (!o->ftype && o->type != MP_TYPE_F32) o->ftype = llama_ftype(o->type);
        return;
    }
    if (o->arch == ARCH_GPTOSS) {
        if (!o->head_dim) {
            if (o->n_embd % o->n_head) die("n_embd must be a multiple of n_head (or give --head-dim)");
            o->head_dim = o->n_embd / o->n_head;
        }
        if (o->head_dim % 2) die("head_dim must be even for RoPE");
        if (o->n_head % o->n_head_kv) die("n_head must be a multiple of n_head_kv");
        if (!o->n_ff_exp) o->n_ff_exp = o->n_ff;
        if (!o->n_swa) o->n_swa = 16;
        if (o->n_expert_used > o->n_expert) die("n_expert_used > n_expert");
        if (!o->yarn_orig) o->yarn_orig = o->n_ctx;
        if (!o->ftype && o->type != MP_TYPE_F32) o->ftype = llama_ftype(o->type);
        if (!o->ftype && o->expert_type == MP_TYPE_MXFP4) o->ftype = 38;
        return;
    }
    if (o->arch == ARCH_GLM4MOE) {
        if (!o->head_dim) {
            if (o->n_embd % o->n_head) die("n_embd must be a multiple of n_head (or give --head-dim)");
            o->head_dim = o->n_embd / o->n_head;
        }
        if (!o->n_rot) o->n_rot = o->head_dim / 2; /* partial_rotary_factor 0.5 */
        if (o->n_rot % 2 || o->n_rot > o->head_dim) die("--n-rot must be even and <= head_dim");
        if (o->n_head % o->n_head_kv) die("n_head must be a multiple of n_head_kv");
        if (!o->n_shared) o->n_shared = 1;
        if (!o->n_ff_exp) o->n_ff_exp = o->n_ff;
        if (o->n_dense_lead > o->n_layer) die("--n-dense-lead > --n-layer");
        if (o->n_expert_used > o->n_expert) die("n_expert_used > n_expert");
        if (!o->ftype && o->type != MP_TYPE_F32) o->ftype = llama_ftype(o->type);
        return;
    }
    if (o->arch == ARCH_DEEPSEEK2) {
        /* defaults: a V2-Lite-like shape scaled down */
        if (!o->kv_lora) o->kv_lora = 128;
        if (!o->rope_dim) o->rope_dim = 16;
        if (!o->nope_dim) o->nope_dim = 32;
        if (!o->v_dim) o->v_dim = 32;
        if (!o->n_shared) o->n_shared = 1;
        if (!o->n_ff_exp) o->n_ff_exp = o->n_ff;
        if (o->rope_dim % 2) die("--rope-dim must be even");
        if (o->n_dense_lead > o->n_layer) die("--n-dense-lead > --n-layer");
        if (o->n_expert_used > o->n_expert) die("n_expert_used > n_expert");
        if (o->n_group > 1 && (o->n_expert % o->n_group || o->n_group_used >= o->n_group || o->n_group_used == 0))
            die("--n-group must divide n_expert and --n-group-used be in [1, n_group)");
        if (o->q_lora > 0 && (o->n_layer == 26 || o->n_layer == 27))
            die("--q-lora with %" PRId64 " layers: llama.cpp takes a 26- or 27-layer deepseek2 for a \"lite\" "
                "model and ignores q_lora_rank (it would look for attn_q); use another depth or no q LoRA",
                o->n_layer);
        if (!o->yarn_orig) o->yarn_orig = o->n_ctx;
        if (!o->ftype && o->type != MP_TYPE_F32) o->ftype = llama_ftype(o->type);
        o->n_head_kv = o->mla_kv_b ? o->n_head : 1;
        o->head_dim = o->nope_dim + o->rope_dim;
        return;
    }
    if (o->arch == ARCH_QWEN2MOE) {
        o->attn_bias = true; /* as Qwen1.5-MoE / Qwen2-57B-A14B */
        o->shexp_key = o->n_ff_shexp != 0;
        if (!o->n_ff_shexp) o->n_ff_shexp = o->n_ff; /* llama.cpp's default without the key */
    }
    if (o->arch == ARCH_MINIMAX_M2) {
        if (!o->gating) o->gating = 2; /* MiniMax-M2's scoring_func: sigmoid */
        o->n_ff_exp = o->n_ff;        /* the experts are n_ff wide in llama.cpp */
    }
    if (o->arch == ARCH_OLMOE && o->n_head_kv != o->n_head) {
        /* llama.cpp sizes olmoe's attn_k_norm {n_embd}: no GQA possible. */
        if (!o->quiet) fprintf(stderr, "mp-gen: olmoe has no GQA: n_head_kv set to %" PRId64 "\n", o->n_head);
        o->n_head_kv = o->n_head;
    }
    if (o->head_dim && o->arch != ARCH_QWEN3MOE && o->arch != ARCH_MINIMAX_M2 && o->head_dim * o->n_head != o->n_embd)
        die("--head-dim: %s needs n_embd == n_head * head_dim", arch_cli_names[o->arch]);
    if (!o->head_dim) {
        if (o->n_embd % o->n_head) die("n_embd (%" PRId64 ") must be a multiple of n_head (%" PRId64 ")", o->n_embd, o->n_head);
        o->head_dim = o->n_embd / o->n_head;
    }
    if (o->head_dim % 2) die("head_dim (%" PRId64 ") must be even for RoPE", o->head_dim);
    if (o->arch == ARCH_MINIMAX_M2) {
        if (!o->n_rot) o->n_rot = o->head_dim / 2; /* MiniMax-M2: rotary_dim 64 of head_dim 128 */
        if (o->n_rot % 2 || o->n_rot > o->head_dim) die("--n-rot must be even and <= head_dim");
    }
    if (o->n_head % o->n_head_kv)
        die("n_head (%" PRId64 ") must be a multiple of n_head_kv (%" PRId64 ")", o->n_head, o->n_head_kv);
    if (!o->n_ff_exp) o->n_ff_exp = o->n_ff;
    if (is_moe(o->arch) && o->n_expert_used > o->n_expert)
        die("n_expert_used (%" PRId64 ") > n_expert (%" PRId64 ")", o->n_expert_used, o->n_expert);
    if (!o->ftype && o->type != MP_TYPE_F32) o->ftype = llama_ftype(o->type);
}

/* ---- writing ------------------------------------------------------------ */

#define W(call)                                                                \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ < 0) die("gguf writer: %s (%s)", #call, mp_strerror(rc_));     \
    } while (0)

/* Copies every tokenizer.* key of vocab_path into w; returns the token count. */
static int64_t copy_vocab(mp_gguf_writer *w, const char *vocab_path)
{
    mp_err err;
    mp_err_clear(&err);
    mp_gguf *g = NULL;
    mp_gguf_open_opts oo = {.no_mmap = true};
    if (mp_gguf_open(&g, vocab_path, &oo, &err) < 0) die("%s", err.msg);
    uint32_t et;
    uint64_t n;
    const void *data;
    if (mp_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &data, &err) < 0 || et != MP_GGUF_STRING)
        die("%s: no tokenizer.ggml.tokens string array", vocab_path);
    for (uint64_t i = 0; i < mp_gguf_n_kv(g); i++) {
        const mp_gguf_kv *kv = mp_gguf_kv_at(g, i);
        if (strncmp(kv->key.ptr, "tokenizer.", 10) == 0) W(mp_gguf_writer_set_value(w, kv->key.ptr, &kv->value));
    }
    mp_gguf_free(g);
    return (int64_t)n;
}

static int do_generate(gen_opts *o)
{
    if (!o->out) {
        usage(stderr);
        die("no output file (-o FILE)");
    }
    mp_gguf_writer *w = mp_gguf_writer_create();
    if (!w) die("out of memory");
    const char *a = arch_gguf_names[o->arch];
    char key[128];
#define K(suffix) (snprintf(key, sizeof(key), "%s.%s", a, suffix), key)

    W(mp_gguf_writer_set_str(w, "general.architecture", a));
    char name[128];
    snprintf(name, sizeof(name), "mp-gen-random-%s-%s", arch_cli_names[o->arch], o->type_name);
    W(mp_gguf_writer_set_str(w, "general.name", o->name ? o->name : name));
    W(mp_gguf_writer_set_u32(w, "general.alignment", MP_GGUF_DEFAULT_ALIGNMENT));
    W(mp_gguf_writer_set_u32(w, "general.file_type", o->ftype));
    W(mp_gguf_writer_set_u32(w, "general.quantization_version", 2));

    /* vocab_size is set again once --vocab is read (keys keep their first
     * position), so the key order matches llama.cpp's converters. */
    W(mp_gguf_writer_set_u32(w, K("vocab_size"), (uint32_t)o->n_vocab));
    W(mp_gguf_writer_set_u32(w, K("context_length"), (uint32_t)o->n_ctx));
    W(mp_gguf_writer_set_u32(w, K("embedding_length"), (uint32_t)o->n_embd));
    W(mp_gguf_writer_set_u32(w, K("block_count"), (uint32_t)(o->n_layer + o->n_nextn)));
    W(mp_gguf_writer_set_u32(w, K("feed_forward_length"), (uint32_t)o->n_ff));
    W(mp_gguf_writer_set_u32(w, K("attention.head_count"), (uint32_t)o->n_head));
    W(mp_gguf_writer_set_u32(w, K("attention.head_count_kv"), (uint32_t)o->n_head_kv));
    W(mp_gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"), o->eps));
    W(mp_gguf_writer_set_f32(w, K("rope.freq_base"), o->rope_base));
    W(mp_gguf_writer_set_u32(w, K("rope.dimension_count"),
                             (uint32_t)(o->arch == ARCH_DEEPSEEK2 ? o->rope_dim
                                        : o->arch == ARCH_GLM4MOE || o->arch == ARCH_MINIMAX_M2 ||
                                                  o->arch == ARCH_QWEN3NEXT || o->arch == ARCH_QWEN35MOE
                                            ? o->n_rot
                                            : o->head_dim)));
    if (o->arch == ARCH_QWEN3NEXT || o->arch == ARCH_QWEN35MOE) {
        /* as llama.cpp's converter writes them (conversion/qwen.py) */
        W(mp_gguf_writer_set_u32(w, K("attention.key_length"), (uint32_t)o->head_dim));
        W(mp_gguf_writer_set_u32(w, K("attention.value_length"), (uint32_t)o->head_dim));
        W(mp_gguf_writer_set_u32(w, K("expert_feed_forward_length"), (uint32_t)o->n_ff_exp));
        if (o->shexp_key) W(mp_gguf_writer_set_u32(w, K("expert_shared_feed_forward_length"), (uint32_t)o->n_ff_shexp));
        W(mp_gguf_writer_set_u32(w, K("ssm.conv_kernel"), (uint32_t)o->ssm_conv));
        W(mp_gguf_writer_set_u32(w, K("ssm.state_size"), (uint32_t)o->ssm_state));
        W(mp_gguf_writer_set_u32(w, K("ssm.group_count"), (uint32_t)o->ssm_k_heads));
        W(mp_gguf_writer_set_u32(w, K("ssm.time_step_rank"), (uint32_t)o->ssm_v_heads));
        W(mp_gguf_writer_set_u32(w, K("ssm.inner_size"), (uint32_t)(o->ssm_v_heads * o->ssm_state)));
        W(mp_gguf_writer_set_u32(w, K("full_attention_interval"), (uint32_t)o->full_attn));
        if (o->arch == ARCH_QWEN35MOE) {
            /* IMROPE sections over the n_rot/2 pairs, interleaved t,h,w as
             * Qwen3.5's [11, 11, 10, 0] for 32 pairs */
            const int32_t p = (int32_t)(o->n_rot / 2);
            const int32_t sec[4] = {(p + 2) / 3, (p + 1) / 3, p / 3, 0};
            W(mp_gguf_writer_set_arr(w, K("rope.dimension_sections"), MP_GGUF_INT32, 4, sec));
        }
    }
    if (o->arch == ARCH_QWEN3MOE) {
        W(mp_gguf_writer_set_u32(w, K("attention.key_length"), (uint32_t)o->head_dim));
        W(mp_gguf_writer_set_u32(w, K("attention.value_length"), (uint32_t)o->head_dim));
        W(mp_gguf_writer_set_u32(w, K("expert_feed_forward_length"), (uint32_t)o->n_ff_exp));
    }
    if (is_moe(o->arch)) {
        W(mp_gguf_writer_set_u32(w, K("expert_count"), (uint32_t)o->n_expert));
        W(mp_gguf_writer_set_u32(w, K("expert_used_count"), (uint32_t)o->n_expert_used));
    }
    if (o->arch == ARCH_QWEN2MOE) {
        /* as llama.cpp's converter writes them (conversion/qwen.py) */
        W(mp_gguf_writer_set_u32(w, K("expert_feed_forward_length"), (uint32_t)o->n_ff_exp));
        if (o->shexp_key) W(mp_gguf_writer_set_u32(w, K("expert_shared_feed_forward_length"), (uint32_t)o->n_ff_shexp));
    }
    if (o->arch == ARCH_MINIMAX_M2) {
        /* as llama.cpp's converter writes them (conversion/minimax.py, base.py) */
        W(mp_gguf_writer_set_u32(w, K("attention.key_length"), (uint32_t)o->head_dim));
        W(mp_gguf_writer_set_u32(w, K("attention.value_length"), (uint32_t)o->head_dim));
        W(mp_gguf_writer_set_u32(w, K("expert_feed_forward_length"), (uint32_t)o->n_ff_exp));
        if (o->gating > 0) W(mp_gguf_writer_set_u32(w, K("expert_gating_func"), (uint32_t)o->gating));
    }
    if (o->arch == ARCH_GLM4MOE) {
        /* as llama.cpp's converter writes them (conversion/glm.py) */
        W(mp_gguf_writer_set_u32(w, K("attention.key_length"), (uint32_t)o->head_dim));
        W(mp_gguf_writer_set_u32(w, K("attention.value_length"), (uint32_t)o->head_dim));
        W(mp_gguf_writer_set_u32(w, K("leading_dense_block_count"), (uint32_t)o->n_dense_lead));
        W(mp_gguf_writer_set_u32(w, K("expert_feed_forward_length"), (uint32_t)o->n_ff_exp));
        W(mp_gguf_writer_set_u32(w, K("expert_shared_count"), (uint32_t)o->n_shared));
        W(mp_gguf_writer_set_f32(w, K("expert_weights_scale"), o->weights_scale));
        W(mp_gguf_writer_set_bool(w, K("expert_weights_norm"), o->weights_norm));
        if (o->gating > 0) W(mp_gguf_writer_set_u32(w, K("expert_gating_func"), (uint32_t)o->gating));
        W(mp_gguf_writer_set_u32(w, K("nextn_predict_layers"), (uint32_t)o->n_nextn));
    }
    if (o->arch == ARCH_GPTOSS) {
        /* as llama.cpp's converter writes them (conversion/gpt_oss.py); the
         * head lengths always (llama.cpp needs them when n_head * head_dim != n_embd) */
        W(mp_gguf_writer_set_u32(w, K("attention.key_length"), (uint32_t)o->head_dim));
        W(mp_gguf_writer_set_u32(w, K("attention.value_length"), (uint32_t)o->head_dim));
        W(mp_gguf_writer_set_u32(w, K("attention.sliding_window"), (uint32_t)o->n_swa));
        if (o->swa_pattern) W(mp_gguf_writer_set_u32(w, K("attention.sliding_window_pattern"), (uint32_t)o->swa_pattern));
        if (o->rope_base_swa > 0) W(mp_gguf_writer_set_f32(w, K("rope.freq_base_swa"), o->rope_base_swa));
        W(mp_gguf_writer_set_u32(w, K("expert_feed_forward_length"), (uint32_t)o->n_ff_exp));
        if (o->yarn_factor > 0) {
            W(mp_gguf_writer_set_str(w, K("rope.scaling.type"), "yarn"));
            W(mp_gguf_writer_set_f32(w, K("rope.scaling.factor"), o->yarn_factor));
            W(mp_gguf_writer_set_u32(w, K("rope.scaling.original_context_length"), (uint32_t)o->yarn_orig));
        }
    }
    if (o->arch == ARCH_DEEPSEEK2) {
        /* as llama.cpp's converter writes them (conversion/deepseek.py) */
        const int64_t dk = o->nope_dim + o->rope_dim;
        W(mp_gguf_writer_set_u32(w, K("leading_dense_block_count"), (uint32_t)o->n_dense_lead));
        W(mp_gguf_writer_set_u32(w, K("attention.q_lora_rank"), (uint32_t)o->q_lora));
        W(mp_gguf_writer_set_u32(w, K("attention.kv_lora_rank"), (uint32_t)o->kv_lora));
        if (o->mla_kv_b) {
            W(mp_gguf_writer_set_u32(w, K("attention.key_length"), (uint32_t)dk));
            W(mp_gguf_writer_set_u32(w, K("attention.value_length"), (uint32_t)o->v_dim));
        } else {
            W(mp_gguf_writer_set_u32(w, K("attention.key_length"), (uint32_t)(o->kv_lora + o->rope_dim)));
            W(mp_gguf_writer_set_u32(w, K("attention.value_length"), (uint32_t)o->kv_lora));
            W(mp_gguf_writer_set_u32(w, K("attention.key_length_mla"), (uint32_t)dk));
            W(mp_gguf_writer_set_u32(w, K("attention.value_length_mla"), (uint32_t)o->v_dim));
        }
        W(mp_gguf_writer_set_u32(w, K("expert_feed_forward_length"), (uint32_t)o->n_ff_exp));
        W(mp_gguf_writer_set_u32(w, K("expert_shared_count"), (uint32_t)o->n_shared));
        W(mp_gguf_writer_set_f32(w, K("expert_weights_scale"), o->weights_scale));
        W(mp_gguf_writer_set_bool(w, K("expert_weights_norm"), o->weights_norm));
        if (o->gating > 0) W(mp_gguf_writer_set_u32(w, K("expert_gating_func"), (uint32_t)o->gating));
        if (o->n_group) {
            W(mp_gguf_writer_set_u32(w, K("expert_group_count"), (uint32_t)o->n_group));
            W(mp_gguf_writer_set_u32(w, K("expert_group_used_count"), (uint32_t)o->n_group_used));
        }
        if (o->yarn_factor > 0) {
            W(mp_gguf_writer_set_str(w, K("rope.scaling.type"), "yarn"));
            W(mp_gguf_writer_set_f32(w, K("rope.scaling.factor"), o->yarn_factor));
            W(mp_gguf_writer_set_u32(w, K("rope.scaling.original_context_length"), (uint32_t)o->yarn_orig));
            /* the converter stores 0.1 * mscale_all_dim */
            if (o->yarn_log_mul != 0) W(mp_gguf_writer_set_f32(w, K("rope.scaling.yarn_log_multiplier"), o->yarn_log_mul));
        }
    }

    if (o->vocab) {
        int64_t nv = copy_vocab(w, o->vocab);
        if (o->n_vocab_set && nv != o->n_vocab)
            die("--n-vocab %" PRId64 " disagrees with %s (%" PRId64 " tokens)", o->n_vocab, o->vocab, nv);
        o->n_vocab = nv;
        W(mp_gguf_writer_set_u32(w, K("vocab_size"), (uint32_t)o->n_vocab));
    } else {
        char **toks;
        float *scores;
        int32_t *types;
        vocab_build(o->n_vocab, &toks, &scores, &types);
        W(mp_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"));
        W(mp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (uint64_t)o->n_vocab, (const char *const *)toks, NULL));
        W(mp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", MP_GGUF_FLOAT32, (uint64_t)o->n_vocab, scores));
        W(mp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", MP_GGUF_INT32, (uint64_t)o->n_vocab, types));
        W(mp_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1));
        W(mp_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2));
        W(mp_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0));
        W(mp_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true));
        W(mp_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false));
        for (int64_t i = 0; i < o->n_vocab; i++) free(toks[i]);
        free(toks);
        free(scores);
        free(types);
    }
#undef K

    gen_model m = {0};
    model_build(&m, o);
    char msg[256];
    if (!model_size(&m, msg, sizeof(msg))) die("%s", msg);
    uint64_t total = 0, n_params = 0;
    for (size_t i = 0; i < m.n; i++) {
        const gen_tensor *t = &m.t[i];
        W(mp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL));
        total += t->nbytes;
        n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2]);
    }

    gen_fill f = {.m = &m, .seed = o->seed, .idx = -1, .total = total};
    f.progress = !o->quiet && total > 100u * 1000 * 1000;
    f.tty = isatty(2);
    f.t0 = f.last_print = now_s();
    f.last_pct = -100;

    /* The writer writes a temporary file and renames it into place, so a
     * failed run never leaves a file that looks complete. */
    mp_err err;
    mp_err_clear(&err);
    int rc = mp_gguf_writer_write(w, o->out, gen_fill_cb, &f, &err);
    if (rc < 0) die("writing %s: %s (%s)", o->out, err.msg, mp_strerror(rc));
    double el = now_s() - f.t0;
    if (f.progress && (f.tty || f.last_pct != 100)) progress_print(&f, true);
    if (!o->quiet)
        fprintf(stderr,
                "mp-gen: wrote %s: arch=%s type=%s layers=%" PRId64 " experts=%" PRId64
                " tensors=%zu params=%" PRIu64 " data=%.1f MiB in %.2f s\n",
                o->out, arch_cli_names[o->arch], o->type_name, o->n_layer,
                is_moe(o->arch) ? o->n_expert : 0, m.n, n_params, (double)total / 1048576.0, el);
    free(m.t);
    mp_gguf_writer_free(w);
    return 0;
}

/* ---- --check -------------------------------------------------------------- */

static bool finite_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return ((h >> 10) & 0x1f) != 0x1f;
}

/* Returns the index of the first non-finite value/scale, or -1. */
static int64_t scan_tensor(const mp_gguf_tensor *t, const uint8_t *d)
{
    const int64_t ne = mp_gguf_tensor_nelements(t);
    const mp_type_info *ti = mp_type_get(t->type);
    const int64_t nb = ne / ti->blck_size;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *b = d + (uint64_t)i * ti->type_size;
        bool ok = true;
        switch (t->type) {
        case MP_TYPE_F32: {
            float v;
            memcpy(&v, b, 4);
            ok = isfinite(v);
            break;
        }
        case MP_TYPE_F16: ok = finite_f16(b); break;
        case MP_TYPE_BF16: {
            uint16_t h;
            memcpy(&h, b, 2);
            ok = ((h >> 7) & 0xff) != 0xff;
            break;
        }
        case MP_TYPE_Q8_0:
        case MP_TYPE_Q5_0:
        case MP_TYPE_Q4_0: ok = finite_f16(b); break;
        case MP_TYPE_Q5_1: ok = finite_f16(b) && finite_f16(b + 2); break;
        case MP_TYPE_Q4_K:
        case MP_TYPE_Q5_K: ok = finite_f16(b) && finite_f16(b + 2); break;
        case MP_TYPE_Q6_K: ok = finite_f16(b + 208); break;
        case MP_TYPE_Q2_K: ok = finite_f16(b + 80) && finite_f16(b + 82); break;
        case MP_TYPE_Q3_K: ok = finite_f16(b + 108); break;
        case MP_TYPE_IQ4_NL:
        case MP_TYPE_IQ4_XS: ok = finite_f16(b); break;
        default: break;
        }
        if (!ok) return i;
    }
    return -1;
}

/* Dequantises row r (over ne1*ne2) of t into dst (ne[0] floats). */
static bool tensor_row(const mp_gguf_tensor *t, const uint8_t *d, int64_t r, float *dst)
{
    const size_t rs = mp_row_size(t->type, t->ne[0]);
    return mp_dequantize_row(t->type, d + (uint64_t)r * rs, dst, t->ne[0]) == MP_OK;
}

/* Std of 8 rows spread over the tensor (first and last included); -1 if
 * the type cannot be dequantised. */
static double sample_std(const mp_gguf_tensor *t, const uint8_t *d, float *row)
{
    const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    const int64_t k_max = rows < 8 ? rows : 8;
    double s = 0, s2 = 0, n = 0;
    for (int64_t k = 0; k < k_max; k++) {
        int64_t r = k_max > 1 ? k * (rows - 1) / (k_max - 1) : 0;
        if (!tensor_row(t, d, r, row)) return -1;
        for (int64_t i = 0; i < t->ne[0]; i++) {
            s += row[i];
            s2 += (double)row[i] * row[i];
        }
        n += (double)t->ne[0];
    }
    double var = s2 / n - (s / n) * (s / n);
    return var > 0 ? sqrt(var) : 0;
}

/* Layer-0 top-1 expert of up to 64 tokens spread over the vocabulary, with
 * the embedding rms-normalised (the attention block is left out): the
 * number of distinct experts chosen, or -1 if a tensor is unusable. */
static int route_diversity(const mp_gguf *g, int64_t n_embd, int64_t n_expert, int64_t n_vocab)
{
    const mp_gguf_tensor *te = mp_gguf_find_tensor(g, "token_embd.weight");
    const mp_gguf_tensor *tr = mp_gguf_find_tensor(g, "blk.0.ffn_gate_inp.weight");
    if (!te || !tr || tr->type != MP_TYPE_F32) return -1;
    const uint8_t *de = mp_gguf_tensor_data(g, te);
    const float *wr = mp_gguf_tensor_data(g, tr);
    float *x = malloc((size_t)n_embd * sizeof(float));
    int *hit = calloc((size_t)n_expert, sizeof(int));
    int distinct = -1;
    if (!x || !hit || !de || !wr) goto out;
    const int64_t n_tok = n_vocab < 64 ? n_vocab : 64;
    distinct = 0;
    for (int64_t k = 0; k < n_tok; k++) {
        int64_t tok = n_tok > 1 ? k * (n_vocab - 1) / (n_tok - 1) : 0;
        if (!tensor_row(te, de, tok, x)) {
            distinct = -1;
            goto out;
        }
        double ss = 0;
        for (int64_t i = 0; i < n_embd; i++) ss += (double)x[i] * x[i];
        const float inv = ss > 0 ? (float)(1.0 / sqrt(ss / (double)n_embd)) : 0.0f;
        int64_t best = 0;
        double best_v = -INFINITY;
        for (int64_t e = 0; e < n_expert; e++) {
            double v = 0;
            for (int64_t i = 0; i < n_embd; i++) v += (double)wr[e * n_embd + i] * x[i] * inv;
            if (v > best_v) {
                best_v = v;
                best = e;
            }
        }
        if (!hit[best]++) distinct++;
    }
out:
    free(x);
    free(hit);
    return distinct;
}

static int do_check(const char *path, bool quiet)
{
    mp_err err;
    mp_err_clear(&err);
    mp_gguf *g = NULL;
    int rc = mp_gguf_open(&g, path, NULL, &err);
    if (rc < 0) {
        fprintf(stderr, "mp-gen: check: %s\n", err.msg);
        return 1;
    }
    int bad = 0;
#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, "mp-gen: check: %s: ", path);                          \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        bad++;                                                                 \
    } while (0)

    gen_opts o;
    memset(&o, 0, sizeof(o));
    o.attn_type = o.expert_type = o.embd_type = -1;
    o.type = o.type_hi = MP_TYPE_F32;
    const char *a = mp_gguf_get_str(g, "general.architecture");
    uint32_t v;
    char key[128];
#define GETU(suffix, dst, required)                                                        \
    do {                                                                                   \
        snprintf(key, sizeof(key), "%s.%s", a, suffix);                                    \
        if (mp_gguf_get_u32(g, key, &v, &err) == MP_OK) (dst) = v;                         \
        else if (required) FAIL("missing or bad key %s", key);                             \
    } while (0)
    if (!a) {
        FAIL("no general.architecture");
        goto out;
    }
    if (!strcmp(a, "llama")) o.arch = ARCH_LLAMA;
    else if (!strcmp(a, "qwen3moe")) o.arch = ARCH_QWEN3MOE;
    else if (!strcmp(a, "olmoe")) o.arch = ARCH_OLMOE;
    else if (!strcmp(a, "deepseek2")) o.arch = ARCH_DEEPSEEK2;
    else if (!strcmp(a, "glm4moe")) o.arch = ARCH_GLM4MOE;
    else if (!strcmp(a, "qwen2moe")) o.arch = ARCH_QWEN2MOE;
    else if (!strcmp(a, "gpt-oss")) o.arch = ARCH_GPTOSS;
    else if (!strcmp(a, "minimax-m2")) o.arch = ARCH_MINIMAX_M2;
    else if (!strcmp(a, "qwen3next")) o.arch = ARCH_QWEN3NEXT;
    else if (!strcmp(a, "qwen35moe")) o.arch = ARCH_QWEN35MOE;
    else {
        FAIL("architecture '%s' is not one mp-gen writes", a);
        goto out;
    }
    GETU("embedding_length", o.n_embd, true);
    GETU("block_count", o.n_layer, true);
    GETU("feed_forward_length", o.n_ff, true);
    GETU("attention.head_count", o.n_head, true);
    GETU("attention.head_count_kv", o.n_head_kv, true);
    GETU("expert_count", o.n_expert, o.arch != ARCH_LLAMA);
    GETU("expert_used_count", o.n_expert_used, o.arch != ARCH_LLAMA);
    GETU("expert_feed_forward_length", o.n_ff_exp,
         o.arch == ARCH_QWEN3MOE || o.arch == ARCH_GPTOSS || o.arch == ARCH_MINIMAX_M2);
    if (o.arch == ARCH_MINIMAX_M2) GETU("rope.dimension_count", o.n_rot, true);
    GETU("attention.key_length", o.head_dim, false);
    if (o.arch == ARCH_GLM4MOE) {
        GETU("nextn_predict_layers", o.n_nextn, false);
        GETU("leading_dense_block_count", o.n_dense_lead, false);
        GETU("expert_shared_count", o.n_shared, true);
        GETU("rope.dimension_count", o.n_rot, true);
        o.n_layer -= o.n_nextn;
        o.attn_bias = mp_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
        o.qk_norm = mp_gguf_find_tensor(g, "blk.0.attn_q_norm.weight") != NULL;
    }
    if (o.arch == ARCH_QWEN2MOE) {
        GETU("expert_shared_feed_forward_length", o.n_ff_shexp, false);
        if (!o.n_ff_shexp) o.n_ff_shexp = o.n_ff;
        if (!o.n_ff_exp) o.n_ff_exp = o.n_ff / (o.n_expert_used ? o.n_expert_used : 1);
        o.fused_qkv = mp_gguf_find_tensor(g, "blk.0.attn_qkv.weight") == NULL ? 0
                      : mp_gguf_find_tensor(g, "blk.0.attn_qkv.bias")   ? 1
                                                                        : 2;
        o.attn_bias = mp_gguf_find_tensor(g, o.fused_qkv == 1 ? "blk.0.attn_qkv.bias" : "blk.0.attn_q.bias") != NULL;
    }
    if (o.arch == ARCH_QWEN3NEXT || o.arch == ARCH_QWEN35MOE) {
        GETU("expert_shared_feed_forward_length", o.n_ff_shexp, false);
        if (!o.n_ff_shexp) o.n_ff_shexp = o.n_ff;
        GETU("ssm.conv_kernel", o.ssm_conv, true);
        GETU("ssm.state_size", o.ssm_state, true);
        GETU("ssm.group_count", o.ssm_k_heads, true);
        GETU("ssm.time_step_rank", o.ssm_v_heads, true);
        o.full_attn = 4;
        GETU("full_attention_interval", o.full_attn, false);
        if (!o.full_attn) FAIL("full_attention_interval 0");
        o.ssm_split = o.arch == ARCH_QWEN35MOE;
        o.ssm_legacy = mp_gguf_find_tensor(g, "blk.0.ssm_in.weight") != NULL;
    }
    if (o.arch == ARCH_DEEPSEEK2) {
        int64_t dk = 0, mla_k = 0;
        GETU("attention.q_lora_rank", o.q_lora, false);
        GETU("attention.kv_lora_rank", o.kv_lora, true);
        GETU("rope.dimension_count", o.rope_dim, true);
        GETU("attention.key_length", dk, true);
        GETU("attention.value_length", o.v_dim, true);
        GETU("attention.key_length_mla", mla_k, false);
        GETU("attention.value_length_mla", o.v_dim, false);
        GETU("leading_dense_block_count", o.n_dense_lead, false);
        GETU("expert_shared_count", o.n_shared, true);
        o.mla_kv_b = mla_k == 0;
        o.nope_dim = (o.mla_kv_b ? dk : mla_k) - o.rope_dim;
        char nm[64];
        snprintf(nm, sizeof nm, "blk.%" PRId64 ".exp_probs_b.bias", o.n_dense_lead);
        o.probs_bias = mp_gguf_find_tensor(g, nm) != NULL;
        snprintf(nm, sizeof nm, "blk.%" PRId64 ".ffn_gate_up_exps.weight", o.n_dense_lead);
        o.fused_gate_up = mp_gguf_find_tensor(g, nm) != NULL;
    }
    if (bad) goto out;
    if (o.arch == ARCH_LLAMA && o.n_expert > 0) o.arch = ARCH_LLAMA_MOE;
    if (!o.head_dim) o.head_dim = o.n_head ? o.n_embd / o.n_head : 0;
    {
        uint32_t et;
        uint64_t n;
        const void *data;
        if (mp_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &data, &err) < 0 || et != MP_GGUF_STRING) {
            FAIL("no tokenizer.ggml.tokens string array");
            goto out;
        }
        o.n_vocab = (int64_t)n;
    }
    o.tied_output = mp_gguf_find_tensor(g, "output.weight") == NULL;

    gen_model m = {0};
    model_build(&m, &o);
    if (mp_gguf_n_tensors(g) != m.n)
        FAIL("%" PRIu64 " tensors, expected %zu for %s", mp_gguf_n_tensors(g), m.n, arch_cli_names[o.arch]);
    uint64_t scanned = 0;
    double r_min = INFINITY, r_max = 0;
    for (size_t i = 0; i < m.n; i++) {
        const gen_tensor *e = &m.t[i];
        const mp_gguf_tensor *t = mp_gguf_find_tensor(g, e->name);
        if (!t) {
            FAIL("tensor '%s' missing", e->name);
            continue;
        }
        bool same = t->n_dims == e->n_dims;
        for (int d = 0; d < MP_GGUF_MAX_DIMS; d++) same = same && t->ne[d] == e->ne[d];
        if (!same)
            FAIL("tensor '%s' has shape {%" PRId64 ",%" PRId64 ",%" PRId64 "}, expected {%" PRId64
                 ",%" PRId64 ",%" PRId64 "}",
                 e->name, t->ne[0], t->ne[1], t->ne[2], e->ne[0], e->ne[1], e->ne[2]);
        if ((e->role == ROLE_NORM || e->role == ROLE_ROUTER) && t->type != MP_TYPE_F32)
            FAIL("tensor '%s' is %s, expected f32", e->name, mp_type_name(t->type));
        const uint8_t *d = mp_gguf_tensor_data(g, t);
        if (!d) {
            FAIL("tensor '%s': no data mapping", e->name);
            continue;
        }
        int64_t at = scan_tensor(t, d);
        if (at >= 0)
            FAIL("tensor '%s' (%s): non-finite value or scale in block %" PRId64 " (file offset %" PRIu64 ")",
                 e->name, mp_type_name(t->type), at,
                 t->offset + (uint64_t)at * mp_type_get(t->type)->type_size);
        scanned += t->size;
        if (at >= 0) continue;
        /* Values as generated: norms 1 +- 0.1, matrices with the std
         * model_build asked for (quantisation noise and the per-block
         * jitter stay well inside a factor 1.5). */
        float *row = malloc((size_t)t->ne[0] * sizeof(float));
        if (!row) die("out of memory");
        if (e->role == ROLE_NORM) {
            if (tensor_row(t, d, 0, row))
                for (int64_t j = 0; j < t->ne[0]; j++)
                    if (!(row[j] > 0.5f && row[j] < 1.5f)) {
                        FAIL("norm '%s'[%" PRId64 "] = %g, expected about 1", e->name, j, row[j]);
                        break;
                    }
        } else if (e->role != ROLE_BIAS && e->role != ROLE_SSM_A &&
                   t->ne[0] * t->ne[1] * t->ne[2] >= 2048) { /* biases, ssm_beta/alpha: too few values for a std check */
            double sd = sample_std(t, d, row);
            if (sd >= 0) {
                double ratio = sd / e->scale;
                if (ratio < r_min) r_min = ratio;
                if (ratio > r_max) r_max = ratio;
                if (ratio < 0.67 || ratio > 1.5)
                    FAIL("tensor '%s' (%s): value std %.4g, expected about %.4g", e->name,
                         mp_type_name(t->type), sd, e->scale);
            }
        }
        free(row);
    }
    int distinct = 0;
    if (is_moe(o.arch) && !bad) {
        distinct = route_diversity(g, o.n_embd, o.n_expert, o.n_vocab);
        int want = o.n_expert < 3 ? (int)o.n_expert : 3;
        if (distinct >= 0 && distinct < want)
            FAIL("layer-0 routing picks only %d distinct top-1 expert(s) over %d tokens", distinct,
                 (int)(o.n_vocab < 64 ? o.n_vocab : 64));
    }
    if (!bad && !quiet)
        printf("%s: ok: arch=%s n_layer=%" PRId64 " n_expert=%" PRId64 " n_vocab=%" PRId64
               " tensors=%zu data=%.1f MiB std/expected %.2f..%.2f routed experts %d\n",
               path, arch_cli_names[o.arch], o.n_layer, o.n_expert, o.n_vocab, m.n,
               (double)scanned / 1048576.0, r_min, r_max, distinct);
    free(m.t);
out:
    mp_gguf_free(g);
    return bad ? 1 : 0;
#undef GETU
#undef FAIL
}

/* The fill callback must give the same bytes however the writer splits a
 * tensor: for every generated type, one whole-tensor call is compared with
 * calls of odd sizes (units split across calls), and a repeated tensor
 * index must restart the stream. Returns 0 when all agree. */
static int do_self_test(void)
{
    static const uint32_t types[] = {MP_TYPE_F32,  MP_TYPE_F16,  MP_TYPE_BF16, MP_TYPE_Q8_0,   MP_TYPE_Q4_0,  MP_TYPE_Q4_K,
                                     MP_TYPE_Q5_K, MP_TYPE_Q6_K, MP_TYPE_Q2_K, MP_TYPE_Q3_K, MP_TYPE_IQ4_NL, MP_TYPE_IQ4_XS,
                                     MP_TYPE_Q5_0, MP_TYPE_Q5_1};
    static const size_t chunks[] = {1, 7, 33, 255, 1000, 4099};
    int bad = 0;
    for (size_t k = 0; k < sizeof(types) / sizeof(*types); k++) {
        gen_tensor t[2];
        memset(t, 0, sizeof(t));
        for (int j = 0; j < 2; j++) {
            snprintf(t[j].name, sizeof(t[j].name), "t%d", j);
            t[j].role = j ? ROLE_NORM : ROLE_EXP;
            t[j].type = j ? MP_TYPE_F32 : types[k];
            t[j].n_dims = 2;
            t[j].ne[0] = 512;
            t[j].ne[1] = 5;
            t[j].ne[2] = t[j].ne[3] = 1;
            t[j].scale = 0.05f;
            t[j].nbytes = mp_row_size(t[j].type, 512) * 5;
        }
        gen_model m = {.t = t, .n = 2, .cap = 2};
        const size_t nb = t[0].nbytes;
        uint8_t *whole = malloc(nb), *part = malloc(nb);
        if (!whole || !part) die("out of memory");
        gen_fill f = {.m = &m, .seed = 42, .idx = -1};
        mp_err err;
        mp_err_clear(&err);
        if (gen_fill_cb(&f, 0, whole, nb, &err) < 0) bad++;
        for (size_t c = 0; c < sizeof(chunks) / sizeof(*chunks); c++) {
            /* Tensor 1 in between forces a restart of tensor 0. */
            uint8_t tmp[4 * 512 * 5];
            if (gen_fill_cb(&f, 1, tmp, t[1].nbytes, &err) < 0) bad++;
            memset(part, 0, nb);
            for (size_t off = 0; off < nb; off += chunks[c]) {
                size_t n = nb - off < chunks[c] ? nb - off : chunks[c];
                if (gen_fill_cb(&f, 0, part + off, n, &err) < 0) bad++;
            }
            if (memcmp(whole, part, nb) != 0) {
                fprintf(stderr, "mp-gen: self-test: %s in %zu-byte calls differs from one call\n",
                        mp_type_name(types[k]), chunks[c]);
                bad++;
            }
        }
        /* Same tensor index again right after it completed: a restart. */
        if (gen_fill_cb(&f, 0, part, nb, &err) < 0 || memcmp(whole, part, nb) != 0) {
            fprintf(stderr, "mp-gen: self-test: %s: a second full call differs\n", mp_type_name(types[k]));
            bad++;
        }
        free(whole);
        free(part);
    }
    if (!bad) printf("mp-gen: self-test ok\n");
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    gen_opts o;
    const char *check;
    if (argc == 2 && !strcmp(argv[1], "--self-test")) return do_self_test();
    parse_args(argc, argv, &o, &check);
    if (check) return do_check(check, o.quiet);
    opts_finish(&o);
    return do_generate(&o);
}
