/* Kernel benchmark: for each weight type and ISA, a decode-like matvec
 * (T = 1; GB/s of weight bytes) on 2816x1024 and 1024x2816 matrices, and a
 * prefill-like matmul (T = 64; GFLOP/s), single-threaded. Run pinned:
 *   taskset -c 1 ./bench_kernels [seconds-per-case]
 * With MP_BENCH_GGML=/path/libggml-cpu-<arch>.so (its libggml-base.so on
 * LD_LIBRARY_PATH) it also times ggml's vec_dot over the same data, rows in
 * the same order, as a baseline ("ggml" rows). Types with an interleaved
 * layout (kernels.h, MP_RP_ROWS) get a second row per ISA, "<isa>+rp": the
 * same matrices repacked, through mp_matmul_rows_ex(... | MP_MM_REPACKED).
 * MP_BENCH_TYPES=q4_K,q6_K limits the table to those types. The matrices fit
 * L3, so T = 1 here is not decode from DRAM: --dram TYPE [N] (below) is.
 *
 * Instruction counts (repeatable on a busy machine; valgrind's CPUID shows no
 * AVX-512, so this counts the AVX2 kernels):
 *   valgrind --tool=callgrind --toggle-collect='case_*' --callgrind-out-file=cg.out \
 *       ./bench_kernels --count TYPE   (e.g. q4_K)
 *   callgrind_annotate --inclusive=yes --threshold=100 cg.out | grep case_
 * runs each of case_repack (the in-place conversion), case_plain_t1,
 * case_rp_t1, case_plain_t64, case_rp_t64 once on the 2816x1024 matrix. */
#include "kernels/kernels.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef void (*ggml_vec_dot_t)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by,
                               int nrc);
static ggml_vec_dot_t ggml_dot[MP_TYPE_COUNT];

static void load_ggml(void)
{
    const char *path = getenv("MP_BENCH_GGML");
    if (!path) return;
    void *h = dlopen(path, RTLD_NOW);
    if (!h) {
        fprintf(stderr, "MP_BENCH_GGML: %s\n", dlerror());
        return;
    }
    static const struct { uint32_t t; const char *sym; } syms[] = {
        {MP_TYPE_F32, "ggml_vec_dot_f32"},          {MP_TYPE_F16, "ggml_vec_dot_f16"},
        {MP_TYPE_BF16, "ggml_vec_dot_bf16"},        {MP_TYPE_Q8_0, "ggml_vec_dot_q8_0_q8_0"},
        {MP_TYPE_Q4_0, "ggml_vec_dot_q4_0_q8_0"},   {MP_TYPE_Q4_K, "ggml_vec_dot_q4_K_q8_K"},
        {MP_TYPE_Q5_K, "ggml_vec_dot_q5_K_q8_K"},   {MP_TYPE_Q6_K, "ggml_vec_dot_q6_K_q8_K"},
        {MP_TYPE_Q2_K, "ggml_vec_dot_q2_K_q8_K"},   {MP_TYPE_Q3_K, "ggml_vec_dot_q3_K_q8_K"},
        {MP_TYPE_IQ4_NL, "ggml_vec_dot_iq4_nl_q8_0"}, {MP_TYPE_IQ4_XS, "ggml_vec_dot_iq4_xs_q8_K"},
        {MP_TYPE_MXFP4, "ggml_vec_dot_mxfp4_q8_0"}, {MP_TYPE_Q5_0, "ggml_vec_dot_q5_0_q8_0"},
        {MP_TYPE_Q5_1, "ggml_vec_dot_q5_1_q8_1"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) ggml_dot[syms[i].t] = (ggml_vec_dot_t)dlsym(h, syms[i].sym);
    void (*init)(void) = (void (*)(void))dlsym(h, "ggml_cpu_init");
    if (init) init();
}

/* ggml's way: vec_dot per (row, token), rows in blocks of 16 reused for all tokens. */
static void ggml_matmul(uint32_t wt, const uint8_t *W, int64_t ncols, int64_t nrows, const uint8_t *X, int64_t T,
                        float *Y)
{
    const size_t wrow = mp_row_size(wt, ncols), xrow = mp_act_row_size(wt, ncols);
    for (int64_t r0 = 0; r0 < nrows; r0 += 16)
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = r0; r < r0 + 16 && r < nrows; r++)
                ggml_dot[wt]((int)ncols, &Y[t * nrows + r], 0, W + r * wrow, 0, X + t * xrow, 0, 1);
}

