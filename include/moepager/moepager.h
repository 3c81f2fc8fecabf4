/* moepager: run Mixture-of-Experts GGUF models that are larger than RAM.
 *
 * The one public header of the library (with status.h, included here, and
 * pack_format.h, the on-disk pack layout). Everything else under src/ is
 * private: the `moepager` command itself is built from this header alone.
 *
 * Conventions (lz4's and liburing's):
 *  - Handles are opaque. mp_x_open / mp_x_create make one, mp_x_free
 *    releases it and accepts NULL.
 *  - A function that can fail returns an int: MP_OK (0) or a negative
 *    mp_status (status.h), and fills the caller's `mp_err *err` (may be
 *    NULL) with one line that names the file, tensor, layer, expert and
 *    byte offset involved. On failure the outputs are left as documented
 *    (usually untouched) and nothing leaks.
 *  - Buffers are the caller's: dst + capacity, and the size needed can be
 *    asked for first (a NULL dst with capacity 0). Strings returned as
 *    `const char *` are owned by the handle or are static, as each
 *    function says.
 *  - The library never prints and never exits. Fallback announcements
 *    ("io_uring unavailable, using pread") are kept as notes
 *    (mp_engine_notes) and also sent to the log callback of mp_params.
 *  - Programmer errors (a NULL handle where one is required) are asserts.
 *  - Threads: one engine is used by one thread at a time; different
 *    engines are independent. The engine runs its own worker threads.
 *
 * A typical generation loop:
 *     mp_params p = mp_params_default();
 *     p.mem = 4ull << 30;                        // stream experts inside 4 GiB
 *     mp_engine *e; mp_err err = {0};
 *     if (mp_engine_open(&e, "model.gguf", &p, &err)) { report(err.msg); ... }
 *     size_t n; mp_engine_tokenize(e, text, len, MP_TOKENIZE_ADD_SPECIAL, ids, cap, &n, &err);
 *     mp_engine_eval(e, ids, n, logits, n_vocab, false, &err);   // the prompt
 *     for (;;) {
 *         int32_t t = mp_sampler_sample(smp, logits); mp_sampler_accept(smp, t);
 *         if (mp_engine_is_eog(e, t)) break;
 *         ... mp_engine_token_to_piece(e, t, false, buf, sizeof buf, &len, NULL) ...
 *         mp_engine_eval(e, &t, 1, logits, n_vocab, false, &err);
 *     }
 *     mp_engine_free(e);
 */
#ifndef MOEPAGER_H
#define MOEPAGER_H

#include "moepager/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version --------------------------------------------------------------- */

/* The library's version: the CMake project version, plus `git describe
 * --always --dirty` of the source when it was built from a git checkout
 * ("0.1.0 (f853a14-dirty)"), else just "0.1.0". Static string. */
const char *mp_version(void);

/* ---- logging --------------------------------------------------------------- */

typedef enum mp_log_level {
    MP_LOG_ERROR = 0,
    MP_LOG_WARN = 1,  /* a fallback the user should know about (the notes) */
    MP_LOG_INFO = 2,
    MP_LOG_DEBUG = 3,
} mp_log_level;

/* Receives one line (no trailing newline), owned by the library and valid
 * only during the call. Called from the thread that called into the
 * library. */
typedef void (*mp_log_fn)(void *ud, mp_log_level level, const char *msg);

/* ---- parameters ------------------------------------------------------------ */

/* How to open a model. Always start from mp_params_default() and set what
 * you need: zero / NULL fields mean "the default", so a new field added in
 * a later version keeps old callers' behaviour. Strings are borrowed for the
 * duration of mp_engine_open only (paths included), except as noted. */
