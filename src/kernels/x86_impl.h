/* 256-bit x86 kernels, compiled twice: by kernels_avx2.c (AVX2 + FMA + F16C)
 * and by kernels_avx512.c (adds AVX512VL-VNNI for the int8 dots). The file
 * that includes this defines MP_SFX (the name suffix) and MP_VNNI (0 or 1).
 *
 * Integer dots: the int8 x int8 products of Q8_0/Q4_0 use either the sign
 * trick (|w| * sign(x, w), so one operand is unsigned) or an unsigned weight
 * with a per-token correction (q - 8 for Q4_0, w ^ 0x80 for Q8_0 on VNNI).
 * Without VNNI, maddubs saturates int16 pair sums, which is safe here because
 * one operand is at most 128 and activations are in [-127, 127]. */
#ifndef MP_SFX
#error "define MP_SFX and MP_VNNI before including x86_impl.h"
#endif

#include <immintrin.h>

#define MP_CAT2(a, b) a##_##b
#define MP_CAT(a, b) MP_CAT2(a, b)
#define FN(name) MP_CAT(name, MP_SFX)

static inline float FN(h2f)(uint16_t h) { return _cvtsh_ss(h); }

static inline float FN(hsum_ps)(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int FN(hsum_epi32)(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* acc + sum of 4 adjacent u8 * s8 products per int32 lane. Without VNNI the
 * int16 pair sums saturate: callers keep |u * s| pair sums below 32768. */
static inline __m256i FN(dpbusd)(__m256i acc, __m256i u, __m256i s)
{
#if MP_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

/* 32 Q4_0 nibbles (16 bytes) -> 32 bytes 0..15, low nibbles first. */
static inline __m256i FN(q4_unpack)(const uint8_t *qs)
{
    const __m128i raw = _mm_loadu_si128((const __m128i *)qs);
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/* ------------------------------------------------------------ float dots
 * Summation orders of ggml-cpu's AVX2 build (vec.cpp, simd-mappings.h), so
 * that results are bit-identical to llama.cpp on AVX2-only CPUs:
 *   F32/F16: 4 accumulators of 8 lanes over 32-element steps (fma), folded
 *     (a0 + a2) + (a1 + a3), then lo + hi halves and two pairwise hadds;
 *     the n % 32 tail is added one element at a time (F32: float sum, see
 *     dot_f32; F16: the sum is a double, rounded to float at the end).
 *   BF16: 4 accumulators, fma, folded (a0 + a2) + (a1 + a3), then
 *     hi + lo, (0 + 2, 1 + 3), sum; tail and total in double. */

static inline float FN(hsum_hadd_ps)(__m256 v)
{
    const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t1 = _mm_hadd_ps(t0, t0);
    return _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
}

static inline __m256 FN(ld_f16)(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline __m256 FN(ld_bf16)(const uint16_t *p)
{
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* Sum of 4 accumulators over the first n & ~31 elements. */
#define MP_DOT4_256(LDA, LDB)                                                                           __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;                           for (; i + 32 <= n; i += 32) {                                                                          acc0 = _mm256_fmadd_ps(LDA(a + i), LDB(b + i), acc0);                                               acc1 = _mm256_fmadd_ps(LDA(a + i + 8), LDB(b + i + 8), acc1);                                       acc2 = _mm256_fmadd_ps(LDA(a + i + 16), LDB(b + i + 16), acc2);                                     acc3 = _mm256_fmadd_ps(LDA(a + i + 24), LDB(b + i + 24), acc3);                                 }                                                                                                   const __m256 fold = _mm256_add_ps(_mm256_add_ps(acc0, acc2), _mm256_add_ps(acc1, acc3));

static void FN(dot_f32)(int64_t n, float *s, const void *w, const void *xq)
{
    const float *a = w, *b = xq;
    int64_t i = 0;
    MP_DOT4_256(_mm256_loadu_ps, _mm256_loadu_ps)
    float sum = FN(hsum_hadd_ps)(fold);
    /* llama.cpp's compiler vectorised the tail's products in blocks of 8 and
     * 4 (each product rounded, then added in order) and fused the last n % 4 */
    for (; i < (n & ~(int64_t)3); i++) sum += mp_mul_nofma(a[i], b[i]);
    for (; i < n; i++) sum = fmaf(a[i], b[i], sum);
    *s = sum;
}

static void FN(dot_f16)(int64_t n, float *s, const void *w, const void *xq)
{
    const uint16_t *a = w, *b = xq;
    int64_t i = 0;
    MP_DOT4_256(FN(ld_f16), FN(ld_f16))
    double sum = FN(hsum_hadd_ps)(fold);
    for (; i < n; i++) sum += (double)(mp_fp16_to_fp32(a[i]) * mp_fp16_to_fp32(b[i]));
    *s = (float)sum;
}

static void FN(dot_bf16)(int64_t n, float *s, const void *w, const void *xq)
{
    const uint16_t *a = w, *b = xq;
    int64_t i = 0;
    MP_DOT4_256(FN(ld_bf16), FN(ld_bf16))
    double sum = FN(hsum_ps)(fold);
    for (; i < n; i++) sum += (double)(mp_bf16_to_fp32(a[i]) * mp_bf16_to_fp32(b[i]));
    *s = (float)sum;
}
#undef MP_DOT4_256

/* GEMM order (llamafile tinyBLAS, AVX2 build, as ggml's MUL_MAT over T >= 2
 * tokens): one 8-lane accumulator per output, fma over 8-element steps in
 * order, then hsum_ps. Tiles of MP_TILE_R rows x C tokens; n % 8 == 0. */
#define MP_DEF_GEMM_256(NAME, TYPE, LD)                                                                 static inline __attribute__((always_inline)) void FN(NAME##_body)(                                      int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy, const int R,         const int C)                                                                                    {                                                                                                       __m256 acc[MP_TILE_R][MP_TILE_C];                                                                   _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                                     _Pragma("GCC unroll 4") for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();            for (int64_t l = 0; l < n; l += 8) {                                                                    __m256 av[MP_TILE_R];                                                                               _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                                     av[r] = LD((const TYPE *)((const uint8_t *)W + r * ws) + l);                                    _Pragma("GCC unroll 4") for (int t = 0; t < C; t++) {                                                   const __m256 bv = LD((const TYPE *)((const uint8_t *)X + t * xs) + l);                              _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                                     acc[r][t] = _mm256_fmadd_ps(av[r], bv, acc[r][t]);                                          }                                                                                               }                                                                                                   _Pragma("GCC unroll 4") for (int t = 0; t < C; t++)                                                     _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) Y[t * ldy + r] = FN(hsum_ps)(acc[r][t]);     }                                                                                                   static void FN(NAME##_4x1)(int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy)     { FN(NAME##_body)(n, W, ws, X, xs, Y, ldy, 4, 1); }                                                 static void FN(NAME##_4x2)(int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy)     { FN(NAME##_body)(n, W, ws, X, xs, Y, ldy, 4, 2); }                                                 static void FN(NAME##_4x3)(int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy)     { FN(NAME##_body)(n, W, ws, X, xs, Y, ldy, 4, 3); }                                                 static void FN(NAME##_4x4)(int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy)     { FN(NAME##_body)(n, W, ws, X, xs, Y, ldy, 4, 4); }                                                 static void FN(NAME##_1x1)(int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy)     { FN(NAME##_body)(n, W, ws, X, xs, Y, ldy, 1, 1); }
MP_DEF_GEMM_256(gemm_f32, float, _mm256_loadu_ps)
MP_DEF_GEMM_256(gemm_f16, uint16_t, FN(ld_f16))
MP_DEF_GEMM_256(gemm_bf16, uint16_t, FN(ld_bf16))
#undef MP_DEF_GEMM_256

/* 0xFF in byte j where bit j of the block's 32-bit qh is set, else 0. */
static inline __m256i FN(q5_hmask)(const uint8_t *qh4)
{
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
                                               _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL,
                                                                  0x0303030303030303LL));
    const __m256i bit = _mm256_set1_epi64x((long long)0x7fbfdfeff7fbfdfeULL);
    return _mm256_cmpeq_epi8(_mm256_or_si256(spread, bit), _mm256_set1_epi8(-1));
}

/* -------------------------------------------------------------- Q8_0, Q4_0 */

static void FN(dot_q8_0)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q8_0 *a = w, *b = xq;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i qa = _mm256_loadu_si256((const __m256i *)a[i].qs);
        const __m256i qb = _mm256_loadu_si256((const __m256i *)b[i].qs);
        const __m256i p = FN(dpbusd)(_mm256_setzero_si256(), _mm256_abs_epi8(qa), _mm256_sign_epi8(qb, qa));
        const __m256 d = _mm256_set1_ps(FN(h2f)(a[i].d) * FN(h2f)(b[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    }
    *s = FN(hsum_ps)(acc);
}

static void FN(dot_q4_0)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q4_0 *a = w;
    const mp_block_q8_0 *b = xq;
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i qa = _mm256_sub_epi8(FN(q4_unpack)(a[i].qs), eight);
        const __m256i qb = _mm256_loadu_si256((const __m256i *)b[i].qs);
        const __m256i p = FN(dpbusd)(_mm256_setzero_si256(), _mm256_abs_epi8(qa), _mm256_sign_epi8(qb, qa));
        const __m256 d = _mm256_set1_ps(FN(h2f)(a[i].d) * FN(h2f)(b[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    }
    *s = FN(hsum_ps)(acc);
}

/* The register tiles below (MP_TILE_R weight rows x C tokens, C = 1..4,
 * kernels_internal.h) are one always-inline body each,
 * FN(BODY)(n, W, ws, X, xs, Y, ldy, C, extra...); MP_DEF_TILES makes its four
 * instances FN(NAME##_1..4), MP_SET_TILES puts them in the kernel table. */
_Static_assert(MP_TILE_C == 4, "MP_DEF_TILES makes four instances");
#define MP_TILE_PARAMS int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy
#define MP_DEF_TILES(NAME, BODY, ...)                                                               \
    static void FN(NAME##_1)(MP_TILE_PARAMS) { FN(BODY)(n, W, ws, X, xs, Y, ldy, 1, ##__VA_ARGS__); } \
    static void FN(NAME##_2)(MP_TILE_PARAMS) { FN(BODY)(n, W, ws, X, xs, Y, ldy, 2, ##__VA_ARGS__); } \
    static void FN(NAME##_3)(MP_TILE_PARAMS) { FN(BODY)(n, W, ws, X, xs, Y, ldy, 3, ##__VA_ARGS__); } \
    static void FN(NAME##_4)(MP_TILE_PARAMS) { FN(BODY)(n, W, ws, X, xs, Y, ldy, 4, ##__VA_ARGS__); }
#define MP_SET_TILES(TAB, TY, NAME)                                                                 \
    do {                                                                                            \
        (TAB)->tile[TY][0] = FN(NAME##_1);                                                          \
        (TAB)->tile[TY][1] = FN(NAME##_2);                                                          \
        (TAB)->tile[TY][2] = FN(NAME##_3);                                                          \
        (TAB)->tile[TY][3] = FN(NAME##_4);                                                          \
    } while (0)

/* Y[t * ldy + r] = hsum(acc[r][t]) for the tile's outputs */
static inline __attribute__((always_inline)) void FN(tile_store)(__m256 acc[MP_TILE_R][MP_TILE_C], const int C,
                                                                 float *Y, int64_t ldy)
{
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) Y[t * ldy + r] = FN(hsum_ps)(acc[r][t]);
}

/* Register tiles (MP_TILE_R rows x C tokens) for Q4_0, Q5_0 and, on VNNI,
 * Q8_0 (kind, MP_U8_*, is a constant at every call, so each instance keeps
 * one branch). The weight side is made unsigned once per row (Q4_0: q in
 * 0..15; Q5_0: q in 0..31; Q8_0: w + 128) and the offset removed per token
 * by starting the accumulator at -offset * sum(x). Each output keeps its
 * vec_dot's order (one 8-lane accumulator, fma per block, hsum). */
enum { MP_U8_Q4_0, MP_U8_Q8_0, MP_U8_Q5_0 };
static inline __attribute__((always_inline)) void FN(tile_u8_body)(int64_t n, const void *W, size_t ws,
                                                                   const void *X, size_t xs, float *Y,
                                                                   int64_t ldy, const int C, const int kind)
{
    const int q8 = kind == MP_U8_Q8_0;
    __m256 acc[MP_TILE_R][MP_TILE_C];
#pragma GCC unroll 4
    for (int r = 0; r < MP_TILE_R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i off = q8 ? _mm256_set1_epi8((char)0x80) : _mm256_set1_epi8(kind == MP_U8_Q5_0 ? 16 : 8);
    for (int64_t i = 0; i < n / 32; i++) {
        __m256i q[MP_TILE_R];
        __m256 dw[MP_TILE_R];
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) {
            const uint8_t *row = (const uint8_t *)W + r * ws;
            if (q8) {
                const mp_block_q8_0 *blk = (const mp_block_q8_0 *)row + i;
                q[r] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)blk->qs), off); /* w + 128 */
                dw[r] = _mm256_set1_ps(FN(h2f)(blk->d));
            } else if (kind == MP_U8_Q5_0) { /* the fifth bit on top of the nibble */
                const mp_block_q5_0 *blk = (const mp_block_q5_0 *)row + i;
                q[r] = _mm256_or_si256(FN(q4_unpack)(blk->qs),
                                       _mm256_and_si256(FN(q5_hmask)(blk->qh), _mm256_set1_epi8(0x10)));
                dw[r] = _mm256_set1_ps(FN(h2f)(blk->d));
            } else {
                const mp_block_q4_0 *blk = (const mp_block_q4_0 *)row + i;
                q[r] = FN(q4_unpack)(blk->qs);
                dw[r] = _mm256_set1_ps(FN(h2f)(blk->d));
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) {
            const mp_block_q8_0 *yb = (const mp_block_q8_0 *)((const uint8_t *)X + t * xs) + i;
            const __m256i y = _mm256_loadu_si256((const __m256i *)yb->qs);
            const __m256i corr = _mm256_sub_epi32(_mm256_setzero_si256(),
                                                  FN(dpbusd)(_mm256_setzero_si256(), off, y));
            const __m256 dx = _mm256_set1_ps(FN(h2f)(yb->d));
#pragma GCC unroll 4
            for (int r = 0; r < MP_TILE_R; r++) {
                const __m256i p = FN(dpbusd)(corr, q[r], y);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[r][t]);
            }
        }
    }
    FN(tile_store)(acc, C, Y, ldy);
}

MP_DEF_TILES(tile_q4_0, tile_u8_body, MP_U8_Q4_0)
MP_DEF_TILES(tile_q5_0, tile_u8_body, MP_U8_Q5_0)
#if MP_VNNI
MP_DEF_TILES(tile_q8_0, tile_u8_body, MP_U8_Q8_0)
#endif

/* ---------------------------------------------------------------- K-quants */

/* Unpacks the 12 packed bytes of 6-bit Q4_K/Q5_K scales and mins: returns
 * the 8 scales as int16 in both 128-bit halves, and in *mins_dot the four
 * int32 lanes min_{2k} * bsum16_{2k} + min_{2k+1} * bsum16_{2k+1}, where
 * bsum16_j = bsums[2j] + bsums[2j+1] (their sum is the block's min term). */
static inline __m256i FN(k4_scales)(const uint8_t *packed, const int16_t *bsums, __m128i *mins_dot)
{
    uint32_t w[3];
    memcpy(w, packed, 12);
    const uint32_t sc_lo = w[0] & 0x3f3f3f3fu, m_lo = w[1] & 0x3f3f3f3fu;
    const uint32_t sc_hi = (w[2] & 0x0f0f0f0fu) | ((w[0] >> 2) & 0x30303030u);
    const uint32_t m_hi = ((w[2] >> 4) & 0x0f0f0f0fu) | ((w[1] >> 2) & 0x30303030u);
    const __m128i sc16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)sc_hi, (int)sc_lo));
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)m_hi, (int)m_lo));
    const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bsums), _mm_loadu_si128((const __m128i *)bsums + 1));
    *mins_dot = _mm_madd_epi16(m16, bs);
    return _mm256_broadcastsi128_si256(sc16);
}

/* shuffle_epi8 control that broadcasts int16 word k of each 128-bit half */
static inline __m256i FN(word_bcast)(int k) { return _mm256_set1_epi16((short)((2 * k) | ((2 * k + 1) << 8))); }

static void FN(dot_q4_K)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q4_K *a = w;
    const mp_block_q8_K *b = xq;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps(); /* min terms, 4 lanes (pairs of sub-blocks) kept apart as ggml does */
    for (int64_t i = 0; i < n / 256; i++) {
        __m128i mprod;
        const __m256i sc = FN(k4_scales)(a[i].scales, b[i].bsums, &mprod);
        accm = _mm_fmadd_ps(_mm_set1_ps(-b[i].d * FN(h2f)(a[i].dmin)), _mm_cvtepi32_ps(mprod), accm);
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * c));
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c)));
            const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_shuffle_epi8(sc, FN(word_bcast)(2 * c))));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_shuffle_epi8(sc, FN(word_bcast)(2 * c + 1))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(b[i].d * FN(h2f)(a[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    accm = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    accm = _mm_add_ss(accm, _mm_movehdup_ps(accm));
    *s = FN(hsum_ps)(acc) + _mm_cvtss_f32(accm);
}

static void FN(dot_q5_K)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q5_K *a = w;
    const mp_block_q8_K *b = xq;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        __m128i mprod;
        const __m256i sc = FN(k4_scales)(a[i].scales, b[i].bsums, &mprod);
        mprod = _mm_add_epi32(mprod, _mm_shuffle_epi32(mprod, 0x4e));
        const int summ = _mm_cvtsi128_si32(_mm_add_epi32(mprod, _mm_shuffle_epi32(mprod, 0xb1)));
        __m256i qh = _mm256_loadu_si256((const __m256i *)a[i].qh);
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            /* bit 2c of qh[l] is bit 4 of the low-nibble value, bit 2c+1 of the high one;
             * qh is shifted right by 2 per chunk so they sit at bits 0 and 1 */
            const __m256i q = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * c));
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), b4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(qh, 3), b4));
            qh = _mm256_srli_epi16(qh, 2);
            const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c)));
            const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_shuffle_epi8(sc, FN(word_bcast)(2 * c))));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_shuffle_epi8(sc, FN(word_bcast)(2 * c + 1))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(b[i].d * FN(h2f)(a[i].d)), _mm256_cvtepi32_ps(sumi), acc);
        accm += b[i].d * FN(h2f)(a[i].dmin) * (float)summ;
    }
    *s = FN(hsum_ps)(acc) - accm;
}

