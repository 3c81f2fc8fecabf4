/* Quantised block formats and the dot/matmul kernels the forward pass uses.
 *
 * The kernel triad (as in ggml): for every supported weight type a readable
 * scalar reference, and AVX2 / AVX-512 versions picked at run time from
 * CPUID. tests/test_kernels.c compares every SIMD kernel with its reference
 * on random blocks at a named tolerance, and known-answer tests pin each
 * block layout.
 *
 * Matmul convention (ggml's): a weight matrix W of type wtype has nrows rows
 * of ncols elements (ncols = GGUF ne[0]); row r starts at byte
 * r * mp_row_size(wtype, ncols). Activations are float rows of ncols that are
 * first converted to the weight type's "activation type" (as ggml's
 * vec_dot_type): F32->F32, F16->F16, BF16->BF16, Q4_0/Q5_0/Q8_0->Q8_0,
 * Q5_1->Q8_1, Q2_K/Q3_K/Q4_K/Q5_K/Q6_K/IQ4_XS->Q8_K, IQ4_NL/MXFP4->Q8_0.
 * Supported weight types: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q2_K, Q3_K,
 * Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, MXFP4. */
#ifndef MP_KERNELS_H
#define MP_KERNELS_H

#include "common/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Block layouts (static_asserted in kernels/quants.c against ggml's sizes). */
#define MP_QK4_0 32
#define MP_QK8_0 32
#define MP_QK_K 256
#define MP_K_SCALE_SIZE 12
#define MP_QK4_NL 32
#define MP_QK_MXFP4 32
#define MP_QK5_0 32
#define MP_QK5_1 32
#define MP_QK8_1 32

typedef struct { uint16_t d; uint8_t qs[MP_QK4_0 / 2]; } mp_block_q4_0;        /* 18 B */
typedef struct { uint16_t d; int8_t qs[MP_QK8_0]; } mp_block_q8_0;             /* 34 B */
/* Q5_0 / Q5_1: 32 elements; the low 4 bits as Q4_0 (low nibbles elements
 * 0..15, high nibbles 16..31), the fifth bit of element j at bit j of the
 * little-endian uint32 qh. Q5_0: value d*(q-16); Q5_1: d*q + m, q in 0..31. */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[MP_QK5_0 / 2]; } mp_block_q5_0;          /* 22 B */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[MP_QK5_1 / 2]; } mp_block_q5_1;       /* 24 B */
/* Q8_1 (Q5_1's activation type): as Q8_0 plus s = fp16(d * sum(qs)). */
typedef struct { uint16_t d, s; int8_t qs[MP_QK8_1]; } mp_block_q8_1;                            /* 36 B */
typedef struct { uint16_t d, dmin; uint8_t scales[MP_K_SCALE_SIZE]; uint8_t qs[MP_QK_K / 2]; } mp_block_q4_K; /* 144 B */
typedef struct { uint16_t d, dmin; uint8_t scales[MP_K_SCALE_SIZE]; uint8_t qh[MP_QK_K / 8]; uint8_t qs[MP_QK_K / 2]; } mp_block_q5_K; /* 176 B */
typedef struct { uint8_t ql[MP_QK_K / 2]; uint8_t qh[MP_QK_K / 4]; int8_t scales[MP_QK_K / 16]; uint16_t d; } mp_block_q6_K; /* 210 B */
typedef struct { float d; int8_t qs[MP_QK_K]; int16_t bsums[MP_QK_K / 16]; } mp_block_q8_K; /* 292 B */
/* Q2_K: 16 sub-blocks of 16; scales[j] = scale (low nibble) | min (high nibble)
 * of sub-block j; element e is bits 2*((e%128)/32) of qs[32*(e/128) + e%32];
 * value d*scale*q - dmin*min, q in 0..3. */
typedef struct { uint8_t scales[MP_QK_K / 16]; uint8_t qs[MP_QK_K / 4]; uint16_t d, dmin; } mp_block_q2_K; /* 84 B */
/* Q3_K: as Q2_K's 2-bit qs, plus the third bit of element e at bit e/32 of
 * hmask[e%32] (set: q in 0..3, clear: q - 4); 16 signed 6-bit scales (stored
 * +32: low nibbles of sub-blocks 0-7 / 8-15 in scales[0..7] low / high
 * nibbles, top 2 bits of sub-block j at bit 2*(j/4) of scales[8 + j%4]);
 * value d*(scale-32)*q, q in -4..3. */
