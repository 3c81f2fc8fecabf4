/* Trained routing predictors (runtime/predictor_file.h, experts/predict.h):
 *  - a file the project's GGUF writer makes loads, with MoE layer indices
 *    turned into the model's layer numbers and the weights as written;
 *  - mp_pred_net_probs matches a double-precision reference of
 *    softmax(W2 relu(W1 x + b1) + b2), x = h / rms(h), and for a net with
 *    prev_picks (fc1.weight n_expert columns wider) x = [h / rms(h), flags];
 *  - every way a file can be wrong for the model gives one error naming the
 *    file and, where it applies, the net and tensor, and loads nothing;
 *  - 2000 files with random bytes of a good one changed load or fail with a
 *    message, never crash (the ASan build checks the reads);
 *  - a predictor with nets guesses only where a net maps the layers (never
 *    the router), reaches the next token with a net of ahead 1, and lets a
 *    layer's picks through by the net's whole-layer confidence;
 *  - a net with prev_picks sees the picks its layer made last;
 *  - a file with predictor.prev_h = 1 gives nets of input [h / rms(h),
 *    g / rms(g)] (g: the layer's last residual; zeros when none is known)
 *    that match the double reference, a bad prev_h key or a net of the
 *    wrong width is refused, and such a net follows the residual
 *    mp_predict_observe_h gave its layer last; in a prompt chunk a
 *    next-token net gives it to the chunk's last token, not its first. */
#include "common/types.h"
#include "experts/experts.h"
#include "experts/predict.h"
#include "gguf/gguf.h"
#include "mp_test.h"
#include "runtime/predictor_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NL 4 /* model layers; layer 1 is dense */
#define E 32
#define X 8
#define K 2
#define H 16

static const uint8_t is_moe[NL] = {1, 0, 1, 1};
static char dir[256];

static float frand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

/* One predictor file's parts, each of which a case may spoil. */
typedef struct spec {
    const char *arch;
    uint32_t n_embd, n_expert, k;
    int n;                 /* nets */
    int32_t src[4], dst[4], ahead[4];
    int n_src_entries;     /* predictor.src's length (n unless spoiled) */
    int hidden;            /* of every net */
    int64_t fc2_rows;      /* fc2.weight's ne[1] (X unless spoiled) */
    bool drop_fc2_bias;    /* net 0 without fc2.bias */
    bool float_dst;        /* predictor.dst as floats */
    int prev_net;          /* this net takes prev_picks (-1: none) */
    int fc1_extra;         /* columns fc1.weight of net prev_net has past E (X unless spoiled) */
    int prev_h;            /* predictor.prev_h's value (-1: no key) */
    bool prev_h_str;       /* predictor.prev_h as a string */
    int h_width;           /* fc1.weight's columns with prev_h (2 E unless spoiled) */
    float w[4][H * 2 * E + H + X * H + X];
} spec;

static spec good(void)
{
    spec s = {.arch = "moepager-predictor", .n_embd = E, .n_expert = X, .k = K, .n = 2,
              .src = {0, 2}, .dst = {1, 0}, .ahead = {0, 1}, .n_src_entries = 2, .hidden = H, .fc2_rows = X,
              .prev_net = 1, .fc1_extra = X, .prev_h = -1, .h_width = 2 * E};
    uint32_t r = 7;
    for (int i = 0; i < 4; i++)
        for (size_t j = 0; j < sizeof s.w[i] / sizeof(float); j++) s.w[i][j] = frand(&r);
    return s;
}

