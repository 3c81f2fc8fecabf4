/* Expert predictors for prefetching, behind one interface.
 *
 * At MoE layer L, once the hidden state h that feeds layer L's experts is
 * known, the streamer (stream.c) asks the predictor which experts layers
 * L+1..L+d will pick, and queues them as low-priority loads.
 *   lookahead: apply layer L+d's own FFN norm and router to h (exactly as
 *              that layer would to its own input) and take its top-k (+extra).
 *              By default (min_prob < 0) it learns online which picks pay:
 *              per target layer, distance and gate-probability bucket, how
 *              often such picks were used; it lets through those used at
 *              least half the time, and stops applying the router where
 *              nothing gets through (predict_adaptive in predict.c). With
 *              min_prob >= 0, a fixed rule: picks with gate probability
 *              >= min_prob.
 *   oracle:    replay the routing recorded by --trace-out in an earlier,
 *              identical run (perfect prediction; an upper bound for
 *              measurements only), or, when the run replays a routing
 *              trace (--routing-trace), that same routing table. Positions
 *              map as trace/routing.h says (sequences concatenated); trace
 *              layer i is the model's i-th MoE layer.
 * Predictions of dense layers are empty, and so are lookahead's of layers
 * past the last one. */
#ifndef MP_PREDICT_H
#define MP_PREDICT_H

#include "common/err.h"

#include <stddef.h>

#include <stdbool.h>
#include <stdint.h>

typedef enum mp_prefetch_kind {
    MP_PREFETCH_NONE = 0,
    MP_PREFETCH_LOOKAHEAD = 1,
    MP_PREFETCH_ORACLE = 2,
} mp_prefetch_kind;

/* A trained routing predictor (tools/train_predictor.py, loaded from a
 * --predictor file by the runtime): from the residual h entering MoE layer
 * src's FFN, the gate probabilities of layer dst, `ahead` tokens later (0:
 * the same token, dst > src; 1: the next token, dst <= src):
 *     probs = softmax(W2 relu(W1 x + b1) + b2),  x = h / rms(h),  rms(h) = sqrt(mean(h^2) + 1e-5)
 * With prev_picks, x also holds n_expert flags after h's n_embd: 1 for each
 * expert layer dst used on the token before the predicted one (the last
 * picks the predictor observed there: the previous token's for ahead 0, this
 * token's for ahead 1). Such nets are surer on held-out text but were no
 * faster on the demo model: what they learn is mostly the sets that repeat,
 * which cost no read (docs/measurements/predictor-2026-12-07.md).
 * With prev_h, x is [h / rms(h), g / rms(g)], g the residual entering layer
 * dst's FFN on the token before the predicted one (the last one the
 * predictor observed there, given in a prompt chunk to the one token it
 * belongs to: the first for a same-token net, the last for a next-token
 * net; zeros for the others and where none is known):
 * it carries the context at dst, which h does not yet (the demo model's
 * layer 0 -> 1 net gets 86% of whole sets right on held-out text against
 * 71%; docs/measurements/ceiling-2026-12-07.md).
 * The router applied to h (lookahead's default guess) gets a whole layer's
 * set right far less often on a small model, and its confidence says little;
 * a trained net's top-k mass says how often its whole set is right (on the
 * demo model, the most confident 40% of layers 89-96%). */
typedef struct mp_pred_net {
    int src, dst, ahead;
    int hidden;       /* a multiple of MP_PRED_NET_ALIGN */
    bool prev_picks;  /* x has the n_expert flags of dst's last picks */
    bool prev_h;      /* x has dst's last residual (not with prev_picks) */
    const float *w1;  /* (hidden, n_embd [+ n_expert with prev_picks, + n_embd with prev_h]) */
    const float *b1;  /* (hidden) */
    const float *w2;  /* (n_expert, hidden) */
    const float *b2;  /* (n_expert) */
} mp_pred_net;
#define MP_PRED_NET_ALIGN 16
#define MP_PRED_NET_MAX_HIDDEN 4096

/* probs[n_expert] for h[n_embd] and, with net->prev_picks, prev[n_expert]
 * (nonzero: dst used that expert last; NULL: none known), with net->prev_h,
 * prev_h[n_embd] (dst's last residual; NULL: none known), through the
 * dispatched F32 matmul kernels; hid: `hidden` + 2 n_embd + n_expert floats
 * of scratch. */
