/* 512-bit kernels over the interleaved layouts (kernels.h, mp_block_*x4),
 * included by kernels_avx512.c after x86_repack.h (whose rp_k4_hdr and
 * rp_prefetch they use); they replace its 256-bit ones for all five types.
 * One call computes a group of 4 rows x C tokens.
 *
 * Each zmm holds two rows (K-quants: the row pair 2p in lanes 0..7, bytes
 * 0..31, and 2p+1 in lanes 8..15; Q4_0/Q8_0: see rp5_q40_q80_body). Exactness as x86_repack.h: each 256-bit half receives the
 * integers the plain 256-bit vec_dot (x86_impl.h) has in its 8 lanes (lane l:
 * the 4-byte products 4l..4l+3 of every 32-element step times their scale;
 * integer sums in any order), the same float scale product (weight d times
 * activation d, rounded once), one fma per block in block order, and the same
 * horizontal sums, taken per 256-bit half. What 512 bits buy: half the
 * instructions for the weights' unpacking and the products, and vpdpwssd
 * folding the scale madd and its add; a row pair's weights are unpacked once
 * per block for all C tokens. */

#define MP_AI static inline __attribute__((always_inline))

/* the low / high 256-bit half of a pair accumulator, summed as hsum_ps */
MP_AI float rp5_hsum(__m512 v, int hi)
{
    return FN(hsum_ps)(hi ? _mm512_extractf32x8_ps(v, 1) : _mm512_castps512_ps256(v));
}

/* 4 float lanes (128-bit lane k of v) summed as dot_q4_K sums its min lanes */
MP_AI float rp5_hsum4(__m512 v, int k)
{
    __m128 a = _mm512_extractf32x4_ps(v, k);
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

/* 32 activation bytes at p in both 256-bit halves */
MP_AI __m512i rp5_y(const int8_t *p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p)); }

/* lanes 0..7: v[2p], lanes 8..15: v[2p+1] (v: the four rows' d) */
MP_AI __m512 rp5_pair_ps(__m128 v, int p)
{
    const __m512i idx = _mm512_set_epi32(2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1,
                                         2 * p + 1, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v));
}

/* lanes 0..7: v[a], lanes 8..15: v[b] */
MP_AI __m512 rp5_two_ps(__m128 v, int a, int b)
{
    return _mm512_permutexvar_ps(_mm512_set_epi32(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a),
                                 _mm512_castps128_ps512(v));
}

/* ------------------------------------------------------------- Q4_0, Q8_0 */

/* as rp_q40_q80_body (VNNI): zmm j holds two rows of one block. Q4_0: the
 * 64 pair bytes as loaded give rows (0, 2) by the low nibbles and (1, 3) by
 * the high ones; Q8_0: rows (0, 1) and (2, 3). */
MP_AI void rp5_q40_q80_body(int64_t n, const void *W, const void *X, size_t xs, float *Y, int64_t ldy, const int C,
                            const int q8)
{
    __m512 acc[2][MP_TILE_C];
#pragma GCC unroll 4
    for (int t = 0; t < C; t++) acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* the unsigned weight's offset: Q4_0 stores q + 8; Q8_0 uses w ^ 0x80 = w + 128 */
    const __m512i off = q8 ? _mm512_set1_epi8((char)0x80) : _mm512_set1_epi8(8);
    const size_t gb = q8 ? sizeof(mp_block_q8_0x4) : sizeof(mp_block_q4_0x4);
    for (int64_t i = 0; i < n / 32; i++) {
        __m512i q[2];
        __m512 dv[2];
        if (C == 1) /* the lines MP_RP_STREAM_AHEAD bytes past this group (rp_ahead) */
            FN(rp_prefetch)((const uint8_t *)W + i * gb + MP_RP_STREAM_AHEAD, gb);
        if (q8) {
            const mp_block_q8_0x4 *g = (const mp_block_q8_0x4 *)W + i;
            const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g->d));
            q[0] = _mm512_xor_si512(_mm512_loadu_si512((const void *)g->qs[0]), off);
            q[1] = _mm512_xor_si512(_mm512_loadu_si512((const void *)g->qs[2]), off);
            dv[0] = rp5_two_ps(dw, 0, 1);
            dv[1] = rp5_two_ps(dw, 2, 3);
        } else {
            const mp_block_q4_0x4 *g = (const mp_block_q4_0x4 *)W + i;
            const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g->d));
            const __m512i v = _mm512_loadu_si512((const void *)g->qs);
            q[0] = _mm512_and_si512(v, m4);
            q[1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            dv[0] = rp5_two_ps(dw, 0, 2);
            dv[1] = rp5_two_ps(dw, 1, 3);
        }
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) {
            const mp_block_q8_0 *yb = (const mp_block_q8_0 *)((const uint8_t *)X + t * xs) + i;
            const __m512i y = rp5_y(yb->qs);
            const __m512 dy = _mm512_set1_ps(FN(h2f)(yb->d));
            const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, y));
