/* moepager bench, split by job:
 *   bench_options.c  cmd_bench: the flags, the combinations to sweep, dispatch
 *   bench_sweep.c    runs every combination, each repetition cold
 *   bench_output.c   derived figures and the md / csv / json / jsonl writers
 *   bench_suggest.c  --suggest: a short sweep inside --mem and a recommendation
 *   bench_svg.c      --plot
 *   bench_trace.c    --trace: routing-trace replay
 * Built on the public API (moepager.h) like every command. Not a library
 * API: these print to stdout/stderr like the rest of the CLI. Output
 * fields: docs/BENCH_FORMAT.md. */
#ifndef MP_CLI_BENCH_INTERNAL_H
#define MP_CLI_BENCH_INTERNAL_H

#include "cli.h"

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

/* The prefetch settings bench sweeps (names as mp_params.prefetch). */
typedef enum bench_pf { BENCH_PF_NONE = 0, BENCH_PF_LOOKAHEAD = 1, BENCH_PF_ORACLE = 2 } bench_pf;
const char *bench_pf_name(bench_pf pf);
/* Returns 0 and *out for "none", "lookahead", "oracle"; -1 otherwise. */
int bench_pf_parse(const char *s, bench_pf *out);

/* One combination of the swept settings. */
typedef struct bench_setting {
    bench_budget_kind kind;
    uint64_t value;        /* bytes (CACHE_SIZE, MEM) or experts per layer */
    char label[32];        /* "512M", "4/layer", "mem 2G", "all in RAM" */
    const char *policy;    /* NULL: the default policy (and for RAM rows) */
    int io_depth;          /* 0: default */
    bench_pf pf;
    int lookahead;         /* lookahead and oracle */
    int extra;             /* lookahead only */
    float min_prob;        /* lookahead only */
    uint64_t vram;         /* --vram of this row, when vram_set (else the engine's default) */
    bool vram_set;
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
    mp_expert_stats pp, tg; /* prefill and decode */
    uint32_t n_layers;      /* of tg_layer */
    mp_expert_stats tg_layer[BENCH_MAX_LAYERS]; /* decode, per layer */
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

/* Decode speed of rows[i] against the `--prefetch none` row of the same
 * budget, policy, I/O depth and VRAM budget, repetition by repetition (the
 * repetitions of one round ran side by side, so the machine's drift weighs
 * on both): the mean of tg(i, r) / tg(none, r) - 1, its standard error
 * (NaN below 2 rounds), and the rounds in which row i was faster. All NaN
 * and 0 when there is no such row, rows[i] is it, or there is no decode. */
typedef struct bench_paired {
    double mean, se;
    int won, rounds;
} bench_paired;
void bench_vs_none(const bench_row *rows, int n, int i, int n_gen, bench_paired *out);

/* "lookahead d=2 +1 p>=1/k", "oracle d=2", "none"; "-" for a RAM row. */
void bench_prefetch_label(const bench_setting *s, char *buf, size_t cap);

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

/* What every row of one invocation shares. */
typedef struct bench_run {
    cli_model_opts mo;      /* shared flags (-m, -t, -c, -b, --io) */
    int n_prompt, n_gen, reps;
    int n_ctx;
    const char *oracle_trace; /* recorded or given */
    bool quiet_rss_note, quiet_drop_note;
    bool routing_noted;     /* the routing-replay line was printed */
    char notes[2048];       /* engine notes already printed */
} bench_run;

/* Prompt id i: 1 + splitmix64(i) mod (n_vocab - 1), so never 0 and the same
 * for every run (documented in docs/BENCH_FORMAT.md). */
int32_t bench_prompt_id(int i, uint32_t n_vocab);

/* Runs sets[0..n) into rows[0..n), b->reps cold repetitions each, printing
 * progress on stderr. Rows with the oracle (or every row, when trace_out is
 * set) first record the routing into trace_out, or into a temporary file
 * whose name goes to tmp_trace[tmp_cap] (the caller unlinks it). Returns 0,
 * or 1 after printing the error. */
int bench_sweep(bench_run *b, const bench_setting *sets, int n, bench_row *rows, const char *trace_out,
                char *tmp_trace, size_t tmp_cap);

/* Prints rows[0..n) on stdout as fmt: "md", "csv", "json" or "jsonl". */
void bench_print(const bench_run *b, const bench_row *rows, int n, const char *fmt);

/* The lists given on the command line, before expansion. */
typedef struct bench_lists {
    char size_buf[1024], exp_buf[1024], mem_buf[1024], pol_buf[1024];
    const char *sizes[BENCH_MAX_LIST], *exps[BENCH_MAX_LIST], *mems[BENCH_MAX_LIST], *pols[BENCH_MAX_LIST];
    int n_sizes, n_exps, n_mems, n_pols;
    bench_pf pfs[8];
    int n_pfs;
    int64_t lookaheads[BENCH_MAX_LIST], extras[BENCH_MAX_LIST], depths[BENCH_MAX_LIST];
    int n_lookaheads, n_extras, n_depths;
    float min_probs[BENCH_MAX_LIST];
    int n_min_probs;
    char vram_buf[1024];
    const char *vrams[BENCH_MAX_LIST]; /* --vram LIST: every row once per budget */
    int n_vrams;
} bench_lists;

/* --suggest: a short sweep inside the mem budget and the recommended flags.
 * Returns the exit code. */
int bench_suggest(bench_run *b, const bench_lists *L, uint64_t mem, const char *out_fmt);

#endif