void mp_pred_net_probs(const mp_pred_net *net, int n_embd, int n_expert, const float *h, const uint8_t *prev,
                       const float *prev_h, float *hid, float *probs);

typedef struct mp_prefetch_cfg {
    mp_prefetch_kind kind;
    int lookahead;            /* d: layers ahead (>= 1) */
    int extra;                /* m: also the next m experts by score */
    float min_prob;           /* lookahead: negative: adaptive (the default);
                               * >= 0: a token's pick is prefetched only if its
                               * gate probability is at least this (0: all) */
    const char *oracle_trace; /* routing trace for MP_PREFETCH_ORACLE */
    const struct mp_routing *routing; /* the routing the run replays (borrowed, outlives
                                       * the predictor); the oracle reads it instead of
                                       * oracle_trace; NULL: none */
    bool no_timing;           /* adaptive lookahead: predict for every decode token
                               * instead of timing tokens with and without it (the
                               * governor below) */
    const mp_pred_net *nets;  /* lookahead: trained predictors (borrowed, outlive the
                               * predictor); where one maps src to dst it replaces the
                               * router; with ahead = 1 lookahead reaches the next
                               * token's layers. NULL: the routers only */
    int n_nets;
} mp_prefetch_cfg;

/* Parses "none", "lookahead", "oracle". */
int mp_prefetch_kind_parse(const char *s, mp_prefetch_kind *out);
const char *mp_prefetch_kind_name(mp_prefetch_kind k);

typedef struct mp_predictor mp_predictor;
struct mp_experts_shape;

/* The model's router, for lookahead: fills probs[n_expert] with the gate
 * probabilities layer `layer` gives the hidden row h (n_embd floats, the
 * residual entering that layer's FFN; the FFN norm is applied inside), as
 * that layer's own routing computes them. scratch: MP_GATE_SCRATCH_BYTES
 * bytes, 64-byte aligned. The model supplies it (model/route.h), so the
 * streamer needs no model internals. */
typedef void (*mp_gate_fn)(const void *ud, int layer, const float *h, float *probs, void *scratch);
#define MP_GATE_SCRATCH_BYTES(n_embd) ((size_t)(n_embd) * 8 + 128)

/* What the predictor sees at layer L for a chunk of T tokens. */
typedef struct mp_predict_in {
    int layer;        /* L */
    int pos0, T;      /* positions pos0 .. pos0+T-1 */
    const float *h;   /* (T, n_embd) residual stream entering L's FFN */
    /* Optional: is (layer, expert) in memory or on its way (then a pick of
     * it costs no read, and the adaptive lookahead leaves it out of what it
     * learns: it learns how often the picks it would have to read are
     * used)? NULL: nothing is. */
    bool (*present)(void *ctx, int layer, int expert);
    void *present_ctx;
} mp_predict_in;

/* Creates a predictor for a model of shape sh (copied). Lookahead calls
 * gate(gate_ud, ...); the oracle borrows cfg->routing, or reads
 * cfg->oracle_trace now (MP_E_INVAL naming the file when it does not fit). */
int mp_predictor_create(mp_predictor **out, const struct mp_experts_shape *sh, const mp_prefetch_cfg *cfg,
                        mp_gate_fn gate, const void *gate_ud, mp_err *err);
void mp_predictor_free(mp_predictor *p); /* NULL-safe */

/* Experts of target_layer predicted from `in`, best first, at most cap.
 * Returns the count (0 for dense layers or target past the last layer). */
int mp_predict(mp_predictor *p, const mp_predict_in *in, int target_layer, int32_t *out, int cap);

/* The gate-probability threshold lookahead applies (min_prob resolved). */
float mp_predict_min_prob(const mp_predictor *p);

/* Adaptive lookahead (min_prob < 0): calibration of picks per bucket. */
#define MP_PRED_BUCKETS 8
#define MP_PRED_MIN_PRECISION 0.5f /* a pick goes when picks like it were used this often */
#define MP_PRED_PRIOR_N 4.0f       /* pseudo-picks behind the cold-start guess */
#define MP_PRED_WINDOW 64.0f       /* picks per bucket before old ones count half */
#define MP_PRED_IDLE_AFTER 4       /* events letting nothing through before standing aside */
#define MP_PRED_PROBE_EVERY 8      /* while aside, one event in this many is still computed */
/* A trained net's picks are bucketed by the layer's top-k mass, in steps of
 * 1/32 below 1 (bucket 7: mass >= 31/32, ..., 1: >= 25/32, 0: below), start
 * from the bucket's mass as their precision, and go at this bar: a layer's
 * reads pay only when its whole set is right (a read saved for one expert of
 * two still waits for the other's), and a wrong pick costs a read and an
 * eviction on a disk that is already the bottleneck. */