#pragma GCC unroll 2
            for (int j = 0; j < 2; j++) {
                const __m512i p = _mm512_dpbusd_epi32(corr, q[j], y);
                acc[j][t] = _mm512_fmadd_ps(_mm512_mul_ps(dv[j], dy), _mm512_cvtepi32_ps(p), acc[j][t]);
            }
        }
    }
    /* row r: Q4_0 in zmm r % 2, half r / 2; Q8_0 in zmm r / 2, half r % 2 */
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            Y[t * ldy + r] = q8 ? rp5_hsum(acc[r / 2][t], r % 2) : rp5_hsum(acc[r % 2][t], r / 2);
}

/* ------------------------------------------------------------- Q4_K, Q5_K */

/* q5: Q5_K (the fifth bit from qh; the min term summed to one integer per
 * block and added as a float scalar, as dot_q5_K), else Q4_K (the min term in
 * 4 float lanes per row, as dot_q4_K). */
MP_AI void rp5_k45_body(int64_t n, const void *W, const void *X, size_t xs, float *Y, int64_t ldy, const int C,
                        const int q5)
{
    __m512 acc[2][MP_TILE_C];
    /* Q4_K: lanes 4r..4r+3 hold row r's 4 min lanes */
    __m512 accm[MP_TILE_C];
    float accm5[4][MP_TILE_C];
#pragma GCC unroll 4
    for (int t = 0; t < C; t++) {
        acc[0][t] = acc[1][t] = accm[t] = _mm512_setzero_ps();
        accm5[0][t] = accm5[1][t] = accm5[2][t] = accm5[3][t] = 0;
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
    /* 128-bit lanes (s_2p, s_2p, s_2p+1, s_2p+1) from (s_2p, s_2p+1) */
    const __m512i dup = _mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0);
    const __m512i row4 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    for (int64_t i = 0; i < n / 256; i++) {
        const mp_block_q4_Kx4 *g4 = (const mp_block_q4_Kx4 *)W + i;
        const mp_block_q5_Kx4 *g5 = (const mp_block_q5_Kx4 *)W + i;
        const uint16_t *gd = q5 ? g5->d : g4->d, *gdmin = q5 ? g5->dmin : g4->dmin;
        if (q5) FN(rp_prefetch)(g5 + FN(rp_ahead)(sizeof *g5, C), sizeof *g5);
        else FN(rp_prefetch)(g4 + FN(rp_ahead)(sizeof *g4, C), sizeof *g4);
        const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)gd));
        const __m128 dmw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)gdmin));
        __m128i sc8[2], m8[2];
        FN(rp_k4_hdr)(q5 ? g5->w : g4->w, sc8, m8);
        /* the four rows' 8 mins as int16, row r in 128-bit lane r */
        const __m512i m16 = _mm512_cvtepu8_epi16(_mm256_set_m128i(m8[1], m8[0]));
        const __m512 dminv = _mm512_permutexvar_ps(row4, _mm512_castps128_ps512(dmw));
