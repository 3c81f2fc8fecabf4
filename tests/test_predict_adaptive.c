/* The adaptive lookahead (experts/predict.c, min_prob < 0), driven the way
 * the streamer drives it (mp_predict at layer L for L+d, then
 * mp_predict_observe when L+d runs), with a router the test controls:
 *  - right guesses of low gate probability, which the old fixed rule
 *    (p >= 1/k) never let through, get through once they have proved right;
 *  - guesses that are never used stop being let through, and then the
 *    router stops being applied at all, except for one probe in
 *    MP_PRED_PROBE_EVERY events (the stand-aside of a run whose routing
 *    does not come from its own router);
 *  - picks already in memory (present) cost nothing and are not learned
 *    from;
 *  - a fixed min_prob keeps the fixed rule;
 *  - the governor (a test clock) keeps lookahead on where decode tokens are
 *    faster with it by more than its margin and off otherwise, trying the
 *    other one block in MP_GOV_EXPLORE, also when token times drift along
 *    the run; idle gaps and prefill chunks are not timed; with no_timing it
 *    is always on. */
#include "experts/experts.h"
#include "experts/predict.h"
#include "mp_test.h"

#include <string.h>

#define NL 4
#define NX 16
#define NK 2
#define EMBD 8

/* The test's router: probability `prob` on experts a and b, the rest spread
 * over the others. */
typedef struct gate_state {
    int a, b;
    float prob;
    int calls;
} gate_state;

static void gate(const void *ud, int layer, const float *h, float *probs, void *scratch)
{
    gate_state *g = (gate_state *)ud;
    g->calls++;
    const float rest = (1.0f - 2 * g->prob) / (NX - 2);
    for (int e = 0; e < NX; e++) probs[e] = rest * (1.0f - 0.001f * e); /* distinct, below the two */
    probs[g->a] = g->prob;
    probs[g->b] = g->prob;
}

static bool present_none(void *ctx, int layer, int expert) { return false; }
static bool present_all(void *ctx, int layer, int expert) { return true; }

/* One decode token through layers 0..NL-1 with lookahead d=1: at each layer
 * L, predict L+1, then layer L+1 needs `need`. Returns the number of
 * experts predicted for the last target that were in `need`; *n_pred gets
 * how many were predicted in all over the token. */
static int token(mp_predictor *p, gate_state *g, const int need[NK], bool (*present)(void *, int, int), int *n_pred)
{
    float h[EMBD] = {0};
    int32_t out[NX];
    int right = 0;
    *n_pred = 0;
    for (int L = 0; L + 1 < NL; L++) {
        mp_predict_in in = {L, 0, 1, h, present, NULL};
        int n = mp_predict(p, &in, L + 1, out, NX);
        *n_pred += n;
        right = 0;
        for (int i = 0; i < n; i++) right += out[i] == need[0] || out[i] == need[1];
        mp_predict_observe(p, L + 1, need, NK);
    }
    (void)g;
    return right;
}

static mp_predictor *make_ex(gate_state *g, float min_prob, bool no_timing)
{
    uint8_t is_moe[NL] = {1, 1, 1, 1};
    mp_experts_shape sh = {NL, NX, NK, EMBD, is_moe};
    mp_prefetch_cfg cfg = {MP_PREFETCH_LOOKAHEAD, 1, 0, min_prob, NULL, NULL, no_timing, NULL, 0};
    mp_predictor *p = NULL;
    mp_err err;
    mp_err_clear(&err);
    CHECKF(mp_predictor_create(&p, &sh, &cfg, gate, g, &err) == MP_OK, "%s", err.msg);
    return p;
}

static mp_predictor *make(gate_state *g, float min_prob) { return make_ex(g, min_prob, false); }

/* Right guesses at gate probability 0.1 (< 1/k = 0.5): blocked at first,
 * let through once proved. */