typedef struct mp_params {
    /* Context. */
    int32_t n_ctx;       /* KV cache length in tokens; 0: min(trained length, 4096) */
    int32_t n_batch;     /* tokens per prefill chunk; 0: 512 */
    int32_t n_threads;   /* 0: all CPUs this process may run on */
    int32_t n_seq;       /* KV caches (sequences, a server's slots), each n_ctx long,
                          * sharing the model, the expert cache and the scratch;
                          * the memory plan counts them all. 0: 1; at most MP_MAX_SEQ */
    int32_t n_checkpoints; /* models with recurrent layers (qwen3next, qwen35moe):
                          * copies of a sequence's recurrent state kept per
                          * sequence, taken at the end of each eval of more
                          * than one token, so a later prompt sharing that
                          * prefix resumes there (mp_engine_resume_point);
                          * counted by the memory plan. 0: none; at most
                          * MP_MAX_CHECKPOINTS */
    bool need_tokenizer; /* fail when the file has no usable tokenizer (else
                          * tokenizing fails later with MP_E_UNSUPPORTED) */
    bool vocab_only;     /* load the tokenizer only (works on vocab-only GGUF
                          * files); only the tokenizer calls work then */

    /* Memory. Any budget streams routed experts from disk through the
     * expert cache; none maps the file. */
    uint64_t mem;           /* budget for the whole process, bytes; 0: none */
    uint64_t cache_bytes;   /* the expert cache alone, bytes; 0: none */
    uint32_t cache_experts; /* the expert cache in experts per MoE layer; 0: none */
    bool mmap;              /* map the whole file, never stream (no budget) */

    /* The VRAM tier: resident weights, then an expert cache, in device
     * memory; experts run where the cost model says (mp_tier_stats). */
    const char *gpu;        /* "auto" (NULL): a CUDA device when one is present;
                             * "cuda"; "sim": the CPU posing as a device with
                             * vram bytes of memory (tests: same output as the
                             * CPU, same placement logic); "cpu": none */
    uint64_t vram;          /* device budget, bytes, when vram_given (0: CPU only) */
    bool vram_given;        /* false: most of the free VRAM (sim: required) */

    /* Expert reads. */
    const char *io;         /* "auto" (NULL), "uring", "pread" */
    uint32_t io_depth;      /* reads in flight, 1..MP_MAX_IO_DEPTH; 0: 16 */
    uint32_t io_timeout_ms; /* a read that does not complete in this time ends
                             * the run with an error; 0: the default (30 s) */
    const char *io_fault;   /* fault injection for tests (see src/io/io.h); NULL: none */

    /* The expert cache. */
    const char *policy;     /* replacement policy (mp_policy_name_at); NULL: default */
    bool no_preload;        /* don't fill a cache that holds every expert at open */
    bool no_hugepages;      /* don't ask for transparent huge pages for the cache */

    /* Prefetch (only when experts stream through the cache). */
    const char *prefetch;   /* mp_prefetch_name_at: "none", "lookahead", "oracle";
                             * NULL: "oracle" when oracle_trace is set, else "lookahead" */
    int32_t lookahead;      /* layers ahead (lookahead and oracle); 0: 2 */
    int32_t prefetch_extra; /* lookahead: also the next m experts by score */
    float prefetch_min_prob;/* lookahead: negative (the default): adaptive, learning
                             * online which picks get used; >= 0: a fixed rule,
                             * prefetch a pick only if its gate probability is at
                             * least this (0: every pick) */
    bool prefetch_no_timing;/* adaptive lookahead: predict for every decode token
                             * instead of timing decode tokens with and without
                             * it and keeping the faster (the default) */
    bool prefetch_timing_on;/* time them even with a predictor (whose nets are
                             * untimed by default: their picks go only where the
                             * net is sure of the whole layer) */
    const char *predictor;    /* lookahead: a trained routing predictor (GGUF written by
                               * tools/train_predictor.py for this model) whose nets
                               * replace the routers where they map a layer, and reach
                               * the next token's layers; NULL: MODEL.predictor.gguf
                               * beside the model (MODEL: its path less .gguf) when
                               * there is one and prefetch is lookahead without a
                               * routing trace, else the routers only */
    bool no_predictor;        /* never look for a predictor beside the model */
    const char *oracle_trace; /* routing recorded by trace_out of an identical run;
                               * borrowed until mp_engine_free */

    /* Routing replay. The router's choices and weights come from a recorded
     * trace (docs/TRACE_FORMAT.md, "Replay") instead of the model's router,
     * matched by position and MoE layer (trace layer i = the model's i-th MoE
     * layer); weights are the trace's gating_probs (1/k for a record without
     * them). Positions: the trace's sequences concatenated in order of first
     * appearance, or one of them (routing_one_seq). The oracle predicts from
     * the same table (oracle_trace must then be NULL). Opening fails with
     * MP_E_INVAL naming the file when the trace's layers, experts or k do
     * not fit the model; an eval at a position the trace lacks fails with
     * MP_E_RANGE naming it. */
    const char *routing_trace; /* NULL: the model's own routing */
    bool routing_one_seq;      /* replay only sequence routing_seq (position p =
                                * its token_idx p); false: all, concatenated */
    uint32_t routing_seq;      /* index in order of first appearance, from 0 */

    /* Output. */
    const char *trace_out;  /* write the routing of every token and MoE layer here
                             * (JSON lines, docs/TRACE_FORMAT.md); NULL: none */
    const char *hidden_out; /* write, for every token and MoE layer, the residual
                             * entering the layer's FFN and its picks here (binary
                             * hidden-state records, docs/TRACE_FORMAT.md; what
                             * tools/train_predictor.py trains on); NULL: none */
    mp_log_fn log;          /* notes and errors as they happen; NULL: none */
    void *log_ud;
} mp_params;

/* The defaults every field above documents (prefetch_min_prob -1 = adaptive). */
mp_params mp_params_default(void);

#define MP_MAX_IO_DEPTH 1024
#define MP_MAX_SEQ 256
#define MP_MAX_CHECKPOINTS 64
#define MP_DEFAULT_IO_DEPTH 16

/* Names the params accept, for help texts and validation. Each returns the
 * i-th name (static string), or NULL when i is past the end; index 0 is
 * the default. */
