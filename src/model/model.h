/* Model: architecture, hyperparameters and tensor views of a GGUF file.
 *
 * mp_model_load() reads every hyperparameter from metadata, refuses unknown
 * architectures by name, binds every tensor the architecture needs and checks
 * its type and shape against the hyperparameters, so the forward pass can
 * index weights without further checks. Routed-expert weights are never read
 * through these views by the forward pass: it asks an mp_experts provider
 * (experts.h) for them, so they can live on disk. */
#ifndef MP_MODEL_H
#define MP_MODEL_H

#include "common/err.h"
#include "gguf/gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mp_arch {
    MP_ARCH_LLAMA = 0,   /* dense llama, and Mixtral-style llama with experts */
    MP_ARCH_QWEN3MOE,
    MP_ARCH_OLMOE,
    MP_ARCH_DEEPSEEK2,   /* MLA attention, shared experts, sigmoid/group routing */
    MP_ARCH_GLM4MOE,     /* GQA with biases, partial NEOX rope, shared experts, sigmoid + bias routing */
    MP_ARCH_QWEN2MOE,    /* GQA with biases, NEOX rope, softmax routing (no renorm), one sigmoid-gated shared expert */
    MP_ARCH_GPTOSS,      /* "gpt-oss": sinks, sliding window on alternate layers, biases, clamped SwiGLU */
    MP_ARCH_MINIMAX_M2,  /* "minimax-m2": GQA, q/k norms over the whole vectors, partial NEOX, sigmoid + bias routing */
    MP_ARCH_QWEN3NEXT,   /* Gated DeltaNet + gated attention layers, softmax routing, sigmoid-gated shared expert */
    MP_ARCH_QWEN35MOE,   /* the same with ssm_beta/ssm_alpha and IMROPE (NEOX for text) */
    MP_ARCH_COUNT
} mp_arch;

typedef enum mp_rope_kind {
    MP_ROPE_NORM = 0, /* rotate adjacent pairs (x0,x1), (x2,x3), ... */
    MP_ROPE_NEOX = 1  /* rotate (x_i, x_{i+n_rot/2}) */
} mp_rope_kind;

typedef enum mp_qk_norm {
    MP_QK_NORM_NONE = 0,
    MP_QK_NORM_HEAD = 1, /* RMS norm over each head (qwen3moe) */
    MP_QK_NORM_FULL = 2  /* RMS norm over the whole q / k vector (olmoe) */
} mp_qk_norm;

/* llama.cpp's expert_gating_func values (llama-hparams.h) */
typedef enum mp_gating {
    MP_GATING_SOFTMAX = 1, /* softmax over all experts */
    MP_GATING_SIGMOID = 2, /* independent sigmoid per expert */
    MP_GATING_SOFTMAX_WEIGHT = 3 /* top-k on the raw logits, softmax over the k picks (gpt-oss) */
} mp_gating;