static void test_learns_low_probability_picks(void)
{
    gate_state g = {3, 7, 0.1f, 0};
    mp_predictor *p = make(&g, -1.0f);
    if (!p) return;
    const int need[NK] = {3, 7};
    int n, right = token(p, &g, need, present_none, &n);
    CHECKF(n == 0, "cold start let %d picks of probability 0.1 through (the prior blocks them)", n);
    for (int t = 0; t < 10; t++) right = token(p, &g, need, present_none, &n);
    CHECKF(n == 2 * (NL - 1) && right == 2, "after ten right tokens: %d predicted, %d right of the last", n, right);
    mp_predict_stats st = mp_predict_get_stats(p);
    CHECK(st.skipped == 0 && st.checked > 0 && st.checked_used == st.checked);
    mp_predictor_free(p);
}

/* Guesses at probability 0.5 (= 1/k, which the cold-start prior lets
 * through) that are never used: blocked after evidence, then the router is
 * applied only on probes. */
static void test_stands_aside_on_noise(void)
{
    gate_state g = {3, 7, 0.5f, 0};
    mp_predictor *p = make(&g, -1.0f);
    if (!p) return;
    const int need[NK] = {0, 1}; /* never what the router guesses */
    int n;
    token(p, &g, need, present_none, &n);
    CHECKF(n == 2 * (NL - 1), "cold start: %d picks of probability 1/k let through (the prior's %d)", n, 2 * (NL - 1));
    for (int t = 0; t < 20; t++) token(p, &g, need, present_none, &n);
    CHECKF(n == 0, "wrong guesses still let through after 20 tokens: %d", n);
    const int calls0 = g.calls;
    for (int t = 0; t < 80; t++) token(p, &g, need, present_none, &n);
    const int calls = g.calls - calls0, events = 80 * (NL - 1);
    CHECKF(calls <= events / MP_PRED_PROBE_EVERY + NL, "standing aside: router applied %d times in %d events", calls,
           events);
    CHECKF(calls > 0, "standing aside: never probes");
    mp_predict_stats st = mp_predict_get_stats(p);
    CHECK(st.skipped > 0 && st.checked_used == 0);
    mp_predictor_free(p);
}

/* Picks already present are neither counted nor learned from: a router that
 * guesses only present experts wrongly never gets blocked for it. */
static void test_present_picks_not_learned(void)
{
    gate_state g = {3, 7, 0.5f, 0};
    mp_predictor *p = make(&g, -1.0f);
    if (!p) return;
    const int need[NK] = {0, 1};
    int n;
    for (int t = 0; t < 20; t++) token(p, &g, need, present_all, &n);
    mp_predict_stats st = mp_predict_get_stats(p);
    CHECKF(st.checked == 0, "%llu present picks were learned from", (unsigned long long)st.checked);
    CHECKF(n == 2 * (NL - 1), "present picks: %d let through (the prior's, unchanged)", n);
    mp_predictor_free(p);
}

/* A fixed threshold: no learning, no standing aside. */
static void test_fixed_rule(void)
{
    gate_state g = {3, 7, 0.1f, 0};
    mp_predictor *p = make(&g, 0.05f);
    if (!p) return;
    const int need[NK] = {0, 1};
    int n;
    for (int t = 0; t < 30; t++) token(p, &g, need, present_none, &n);
    CHECKF(n == 2 * (NL - 1), "fixed rule p >= 0.05: %d predicted", n);
    mp_predict_stats st = mp_predict_get_stats(p);
    CHECK(st.computed == 0 && st.skipped == 0 && st.checked == 0);
    mp_predictor_free(p);
}

/* ---- the governor ---- */

static uint64_t fake_now = 1000000000; /* not 0, which the governor reads as "not timed" */
static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

/* n decode tokens: each begins at MoE layer 0 (the governor's clock), asks
 * for a prediction of layer 1 and takes time(token index, active) ns.
 * Returns the tokens that ran with lookahead active. */