const char *mp_policy_name_at(size_t i);
const char *mp_policy_description_at(size_t i); /* one line, or NULL past the end */
const char *mp_prefetch_name_at(size_t i);      /* "lookahead", "none", "oracle" */
const char *mp_io_name_at(size_t i);            /* "auto", "uring", "pread" */
/* True when name is one of the lists' entries ("io_uring" is accepted for
 * "uring"). */
bool mp_policy_known(const char *name);
bool mp_prefetch_known(const char *name);
bool mp_io_known(const char *name);

/* ---- the engine: a model ready to evaluate ---------------------------------- */

/* Model + memory plan + expert provider (mapped file, or the expert cache
 * streaming from disk) + KV cache + tokenizer + prefetcher. */
typedef struct mp_engine mp_engine;

/* Opens the GGUF file or .moepack at path with params p (NULL: defaults):
 * validates every tensor, makes the memory plan, sets up the expert cache
 * and allocates every buffer evaluation needs.
 * Returns MP_OK and *out (free it with mp_engine_free); on failure *out is
 * NULL and err says why: MP_E_IO / MP_E_NOTFOUND (the file), MP_E_CORRUPT
 * (names the key or tensor), MP_E_UNSUPPORTED (architecture, tensor type,
 * tokenizer), MP_E_BUDGET (the plan does not fit: err says the minimum and
 * its parts), MP_E_INVAL (a bad parameter, named like its CLI flag:
 * "--policy: unknown replacement policy 'x'"), MP_E_NOMEM. */
int mp_engine_open(mp_engine **out, const char *path, const mp_params *p, mp_err *err);

/* Waits for reads in flight and frees everything (NULL-safe). Closes the
 * trace_out file. */
void mp_engine_free(mp_engine *e);

/* Fallback announcements made while opening ("\n"-separated lines, no
 * trailing newline; "" when none). Owned by e. */
const char *mp_engine_notes(const mp_engine *e);

/* The memory plan: what each part takes, in bytes. */
typedef struct mp_plan_info {
    bool streamed;            /* experts go through the cache (else mapped) */
    uint64_t resident;        /* weights every token uses */
    uint64_t kv, scratch, overhead;
    uint64_t slot_bytes;      /* one cache slot */
    uint32_t slots;           /* cache slots */
    uint32_t min_slots;       /* experts pinned at once (top-k of a layer) */
    uint32_t n_moe_layers;
    uint64_t n_experts_total; /* routed experts in the model */
    uint64_t cache_bytes;     /* slots * slot_bytes */
    uint64_t expert_bytes;    /* all routed-expert bytes in the file */
    uint64_t total;           /* resident + kv + scratch + overhead + cache (file size when mapped) */
    uint64_t budget;          /* mem, 0 if none */
    bool budget_from_machine; /* no budget was given: budget is what the machine allows
                               * (MemAvailable, the cgroup's limit) less a margin */
} mp_plan_info;

/* Writes the plan as one line into buf[cap] (always NUL-terminated when
 * cap > 0): "memory plan: resident 1.2 GiB + KV 0.3 GiB + ... = 2.0 GiB
 * (budget 2 GiB)". */
void mp_plan_text(const mp_plan_info *plan, char *buf, size_t cap);

/* What an open engine is and how it runs. */
typedef struct mp_engine_info {
    char arch[32];            /* general.architecture */
    char name[128];           /* general.name, "" if none */
    bool vocab_only;          /* opened with params.vocab_only */
    bool has_tokenizer;
    int32_t n_vocab;          /* logits per position */
    int32_t n_ctx, n_batch, n_threads; /* in effect */
    int32_t n_seq;            /* KV caches (params.n_seq, at least 1) */
    int32_t n_checkpoints;    /* recurrent-state checkpoints per sequence in
                               * effect (params.n_checkpoints; 0 for a model
                               * without recurrent layers) */
    uint32_t n_layer, n_expert, n_expert_used;
    mp_plan_info plan;
    /* When experts stream (plan.streamed): */
    char io[32];              /* backend in use: "io_uring", "pread", "fault(io_uring)" */
    bool io_direct;           /* O_DIRECT (else buffered) */
    uint32_t io_depth;
    char policy[32];          /* replacement policy in effect */
    uint32_t slots;
    uint64_t slot_bytes;
    char prefetch[16];        /* "none", "lookahead", "oracle" */
    int32_t lookahead, prefetch_extra;
    float prefetch_min_prob;  /* the fixed rule's threshold; when auto (adaptive), 1/k,
                               * the threshold its cold start resembles */
    bool prefetch_min_prob_auto; /* adaptive lookahead */
    bool prefetch_timed;         /* ... timed against none (prefetch_no_timing false) */
    bool preloaded;           /* the cache holds every expert and was filled at open */
    uint64_t preload_bytes;   /* what that read */
    /* Routing replayed from params.routing_trace (else all 0): not the
     * model's own. */
    bool routing_replayed;
    int64_t routing_positions;   /* the trace routes positions 0 .. this - 1 */
    uint32_t routing_sequences;  /* sequences those positions come from */
    uint64_t routing_uniform;    /* records without gating_probs (weights 1/k) */
} mp_engine_info;

/* Fills *out (every field; those that do not apply are 0 / ""). Cheap: no
 * system call. */