static void FN(dot_q6_K)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q6_K *a = w;
    const mp_block_q8_K *b = xq;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
    /* per quarter k: low 128-bit half broadcasts scale word 2k, high half word 2k+1 */
    const __m256i ctl[4] = {
        _mm256_set_m128i(_mm_set1_epi16(0x0302), _mm_set1_epi16(0x0100)),
        _mm256_set_m128i(_mm_set1_epi16(0x0706), _mm_set1_epi16(0x0504)),
        _mm256_set_m128i(_mm_set1_epi16(0x0b0a), _mm_set1_epi16(0x0908)),
        _mm256_set_m128i(_mm_set1_epi16(0x0f0e), _mm_set1_epi16(0x0d0c)),
    };
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)a[i].scales);
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i scw = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(a[i].qh + 32 * h));
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(a[i].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(a[i].ql + 64 * h + 32));
            __m256i q[4]; /* unsigned 0..63 (value + 32) of the four 32-element quarters */
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m2));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const __m256i y = _mm256_loadu_si256((const __m256i *)(b[i].qs + 128 * h + 32 * k));
                /* int16 lanes 0..7 cover elements 0..15 (scale 2k), 8..15 elements 16..31 (2k+1) */
                const __m256i p = _mm256_maddubs_epi16(q[k], y);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(scw, ctl[k])));
            }
        }
        /* remove the +32 offset: 32 * sum_g sc_g * bsum_g */
        const __m256i bs = _mm256_loadu_si256((const __m256i *)b[i].bsums);
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(_mm256_madd_epi16(bs, _mm256_cvtepi8_epi16(sc8)), 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(b[i].d * FN(h2f)(a[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = FN(hsum_ps)(acc);
}

/* ------------------------------------------- Q2_K, Q3_K, IQ4_XS, IQ4_NL
 * Float results bit-identical to ggml-cpu's x86 vec_dots (AVX2 paths, which
 * its AVX-512 builds also take for these types): every int32 lane holds the
 * same integer as ggml's (lane l of a 32-byte step covers bytes 4l..4l+3,
 * each times its sub-block scale), and the float accumulators are updated
 * in ggml's order: Q2_K fma(-y.d*dmin, min lanes) then fma(y.d*d, sum lanes)
 * per block; IQ4_NL two accumulators for even and odd blocks, summed before
 * the horizontal add, an odd last block added in scalar. */

/* int16 word k of each 128-bit half broadcast to that half: the scale of
 * bytes 0..15 is word 2c of scales, of bytes 16..31 word 2c+1 (Q2_K/Q3_K
 * sub-blocks of 16: one 32-byte step spans two). */
static inline __m256i FN(scale_pair)(__m256i sc16, int c)
{
    const __m256i ctl = _mm256_set_m128i(_mm_set1_epi16((short)((4 * c + 2) | ((4 * c + 3) << 8))),
                                         _mm_set1_epi16((short)((4 * c) | ((4 * c + 1) << 8))));
    return _mm256_shuffle_epi8(sc16, ctl);
}

static void FN(dot_q2_K)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q2_K *a = w;
    const mp_block_q8_K *b = xq;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        const float d = b[i].d * FN(h2f)(a[i].d), dmin = -b[i].d * FN(h2f)(a[i].dmin);
        const __m128i packed = _mm_loadu_si128((const __m128i *)a[i].scales);
        /* min lanes: m_{2l} * bsum_{2l} + m_{2l+1} * bsum_{2l+1} */
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F)));
        const __m256i mprod = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)b[i].bsums));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mprod), acc);
        /* scales of sub-blocks 8h..8h+7 as int16 in both halves, h = 0, 1 */
        const __m128i sc8 = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
        const __m256i sc[2] = {_mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc8)),
                               _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_srli_si128(sc8, 8)))};
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * h));
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const __m256i qc = _mm256_and_si256(_mm256_srli_epi16(q, 2 * c), m3);
                const __m256i y = _mm256_loadu_si256((const __m256i *)(b[i].qs + 128 * h + 32 * c));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(qc, y), FN(scale_pair)(sc[h], c)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = FN(hsum_ps)(acc);
}

