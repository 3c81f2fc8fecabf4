/* The prompt path's attention for one layer, one thread: T tokens at
 * positions 0..T-1 (causal), H query heads over HKV key/value heads, as
 * forward.c's attn_worker calls it for T >= 64, with each ISA the CPU has:
 * one mp_attend_f16_masked call per (token, head), and one
 * mp_attend_f16_group call per (token, key head). Prints the best of a few
 * repeats in ms per layer (min, so that other load on the machine shows
 * less) and checks that both give the same bits.
 *
 *   bench_attn [T H HKV DK DV WINDOW SINKS]     (default: gpt-oss-20b, T 128:
 *                                               128 64 8 64 64 128 1)
 *   bench_attn 512 32 8 128 128 0 0             (mixtral, a 512-token prompt) */
#include "common/types.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int T = 128, H = 64, HKV = 8, dk = 64, dv = 64, win = 128, sinks_on = 1;
    if (argc == 8) {
        T = atoi(argv[1]), H = atoi(argv[2]), HKV = atoi(argv[3]), dk = atoi(argv[4]), dv = atoi(argv[5]);
        win = atoi(argv[6]), sinks_on = atoi(argv[7]);
    } else if (argc != 1) {
        fprintf(stderr, "usage: bench_attn [T H HKV DK DV WINDOW SINKS]\n");
        return 2;
    }
    if (T < 1 || H < 1 || HKV < 1 || H % HKV || dk < 1 || dv < 1 || dk > 1024 || dv > 1024) {
        fprintf(stderr, "bench_attn: bad shape\n");
        return 2;
    }
    const int gqa = H / HKV;
    const int64_t Dk = (int64_t)HKV * dk, Dv = (int64_t)HKV * dv;
    uint16_t *kc = malloc(sizeof(uint16_t) * (size_t)(T * Dk)), *vc = malloc(sizeof(uint16_t) * (size_t)(T * Dv));
    float *q = malloc(sizeof(float) * (size_t)T * H * dk), *sinks = malloc(sizeof(float) * H);
    float *o1 = malloc(sizeof(float) * (size_t)T * H * dv), *og = malloc(sizeof(float) * (size_t)T * H * dv);
    float scores[64], kbuf[1024];
    uint64_t r = 88172645463325252ull;
#define RND() ((float)((r ^= r << 13, r ^= r >> 7, r ^= r << 17) >> 40) / 16777216.0f * 2.0f - 1.0f)
    for (int64_t i = 0; i < T * Dk; i++) kc[i] = mp_fp32_to_fp16(RND());
    for (int64_t i = 0; i < T * Dv; i++) vc[i] = mp_fp32_to_fp16(RND());
    for (int64_t i = 0; i < (int64_t)T * H * dk; i++) q[i] = 2.0f * RND();
    for (int h = 0; h < H; h++) sinks[h] = RND();
    const float scale = 1.0f / sqrtf((float)dk);
    printf("T %d H %d HKV %d dk %d dv %d window %d sinks %d\n", T, H, HKV, dk, dv, win, sinks_on);
    for (int isa = MP_ISA_SCALAR; isa <= MP_ISA_AVX512; isa++) {
        if (!mp_kernels_set_isa((mp_isa)isa)) continue;
        double best1 = 1e30, bestg = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now();
            for (int t = 0; t < T; t++) {
                const int j0 = win > 0 && t - win + 1 > 0 ? t - win + 1 : 0;
                for (int h = 0; h < H; h++) {
                    const mp_attn_mask mk = {j0, sinks_on ? sinks + h : NULL};
                    mp_attend_f16_masked(o1 + ((int64_t)t * H + h) * dv, q + ((int64_t)t * H + h) * dk,
                                         kc + (int64_t)(h / gqa) * dk, Dk, vc + (int64_t)(h / gqa) * dv, Dv, t + 1, dk,
                                         dv, scale, &mk, scores, kbuf);
                }
            }
            double t1 = now();
            for (int t = 0; t < T; t++) {
                const int j0 = win > 0 && t - win + 1 > 0 ? t - win + 1 : 0;
                for (int hk = 0; hk < HKV; hk++)
                    mp_attend_f16_group(og + ((int64_t)t * H + hk * gqa) * dv, dv, q + ((int64_t)t * H + hk * gqa) * dk,
                                        dk, gqa, kc + (int64_t)hk * dk, Dk, vc + (int64_t)hk * dv, Dv, t + 1, dk, dv,
                                        scale, j0, sinks_on ? sinks + hk * gqa : NULL, scores, kbuf);
            }
            double t2 = now();
            best1 = t1 - t0 < best1 ? t1 - t0 : best1;
            bestg = t2 - t1 < bestg ? t2 - t1 : bestg;
        }
        const int same = !memcmp(o1, og, sizeof(float) * (size_t)T * H * dv);
        printf("%-7s one query per call %8.3f ms   GQA group per call %8.3f ms   (%.2fx)  %s\n",
               mp_isa_name((mp_isa)isa), 1e3 * best1, 1e3 * bestg, best1 / bestg, same ? "same bits" : "DIFFERENT");
    }
    free(kc);
    free(vc);
    free(q);
    free(sinks);
    free(o1);
    free(og);
    return 0;
}