void mp_engine_get_info(const mp_engine *e, mp_engine_info *out);

/* ---- tokens ----------------------------------------------------------------- */

#define MP_TOKENIZE_ADD_SPECIAL 1u   /* add BOS (and EOS) as the vocabulary says */
#define MP_TOKENIZE_PARSE_SPECIAL 2u /* recognise special-token texts such as <s> */

/* Tokenizes text[0..len) (UTF-8; not NUL-terminated necessarily) into
 * ids[0..cap). *n_ids receives the number of ids the text needs.
 * Returns MP_OK when they all fit; MP_E_RANGE when cap is too small (ids
 * holds the first cap; call again with *n_ids); MP_E_UNSUPPORTED when the
 * model has no tokenizer; MP_E_INVAL on a tokenizer failure. ids may be
 * NULL when cap is 0. */
int mp_engine_tokenize(const mp_engine *e, const char *text, size_t len, unsigned flags, int32_t *ids,
                       size_t cap, size_t *n_ids, mp_err *err);

/* The bytes token id stands for (special: render control tokens' text too),
 * into buf[0..cap) (no NUL). *len receives the full length. Returns MP_OK;
 * MP_E_RANGE when cap is too small (buf holds the first cap bytes);
 * MP_E_RANGE too for an id outside [0, n_vocab); MP_E_UNSUPPORTED without
 * a tokenizer. */
int mp_engine_token_to_piece(const mp_engine *e, int32_t id, bool special, char *buf, size_t cap, size_t *len,
                             mp_err *err);

/* The pieces of ids[0..n) concatenated, same contract as above (a NUL is
 * written after them when it fits, not counted in *len). */
int mp_engine_detokenize(const mp_engine *e, const int32_t *ids, size_t n, bool special, char *buf, size_t cap,
                         size_t *len, mp_err *err);

/* True for an end-of-generation token (EOS, EOT, ...). False without a
 * tokenizer or for an id out of range. */
bool mp_engine_is_eog(const mp_engine *e, int32_t id);
int32_t mp_engine_bos(const mp_engine *e); /* -1 if none */
int32_t mp_engine_eos(const mp_engine *e); /* -1 if none */

/* ---- chat templates ----------------------------------------------------------- */

/* One chat message (borrowed, UTF-8, NUL-terminated strings). */
typedef struct mp_chat_msg {
    const char *role;    /* "system", "user", "assistant", ... */
    const char *content;
} mp_chat_msg;

/* Renders the conversation msgs[0..n_msgs) into the prompt text the model
 * expects, with the model's tokenizer.chat_template (a Jinja program,
 * interpreted as llama.cpp does), or with tmpl_override when it is not
 * NULL: a built-in name (mp_chat_template_name_at: "chatml", ...) or the
 * path of a file holding a Jinja template. A file without a template gets
 * ChatML, as in llama.cpp. add_generation_prompt appends the assistant's
 * turn opening. bos_token / eos_token are the vocabulary's texts.
 * e may be NULL when tmpl_override is given (bos_token and eos_token are
 * then ""). As llama.cpp, a BOS the template writes at the start is dropped
 * when the vocabulary adds one while tokenizing (and a final EOS likewise),
 * so tokenize the prompt with MP_TOKENIZE_ADD_SPECIAL |
 * MP_TOKENIZE_PARSE_SPECIAL. Rendering follows llama.cpp's chat layer too:
 * a system message the template ignores is merged into the first user
 * message, "developer" becomes "system" (except for gpt-oss), and the
 * globals are messages, add_generation_prompt, bos_token, eos_token,
 * enable_thinking (true), datetime and date_string (today). Each call parses
 * the template again (cheap next to tokenizing and evaluating the prompt). It only
 * reads the engine (its template and vocabulary), so it may run on any
 * thread, also while another thread evaluates with the same engine.
 * On MP_OK *out is a malloc'd NUL-terminated string the caller frees
 * (free()); on failure *out is NULL and err says why, naming the template
 * and line ("model.gguf:tokenizer.chat_template:12: ..."): MP_E_NOTFOUND
 * (tmpl_override is neither a file nor a built-in), MP_E_IO, MP_E_CORRUPT
 * (a syntax error), MP_E_UNSUPPORTED (a construct the interpreter lacks),
 * MP_E_INVAL (the template raised an exception, e.g. "roles must
 * alternate", or a message without role or content), MP_E_RANGE (the
 * template runs away: over 256 MiB or 50M steps), MP_E_NOMEM. Never a
 * silently wrong prompt. */
int mp_chat_apply_template(const mp_engine *e, const char *tmpl_override, const mp_chat_msg *msgs, size_t n_msgs,
                           bool add_generation_prompt, char **out, mp_err *err);

/* The built-in template names (static), index 0 the default ("chatml");
 * NULL past the end. */
const char *mp_chat_template_name_at(size_t i);

/* The model's own tokenizer.chat_template (owned by e), or NULL if the
 * file has none. */
const char *mp_engine_chat_template(const mp_engine *e);

/* ---- evaluation -------------------------------------------------------------- */

