/* Private to src/kernels: the per-ISA kernel table the dispatcher fills, and
 * the scalar reference kernels the SIMD files fall back on. */
#ifndef MP_KERNELS_INTERNAL_H
#define MP_KERNELS_INTERNAL_H

#include "kernels/kernels.h"

/* Converts n floats to an activation row (layout of mp_act_type()). */
typedef void (*mp_quant_act_fn)(const float *x, void *xq, int64_t n);

/* Register-tiled block of MP_TILE_R weight rows x C activation rows (C is
 * fixed per function, 1..MP_TILE_C): Y[t * ldy + r] = dot(W row r, X row t).
 * Row r of W starts at W + r * wstride bytes, row t of X at X + t * xstride. */
typedef void (*mp_tile_fn)(int64_t n, const void *W, size_t wstride, const void *X,
                           size_t xstride, float *Y, int64_t ldy);

#define MP_ATTN_GROUP_MAXD 1024 /* head dims attend_group takes (its scratch is on the stack, sized by them) */
#define MP_PANEL_MIN_T 8 /* GGML_IQP_MIN_BATCH(_ID) */
#define MP_TILE_R 4
#define MP_TILE_C 4

typedef struct mp_kernel_table {
    mp_vec_dot_fn vec_dot[MP_TYPE_COUNT];    /* by weight type */
    mp_quant_act_fn quant_act[MP_TYPE_COUNT]; /* by activation type (F32, F16, BF16, Q8_0, Q8_1, Q8_K) */
    mp_tile_fn tile[MP_TYPE_COUNT][MP_TILE_C]; /* by weight type, [C - 1]; NULL: use vec_dot */
    /* GEMM order (mp_matmul_rows_ex MP_MM_GEMM; llamafile tinyBLAS): tiles of
     * MP_TILE_R rows x C tokens and a 1 x 1 kernel for leftover rows, usable
     * when ncols % gemm_step == 0; NULL: the type has no such order. */
    mp_tile_fn gemm[MP_TYPE_COUNT][MP_TILE_C];
    mp_tile_fn gemm1[MP_TYPE_COUNT];
    int gemm_step[MP_TYPE_COUNT];
    /* ggml's IQ panel GEMM order (ggml-cpu/iqp.cpp; MUL_MAT and, per expert,
     * MUL_MAT_ID over T >= MP_PANEL_MIN_T tokens when nrows % 8 == 0):
     * Y[t * ldy + r] for rows [0, nr) of W, all T rows of X; NULL: the type
     * has no such order. */
    void (*panel[MP_TYPE_COUNT])(int64_t ncols, const void *W, size_t ws, int64_t nr, const void *X, size_t xs,
                                 int64_t T, float *Y, int64_t ldy);
    /* Interleaved layout (repack.c): one group of MP_RP_ROWS rows (W at the
     * group, ws unused) x C tokens, in the plain vec_dot's order; NULL: none. */
    mp_tile_fn rp[MP_TYPE_COUNT][MP_TILE_C];
    /* true where tinyBLAS takes the type whatever nrows (its quantised
     * kernels: IQ4_NL); false: nrows % 4 == 0 only (F32/F16/BF16) */
    bool gemm_any_rows[MP_TYPE_COUNT];

    /* Float ops of ops.c whose SIMD versions must give the scalar bits
     * (every entry is set by mp_ops_fill_scalar; AVX2 replaces them). */
    void (*f16_to_f32_row)(const uint16_t *x, float *y, int64_t n);
    void (*f32_to_f16_row)(const float *x, uint16_t *y, int64_t n);
    void (*swiglu)(float *g, const float *u, int64_t n);
    /* y = exp(x - max) for 16 values, their sum added to *sum (softmax step) */
    void (*exp_sum16)(float *y, const float *x, float max, double *sum);
    /* The f16 accumulator of ggml's one_chunk loop, kept in f32, over n keys
     * in a row: for key i (value row v + i * v_stride), acc = fp16(acc *
     * ms[i]) when ms[i] != 1 (ggml_vec_scale_f16 when the max rose; a scale
     * by 1 leaves f16 values as they are), then acc = fp16(fma(v_i, vs[i],
     * acc)) (ggml_vec_mad_f16); dv values. */
    void (*acc16_run)(float *acc, const uint16_t *v, int64_t v_stride, const float *ms, const float *vs, int n,
                      int64_t dv);
    /* tiled flash attention for one query (mp_attend_f16_masked): keys
     * before j0 masked, sink NULL or the head's sink; scores: 64 floats;
     * NULL: ops.c's loop */
    void (*attend_tiled)(float *out, const float *q, const uint16_t *k, int64_t k_stride, const uint16_t *v,
                         int64_t v_stride, int n_kv, int dk, int dv, float scale, int j0, const float *sink,
                         float *scores);
    /* the same for n_q queries that share keys, values and window (a GQA
     * group; mp_attend_f16_group): query r at q + r * q_stride, its output
     * at out + r * out_stride, its sink sinks[r] (sinks may be NULL);
     * dk, dv <= MP_ATTN_GROUP_MAXD; NULL: one query at a time */
    void (*attend_group)(float *out, int64_t out_stride, const float *q, int64_t q_stride, int n_q,
                         const uint16_t *k, int64_t k_stride, const uint16_t *v, int64_t v_stride, int n_kv, int dk,
                         int dv, float scale, int j0, const float *sinks);
} mp_kernel_table;