static double time_case(int use_ggml, int rp, uint32_t wt, const uint8_t *W, int64_t ncols, int64_t nrows,
                        const uint8_t *X, int64_t T, float *Y, double min_s)
{
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        int iters = 0;
        const double t0 = now_s();
        double t1;
        do {
            if (use_ggml)
                ggml_matmul(wt, W, ncols, nrows, X, T, Y);
            else if (rp)
                mp_matmul_rows_ex(wt, W, ncols, nrows, 0, nrows, X, T, Y, nrows, MP_MM_ID | MP_MM_REPACKED);
            else
                mp_matmul_rows(wt, W, ncols, 0, nrows, X, T, Y, nrows);
            iters++;
            t1 = now_s();
        } while (t1 - t0 < min_s / 3);
        const double per = (t1 - t0) / iters;
        if (per < best) best = per;
    }
    return best;
}

/* --count: one call per case, each in its own function for callgrind. */
__attribute__((noinline)) void case_plain_t1(uint32_t wt, const uint8_t *W, int64_t nc, int64_t nr, const uint8_t *X, float *Y)
{
    mp_matmul_rows_ex(wt, W, nc, nr, 0, nr, X, 1, Y, nr, MP_MM_ID);
}
__attribute__((noinline)) void case_rp_t1(uint32_t wt, const uint8_t *W, int64_t nc, int64_t nr, const uint8_t *X, float *Y)
{
    mp_matmul_rows_ex(wt, W, nc, nr, 0, nr, X, 1, Y, nr, MP_MM_ID | MP_MM_REPACKED);
}
__attribute__((noinline)) void case_plain_t64(uint32_t wt, const uint8_t *W, int64_t nc, int64_t nr, const uint8_t *X, float *Y)
{
    mp_matmul_rows_ex(wt, W, nc, nr, 0, nr, X, 64, Y, nr, MP_MM_ID);
}
__attribute__((noinline)) void case_rp_t64(uint32_t wt, const uint8_t *W, int64_t nc, int64_t nr, const uint8_t *X, float *Y)
{
    mp_matmul_rows_ex(wt, W, nc, nr, 0, nr, X, 64, Y, nr, MP_MM_ID | MP_MM_REPACKED);
}

/* the one-time conversion (what a load or a cache-slot fill pays) */
__attribute__((noinline)) void case_repack(uint32_t wt, uint8_t *W, int64_t nc, int64_t nr)
{
    mp_repack_rows(wt, W, nr, nc);
}

static int count_main(const char *tname)
{
    uint32_t wt = MP_TYPE_COUNT;
    for (uint32_t t = 0; t < MP_TYPE_COUNT; t++)
        if (mp_type_name(t) && !strcmp(mp_type_name(t), tname)) wt = t;
    if (wt == MP_TYPE_COUNT || !mp_repack_supported(wt)) {
        fprintf(stderr, "--count: %s has no interleaved layout here\n", tname);
        return 2;
    }
    const int64_t nrows = 2816, ncols = 1024;
    const size_t wrow = mp_row_size(wt, ncols), xrow = mp_act_row_size(wt, ncols);
    float *f = malloc(sizeof(float) * ncols), *Y = malloc(sizeof(float) * nrows * 64);
    uint8_t *W = malloc(wrow * nrows), *Wr = malloc(wrow * nrows), *X = malloc(xrow * 64);
    srand(7);
    for (int64_t r = 0; r < nrows; r++) {
        for (int64_t j = 0; j < ncols; j++) f[j] = (float)rand() / RAND_MAX - 0.5f;
        mp_quantize_row_ref(wt, f, W + r * wrow, ncols);
    }
    for (int t = 0; t < 64; t++) {
        for (int64_t j = 0; j < ncols; j++) f[j] = (float)rand() / RAND_MAX - 0.5f;
        mp_quantize_act(wt, f, X + t * xrow, ncols);
    }
    memcpy(Wr, W, wrow * nrows);
    case_repack(wt, Wr, ncols, nrows);
    case_plain_t1(wt, W, ncols, nrows, X, Y);
    case_rp_t1(wt, Wr, ncols, nrows, X, Y);
    case_plain_t64(wt, W, ncols, nrows, X, Y);
    case_rp_t64(wt, Wr, ncols, nrows, X, Y);
    printf("%s isa %s: 2816x1024, cases ran once\n", tname, mp_isa_name(mp_kernels_isa()));
    free(f), free(Y), free(W), free(Wr), free(X);
    return 0;
}

