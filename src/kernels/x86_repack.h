/* 256-bit kernels over the interleaved layout (kernels.h, mp_block_*x4),
 * included after x86_impl.h by kernels_avx2.c and kernels_avx512.c. One
 * call computes a group of 4 rows x C tokens (C = 1..MP_TILE_C).
 *
 * Exactness: each output keeps the plain vec_dot's 8-lane float accumulator
 * (and Q4_K's 4-lane min accumulator), each lane receives the same integer
 * as there (lane l sums the products of bytes 4l..4l+3 of a 32-element step,
 * in whatever integer order: integer sums are exact), the same float scale
 * product (weight d times activation d, rounded once), one fma per block in
 * block order, and the same horizontal sums. What the layout buys: one
 * contiguous stream per group instead of four, each activation block loaded
 * (and its offset correction computed) once per four rows, Q4_0 nibbles split
 * by one mask or shift per row, Q4_K scale words unpacked for four rows by
 * 128-bit ops, the four weight scales converted by one vcvtph2ps. */

#define MP_AI static inline __attribute__((always_inline))

/* lane r of v (4 floats) broadcast to 8 lanes */
MP_AI __m256 FN(rp_lane)(__m128 v, int r)
{
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_set1_epi32(r));
}

/* Software prefetch of a whole group block ahead (within the group or, past
 * its end, the next group, which follows in memory; a prefetch never faults).
 * Measured on Zen 5 at one token from DRAM: without it the Q6_K kernel, whose
 * body for one 840-byte block is longer than the out-of-order window, waited
 * on each block's first line (10 GB/s against the plain vec_dot's 31). */
MP_AI void FN(rp_prefetch)(const void *p, size_t bytes)
{
#pragma GCC unroll 16
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

/* How far ahead of a group in the interleaved layout the prefetches go. One
 * token reads each matrix once at the memory bus's pace with little
 * arithmetic per byte, and the hardware prefetcher alone keeps too few lines
 * in flight: there the prefetch runs MP_RP_STREAM_AHEAD bytes ahead. Several
 * tokens reuse each block (compute-bound): two blocks ahead, as it was.
 * Measured at one token, two threads, in RAM on Zen 5 (bench_engine tg128 on
 * the shared bench shape, 10-20 alternating rounds each): Q4_0 +5-10% and
 * Q8_0 +4-9% against no software prefetch for 1.5-4 KiB, 3 KiB best on both;
 * Q4_K +4-5% and Q6_K +2-4% at 4-6 blocks against 2 blocks
 * (docs/measurements/session-2026-12-07.md). */
#define MP_RP_STREAM_AHEAD 3072

/* groups of `bytes` bytes to prefetch ahead for C tokens */
MP_AI size_t FN(rp_ahead)(size_t bytes, int C) { return C == 1 ? (MP_RP_STREAM_AHEAD + bytes - 1) / bytes : 2; }

/* ------------------------------------------------------------- Q4_0, Q8_0 */

MP_AI void FN(rp_q40_q80_body)(int64_t n, const void *W, const void *X, size_t xs, float *Y, int64_t ldy,
                               const int C, const int q8)
{
    __m256 acc[4][MP_TILE_C];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    /* the unsigned weight's offset: Q4_0 stores q + 8; Q8_0 (VNNI) uses w ^ 0x80 = w + 128 */
    const __m256i off = q8 ? _mm256_set1_epi8((char)0x80) : _mm256_set1_epi8(8);
    const size_t gb = q8 ? sizeof(mp_block_q8_0x4) : sizeof(mp_block_q4_0x4);
    for (int64_t i = 0; i < n / 32; i++) {
        __m256i q[4], qa[4];
        __m128 dw;
        if (C == 1) /* the lines MP_RP_STREAM_AHEAD bytes past this group (rp_ahead) */
            FN(rp_prefetch)((const uint8_t *)W + i * gb + MP_RP_STREAM_AHEAD, gb);
        if (q8) {
            const mp_block_q8_0x4 *g = (const mp_block_q8_0x4 *)W + i;
            dw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g->d));
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                const __m256i w = _mm256_loadu_si256((const __m256i *)g->qs[r]);
#if MP_VNNI
                q[r] = _mm256_xor_si256(w, off);
                (void)qa;
#else
                /* maddubs would saturate on w + 128: the sign trick, as dot_q8_0 */
                q[r] = w;
                qa[r] = _mm256_abs_epi8(w);
#endif
            }
        } else {
            const mp_block_q4_0x4 *g = (const mp_block_q4_0x4 *)W + i;
            dw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g->d));
            const __m256i p01 = _mm256_loadu_si256((const __m256i *)g->qs);
            const __m256i p23 = _mm256_loadu_si256((const __m256i *)(g->qs + 32));
            q[0] = _mm256_and_si256(p01, m4);
            q[1] = _mm256_and_si256(_mm256_srli_epi16(p01, 4), m4);
            q[2] = _mm256_and_si256(p23, m4);
            q[3] = _mm256_and_si256(_mm256_srli_epi16(p23, 4), m4);
            (void)qa;
        }
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) {
            const mp_block_q8_0 *yb = (const mp_block_q8_0 *)((const uint8_t *)X + t * xs) + i;
            const __m256i y = _mm256_loadu_si256((const __m256i *)yb->qs);
            /* d_w * d_x per row, each product rounded once as in vec_dot */
            const __m128 dd = _mm_mul_ps(dw, _mm_set1_ps(FN(h2f)(yb->d)));
            __m256i corr = _mm256_setzero_si256();
            if (!q8 || MP_VNNI) corr = _mm256_sub_epi32(corr, FN(dpbusd)(_mm256_setzero_si256(), off, y));
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                __m256i p;
                if (q8 && !MP_VNNI)
                    p = FN(dpbusd)(_mm256_setzero_si256(), qa[r], _mm256_sign_epi8(y, q[r]));
                else
                    p = FN(dpbusd)(corr, q[r], y);
                acc[r][t] = _mm256_fmadd_ps(FN(rp_lane)(dd, r), _mm256_cvtepi32_ps(p), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) Y[t * ldy + r] = FN(hsum_ps)(acc[r][t]);
}