/* Evaluates ids[0..n) at positions n_past.. (a prompt chunk, or one
 * generated token) and advances n_past by n. Chunks longer than n_batch
 * are split. logits (may be NULL) receives n_vocab floats for the last
 * position, or n * n_vocab for every position when all is true;
 * logits_cap is its capacity in floats. The logits are exactly those of
 * the model with every expert in memory, whatever the budget.
 * Returns MP_OK; MP_E_RANGE when the context would overflow (n_past + n >
 * n_ctx) or logits_cap is too small; MP_E_INVAL for n < 1 or an id outside
 * [0, n_vocab) (err names it); MP_E_IO / MP_E_CHECKSUM when an expert
 * cannot be read (err names the file, layer, expert and offset). On
 * failure n_past is unchanged and the engine stays usable. */
int mp_engine_eval(mp_engine *e, const int32_t *ids, size_t n, float *logits, size_t logits_cap, bool all,
                   mp_err *err);

/* Tokens in the KV cache, and its capacity (0 for a vocab-only engine). */
int32_t mp_engine_n_past(const mp_engine *e);
int32_t mp_engine_n_ctx(const mp_engine *e);

/* Sequences (params.n_seq): each has its own KV cache and n_past; eval,
 * truncate and n_past act on the current one, 0 after open. A server runs
 * its requests' steps one after the other, switching sequences between
 * them (the switch is free: no copy). Returns MP_OK, or MP_E_RANGE for
 * seq outside [0, n_seq). */
int mp_engine_set_seq(mp_engine *e, int32_t seq, mp_err *err);
int32_t mp_engine_seq(const mp_engine *e);
int32_t mp_engine_n_seq(const mp_engine *e); /* 0 for a vocab-only engine */

/* Forgets positions >= n_past (0 clears the KV cache): the next eval
 * continues from there, giving the logits it would have given then.
 * Returns MP_OK, or MP_E_RANGE when n_past is negative or beyond the
 * current n_past, or (nothing changed) when a model with sliding-window
 * layers has moved their window past what position n_past needs (its
 * n_swa - 1 keys before it): truncate to 0 then, and evaluate again.
 * MP_E_UNSUPPORTED (nothing changed) for 0 < n_past < the current one on a
 * model with recurrent layers (qwen3next, qwen35moe), whose state holds no
 * earlier positions, unless a checkpoint (params.n_checkpoints) was taken at
 * n_past. A failed eval on such a model leaves n_past 0. */
int mp_engine_truncate(mp_engine *e, int32_t n_past, mp_err *err);

/* The longest prefix of at most n_past tokens that mp_engine_truncate keeps
 * now: n_past itself for attention-only models (unless a sliding window has
 * moved past it: then 0), the nearest checkpoint at or below n_past on a
 * model with recurrent layers (0 without one), the current n_past when
 * n_past is beyond it. A caller that wants the first n_past tokens kept
 * truncates to this and evaluates the tokens after it again. */
int32_t mp_engine_resume_point(const mp_engine *e, int32_t n_past);

/* Observes the routing: called once per (token, MoE layer) during eval with
 * the chosen experts (best first) and their weights. NULL removes it.
 * Returns MP_OK, or MP_E_INVAL when the engine writes params.trace_out
 * (which uses this hook). */
typedef void (*mp_route_cb)(void *ud, int layer, int pos, const int32_t *experts, const float *weights, int k);
int mp_engine_set_route_cb(mp_engine *e, mp_route_cb fn, void *ud, mp_err *err);

/* ---- sampling ---------------------------------------------------------------- */

/* Samplers as llama.cpp's default chain: repetition penalty, top-k, top-p,
 * min-p, temperature, then a seeded draw; temp <= 0 is greedy (argmax,
 * lowest id on ties). The same seed, parameters and logits give the same
 * tokens on every run and machine. */
typedef struct mp_sampler_params {
    float temp;           /* <= 0: greedy (argmax) */
    int32_t top_k;        /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off */
    int32_t repeat_last_n;/* tokens of history the penalty looks at; <= 0: off */
    uint64_t seed;
} mp_sampler_params;

typedef struct mp_sampler mp_sampler;

/* llama.cpp's CLI defaults: temp 0.8, top_k 40, top_p 0.95, min_p 0.05,
 * repeat_penalty 1.0, repeat_last_n 64, seed 0. */
mp_sampler_params mp_sampler_default_params(void);

/* Makes a sampler for n_vocab (>= 1) tokens (mp_engine_info.n_vocab); copies
 * *p. Allocates everything it will need (about 12 * n_vocab bytes).
 * Returns MP_OK and *out, MP_E_INVAL (n_vocab < 1) or MP_E_NOMEM. */
int mp_sampler_open(mp_sampler **out, const mp_sampler_params *p, int32_t n_vocab, mp_err *err);
void mp_sampler_free(mp_sampler *s); /* NULL-safe */
/* Picks a token from logits[n_vocab] (not modified); never allocates.
 * Returns an id in [0, n_vocab). Does not record it: call accept. */