typedef struct { uint8_t hmask[MP_QK_K / 8]; uint8_t qs[MP_QK_K / 4]; uint8_t scales[12]; uint16_t d; } mp_block_q3_K; /* 110 B */
/* IQ4_NL: 32 elements, 4-bit indices into mp_kvalues_iq4nl (low nibbles
 * elements 0..15, high 16..31); value d*kvalues[idx]. */
typedef struct { uint16_t d; uint8_t qs[MP_QK4_NL / 2]; } mp_block_iq4_nl; /* 18 B */
/* IQ4_XS: 8 sub-blocks of 32 laid out as IQ4_NL blocks without their own d;
 * sub-block ib has the 6-bit scale (scales_l[ib/2] >> 4*(ib%2) & 15) |
 * ((scales_h >> 2*ib) & 3) << 4, stored +32; value d*(scale-32)*kvalues[idx]. */
typedef struct { uint16_t d; uint16_t scales_h; uint8_t scales_l[MP_QK_K / 64]; uint8_t qs[MP_QK_K / 2]; } mp_block_iq4_xs; /* 136 B */

/* MXFP4 (OCP microscaling FP4): 32 elements sharing one E8M0 exponent byte
 * e (stored FIRST), 4-bit E2M1 codes (low nibbles elements 0..15, high
 * 16..31); value mp_kvalues_mxfp4[code] * 2^(e-128), the table holding the
 * E2M1 values doubled (so the scale is half of E8M0's 2^(e-127)). */
typedef struct { uint8_t e; uint8_t qs[MP_QK_MXFP4 / 2]; } mp_block_mxfp4; /* 17 B */

/* The 16 non-linear levels of IQ4_NL / IQ4_XS (ggml's kvalues_iq4nl). */
extern const int8_t mp_kvalues_iq4nl[16];
/* E2M1 values times 2: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives
 * (ggml's kvalues_mxfp4). */
extern const int8_t mp_kvalues_mxfp4[16];

/* 2^(e-128) as a float, exactly (ggml's GGML_E8M0_TO_FP32_HALF: e = 0 and 1
 * are the denormals 2^-128 and 2^-127; e = 255 is 2^127, not NaN). */