static int write_spec(const spec *s, const char *path)
{
    mp_gguf_writer *w = mp_gguf_writer_create();
    if (!w) return MP_E_NOMEM;
    mp_gguf_writer_set_str(w, "general.architecture", s->arch);
    mp_gguf_writer_set_u32(w, "predictor.n_embd", s->n_embd);
    mp_gguf_writer_set_u32(w, "predictor.n_expert", s->n_expert);
    mp_gguf_writer_set_u32(w, "predictor.n_expert_used", s->k);
    mp_gguf_writer_set_arr(w, "predictor.src", MP_GGUF_INT32, (uint64_t)s->n_src_entries, s->src);
    if (s->float_dst) {
        const float f[4] = {1, 0, 0, 0};
        mp_gguf_writer_set_arr(w, "predictor.dst", MP_GGUF_FLOAT32, (uint64_t)s->n, f);
    } else {
        mp_gguf_writer_set_arr(w, "predictor.dst", MP_GGUF_INT32, (uint64_t)s->n, s->dst);
    }
    mp_gguf_writer_set_arr(w, "predictor.ahead", MP_GGUF_INT32, (uint64_t)s->n, s->ahead);
    if (s->prev_h_str) mp_gguf_writer_set_str(w, "predictor.prev_h", "1");
    else if (s->prev_h >= 0) mp_gguf_writer_set_u32(w, "predictor.prev_h", (uint32_t)s->prev_h);
    for (int i = 0; i < s->n; i++) {
        char name[64];
        const float *p = s->w[i];
        const int n_in = s->prev_h == 1 ? s->h_width : E + (i == s->prev_net ? s->fc1_extra : 0);
        const int64_t ne1[2] = {n_in, s->hidden}, neb1[1] = {s->hidden}, ne2[2] = {s->hidden, s->fc2_rows},
                      neb2[1] = {X};
        snprintf(name, sizeof name, "net.%d.fc1.weight", i);
        mp_gguf_writer_add_tensor(w, name, MP_TYPE_F32, 2, ne1, p);
        snprintf(name, sizeof name, "net.%d.fc1.bias", i);
        mp_gguf_writer_add_tensor(w, name, MP_TYPE_F32, 1, neb1, p + H * n_in);
        snprintf(name, sizeof name, "net.%d.fc2.weight", i);
        mp_gguf_writer_add_tensor(w, name, MP_TYPE_F32, 2, ne2, p + H * n_in + H);
        if (!(s->drop_fc2_bias && i == 0)) {
            snprintf(name, sizeof name, "net.%d.fc2.bias", i);
            mp_gguf_writer_add_tensor(w, name, MP_TYPE_F32, 1, neb2, p + H * n_in + H + X * H);
        }
    }
    mp_err err;
    mp_err_clear(&err);
    int rc = mp_gguf_writer_write(w, path, NULL, NULL, &err);
    mp_gguf_writer_free(w);
    return rc;
}

static int load(const spec *s, mp_pred_file *f, mp_err *err)
{
    char path[300];
    snprintf(path, sizeof path, "%s/pred.gguf", dir);
    CHECK(write_spec(s, path) == MP_OK);
    mp_err_clear(err);
    const mp_experts_shape sh = {NL, X, K, E, is_moe};
    return mp_pred_file_load(path, &sh, f, err);
}

/* The reference: the formula in double precision. prev: NULL, or the X
 * flags of a net with prev_picks; prev_h: a net whose input is
 * [h / rms(h), g / rms(g)] (g NULL: zeros). */
static void ref_probs(const float *w, int hidden, const float *h, const uint8_t *prev, bool prev_h, const float *g,
                      double *probs)
{
    const int n_in = prev_h ? 2 * E : E + (prev ? X : 0);
    const float *w1 = w, *b1 = w + hidden * n_in, *w2 = b1 + hidden, *b2 = w2 + X * hidden;
    double ssh = 0, ssg = 0, hid[H], mx = -1e300, sum = 0;
    for (int i = 0; i < E; i++) ssh += (double)h[i] * h[i], ssg += g ? (double)g[i] * g[i] : 0.0;
    const double ih = 1.0 / sqrt(ssh / E + 1e-5), ig = 1.0 / sqrt(ssg / E + 1e-5);
    for (int j = 0; j < hidden; j++) {
        double a = b1[j];
        for (int i = 0; i < E; i++) a += (double)w1[j * n_in + i] * h[i] * ih;
        for (int e = 0; !prev_h && prev && e < X; e++) a += prev[e] ? (double)w1[j * n_in + E + e] : 0.0;
        for (int i = 0; prev_h && g && i < E; i++) a += (double)w1[j * n_in + E + i] * g[i] * ig;
        hid[j] = a > 0 ? a : 0;
    }
    for (int e = 0; e < X; e++) {
        double a = b2[e];
        for (int j = 0; j < hidden; j++) a += (double)w2[e * hidden + j] * hid[j];
        probs[e] = a;
        if (a > mx) mx = a;
    }
    for (int e = 0; e < X; e++) sum += (probs[e] = exp(probs[e] - mx));
    for (int e = 0; e < X; e++) probs[e] /= sum;
}