/* Register tile for Q2_K (MP_TILE_R rows x C tokens) in dot_q2_K's order:
 * per output one 8-lane accumulator, per block the min term's fma then the
 * scaled sum's, then hsum. The integer sums are regrouped (exact): a row's
 * 2-bit step and scale pair are made once per step for all C tokens. */
static inline __attribute__((always_inline)) void FN(tile_q2_K_body)(int64_t n, const void *W, size_t ws,
                                                                     const void *X, size_t xs, float *Y,
                                                                     int64_t ldy, const int C)
{
    __m256 acc[MP_TILE_R][MP_TILE_C];
#pragma GCC unroll 4
    for (int r = 0; r < MP_TILE_R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / 256; i++) {
        const mp_block_q2_K *a[MP_TILE_R];
        const mp_block_q8_K *b[MP_TILE_C];
        __m256i sc[MP_TILE_R][2], sumi[MP_TILE_R][MP_TILE_C];
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) {
            a[r] = (const mp_block_q2_K *)((const uint8_t *)W + r * ws) + i;
            const __m128i sc8 = _mm_and_si128(_mm_loadu_si128((const __m128i *)a[r]->scales), _mm_set1_epi8(0x0F));
            sc[r][0] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc8));
            sc[r][1] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_srli_si128(sc8, 8)));