typedef struct mp_hparams {
    mp_arch arch;
    char arch_name[32];      /* general.architecture */
    uint32_t n_vocab;
    uint32_t n_ctx_train;
    uint32_t n_embd;
    uint32_t n_layer;        /* layers the forward pass runs: block_count - nextn_predict_layers */
    uint32_t n_layer_nextn;  /* NextN/MTP blocks after them: never run, never loaded */
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t head_dim;       /* key/query head size */
    uint32_t head_dim_v;     /* value head size */
    uint32_t n_rot;          /* rotated dims per head */
    uint32_t n_ff;           /* dense FFN width (0 if the model has none) */
    uint32_t n_ff_exp;       /* expert FFN width */
    uint32_t n_expert;       /* 0 for a dense model */
    uint32_t n_expert_used;
    float rms_eps;
    float rope_base;
    float rope_scale;        /* freq_scale = 1 / rope.scaling.factor */
    float expert_weights_scale; /* 0 or 1: none */
    mp_rope_kind rope_kind;
    mp_qk_norm qk_norm;
    bool norm_topk;          /* renormalise the k routing weights */
    mp_gating gating;
    uint32_t n_group, n_group_used; /* group-limited routing when n_group > 1 */
    uint32_t n_dense_lead;   /* the first n layers have a dense FFN (n_ff) */
    uint32_t n_shared;       /* shared experts (one FFN of n_ff_shexp), always run */
    uint32_t n_ff_shexp;     /* width of that FFN: n_ff_exp * n_shared (deepseek2, glm4moe), or
                              * qwen2moe's expert_shared_feed_forward_length (default n_ff) */
    /* Attention: kq_scale multiplies q.k (1/sqrt(head_dim) unless YaRN's
     * mscale says otherwise). RoPE with YaRN as ggml computes it: ext_factor
     * 0 or 1, attn_factor the cos/sin magnitude passed in, corr dims from
     * n_ctx_orig and beta_fast 32 / beta_slow 1. */
    float kq_scale;
    float yarn_ext_factor, yarn_attn_factor;
    uint32_t n_ctx_orig;
    /* deepseek2 MLA. mla_absorbed (attn_k_b / attn_v_b): the KV cache holds
     * one head of head_dim = kv_lora + n_rot per token, whose first kv_lora
     * values are also the value (head_dim_v = kv_lora; kv_in_k). Otherwise
     * (attn_kv_b) plain MHA with head_dim = mla_dk, head_dim_v = mla_dv. */
    bool mla, mla_absorbed, kv_in_k;
    uint32_t q_lora, kv_lora;
    uint32_t mla_dk, mla_dv; /* per-head q/k size (nope + n_rot) and value size */
    /* gpt-oss. Layer il is sliding-window when swa_pattern > 1 and
     * il % swa_pattern < swa_pattern - 1 (llama.cpp's set_swa_pattern,
     * dense_first false; the default 2: even layers): a query at p sees keys
     * p - n_swa + 1 .. p. Those layers' rope uses rope_base_swa. Sinks: one
     * f32 logit per head joins each softmax. swiglu_oai: the FFN is
     * min(g,7) * sigmoid(1.702 min(g,7)) * (clamp(u,-7,7) + 1). */
    uint32_t n_swa, swa_pattern;
    float rope_base_swa;
    bool sinks, swiglu_oai;
    /* qwen3next / qwen35moe. attn_gate: wq gives [query | gate] per head
     * (2 head_dim rows each) and the attention output is multiplied by
     * sigmoid(gate) before wo. Gated DeltaNet (recurrent) layers, those with
     * mp_layer.recurrent: n_k heads of q/k and n_v heads of v, all of
     * ssm_d_state values; a causal conv of ssm_d_conv taps over the conv_dim
     * = 2 n_k d_state + n_v d_state channels [q | k | v]; a d_state x d_state
     * state per v head. V head h reads q/k head h / (n_v / n_k) (qwen3next's
     * repeat-interleave) or h % n_k (ssm_kv_tiled: qwen35moe, whose fused
     * op broadcasts). n_layer_kv / n_layer_recr: layers of each kind (the KV
     * cache and the recurrent state are kept for those only). */
    bool attn_gate, ssm_kv_tiled;
    bool ssm_in_legacy;   /* qwen3next's older files: one ssm_in instead of attn_qkv + attn_gate */
    uint32_t ssm_d_conv, ssm_d_state, ssm_n_k, ssm_n_v;
    uint32_t n_layer_kv, n_layer_recr;
} mp_hparams;

/* Floats of one recurrent layer's conv state ((d_conv - 1) x conv_dim) and
 * delta-rule state (n_v x d_state x d_state); 0 for other models. */
static inline uint64_t mp_hp_conv_state(const mp_hparams *hp)
{
    return hp->ssm_d_conv ? (uint64_t)(hp->ssm_d_conv - 1) * (2ull * hp->ssm_n_k + hp->ssm_n_v) * hp->ssm_d_state : 0;
}
static inline uint64_t mp_hp_ssm_state(const mp_hparams *hp)
{
    return (uint64_t)hp->ssm_n_v * hp->ssm_d_state * hp->ssm_d_state;
}

/* True when layer il attends over a sliding window of n_swa keys. */
static inline bool mp_layer_is_swa(const mp_hparams *hp, uint32_t il)
{
    return hp->n_swa > 0 && hp->swa_pattern > 1 && il % hp->swa_pattern < hp->swa_pattern - 1;
}

/* A weight tensor: ne[0] is the row length. For 3-D expert tensors,
 * expert_stride is the byte distance between experts (ne[2] = n_expert). */
typedef struct mp_tensor {
    const mp_gguf_tensor *info; /* NULL when absent */
    const void *data;           /* into the mapping */
    uint32_t type;
    int64_t ne[4];
    size_t row_size;            /* bytes of one row */
    size_t expert_stride;       /* bytes from one expert's slab to the next (3-D only) */
    /* A view of part of each expert's slab (the gate or up half of a fused
     * ffn_gate_up_exps): bytes from the slab's start; data already includes
     * it. The part is ne[1] rows of row_size bytes. 0 for whole tensors. */
    size_t view_off;
    /* A row range of another tensor (wq/wk/wv of a fused attn_qkv, bq/bk/bv
     * of its bias): data points into that tensor at view_off bytes, and it
     * is loaded with it, never on its own (mp_layer_bind_qkv_views). */
    bool view;
    /* true: data holds whole-row groups in the interleaved layout (kernels.h,
     * MP_RP_ROWS; same bytes, rows permuted by block): only mp_matmul_rows_ex
     * with MP_MM_REPACKED may read it (runtime/resident.c sets it) */
    bool repacked;
} mp_tensor;