/* ------------------------------------------------------------- Q4_K, Q5_K */

/* The 6-bit scales and mins of four rows (k4_scales with one row per 32-bit
 * lane): bytes 8j..8j+7 of sc8[p] are the 8 scales of row 2p + j, of m8[p]
 * its 8 mins. */
MP_AI void FN(rp_k4_hdr)(const uint32_t w[3][4], __m128i sc8[2], __m128i m8[2])
{
    const __m128i k3f = _mm_set1_epi8(0x3F), k0f = _mm_set1_epi8(0x0F), k30 = _mm_set1_epi8(0x30);
    const __m128i w0 = _mm_loadu_si128((const __m128i *)w[0]);
    const __m128i w1 = _mm_loadu_si128((const __m128i *)w[1]);
    const __m128i w2 = _mm_loadu_si128((const __m128i *)w[2]);
    const __m128i sc_lo = _mm_and_si128(w0, k3f), m_lo = _mm_and_si128(w1, k3f);
    const __m128i sc_hi = _mm_or_si128(_mm_and_si128(w2, k0f), _mm_and_si128(_mm_srli_epi32(w0, 2), k30));
    const __m128i m_hi =
        _mm_or_si128(_mm_and_si128(_mm_srli_epi32(w2, 4), k0f), _mm_and_si128(_mm_srli_epi32(w1, 2), k30));
    sc8[0] = _mm_unpacklo_epi32(sc_lo, sc_hi);
    sc8[1] = _mm_unpackhi_epi32(sc_lo, sc_hi);
    m8[0] = _mm_unpacklo_epi32(m_lo, m_hi);
    m8[1] = _mm_unpackhi_epi32(m_lo, m_hi);
}

MP_AI void FN(rp_q4_K_body)(int64_t n, const void *W, const void *X, size_t xs, float *Y, int64_t ldy, const int C)
{
    __m256 acc[4][MP_TILE_C];
    __m128 accm[4][MP_TILE_C];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps(), accm[r][t] = _mm_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < n / 256; i++) {
        const mp_block_q4_Kx4 *g = (const mp_block_q4_Kx4 *)W + i;
        const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g->d));
        const __m128 dmw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g->dmin));
        FN(rp_prefetch)(g + FN(rp_ahead)(sizeof *g, C), sizeof *g);
        __m128i sc8[2], m8[2];
        FN(rp_k4_hdr)(g->w, sc8, m8);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m128i s8 = r & 1 ? _mm_srli_si128(sc8[r / 2], 8) : sc8[r / 2];
            const __m128i mm8 = r & 1 ? _mm_srli_si128(m8[r / 2], 8) : m8[r / 2];
            const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(s8));
            const __m128i m16 = _mm_cvtepu8_epi16(mm8);
            __m256i lo[4], hi[4];
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)g->qs[c][r]);
                lo[c] = _mm256_and_si256(q, m4);
                hi[c] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            }
            const float d = ((const float *)&dw)[r], dmin = ((const float *)&dmw)[r];
