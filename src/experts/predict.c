#include "experts/predict.h"

#include "common/sysinfo.h"
#include "common/types.h"
#include "experts/experts.h"
#include "kernels/kernels.h"
#include "trace/routing.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mp_predictor {
    uint32_t n_layer, n_expert, n_used, n_embd;
    uint8_t *is_moe; /* [n_layer] */
    mp_prefetch_cfg cfg;
    mp_gate_fn gate;
    const void *gate_ud;
    void *scratch;  /* MP_GATE_SCRATCH_BYTES(n_embd) for gate */
    float *logits;  /* (n_expert) gate probabilities */
    int32_t *count; /* (n_expert) votes over the chunk's tokens */
    float *score;   /* (n_expert) summed probabilities */
    /* oracle: the routing table (cfg.routing, or own_routing read from
     * cfg.oracle_trace) and each layer's index among the MoE layers */
    const struct mp_routing *routing;
    struct mp_routing *own_routing;
    int32_t *moe_index; /* [n_layer]; -1 for a dense layer */

    /* Adaptive lookahead (min_prob < 0): how often a pick of gate
     * probability bucket b, made d layers ahead for layer T, was then used
     * by T. calib[(T * D + d-1) * MP_PRED_BUCKETS + b]; decode tokens only. */
    bool adaptive;
    int D, want;
    mp_pred_calib *calib;
    /* picks of the token in flight, not yet checked against their layer:
     * pend[(T * D + d-1) * want + i], pend_n[T * D + d-1] of them */
    mp_pred_pick *pend;
    int *pend_n;
    uint16_t *idle;    /* [T * D + d-1]: computed events in a row that let nothing through */
    uint16_t *skipped; /* [T * D + d-1]: events skipped since the last probe */
    uint8_t *needed;   /* (n_expert) scratch: the observed layer's needs */
    mp_predict_stats st;

    /* the governor (predict.h): on for this block? */
    bool gov;
    int first_moe;       /* a decode token starts at this layer */
    uint64_t (*now_ns)(void *);
    void *now_ctx;
    uint64_t tok_t0;     /* the current decode token's start; 0: not timed */
    bool on;
    int blk_tokens;      /* tokens of the current block so far */
    double blk_ns, blk_n; /* its timed tokens (past the settling ones) */
    uint64_t blocks;     /* blocks finished */
    double prev_mean;    /* the last block's mean token time (ns; <= 0: none) */
    bool prev_on;
    double pair_sum, pair_sq, pairs; /* fading sums of paired relative differences (on - off)
                                      * and of their squares, and the pairs they hold */
    uint64_t n_timed;
    double mean_ns;      /* mean timed token (the last 64 or so), for the gap rule */

    float *hid;          /* a trained net's hidden layer (the widest net's size) and input */
    uint8_t *last_used;  /* [n_layer * n_expert]: the experts each layer used last (nets only;
                          * all 0 until the layer runs a decode token: no flags) */
    float *last_h;       /* [n_layer * n_embd]: each layer's last residual (nets with prev_h only) */
    uint8_t *has_last_h; /* [n_layer] */
    bool cross;          /* a net of ahead = 1: lookahead reaches the next token */
};

static uint64_t mono_ns(void *ctx)
{
    (void)ctx;
    return mp_time_ns();
}

int mp_prefetch_kind_parse(const char *s, mp_prefetch_kind *out)
{
    if (!strcmp(s, "none")) *out = MP_PREFETCH_NONE;
    else if (!strcmp(s, "lookahead")) *out = MP_PREFETCH_LOOKAHEAD;
    else if (!strcmp(s, "oracle")) *out = MP_PREFETCH_ORACLE;
    else return MP_E_INVAL;
    return MP_OK;
}

const char *mp_prefetch_kind_name(mp_prefetch_kind k)
{
    return k == MP_PREFETCH_LOOKAHEAD ? "lookahead" : k == MP_PREFETCH_ORACLE ? "oracle" : "none";
}

/* The oracle's routing: the run's own (cfg.routing) or a file's, with the
 * same position mapping and checks as --routing-trace. */