int32_t mp_sampler_sample(mp_sampler *s, const float *logits);
/* Records a token (prompt or sampled) for the repetition penalty; ids out
 * of range are ignored. */
void mp_sampler_accept(mp_sampler *s, int32_t token);
/* Back to the state right after open (history and random stream). */
void mp_sampler_reset(mp_sampler *s);

/* ---- statistics -------------------------------------------------------------- */

/* Counters of demands for routed experts. A demand is a hit (the expert
 * was in the tier), a late hit (a prefetch was still reading it) or a miss
 * (a read started). */
typedef struct mp_expert_stats {
    uint64_t hits, late_hits, misses;
    uint64_t evictions;        /* experts dropped for room */
    uint64_t loads;            /* loads started (demand + prefetch) */
    uint64_t reads;            /* read requests issued (1..3 per load) */
    uint64_t bytes_read;       /* bytes read, rounded out to the I/O alignment */
    uint64_t wait_ns;          /* time evaluation blocked waiting for reads */
    uint64_t prefetches;       /* prefetch loads started */
    uint64_t prefetch_used;    /* prefetched experts later demanded */
    uint64_t prefetch_dropped; /* prefetches refused: no room */
    uint64_t prefetch_wasted;  /* prefetched experts evicted unused */
    uint64_t wasted_bytes;     /* bytes those read */
    uint64_t errors;           /* failed loads */
} mp_expert_stats;

/* a += b, field by field. */
void mp_expert_stats_add(mp_expert_stats *a, const mp_expert_stats *b);
/* Hit rate (hits + late hits) / demands; prefetch precision = used /
 * prefetched; in-time recall = (used - late hits) / demands. NaN where
 * undefined (no demand, no prefetch). Any output may be NULL. */
void mp_expert_stats_rates(const mp_expert_stats *s, double *hit_rate, double *precision, double *recall);

/* Where experts sit. One tier today (RAM); a GPU build adds VRAM above it. */
typedef enum mp_tier_kind { MP_TIER_RAM = 0, MP_TIER_VRAM = 1 } mp_tier_kind;
#define MP_MAX_TIERS 4

typedef struct mp_tier_stats {
    mp_tier_kind kind;
    uint32_t slots;
    uint64_t slot_bytes;
    mp_expert_stats experts; /* demands that reached this tier (VRAM: hits, misses,
                              * evictions; loads = promotions, bytes_read = bytes
                              * copied RAM -> VRAM, wait_ns = copy stall) */
    /* VRAM only (0 for RAM): */
    uint64_t run_gpu, run_cpu; /* expert runs on the GPU / sent to the CPU */
    uint64_t resident_bytes;   /* weights + KV + scratch placed before the experts */
    uint64_t budget;           /* --vram */
} mp_tier_stats;
/* (The VRAM tier's counters run from open: mp_engine_stats_reset and the
 * phases do not split them yet.) */

/* The reads behind the cache. */
typedef struct mp_io_stats {
    uint64_t reqs, reads, bytes, short_reads, retries, zero_filled, errors;
    uint64_t busy_ns; /* wall time with at least one read in flight (an upper
                       * bound: bytes / busy_ns is the device's throughput
                       * while it had work, at least) */
} mp_io_stats;

/* Phases of a run: counters go to the current phase, chosen by
 * mp_engine_stats_mark. Open and reset start in MP_PHASE_PREFILL. */
typedef enum mp_phase { MP_PHASE_PREFILL = 0, MP_PHASE_DECODE = 1 } mp_phase;
#define MP_PHASE_COUNT 2
#define MP_PHASE_ALL (-1)

typedef struct mp_stats {
    bool streamed;                          /* false: mapped, every counter 0 */
    mp_expert_stats total;                  /* since open or the last reset */
    mp_expert_stats phase[MP_PHASE_COUNT];  /* the same, split by phase */
    uint32_t n_tiers;
    mp_tier_stats tier[MP_MAX_TIERS];       /* tier[0]: RAM */
    mp_io_stats io;
    uint32_t n_layers;                      /* per-layer entries (the model's layers) */
    uint64_t trace_errors;                  /* routing records trace_out failed to write */
    /* Adaptive lookahead (0 otherwise): prediction events (a layer, d ahead)
     * for which the router was applied, and those skipped while it stood
     * aside (its picks there were not getting used); picks checked against
     * what their layer then used, and how many of those were used. */
    uint64_t lookahead_computed, lookahead_skipped, lookahead_checked, lookahead_used;
    uint64_t lookahead_cpu_ns; /* CPU time the forward thread spent on lookahead's routers */
    /* Its timing (prefetch_no_timing false): decode tokens timed with
     * lookahead off [0] and on [1], their summed wall time in ns, and the
     * pairs of neighbouring blocks (one of each) compared */
    uint64_t lookahead_timed_tokens[2], lookahead_timed_ns[2], lookahead_pairs;
} mp_stats;

/* A snapshot of the counters since open or the last reset (cheap: no
 * system call, no allocation). */
void mp_engine_stats(mp_engine *e, mp_stats *out);

