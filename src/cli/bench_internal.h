/* moepager bench: the pieces shared by the sweep (cmd_bench.c), the plot
 * (bench_svg.c) and the trace replay (bench_trace.c). Not a library API:
 * these print to stdout/stderr like the rest of the CLI. */
#ifndef MP_CLI_BENCH_INTERNAL_H
#define MP_CLI_BENCH_INTERNAL_H

#include "cache/cache.h"
#include "experts/predict.h"

#include <stdbool.h>
#include <stdint.h>

#define BENCH_MAX_REPS 100
#define BENCH_MAX_LIST 64
#define BENCH_MAX_LAYERS 256 /* per-layer decode statistics kept for at most this many layers */

/* How the memory of one row is set. */
typedef enum bench_budget_kind {
    BENCH_RAM = 0,           /* no budget: the whole file mapped ("all in RAM") */
    BENCH_CACHE_SIZE = 1,    /* --cache-size bytes */
    BENCH_CACHE_EXPERTS = 2, /* --cache-experts experts per MoE layer */
    BENCH_MEM = 3,           /* --mem bytes for the whole process */
} bench_budget_kind;

/* One combination of the swept settings. */
typedef struct bench_setting {
    bench_budget_kind kind;
    uint64_t value;        /* bytes (CACHE_SIZE, MEM) or experts per layer */
    char label[32];        /* "512M", "4/layer", "mem 2G", "all in RAM" */
    const char *policy;    /* NULL: the default policy (and for RAM rows) */
    int io_depth;          /* 0: default */
    mp_prefetch_kind pf;
    int lookahead;         /* lookahead and oracle */
    int extra;             /* lookahead only */
    float min_prob;        /* lookahead only */
} bench_setting;

/* What the repetitions of one setting measured. Counters are totals over
 * the repetitions done; the _tps arrays hold one value per repetition. */
typedef struct bench_row {
    bench_setting set;
    int reps;
    double pp_tps[BENCH_MAX_REPS], tg_tps[BENCH_MAX_REPS];
    double pp_seconds, tg_seconds;
    bool streamed;          /* experts went through the cache */
    uint64_t cache_bytes;   /* slots * slot bytes (0 when mapped) */
    uint32_t slots, n_moe_layers;
    uint32_t n_expert_used; /* k, for the resolved gate-probability threshold */
    const char *policy_name;/* in effect ("-" when mapped) */
    mp_cache_stats pp, tg;  /* prefill and decode */
    uint32_t n_layers;      /* of tg_layer */
    mp_cache_stats tg_layer[BENCH_MAX_LAYERS]; /* decode, per layer */
    uint64_t pp_chunks, pp_distinct; /* chunks; sum over chunks of distinct (layer, expert) needed */
    uint64_t io_bytes, io_busy_ns;
    uint64_t peak_rss;      /* max over repetitions */
    bool dropped;           /* the file was dropped from the page cache before every repetition */
    char io_name[32];
} bench_row;

/* Derived figures of a row; NaN where they do not apply (no cache, no
 * prefetch, no decode). */
typedef struct bench_metrics {
    double pp_tps, pp_tps_sd, tg_tps, tg_tps_sd;
    double hit_rate, pp_hit_rate;  /* (hits + late_hits) / demands, 0..1 */
    double precision, recall;      /* decode prefetches */
    double stall_share;            /* decode I/O wait / decode time */
    double tg_mb_per_token, pp_mb; /* per repetition; MB = 1e6 bytes */
    double io_mb_s;                /* bytes / busy time */
    double peak_rss_mib;
} bench_metrics;

void bench_metrics_get(const bench_row *r, int n_gen, bench_metrics *m);

/* Series label of a row: the prefetch setting, plus the policy and the
 * I/O depth when the sweep varies them. */
void bench_series_label(const bench_row *r, bool with_policy, bool with_depth, char *buf, size_t cap);

/* Index of the knee among n points sorted by x (cache bytes, increasing):
 * the smallest i such that every later step gains less than
 * BENCH_KNEE_GAIN per doubling of x. -1 if n == 0. */
#define BENCH_KNEE_GAIN 0.10
int bench_knee(const double *x, const double *y, int n);

/* Writes the plot of rows[0..n) to path (SVG). Returns 0, or -1 after
 * printing an error. */
int bench_svg_write(const char *path, const char *model, const bench_row *rows, int n, int n_gen);

/* moepager bench --trace ...: the trace replay mode (argv as given to
 * cmd_bench). */
int bench_trace_main(int argc, char **argv);

#endif