static int load_oracle(mp_predictor *p, mp_err *err)
{
    if (!(p->moe_index = malloc(sizeof(int32_t) * (p->n_layer ? p->n_layer : 1))))
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    uint32_t n_moe = 0;
    for (uint32_t l = 0; l < p->n_layer; l++) p->moe_index[l] = p->is_moe[l] ? (int32_t)n_moe++ : -1;
    if (p->cfg.routing) {
        p->routing = p->cfg.routing;
        return MP_OK;
    }
    const mp_routing_opts o = {.n_layers = n_moe, .n_experts = p->n_expert, .k = p->n_used};
    int rc = mp_routing_load(p->cfg.oracle_trace, &o, &p->own_routing, err);
    p->routing = p->own_routing;
    return rc;
}

/* Gate-probability buckets, powers of two: b = 7 for p >= 1/2, 6 for
 * [1/4, 1/2), ..., 1 for [1/128, 1/64), 0 below. */
static int bucket_of(float p)
{
    int b = MP_PRED_BUCKETS - 1;
    for (float lo = 0.5f; b > 0 && p < lo; lo *= 0.5f) b--;
    return b;
}

/* The lower bound of bucket b (0 for the last one). */
static float bucket_lo(int b) { return b == 0 ? 0.0f : ldexpf(1.0f, b - (MP_PRED_BUCKETS - 1) - 1); }

/* Estimated precision of bucket c: its observations with a prior of
 * MP_PRED_PRIOR_N pseudo-picks, right 3/4 of the time for buckets at or
 * above 1/k (the fixed rule's threshold) and 1/4 below, so that a cold
 * predictor starts where the fixed rule was and evidence takes over within
 * a few tokens. */
static float est_precision(const mp_predictor *p, const mp_pred_calib *c, int b)
{
    const float prior = bucket_lo(b) >= 1.0f / (float)p->n_used - 1e-9f ? 0.75f : 0.25f;
    return (c->used + prior * MP_PRED_PRIOR_N) / (c->picks + MP_PRED_PRIOR_N);
}

/* x[i] = h[i] / rms(h) */
static void rms_scaled(float *x, const float *h, int n)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)h[i] * (double)h[i];
    const float inv = 1.0f / sqrtf((float)(ss / n) + 1e-5f);
    for (int i = 0; i < n; i++) x[i] = h[i] * inv;
}

void mp_pred_net_probs(const mp_pred_net *net, int n_embd, int n_expert, const float *h, const uint8_t *prev,
                       const float *prev_h, float *hid, float *probs)
{
    const int H = net->hidden;
    float *x = hid + H;
    rms_scaled(x, h, n_embd);
    int n_in = n_embd;
    if (net->prev_h) {
        if (prev_h) rms_scaled(x + n_embd, prev_h, n_embd);
        else memset(x + n_embd, 0, sizeof(float) * (size_t)n_embd);
        n_in += n_embd;
    } else if (net->prev_picks) {
        for (int e = 0; e < n_expert; e++) x[n_embd + e] = prev && prev[e] ? 1.0f : 0.0f;
        n_in += n_expert;
    }
    mp_matmul_rows(MP_TYPE_F32, net->w1, n_in, 0, H, x, 1, hid, H);
    for (int j = 0; j < H; j++) {
        const float a = hid[j] + net->b1[j];
        hid[j] = a > 0.0f ? a : 0.0f;
    }
    mp_matmul_rows(MP_TYPE_F32, net->w2, H, 0, n_expert, hid, 1, probs, n_expert);
    float mx = -INFINITY;
    for (int e = 0; e < n_expert; e++) {
        probs[e] += net->b2[e];
        if (probs[e] > mx) mx = probs[e];
    }
    float sum = 0.0f;
    for (int e = 0; e < n_expert; e++) sum += (probs[e] = expf(probs[e] - mx));
    for (int e = 0; e < n_expert; e++) probs[e] /= sum;
}

/* The net from layer src to target: of the same token when target is
 * later, else of the next token (ahead 1); NULL if none. */
static const mp_pred_net *find_net(const mp_predictor *p, int src, int target)
{
    const int ahead = target > src ? 0 : 1;
    for (int i = 0; i < p->cfg.n_nets; i++) {
        const mp_pred_net *n = &p->cfg.nets[i];
        if (n->src == src && n->dst == target && n->ahead == ahead) return n;
    }
    return NULL;
}