#pragma GCC unroll 4
            for (int t = 0; t < C; t++) {
                const mp_block_q8_K *b = (const mp_block_q8_K *)((const uint8_t *)X + t * xs) + i;
                const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)b->bsums),
                                                  _mm_loadu_si128((const __m128i *)b->bsums + 1));
                const __m128i mprod = _mm_madd_epi16(m16, bs);
                accm[r][t] = _mm_fmadd_ps(_mm_set1_ps(-b->d * dmin), _mm_cvtepi32_ps(mprod), accm[r][t]);
                __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) {
                    const __m256i plo = _mm256_maddubs_epi16(lo[c], _mm256_loadu_si256((const __m256i *)(b->qs + 64 * c)));
                    const __m256i phi =
                        _mm256_maddubs_epi16(hi[c], _mm256_loadu_si256((const __m256i *)(b->qs + 64 * c + 32)));
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_shuffle_epi8(sc, FN(word_bcast)(2 * c))));
                    sumi = _mm256_add_epi32(sumi,
                                            _mm256_madd_epi16(phi, _mm256_shuffle_epi8(sc, FN(word_bcast)(2 * c + 1))));
                }
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(b->d * d), _mm256_cvtepi32_ps(sumi), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m128 am = accm[r][t];
            am = _mm_add_ps(am, _mm_movehl_ps(am, am));
            am = _mm_add_ss(am, _mm_movehdup_ps(am));
            Y[t * ldy + r] = FN(hsum_ps)(acc[r][t]) + _mm_cvtss_f32(am);
        }
}

/* Q5_K as dot_q5_K: the min term summed to one integer per block and added
 * in a float scalar, Y = hsum(acc) - accm. */
MP_AI void FN(rp_q5_K_body)(int64_t n, const void *W, const void *X, size_t xs, float *Y, int64_t ldy, const int C)
{
    __m256 acc[4][MP_TILE_C];
    float accm[4][MP_TILE_C];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps(), accm[r][t] = 0;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    for (int64_t i = 0; i < n / 256; i++) {
        const mp_block_q5_Kx4 *g = (const mp_block_q5_Kx4 *)W + i;
        const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g->d));
        const __m128 dmw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g->dmin));
        FN(rp_prefetch)(g + FN(rp_ahead)(sizeof *g, C), sizeof *g);
        __m128i sc8[2], m8[2];
        FN(rp_k4_hdr)(g->w, sc8, m8);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m128i s8 = r & 1 ? _mm_srli_si128(sc8[r / 2], 8) : sc8[r / 2];
            const __m128i mm8 = r & 1 ? _mm_srli_si128(m8[r / 2], 8) : m8[r / 2];
            const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(s8));
            const __m128i m16 = _mm_cvtepu8_epi16(mm8);
            __m256i lo[4], hi[4];
            __m256i qh = _mm256_loadu_si256((const __m256i *)g->qh[r]);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)g->qs[c][r]);
                lo[c] = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), b4));
                hi[c] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                        _mm256_and_si256(_mm256_slli_epi16(qh, 3), b4));
                qh = _mm256_srli_epi16(qh, 2);
            }
            const float d = ((const float *)&dw)[r], dmin = ((const float *)&dmw)[r];