/* --dram TYPE [N]: T = 1 over N distinct copies of each shape (default 48, about
 * 75-90 MB for the 4-5 bit types: far past L3), one after the other like the
 * experts of a decode step, plain vs repacked; GB/s of weight bytes, best of 5
 * passes. Buffers advised to huge pages like the expert cache's slab. */
static int dram_main(const char *tname, int ncopies)
{
    uint32_t wt = MP_TYPE_COUNT;
    for (uint32_t t = 0; t < MP_TYPE_COUNT; t++)
        if (mp_type_name(t) && !strcmp(mp_type_name(t), tname)) wt = t;
    if (wt == MP_TYPE_COUNT) return fprintf(stderr, "--dram: unknown type %s\n", tname), 2;
    static const int64_t shapes[2][2] = {{2816, 1024}, {1024, 2816}};
    float *f = malloc(sizeof(float) * 2816), *Y = malloc(sizeof(float) * 2816);
    for (int s = 0; s < 2; s++) {
        const int64_t nrows = shapes[s][0], ncols = shapes[s][1];
        const size_t wrow = mp_row_size(wt, ncols), xrow = mp_act_row_size(wt, ncols), mb = wrow * nrows;
        uint8_t *W = NULL, *X = malloc(xrow);
        if (posix_memalign((void **)&W, 2u << 20, mb * ncopies)) return 1;
        madvise(W, mb * ncopies, MADV_HUGEPAGE);
        srand(7);
        for (int64_t r = 0; r < nrows; r++) {
            for (int64_t j = 0; j < ncols; j++) f[j] = (float)rand() / RAND_MAX - 0.5f;
            mp_quantize_row_ref(wt, f, W + r * wrow, ncols);
        }
        for (int64_t j = 0; j < ncols; j++) f[j] = (float)rand() / RAND_MAX - 0.5f;
        mp_quantize_act(wt, f, X, ncols);
        for (int rp = 0; rp < 2; rp++) {
            if (rp && !mp_repack_supported(wt)) break;
            if (rp) mp_repack_rows(wt, W, nrows, ncols);
            for (int c = 1; c < ncopies; c++) memcpy(W + c * mb, W, mb);
            double best = 1e30;
            for (int pass = 0; pass < 5; pass++) {
                const double t0 = now_s();
                for (int c = 0; c < ncopies; c++)
                    mp_matmul_rows_ex(wt, W + c * mb, ncols, nrows, 0, nrows, X, 1, Y, nrows,
                                      MP_MM_ID | (rp ? MP_MM_REPACKED : 0));
                const double dt = now_s() - t0;
                if (dt < best) best = dt;
            }
            printf("%s %s %lldx%lld x%d T=1: %.1f GB/s\n", tname, rp ? "rp   " : "plain", (long long)nrows,
                   (long long)ncols, ncopies, (double)mb * ncopies / best / 1e9);
        }
        free(W), free(X);
    }
    free(f), free(Y);
    return 0;
}