#pragma GCC unroll 4
            for (int t = 0; t < C; t++) sumi[r][t] = _mm256_setzero_si256();
        }
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) b[t] = (const mp_block_q8_K *)((const uint8_t *)X + t * xs) + i;
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
#pragma GCC unroll 4
                for (int r = 0; r < MP_TILE_R; r++) {
                    const __m256i q = _mm256_loadu_si256((const __m256i *)(a[r]->qs + 32 * h));
                    const __m256i qc = _mm256_and_si256(_mm256_srli_epi16(q, 2 * c), m3);
                    const __m256i sp = FN(scale_pair)(sc[r][h], c);
#pragma GCC unroll 4
                    for (int t = 0; t < C; t++) {
                        const __m256i y = _mm256_loadu_si256((const __m256i *)(b[t]->qs + 128 * h + 32 * c));
                        sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(qc, y), sp));
                    }
                }
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) {
            const __m128i packed = _mm_loadu_si128((const __m128i *)a[r]->scales);
            const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F)));
            const float da = FN(h2f)(a[r]->d), dma = FN(h2f)(a[r]->dmin);
#pragma GCC unroll 4
            for (int t = 0; t < C; t++) {
                const float d = b[t]->d * da, dmin = -b[t]->d * dma;
                const __m256i mprod = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)b[t]->bsums));
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mprod), acc[r][t]);
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
            }
        }
    }
    FN(tile_store)(acc, C, Y, ldy);
}

MP_DEF_TILES(tile_q2_K, tile_q2_K_body)

/* A Q3_K block's 16 signed 6-bit scales as int16, sub-blocks 8h..8h+7 in
 * both halves of sc[h]: low nibbles in bytes 0..7 (sub-blocks 0-7 low, 8-15
 * high nibble), top 2 bits of sub-block j at bit 2*(j/4) of byte 8 + j%4. */
static inline void FN(q3_scales)(const uint8_t *scales, __m256i sc[2])
{
    uint32_t u[3];
    memcpy(u, scales, 12);
    const uint32_t k2 = 0x0f0f0f0fu, k1 = 0x03030303u;
    const __m128i sc8 = _mm_sub_epi8(_mm_set_epi32((int)(((u[1] >> 4) & k2) | (((u[2] >> 6) & k1) << 4)),
                                                   (int)(((u[0] >> 4) & k2) | (((u[2] >> 4) & k1) << 4)),
                                                   (int)((u[1] & k2) | (((u[2] >> 2) & k1) << 4)),
                                                   (int)((u[0] & k2) | ((u[2] & k1) << 4))),
                                     _mm_set1_epi8(32));
    sc[0] = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(sc8));
    sc[1] = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_srli_si128(sc8, 8)));
}

/* Step (h, c) of a Q3_K block (elements 128h + 32c .. +31): the low 2 bits
 * in *ql, and 4 where the high bit (hmask bit 4h + c) is clear in *qh, so
 * q = ql - qh. */
static inline void FN(q3_step)(const mp_block_q3_K *a, __m256i hm, int h, int c, __m256i *ql, __m256i *qh)
{
    const __m256i q = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * h));
    *ql = _mm256_and_si256(_mm256_srli_epi16(q, 2 * c), _mm256_set1_epi8(3));
    const __m256i clear = _mm256_cmpeq_epi8(_mm256_and_si256(hm, _mm256_set1_epi8((char)(1 << (4 * h + c)))),
                                            _mm256_setzero_si256());
    *qh = _mm256_and_si256(clear, _mm256_set1_epi8(4));
}

static void FN(dot_q3_K)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q3_K *a = w;
    const mp_block_q8_K *b = xq;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        const float d = b[i].d * FN(h2f)(a[i].d);
        __m256i sc[2];
        FN(q3_scales)(a[i].scales, sc);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)a[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m256i ql, qh;
                FN(q3_step)(a + i, hm, h, c, &ql, &qh);
                const __m256i y = _mm256_loadu_si256((const __m256i *)(b[i].qs + 128 * h + 32 * c));
                const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(ql, y), _mm256_maddubs_epi16(qh, y));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, FN(scale_pair)(sc[h], c)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = FN(hsum_ps)(acc);
}

/* Register tile for Q3_K (MP_TILE_R rows x C tokens) in dot_q3_K's order
 * (one accumulator per output, one fma per block, hsum); a row's step and
 * scale pair are made once for all C tokens (integer sums regrouped). */
