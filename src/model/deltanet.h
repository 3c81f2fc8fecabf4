/* The Gated DeltaNet core of qwen3next / qwen35moe recurrent layers (llama.cpp
 * src/models/qwen3next.cpp, qwen35moe.cpp, delta-net-base.cpp and the CPU ops
 * ssm_conv, l2_norm (as rms_norm + scale) and gated_delta_net), between the
 * input projections and ssm_out, which forward.c runs as matmuls.
 *
 * For T tokens of one sequence:
 *   x      = causal depthwise conv (ssm_d_conv taps, the conv state holding
 *            the previous d_conv - 1 inputs) of qkv, then SiLU    (T, conv_dim)
 *   q, k   = L2-normalised heads of x[0, n_k S) and x[n_k S, 2 n_k S)
 *   v      = heads of x[2 n_k S, conv_dim)
 *   beta   = sigmoid(b), g = softplus(alpha + ssm_dt) * ssm_a      (T, n_v)
 *   per v head h, token t, with M the S x S state (M[j][i] = S[i][j]):
 *      M *= exp(g);  d[j] = (v[j] - M[j] . k) * beta;  M[j] += k d[j];
 *      o[j] = (M[j] . q) / sqrt(S)
 *   out    = rmsnorm(o_h, ssm_norm) * silu(z_h) per head          (T, n_v S)
 * The recurrence runs in one pass over the chunk per head (llama.cpp's CPU
 * build always takes its fused gated_delta_net op, which does this for
 * decode and prefill alike), heads in parallel; conv, SiLU, norms and gates
 * run over the whole chunk. Every reduction is in ggml's order, so the
 * result is bit-identical to llama.cpp's. */
#ifndef MP_DELTANET_H
#define MP_DELTANET_H

#include "common/threadpool.h"
#include "model/model.h"

typedef struct mp_gdn_io {
    const mp_hparams *hp;
    const mp_layer *l;
    int T;
    const float *qkv;   /* (T, conv_dim) attn_qkv output */
    float *z;           /* (T, n_v S) attn_gate output (overwritten) */
    const float *b;     /* (T, ldba) beta logits: ssm_ba (qwen3next layout) or ssm_beta */
    const float *a;     /* (T, ldba) alpha: NULL with ssm_ba (then taken from b) */
    int ldba;           /* row stride of b and a */
    float *conv_state;  /* conv_dim x (d_conv - 1), per channel oldest first; updated */
    float *ssm_state;   /* n_v x S x S; updated */
    float *x;           /* scratch (T, conv_dim) */
    float *gb;          /* scratch (T, 2 n_v): g, then beta */
    const float *ones;  /* conv_dim ones (SiLU through the SwiGLU kernel) */
    float *out;         /* (T, n_v S) result, input of ssm_out */
} mp_gdn_io;

/* Runs the core for io->T tokens on pool. */
void mp_gdn_forward(mp_pool *pool, const mp_gdn_io *io);

#endif
