/* The forward pass's ggml-numerics ops (src/model/ops.c): SwiGLU with ggml's
 * AVX-512 vector exp and the tiled flash attention (keys in tiles of 64).
 * Checks (1) accuracy against double-precision formulas and (2) that the
 * scalar fallback gives the same bits as the SIMD path: the test runs itself
 * again under MP_ISA=scalar and compares the raw outputs. Bit-equality with
 * llama.cpp itself is checked end to end by test_parity_llamacpp*.sh. */
#include "mp_test.h"

#include "kernels/ops.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float rnd(float lo, float hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (float)((rng >> 40) & 0xffffff) / 16777216.0f;
}

enum { NS = 16 * 40 + 9, NKV = 150, DK = 36, DV = 36, NQ = 4 }; /* 36: SIMD tails */

typedef struct results {
    float swiglu[NS];
    float att[2][NQ][DV]; /* dk = 36 and dk = 128 */
} results;

static void compute(results *r, bool check)
{
    float g[NS], u[NS];
    for (int i = 0; i < NS; i++) {
        /* most in the usual range, some where exp over- or underflows */
        g[i] = i % 37 == 0 ? rnd(-200.0f, 200.0f) : rnd(-12.0f, 12.0f);
        u[i] = rnd(-2.0f, 2.0f);
    }
    memcpy(r->swiglu, g, sizeof g);
    mp_swiglu(r->swiglu, u, NS);
    if (check) {
        int bad = 0;
        for (int i = 0; i < NS; i++) {
            const double want = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
            if (fabs(r->swiglu[i] - want) > 4e-7 * fabs(want) + 1e-30) bad++;
        }
        CHECKF(bad == 0, "swiglu: %d of %d values off by more than 4e-7 relative", bad, NS);
    }

    static const int dks[2] = {DK, 128};
    for (int c = 0; c < 2; c++) {
        const int dk = dks[c];
        uint16_t *k = malloc(sizeof(uint16_t) * NKV * dk), *v = malloc(sizeof(uint16_t) * NKV * DV);
        float *kf = malloc(sizeof(float) * NKV * dk), *vf = malloc(sizeof(float) * NKV * DV);
        for (int i = 0; i < NKV * dk; i++) kf[i] = rnd(-1.5f, 1.5f);
        for (int i = 0; i < NKV * DV; i++) vf[i] = rnd(-1.0f, 1.0f);
        mp_f32_to_f16_row(kf, k, NKV * dk);
        mp_f32_to_f16_row(vf, v, NKV * DV);
        mp_f16_to_f32_row(k, kf, NKV * dk);
        mp_f16_to_f32_row(v, vf, NKV * DV);
        float q[128], scores[NKV + 64], kbuf[128];
        const float scale = 1.0f / sqrtf((float)dk);
        for (int qi = 0; qi < NQ; qi++) {
            for (int d = 0; d < dk; d++) q[d] = rnd(-3.0f, 3.0f);
            /* n_kv: one partial tile, exactly one tile, two and a half */
            const int n_kv = qi == 0 ? 5 : qi == 1 ? 64 : qi == 2 ? 129 : NKV;
            float *o = r->att[c][qi];
            mp_attend_f16(o, q, k, dk, v, DV, n_kv, dk, DV, scale, scores, kbuf);
            if (check) {
                /* split-KV decode: one range is the one_chunk path bit for bit;
                 * three ranges over a 256-key view (the last one masked) stay accurate */
                float o1[DV], o3[DV], qb[128], part[DV];
                uint16_t a16[DV];
                mp_attend_f16_acc16(o1, q, k, dk, v, DV, n_kv, dk, DV, scale, qb, kbuf, a16);
                mp_attend_f16_split(o3, q, k, dk, v, DV, n_kv, 256, 1, dk, DV, scale, qb, kbuf, a16, part);
                CHECKF(!memcmp(o1, o3, sizeof o1), "split attention with one range != one_chunk (n_kv %d)", n_kv);
                mp_attend_f16_split(o3, q, k, dk, v, DV, n_kv, 256, 3, dk, DV, scale, qb, kbuf, a16, part);
                double e3 = 0.0;
                for (int d = 0; d < DV; d++) e3 = fmax(e3, fabs(o3[d] - o1[d]));
                CHECKF(e3 < 2e-3, "split attention, 3 ranges: off by %g from one range (n_kv %d)", e3, n_kv);
            }
            if (!check) continue;
            double s[NKV], mx = -INFINITY, sum = 0.0;
            for (int j = 0; j < n_kv; j++) {
                double dot = 0.0;
                for (int d = 0; d < dk; d++) dot += (double)q[d] * kf[j * dk + d];
                s[j] = dot * scale;
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int j = 0; j < n_kv; j++) sum += (s[j] = exp(s[j] - mx));
            double err = 0.0;
            for (int d = 0; d < DV; d++) {
                double want = 0.0;
                for (int j = 0; j < n_kv; j++) want += s[j] / sum * vf[j * DV + d];
                err = fmax(err, fabs(o[d] - want));
            }
            CHECKF(err < 2e-6, "attention dk %d n_kv %d: max error %g", dk, n_kv, err);
        }
        free(k);
        free(v);
        free(kf);
        free(vf);
    }
}

int main(int argc, char **argv)
{
    results *mine = calloc(1, sizeof *mine), *scalar = calloc(1, sizeof *scalar);
    if (argc == 2 && !strcmp(argv[1], "--child")) {
        compute(mine, false);
        const int ok = fwrite(mine, sizeof *mine, 1, stdout) == 1;
        free(mine);
        free(scalar);
        return ok ? 0 : 1;
    }
    compute(mine, true);

    /* the same computation under MP_ISA=scalar, in a child */
    int fd[2];
    CHECK(pipe(fd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        setenv("MP_ISA", "scalar", 1);
        execl("/proc/self/exe", argv[0], "--child", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t n;
    while (got < sizeof *scalar && (n = read(fd[0], (char *)scalar + got, sizeof *scalar - got)) > 0)
        got += (size_t)n;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECKF(got == sizeof *scalar && WIFEXITED(st) && WEXITSTATUS(st) == 0, "scalar child failed (%zu bytes)", got);
    if (got == sizeof *scalar) {
        int ds = 0, da = 0;
        for (int i = 0; i < NS; i++) ds += memcmp(&mine->swiglu[i], &scalar->swiglu[i], 4) != 0;
        const float *am = &mine->att[0][0][0], *as = &scalar->att[0][0][0];
        for (int i = 0; i < 2 * NQ * DV; i++) da += memcmp(am + i, as + i, 4) != 0;
        CHECKF(ds == 0, "swiglu: %d of %d values differ between the SIMD and scalar paths", ds, NS);
        CHECKF(da == 0, "attention: %d of %d values differ between the SIMD and scalar paths", da, 2 * NQ * DV);
    }
    free(mine);
    free(scalar);
    MP_TEST_DONE();
}
