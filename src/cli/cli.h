/* The moepager command: shared option handling for the subcommands. */
#ifndef MP_CLI_H
#define MP_CLI_H

#include "common/err.h"

#include <stdbool.h>
#include <stdint.h>

/* Options shared by the commands that run a model. */
typedef struct cli_model_opts {
    const char *model;  /* -m; NULL: the demo model */
    int n_threads;      /* -t; 0: all cores */
    int n_ctx;          /* -c; 0: default */
    int n_batch;        /* -b; 0: default */
    uint64_t mem;       /* --mem SIZE */
    uint64_t cache_bytes; /* --cache-size SIZE */
    int cache_experts;  /* --cache-experts N (per MoE layer) */
    const char *io;     /* --io auto|uring|pread */
    int io_depth;       /* --io-depth N */
    int io_timeout_s;   /* --io-timeout SECONDS; 0: default (30) */
    const char *policy; /* --policy NAME */
    const char *fault;  /* --io-fault SPEC (testing) */
    const char *prefetch; /* --prefetch none|lookahead|oracle */
    int lookahead;      /* --lookahead d */
    int prefetch_extra; /* --prefetch-extra m */
    float prefetch_min_prob; /* --prefetch-min-prob P, when has_min_prob */
    bool has_min_prob;
    const char *oracle_trace; /* --oracle-trace FILE */
    const char *trace_out;    /* --trace-out FILE */
    bool layer_stats;         /* --layer-stats */
} cli_model_opts;

struct mp_session;
struct mp_session_params;
/* Fills session parameters from the shared options. */
void cli_session_params(const cli_model_opts *o, struct mp_session_params *sp);
/* Opens a session, printing the memory plan and any fallback notes on
 * stderr. Returns NULL after printing the error. */
struct mp_session *cli_open_session(const cli_model_opts *o, bool need_tokenizer, int n_ctx_override);
/* Prints the expert-cache statistics line (if the session streams experts). */
void cli_print_cache_stats(struct mp_session *s, double seconds, int n_tokens);

/* Expert-cache statistics split at a point of the run (after the prompt):
 * cli_stats_mark records the counters, cli_print_phase_stats prints the
 * prompt and decode lines (stall per token and share of time waiting for
 * I/O; with prefetch, precision, in-time recall and wasted bytes) and,
 * with per_layer, a table of the decode phase per MoE layer. */
typedef struct cli_stats_mark {
    void *layers; /* mp_cache_stats[n_layer] at the mark; NULL without a cache */
} cli_stats_mark;
void cli_stats_mark_take(struct mp_session *s, cli_stats_mark *mark);
void cli_print_phase_stats(struct mp_session *s, const cli_stats_mark *mark, double t_prompt, int n_prompt,
                           double t_decode, int n_decode, bool per_layer);
void cli_stats_mark_free(cli_stats_mark *mark);

/* If argv[*i] is one of -m, -t, -c, -b (or a long form), consumes it and its
 * value, advancing *i, and returns 1; returns 0 if not ours; -1 (after
 * printing an error) for a bad value. */
int cli_take_model_opt(cli_model_opts *o, int argc, char **argv, int *i);
/* Resolves o->model (the demo model when -m is absent); prints an error and
 * returns -1 when there is none. */
int cli_resolve_model(cli_model_opts *o);
/* Help text for the shared options. */
extern const char *const cli_model_opts_help;

/* Returns argv[*i + 1] and advances *i, or prints "error: OPT needs a value"
 * and returns NULL. */
const char *cli_value(int argc, char **argv, int *i);
bool cli_is_help(const char *a);

int cli_parse_int(const char *opt, const char *s, int64_t lo, int64_t hi, int *out);
int cli_parse_float(const char *opt, const char *s, float *out);

/* Prints "error: <msg>" for a failed status. Returns 1 (the exit code). */
int cli_fail(const mp_err *err);
/* Prints "error: <printf message>". Returns 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads a whole file (or stdin for "-") into a NUL-terminated buffer. */
char *cli_read_file(const char *path, size_t *len);

int cmd_run(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