static inline __attribute__((always_inline)) void FN(tile_q3_K_body)(int64_t n, const void *W, size_t ws,
                                                                     const void *X, size_t xs, float *Y,
                                                                     int64_t ldy, const int C)
{
    __m256 acc[MP_TILE_R][MP_TILE_C];
#pragma GCC unroll 4
    for (int r = 0; r < MP_TILE_R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        const mp_block_q3_K *a[MP_TILE_R];
        const mp_block_q8_K *b[MP_TILE_C];
        __m256i sc[MP_TILE_R][2], sumi[MP_TILE_R][MP_TILE_C];
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) {
            a[r] = (const mp_block_q3_K *)((const uint8_t *)W + r * ws) + i;
            FN(q3_scales)(a[r]->scales, sc[r]);
#pragma GCC unroll 4
            for (int t = 0; t < C; t++) sumi[r][t] = _mm256_setzero_si256();
        }
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) b[t] = (const mp_block_q8_K *)((const uint8_t *)X + t * xs) + i;
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
#pragma GCC unroll 4
                for (int r = 0; r < MP_TILE_R; r++) {
                    __m256i ql, qh;
                    FN(q3_step)(a[r], _mm256_loadu_si256((const __m256i *)a[r]->hmask), h, c, &ql, &qh);
                    const __m256i sp = FN(scale_pair)(sc[r][h], c);
#pragma GCC unroll 4
                    for (int t = 0; t < C; t++) {
                        const __m256i y = _mm256_loadu_si256((const __m256i *)(b[t]->qs + 128 * h + 32 * c));
                        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(ql, y), _mm256_maddubs_epi16(qh, y));
                        sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(p, sp));
                    }
                }
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) {
            const float da = FN(h2f)(a[r]->d);
#pragma GCC unroll 4
            for (int t = 0; t < C; t++)
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(b[t]->d * da), _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
        }
    }
    FN(tile_store)(acc, C, Y, ldy);
}

MP_DEF_TILES(tile_q3_K, tile_q3_K_body)

/* 16 IQ4 index bytes -> 32 signed levels, low nibbles (elements 0..15) first. */
static inline __m256i FN(iq4_levels)(const uint8_t *qs)
{
    const __m128i tab = _mm_loadu_si128((const __m128i *)mp_kvalues_iq4nl), m4 = _mm_set1_epi8(0x0F);
    const __m128i raw = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_set_m128i(_mm_shuffle_epi8(tab, _mm_and_si128(_mm_srli_epi16(raw, 4), m4)),
                            _mm_shuffle_epi8(tab, _mm_and_si128(raw, m4)));
}

/* int16 pair sums of q * y for signed q, y (|q| <= 127, y > -128: exact) */
static inline __m256i FN(mul_pairs)(__m256i q, __m256i y)
{
    return _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q));
}

static void FN(dot_iq4_xs)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_iq4_xs *a = w;
    const mp_block_q8_K *b = xq;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int ib = 0; ib < 8; ib++) {
            const int ls = (((a[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((a[i].scales_h >> 2 * ib) & 3) << 4)) - 32;
            const __m256i p = FN(mul_pairs)(FN(iq4_levels)(a[i].qs + 16 * ib),
                                            _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * ib)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_set1_epi16((short)ls)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(FN(h2f)(a[i].d) * b[i].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = FN(hsum_ps)(acc);
}

/* IQ4_XS in ggml's IQ panel order (iqp.cpp, its AVX2 kernels): each output
 * is one float, acc = fma((float)sumi, d * y.d, acc) per super-block, with
 * sumi the block's exact integer dot (the lane order does not matter). */
static void FN(panel_iq4_xs)(int64_t n, const void *W, size_t ws, int64_t nr, const void *X, size_t xs, int64_t T,
                             float *Y, int64_t ldy)
{
    const int64_t nb = n / 256;
    for (int64_t r = 0; r < nr; r++) {
        const mp_block_iq4_xs *a = (const mp_block_iq4_xs *)((const uint8_t *)W + r * ws);
        for (int64_t t0 = 0; t0 < T; t0 += MP_TILE_C) {
            const int64_t C = T - t0 < MP_TILE_C ? T - t0 : MP_TILE_C;
            float acc[MP_TILE_C] = {0};
            for (int64_t i = 0; i < nb; i++) {
                __m256i q[8], ls[8];
                for (int ib = 0; ib < 8; ib++) {
                    q[ib] = FN(iq4_levels)(a[i].qs + 16 * ib);
                    ls[ib] = _mm256_set1_epi16(
                        (short)((((a[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((a[i].scales_h >> 2 * ib) & 3) << 4)) -
                                32));
                }
                const float d = FN(h2f)(a[i].d);
                for (int64_t c = 0; c < C; c++) {
                    const mp_block_q8_K *b = (const mp_block_q8_K *)((const uint8_t *)X + (t0 + c) * xs) + i;
                    __m256i sumi = _mm256_setzero_si256();
                    for (int ib = 0; ib < 8; ib++) {
                        const __m256i p = FN(mul_pairs)(q[ib], _mm256_loadu_si256((const __m256i *)(b->qs + 32 * ib)));
                        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, ls[ib]));
                    }
                    acc[c] = fmaf((float)FN(hsum_epi32)(sumi), d * b->d, acc[c]);
                }
            }
            for (int64_t c = 0; c < C; c++) Y[(t0 + c) * ldy + r] = acc[c];
        }
    }
}

/* int32 lanes of one IQ4_NL block against one Q8_0 block */
static inline __m256i FN(iq4_nl_lanes)(const mp_block_iq4_nl *a, const mp_block_q8_0 *b)
{
    const __m256i q = FN(iq4_levels)(a->qs);
    return FN(dpbusd)(_mm256_setzero_si256(), _mm256_sign_epi8(q, q),
                      _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)b->qs), q));
}

static void FN(dot_iq4_nl)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_iq4_nl *a = w;
    const mp_block_q8_0 *b = xq;
    const int64_t nb = n / 32;
    __m256 acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(FN(h2f)(b[i].d) * FN(h2f)(a[i].d)),
                               _mm256_cvtepi32_ps(FN(iq4_nl_lanes)(a + i, b + i)), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_set1_ps(FN(h2f)(b[i + 1].d) * FN(h2f)(a[i + 1].d)),
                               _mm256_cvtepi32_ps(FN(iq4_nl_lanes)(a + i + 1, b + i + 1)), acc2);
    }
    float sum = FN(hsum_ps)(_mm256_add_ps(acc1, acc2));
    if (i < nb) { /* ggml adds an odd last block in scalar code, fused */
        const float d = FN(h2f)(b[i].d) * FN(h2f)(a[i].d);
        sum = fmaf(d, (float)FN(hsum_epi32)(FN(iq4_nl_lanes)(a + i, b + i)), sum);
    }
    *s = sum;
}

/* int32 lanes of one MXFP4 block against one Q8_0 block (levels -12..12) */
static inline __m256i FN(mxfp4_lanes)(const mp_block_mxfp4 *a, const mp_block_q8_0 *b)
{
    const __m128i tab = _mm_loadu_si128((const __m128i *)mp_kvalues_mxfp4), m4 = _mm_set1_epi8(0x0F);
    const __m128i raw = _mm_loadu_si128((const __m128i *)a->qs);
    const __m256i q = _mm256_set_m128i(_mm_shuffle_epi8(tab, _mm_and_si128(_mm_srli_epi16(raw, 4), m4)),
                                       _mm_shuffle_epi8(tab, _mm_and_si128(raw, m4)));
    return FN(dpbusd)(_mm256_setzero_si256(), _mm256_sign_epi8(q, q),
                      _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)b->qs), q));
}

