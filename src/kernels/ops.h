/* Small float ops of the forward pass, with ggml's numerics where they affect
 * parity (RMSNorm sums in double, iterative RoPE angles and its FMA-contracted
 * rotation, softmax sums in double, the AVX-512 build's vector exp in SwiGLU
 * and flash attention). Bit-identical to llama.cpp's CPU backend as loaded on
 * an AVX-512 machine (its zen4 / sapphirerapids builds); on others the exp
 * differs in the last bit now and then. Rows are contiguous float arrays. */
#ifndef MP_OPS_H
#define MP_OPS_H

#include <stdint.h>

/* y = x / sqrt(mean(x^2) + eps) * w   (w may be NULL: no weight). y may alias x. */
void mp_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);

/* Rotates the first n_rot dims of each of n_heads heads (stride head_dim) of
 * x in place, for position pos. neox: pairs (i, i + n_rot/2); else (2i, 2i+1). */
void mp_rope(float *x, int n_heads, int head_dim, int n_rot, int pos, float freq_base, float freq_scale,
             int neox);

/* In-place softmax over n values (sum in double, like ggml). */
void mp_softmax(float *x, int64_t n);

/* g[i] = silu(g[i]) * u[i], as ggml_vec_swiglu_f32: whole 16-wide blocks
 * with ggml's vector exp (ggml_v_expf), the tail with expf. */
void mp_swiglu(float *g, const float *u, int64_t n);

/* gpt-oss's clamped SwiGLU, as ggml_swiglu_oai (alpha 1.702, limit 7):
 * x = min(g, 7), y = clamp(u, -7, 7), g = x / (1 + expf(-1.702 x)) * (y + 1). */
void mp_swiglu_oai(float *g, const float *u, int64_t n);

/* f16 row conversions (F16C when available). */
void mp_f16_to_f32_row(const uint16_t *x, float *y, int64_t n);
void mp_f32_to_f16_row(const float *x, uint16_t *y, int64_t n);

/* Window and sink of the three attentions below (gpt-oss): keys before j0
 * are masked (a sliding window: -INF in ggml's mask, so skipped), and sink,
 * when not NULL, is the head's sink logit: it joins the softmax's running
 * max and denominator after the keys, unscaled and with no value, as ggml's
 * flash attention applies attention sinks. j0 = 0 and sink = NULL: plain
 * causal attention. */
typedef struct mp_attn_mask {
    int j0;
    const float *sink;
} mp_attn_mask;

/* Attention for one query head over n_kv cached positions:
 *   out[dv] = sum_j softmax_j(scale * q.k_j) * v_j
 * k rows (f16) are k_stride elements apart, v rows (f16) v_stride apart.
 * Numerics of ggml's tiled flash attention (batches of 64 or more queries):
 * keys in tiles of 64, q.k one FMA chain per key, online softmax per tile
 * with ggml's vector exp summed 16 at a time, values as FMA chains.
 * scores: scratch of 64 floats; kbuf: scratch of max(dk, dv) floats. */
void mp_attend_f16(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                   int64_t v_stride, int n_kv, int dk, int dv, float scale, float *scores, float *kbuf);
void mp_attend_f16_masked(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                          int64_t v_stride, int n_kv, int dk, int dv, float scale, const mp_attn_mask *mask,
                          float *scores, float *kbuf);

/* mp_attend_f16_masked for n_q query heads that share one key/value head
 * and one window (a GQA group of one token): query r at q + r * q_stride,
 * its output at out + r * out_stride, its sink at sinks[r] (sinks NULL:
 * none), keys before j0 masked. The same bits as n_q calls of
 * mp_attend_f16_masked; the SIMD builds read and convert each key and value
 * row once for the whole group and run the queries' FMA chains side by side.
 * scores, kbuf: as mp_attend_f16_masked (the one-query fallback's). */
void mp_attend_f16_group(float *out, int64_t out_stride, const float *q, int64_t q_stride, int n_q, const uint16_t *k,
                         int64_t k_stride, const uint16_t *v, int64_t v_stride, int n_kv, int dk, int dv, float scale,
                         int j0, const float *sinks, float *scores, float *kbuf);

/* The same attention with llama.cpp's CPU flash-attention numerics for small
 * batches (fewer than 64 queries, and decode): q rounded to f16, online
 * softmax, and the value accumulator rounded to f16 after every update.
 * qbuf, kbuf: dk floats; acc16: dv uint16. */
void mp_attend_f16_acc16(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                         int64_t v_stride, int n_kv, int dk, int dv, float scale, float *qbuf, float *kbuf,
                         uint16_t *acc16);
void mp_attend_f16_acc16_masked(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                                int64_t v_stride, int n_kv, int dk, int dv, float scale, const mp_attn_mask *mask,
                                float *qbuf, float *kbuf, uint16_t *acc16);

/* Decode (one query) over a key view of n_view >= 512 positions, as ggml's
 * split-KV flash attention with n_chunks threads: the view cut into
 * n_chunks ranges of ceil(n_view / n_chunks) keys, each reduced as
 * mp_attend_f16_acc16 (keys >= n_kv are masked), then the partial results
 * merged in range order. part: scratch of dv floats; others as above. */
void mp_attend_f16_split(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                         int64_t v_stride, int n_kv, int n_view, int n_chunks, int dk, int dv, float scale,
                         float *qbuf, float *kbuf, uint16_t *acc16, float *part);
/* With a window and sink: the sink joins the first range's partial result
 * (as ggml applies it on the chunk that starts at key 0). */
void mp_attend_f16_split_masked(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                                int64_t v_stride, int n_kv, int n_view, int n_chunks, int dk, int dv, float scale,
                                const mp_attn_mask *mask, float *qbuf, float *kbuf, uint16_t *acc16, float *part);

#endif