static void expect_error(const spec *s, const char *what, const char *want1, const char *want2);

static void test_prev_h_file(void)
{
    spec s = good();
    s.prev_h = 1;
    mp_pred_file f;
    mp_err err;
    int rc = load(&s, &f, &err);
    CHECKF(rc == MP_OK, "%s", err.msg);
    if (rc) return;
    CHECKF(f.nets[0].prev_h && f.nets[1].prev_h && !f.nets[0].prev_picks && !f.nets[1].prev_picks,
           "prev_h %d %d, prev_picks %d %d", f.nets[0].prev_h, f.nets[1].prev_h, f.nets[0].prev_picks,
           f.nets[1].prev_picks);
    CHECK(f.bytes == sizeof(float) * (2 * (H * 2 * E + H + X * H + X) + NL * E)); /* + the layers' last residuals */
    uint32_t r = 5;
    float h[E], g[E], hid[H + 2 * E + X], probs[X];
    double want[X], worst = 0;
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < E; i++) h[i] = 3.0f * frand(&r), g[i] = 2.0f * frand(&r);
        for (int n = 0; n < 2; n++) {
            const float *gg = trial % 4 == 3 ? NULL : g; /* none known: zeros */
            mp_pred_net_probs(&f.nets[n], E, X, h, NULL, gg, hid, probs);
            ref_probs(s.w[n], H, h, NULL, true, gg, want);
            for (int e = 0; e < X; e++)
                if (fabs(probs[e] - want[e]) > worst) worst = fabs(probs[e] - want[e]);
        }
    }
    CHECKF(worst < 1e-5, "prev_h: largest difference from the double reference %g", worst);
    mp_pred_file_free(&f);
    s = good(), s.prev_h = 2;
    expect_error(&s, "prev_h 2", "predictor.prev_h", "0 or 1");
    s = good(), s.prev_h_str = true;
    expect_error(&s, "prev_h a string", "predictor.prev_h", "uint32");
    s = good(), s.prev_h = 1, s.h_width = E;
    expect_error(&s, "prev_h, fc1 of width n_embd", "net 0", "net.0.fc1.weight");
    s = good(), s.prev_h = 0; /* 0: the plain file */
    rc = load(&s, &f, &err);
    CHECKF(rc == MP_OK && !f.nets[0].prev_h && f.nets[1].prev_picks, "prev_h 0: %s", rc ? err.msg : "loaded");
    if (!rc) mp_pred_file_free(&f);
}

static void test_loads_and_computes(void)
{
    spec s = good();
    mp_pred_file f;
    mp_err err;
    int rc = load(&s, &f, &err);
    CHECKF(rc == MP_OK, "%s", err.msg);
    if (rc) return;
    CHECKF(f.n_nets == 2 && f.nets[0].src == 0 && f.nets[0].dst == 2 && f.nets[0].ahead == 0 &&
               f.nets[1].src == 3 && f.nets[1].dst == 0 && f.nets[1].ahead == 1 && f.nets[0].hidden == H &&
               !f.nets[0].prev_picks && f.nets[1].prev_picks,
           "nets: %d, 0: %d -> %d, 1: %d -> %d", f.n_nets, f.nets[0].src, f.nets[0].dst, f.nets[1].src,
           f.nets[1].dst);
    CHECK(f.bytes == sizeof(float) * (2 * (H + X * H + X) + H * E + H * (E + X)));
    CHECK(!memcmp(f.nets[1].w1, s.w[1], sizeof(float) * H * (E + X)) &&
          !memcmp(f.nets[1].b2, s.w[1] + H * (E + X) + H + X * H, X * 4));
    uint32_t r = 99;
    float h[E], hid[H + E + X], probs[X];
    uint8_t prev[X];
    double want[X];
    double worst = 0;
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < E; i++) h[i] = 3.0f * frand(&r);
        for (int e = 0; e < X; e++) prev[e] = frand(&r) > 0.2f;
        for (int n = 0; n < 2; n++) {
            mp_pred_net_probs(&f.nets[n], E, X, h, prev, NULL, hid, probs);
            ref_probs(s.w[n], H, h, f.nets[n].prev_picks ? prev : NULL, false, NULL, want);
            double sum = 0;
            for (int e = 0; e < X; e++) {
                sum += probs[e];
                if (fabs(probs[e] - want[e]) > worst) worst = fabs(probs[e] - want[e]);
            }
            CHECKF(fabs(sum - 1.0) < 1e-5, "probabilities sum to %g", sum);
        }
    }
    CHECKF(worst < 1e-5, "largest difference from the double reference %g", worst);
    mp_pred_file_free(&f);
}