typedef uint64_t (*token_time_fn)(int j, bool active);
static int timed_tokens_fn(mp_predictor *p, gate_state *g, int j0, int n, token_time_fn time)
{
    float h[EMBD] = {0};
    int32_t out[NX];
    const int need[NK] = {3, 7};
    int on = 0;
    for (int t = 0; t < n; t++) {
        mp_predict_begin_layer(p, 0, 1);
        const int calls0 = g->calls;
        mp_predict_in in = {0, 0, 1, h, present_none, NULL};
        const int k = mp_predict(p, &in, 1, out, NX);
        const bool active = mp_predict_active(p);
        CHECKF(active || (k == 0 && g->calls == calls0), "lookahead off, yet %d picks and %d router calls", k,
               g->calls - calls0);
        mp_predict_begin_layer(p, 1, 1);
        mp_predict_observe(p, 1, need, NK);
        on += active;
        fake_now += time(j0 + t, active);
    }
    return on;
}

static uint64_t t_1ms(int j, bool active) { return (void)j, (void)active, 1000000; }
static uint64_t t_on_faster(int j, bool active) { return (void)j, active ? 1000000 : 1200000; }
static uint64_t t_on_slower(int j, bool active) { return (void)j, active ? 1200000 : 1000000; }
/* on 1% faster: within the margin, so off stays */
static uint64_t t_on_barely(int j, bool active) { return (void)j, active ? 990000 : 1000000; }
/* on 5% faster, but tokens get faster along the run (3 ms down to 1 ms over
 * the first 64): a mode judged by its own mean would look slow where it
 * ran early; neighbouring blocks see the 5% */
static uint64_t t_drift(int j, bool active)
{
    const double base = j < 64 ? 3.0 - 2.0 * j / 64.0 : 1.0;
    return (uint64_t)(1e6 * base * (active ? 0.95 : 1.0));
}

/* Token times as a loaded machine gives them: each token's time times a
 * factor uniform in [0.6, 1.4], drawn from the token index (reproducible). */
static double noise(int j)
{
    uint32_t x = (uint32_t)j * 2654435761u + 12345u;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    return 0.6 + 0.8 * (double)(x & 0xffffff) / (double)0x1000000;
}
/* on 20% faster, or 10% slower, under that noise */
static uint64_t t_noisy_faster(int j, bool active) { return (uint64_t)(1e6 * noise(j) * (active ? 0.8 : 1.0)); }
static uint64_t t_noisy_slower(int j, bool active) { return (uint64_t)(1e6 * noise(j) * (active ? 1.1 : 1.0)); }

/* n tokens of 1 ms */
static int timed_tokens(mp_predictor *p, gate_state *g, int n)
{
    return timed_tokens_fn(p, g, 0, n, t_1ms);
}