#pragma GCC unroll 2
        for (int p = 0; p < 2; p++) {
            const __m512i s16 = _mm512_permutexvar_epi64(dup, _mm512_castsi256_si512(_mm256_cvtepu8_epi16(sc8[p])));
            const __m512 dv = rp5_pair_ps(dw, p);
            __m512i lo[4], hi[4];
            __m512i qh = q5 ? _mm512_loadu_si512((const void *)g5->qh[2 * p]) : _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const __m512i q = _mm512_loadu_si512((const void *)(q5 ? g5->qs[c][2 * p] : g4->qs[c][2 * p]));
                lo[c] = _mm512_and_si512(q, m4);
                hi[c] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
                if (q5) {
                    /* bit 2c of qh: bit 4 of the low-nibble value, bit 2c+1 of the high one */
                    lo[c] = _mm512_or_si512(lo[c], _mm512_and_si512(_mm512_slli_epi16(qh, 4), b4));
                    hi[c] = _mm512_or_si512(hi[c], _mm512_and_si512(_mm512_slli_epi16(qh, 3), b4));
                    qh = _mm512_srli_epi16(qh, 2);
                }
            }
            __m512i scv[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) scv[j] = _mm512_shuffle_epi8(s16, _mm512_set1_epi16((short)((2 * j) | ((2 * j + 1) << 8))));
#pragma GCC unroll 4
            for (int t = 0; t < C; t++) {
                const mp_block_q8_K *b = (const mp_block_q8_K *)((const uint8_t *)X + t * xs) + i;
                /* two chains of vpdpwssd (its latency, not the ports, bounded one) */
                __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) {
                    const __m512i plo = _mm512_maddubs_epi16(lo[c], rp5_y(b->qs + 64 * c));
                    const __m512i phi = _mm512_maddubs_epi16(hi[c], rp5_y(b->qs + 64 * c + 32));
                    s0 = _mm512_dpwssd_epi32(s0, plo, scv[2 * c]);
                    s1 = _mm512_dpwssd_epi32(s1, phi, scv[2 * c + 1]);
                }
                const __m512i sumi = _mm512_add_epi32(s0, s1);
                acc[p][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(b->d), dv), _mm512_cvtepi32_ps(sumi), acc[p][t]);
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) {
            const mp_block_q8_K *b = (const mp_block_q8_K *)((const uint8_t *)X + t * xs) + i;
            /* bs_j = bsums[2j] + bsums[2j+1]; lane 4r+k: row r's m_2k bs_2k + m_2k+1 bs_2k+1 */
            const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)b->bsums),
                                              _mm_loadu_si128((const __m128i *)b->bsums + 1));
            const __m512i mprod = _mm512_madd_epi16(m16, _mm512_broadcast_i32x4(bs));
            if (!q5) {
                accm[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(-b->d), dminv), _mm512_cvtepi32_ps(mprod), accm[t]);
            } else {
                __m512i s = _mm512_add_epi32(mprod, _mm512_shuffle_epi32(mprod, 0x4e));
                s = _mm512_add_epi32(s, _mm512_shuffle_epi32(s, 0xb1));
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    const int summ = _mm_cvtsi128_si32(_mm512_extracti32x4_epi32(s, r));
                    const float dmin = ((const float *)&dmw)[r];
                    accm5[r][t] += b->d * dmin * (float)summ; /* the same expression (and contraction) as dot_q5_K */
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            Y[t * ldy + r] = q5 ? rp5_hsum(acc[r / 2][t], r % 2) - accm5[r][t]
                                : rp5_hsum(acc[r / 2][t], r % 2) + rp5_hsum4(accm[t], r);
}

/* ------------------------------------------------------------------- Q6_K */

/* as dot_q6_K: unsigned 6-bit values (+32), the offset removed per block
 * through the bsums (here as the sum's starting value), one fma per block */