/* Per-layer counters of one phase (or MP_PHASE_ALL) into out[0..cap); dense
 * layers read as zeros. Returns the number of layers (which may exceed
 * cap: only cap are written). */
uint32_t mp_engine_layer_stats(mp_engine *e, int phase, mp_expert_stats *out, uint32_t cap);

/* From now on counters go to phase (e.g. DECODE after the prompt). */
void mp_engine_stats_mark(mp_engine *e, mp_phase phase);

/* Zeroes every counter (the I/O's too) and returns to MP_PHASE_PREFILL. */
void mp_engine_stats_reset(mp_engine *e);

/* ---- model facts without an engine -------------------------------------------- */

#define MP_MAX_TYPES 48

typedef struct mp_model_info {
    char arch[32];
    char name[128];            /* general.name, "" if none */
    uint32_t gguf_version;
    uint64_t file_bytes;
    bool is_pack;              /* a .moepack */
    bool moe;                  /* has routed experts */
    uint32_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_rot;
    bool rope_neox;            /* split-half rotation (else adjacent pairs) */
    float rope_base, rms_eps;
    uint32_t n_expert, n_expert_used, n_ff_exp, n_ff;
    bool norm_topk;            /* the k routing weights are renormalised */
    /* deepseek2: routing and MLA attention (all 0 / false for other models) */
    bool sigmoid_gating;       /* sigmoid gate (else softmax) */
    bool selection_bias;       /* exp_probs_b: a bias that only selects */
    uint32_t n_group, n_group_used; /* group-limited routing when n_group > 1 */
    uint32_t n_shared, n_dense_lead; /* shared experts (always run), leading dense layers */
    bool mla;                  /* multi-head latent attention */
    bool mla_latent_kv;        /* the KV cache holds kv_lora + n_rot values per token and layer (one head) */
    uint32_t kv_lora, q_lora;  /* q_lora 0: no q LoRA */
    uint32_t n_layer_nextn;    /* NextN/MTP blocks after the n_layer run (skipped, never loaded) */
    uint32_t n_vocab, n_ctx_train;
    bool tied_output;
    /* Weight types by name: n_types entries with their tensor count and bytes. */
    uint32_t n_types;
    struct { char name[16]; uint64_t n_tensors, bytes; } types[MP_MAX_TYPES];
    uint64_t total_bytes, expert_bytes, resident_bytes, one_expert_bytes;
    uint64_t total_params, active_params; /* active: per token */
    /* For the params' n_ctx / n_batch / n_threads (resolved as mp_engine_open
     * and the planner would): */
    int32_t n_ctx, n_batch;
    uint64_t kv_bytes, scratch_bytes;
    /* Sliding-window attention (gpt-oss; 0 otherwise): n_swa_layers layers
     * see the last n_swa positions and keep swa_cells KV cells each (their
     * window and one batch), not n_ctx; kv_bytes counts that. */
    uint32_t n_swa, n_swa_layers;
    int32_t swa_cells;
    /* Part of kv_bytes: the recurrent state of Gated DeltaNet layers
     * (qwen3next, qwen35moe; conv + delta-rule state, f32, one sequence),
     * whatever n_ctx; 0 for other models. n_layer_recurrent of n_layer
     * layers keep it instead of a KV cache. */
    uint64_t state_bytes;
    uint32_t n_layer_recurrent;
} mp_model_info;

/* Reads the model's facts from path (GGUF or pack) without making an
 * engine. p (NULL: defaults) gives n_ctx, n_batch and n_threads for the KV
 * and scratch sizes; nothing else is used. Returns MP_OK or the open's
 * error (as mp_engine_open). */
int mp_model_inspect(const char *path, const mp_params *p, mp_model_info *out, mp_err *err);

/* The memory plan mp_engine_open would make for path with p, without
 * opening an engine. Returns MP_OK, or MP_E_BUDGET (err says the minimum)
 * and the open's other errors. */
int mp_model_plan(const char *path, const mp_params *p, mp_plan_info *out, mp_err *err);

/* ---- packs --------------------------------------------------------------------- */

typedef struct mp_pack_params {
    bool no_compress;   /* store every block raw */
    int32_t n_threads;  /* compression threads; 0: all CPUs */
    /* Called now and then from the caller's thread; NULL: none. */
    void (*progress)(void *ud, uint64_t done_bytes, uint64_t total_bytes);
    void *progress_ud;
} mp_pack_params;

typedef struct mp_pack_result {
    uint64_t n_blocks;       /* expert blocks written */
    uint64_t n_compressed;   /* of which lz4-compressed */
    uint64_t raw_bytes;      /* sum of raw block sizes */
    uint64_t stored_bytes;   /* sum of stored block sizes */
    uint64_t resident_bytes; /* the embedded GGUF (metadata + resident tensors) */
    uint64_t file_bytes;     /* the pack */
} mp_pack_result;

/* Rewrites the GGUF at src as a .moepack at dst (pack_format.h): written to
 * dst.tmp.PID and renamed, so dst is never left half written. p may be
 * NULL; res may be NULL. Returns MP_OK, or the error reading src (named) or
 * writing dst (MP_E_IO). */
