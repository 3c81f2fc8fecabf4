/* Samplers: greedy and its ties, the filters (top-k, top-p, min-p) against
 * brute-force references, the repetition penalty and its window, seeding,
 * and the drawn distribution against softmax (fixed seeds: deterministic). */
#include "mp_test.h"
#include "sample/sample.h"
#include "common/sysinfo.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t tr_state = 12345;
static uint32_t tr_next(void) /* test-local LCG, independent of the sampler */
{
    tr_state = tr_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(tr_state >> 33);
}
static float tr_uniform(void) { return (float)tr_next() / 2147483648.0f; } /* [0, 1) */

static mp_sampler_params off_params(float temp, uint64_t seed)
{
    mp_sampler_params p = mp_sampler_default_params();
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.seed = seed;
    return p;
}

static int32_t argmax(const float *l, int n)
{
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b])
            b = i;
    return b;
}

static void test_defaults(void)
{
    mp_sampler_params p = mp_sampler_default_params();
    CHECK(p.temp == 0.8f && p.top_k == 40 && p.top_p == 0.95f && p.min_p == 0.05f);
    CHECK(p.repeat_penalty == 1.0f && p.repeat_last_n == 64 && p.seed == 0);
    CHECK(mp_sampler_create(&p, 0) == NULL);
}

static void test_greedy(void)
{
    enum { V = 1000 };
    static float l[V];
    mp_sampler_params p = off_params(0.0f, 1);
    p.top_k = 40; /* filters must not matter for greedy */
    p.top_p = 0.5f;
    p.min_p = 0.1f;
    mp_sampler *s = mp_sampler_create(&p, V);
    CHECK(s);
    for (int r = 0; r < 20; r++) {
        for (int i = 0; i < V; i++)
            l[i] = tr_uniform() * 20.0f - 10.0f;
        CHECK(mp_sampler_sample(s, l) == argmax(l, V));
    }
    /* ties go to the lowest id */
    for (int i = 0; i < V; i++)
        l[i] = 0.0f;
    l[700] = 3.0f;
    l[300] = 3.0f;
    l[900] = 3.0f;
    CHECK(mp_sampler_sample(s, l) == 300);
    /* NaN never wins; negative temperature is greedy too */
    l[0] = NAN;
    CHECK(mp_sampler_sample(s, l) == 300);
    mp_sampler_free(s);
    p.temp = -1.0f;
    s = mp_sampler_create(&p, V);
    CHECK(mp_sampler_sample(s, l) == 300);
    mp_sampler_free(s);
    mp_sampler_free(NULL);
}

/* top-k = 1 and a tiny top-p reduce any temperature to greedy. */
static void test_filters_reduce_to_greedy(void)
{
    enum { V = 5000 };
    static float l[V];
    for (int mode = 0; mode < 2; mode++) {
        mp_sampler_params p = off_params(1.5f, 7 + mode);
        if (mode == 0)
            p.top_k = 1;
        else
            p.top_p = 1e-6f;
        mp_sampler *s = mp_sampler_create(&p, V);
        CHECK(s);
        for (int r = 0; r < 50; r++) {
            for (int i = 0; i < V; i++)
                l[i] = tr_uniform() * 4.0f; /* flat-ish: sampling would wander */
            CHECKF(mp_sampler_sample(s, l) == argmax(l, V), "mode %d round %d", mode, r);
        }
        /* ties: equal maxima -> lowest id */
        for (int i = 0; i < V; i++)
            l[i] = 1.0f;
        CHECK(mp_sampler_sample(s, l) == 0);
        mp_sampler_free(s);
    }
}

/* Draws n tokens and counts them into cnt[V]. */
static void draw(mp_sampler *s, const float *l, int V, int n, int *cnt)
{
    memset(cnt, 0, sizeof(int) * (size_t)V);
    for (int i = 0; i < n; i++) {
        int32_t t = mp_sampler_sample(s, l);
        if (t >= 0 && t < V)
            cnt[t]++;
    }
}

static void test_min_p(void)
{
    /* probabilities 0.5, 0.3, 0.15, 0.05: min_p 0.2 keeps p >= 0.1 (three),
     * min_p 0.5 keeps p >= 0.25 (two). Both with and without top-k (the
     * sorted and unsorted code paths). */
    const float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    int cnt[4];
    for (int k = 0; k <= 4; k += 4) {
        mp_sampler_params p = off_params(1.0f, 3);
        p.top_k = k;
        p.min_p = 0.2f;
        mp_sampler *s = mp_sampler_create(&p, 4);
        draw(s, l, 4, 20000, cnt);
        CHECKF(cnt[3] == 0 && cnt[2] > 0, "k=%d cnt %d %d %d %d", k, cnt[0], cnt[1], cnt[2], cnt[3]);
        /* survivors renormalised: 0.5/0.95, 0.3/0.95, 0.15/0.95 */
        CHECKF(fabs(cnt[0] / 20000.0 - 0.5 / 0.95) < 0.02, "k=%d p0 %f", k, cnt[0] / 20000.0);
        CHECKF(fabs(cnt[2] / 20000.0 - 0.15 / 0.95) < 0.02, "k=%d p2 %f", k, cnt[2] / 20000.0);
        mp_sampler_free(s);

        p.min_p = 0.5f;
        s = mp_sampler_create(&p, 4);
        draw(s, l, 4, 20000, cnt);
        CHECKF(cnt[2] == 0 && cnt[3] == 0 && cnt[1] > 0, "k=%d", k);
        mp_sampler_free(s);
    }
}

static void test_top_p_small(void)
{
    const float l[4] = {logf(0.05f), logf(0.5f), logf(0.15f), logf(0.3f)};
    int cnt[4];
    mp_sampler_params p = off_params(1.0f, 4);
    p.top_p = 0.75f; /* 0.5 + 0.3 reaches it: tokens 1 and 3 */
    mp_sampler *s = mp_sampler_create(&p, 4);
    draw(s, l, 4, 20000, cnt);
    CHECKF(cnt[0] == 0 && cnt[2] == 0, "%d %d %d %d", cnt[0], cnt[1], cnt[2], cnt[3]);
    CHECKF(fabs(cnt[1] / 20000.0 - 0.625) < 0.02, "p1 %f", cnt[1] / 20000.0);
    mp_sampler_free(s);
    p.top_p = 0.85f; /* needs the third: 1, 3, 2 */
    s = mp_sampler_create(&p, 4);
    draw(s, l, 4, 20000, cnt);
    CHECK(cnt[0] == 0 && cnt[2] > 0);
    mp_sampler_free(s);
}

/* A 150k vocabulary where the top-p cut falls past the first sorted chunk:
 * 600 "head" tokens at scattered ids share logit 0, the rest sit at -1000
 * (exp underflows to exactly 0, so the mass is exactly 600). top_p 0.5
 * keeps the 300 head tokens with the lowest ids. */
static void test_top_p_large(void)
{
    enum { V = 150000, H = 600 };
    static float l[V];
    static int cnt[V];
    static unsigned char head[V], keep[V];
    memset(head, 0, sizeof(head));
    memset(keep, 0, sizeof(keep));
    for (int i = 0; i < V; i++)
        l[i] = -1000.0f;
    for (int h = 0; h < H;) {
        int id = (int)(tr_next() % V);
        if (!head[id]) {
            head[id] = 1;
            l[id] = 0.0f;
            h++;
        }
    }
    for (int i = 0, k = 0; i < V && k < H / 2; i++)
        if (head[i]) {
            keep[i] = 1;
            k++;
        }
    mp_sampler_params p = off_params(1.0f, 5);
    p.top_p = 0.5f;
    mp_sampler *s = mp_sampler_create(&p, V);
    draw(s, l, V, 1000, cnt);
    int outside = 0, seen = 0;
    for (int i = 0; i < V; i++) {
        if (cnt[i] && !keep[i])
            outside++;
        if (cnt[i] && keep[i])
            seen++;
    }
    CHECKF(outside == 0, "%d tokens outside the top-p set", outside);
    CHECKF(seen > 260, "only %d of 300 kept tokens drawn", seen); /* expect ~289 */
    mp_sampler_free(s);
}

/* top-k on 150k random logits against a brute-force top-k set; a huge
 * temperature makes the draw near uniform over the survivors. */
static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static void test_top_k_large(void)
{
    enum { V = 150000, K = 50 };
    static float l[V], sorted[V];
    static int cnt[V];
    for (int i = 0; i < V; i++)
        l[i] = tr_uniform() * 30.0f - 15.0f;
    memcpy(sorted, l, sizeof(l));
    qsort(sorted, V, sizeof(float), cmp_desc);
    const float kth = sorted[K - 1];
    mp_sampler_params p = off_params(1e6f, 6);
    p.top_k = K;
    mp_sampler *s = mp_sampler_create(&p, V);
    draw(s, l, V, 2000, cnt);
    int outside = 0, seen = 0;
    for (int i = 0; i < V; i++) {
        if (cnt[i] && l[i] < kth)
            outside++;
        if (cnt[i])
            seen++;
    }
    CHECKF(outside == 0, "%d drawn tokens below the k-th logit", outside);
    CHECKF(seen == K, "%d distinct tokens drawn, want %d", seen, K);
    mp_sampler_free(s);

    /* a large k takes the select-then-sort path instead of the heap */
    enum { K2 = 5000 };
    const float kth2 = sorted[K2 - 1];
    p.top_k = K2;
    s = mp_sampler_create(&p, V);
    draw(s, l, V, 300, cnt);
    outside = seen = 0;
    for (int i = 0; i < V; i++) {
        if (cnt[i] && l[i] < kth2)
            outside++;
        if (cnt[i])
            seen++;
    }
    CHECKF(outside == 0, "k=%d: %d drawn tokens below the k-th logit", K2, outside);
    /* 300 near-uniform draws over 5000 tokens hit ~291 distinct ones */
    CHECKF(seen > 250, "k=%d: %d distinct tokens drawn", K2, seen);
    mp_sampler_free(s);

    /* all equal: top-k keeps the lowest ids (both paths) */
    for (int i = 0; i < V; i++)
        l[i] = 0.5f;
    p.top_k = 3;
    s = mp_sampler_create(&p, V);
    draw(s, l, V, 300, cnt);
    CHECK(cnt[0] > 0 && cnt[1] > 0 && cnt[2] > 0 && cnt[0] + cnt[1] + cnt[2] == 300);
    mp_sampler_free(s);
    p.top_k = K2;
    s = mp_sampler_create(&p, V);
    draw(s, l, V, 300, cnt);
    outside = 0;
    for (int i = K2; i < V; i++)
        outside += cnt[i];
    CHECKF(outside == 0, "equal logits, k=%d: %d draws past id k", K2, outside);
    mp_sampler_free(s);
}

static void test_repeat_penalty(void)
{
    enum { V = 8 };
    float l[V] = {2.0f, 1.9f, -3.0f, -3.0f, -3.0f, -3.0f, -1.0f, -1.2f};
    for (int mode = 0; mode < 3; mode++) {
        /* mode 0 greedy path; the sampling path reduced to greedy by
         * top-k 1 (mode 1: penalty inside the top-k heap) or by a tiny
         * top-p (mode 2: penalty on the full candidate copy) */
        mp_sampler_params p = off_params(mode ? 1.0f : 0.0f, 8);
        p.top_k = mode == 1 ? 1 : 0;
        p.top_p = mode == 2 ? 1e-6f : 1.0f;
        p.repeat_penalty = 1.5f;
        p.repeat_last_n = 3;
        mp_sampler *s = mp_sampler_create(&p, V);
        CHECK(mp_sampler_sample(s, l) == 0);
        mp_sampler_accept(s, 0); /* 2.0 / 1.5 = 1.33 < 1.9 */
        CHECK(mp_sampler_sample(s, l) == 1);
        mp_sampler_accept(s, 0); /* counted once, not compounded */
        mp_sampler_accept(s, 1); /* 1.9 / 1.5 = 1.27 < 1.33 */
        CHECK(mp_sampler_sample(s, l) == 0);
        mp_sampler_accept(s, 2);
        mp_sampler_accept(s, 2); /* 0 left the 3-token window: 0, 1, 2, 2 */
        CHECK(mp_sampler_sample(s, l) == 0);
        mp_sampler_accept(s, 3);
        mp_sampler_accept(s, 99);  /* out of range: ignored */
        mp_sampler_accept(s, -1);  /* ignored */
        mp_sampler_reset(s);
        CHECK(mp_sampler_sample(s, l) == 0);
        mp_sampler_free(s);

        /* negative logits are multiplied: -1.0 * 1.5 = -1.5 < -1.2 */
        float n[V] = {-9, -9, -9, -9, -9, -9, -1.0f, -1.2f};
        s = mp_sampler_create(&p, V);
        CHECK(mp_sampler_sample(s, n) == 6);
        mp_sampler_accept(s, 6);
        CHECK(mp_sampler_sample(s, n) == 7);
        mp_sampler_free(s);

        /* penalty 1 or window 0: off */
        p.repeat_last_n = 0;
        s = mp_sampler_create(&p, V);
        mp_sampler_accept(s, 0);
        CHECK(mp_sampler_sample(s, l) == 0);
        mp_sampler_free(s);
    }
}