/* The bucket of a net's picks: the layer's top-k mass (predict.h). */
static int mass_bucket(const float *probs, int X, int K)
{
    float top[MP_EXPERTS_BATCH_MAX] = {0};
    for (int e = 0; e < X; e++) { /* the K largest, by insertion */
        float v = probs[e];
        for (int s = 0; s < K; s++)
            if (v > top[s]) {
                const float t = top[s];
                top[s] = v;
                v = t;
            }
    }
    float mass = 0.0f;
    for (int s = 0; s < K; s++) mass += top[s];
    const int steps = (int)((1.0f - mass) * 32.0f);
    return steps >= MP_PRED_BUCKETS - 1 ? 0 : MP_PRED_BUCKETS - 1 - steps;
}

/* Precision of a net's bucket b: evidence, starting from the bucket's mass. */
static float net_precision(const mp_pred_calib *c, int b)
{
    const float prior = b == 0 ? 0.5f : 1.0f - (float)(MP_PRED_BUCKETS - b) / 32.0f;
    return (c->used + prior * MP_PRED_PRIOR_N) / (c->picks + MP_PRED_PRIOR_N);
}

/* Whether target's gate probabilities can be guessed from layer src: with
 * trained nets, by the net that maps src to target (*net; none: no guess,
 * the router's guesses are the weaker and a wrong read costs the right
 * ones' time); else by the router, for the same token only. */
static bool can_guess(const mp_predictor *p, int src, int target, const mp_pred_net **net)
{
    *net = p->cfg.n_nets ? find_net(p, src, target) : NULL;
    return *net || (!p->cfg.n_nets && target > src);
}

/* The guess of target's gate probabilities from in's token t into
 * p->logits, by net (can_guess) or the router. */
static void guess_probs(mp_predictor *p, const mp_predict_in *in, int t, int target, const mp_pred_net *net)
{
    const float *h = in->h + (int64_t)t * p->n_embd;
    if (net) {
        const uint8_t *last = p->last_used + (size_t)target * p->n_expert;
        /* dst's residual on the token before the predicted one, as last
         * observed there: the previous chunk's last token's, which is that
         * residual for this chunk's first token; for a next-token net (dst
         * has run in this chunk), this chunk's last token's, which is that
         * residual for its last token. The chunk's other tokens get none. */
        const int with_h = net->ahead ? in->T - 1 : 0;
        const float *last_h = p->last_h && p->has_last_h[target] && t == with_h
                                  ? p->last_h + (size_t)target * p->n_embd : NULL;
        mp_pred_net_probs(net, (int)p->n_embd, (int)p->n_expert, h, last, last_h, p->hid, p->logits);
    }
    else p->gate(p->gate_ud, target, h, p->logits, p->scratch);
}