static void test_governor(void)
{
    struct {
        const char *name;
        token_time_fn time;
        int min_on, max_on; /* of tokens 100..299 */
    } cases[] = {
        /* the faster mode runs except one block in MP_GOV_EXPLORE */
        {"on 17% faster", t_on_faster, 200 - 200 / MP_GOV_EXPLORE - MP_GOV_BLOCK, 200 - 200 / MP_GOV_EXPLORE + MP_GOV_BLOCK},
        /* surely slower: tried one block in 2 * MP_GOV_EXPLORE */
        {"on 20% slower", t_on_slower, 200 / (2 * MP_GOV_EXPLORE) - MP_GOV_BLOCK, 200 / (2 * MP_GOV_EXPLORE) + MP_GOV_BLOCK},
        {"on 1% faster", t_on_barely, 200 / MP_GOV_EXPLORE - MP_GOV_BLOCK, 200 / MP_GOV_EXPLORE + MP_GOV_BLOCK},
        /* noise of +-40% per token: the faster one still runs most of the time, and a
         * slower on never more than exploring asks */
        {"on 20% faster, noisy", t_noisy_faster, 200 * 3 / 4, 200},
        {"on 10% slower, noisy", t_noisy_slower, 0, 200 / MP_GOV_EXPLORE + MP_GOV_BLOCK},
        {"on 5% faster, times drifting", t_drift, 200 - 200 / MP_GOV_EXPLORE - MP_GOV_BLOCK, 200 - 200 / MP_GOV_EXPLORE + MP_GOV_BLOCK},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gate_state g = {3, 7, 0.5f, 0};
        mp_predictor *p = make(&g, -1.0f);
        if (!p) return;
        mp_predict_set_clock(p, fake_clock, NULL);
        timed_tokens_fn(p, &g, 0, 100, cases[c].time);
        const int on = timed_tokens_fn(p, &g, 100, 200, cases[c].time);
        CHECKF(on >= cases[c].min_on && on <= cases[c].max_on, "%s: on for %d of tokens 100..299, want %d..%d",
               cases[c].name, on, cases[c].min_on, cases[c].max_on);
        const mp_predict_stats st = mp_predict_get_stats(p);
        const uint64_t timed = st.timed_tokens[0] + st.timed_tokens[1];
        /* every token but the last one's interval, less each block's settling ones */
        const uint64_t want = 299 / MP_GOV_BLOCK * (MP_GOV_BLOCK - MP_GOV_SETTLE) + (299 % MP_GOV_BLOCK > MP_GOV_SETTLE ? 299 % MP_GOV_BLOCK - MP_GOV_SETTLE : 0);
        CHECKF(timed == want && st.pairs > 0, "%s: %llu tokens timed, want %llu; %llu pairs", cases[c].name,
               (unsigned long long)timed, (unsigned long long)want, (unsigned long long)st.pairs);
        mp_predictor_free(p);
    }
}

/* An idle gap (a server waiting for a request) and a prefill chunk are not
 * timed as tokens; no_timing keeps lookahead on. */
static void test_governor_gaps(void)
{
    gate_state g = {3, 7, 0.5f, 0};
    mp_predictor *p = make(&g, -1.0f);
    if (!p) return;
    mp_predict_set_clock(p, fake_clock, NULL);
    /* 41 intervals: the gap's interval is the second of a block, not a
     * settling one that is left out anyway */
    timed_tokens(p, &g, 42);
    mp_predict_stats st = mp_predict_get_stats(p);
    const uint64_t n0 = st.timed_tokens[0] + st.timed_tokens[1];
    CHECKF(n0 > 0 && n0 <= 41, "%llu tokens timed of 41", (unsigned long long)n0);
    fake_now += 60000000000ull; /* a minute idle, then a decode token */
    timed_tokens(p, &g, 1);
    mp_predict_begin_layer(p, 0, 64); /* a prefill chunk */
    fake_now += 3000000; /* short of the gap rule: only the chunk keeps it out */
    timed_tokens(p, &g, 12); /* the first starts the clock again */
    st = mp_predict_get_stats(p);
    const uint64_t n1 = st.timed_tokens[0] + st.timed_tokens[1];
    /* every timed token took 1 ms: neither the minute nor the prefill was one */
    CHECKF(n1 > n0 && st.timed_ns[0] + st.timed_ns[1] == n1 * 1000000u, "%llu tokens timed in %llu ns",
           (unsigned long long)n1, (unsigned long long)(st.timed_ns[0] + st.timed_ns[1]));
    mp_predictor_free(p);

    p = make_ex(&g, -1.0f, true);
    if (!p) return;
    mp_predict_set_clock(p, fake_clock, NULL);
    const int on = timed_tokens(p, &g, 100);
    st = mp_predict_get_stats(p);
    CHECKF(on == 100 && st.timed_tokens[0] + st.timed_tokens[1] == 0, "no_timing: on for %d of 100, %llu timed", on,
           (unsigned long long)(st.timed_tokens[0] + st.timed_tokens[1]));
    mp_predictor_free(p);
}

int main(void)
{
    test_governor();
    test_governor_gaps();
    test_learns_low_probability_picks();
    test_stands_aside_on_noise();
    test_present_picks_not_learned();
    test_fixed_rule();
    MP_TEST_DONE();
}