#pragma GCC unroll 4
            for (int t = 0; t < C; t++) {
                const mp_block_q8_K *b = (const mp_block_q8_K *)((const uint8_t *)X + t * xs) + i;
                const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)b->bsums),
                                                  _mm_loadu_si128((const __m128i *)b->bsums + 1));
                __m128i mprod = _mm_madd_epi16(m16, bs);
                mprod = _mm_add_epi32(mprod, _mm_shuffle_epi32(mprod, 0x4e));
                const int summ = _mm_cvtsi128_si32(_mm_add_epi32(mprod, _mm_shuffle_epi32(mprod, 0xb1)));
                __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) {
                    const __m256i plo = _mm256_maddubs_epi16(lo[c], _mm256_loadu_si256((const __m256i *)(b->qs + 64 * c)));
                    const __m256i phi =
                        _mm256_maddubs_epi16(hi[c], _mm256_loadu_si256((const __m256i *)(b->qs + 64 * c + 32)));
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_shuffle_epi8(sc, FN(word_bcast)(2 * c))));
                    sumi = _mm256_add_epi32(sumi,
                                            _mm256_madd_epi16(phi, _mm256_shuffle_epi8(sc, FN(word_bcast)(2 * c + 1))));
                }
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(b->d * d), _mm256_cvtepi32_ps(sumi), acc[r][t]);
                accm[r][t] += b->d * dmin * (float)summ; /* the same expression (and contraction) as dot_q5_K */
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) Y[t * ldy + r] = FN(hsum_ps)(acc[r][t]) - accm[r][t];
}

/* ------------------------------------------------------------------- Q6_K */

/* as dot_q6_K: unsigned 6-bit values (+32), the offset removed per block
 * through the bsums, one fma per block */
MP_AI void FN(rp_q6_K_body)(int64_t n, const void *W, const void *X, size_t xs, float *Y, int64_t ldy, const int C)
{
    __m256 acc[4][MP_TILE_C];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
    const __m256i ctl[4] = {
        _mm256_set_m128i(_mm_set1_epi16(0x0302), _mm_set1_epi16(0x0100)),
        _mm256_set_m128i(_mm_set1_epi16(0x0706), _mm_set1_epi16(0x0504)),
        _mm256_set_m128i(_mm_set1_epi16(0x0b0a), _mm_set1_epi16(0x0908)),
        _mm256_set_m128i(_mm_set1_epi16(0x0f0e), _mm_set1_epi16(0x0d0c)),
    };
    for (int64_t i = 0; i < n / 256; i++) {
        const mp_block_q6_Kx4 *g = (const mp_block_q6_Kx4 *)W + i;
        const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g->d));
        FN(rp_prefetch)(g + FN(rp_ahead)(sizeof *g, C), sizeof *g);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m128i sc8 = _mm_loadu_si128((const __m128i *)g->scales[r]);
            const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
            __m256i scw[2], q[2][4];
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                scw[h] = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
                const mp_q6_K_pair *pr = &g->p[r / 2];
                const __m256i qh = _mm256_loadu_si256((const __m256i *)pr->qh[h][r % 2]);
                const __m256i l0 = _mm256_loadu_si256((const __m256i *)pr->ql[2 * h][r % 2]);
                const __m256i l1 = _mm256_loadu_si256((const __m256i *)pr->ql[2 * h + 1][r % 2]);
                q[h][0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
                q[h][1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
                q[h][2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m2));
                q[h][3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
            }
            const float d = ((const float *)&dw)[r];
#pragma GCC unroll 4
            for (int t = 0; t < C; t++) {
                const mp_block_q8_K *b = (const mp_block_q8_K *)((const uint8_t *)X + t * xs) + i;
                __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
                    for (int k = 0; k < 4; k++) {
                        const __m256i y = _mm256_loadu_si256((const __m256i *)(b->qs + 128 * h + 32 * k));
                        const __m256i p = _mm256_maddubs_epi16(q[h][k], y);
                        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(scw[h], ctl[k])));
                    }
                const __m256i bs = _mm256_loadu_si256((const __m256i *)b->bsums);
                sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(b->d * d), _mm256_cvtepi32_ps(sumi), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < C; t++)
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) Y[t * ldy + r] = FN(hsum_ps)(acc[r][t]);
}

#define MP_DEF_RP(NAME, C, BODY)                                                                    \
    static void FN(NAME##_##C)(int64_t n, const void *W, size_t ws, const void *X, size_t xs,       \
                               float *Y, int64_t ldy)                                               \
    {                                                                                               \
        (void)ws;                                                                                   \
        BODY;                                                                                       \
    }