int mp_predictor_create(mp_predictor **out, const mp_experts_shape *sh, const mp_prefetch_cfg *cfg,
                        mp_gate_fn gate, const void *gate_ud, mp_err *err)
{
    *out = NULL;
    if (cfg->kind == MP_PREFETCH_LOOKAHEAD && !gate)
        return mp_err_set(err, MP_E_INVAL, "lookahead prefetch needs the model's router");
    mp_predictor *p = calloc(1, sizeof *p);
    if (!p) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    p->n_layer = sh->n_layer;
    p->n_expert = sh->n_expert;
    p->n_used = sh->n_expert_used;
    p->n_embd = sh->n_embd;
    p->cfg = *cfg;
    if (p->cfg.lookahead < 1) p->cfg.lookahead = 1;
    p->gate = gate;
    p->gate_ud = gate_ud;
    const size_t X = sh->n_expert ? sh->n_expert : 1;
    p->is_moe = malloc(sh->n_layer ? sh->n_layer : 1);
    if (p->is_moe) memcpy(p->is_moe, sh->is_moe, sh->n_layer);
    if (posix_memalign(&p->scratch, 64, MP_GATE_SCRATCH_BYTES(sh->n_embd))) p->scratch = NULL;
    p->logits = malloc(sizeof(float) * X);
    p->count = malloc(sizeof(int32_t) * X);
    p->score = malloc(sizeof(float) * X);
    int rc = (p->is_moe && p->scratch && p->logits && p->count && p->score) ? MP_OK
                                                                           : mp_err_set(err, MP_E_NOMEM, "out of memory");
    int max_hidden = 0;
    bool prev_h = false;
    for (int i = 0; cfg->kind == MP_PREFETCH_LOOKAHEAD && i < cfg->n_nets; i++) {
        if (cfg->nets[i].hidden > max_hidden) max_hidden = cfg->nets[i].hidden;
        if (cfg->nets[i].ahead) p->cross = true;
        prev_h |= cfg->nets[i].prev_h;
    }
    if (!rc && max_hidden > 0 &&
        (!(p->hid = malloc(sizeof(float) * ((size_t)max_hidden + 2 * (size_t)sh->n_embd + X))) ||
         !(p->last_used = calloc((size_t)sh->n_layer * X, 1))))
        rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
    if (!rc && prev_h &&
        (!(p->last_h = malloc(sizeof(float) * (size_t)sh->n_layer * (sh->n_embd ? sh->n_embd : 1))) ||
         !(p->has_last_h = calloc(sh->n_layer ? sh->n_layer : 1, 1))))
        rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
    if (cfg->kind != MP_PREFETCH_LOOKAHEAD) p->cfg.n_nets = 0;
    p->adaptive = cfg->kind == MP_PREFETCH_LOOKAHEAD && cfg->min_prob < 0.0f;
    p->gov = p->adaptive && !cfg->no_timing;
    p->on = true;
    p->now_ns = mono_ns;
    p->first_moe = -1;
    for (uint32_t l = 0; l < sh->n_layer && p->first_moe < 0; l++)
        if (sh->is_moe[l]) p->first_moe = (int)l;
    if (!rc && p->adaptive) {
        p->D = p->cfg.lookahead;
        p->want = (int)sh->n_expert_used + (p->cfg.extra > 0 ? p->cfg.extra : 0);
        if (p->want > (int)X) p->want = (int)X;
        const size_t ev = (size_t)sh->n_layer * (size_t)p->D;
        p->calib = calloc(ev * MP_PRED_BUCKETS, sizeof *p->calib);
        p->pend = calloc(ev * (size_t)(p->want ? p->want : 1), sizeof *p->pend);
        p->pend_n = calloc(ev ? ev : 1, sizeof *p->pend_n);
        p->idle = calloc(ev ? ev : 1, sizeof *p->idle);
        p->skipped = calloc(ev ? ev : 1, sizeof *p->skipped);
        p->needed = calloc(X, 1);
        if (!p->calib || !p->pend || !p->pend_n || !p->idle || !p->skipped || !p->needed)
            rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    if (!rc && cfg->kind == MP_PREFETCH_ORACLE) {
        if (!cfg->oracle_trace && !cfg->routing)
            rc = mp_err_set(err, MP_E_INVAL, "--prefetch oracle needs --oracle-trace FILE (a --trace-out of an "
                                             "identical run) or --routing-trace FILE");
        else rc = load_oracle(p, err);
    }
    if (rc) {
        mp_predictor_free(p);
        return rc;
    }
    *out = p;
    return MP_OK;
}

void mp_predictor_free(mp_predictor *p)
{
    if (!p) return;
    free(p->is_moe);
    free(p->scratch);
    free(p->logits);
    free(p->count);
    free(p->score);
    free(p->moe_index);
    mp_routing_free(p->own_routing);
    free(p->calib);
    free(p->pend);
    free(p->pend_n);
    free(p->idle);
    free(p->skipped);
    free(p->needed);
    free(p->hid);
    free(p->last_used);
    free(p->last_h);
    free(p->has_last_h);
    free(p);
}

/* Orders the experts with votes or probability mass by (votes, summed
 * probability), best first, and writes at most cap of them. */
static int rank(const mp_predictor *p, int X, int32_t *out, int cap)
{
    int n = 0;
    for (int e = 0; e < X; e++) {
        if (p->count[e] == 0 && p->score[e] <= 0.0f) continue;
        /* insertion into the sorted prefix out[0..n) */
        int i;
        if (n < cap) {
            i = n++;
        } else {
            i = cap - 1; /* full: replace the worst if e beats it */
            if (p->count[out[i]] > p->count[e] ||
                (p->count[out[i]] == p->count[e] && p->score[out[i]] >= p->score[e]))
                continue;
        }
        while (i > 0 && (p->count[out[i - 1]] < p->count[e] ||
                         (p->count[out[i - 1]] == p->count[e] && p->score[out[i - 1]] < p->score[e]))) {
            out[i] = out[i - 1];
            i--;
        }
        out[i] = e;
    }
    return n;
}

/* Lookahead that learns which of its picks pay (min_prob < 0, the
 * default). A pick is let through when picks of its gate-probability
 * bucket, made at the same distance for the same layer, were used at least
 * MP_PRED_MIN_PRECISION of the time (est_precision). Where nothing gets
 * through for MP_PRED_IDLE_AFTER events in a row (guesses that are noise,
 * e.g. a run whose routing comes from a trace), the router is not even
 * applied any more, except every MP_PRED_PROBE_EVERY-th event, which
 * re-checks and lets through what has become good again. Picks are checked
 * against what their layer then used (mp_predict_observe) for decode
 * tokens (T == 1); a prefill chunk applies what decode learned. */
static int predict_adaptive(mp_predictor *p, const mp_predict_in *in, int target, int32_t *out, int cap)
{
    const int X = (int)p->n_expert, K = (int)p->n_used;
    /* a target at or before this layer is the next token's (a net of ahead 1) */
    const int d = target > in->layer ? target - in->layer : target + (int)p->n_layer - in->layer;
    if (d < 1 || d > p->D) return 0;
    const size_t ev = (size_t)target * (size_t)p->D + (size_t)(d - 1);
    const mp_pred_calib *cal = p->calib + ev * MP_PRED_BUCKETS;
    p->pend_n[ev] = 0;
    const mp_pred_net *net;
    if (!can_guess(p, in->layer, target, &net)) return 0;
    /* a net costs little and is sure of some layers only: it never stands aside */
    if (!net && p->idle[ev] >= MP_PRED_IDLE_AFTER) {
        if (++p->skipped[ev] < MP_PRED_PROBE_EVERY) {
            p->st.skipped++;
            return 0;
        }
        p->skipped[ev] = 0;
    }
    p->st.computed++;
    bool pass[MP_PRED_BUCKETS], pass_net[MP_PRED_BUCKETS];
    for (int b = 0; b < MP_PRED_BUCKETS; b++) {
        pass[b] = est_precision(p, &cal[b], b) >= MP_PRED_MIN_PRECISION;
        pass_net[b] = net_precision(&cal[b], b) >= MP_PRED_NET_MIN_PRECISION;
    }
    const bool record = in->T == 1;
    mp_pred_pick *pk = p->pend + ev * (size_t)p->want;
    int n_pass = 0;
    for (int t = 0; t < in->T; t++) {
        guess_probs(p, in, t, target, net);
        const int bn = net ? mass_bucket(p->logits, X, K) : 0;
        for (int s = 0; s < p->want; s++) {
            int best = -1;
            for (int e = 0; e < X; e++)
                if (p->logits[e] >= 0.0f && (best < 0 || p->logits[e] > p->logits[best])) best = e;
            if (best < 0) break;
            const int b = net ? bn : bucket_of(p->logits[best]);
            if (record && !(in->present && in->present(in->present_ctx, target, best)))
                pk[p->pend_n[ev]++] = (mp_pred_pick){best, (uint8_t)b};
            if (net ? pass_net[b] : pass[b]) {
                n_pass++;
                if (s < K) p->count[best]++;
                p->score[best] += p->logits[best];
            }
            p->logits[best] = -1.0f;
        }
    }
    if (n_pass) p->idle[ev] = 0;
    else if (p->idle[ev] < UINT16_MAX) p->idle[ev]++;
    return rank(p, X, out, cap);
}

static int predict_lookahead(mp_predictor *p, const mp_predict_in *in, int target, int32_t *out, int cap);

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mp_predict(mp_predictor *p, const mp_predict_in *in, int target, int32_t *out, int cap)
{
    if (p->cfg.kind != MP_PREFETCH_LOOKAHEAD) return predict_lookahead(p, in, target, out, cap);
    /* what lookahead costs the forward thread: the router of a later layer,
     * applied to every token of the chunk */
    const uint64_t t0 = cpu_ns();
    int n = predict_lookahead(p, in, target, out, cap);
    p->st.cpu_ns += cpu_ns() - t0;
    return n;
}

static int predict_lookahead(mp_predictor *p, const mp_predict_in *in, int target, int32_t *out, int cap)
{
    if (target < 0 || target >= (int)p->n_layer || !p->is_moe[target]) return 0;
    const int X = (int)p->n_expert, K = (int)p->n_used;
    memset(p->count, 0, sizeof(int32_t) * (size_t)X);
    memset(p->score, 0, sizeof(float) * (size_t)X);
    if (p->cfg.kind == MP_PREFETCH_ORACLE) {
        for (int t = 0; t < in->T; t++) {
            const int32_t *r = mp_routing_get(p->routing, in->pos0 + t, (uint32_t)p->moe_index[target], NULL);
            if (!r) continue; /* a position the trace lacks */
            for (int j = 0; j < K; j++)
                if (r[j] >= 0 && r[j] < X) p->count[r[j]]++;
        }
        return rank(p, X, out, cap);
    }
    if (p->cfg.kind != MP_PREFETCH_LOOKAHEAD) return 0;
    if (in->T == 1 && !mp_predict_active(p)) return 0;
    if (p->adaptive) return predict_adaptive(p, in, target, out, cap);
    const int want = K + p->cfg.extra < X ? K + p->cfg.extra : X;
    const float min_prob = mp_predict_min_prob(p);
    const mp_pred_net *net;
    if (!can_guess(p, in->layer, target, &net)) return 0;
    for (int t = 0; t < in->T; t++) {
        guess_probs(p, in, t, target, net);
        /* top `want` of this token */
        for (int s = 0; s < want; s++) {
            int best = -1;
            for (int e = 0; e < X; e++)
                if (p->logits[e] >= 0.0f && (best < 0 || p->logits[e] > p->logits[best])) best = e;
            if (best < 0 || p->logits[best] < min_prob) break; /* sorted: the rest are lower */
            if (s < K) p->count[best]++;
            p->score[best] += p->logits[best];
            p->logits[best] = -1.0f;
        }
    }
    return rank(p, X, out, cap);
}

void mp_predict_observe(mp_predictor *p, int layer, const int *needed, int n)
{
    if (!p || layer < 0 || layer >= (int)p->n_layer) return;
    if (p->last_used) { /* the nets' prev_picks input */
        uint8_t *row = p->last_used + (size_t)layer * p->n_expert;
        memset(row, 0, p->n_expert);
        for (int i = 0; i < n; i++)
            if (needed[i] >= 0 && needed[i] < (int)p->n_expert) row[needed[i]] = 1;
    }
    if (!p->adaptive) return;
    for (int i = 0; i < n; i++)
        if (needed[i] >= 0 && needed[i] < (int)p->n_expert) p->needed[needed[i]] = 1;
    for (int d = 1; d <= p->D; d++) {
        const size_t ev = (size_t)layer * (size_t)p->D + (size_t)(d - 1);
        const mp_pred_pick *pk = p->pend + ev * (size_t)p->want;
        mp_pred_calib *cal = p->calib + ev * MP_PRED_BUCKETS;
        for (int i = 0; i < p->pend_n[ev]; i++) {
            mp_pred_calib *c = &cal[pk[i].bucket];
            const bool used = p->needed[pk[i].expert] != 0;
            c->picks += 1.0f;
            c->used += used ? 1.0f : 0.0f;
            p->st.checked++;
            p->st.checked_used += used;
            if (c->picks > MP_PRED_WINDOW) { /* forget slowly: routing drifts */
                c->picks *= 0.5f;
                c->used *= 0.5f;
            }
        }
        p->pend_n[ev] = 0;
    }
    for (int i = 0; i < n; i++)
        if (needed[i] >= 0 && needed[i] < (int)p->n_expert) p->needed[needed[i]] = 0;
}

void mp_predict_observe_h(mp_predictor *p, int layer, const float *h)
{
    if (!p || !p->last_h || !h || layer < 0 || layer >= (int)p->n_layer) return;
    memcpy(p->last_h + (size_t)layer * p->n_embd, h, sizeof(float) * p->n_embd);
    p->has_last_h[layer] = 1;
}

/* The mode of the block after `blocks` finished ones. */
static bool gov_next_on(const mp_predictor *p)
{
    if (p->blocks < 2 * MP_GOV_FIRST) return p->blocks % 2 == 0; /* on, off, on, ... */
    /* off is what a run without lookahead does: on must win by a margin,
     * and by more than the noise of the pairs (MP_GOV_Z standard errors) */
    const double n = p->pairs, mean = n > 0 ? p->pair_sum / n : 0.0;
    const double var = n > 1 ? fmax(0.0, (p->pair_sq - n * mean * mean) / (n - 1)) : 0.0;
    const double se = n > 0 ? sqrt(var / n) : 0.0;
    const bool on_faster = n > 0 && mean < -MP_GOV_MARGIN && mean + MP_GOV_Z * se < 0.0;
    /* where on is surely the slower, it is tried half as often */
    const bool on_slower = n > 0 && mean - MP_GOV_Z * se > 0.0;
    const uint64_t explore = on_slower ? 2 * MP_GOV_EXPLORE : MP_GOV_EXPLORE;
    return p->blocks % explore == 0 ? !on_faster : on_faster;
}

/* A block ends: against the block before it, if that one ran the other
 * mode, one paired difference (on - off, relative to their mean). Token
 * times drift along a run (the first tokens of a text, a harder passage),
 * so only neighbours are compared; each explore block is paired with the
 * block before it and the one after. */
static void gov_end_block(mp_predictor *p)
{
    const double mean = p->blk_n > 0 ? p->blk_ns / p->blk_n : -1.0;
    if (mean > 0.0 && p->prev_mean > 0.0 && p->prev_on != p->on) {
        const double on = p->on ? mean : p->prev_mean, off = p->on ? p->prev_mean : mean;
        const double diff = (on - off) / (0.5 * (on + off));
        p->pair_sum += diff;
        p->pair_sq += diff * diff;
        if (++p->pairs > MP_GOV_PAIRS) { /* forget slowly: the run changes */
            p->pair_sum *= 0.5;
            p->pair_sq *= 0.5;
            p->pairs *= 0.5;
        }
        p->st.pairs++;
    }
    p->prev_mean = mean;
    p->prev_on = p->on;
    p->blk_ns = p->blk_n = 0.0;
    p->blk_tokens = 0;
    p->blocks++;
    p->on = gov_next_on(p);
}

static void gov_time(mp_predictor *p, uint64_t dt)
{
    if (p->n_timed >= 2 * MP_GOV_BLOCK && (double)dt > MP_GOV_GAP * p->mean_ns) return; /* not a token */
    const int m = p->on;
    if (p->blk_tokens++ >= MP_GOV_SETTLE) { /* the first ones still meet the other mode's cache */
        p->blk_ns += (double)dt;
        p->blk_n += 1.0;
        p->n_timed++;
        p->mean_ns += ((double)dt - p->mean_ns) / (p->n_timed < 64 ? (double)p->n_timed : 64.0);
        p->st.timed_tokens[m]++;
        p->st.timed_ns[m] += dt;
    }
    if (p->blk_tokens == MP_GOV_BLOCK) gov_end_block(p);
}

void mp_predict_begin_layer(mp_predictor *p, int layer, int T)
{
    if (!p || !p->gov) return;
    if (T != 1) { /* a prefill chunk: the interval in flight is not one token */
        p->tok_t0 = 0;
        return;
    }
    if (layer != p->first_moe) return;
    const uint64_t t = p->now_ns(p->now_ctx);
    if (p->tok_t0 && t > p->tok_t0) gov_time(p, t - p->tok_t0);
    p->tok_t0 = t;
}

bool mp_predict_active(const mp_predictor *p) { return !p || !p->gov || p->on; }

void mp_predict_set_clock(mp_predictor *p, uint64_t (*now_ns)(void *), void *ctx)
{
    p->now_ns = now_ns ? now_ns : mono_ns;
    p->now_ctx = ctx;
}

mp_predict_stats mp_predict_get_stats(const mp_predictor *p)
{
    mp_predict_stats z = {0};
    return p ? p->st : z;
}

bool mp_predict_crosses_tokens(const mp_predictor *p)
{
    return p && (p->cfg.kind == MP_PREFETCH_ORACLE || p->cross);
}

float mp_predict_min_prob(const mp_predictor *p)
{
    return p->cfg.min_prob >= 0.0f ? p->cfg.min_prob : 1.0f / (float)p->n_used;
}