static int type_listed(const char *list, const char *name)
{
    const size_t len = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        const size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == len && !strncmp(p, name, n)) return 1;
        p += n + (e != NULL);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "--count")) return count_main(argv[2]);
    if (argc > 2 && !strcmp(argv[1], "--dram")) return dram_main(argv[2], argc > 3 ? atoi(argv[3]) : 48);
    const double min_s = argc > 1 ? atof(argv[1]) : 0.3;
    static const uint32_t types[] = {MP_TYPE_F32,  MP_TYPE_F16,  MP_TYPE_BF16, MP_TYPE_Q8_0,   MP_TYPE_Q4_0,  MP_TYPE_Q4_K,
                                     MP_TYPE_Q5_K, MP_TYPE_Q6_K, MP_TYPE_Q2_K, MP_TYPE_Q3_K, MP_TYPE_IQ4_NL, MP_TYPE_IQ4_XS,
                                     MP_TYPE_MXFP4, MP_TYPE_Q5_0, MP_TYPE_Q5_1};
    static const int64_t shapes[2][2] = {{2816, 1024}, {1024, 2816}}; /* {nrows, ncols} */
    enum { TP = 64 };
    mp_kernels_init();
    load_ggml();
    const mp_isa best_isa = mp_kernels_isa();

    const int64_t maxel = 2816 * 1024;
    float *xf = malloc(sizeof(float) * 2816 * TP), *wf = malloc(sizeof(float) * maxel);
    float *Y = malloc(sizeof(float) * 2816 * TP);
    uint8_t *W = malloc((size_t)maxel * 4), *X = malloc((size_t)2816 * TP * 4);
    srand(7);
    for (int64_t i = 0; i < maxel; i++) wf[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int64_t i = 0; i < 2816 * TP; i++) xf[i] = (float)rand() / RAND_MAX - 0.5f;

    printf("%-5s %-10s | %14s %14s | %15s %15s\n", "type", "isa", "T=1 2816x1024", "T=1 1024x2816", "T=64 2816x1024",
           "T=64 1024x2816");
    printf("%-5s %-10s | %14s %14s | %15s %15s\n", "", "", "GB/s", "GB/s", "GFLOP/s", "GFLOP/s");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t wt = types[ti];
        /* MP_BENCH_TYPES=q4_K,q6_K: only those types (the full table takes minutes) */
        const char *only = getenv("MP_BENCH_TYPES");
        if (only && !type_listed(only, mp_type_name(wt))) continue;
        for (int v = 0; v <= 2 * MP_ISA_AVX512 + 2; v++) {
            /* v: 2 * isa (+ 1: repacked), then ggml */
            const int ggml = v == 2 * MP_ISA_AVX512 + 2, isa = v / 2, rp = !ggml && v % 2;
            if (ggml ? !ggml_dot[wt] : !mp_kernels_set_isa((mp_isa)isa)) continue;
            if (rp && !mp_repack_supported(wt)) continue;
            if (ggml) mp_kernels_set_isa(best_isa);
            double res[4];
            for (int s = 0; s < 2; s++) {
                const int64_t nrows = shapes[s][0], ncols = shapes[s][1];
                const size_t wrow = mp_row_size(wt, ncols), xrow = mp_act_row_size(wt, ncols);
                for (int64_t r = 0; r < nrows; r++) mp_quantize_row_ref(wt, wf + r * ncols, W + r * wrow, ncols);
                for (int t = 0; t < TP; t++) mp_quantize_act(wt, xf + t * ncols, X + t * xrow, ncols);
                if (rp) mp_repack_rows(wt, W, nrows, ncols);
                const double t1 = time_case(ggml, rp, wt, W, ncols, nrows, X, 1, Y, min_s);
                const double t64 = time_case(ggml, rp, wt, W, ncols, nrows, X, TP, Y, min_s);
                res[s] = (double)wrow * nrows / t1 / 1e9;
                res[2 + s] = 2.0 * nrows * ncols * TP / t64 / 1e9;
            }
            char name[16];
            snprintf(name, sizeof name, "%s%s", ggml ? "ggml" : mp_isa_name((mp_isa)isa), rp ? "+rp" : "");
            printf("%-5s %-10s | %14.1f %14.1f | %15.1f %15.1f\n", mp_type_name(wt), name, res[0], res[1], res[2], res[3]);
            fflush(stdout);
        }
    }
    mp_kernels_set_isa(best_isa);
    free(xf), free(wf), free(Y), free(W), free(X);
    return 0;
}