MP_AI void rp5_q6_K_body(int64_t n, const void *W, const void *X, size_t xs, float *Y, int64_t ldy, const int C)
{
    __m512 acc[2][MP_TILE_C];
#pragma GCC unroll 4
    for (int t = 0; t < C; t++) acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x30);
    /* vpermw index of step (h, k) minus 8h + 2k: word w of the result takes
     * scale 8h + 2k + (w / 8 % 2) of row w / 16 (words 16..31 of the source) */
    static const int16_t k_sidx[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                       16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17, 17, 17};
    const __m512i sidx = _mm512_loadu_si512((const void *)k_sidx);
    for (int64_t i = 0; i < n / 256; i++) {
        const mp_block_q6_Kx4 *g = (const mp_block_q6_Kx4 *)W + i;
        FN(rp_prefetch)(g + FN(rp_ahead)(sizeof *g, C), sizeof *g);
        const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g->d));
#pragma GCC unroll 2
        for (int p = 0; p < 2; p++) {
            const mp_q6_K_pair *pr = &g->p[p];
            /* rows 2p, 2p+1: 16 scales each as int16 */
            const __m512i s16 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)g->scales[2 * p]));
            /* -32 * scale: the +32 offset's correction, as one vpmaddwd with the bsums */
            const __m512i offs = _mm512_sub_epi16(_mm512_setzero_si512(), _mm512_slli_epi16(s16, 5));
            const __m512 dv = rp5_pair_ps(dw, p);
            __m512i q[2][4], scv[2][4];
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const __m512i qh = _mm512_loadu_si512((const void *)pr->qh[h]);
                const __m512i l0 = _mm512_loadu_si512((const void *)pr->ql[2 * h]);
                const __m512i l1 = _mm512_loadu_si512((const void *)pr->ql[2 * h + 1]);
                q[h][0] = _mm512_or_si512(_mm512_and_si512(l0, m4), _mm512_and_si512(_mm512_slli_epi16(qh, 4), m2));
                q[h][1] = _mm512_or_si512(_mm512_and_si512(l1, m4), _mm512_and_si512(_mm512_slli_epi16(qh, 2), m2));
                q[h][2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0, 4), m4), _mm512_and_si512(qh, m2));
                q[h][3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4),
                                          _mm512_and_si512(_mm512_srli_epi16(qh, 2), m2));
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++)
                    scv[h][k] = _mm512_permutexvar_epi16(_mm512_add_epi16(sidx, _mm512_set1_epi16((short)(8 * h + 2 * k))), s16);
            }
#pragma GCC unroll 4
            for (int t = 0; t < C; t++) {
                const mp_block_q8_K *b = (const mp_block_q8_K *)((const uint8_t *)X + t * xs) + i;
                const __m512i bs = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b->bsums));
                /* two chains of vpdpwssd, as above */
                __m512i sh[2] = {_mm512_madd_epi16(bs, offs), _mm512_setzero_si512()};
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
                    for (int k = 0; k < 4; k++) {
                        const __m512i pq = _mm512_maddubs_epi16(q[h][k], rp5_y(b->qs + 128 * h + 32 * k));
                        sh[k & 1] = _mm512_dpwssd_epi32(sh[k & 1], pq, scv[h][k]);
                    }
                const __m512i sumi = _mm512_add_epi32(sh[0], sh[1]);
                acc[p][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(b->d), dv), _mm512_cvtepi32_ps(sumi), acc[p][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) Y[t * ldy + r] = rp5_hsum(acc[r / 2][t], r % 2);
}

#define MP_DEF_RP5(NAME, C, BODY)                                                                   \
    static void NAME##_##C(int64_t n, const void *W, size_t ws, const void *X, size_t xs, float *Y, int64_t ldy) \
    {                                                                                               \
        (void)ws;                                                                                   \
        BODY;                                                                                       \
    }
