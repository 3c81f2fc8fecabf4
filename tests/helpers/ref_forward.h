/* An independent reference forward pass for the test suite.
 *
 * Written from the model semantics (llama.cpp's llama / qwen3moe / olmoe
 * graphs), sharing no code with src/model/: it opens a GGUF with the project's
 * reader, dequantises every weight with mp_dequantize_row() (stored as float,
 * which holds the dequantised values exactly) and does every arithmetic step in
 * double, one token at a time, with a plain KV cache. It is slow and simple on
 * purpose: the tests compare the engine's logits against it.
 *
 * Supported: general.architecture = llama (dense, or Mixtral-style with
 * <arch>.expert_count), qwen3moe, olmoe, deepseek2, glm4moe, qwen2moe and
 * gpt-oss (attention sinks, the sliding window on the pattern's layers, q/k/v/o,
 * router and expert biases, the clamped SwiGLU, top-k logits then softmax over
 * the k, YaRN). Any weight type mp_dequantize_row() supports.
 *
 * Semantics implemented (see the .c for the details):
 *   RMSNorm (eps = <arch>.attention.layer_norm_rms_epsilon); RoPE normal
 *   (adjacent pairs) for llama, NEOX (split halves) for qwen3moe/olmoe, with
 *   <arch>.rope.freq_base and <arch>.rope.dimension_count; GQA; q/k RMSNorm per
 *   head (qwen3moe) or over the full projection width (olmoe); attention scale
 *   1/sqrt(head_dim); router softmax -> top-k, weights renormalised for llama
 *   and qwen3moe, not for olmoe; SwiGLU experts / dense FFN; output head
 *   output.weight or, when absent, token_embd.weight (tied). */
#ifndef MP_TEST_REF_FORWARD_H
#define MP_TEST_REF_FORWARD_H

#include "common/err.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mp_ref_model mp_ref_model;

typedef struct mp_ref_opts {
    /* false (the default): K and V are rounded to IEEE half as they enter
     * the KV cache, as in llama.cpp's default F16 cache (its 64-token
     * prefill then agrees with this reference to ~1e-6 of max|logit|; with
     * a double cache the difference is ~1.5e-4). true: the cache holds the
     * exact double values. Q is never rounded. */
    bool kv_double;
    /* false (the default): before each matrix product the activation row is
     * rounded to what llama.cpp's CPU backend multiplies with for that
     * weight type: F16/BF16 for F16/BF16 weights, Q8_0 blocks for
     * Q4_0/Q8_0/IQ4_NL, Q8_K blocks for Q2_K/Q3_K/Q4_K/Q5_K/Q6_K/IQ4_XS (F32
     * weights: float). This rounding is
     * part of llama.cpp's output (up to ~2e-2 of max|logit| on random Q8_0
     * models); the products themselves are still exact sums in double.
     * true: activations stay double. */
    bool act_exact;
    /* Maximum context (tokens); 0 means 4096. */
    int n_ctx;
} mp_ref_opts;

/* Loads path (every tensor dequantised into memory; the file is closed
 * before returning). opts may be NULL (defaults: llama.cpp's rounding points, n_ctx 4096).
 * Returns MP_OK, or the reader's / dequantiser's status with err naming the
 * file, key or tensor; MP_E_UNSUPPORTED for an unknown architecture or
 * feature (e.g. rope scaling other than linear). */
int mp_ref_model_load(mp_ref_model **out, const char *path, const mp_ref_opts *opts, mp_err *err);
void mp_ref_model_free(mp_ref_model *m); /* NULL-safe */

int mp_ref_n_vocab(const mp_ref_model *m);
int mp_ref_n_past(const mp_ref_model *m); /* tokens in the KV cache */
const char *mp_ref_arch(const mp_ref_model *m);

/* Empties the KV cache. */
void mp_ref_reset(mp_ref_model *m);

/* Evaluates n tokens after the ones already in the cache (positions n_past
 * .. n_past+n-1) one at a time. logits_out (may be NULL) receives the last
 * token's n_vocab logits, or all n positions' (n * n_vocab, position-major)
 * when all_positions is set. Returns MP_OK, MP_E_INVAL (bad id or n),
 * MP_E_RANGE (context full). */
int mp_ref_eval(mp_ref_model *m, const int32_t *ids, int n, float *logits_out, int all_positions,
                mp_err *err);

/* Index of the largest logit; the first one on ties (llama_logits' rule). */
int mp_ref_argmax(const float *logits, int n_vocab);

/* Greedy generation as llama.cpp's llama_logits does it: starts from an
 * empty cache, evaluates ids, then gen_out[0] = argmax of the last prompt
 * logits and gen_out[i] = argmax after feeding gen_out[i-1], for n_gen ids.
 * prompt_logits (may be NULL) receives the last prompt position's logits. */
int mp_ref_generate(mp_ref_model *m, const int32_t *ids, int n, int n_gen, int32_t *gen_out,
                    float *prompt_logits, mp_err *err);

/* One-shot convenience: load path with default options (llama.cpp's rounding points), evaluate ids and
 * write the last position's logits (n_vocab floats) or all positions'
 * (n * n_vocab) into logits_out, free. */
int mp_ref_forward(const char *gguf_path, const int32_t *ids, int n, float *logits_out,
                   int all_positions, mp_err *err);

#endif