static void expect_error(const spec *s, const char *what, const char *want1, const char *want2)
{
    mp_pred_file f = {.n_nets = -1};
    mp_err err;
    int rc = load(s, &f, &err);
    CHECKF(rc != MP_OK, "%s: loaded", what);
    CHECKF(f.n_nets == -1, "%s: the output was touched", what);
    CHECKF(strstr(err.msg, "pred.gguf") && strstr(err.msg, want1) && (!want2 || strstr(err.msg, want2)),
           "%s: message '%s' (want '%s'%s%s)", what, err.msg, want1, want2 ? ", " : "", want2 ? want2 : "");
    CHECKF(!strchr(err.msg, '\n'), "%s: the message is more than one line", what);
    if (rc == MP_OK) mp_pred_file_free(&f);
}

static void test_errors(void)
{
    spec s;
    s = good(), s.arch = "llama";
    expect_error(&s, "architecture", "not a predictor file", NULL);
    s = good(), s.n_embd = E + 1;
    expect_error(&s, "n_embd", "n_embd 33", "n_embd 32");
    s = good(), s.n_expert = X * 2;
    expect_error(&s, "n_expert", "16 experts", NULL);
    s = good(), s.src[1] = 3;
    expect_error(&s, "src out of range", "net 1", "3 layers with routed experts");
    s = good(), s.ahead[0] = 2;
    expect_error(&s, "ahead 2", "net 0", "2 tokens ahead");
    s = good(), s.dst[0] = 0;
    expect_error(&s, "same token, earlier layer", "net 0", "of the same token");
    s = good(), s.src[1] = 0, s.dst[1] = 1, s.ahead[1] = 0;
    expect_error(&s, "duplicate", "nets 0 and 1", NULL);
    s = good(), s.n_src_entries = 1;
    expect_error(&s, "array lengths", "have 1, 2 and 2 entries", NULL);
    s = good(), s.float_dst = true;
    expect_error(&s, "float dst", "predictor.dst", "not of integers");
    s = good(), s.drop_fc2_bias = true;
    expect_error(&s, "missing tensor", "net 0", "net.0.fc2.bias is missing");
    s = good(), s.fc2_rows = X - 1;
    expect_error(&s, "tensor shape", "net 0", "net.0.fc2.weight");
    s = good(), s.hidden = 8;
    expect_error(&s, "hidden size", "net 0", "hidden layer of 8");
    s = good(), s.fc1_extra = X - 1;
    expect_error(&s, "fc1 width", "net 1", "net.1.fc1.weight");
}

/* The predictor with nets: only nets guess; a net of ahead 1 reaches the
 * next token; confidence decides. */
static void gate_never(const void *ud, int layer, const float *h, float *probs, void *scratch)
{
    (void)ud, (void)layer, (void)h, (void)scratch;
    CHECKF(0, "the router was applied to layer %d although the predictor has nets", layer);
    for (int e = 0; e < X; e++) probs[e] = 1.0f / X;
}

static void test_predictor_uses_nets(void)
{
    /* net 0: MoE 0 -> 1 (layers 0 -> 2), sure of experts 3 and 5; net 1:
     * MoE 2 -> 0 of the next token (3 -> 0), unsure (flat) */
    static float w0[H * E + H + X * H + X], w1[H * E + H + X * H + X];
    for (int e = 0; e < X; e++) w0[H * E + H + X * H + e] = (e == 3 || e == 5) ? 20.0f : 0.0f;
    mp_pred_net nets[2] = {{.src = 0, .dst = 2, .ahead = 0, .hidden = H, .w1 = w0, .b1 = w0 + H * E,
                            .w2 = w0 + H * E + H, .b2 = w0 + H * E + H + X * H},
                           {.src = 3, .dst = 0, .ahead = 1, .hidden = H, .w1 = w1, .b1 = w1 + H * E,
                            .w2 = w1 + H * E + H, .b2 = w1 + H * E + H + X * H}};
    const uint8_t moe[NL] = {1, 0, 1, 1};
    mp_experts_shape sh = {NL, X, K, E, moe};
    mp_prefetch_cfg cfg = {MP_PREFETCH_LOOKAHEAD, 2, 0, -1.0f, NULL, NULL, true, nets, 2};
    mp_predictor *p = NULL;
    mp_err err;
    mp_err_clear(&err);
    CHECKF(mp_predictor_create(&p, &sh, &cfg, gate_never, NULL, &err) == MP_OK, "%s", err.msg);
    if (!p) return;
    CHECK(mp_predict_crosses_tokens(p));
    float h[E];
    for (int i = 0; i < E; i++) h[i] = (float)(i % 5) - 2.0f;
    int32_t out[X];
    mp_predict_in in = {0, 0, 1, h, NULL, NULL};
    int n = mp_predict(p, &in, 2, out, X);
    CHECKF(n == 2 && ((out[0] == 3 && out[1] == 5) || (out[0] == 5 && out[1] == 3)), "sure net: %d picks", n);
    in.layer = 2;
    CHECKF(mp_predict(p, &in, 3, out, X) == 0, "a layer without a net was guessed");
    in.layer = 3;
    CHECKF(mp_predict(p, &in, 0, out, X) == 0, "a flat net (mass 1/4) let picks through");
    in.layer = 0; /* the sure net, used: stays through */
    for (int t = 0; t < 10; t++) {
        n = mp_predict(p, &in, 2, out, X);
        const int need[K] = {3, 5};
        mp_predict_observe(p, 2, need, K);
    }
    CHECKF(n == 2, "a sure, right net stopped after use (%d)", n);
    for (int t = 0; t < 40 && n; t++) { /* the same net, always wrong: stops */
        n = mp_predict(p, &in, 2, out, X);
        const int need[K] = {0, 1};
        mp_predict_observe(p, 2, need, K);
    }
    CHECKF(n == 0, "a sure but wrong net kept its picks going");
    mp_predictor_free(p);
}

/* A predictor of the one net, with a fixed bar (each pick's probability >=
 * 0.3), so that the adaptive calibration, which a changing set makes wrong,
 * keeps out of it. */
static mp_predictor *fixed_bar_predictor(mp_pred_net *net)
{
    const mp_experts_shape sh = {NL, X, K, E, is_moe};
    mp_prefetch_cfg cfg = {MP_PREFETCH_LOOKAHEAD, 2, 0, 0.3f, NULL, NULL, true, net, 1};
    mp_predictor *p = NULL;
    mp_err err;
    mp_err_clear(&err);
    CHECKF(mp_predictor_create(&p, &sh, &cfg, gate_never, NULL, &err) == MP_OK, "%s", err.msg);
    return p;
}

/* Whether the prediction out[0..n) is exactly the set {want[0], want[1]}. */
static bool picked(int n, const int32_t *out, const int *want)
{
    return n == K && ((out[0] == want[0] && out[1] == want[1]) || (out[0] == want[1] && out[1] == want[0]));
}

/* A net's weights whose output is input block `from` (0: h, E: what
 * follows h): hidden unit e is input column from + e, and W2 maps it to
 * expert e. */
static void follow_weights(float *w, int n_in, int from)
{
    float *w1 = w, *w2 = w + H * n_in + H;
    for (int e = 0; e < X; e++) {
        w1[e * n_in + from + e] = 1.0f;
        w2[e * H + e] = 20.0f;
    }
}

/* The net of MoE layer 0 -> 2 (layers 0 -> 2) with those weights in w, and
 * the h it is given (its own part of the input does not matter). */
static mp_pred_net follow_net(float *w, int n_in, float *h)
{
    follow_weights(w, n_in, E);
    for (int i = 0; i < E; i++) h[i] = (float)(i % 3) - 1.0f;
    return (mp_pred_net){.src = 0, .dst = 2, .ahead = 0, .hidden = H, .w1 = w, .b1 = w + H * n_in,
                         .w2 = w + H * n_in + H, .b2 = w + H * n_in + H + X * H};
}

static const int follow_sets[3][K] = {{1, 6}, {4, 7}, {0, 3}};

/* A net with prev_picks whose output is its layer's last picks. */
static void test_prev_picks(void)
{
    static float w[H * (E + X) + H + X * H + X];
    float h[E];
    mp_pred_net net = follow_net(w, E + X, h);
    net.prev_picks = true;
    mp_predictor *p = fixed_bar_predictor(&net);
    if (!p) return;
    int32_t out[X];
    mp_predict_in in = {0, 0, 1, h, NULL, NULL};
    CHECKF(mp_predict(p, &in, 2, out, X) == 0, "no last picks known, yet the net was sure");
    for (int i = 0; i < 3; i++) {
        mp_predict_observe(p, 2, follow_sets[i], K);
        const int n = mp_predict(p, &in, 2, out, X);
        CHECKF(picked(n, out, follow_sets[i]), "after layer 2 used %d and %d the net picked %d experts (%d, %d)",
               follow_sets[i][0], follow_sets[i][1], n, n > 0 ? out[0] : -1, n > 1 ? out[1] : -1);
    }
    mp_predictor_free(p);
}

/* A net with prev_h whose output is its layer's last residual (after its
 * rms). */
static void test_prev_h_follows(void)
{
    static float w[H * 2 * E + H + X * H + X];
    float h[E];
    mp_pred_net net = follow_net(w, 2 * E, h);
    net.prev_h = true;
    mp_predictor *p = fixed_bar_predictor(&net);
    if (!p) return;
    int32_t out[X];
    mp_predict_in in = {0, 0, 1, h, NULL, NULL};
    CHECKF(mp_predict(p, &in, 2, out, X) == 0, "no residual of layer 2 known, yet the net was sure");
    for (int i = 0; i < 3; i++) {
        float g[E] = {0};
        g[follow_sets[i][0]] = g[follow_sets[i][1]] = 1.0f;
        mp_predict_observe_h(p, 0, h); /* another layer's: no effect */
        mp_predict_observe_h(p, 2, g);
        const int n = mp_predict(p, &in, 2, out, X);
        CHECKF(picked(n, out, follow_sets[i]), "after layer 2's residual named %d and %d the net picked %d experts "
               "(%d, %d)", follow_sets[i][0], follow_sets[i][1], n, n > 0 ? out[0] : -1, n > 1 ? out[1] : -1);
    }
    /* a prompt chunk: its first token sees the last residual */
    float hh[2 * E];
    memcpy(hh, h, sizeof h);
    memcpy(hh + E, h, sizeof h);
    mp_predict_in chunk = {0, 0, 2, hh, NULL, NULL};
    const int n = mp_predict(p, &chunk, 2, out, X);
    CHECKF(picked(n, out, follow_sets[2]), "a chunk of 2: %d picks (%d, %d), want the first token's 0 and 3", n,
           n > 0 ? out[0] : -1, n > 1 ? out[1] : -1);
    mp_predictor_free(p);
}

/* A next-token net with prev_h (MoE layer 3 -> 0 of the next token), whose
 * output follows both h and the residual: in a prompt chunk, layer 0 has run
 * for the whole chunk, so the residual it kept is the last token's, and only
 * the last token may take it; the first token names its own set. */
static void test_prev_h_next_token_chunk(void)
{
    static float w[H * 2 * E + H + X * H + X];
    follow_weights(w, 2 * E, 0);
    follow_weights(w, 2 * E, E);
    mp_pred_net net = {.src = 3, .dst = 0, .ahead = 1, .hidden = H, .prev_h = true, .w1 = w, .b1 = w + H * 2 * E,
                       .w2 = w + H * 2 * E + H, .b2 = w + H * 2 * E + H + X * H};
    mp_predictor *p = fixed_bar_predictor(&net);
    if (!p) return;
    float hh[2 * E] = {0}, g[E] = {0};
    hh[follow_sets[0][0]] = hh[follow_sets[0][1]] = 1.0f; /* the first token's h; the last one's is 0 */
    g[follow_sets[2][0]] = g[follow_sets[2][1]] = 1.0f;
    mp_predict_observe_h(p, 0, g);
    int32_t out[X];
    mp_predict_in chunk = {3, 0, 2, hh, NULL, NULL};
    const int n = mp_predict(p, &chunk, 0, out, X);
    bool want[X] = {false};
    want[follow_sets[0][0]] = want[follow_sets[0][1]] = want[follow_sets[2][0]] = want[follow_sets[2][1]] = true;
    int right = 0;
    for (int i = 0; i < n; i++) right += want[out[i]];
    CHECKF(n == 2 * K && right == 2 * K, "a chunk of 2, next-token net: %d picks, %d of them %d, %d, %d, %d", n, right,
           follow_sets[0][0], follow_sets[0][1], follow_sets[2][0], follow_sets[2][1]);
    mp_predictor_free(p);
}

static void test_fuzz(void)
{
    spec s = good();
    char path[300];
    snprintf(path, sizeof path, "%s/pred.gguf", dir);
    CHECK(write_spec(&s, path) == MP_OK);
    FILE *f = fopen(path, "rb");
    if (!f) return;
    static unsigned char img[1 << 16], mut[1 << 16];
    const size_t n = fread(img, 1, sizeof img, f);
    fclose(f);
    uint32_t r = 12345;
    int loaded = 0, refused = 0;
    for (int it = 0; it < 2000; it++) {
        memcpy(mut, img, n);
        const int changes = 1 + (int)((r = r * 1664525u + 1013904223u) >> 29);
        for (int c = 0; c < changes; c++) {
            r = r * 1664525u + 1013904223u;
            /* most changes in the header and metadata, where the structure is */
            const size_t at = (r >> 8) % (it % 2 ? n : (n < 1024 ? n : 1024));
            r = r * 1664525u + 1013904223u;
            mut[at] = (unsigned char)(r >> 24);
        }
        const size_t len = it % 7 == 0 ? (size_t)((r >> 4) % n) : n; /* some truncated too */
        FILE *o = fopen(path, "wb");
        if (!o) break;
        fwrite(mut, 1, len, o);
        fclose(o);
        mp_pred_file pf;
        mp_err err;
        mp_err_clear(&err);
        const mp_experts_shape sh = {NL, X, K, E, is_moe};
        if (mp_pred_file_load(path, &sh, &pf, &err) == MP_OK) {
            loaded++;
            float h[E] = {1.0f}, hid[H * 256 + 2 * E + X], probs[X];
            for (int i = 0; i < pf.n_nets; i++)
                if (pf.nets[i].hidden <= H * 256) mp_pred_net_probs(&pf.nets[i], E, X, h, NULL, NULL, hid, probs);
            mp_pred_file_free(&pf);
        } else {
            refused++;
            CHECKF(err.msg[0] != '\0', "fuzz %d: refused without a message", it);
        }
    }
    CHECKF(refused > 0, "fuzz: every mutated file loaded (%d)", loaded);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_predictor_file.XXXXXX");
    if (!mkdtemp(dir)) MP_TEST_SKIP("no temporary directory");
    test_loads_and_computes();
    test_errors();
    test_fuzz();
    test_predictor_uses_nets();
    test_prev_picks();
    test_prev_h_file();
    test_prev_h_follows();
    test_prev_h_next_token_chunk();
    char path[300];
    snprintf(path, sizeof path, "%s/pred.gguf", dir);
    unlink(path);
    rmdir(dir);
    MP_TEST_DONE();
}