#define MP_PRED_NET_MIN_PRECISION 0.85f

typedef struct mp_pred_calib {
    float picks, used;
} mp_pred_calib;

typedef struct mp_pred_pick {
    int32_t expert;
    uint8_t bucket;
} mp_pred_pick;

/* What the adaptive lookahead did: prediction events (a layer, d ahead)
 * computed and skipped while standing aside; picks checked against their
 * layer's use and how many of those were used. */
typedef struct mp_predict_stats {
    uint64_t computed, skipped, checked, checked_used;
    uint64_t cpu_ns; /* lookahead (fixed or adaptive): thread CPU time spent predicting */
    /* the governor: decode tokens timed with lookahead off [0] and on [1],
     * their summed wall time, and the pairs of blocks compared */
    uint64_t timed_tokens[2], timed_ns[2], pairs;
} mp_predict_stats;

/* The governor of adaptive lookahead (not with cfg.no_timing). Precision
 * says whether picks get used, not whether reading them early pays: where a
 * read takes longer than the layers between guess and use, a used pick
 * still lands late and saves little, while a wrong one holds the disk and
 * evicts an expert that may be needed (the trained demo model at 2 experts
 * per layer decoded 2-5% slower with lookahead than without it, at 74%
 * precision). So decode tokens run in blocks of MP_GOV_BLOCK with lookahead
 * on or off, each token timed from its first MoE layer to the next token's,
 * the first MP_GOV_SETTLE of a block left out (they still meet the cache the
 * other mode left). The first 2 * MP_GOV_FIRST blocks take turns; then a
 * block runs the mode that was faster (on: by at least MP_GOV_MARGIN, as off
 * is what a run without lookahead does, and by more than MP_GOV_Z standard
 * errors of the paired differences: token times are noisy, and a decision
 * that follows the noise runs on half the time however slow it is), except
 * one block in MP_GOV_EXPLORE (in twice that where on is surely the slower),
 * which runs the other so that a change is seen. Faster is judged on pairs
 * of neighbouring blocks of the two modes only (their relative difference,
 * summed, fading past MP_GOV_PAIRS pairs), because token times drift along
 * a run and a mode seen mostly early would look slow. Off: nothing
 * predicted, no router applied. Prefill chunks always predict; an interval
 * with one in it, or longer than MP_GOV_GAP mean tokens (an idle server),
 * is not a token and is not timed. */
#define MP_GOV_BLOCK 4
#define MP_GOV_SETTLE 1
#define MP_GOV_FIRST 2
#define MP_GOV_EXPLORE 8
#define MP_GOV_MARGIN 0.02
#define MP_GOV_Z 2.0
#define MP_GOV_GAP 8.0
#define MP_GOV_PAIRS 24.0

/* MoE layer `layer` begins for a chunk of T tokens (every one, prefill or
 * decode): the governor's clock. No-op without the governor. */
void mp_predict_begin_layer(mp_predictor *p, int layer, int T);

/* Whether lookahead predicts for decode tokens now (the governor's block;
 * true without the governor). */
bool mp_predict_active(const mp_predictor *p);

/* The governor's clock (CLOCK_MONOTONIC by default), for tests. */
void mp_predict_set_clock(mp_predictor *p, uint64_t (*now_ns)(void *), void *ctx);

/* Layer `layer` now runs a decode token and needs needed[0..n): adaptive
 * lookahead scores the picks made for it, and trained nets with prev_picks
 * take these as the layer's last picks. */
void mp_predict_observe(mp_predictor *p, int layer, const int *needed, int n);

/* MoE layer `layer` begins a chunk whose last token's residual entering the
 * FFN is h[n_embd]: trained nets with prev_h take it as the layer's last
 * residual. No-op without such nets. */
void mp_predict_observe_h(mp_predictor *p, int layer, const float *h);
mp_predict_stats mp_predict_get_stats(const mp_predictor *p); /* zeros for NULL */

/* Whether the predictor also knows the routing of tokens after this chunk,
 * so that a target past the last layer means layer target - n_layer of the
 * next token (the oracle; lookahead with a trained net of ahead = 1). */
bool mp_predict_crosses_tokens(const mp_predictor *p);

#endif