/* The sink joins the running max *M and sum *S of a finished (unnormalised)
 * accumulator out[dv] (ops.c; ggml's order, shared by the SIMD kernels). */
void mp_attn_apply_sink(float *out, float *M, float *S, float sink, int dv);

/* The table in use (initialises the kernels on first use). */
const mp_kernel_table *mp_kernels_table(void);

/* Rows [MP_RP_ROWS * g0, MP_RP_ROWS * g1) of an interleaved W (repack.c). */
void mp_repack_matmul_groups(const mp_kernel_table *tb, uint32_t wtype, const void *W, int64_t ncols, int64_t g0,
                             int64_t g1, const void *Xq, int64_t T, float *Y, int64_t ldy);

/* Each fills the entries its ISA implements and leaves the rest untouched, so
 * the dispatcher fills scalar first, then AVX2, then AVX-512. */
void mp_kernels_fill_scalar(mp_kernel_table *t);
void mp_kernels_fill_avx2(mp_kernel_table *t);
void mp_kernels_fill_avx512(mp_kernel_table *t);
void mp_ops_fill_scalar(mp_kernel_table *t); /* ops.c */
void mp_ops_fill_avx2(mp_kernel_table *t);   /* ops_avx2.c */

/* Activation quantisers (scalar references). Q8_0 follows ggml-cpu's x86
 * quantize_row_q8_0 (d = amax/127, q = round-half-even(x * 127/amax)), which
 * is what llama.cpp uses for activations on these CPUs; Q8_K is ggml's
 * quantize_row_q8_K_ref. */
void mp_quant_act_q8_0_ref(const float *x, void *xq, int64_t n);
void mp_quant_act_q8_K_ref(const float *x, void *xq, int64_t n);
void mp_quant_act_q8_1_ref(const float *x, void *xq, int64_t n); /* Q8_0's bytes plus s = d * sum */

/* a * b rounded to float on its own: keeps the compiler from fusing the
 * product into a following add (ggml's scalar tails do not fuse). */
static inline float mp_mul_nofma(float a, float b)
{
    float p = a * b;
    __asm__("" : "+x"(p));
    return p;
}

/* ggml's nearest_int: round half to even for |f| < 2^22. */
static inline int mp_nearest_int(float f)
{
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* Unpacks the 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. */
static inline void mp_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif
