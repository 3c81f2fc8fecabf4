/* Samplers: see sample.h for the semantics and the chain order. */
#include "sample/sample.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MP_TOPP_BINS 513

typedef struct mp_cand {
    float logit;
    int32_t id;
} mp_cand;

struct mp_sampler {
    mp_sampler_params p;
    int32_t n_vocab;
    mp_cand *cand;      /* [n_vocab] working set, rebuilt on every sample */
    uint32_t *stamp;    /* [n_vocab] == epoch: already penalised this sample */
    uint32_t epoch;
    int32_t *hist;      /* [repeat_last_n] ring of accepted tokens */
    int32_t hist_len;   /* valid entries, <= repeat_last_n */
    int32_t hist_pos;   /* next slot to write */
    uint64_t rng[4];    /* xoshiro256** state */
    double bin_mass[4][MP_TOPP_BINS]; /* top-p: unnormalised mass per bin */
};

/* ---- random numbers ---------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4])
{
    uint64_t r = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return r;
}

static void rng_seed(uint64_t s[4], uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        s[i] = splitmix64(&x);
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

/* ---- ordering: logit descending, then id ascending (a strict total order,
 * since ids are unique and NaNs were turned into -inf) ------------------- */

static inline bool cand_before(const mp_cand *a, const mp_cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static inline void cand_swap(mp_cand *a, mp_cand *b)
{
    mp_cand t = *a;
    *a = *b;
    *b = t;
}

/* Moves the median of v[a], v[b], v[c] to v[a]. */
static void median3_to(mp_cand *v, long a, long b, long c)
{
    if (cand_before(&v[b], &v[a]))
        cand_swap(&v[a], &v[b]);
    if (cand_before(&v[c], &v[b])) {
        cand_swap(&v[b], &v[c]);
        if (cand_before(&v[b], &v[a]))
            cand_swap(&v[a], &v[b]);
    }
    cand_swap(&v[a], &v[b]); /* v[b] held the median */
}

/* Hoare partition of v[lo, hi) around the pivot placed at v[lo]; returns
 * the pivot's final index: v[lo, m) before it, v(m, hi) after it. */
static long partition(mp_cand *v, long lo, long hi)
{
    median3_to(v, lo, lo + (hi - lo) / 2, hi - 1);
    mp_cand piv = v[lo];
    long i = lo, j = hi;
    for (;;) {
        do { i++; } while (i < hi && cand_before(&v[i], &piv));
        do { j--; } while (cand_before(&piv, &v[j]));
        if (i >= j)
            break;
        cand_swap(&v[i], &v[j]);
    }
    cand_swap(&v[lo], &v[j]);
    return j;
}

static void insertion_sort(mp_cand *v, long lo, long hi)
{
    for (long i = lo + 1; i < hi; i++) {
        mp_cand x = v[i];
        long j = i;
        for (; j > lo && cand_before(&x, &v[j - 1]); j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

static void sift_down(mp_cand *v, long root, long n)
{
    /* max-heap in the "after" order, so heap sort yields "before" order */
    for (;;) {
        long c = 2 * root + 1;
        if (c >= n)
            return;
        if (c + 1 < n && cand_before(&v[c + 1], &v[c]) == false)
            c++;
        if (!cand_before(&v[root], &v[c]))
            return;
        cand_swap(&v[root], &v[c]);
        root = c;
    }
}

static void heap_sort(mp_cand *v, long n)
{
    for (long i = n / 2 - 1; i >= 0; i--)
        sift_down(v, i, n);
    for (long end = n - 1; end > 0; end--) {
        cand_swap(&v[0], &v[end]);
        sift_down(v, 0, end);
    }
}

/* Sorts v[lo, hi): introsort without recursion on the larger side, so the
 * stack stays O(log n) and the worst case O(n log n). */
static void sort_range(mp_cand *v, long lo, long hi, int depth)
{
    while (hi - lo > 16) {
        if (depth-- <= 0) {
            heap_sort(v + lo, hi - lo);
            return;
        }
        long m = partition(v, lo, hi);
        if (m - lo < hi - m - 1) {
            sort_range(v, lo, m, depth);
            lo = m + 1;
        } else {
            sort_range(v, m + 1, hi, depth);
            hi = m;
        }
    }
    insertion_sort(v, lo, hi);
}

static int depth_limit(long n)
{
    int d = 0;
    while (n > 1) {
        n >>= 1;
        d++;
    }
    return 2 * d + 2;
}

static void sort_cands(mp_cand *v, long lo, long hi) { sort_range(v, lo, hi, depth_limit(hi - lo)); }

/* Rearranges v[lo, hi) so that v[lo, k) holds the (k - lo) first elements
 * in order (unsorted among themselves). lo <= k <= hi. */
static void select_first(mp_cand *v, long lo, long hi, long k)
{
    int depth = depth_limit(hi - lo);
    while (hi - lo > 16 && lo < k && k < hi) {
        if (depth-- <= 0) {
            sort_range(v, lo, hi, 0); /* heap sort: bounded worst case */
            return;
        }
        long m = partition(v, lo, hi);
        if (m == k || m + 1 == k)
            return;
        if (m < k)
            lo = m + 1;
        else
            hi = m;
    }
    if (lo < k && k < hi)
        insertion_sort(v, lo, hi);
}

/* ---- the chain ---------------------------------------------------------- */

mp_sampler_params mp_sampler_default_params(void)
{
    mp_sampler_params p = {
        .temp = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .seed = 0,
    };
    return p;
}

mp_sampler *mp_sampler_create(const mp_sampler_params *p, int32_t n_vocab)
{
    assert(p);
    if (n_vocab < 1)
        return NULL;
    mp_sampler *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    if (s->p.repeat_last_n < 0)
        s->p.repeat_last_n = 0;
    s->cand = malloc((size_t)n_vocab * sizeof(*s->cand));
    s->stamp = calloc((size_t)n_vocab, sizeof(*s->stamp));
    if (s->p.repeat_last_n > 0)
        s->hist = malloc((size_t)s->p.repeat_last_n * sizeof(*s->hist));
    if (!s->cand || !s->stamp || (s->p.repeat_last_n > 0 && !s->hist))
        goto fail;
    mp_sampler_reset(s);
    return s;
fail:
    mp_sampler_free(s);
    return NULL;
}

void mp_sampler_free(mp_sampler *s)
{
    if (!s)
        return;
    free(s->cand);
    free(s->stamp);
    free(s->hist);
    free(s);
}

void mp_sampler_reset(mp_sampler *s)
{
    assert(s);
    s->hist_len = 0;
    s->hist_pos = 0;
    rng_seed(s->rng, s->p.seed);
}

void mp_sampler_accept(mp_sampler *s, int32_t token)
{
    assert(s);
    if (token < 0 || token >= s->n_vocab || s->p.repeat_last_n <= 0)
        return;
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->hist_len < s->p.repeat_last_n)
        s->hist_len++;
}

static inline float penalise(float logit, float penalty)
{
    return logit <= 0.0f ? logit * penalty : logit / penalty;
}

static bool penalty_on(const mp_sampler *s)
{
    return s->p.repeat_penalty != 1.0f && s->hist_len > 0;
}

/* Starts a new epoch of the per-token "already penalised" stamps. */
static uint32_t next_epoch(mp_sampler *s)
{
    if (++s->epoch == 0) { /* wrapped: old stamps could alias */
        for (int32_t i = 0; i < s->n_vocab; i++)
            s->stamp[i] = 0;
        s->epoch = 1;
    }
    return s->epoch;
}

static int32_t sample_greedy(mp_sampler *s, const float *logits)
{
    int32_t best = 0;
    float best_l = -INFINITY;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        if (logits[i] > best_l) { /* strict: ties keep the lower id; NaN never wins */
            best_l = logits[i];
            best = i;
        }
    }
    if (!penalty_on(s))
        return best;

    /* The penalty only lowers logits of history tokens, so the answer is
     * either the best token outside the history or a penalised history
     * token. Rescan with the penalised values substituted. */
    uint32_t ep = next_epoch(s);
    for (int32_t h = 0; h < s->hist_len; h++)
        s->stamp[s->hist[h]] = ep;
    best = 0;
    best_l = -INFINITY;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        float l = logits[i];
        if (s->stamp[i] == ep)
            l = penalise(l, s->p.repeat_penalty);
        if (l > best_l) {
            best_l = l;
            best = i;
        }
    }
    return best;
}

static inline float sanitize(float l)
{
    /* NaN -> -inf keeps the order total; +inf -> FLT_MAX keeps l - max
     * finite in the softmax */
    return isnan(l) ? -INFINITY : (l == INFINITY ? FLT_MAX : l);
}

/* exp of x <= 0, flushing x < -87 (where expf underflows; glibc takes a
 * slow path there) straight to 0 */
static inline float exp_neg(float x) { return x < -87.0f ? 0.0f : expf(x); }

/* heap of the k best candidates seen so far, worst at the root */
static void heap_fix_down(mp_cand *h, long k, long i)
{
    for (;;) {
        long c = 2 * i + 1;
        if (c >= k)
            return;
        if (c + 1 < k && cand_before(&h[c], &h[c + 1]))
            c++; /* the worse child */
        if (!cand_before(&h[i], &h[c]))
            return;
        cand_swap(&h[i], &h[c]);
        i = c;
    }
}

/* Top-k straight from the logits with a k-heap: one compare per token in
 * the common case, and the full candidate array is never written. Leaves
 * c[0, k) sorted. ep != 0: tokens stamped ep get the penalty. */
static void top_k_heap(mp_sampler *s, const float *logits, long k, uint32_t ep)
{
    mp_cand *h = s->cand;
    const float pen = s->p.repeat_penalty;
    for (long i = 0; i < k; i++) {
        float l = sanitize(logits[i]);
        if (ep && s->stamp[i] == ep)
            l = penalise(l, pen);
        h[i].logit = l;
        h[i].id = (int32_t)i;
    }
    for (long i = k / 2 - 1; i >= 0; i--)
        heap_fix_down(h, k, i);
    for (long i = k; i < s->n_vocab; i++) {
        float l = sanitize(logits[i]);
        if (ep && s->stamp[i] == ep)
            l = penalise(l, pen);
        /* ids rise, so a tie with the root loses: only "greater" enters */
        if (l > h[0].logit) {
            h[0].logit = l;
            h[0].id = (int32_t)i;
            heap_fix_down(h, k, 0);
        }
    }
    sort_cands(h, 0, k);
}

/* Bin of a logit for top-p: width 1/8 nat below the maximum, the last bin
 * catching everything past 64 nats (weight < 1.7e-28 of the maximum's). */
static inline int topp_bin(float maxl, float l)
{
    float d = (maxl - l) * 8.0f;
    return d < (float)(MP_TOPP_BINS - 1) ? (int)d : MP_TOPP_BINS - 1;
}

/* Reorders c[0, n) by bin against `cut`: c[0, *lt) below it, c[*lt, *eq)
 * in it, the rest after it. Tokens after the cut (usually nearly all of
 * the vocabulary) are never moved; one bin computation per token. */
static void split_by_bin(mp_cand *c, long n, float maxl, int cut, long *lt, long *eq)
{
    long a = 0, b = 0;
    for (long r = 0; r < n; r++) {
        int bin = topp_bin(maxl, c[r].logit);
        if (bin < cut) { /* rotate: c[r] -> a, c[a] (first in-cut) -> b, c[b] -> r */
            mp_cand x = c[r];
            c[r] = c[b];
            c[b] = c[a];
            c[a] = x;
            a++;
            b++;
        } else if (bin == cut) {
            cand_swap(&c[b], &c[r]);
            b++;
        }
    }
    *lt = a;
    *eq = b;
}

/* Top-p over unsorted c[0, n): the kept set is a prefix in the sorted
 * order, so bin the weights by distance from the maximum, find the bin
 * where the running mass reaches the target, and sort only that bin.
 * Returns the kept count; c[0, keep) holds the kept tokens (unsorted). */
static long top_p_unsorted(mp_sampler *s, mp_cand *c, long n, float maxl)
{
    /* Four lanes of bins: consecutive tokens usually land in the same bin,
     * and one array would chain every add through the same memory word.
     * Tokens in the last bin (over 64 nats down) are left out of the mass:
     * together they weigh under 1e-22 of the total for any vocabulary
     * below 2^32, so the cut cannot depend on them. */
    double (*lane)[MP_TOPP_BINS] = s->bin_mass;
    memset(lane, 0, sizeof(s->bin_mass));
    for (long i = 0; i < n; i++) {
        int b = topp_bin(maxl, c[i].logit);
        if (b < MP_TOPP_BINS - 1)
            lane[i & 3][b] += expf(c[i].logit - maxl);
    }
    double *mass = lane[0];
    double sum = 0.0;
    for (int b = 0; b < MP_TOPP_BINS; b++) {
        mass[b] += lane[1][b] + lane[2][b] + lane[3][b];
        sum += mass[b];
    }
    const double target = (double)s->p.top_p * sum;
    double cum = 0.0;
    int cut = 0;
    while (cut < MP_TOPP_BINS - 1 && cum + mass[cut] < target)
        cum += mass[cut++];

    long below, in_cut;
    split_by_bin(c, n, maxl, cut, &below, &in_cut);
    sort_cands(c, below, in_cut);
    for (long i = below; i < in_cut; i++) {
        cum += exp_neg(c[i].logit - maxl);
        if (cum >= target)
            return i + 1;
    }
    /* rounding left the mass just short of the target: keep the bin and
     * everything after it */
    return n;
}

int32_t mp_sampler_sample(mp_sampler *s, const float *logits)
{
    assert(s && logits);
    if (s->p.temp <= 0.0f)
        return sample_greedy(s, logits);

    const int32_t nv = s->n_vocab;
    mp_cand *c = s->cand;
    long n = nv;
    bool sorted = false;

    /* 1. repetition penalty, once per distinct token: stamp the history */
    uint32_t ep = 0;
    if (penalty_on(s)) {
        ep = next_epoch(s);
        for (int32_t h = 0; h < s->hist_len; h++)
            s->stamp[s->hist[h]] = ep;
    }

    /* 2. top-k, or all tokens as candidates */
    const long k = s->p.top_k;
    if (k > 0 && k < n && k <= 4096) {
        top_k_heap(s, logits, k, ep);
        n = k;
        sorted = true;
    } else {
        for (int32_t i = 0; i < nv; i++) {
            c[i].logit = sanitize(logits[i]);
            c[i].id = i;
        }
        if (ep)
            for (int32_t h = 0; h < s->hist_len; h++) {
                int32_t t = s->hist[h];
                if (s->stamp[t] == ep) {
                    /* unstamp so a repeated history entry is not penalised
                     * twice; the next sample takes a fresh epoch anyway */
                    s->stamp[t] = ep - 1;
                    c[t].logit = penalise(c[t].logit, s->p.repeat_penalty);
                }
            }
        if (k > 0 && k < n) { /* large k: select, then sort the survivors */
            select_first(c, 0, n, k);
            n = k;
            sort_cands(c, 0, n);
            sorted = true;
        }
    }

    /* 3. top-p over the softmax of the (untempered) logits */
    if (s->p.top_p < 1.0f && n > 1) {
        if (sorted) {
            const float maxl = c[0].logit;
            double sum = 0.0;
            for (long i = 0; i < n; i++)
                sum += exp_neg(c[i].logit - maxl);
            const double target = (double)s->p.top_p * sum;
            double cum = 0.0;
            for (long i = 0; i < n; i++) {
                cum += exp_neg(c[i].logit - maxl);
                if (cum >= target) {
                    n = i + 1;
                    break;
                }
            }
        } else {
            float maxl = c[0].logit;
            for (long i = 1; i < n; i++)
                maxl = c[i].logit > maxl ? c[i].logit : maxl;
            n = top_p_unsorted(s, c, n, maxl);
        }
    }

    /* 4. min-p: logit >= max + log(min_p) */
    if (s->p.min_p > 0.0f && n > 1) {
        float maxl = c[0].logit;
        if (!sorted)
            for (long i = 1; i < n; i++)
                maxl = c[i].logit > maxl ? c[i].logit : maxl;
        const float minl = maxl + logf(s->p.min_p);
        if (sorted) {
            long i = 1;
            while (i < n && c[i].logit >= minl)
                i++;
            n = i;
        } else {
            long m = 0;
            for (long i = 0; i < n; i++)
                if (c[i].logit >= minl)
                    c[m++] = c[i];
            n = m;
        }
    }

    /* 5. temperature and the draw */
    const float inv_t = 1.0f / s->p.temp;
    float maxl = c[0].logit;
    if (!sorted)
        for (long i = 1; i < n; i++)
            maxl = c[i].logit > maxl ? c[i].logit : maxl;
    if (maxl == -INFINITY) /* nothing finite: fall back to the first */
        return c[0].id;
    /* the logits are not needed past this point: keep each weight in its
     * place so exp runs once per candidate */
    double sum = 0.0;
    for (long i = 0; i < n; i++) {
        float w = exp_neg((c[i].logit - maxl) * inv_t);
        c[i].logit = w;
        sum += w;
    }
    const double target = rng_uniform(s->rng) * sum;
    double cum = 0.0;
    int32_t last_nz = c[0].id;
    for (long i = 0; i < n; i++) {
        if (c[i].logit <= 0.0f)
            continue;
        cum += c[i].logit;
        last_nz = c[i].id;
        if (cum > target)
            return c[i].id;
    }
    return last_nz; /* rounding: the running sum came out short */
}