int mp_pack_model(const char *src, const char *dst, const mp_pack_params *p, mp_pack_result *res, mp_err *err);

/* ---- routing traces: replay through cache policies --------------------------------- */

/* A routing trace (docs/TRACE_FORMAT.md), as written by params.trace_out. */
typedef struct mp_trace mp_trace;

/* Reads and validates a trace. Returns MP_OK and *out (free with
 * mp_trace_free), or MP_E_IO / MP_E_CORRUPT naming the file and line. */
int mp_trace_read(const char *path, mp_trace **out, mp_err *err);
void mp_trace_free(mp_trace *t); /* NULL-safe */

typedef struct mp_trace_info {
    size_t n_records;   /* (token, layer) records */
    uint32_t n_sequences, n_layers, n_experts, k_max;
} mp_trace_info;
void mp_trace_get_info(const mp_trace *t, mp_trace_info *out);

typedef struct mp_replay_result {
    uint64_t accesses, hits, misses;
} mp_replay_result;

/* Replays t through the replacement policy named policy (NULL: default, or
 * "belady" for Belady's optimal offline policy: the fewest misses any policy
 * can have) with capacity slots per layer, or capacity * n_layers slots
 * shared by all layers when global. Returns MP_OK, MP_E_INVAL (unknown
 * policy, capacity 0 or too large), MP_E_NOMEM. */
int mp_trace_replay_policy(const mp_trace *t, const char *policy, uint32_t capacity, bool global,
                           mp_replay_result *out, mp_err *err);

/* Replays t through the real expert cache with real reads of a model's
 * experts (the trace's expert ids, its layers mapped to the model's MoE
 * layers in order): measures what the device gives under this routing. */
typedef struct mp_trace_io mp_trace_io;

/* Opens the model at model_path for replays of t (borrowed: it must outlive
 * the handle). io: backend name (NULL: auto); io_depth 0: default.
 * Returns MP_OK; MP_E_RANGE when the model has fewer MoE layers or experts
 * than the trace ("the trace has 3 layers x 8 experts but M has ..."). */
int mp_trace_io_open(mp_trace_io **out, const mp_trace *t, const char *model_path, const char *io,
                     uint32_t io_depth, mp_err *err);
void mp_trace_io_free(mp_trace_io *r); /* NULL-safe */

typedef struct mp_trace_io_result {
    double hit_rate;     /* (hits + late hits) / demands */
    double mb_s;         /* MB (1e6 bytes) read / I/O busy time */
    double seconds;      /* wall time of the replay */
    uint64_t bytes_read, loads;
    char note[512];      /* the io's fallback announcements, "" if none */
} mp_trace_io_result;

/* One replay with a fresh cache of `slots` slots shared by every layer,
 * under policy (NULL: default), with the model file dropped from the page
 * cache first. Returns MP_OK, or MP_E_INVAL / MP_E_BUDGET (slots < the
 * trace's k) / the read's error. */
int mp_trace_io_run(mp_trace_io *r, const char *policy, uint32_t slots, mp_trace_io_result *out, mp_err *err);

/* ---- small utilities the command line also uses ------------------------------------ */

/* Parses a byte count: digits, an optional fraction, an optional binary unit
 * (B, K/KB/KiB, M, G, T; case-insensitive). Returns MP_OK or MP_E_INVAL
 * (*out untouched). */
int mp_parse_size(const char *s, uint64_t *out);
/* "512 MiB", "1.50 GiB" into buf[cap] (NUL-terminated when cap > 0).
 * Returns the length, or MP_E_RANGE if it did not fit. */
int mp_format_size(uint64_t bytes, char *buf, size_t cap);
/* Whole-string parsers: an int64 ("+5", "-3"); a finite float; a list
 * "1,300,301" into out[0..*n) (MP_E_RANGE past cap); a comma split of s
 * into buf[buf_cap] with items pointing into buf. MP_OK or MP_E_INVAL. */
int mp_parse_i64(const char *s, int64_t *out);
int mp_parse_f32(const char *s, float *out);
int mp_parse_int_list(const char *s, int64_t *out, int cap, int *n);
int mp_parse_str_list(const char *s, char *buf, size_t buf_cap, const char **items, int cap, int *n);

/* Seconds on a monotonic clock (only differences mean anything). */
double mp_time_s(void);
/* CPUs this process may run on (>= 1). */
int mp_n_cpus(void);
/* Peak resident set size of the process in bytes (0 if unknown). */
uint64_t mp_peak_rss_bytes(void);
/* Restarts the peak above from the current size (Linux >= 4.0). Returns
 * MP_OK, or MP_E_UNSUPPORTED when the kernel refuses. */
int mp_reset_peak_rss(void);
/* Asks the kernel to drop the file's pages from the page cache (for cold
 * benchmarks; advisory). Returns MP_OK, MP_E_NOTFOUND, MP_E_INVAL, MP_E_IO. */
int mp_drop_path_cache(const char *path);

#ifdef __cplusplus
}
#endif
#endif