/* ggml's AVX2 ggml_vec_dot_mxfp4_q8_0 (also what its AVX-512 builds run):
 * two 8-lane accumulators for even and odd blocks, fma(y.d * 2^(e-128),
 * lanes), summed before the horizontal add; an odd last block in scalar code,
 * fused. The int32 lanes are exact, so the lane grouping does not matter. */
static void FN(dot_mxfp4)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_mxfp4 *a = w;
    const mp_block_q8_0 *b = xq;
    const int64_t nb = n / 32;
    __m256 acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(FN(h2f)(b[i].d) * mp_e8m0_half(a[i].e)),
                               _mm256_cvtepi32_ps(FN(mxfp4_lanes)(a + i, b + i)), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_set1_ps(FN(h2f)(b[i + 1].d) * mp_e8m0_half(a[i + 1].e)),
                               _mm256_cvtepi32_ps(FN(mxfp4_lanes)(a + i + 1, b + i + 1)), acc2);
    }
    float sum = FN(hsum_ps)(_mm256_add_ps(acc1, acc2));
    if (i < nb) {
        const float d = FN(h2f)(b[i].d) * mp_e8m0_half(a[i].e);
        sum = fmaf(d, (float)FN(hsum_epi32)(FN(mxfp4_lanes)(a + i, b + i)), sum);
    }
    *s = sum;
}

/* 32 MXFP4 levels + 12 (0..24, unsigned for dpbusd), low nibbles first. */
static inline __m256i FN(mxfp4_u12)(const uint8_t *qs)
{
    const __m128i tab = _mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
    const __m128i m4 = _mm_set1_epi8(0x0F), raw = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_set_m128i(_mm_shuffle_epi8(tab, _mm_and_si128(_mm_srli_epi16(raw, 4), m4)),
                            _mm_shuffle_epi8(tab, _mm_and_si128(raw, m4)));
}

/* Register tile for MXFP4 (MP_TILE_R rows x C tokens) in dot_mxfp4's order:
 * per output the even-block and odd-block 8-lane accumulators, one fma per
 * block with the scale product y.d * 2^(e-128) rounded once, their sum
 * reduced, an odd last block fused in scalar code. A lane's integer is the
 * same as there: the weight is made unsigned (+12) once per row and block,
 * and 12 * sum(y) per lane is subtracted by starting the lane at -12 * sum.
 * Pair sums stay below 32768 (24 * 127 * 2) for the non-VNNI dpbusd. */
static inline __attribute__((always_inline)) void FN(tile_mxfp4_body)(int64_t n, const void *W, size_t ws,
                                                                      const void *X, size_t xs, float *Y,
                                                                      int64_t ldy, const int C)
{
    __m256 acc1[MP_TILE_R][MP_TILE_C], acc2[MP_TILE_R][MP_TILE_C];
#pragma GCC unroll 4
    for (int r = 0; r < MP_TILE_R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) acc1[r][t] = acc2[r][t] = _mm256_setzero_ps();
    const __m256i twelve = _mm256_set1_epi8(12);
    const int64_t nb = n / 32;
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        __m256i q0[MP_TILE_R], q1[MP_TILE_R];
        float d0[MP_TILE_R], d1[MP_TILE_R];
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) {
            const mp_block_mxfp4 *blk = (const mp_block_mxfp4 *)((const uint8_t *)W + r * ws) + i;
            q0[r] = FN(mxfp4_u12)(blk[0].qs);
            q1[r] = FN(mxfp4_u12)(blk[1].qs);
            d0[r] = mp_e8m0_half(blk[0].e);
            d1[r] = mp_e8m0_half(blk[1].e);
        }
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) {
            const mp_block_q8_0 *yb = (const mp_block_q8_0 *)((const uint8_t *)X + t * xs) + i;
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)yb[0].qs);
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)yb[1].qs);
            const __m256i c0 = _mm256_sub_epi32(_mm256_setzero_si256(), FN(dpbusd)(_mm256_setzero_si256(), twelve, y0));
            const __m256i c1 = _mm256_sub_epi32(_mm256_setzero_si256(), FN(dpbusd)(_mm256_setzero_si256(), twelve, y1));
            const float dx0 = FN(h2f)(yb[0].d), dx1 = FN(h2f)(yb[1].d);
#pragma GCC unroll 4
            for (int r = 0; r < MP_TILE_R; r++) {
                acc1[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dx0 * d0[r]), _mm256_cvtepi32_ps(FN(dpbusd)(c0, q0[r], y0)),
                                             acc1[r][t]);
                acc2[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dx1 * d1[r]), _mm256_cvtepi32_ps(FN(dpbusd)(c1, q1[r], y1)),
                                             acc2[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) {
            float sum = FN(hsum_ps)(_mm256_add_ps(acc1[r][t], acc2[r][t]));
            if (i < nb) {
                const mp_block_mxfp4 *a = (const mp_block_mxfp4 *)((const uint8_t *)W + r * ws) + i;
                const mp_block_q8_0 *b = (const mp_block_q8_0 *)((const uint8_t *)X + t * xs) + i;
                sum = fmaf(FN(h2f)(b->d) * mp_e8m0_half(a->e), (float)FN(hsum_epi32)(FN(mxfp4_lanes)(a, b)), sum);
            }
            Y[t * ldy + r] = sum;
        }
}

MP_DEF_TILES(tile_mxfp4, tile_mxfp4_body)

/* ------------------------------------------------------------ Q5_0, Q5_1 */


/* int32 lanes (4 adjacent products each) of one Q5_0 block against one
 * Q8_0 block: q - 16 in -16..15 as nibble | 0xF0 where the fifth bit is clear */
static inline __m256i FN(q5_0_lanes)(const mp_block_q5_0 *a, const mp_block_q8_0 *b)
{
    const __m256i q = _mm256_or_si256(FN(q4_unpack)(a->qs),
                                      _mm256_andnot_si256(FN(q5_hmask)(a->qh), _mm256_set1_epi8((char)0xF0)));
    return FN(dpbusd)(_mm256_setzero_si256(), _mm256_sign_epi8(q, q),
                      _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)b->qs), q));
}

/* ggml's AVX2 ggml_vec_dot_q5_0_q8_0 (also its AVX-512 builds): one 8-lane
 * accumulator, fma(x.d * y.d, lanes) per block, then hsum. tinyBLAS_Q0_AVX
 * (MUL_MAT from 2 tokens) sums in the same order, so no separate GEMM. */
static void FN(dot_q5_0)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q5_0 *a = w;
    const mp_block_q8_0 *b = xq;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256 d = _mm256_set1_ps(FN(h2f)(a[i].d) * FN(h2f)(b[i].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(FN(q5_0_lanes)(a + i, b + i)), acc);
    }
    *s = FN(hsum_ps)(acc);
}

/* ggml's AVX2 ggml_vec_dot_q5_1_q8_1: acc = fma(lanes, x.d * y.d, acc) per
 * block (unsigned q in 0..31 against the signed Q8_1 bytes), a scalar
 * summs = fma(x.m, y.s, summs) beside it, result hsum(acc) + summs. */