/* File offset (within the GGUF image) and size of expert e's part of t. */
static inline uint64_t mp_tensor_expert_offset(const mp_tensor *t, uint32_t e)
{
    return t->info->offset + t->view_off + (uint64_t)e * t->expert_stride;
}
static inline uint64_t mp_tensor_expert_bytes(const mp_tensor *t) { return (uint64_t)t->row_size * (uint64_t)t->ne[1]; }

typedef struct mp_layer {
    mp_tensor attn_norm;  /* (n_embd) f32 */
    mp_tensor wq;         /* (n_embd -> n_head * head_dim) */
    mp_tensor wk;         /* (n_embd -> n_head_kv * head_dim) */
    mp_tensor wv;         /* (n_embd -> n_head_kv * head_dim_v) */
    mp_tensor wo;         /* (n_head * head_dim_v -> n_embd) */
    mp_tensor bq, bk, bv; /* optional f32 biases of wq, wk, wv (glm4moe, qwen2moe, gpt-oss) */
    mp_tensor bo;         /* (n_embd) f32 bias of wo (gpt-oss) */
    /* a fused (n_embd -> Dq + Dk + Dv) projection, rows [q | k | v] as llama.cpp's
     * build_qkv splits them, and its optional fused f32 bias; wq/wk/wv (bq/bk/bv)
     * are then views of them */
    mp_tensor wqkv, bqkv;
    mp_tensor attn_sinks; /* (n_head) f32 sink logits (gpt-oss) */
    mp_tensor q_norm;     /* (head_dim) or (n_embd) */
    mp_tensor k_norm;     /* (head_dim) or (n_head_kv * head_dim) */
    mp_tensor ffn_norm;   /* (n_embd); glm4moe's post_attention_norm */
    /* dense FFN */
    mp_tensor ffn_gate, ffn_up; /* (n_embd -> n_ff) */
    mp_tensor ffn_down;         /* (n_ff -> n_embd) */
    /* MoE */
    mp_tensor ffn_gate_inp;     /* router (n_embd -> n_expert), f32 */
    mp_tensor ffn_gate_exps, ffn_up_exps; /* (n_embd -> n_ff_exp) x n_expert */
    mp_tensor ffn_down_exps;              /* (n_ff_exp -> n_embd) x n_expert */
    /* a fused (n_embd -> 2 n_ff_exp) x n_expert tensor, rows [0, n_ff_exp) gate and
     * [n_ff_exp, 2 n_ff_exp) up; ffn_gate_exps / ffn_up_exps are then views of it */
    mp_tensor ffn_gate_up_exps;
    mp_tensor exp_probs_b;                /* (n_expert) f32 selection bias, optional */
    /* gpt-oss: router bias (n_expert), per-expert biases (n_ff_exp) x n_expert of
     * gate and up and (n_embd) x n_expert of down; f32, resident */
    mp_tensor ffn_gate_inp_b, ffn_gate_exps_b, ffn_up_exps_b, ffn_down_exps_b;
    mp_tensor ffn_gate_shexp, ffn_up_shexp; /* (n_embd -> n_ff_shexp) */
    mp_tensor ffn_down_shexp;               /* (n_ff_shexp -> n_embd) */
    /* qwen2moe: (n_embd) f32; the shared expert's output is scaled by
     * sigmoid(ffn_gate_inp_shexp . x) per token */
    mp_tensor ffn_gate_inp_shexp;
    /* deepseek2 MLA (wq above when there is no q LoRA) */
    mp_tensor wq_a;       /* (n_embd -> q_lora) */
    mp_tensor q_a_norm;   /* (q_lora) */
    mp_tensor wq_b;       /* (q_lora -> n_head * mla_dk) */
    mp_tensor wkv_a_mqa;  /* (n_embd -> kv_lora + n_rot): [latent | k_pe] */
    mp_tensor kv_a_norm;  /* (kv_lora) */
    mp_tensor wk_b;       /* (nope -> kv_lora) x n_head: absorbs W_UK into q */
    mp_tensor wv_b;       /* (kv_lora -> mla_dv) x n_head: latent output -> value heads */
    mp_tensor wkv_b;      /* (kv_lora -> n_head * (nope + mla_dv)), the older layout */
    /* Gated DeltaNet (recurrent): the layer has no KV cache. cache_idx:
     * its index among the KV layers, or among the recurrent layers. */
    bool recurrent;
    uint32_t cache_idx;
    mp_tensor ssm_qkv;    /* attn_qkv (n_embd -> conv_dim): [q | k | v] before the conv */
    mp_tensor ssm_z;      /* attn_gate (n_embd -> n_v d_state): the output gate z */
    /* qwen3next legacy ssm_in (n_embd -> conv_dim + n_v d_state): per k head
     * [q (S) | k (S) | v (r S) | z (r S)], r = n_v / n_k, instead of the two */
    mp_tensor ssm_in;
    mp_tensor ssm_ba;     /* qwen3next ssm_ba (n_embd -> 2 n_v): per k head [beta (r) | alpha (r)], r = n_v/n_k */
    mp_tensor ssm_beta, ssm_alpha; /* qwen35moe: (n_embd -> n_v) each */
    mp_tensor ssm_conv1d; /* (d_conv) x conv_dim f32 taps, oldest first */
    mp_tensor ssm_dt;     /* (n_v) f32 bias of alpha */
    mp_tensor ssm_a;      /* (n_v) f32 -exp(A_log): gate g = softplus(alpha + dt) * a */
    mp_tensor ssm_norm;   /* (d_state) f32 gated RMSNorm weight */
    mp_tensor ssm_out;    /* (n_v d_state -> n_embd) */
} mp_layer;


