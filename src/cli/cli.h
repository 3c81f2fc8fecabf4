/* The moepager command: shared option handling for the subcommands. The
 * commands are built on the public API alone (include/moepager/moepager.h);
 * unlike the library, they print. */
#ifndef MP_CLI_H
#define MP_CLI_H

#include "moepager/moepager.h"

#include <stdbool.h>
#include <stdio.h>
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
    bool mmap;          /* --mmap or --mem 0: map the whole file */
    const char *gpu;    /* --gpu KIND: auto (NULL), cuda, sim, cpu */
    uint64_t vram;      /* --vram SIZE (0: CPU only) */
    bool vram_given;
    const char *io;     /* --io auto|uring|pread */
    int io_depth;       /* --io-depth N */
    uint32_t io_timeout_ms; /* --io-timeout SECONDS; 0: the library's default */
    const char *policy; /* --policy NAME */
    const char *fault;  /* --io-fault SPEC (testing) */
    const char *prefetch; /* --prefetch none|lookahead|oracle */
    int lookahead;      /* --lookahead d */
    int prefetch_extra; /* --prefetch-extra m */
    float prefetch_min_prob; /* --prefetch-min-prob P, when has_min_prob */
    bool has_min_prob;
    bool prefetch_no_timing;  /* --prefetch-timing off */
    bool prefetch_timing_on;  /* --prefetch-timing on */
    const char *oracle_trace; /* --oracle-trace FILE */
    const char *trace_out;    /* --trace-out FILE */
    const char *hidden_out;   /* --hidden-out FILE */
    const char *predictor;    /* --predictor FILE */
    bool no_predictor;        /* --no-predictor */
    const char *routing_trace; /* --routing-trace FILE: replay this routing */
    int routing_seq;          /* --routing-seq N; -1 (all, concatenated) unless given */
    bool has_routing_seq;
    bool layer_stats;         /* --layer-stats */
    int n_seq;                /* KV caches (serve --parallel); 0: 1 */
    int n_ckpt;               /* chat/serve --ctx-checkpoints */
} cli_model_opts;

/* chat and serve: --ctx-checkpoints N (o->n_ckpt). Returns 1 when argv[*i]
 * is it (consumed), 0 when not, -1 after printing an error. */
#define CLI_DEFAULT_CHECKPOINTS 2
int cli_take_ckpt_opt(cli_model_opts *o, int argc, char **argv, int *i);
#define CLI_CKPT_HELP                                                                                  \
    "  --ctx-checkpoints N    models with recurrent layers (Qwen3.5/3.6, Qwen3-Next): copies of\n"     \
    "                         the recurrent state kept per conversation, taken at the end of each\n"   \
    "                         prompt, so the next turn resumes there instead of evaluating the\n"      \
    "                         whole conversation again (default 2; 0: none; the plan counts them)\n"

/* Fills engine parameters from the shared options. */
void cli_params(const cli_model_opts *o, mp_params *p);
/* Opens an engine, printing the memory plan, how experts stream and any
 * fallback notes on stderr. n_ctx_override (> 0) replaces the default
 * context when -c is absent. Returns NULL after printing the error. */
mp_engine *cli_open_engine(const cli_model_opts *o, bool need_tokenizer, int n_ctx_override);
/* With routing replay (in->routing_replayed), one line saying where the
 * routing comes from and that it is not the model's own, after prefix. */
void cli_routing_line(const cli_model_opts *o, const mp_engine_info *in, const char *prefix, FILE *f);
/* Prints the expert-cache statistics line (if the engine streams experts). */
void cli_print_cache_stats(mp_engine *e, double seconds, int n_tokens);

/* Expert-cache statistics split at a point of the run (after the prompt,
 * marked with mp_engine_stats_mark(e, MP_PHASE_DECODE)): the prompt and
 * decode lines (stall per token and share of time waiting for I/O; with
 * prefetch, precision, in-time recall and wasted bytes) and, with
 * per_layer, a table of the decode phase per MoE layer. */
void cli_print_phase_stats(mp_engine *e, double t_prompt, int n_prompt, double t_decode, int n_decode,
                           bool per_layer);

/* If argv[*i] is one of -m, -t, -c, -b (or a long form), consumes it and its
 * value, advancing *i, and returns 1; returns 0 if not ours; -1 (after
 * printing an error) for a bad value. */
int cli_take_model_opt(cli_model_opts *o, int argc, char **argv, int *i);
/* The same for the sampling options of run and chat: --temp, --top-k,
 * --top-p, --min-p, --repeat-penalty, --repeat-last-n, -s/--seed. */
int cli_take_sampler_opt(mp_sampler_params *sp, int argc, char **argv, int *i);
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

/* A chat message (borrowed strings). */
typedef struct cli_chat_msg {
    const char *role;    /* "system", "user", "assistant", ... */
    const char *content;
} cli_chat_msg;

/* Renders msgs[0..n) as the model's prompt text with its chat template
 * (tmpl: a --chat-template override, NULL: the model's own), with the
 * assistant's generation prompt when add_gen. *out is malloc'd. Returns 0,
 * or -1 with the reason in msg[cap]. */
int cli_chat_render(const mp_engine *e, const char *tmpl, const cli_chat_msg *msgs, size_t n, bool add_gen,
                    char **out, char *msg, size_t cap);
/* Where the generation prompt begins in ids[0..n) (the tokens of msgs
 * rendered with it): the end of the same messages rendered without it,
 * which a later turn's prompt repeats while the generation prompt itself
 * is usually rendered otherwise there (an answer's thinking dropped). Chat
 * and serve evaluate a prompt in two parts at that point when the engine
 * keeps recurrent-state checkpoints (info.n_checkpoints), so one is taken
 * there. Returns n when there is no such point or no checkpoints. */
int cli_chat_split(const mp_engine *e, const char *tmpl, const cli_chat_msg *msgs, size_t n_msgs,
                   const int32_t *ids, size_t n);
/* Renders one user turn with tmpl (NULL: the model's own template); prints the error and
 * returns -1 when it fails, so chat and serve refuse an unusable template at start. */
int cli_chat_check(const mp_engine *e, const char *tmpl);

int cmd_run(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_chat(int argc, char **argv);

#endif