static inline float mp_e8m0_half(uint8_t e)
{
    const uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

typedef enum mp_isa { MP_ISA_SCALAR = 0, MP_ISA_AVX2 = 1, MP_ISA_AVX512 = 2 } mp_isa;

/* Detects the CPU once (thread-safe, idempotent) and selects kernels. The
 * environment variable MP_ISA=scalar|avx2|avx512 caps the choice; the CMake
 * option MP_FORCE_SCALAR compiles the scalar path only. */
void mp_kernels_init(void);
mp_isa mp_kernels_isa(void);          /* the ISA in use */
const char *mp_isa_name(mp_isa isa);
/* Forces an ISA (tests use it to run each path); returns false if the CPU or
 * the build lacks it. */
bool mp_kernels_set_isa(mp_isa isa);

/* True for the weight types the matmul supports. */
bool mp_type_supported(uint32_t wtype);
/* Activation type for a weight type (see above); MP_TYPE_COUNT if unsupported. */
uint32_t mp_act_type(uint32_t wtype);
/* Bytes of one activation row of ncols for weight type wtype. */
size_t mp_act_row_size(uint32_t wtype, int64_t ncols);

/* Reference dequantisation of n elements (n a multiple of the block size).
 * Supports every type in mp_type_supported() plus Q8_K. Returns MP_OK or
 * MP_E_UNSUPPORTED. */
int mp_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Reference quantisation (round to nearest, ggml's *_ref algorithms) of n
 * elements; supports F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
 * IQ4_NL, IQ4_XS, MXFP4, Q5_0, Q5_1, Q8_K. (IQ4_NL follows quantize_row_iq4_nl_ref: no scale
 * search; llama-quantize's IQ4_NL searches 15 scales, as IQ4_XS does here.)
 * Returns MP_OK or MP_E_UNSUPPORTED. */
int mp_quantize_row_ref(uint32_t type, const float *src, void *dst, int64_t n);

/* Converts one float activation row to the activation type of wtype
 * (dispatched; bit-identical to the reference). */
void mp_quantize_act(uint32_t wtype, const float *x, void *xq, int64_t ncols);
/* Same with a given ISA's quantiser (tests, benchmarks); every ISA writes the
 * same bytes. Returns MP_OK, or MP_E_UNSUPPORTED if the CPU/build lacks isa or
 * wtype is unsupported. Note: the Q8_0 activation quantiser is ggml-cpu's x86
 * one (d = amax/127, round half to even), not quantize_row_q8_0_ref. */
int mp_quantize_act_isa(uint32_t wtype, mp_isa isa, const float *x, void *xq, int64_t ncols);

/* s = dot(w row, activation row) for weight type wtype over n elements. */
typedef void (*mp_vec_dot_fn)(int64_t n, float *s, const void *w, const void *xq);
mp_vec_dot_fn mp_get_vec_dot(uint32_t wtype);             /* dispatched */
mp_vec_dot_fn mp_get_vec_dot_isa(uint32_t wtype, mp_isa isa); /* NULL if not built/supported */

/* Y[t * ldy + r] = dot(W row r, Xq row t) for r in [r0, r1), t in [0, T).
 * Xq holds T activation rows of mp_act_row_size(wtype, ncols) bytes each.
 * Callers split [0, nrows) across threads; this function is thread-safe. */
void mp_matmul_rows(uint32_t wtype, const void *W, int64_t ncols, int64_t r0, int64_t r1,
                    const void *Xq, int64_t T, float *Y, int64_t ldy);

/* Summation orders of mp_matmul_rows_ex, named after the llama.cpp CPU op
 * whose float results they reproduce bit for bit (on the x86 build llama.cpp
 * picks for this CPU):
 *   MP_MM_VEC_DOT: vec_dot per (row, token), whatever T: ggml's MUL_MAT and
 *                  MUL_MAT_ID over one token (the last layer's FFN when only
 *                  the last token's logits are wanted);
 *   MP_MM_GEMM:    ggml's MUL_MAT (dense weights): over T >= 2 tokens
 *                  llamafile's tinyBLAS takes F32/F16/BF16 (one accumulator
 *                  per output, 16 or 32 elements per step) and Q8_0/Q4_0/
 *                  IQ4_NL (one 8-lane accumulator over 32-element blocks)
 *                  when nrows % 4 == 0 (F32/F16/BF16 only) and ncols divides
 *                  into its steps; otherwise the vec_dot order. For Q8_0/Q4_0
 *                  the two orders are the same; IQ4_NL's vec_dot alternates
 *                  two accumulators;
 *   MP_MM_ID:      ggml's MUL_MAT_ID for one expert's T tokens: the vec_dot
 *                  order.
 * In MP_MM_GEMM and MP_MM_ID, IQ4_XS over T >= 8 tokens with nrows % 8 == 0
 * takes ggml's IQ panel order (ggml-cpu/iqp.cpp): one float per output,
 * fma((float)block_sum, d * y.d, acc) per super-block. */
enum { MP_MM_VEC_DOT = 0, MP_MM_GEMM = 1, MP_MM_ID = 2 };

/* mp_matmul_rows with a summation order (above). The GEMM order depends on
 * the whole matrix (nrows, the full row count, decides whether tinyBLAS
 * applies), so callers pass the full nrows; rows [r0, r1) are computed. */
void mp_matmul_rows_ex(uint32_t wtype, const void *W, int64_t ncols, int64_t nrows, int64_t r0, int64_t r1,
                       const void *Xq, int64_t T, float *Y, int64_t ldy, int mode);

/* ---- Interleaved ("repacked") row layout (kernels/repack.c) ----
 * Weights of a supported type may be stored with rows in groups of
 * MP_RP_ROWS: group g (rows 4g..4g+3) occupies the same bytes as those four
 * rows (4 * row size from 4g * row size), holding block i of all four rows
 * side by side (mp_block_<type>x4, below); rows past the last whole group stay
 * in the plain layout at their usual offsets. The size is unchanged, so a
 * memory plan, a cache slot and a file offset do not change. The kernels read
 * one contiguous stream per group and reuse each activation block for four
 * rows, and compute every output with the same operations in the same order
 * as the plain layout's vec_dot: results are bit-identical (tests/test_repack.c). */
#define MP_RP_ROWS 4

/* Q4_0: the four fp16 scales, then two 32-byte row pairs: byte k of pair p
 * holds element k of row 2p (low nibble) and of row 2p+1 (high nibble),
 * elements 0..31 in order (so one mask or shift yields a row's 32 values). */
typedef struct { uint16_t d[4]; uint8_t qs[64]; } mp_block_q4_0x4; /* 72 B = 4 x 18 */
/* Q8_0: the four scales, then the four rows' 32 quants. */
typedef struct { uint16_t d[4]; int8_t qs[4][32]; } mp_block_q8_0x4; /* 136 B = 4 x 34 */
/* Q4_K: the four d, the four dmin, the three 32-bit words of each row's 12
 * packed scale bytes gathered by word (w[k][r] = bytes 4k..4k+3 of row r, so
 * one 128-bit op unpacks a word of all four rows), then qs in 32-byte chunks
 * c = 0..3, row by row: qs[c][r] = bytes 32c..32c+31 of row r's qs (so
 * qs[c][2p..2p+1] is one 512-bit load of a row pair, x86_repack512.h). */
typedef struct { uint16_t d[4], dmin[4]; uint32_t w[3][4]; uint8_t qs[4][4][32]; } mp_block_q4_Kx4; /* 576 B = 4 x 144 */
/* Q5_K: as Q4_Kx4, with the four rows' 32-byte qh after the scale words. */
typedef struct { uint16_t d[4], dmin[4]; uint32_t w[3][4]; uint8_t qh[4][32]; uint8_t qs[4][4][32]; } mp_block_q5_Kx4; /* 704 B = 4 x 176 */
/* Q6_K: the four d, the four rows' 16 scales, then per row pair q (rows 2q,
 * 2q+1) their ql and qh in 32-byte chunks, the pair's two rows side by side:
 * p[q].ql[c][j] = bytes 32c..32c+31 of row 2q+j's ql, p[q].qh[h][j] = bytes
 * 32h..32h+31 of its qh. One 512-bit load takes a chunk of both rows, and the
 * kernels read a group block front to back (rows' ql and qh far apart made
 * the hardware prefetcher lose: 13 instead of 31 GB/s at one token). */
typedef struct { uint8_t ql[4][2][32]; uint8_t qh[2][2][32]; } mp_q6_K_pair; /* 384 B */
typedef struct { uint16_t d[4]; int8_t scales[4][16]; mp_q6_K_pair p[2]; } mp_block_q6_Kx4; /* 840 B = 4 x 210 */

/* True when wtype has interleaved kernels in the ISA in use (only then is
 * repacking a tensor worth it; the matmul accepts the layout whatever the ISA). */
bool mp_repack_supported(uint32_t wtype);
/* Whether the interleaved layout is also faster than the plain one for one
 * token (decode) with the kernels in use: the rule for experts, which the
 * decode reads one token at a time. */
bool mp_repack_pays_decode(uint32_t wtype);
/* Rewrites nrows rows of ncols (plain layout, row r at r * row size) into the
 * interleaved layout in place, or back (mp_unrepack_rows). Returns MP_OK,
 * MP_E_UNSUPPORTED for a type without a layout, or MP_E_NOMEM (a one-group
 * scratch buffer). */
int mp_repack_rows(uint32_t wtype, void *data, int64_t nrows, int64_t ncols);
int mp_unrepack_rows(uint32_t wtype, void *data, int64_t nrows, int64_t ncols);
/* Scalar reference over the interleaved layout: each row gathered back into
 * plain blocks and dotted with the scalar reference vec_dot; Y as
 * mp_matmul_rows, all nrows rows. */
void mp_repack_matmul_ref(uint32_t wtype, const void *W, int64_t ncols, int64_t nrows, const void *Xq, int64_t T,
                          float *Y, int64_t ldy);

/* mp_matmul_rows_ex mode flag: W is in the interleaved layout (r0 must be a
 * multiple of MP_RP_ROWS or at/after the plain tail). Results equal those of
 * the plain layout in the same mode, bit for bit. */
#define MP_MM_REPACKED 0x100

#endif