typedef struct mp_model {
    mp_gguf *gguf;        /* freed with the model when owns_gguf (a pack's embedded GGUF is the pack's) */
    bool owns_gguf;
    char *path;
    /* Absolute byte offset of gguf's image inside the file at path: 0 for a
     * GGUF, the embedded GGUF's offset for a pack (set by runtime/model_open).
     * A tensor's bytes are at gguf_base + info->offset in the file. */
    uint64_t gguf_base;
    /* Tensor infos bound when absent from gguf (a pack's expert tensors);
     * not owned, valid while the model lives. */
    const mp_gguf_tensor *extra;
    size_t n_extra;
    mp_hparams hp;
    mp_tensor tok_embd;   /* (n_embd) x n_vocab */
    mp_tensor output_norm;
    mp_tensor output;     /* (n_embd -> n_vocab); == tok_embd when tied */
    bool tied_output;
    mp_layer *layers;     /* n_layer */
} mp_model;


/* Opens and validates a model from a GGUF file (a .moepack is opened by the
 * runtime, runtime/model_open.h, which binds its embedded GGUF with
 * mp_model_bind). On failure err names the file and the key or tensor at
 * fault. */
int mp_model_load(mp_model **out, const char *path, mp_err *err);

typedef struct mp_model_load_opts {
    /* Do not map the file: every mp_tensor.data is NULL until the caller
     * loads what it needs (runtime/resident.c reads the resident tensors;
     * experts come through the expert cache). */
    bool no_mmap;
} mp_model_load_opts;
int mp_model_load_ex(mp_model **out, const char *path, const mp_model_load_opts *o, mp_err *err);
/* Binds a model to an already open GGUF (takes ownership of g, even on failure). */
int mp_model_from_gguf(mp_model **out, mp_gguf *g, mp_err *err);
/* Binds a model to g, which it frees with the model (even on failure) when
 * own_g. A tensor absent from g is looked up by name in extra[0, n_extra)
 * and bound with data == NULL (its bytes are elsewhere: a pack's expert
 * blocks); extra must stay valid while the model lives. */
int mp_model_bind(mp_model **out, mp_gguf *g, bool own_g, const mp_gguf_tensor *extra, size_t n_extra, mp_err *err);
void mp_model_free(mp_model *m); /* NULL-safe */

/* Byte accounting for `inspect` and the memory planner. */
typedef struct mp_model_sizes {
    uint64_t total_bytes;      /* all tensors */
    uint64_t expert_bytes;     /* routed-expert tensors */
    uint64_t resident_bytes;   /* everything else */
    uint64_t one_expert_bytes; /* gate + up + down of one expert (max over layers) */
    uint64_t total_params;
    uint64_t active_params;    /* per token: resident + n_expert_used experts per layer */
    uint64_t expert_params;
} mp_model_sizes;
void mp_model_sizes_get(const mp_model *m, mp_model_sizes *s);

/* True for a tensor of a NextN/MTP block (blk.N with N >= n_layer): the
 * engine never binds or loads those; packs leave them out. */
bool mp_model_tensor_skipped(const mp_model *m, const char *name);

/* Points the q/k/v views of a fused attn_qkv (and of its bias) at the fused
 * tensors' current data (after binding, or after the resident loader moved
 * them). No-op for a layer without wqkv. */
void mp_layer_bind_qkv_views(mp_layer *l);

/* True when the layer has routed experts. */
static inline bool mp_layer_is_moe(const mp_layer *l) { return l->ffn_gate_inp.info != NULL; }

#endif