MP_DEF_RP5(rp5_q4_0, 1, rp5_q40_q80_body(n, W, X, xs, Y, ldy, 1, 0))
MP_DEF_RP5(rp5_q4_0, 2, rp5_q40_q80_body(n, W, X, xs, Y, ldy, 2, 0))
MP_DEF_RP5(rp5_q4_0, 3, rp5_q40_q80_body(n, W, X, xs, Y, ldy, 3, 0))
MP_DEF_RP5(rp5_q4_0, 4, rp5_q40_q80_body(n, W, X, xs, Y, ldy, 4, 0))
MP_DEF_RP5(rp5_q8_0, 1, rp5_q40_q80_body(n, W, X, xs, Y, ldy, 1, 1))
MP_DEF_RP5(rp5_q8_0, 2, rp5_q40_q80_body(n, W, X, xs, Y, ldy, 2, 1))
MP_DEF_RP5(rp5_q8_0, 3, rp5_q40_q80_body(n, W, X, xs, Y, ldy, 3, 1))
MP_DEF_RP5(rp5_q8_0, 4, rp5_q40_q80_body(n, W, X, xs, Y, ldy, 4, 1))
MP_DEF_RP5(rp5_q4_K, 1, rp5_k45_body(n, W, X, xs, Y, ldy, 1, 0))
MP_DEF_RP5(rp5_q4_K, 2, rp5_k45_body(n, W, X, xs, Y, ldy, 2, 0))
MP_DEF_RP5(rp5_q4_K, 3, rp5_k45_body(n, W, X, xs, Y, ldy, 3, 0))
MP_DEF_RP5(rp5_q4_K, 4, rp5_k45_body(n, W, X, xs, Y, ldy, 4, 0))
MP_DEF_RP5(rp5_q5_K, 1, rp5_k45_body(n, W, X, xs, Y, ldy, 1, 1))
MP_DEF_RP5(rp5_q5_K, 2, rp5_k45_body(n, W, X, xs, Y, ldy, 2, 1))
MP_DEF_RP5(rp5_q5_K, 3, rp5_k45_body(n, W, X, xs, Y, ldy, 3, 1))
MP_DEF_RP5(rp5_q5_K, 4, rp5_k45_body(n, W, X, xs, Y, ldy, 4, 1))
MP_DEF_RP5(rp5_q6_K, 1, rp5_q6_K_body(n, W, X, xs, Y, ldy, 1))
MP_DEF_RP5(rp5_q6_K, 2, rp5_q6_K_body(n, W, X, xs, Y, ldy, 2))
MP_DEF_RP5(rp5_q6_K, 3, rp5_q6_K_body(n, W, X, xs, Y, ldy, 3))
MP_DEF_RP5(rp5_q6_K, 4, rp5_q6_K_body(n, W, X, xs, Y, ldy, 4))
#undef MP_DEF_RP5

static void fill_repack512(mp_kernel_table *t)
{
    t->rp[MP_TYPE_Q4_0][0] = rp5_q4_0_1;
    t->rp[MP_TYPE_Q4_0][1] = rp5_q4_0_2;
    t->rp[MP_TYPE_Q4_0][2] = rp5_q4_0_3;
    t->rp[MP_TYPE_Q4_0][3] = rp5_q4_0_4;
    t->rp[MP_TYPE_Q8_0][0] = rp5_q8_0_1;
    t->rp[MP_TYPE_Q8_0][1] = rp5_q8_0_2;
    t->rp[MP_TYPE_Q8_0][2] = rp5_q8_0_3;
    t->rp[MP_TYPE_Q8_0][3] = rp5_q8_0_4;
    t->rp[MP_TYPE_Q4_K][0] = rp5_q4_K_1;
    t->rp[MP_TYPE_Q4_K][1] = rp5_q4_K_2;
    t->rp[MP_TYPE_Q4_K][2] = rp5_q4_K_3;
    t->rp[MP_TYPE_Q4_K][3] = rp5_q4_K_4;
    t->rp[MP_TYPE_Q5_K][0] = rp5_q5_K_1;
    t->rp[MP_TYPE_Q5_K][1] = rp5_q5_K_2;
    t->rp[MP_TYPE_Q5_K][2] = rp5_q5_K_3;
    t->rp[MP_TYPE_Q5_K][3] = rp5_q5_K_4;
    t->rp[MP_TYPE_Q6_K][0] = rp5_q6_K_1;
    t->rp[MP_TYPE_Q6_K][1] = rp5_q6_K_2;
    t->rp[MP_TYPE_Q6_K][2] = rp5_q6_K_3;
    t->rp[MP_TYPE_Q6_K][3] = rp5_q6_K_4;
}
#undef MP_AI