static void FN(dot_q5_1)(int64_t n, float *s, const void *w, const void *xq)
{
    const mp_block_q5_1 *a = w;
    const mp_block_q8_1 *b = xq;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        summs = fmaf(FN(h2f)(a[i].m), FN(h2f)(b[i].s), summs);
        const __m256i q = _mm256_or_si256(FN(q4_unpack)(a[i].qs),
                                          _mm256_and_si256(FN(q5_hmask)(a[i].qh), _mm256_set1_epi8(0x10)));
        const __m256i p = FN(dpbusd)(_mm256_setzero_si256(), q, _mm256_loadu_si256((const __m256i *)b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(FN(h2f)(a[i].d) * FN(h2f)(b[i].d)), acc);
    }
    *s = FN(hsum_ps)(acc) + summs;
}

/* Register tile for Q5_1 (MP_TILE_R rows x C tokens) in dot_q5_1's order:
 * per output the 8-lane accumulator (fma per block) and the scalar min sum
 * (fmaf per block), hsum(acc) + summs at the end. */
static inline __attribute__((always_inline)) void FN(tile_q5_1_body)(int64_t n, const void *W, size_t ws,
                                                                     const void *X, size_t xs, float *Y,
                                                                     int64_t ldy, const int C)
{
    __m256 acc[MP_TILE_R][MP_TILE_C];
    float summs[MP_TILE_R][MP_TILE_C];
#pragma GCC unroll 4
    for (int r = 0; r < MP_TILE_R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps(), summs[r][t] = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        __m256i q[MP_TILE_R];
        float dw[MP_TILE_R], mw[MP_TILE_R];
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) {
            const mp_block_q5_1 *blk = (const mp_block_q5_1 *)((const uint8_t *)W + r * ws) + i;
            q[r] = _mm256_or_si256(FN(q4_unpack)(blk->qs), _mm256_and_si256(FN(q5_hmask)(blk->qh), _mm256_set1_epi8(0x10)));
            dw[r] = FN(h2f)(blk->d);
            mw[r] = FN(h2f)(blk->m);
        }
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) {
            const mp_block_q8_1 *yb = (const mp_block_q8_1 *)((const uint8_t *)X + t * xs) + i;
            const __m256i y = _mm256_loadu_si256((const __m256i *)yb->qs);
            const float dy = FN(h2f)(yb->d), sy = FN(h2f)(yb->s);
#pragma GCC unroll 4
            for (int r = 0; r < MP_TILE_R; r++) {
                summs[r][t] = fmaf(mw[r], sy, summs[r][t]);
                const __m256i p = FN(dpbusd)(_mm256_setzero_si256(), q[r], y);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw[r] * dy), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < MP_TILE_R; r++) Y[t * ldy + r] = FN(hsum_ps)(acc[r][t]) + summs[r][t];
}

MP_DEF_TILES(tile_q5_1, tile_q5_1_body)

/* IQ4_NL in the GEMM order (tinyBLAS_Q0_AVX): one 8-lane accumulator per
 * output over the blocks in order, then hsum. MP_TILE_R rows x C tokens. */
static inline __attribute__((always_inline)) void FN(gemm_iq4_nl_body)(int64_t n, const void *W, size_t ws,
                                                                       const void *X, size_t xs, float *Y,
                                                                       int64_t ldy, const int R, const int C)
{
    __m256 acc[MP_TILE_R][MP_TILE_C];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        __m256i q[MP_TILE_R], qa[MP_TILE_R];
        float dw[MP_TILE_R];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const mp_block_iq4_nl *blk = (const mp_block_iq4_nl *)((const uint8_t *)W + r * ws) + i;
            q[r] = FN(iq4_levels)(blk->qs);
            qa[r] = _mm256_sign_epi8(q[r], q[r]);
            dw[r] = FN(h2f)(blk->d);
        }
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) {
            const mp_block_q8_0 *yb = (const mp_block_q8_0 *)((const uint8_t *)X + t * xs) + i;
            const __m256i y = _mm256_loadu_si256((const __m256i *)yb->qs);
            const float dx = FN(h2f)(yb->d);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const __m256i p = FN(dpbusd)(_mm256_setzero_si256(), qa[r], _mm256_sign_epi8(y, q[r]));
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw[r] * dx), _mm256_cvtepi32_ps(p), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) Y[t * ldy + r] = FN(hsum_ps)(acc[r][t]);
}

#define MP_DEF_GEMM_IQ4(R, C)                                                                       \
    static void FN(gemm_iq4_nl_##R##x##C)(int64_t n, const void *W, size_t ws, const void *X, size_t xs, \
                                          float *Y, int64_t ldy)                                    \
    {                                                                                               \
        FN(gemm_iq4_nl_body)(n, W, ws, X, xs, Y, ldy, R, C);                                        \
    }
MP_DEF_GEMM_IQ4(4, 1)
MP_DEF_GEMM_IQ4(4, 2)
MP_DEF_GEMM_IQ4(4, 3)
MP_DEF_GEMM_IQ4(4, 4)
MP_DEF_GEMM_IQ4(1, 1)
#undef MP_DEF_GEMM_IQ4

/* ------------------------------------------------ activation quantisers
 * Bit-identical to mp_quant_act_*_ref: the same scalar scale arithmetic, a
 * vector multiply by the same factor, round half to even, saturating packs. */

static inline __m256i FN(pack32)(__m256 v0, __m256 v1, __m256 v2, __m256 v3)
{
    const int rnd = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(v0, rnd));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(v1, rnd));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(v2, rnd));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(v3, rnd));
    i0 = _mm256_packs_epi32(i0, i1);
    i2 = _mm256_packs_epi32(i2, i3);
    i0 = _mm256_packs_epi16(i0, i2);
    return _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float FN(hmax_ps)(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static void FN(act_q8_0)(const float *x, void *xq, int64_t n)
{
    mp_block_q8_0 *y = xq;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 mx = _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1));
        mx = _mm256_max_ps(mx, _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        const float amax = FN(hmax_ps)(mx);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = mp_fp32_to_fp16(d);
        const __m256 m = _mm256_set1_ps(id);
        _mm256_storeu_si256((__m256i *)y[i].qs, FN(pack32)(_mm256_mul_ps(v0, m), _mm256_mul_ps(v1, m),
                                                           _mm256_mul_ps(v2, m), _mm256_mul_ps(v3, m)));
    }
}

/* Q8_1 (for Q5_1): act_q8_0's bytes, s = fp16(d * sum of the int32s) */
static void FN(act_q8_1)(const float *x, void *xq, int64_t n)
{
    mp_block_q8_1 *y = xq;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const int rnd = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 mx = _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1));
        mx = _mm256_max_ps(mx, _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        const float amax = FN(hmax_ps)(mx);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = mp_fp32_to_fp16(d);
        const __m256 m = _mm256_set1_ps(id);
        v0 = _mm256_mul_ps(v0, m), v1 = _mm256_mul_ps(v1, m), v2 = _mm256_mul_ps(v2, m), v3 = _mm256_mul_ps(v3, m);
        const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(v0, rnd)), i1 = _mm256_cvtps_epi32(_mm256_round_ps(v1, rnd));
        const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(v2, rnd)), i3 = _mm256_cvtps_epi32(_mm256_round_ps(v3, rnd));
        const int sum = FN(hsum_epi32)(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
        y[i].s = mp_fp32_to_fp16(d * (float)sum);
        _mm256_storeu_si256((__m256i *)y[i].qs, FN(pack32)(v0, v1, v2, v3));
    }
}