MP_DEF_RP(rp_q4_0, 1, FN(rp_q40_q80_body)(n, W, X, xs, Y, ldy, 1, 0))
MP_DEF_RP(rp_q4_0, 2, FN(rp_q40_q80_body)(n, W, X, xs, Y, ldy, 2, 0))
MP_DEF_RP(rp_q4_0, 3, FN(rp_q40_q80_body)(n, W, X, xs, Y, ldy, 3, 0))
MP_DEF_RP(rp_q4_0, 4, FN(rp_q40_q80_body)(n, W, X, xs, Y, ldy, 4, 0))
MP_DEF_RP(rp_q8_0, 1, FN(rp_q40_q80_body)(n, W, X, xs, Y, ldy, 1, 1))
MP_DEF_RP(rp_q8_0, 2, FN(rp_q40_q80_body)(n, W, X, xs, Y, ldy, 2, 1))
MP_DEF_RP(rp_q8_0, 3, FN(rp_q40_q80_body)(n, W, X, xs, Y, ldy, 3, 1))
MP_DEF_RP(rp_q8_0, 4, FN(rp_q40_q80_body)(n, W, X, xs, Y, ldy, 4, 1))
MP_DEF_RP(rp_q4_K, 1, FN(rp_q4_K_body)(n, W, X, xs, Y, ldy, 1))
MP_DEF_RP(rp_q4_K, 2, FN(rp_q4_K_body)(n, W, X, xs, Y, ldy, 2))
MP_DEF_RP(rp_q4_K, 3, FN(rp_q4_K_body)(n, W, X, xs, Y, ldy, 3))
MP_DEF_RP(rp_q4_K, 4, FN(rp_q4_K_body)(n, W, X, xs, Y, ldy, 4))
MP_DEF_RP(rp_q5_K, 1, FN(rp_q5_K_body)(n, W, X, xs, Y, ldy, 1))
MP_DEF_RP(rp_q5_K, 2, FN(rp_q5_K_body)(n, W, X, xs, Y, ldy, 2))
MP_DEF_RP(rp_q5_K, 3, FN(rp_q5_K_body)(n, W, X, xs, Y, ldy, 3))
MP_DEF_RP(rp_q5_K, 4, FN(rp_q5_K_body)(n, W, X, xs, Y, ldy, 4))
MP_DEF_RP(rp_q6_K, 1, FN(rp_q6_K_body)(n, W, X, xs, Y, ldy, 1))
MP_DEF_RP(rp_q6_K, 2, FN(rp_q6_K_body)(n, W, X, xs, Y, ldy, 2))
MP_DEF_RP(rp_q6_K, 3, FN(rp_q6_K_body)(n, W, X, xs, Y, ldy, 3))
MP_DEF_RP(rp_q6_K, 4, FN(rp_q6_K_body)(n, W, X, xs, Y, ldy, 4))
#undef MP_DEF_RP

static void FN(fill_repack)(mp_kernel_table *t)
{
    t->rp[MP_TYPE_Q4_0][0] = FN(rp_q4_0_1);
    t->rp[MP_TYPE_Q4_0][1] = FN(rp_q4_0_2);
    t->rp[MP_TYPE_Q4_0][2] = FN(rp_q4_0_3);
    t->rp[MP_TYPE_Q4_0][3] = FN(rp_q4_0_4);
    t->rp[MP_TYPE_Q8_0][0] = FN(rp_q8_0_1);
    t->rp[MP_TYPE_Q8_0][1] = FN(rp_q8_0_2);
    t->rp[MP_TYPE_Q8_0][2] = FN(rp_q8_0_3);
    t->rp[MP_TYPE_Q8_0][3] = FN(rp_q8_0_4);
    t->rp[MP_TYPE_Q4_K][0] = FN(rp_q4_K_1);
    t->rp[MP_TYPE_Q4_K][1] = FN(rp_q4_K_2);
    t->rp[MP_TYPE_Q4_K][2] = FN(rp_q4_K_3);
    t->rp[MP_TYPE_Q4_K][3] = FN(rp_q4_K_4);
    t->rp[MP_TYPE_Q5_K][0] = FN(rp_q5_K_1);
    t->rp[MP_TYPE_Q5_K][1] = FN(rp_q5_K_2);
    t->rp[MP_TYPE_Q5_K][2] = FN(rp_q5_K_3);
    t->rp[MP_TYPE_Q5_K][3] = FN(rp_q5_K_4);
    t->rp[MP_TYPE_Q6_K][0] = FN(rp_q6_K_1);
    t->rp[MP_TYPE_Q6_K][1] = FN(rp_q6_K_2);
    t->rp[MP_TYPE_Q6_K][2] = FN(rp_q6_K_3);
    t->rp[MP_TYPE_Q6_K][3] = FN(rp_q6_K_4);
}
#undef MP_AI