static void test_seeds(void)
{
    enum { V = 100, N = 200 };
    float l[V];
    for (int i = 0; i < V; i++)
        l[i] = tr_uniform();
    int32_t a[N], b[N], c[N], d[N];
    mp_sampler_params p = mp_sampler_default_params(); /* the full default chain */
    p.top_k = 0;
    p.seed = 1234;
    mp_sampler *s1 = mp_sampler_create(&p, V), *s2 = mp_sampler_create(&p, V);
    p.seed = 1235;
    mp_sampler *s3 = mp_sampler_create(&p, V);
    for (int i = 0; i < N; i++) {
        a[i] = mp_sampler_sample(s1, l);
        b[i] = mp_sampler_sample(s2, l);
        c[i] = mp_sampler_sample(s3, l);
    }
    mp_sampler_reset(s1);
    for (int i = 0; i < N; i++)
        d[i] = mp_sampler_sample(s1, l);
    CHECK(memcmp(a, b, sizeof(a)) == 0);
    CHECK(memcmp(a, d, sizeof(a)) == 0);
    int same = 0;
    for (int i = 0; i < N; i++)
        same += a[i] == c[i];
    CHECKF(same < N / 4, "%d of %d equal across seeds", same, N);
    /* seed 0 is an ordinary fixed seed */
    p.seed = 0;
    mp_sampler *z1 = mp_sampler_create(&p, V), *z2 = mp_sampler_create(&p, V);
    int eq = 1;
    for (int i = 0; i < N; i++)
        eq &= mp_sampler_sample(z1, l) == mp_sampler_sample(z2, l);
    CHECK(eq);
    mp_sampler_free(s1);
    mp_sampler_free(s2);
    mp_sampler_free(s3);
    mp_sampler_free(z1);
    mp_sampler_free(z2);
}

/* 20000 draws at temp 1 and 0.5 from 4 tokens against softmax; the
 * standard error of each frequency is <= 0.0036, the tolerance 0.015. */
static void test_distribution(void)
{
    const float l[4] = {1.0f, 0.5f, 0.0f, -1.0f};
    const float temps[2] = {1.0f, 0.5f};
    int cnt[4];
    for (int t = 0; t < 2; t++) {
        double e[4], sum = 0;
        for (int i = 0; i < 4; i++)
            sum += e[i] = exp(l[i] / temps[t]);
        mp_sampler_params p = off_params(temps[t], 42);
        mp_sampler *s = mp_sampler_create(&p, 4);
        draw(s, l, 4, 20000, cnt);
        for (int i = 0; i < 4; i++)
            CHECKF(fabs(cnt[i] / 20000.0 - e[i] / sum) < 0.015, "temp %.1f token %d: %.4f vs %.4f",
                   temps[t], i, cnt[i] / 20000.0, e[i] / sum);
        mp_sampler_free(s);
    }
    /* NaN and -inf logits are never drawn */
    const float m[4] = {NAN, 0.0f, -INFINITY, 0.0f};
    mp_sampler_params p = off_params(1.0f, 43);
    mp_sampler *s = mp_sampler_create(&p, 4);
    draw(s, m, 4, 2000, cnt);
    CHECK(cnt[0] == 0 && cnt[2] == 0 && cnt[1] + cnt[3] == 2000);
    mp_sampler_free(s);
}

/* Not a timed test: prints the cost for the record. */
static void report_speed(void)
{
    enum { V = 151936, N = 50 };
    static float l[V];
    for (int i = 0; i < V; i++)
        l[i] = tr_uniform() * 20.0f - 10.0f;
    const char *names[3] = {"default chain", "top-p 0.95 only", "greedy"};
    for (int m = 0; m < 3; m++) {
        mp_sampler_params p = mp_sampler_default_params();
        if (m == 1) {
            p.top_k = 0;
            p.min_p = 0.0f;
        }
        if (m == 2)
            p.temp = 0.0f;
        p.repeat_penalty = 1.1f;
        mp_sampler *s = mp_sampler_create(&p, V);
        double t0 = mp_time_s();
        for (int i = 0; i < N; i++)
            mp_sampler_accept(s, mp_sampler_sample(s, l));
        double dt = mp_time_s() - t0;
        fprintf(stderr, "n_vocab %d, %s: %.3f ms/sample\n", V, names[m], dt * 1e3 / N);
        mp_sampler_free(s);
    }
}

int main(void)
{
    test_defaults();
    test_greedy();
    test_filters_reduce_to_greedy();
    test_min_p();
    test_top_p_small();
    test_top_p_large();
    test_top_k_large();
    test_repeat_penalty();
    test_seeds();
    test_distribution();
    report_speed();
    MP_TEST_DONE();
}