static void FN(act_q8_K)(const float *x, void *xq, int64_t n)
{
    mp_block_q8_K *y = xq;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / 256; i++, x += 256) {
        __m256 mx = _mm256_setzero_ps();
        for (int j = 0; j < 256; j += 8) mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        const float amax = FN(hmax_ps)(mx);
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = amax; /* the first element with |x| == amax decides the sign, as in the reference */
        for (int j = 0; j < 256; j++) {
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 m = _mm256_set1_ps(iscale);
        for (int j = 0; j < 256; j += 32) {
            const __m256i q = FN(pack32)(_mm256_mul_ps(_mm256_loadu_ps(x + j), m), _mm256_mul_ps(_mm256_loadu_ps(x + j + 8), m),
                                         _mm256_mul_ps(_mm256_loadu_ps(x + j + 16), m),
                                         _mm256_mul_ps(_mm256_loadu_ps(x + j + 24), m));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), q);
            /* bsums: 16-element sums of the 32 bytes just written */
            const __m256i w16 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
            const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(w16), _mm_shuffle_epi32(_mm256_castsi256_si128(w16), 0x4e));
            const __m128i t4 = _mm_add_epi32(_mm256_extracti128_si256(w16, 1),
                                             _mm_shuffle_epi32(_mm256_extracti128_si256(w16, 1), 0x4e));
            y[i].bsums[j / 16] = (int16_t)(_mm_cvtsi128_si32(s4) + _mm_extract_epi32(s4, 1));
            y[i].bsums[j / 16 + 1] = (int16_t)(_mm_cvtsi128_si32(t4) + _mm_extract_epi32(t4, 1));
        }
        y[i].d = 1 / iscale;
    }
}

static void FN(act_f16)(const float *x, void *xq, int64_t n)
{
    uint16_t *h = xq;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = mp_fp32_to_fp16(x[i]);
}

static void FN(act_bf16)(const float *x, void *xq, int64_t n)
{
    uint16_t *h = xq;
    int64_t i = 0;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    const __m256i absmask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_loadu_si256((const __m256i *)(x + i));
        const __m256i rne = _mm256_srli_epi32(
            _mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one))), 16);
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absmask), inf);
        const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
        const __m256i r = _mm256_blendv_epi8(rne, qnan, nan);
        /* 8 x u32 (each < 65536) -> 8 x u16 */
        const __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storeu_si128((__m128i *)(h + i), p);
    }
    for (; i < n; i++) h[i] = mp_fp32_to_bf16(x[i]);
}

/* Fills the 256-bit entries common to both ISAs. */
static void FN(fill_common)(mp_kernel_table *t)
{
    t->vec_dot[MP_TYPE_F32] = FN(dot_f32);
    t->vec_dot[MP_TYPE_F16] = FN(dot_f16);
    t->vec_dot[MP_TYPE_BF16] = FN(dot_bf16);
    t->vec_dot[MP_TYPE_Q8_0] = FN(dot_q8_0);
    t->vec_dot[MP_TYPE_Q4_0] = FN(dot_q4_0);
    t->vec_dot[MP_TYPE_Q4_K] = FN(dot_q4_K);
    t->vec_dot[MP_TYPE_Q5_K] = FN(dot_q5_K);
    t->vec_dot[MP_TYPE_Q6_K] = FN(dot_q6_K);
    t->vec_dot[MP_TYPE_Q2_K] = FN(dot_q2_K);
    t->vec_dot[MP_TYPE_Q3_K] = FN(dot_q3_K);
    t->vec_dot[MP_TYPE_IQ4_XS] = FN(dot_iq4_xs);
    t->vec_dot[MP_TYPE_IQ4_NL] = FN(dot_iq4_nl);
    t->vec_dot[MP_TYPE_MXFP4] = FN(dot_mxfp4); /* tinyBLAS does not take MXFP4: vec_dot order in every mode */
    t->vec_dot[MP_TYPE_Q5_0] = FN(dot_q5_0);
    t->vec_dot[MP_TYPE_Q5_1] = FN(dot_q5_1); /* nor Q5_1 (a register tile below keeps its order) */
    t->quant_act[MP_TYPE_Q8_1] = FN(act_q8_1);
    t->gemm[MP_TYPE_IQ4_NL][0] = FN(gemm_iq4_nl_4x1);
    t->gemm[MP_TYPE_IQ4_NL][1] = FN(gemm_iq4_nl_4x2);
    t->gemm[MP_TYPE_IQ4_NL][2] = FN(gemm_iq4_nl_4x3);
    t->gemm[MP_TYPE_IQ4_NL][3] = FN(gemm_iq4_nl_4x4);
    t->gemm1[MP_TYPE_IQ4_NL] = FN(gemm_iq4_nl_1x1);
    t->gemm_step[MP_TYPE_IQ4_NL] = 32;
    t->gemm_any_rows[MP_TYPE_IQ4_NL] = true;
    t->panel[MP_TYPE_IQ4_XS] = FN(panel_iq4_xs);
    t->quant_act[MP_TYPE_F16] = FN(act_f16);
    t->quant_act[MP_TYPE_BF16] = FN(act_bf16);
    t->quant_act[MP_TYPE_Q8_0] = FN(act_q8_0);
    t->quant_act[MP_TYPE_Q8_K] = FN(act_q8_K);
    t->gemm_step[MP_TYPE_F32] = t->gemm_step[MP_TYPE_F16] = t->gemm_step[MP_TYPE_BF16] = 8;
    t->gemm[MP_TYPE_F32][0] = FN(gemm_f32_4x1);
    t->gemm[MP_TYPE_F32][1] = FN(gemm_f32_4x2);
    t->gemm[MP_TYPE_F32][2] = FN(gemm_f32_4x3);
    t->gemm[MP_TYPE_F32][3] = FN(gemm_f32_4x4);
    t->gemm1[MP_TYPE_F32] = FN(gemm_f32_1x1);
    t->gemm[MP_TYPE_F16][0] = FN(gemm_f16_4x1);
    t->gemm[MP_TYPE_F16][1] = FN(gemm_f16_4x2);
    t->gemm[MP_TYPE_F16][2] = FN(gemm_f16_4x3);
    t->gemm[MP_TYPE_F16][3] = FN(gemm_f16_4x4);
    t->gemm1[MP_TYPE_F16] = FN(gemm_f16_1x1);
    t->gemm[MP_TYPE_BF16][0] = FN(gemm_bf16_4x1);
    t->gemm[MP_TYPE_BF16][1] = FN(gemm_bf16_4x2);
    t->gemm[MP_TYPE_BF16][2] = FN(gemm_bf16_4x3);
    t->gemm[MP_TYPE_BF16][3] = FN(gemm_bf16_4x4);
    t->gemm1[MP_TYPE_BF16] = FN(gemm_bf16_1x1);
    MP_SET_TILES(t, MP_TYPE_Q4_0, tile_q4_0);
    MP_SET_TILES(t, MP_TYPE_Q5_0, tile_q5_0);
    MP_SET_TILES(t, MP_TYPE_Q5_1, tile_q5_1);
    MP_SET_TILES(t, MP_TYPE_Q2_K, tile_q2_K);
    MP_SET_TILES(t, MP_TYPE_Q3_K, tile_q3_K);
    MP_SET_TILES(t, MP_TYPE_MXFP4, tile_mxfp4);
#if MP_VNNI
    MP_SET_TILES(t, MP_TYPE_Q8_0, tile_q8_0);
#endif
}
