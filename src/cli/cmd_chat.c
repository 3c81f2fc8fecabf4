/* moepager chat: an interactive chat in the terminal.
 *
 * Every turn renders the whole conversation with the model's chat template
 * and evaluates only what the KV cache does not already hold (the common
 * prefix of the tokens it holds and the new prompt), so a turn costs its
 * own tokens, not the conversation's. When the context fills, the oldest
 * turns after the system prompt are dropped and the rest re-evaluated. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t g_interrupt;
static void on_sigint(int sig) { (void)sig; g_interrupt = 1; }

static void help(void)
{
    printf("usage: moepager chat [-m MODEL] [--system TEXT] [options]\n\n"
           "Chats with the model in the terminal, its answers streamed. Type a message and Enter;\n"
           "Ctrl-C stops the answer (not the program), Ctrl-D or /exit quits, /clear forgets the\n"
           "conversation, /stats prints the expert cache line. The KV cache is kept across turns:\n"
           "a turn evaluates only its new tokens. When the context fills, the oldest turns after\n"
           "the system prompt are dropped.\n\n"
           "  -sys, --system TEXT    the system prompt\n"
           "  --chat-template T      override the model's chat template: a Jinja file, or a built-in\n"
           "                         name (chatml, llama3, mistral-v7, deepseek3, gpt-oss, ...)\n"
           "  -n, --n-predict N      tokens per answer at most (default -1: until end of text)\n"
           "  --temp T, --top-k N, --top-p P, --min-p P, --repeat-penalty R, --repeat-last-n N,\n"
           "  -s SEED                sampling (defaults as moepager run)\n"
           CLI_CKPT_HELP
           "%s",
           cli_model_opts_help);
}

typedef struct chat_msg {
    char *role, *content;
} chat_msg;

typedef struct chat {
    mp_engine *e;
    const char *tmpl;
    chat_msg *msgs;
    size_t n_msgs, cap_msgs;
    bool has_system;
    int32_t *kv;      /* tokens the KV cache holds */
    int n_kv, n_ctx, n_vocab;
    float *logits;
    mp_sampler *smp;
    /* the last answer */
    int last_prompt, last_reused, last_gen;
    double last_prompt_s, last_gen_s;
    double total_s;
    int total_tokens;
} chat;

static int add_msg(chat *c, const char *role, const char *content, size_t len)
{
    if (c->n_msgs == c->cap_msgs) {
        size_t cap = c->cap_msgs ? c->cap_msgs * 2 : 16;
        chat_msg *m = realloc(c->msgs, cap * sizeof *m);
        if (!m) return -1;
        c->msgs = m;
        c->cap_msgs = cap;
    }
    char *r = strdup(role), *t = malloc(len + 1);
    if (!r || !t) {
        free(r);
        free(t);
        return -1;
    }
    memcpy(t, content, len);
    t[len] = '\0';
    c->msgs[c->n_msgs++] = (chat_msg){r, t};
    return 0;
}

static void drop_msg(chat *c, size_t i)
{
    free(c->msgs[i].role);
    free(c->msgs[i].content);
    memmove(c->msgs + i, c->msgs + i + 1, (c->n_msgs - i - 1) * sizeof *c->msgs);
    c->n_msgs--;
}

/* Drops the oldest turn after the system prompt (a user message and the
 * answers up to the next user message). Returns false when only the last
 * user message is left. */
static bool drop_oldest_turn(chat *c)
{
    size_t first = c->has_system ? 1 : 0;
    if (c->n_msgs <= first + 1) return false;
    drop_msg(c, first);
    while (c->n_msgs > first + 1 && strcmp(c->msgs[first].role, "user")) drop_msg(c, first);
    return true;
}

/* The conversation as tokens (+ the generation prompt) into *ids. */
static int render_tokens(chat *c, int32_t **ids, size_t *n)
{
    cli_chat_msg *m = calloc(c->n_msgs ? c->n_msgs : 1, sizeof *m);
    if (!m) return cli_error("out of memory");
    for (size_t i = 0; i < c->n_msgs; i++) m[i] = (cli_chat_msg){c->msgs[i].role, c->msgs[i].content};
    char *text = NULL, msg[512];
    int rc = cli_chat_render(c->e, c->tmpl, m, c->n_msgs, true, &text, msg, sizeof msg);
    free(m);
    if (rc) return cli_error("%s", msg);
    const unsigned flags = MP_TOKENIZE_ADD_SPECIAL | MP_TOKENIZE_PARSE_SPECIAL;
    mp_err err = {0};
    size_t need = 0;
    mp_engine_tokenize(c->e, text, strlen(text), flags, NULL, 0, &need, NULL);
    *ids = malloc(sizeof **ids * (need ? need : 1));
    if (!*ids) {
        free(text);
        return cli_error("out of memory");
    }
    rc = mp_engine_tokenize(c->e, text, strlen(text), flags, *ids, need, n, &err);
    free(text);
    if (rc) {
        free(*ids);
        *ids = NULL;
        return cli_fail(&err);
    }
    return 0;
}

/* cli_chat_split for the conversation so far (n: when out of memory) */
static int prompt_split(chat *c, const int32_t *ids, size_t n)
{
    cli_chat_msg *m = calloc(c->n_msgs ? c->n_msgs : 1, sizeof *m);
    if (!m) return (int)n;
    for (size_t i = 0; i < c->n_msgs; i++) m[i] = (cli_chat_msg){c->msgs[i].role, c->msgs[i].content};
    const int split = cli_chat_split(c->e, c->tmpl, m, c->n_msgs, ids, n);
    free(m);
    return split;
}

/* Evaluates ids[0..n) into the KV cache, reusing the prefix it holds, in
 * two parts at split (see cli_chat_split; n: one). Returns 0, 1 on an
 * error (printed). */
static int eval_prompt(chat *c, const int32_t *ids, int n, int split)
{
    int keep = 0;
    while (keep < c->n_kv && keep < n && c->kv[keep] == ids[keep]) keep++;
    if (keep >= n) keep = n - 1; /* the last token again, for its logits */
    /* a recurrent state goes back only to a checkpoint (the end of an
     * earlier prompt), a slid window not at all: what is kept then is less */
    keep = mp_engine_resume_point(c->e, keep);
    mp_err err = {0};
    if (mp_engine_truncate(c->e, keep, &err)) return cli_fail(&err);
    c->n_kv = keep;
    double t0 = mp_time_s();
    /* up to the generation prompt first: a checkpoint there (cli_chat_split) */
    const int from = split > keep && split < n ? split : keep;
    int rc = from > keep ? mp_engine_eval(c->e, ids + keep, (size_t)(from - keep), NULL, 0, false, &err) : MP_OK;
    if (!rc) rc = mp_engine_eval(c->e, ids + from, (size_t)(n - from), c->logits, (size_t)c->n_vocab, false, &err);
    c->last_prompt_s = mp_time_s() - t0;
    if (rc) {
        mp_engine_truncate(c->e, keep, NULL);
        return cli_fail(&err);
    }
    memcpy(c->kv + keep, ids + keep, sizeof *ids * (size_t)(n - keep));
    c->n_kv = n;
    c->last_prompt = n;
    c->last_reused = keep;
    c->total_tokens += n - keep;
    c->total_s += c->last_prompt_s;
    return 0;
}

/* The prompt for the conversation so far, shifted until it leaves `room`
 * tokens free. Returns 0, 1 on an error. */
static int fit_prompt(chat *c, int room, int32_t **ids, size_t *n)
{
    for (;;) {
        if (render_tokens(c, ids, n)) return 1;
        if ((int)*n + room <= c->n_ctx) return 0;
        free(*ids);
        *ids = NULL;
        if (!drop_oldest_turn(c)) {
            if ((int)*n < c->n_ctx) return render_tokens(c, ids, n); /* no room to spare, but it fits */
            return cli_error("the message needs %zu tokens, the context holds %d (use -c)", *n, c->n_ctx);
        }
        fprintf(stderr, "[context full: dropped the oldest turn]\n");
    }
}

/* One answer: streamed to stdout. Returns 0, 1 on an error. */
static int answer(chat *c, int n_predict)
{
    int32_t *ids = NULL;
    size_t n = 0;
    const int room = c->n_ctx / 4 < 256 ? c->n_ctx / 4 : 256;
    if (fit_prompt(c, room, &ids, &n)) return 1;
    /* the penalty's history: this turn's prompt (which holds the earlier turns) */
    mp_sampler_reset(c->smp);
    for (size_t i = 0; i < n; i++) mp_sampler_accept(c->smp, ids[i]);
    int rc = eval_prompt(c, ids, (int)n, prompt_split(c, ids, n));
    free(ids);
    if (rc) return 1;

    char *text = NULL;
    size_t len = 0, cap = 0;
    int n_gen = 0;
    double t0 = mp_time_s();
    g_interrupt = 0;
    mp_err err = {0};
    while (n_predict < 0 || n_gen < n_predict) {
        if (g_interrupt) {
            printf(" [stopped]");
            break;
        }
        int32_t tok = mp_sampler_sample(c->smp, c->logits);
        mp_sampler_accept(c->smp, tok);
        if (mp_engine_is_eog(c->e, tok)) break;
        n_gen++;
        char piece[256];
        size_t pl = 0;
        int prc = mp_engine_token_to_piece(c->e, tok, false, piece, sizeof piece, &pl, NULL);
        if (prc != MP_OK && prc != MP_E_RANGE) pl = 0;
        if (pl > sizeof piece) pl = sizeof piece;
        if (len + pl + 1 > cap) {
            cap = (len + pl + 1) * 2;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                return cli_error("out of memory");
            }
            text = t;
        }
        memcpy(text + len, piece, pl);
        len += pl;
        fwrite(piece, 1, pl, stdout);
        fflush(stdout);
        if (n_predict >= 0 && n_gen >= n_predict) break;
        if (c->n_kv >= c->n_ctx) {
            /* context full mid-answer: shift (drop old turns, never this
             * one), then go on from the prompt plus what was said so far */
            size_t na = 0;
            mp_engine_tokenize(c->e, text, len, 0, NULL, 0, &na, NULL);
            int32_t *p = NULL;
            size_t np = 0;
            if (fit_prompt(c, room + (int)na, &p, &np)) {
                free(text);
                return 1;
            }
            if ((int)(np + na) >= c->n_ctx) {
                /* this answer alone fills the context: it ends here */
                free(p);
                printf(" [context full]");
                break;
            }
            int32_t *all = realloc(p, sizeof *p * (np + na + 1));
            if (!all) {
                free(p);
                free(text);
                return cli_error("out of memory");
            }
            if (na) mp_engine_tokenize(c->e, text, len, 0, all + np, na, &na, NULL);
            rc = eval_prompt(c, all, (int)(np + na), (int)(np + na));
            free(all);
            if (rc) {
                free(text);
                return 1;
            }
            continue; /* sample from the re-evaluated logits */
        }
        rc = mp_engine_eval(c->e, &tok, 1, c->logits, (size_t)c->n_vocab, false, &err);
        if (rc) {
            free(text);
            printf("\n");
            return cli_fail(&err);
        }
        c->kv[c->n_kv++] = tok;
    }
    printf("\n");
    fflush(stdout);
    c->last_gen = n_gen;
    c->last_gen_s = mp_time_s() - t0;
    c->total_tokens += n_gen;
    c->total_s += c->last_gen_s;
    rc = add_msg(c, "assistant", text ? text : "", len);
    free(text);
    if (rc) return cli_error("out of memory");
    fprintf(stderr, "[%d tokens, %.1f tok/s | prompt %d tokens, %d reused from the KV cache, %d evaluated]\n", n_gen,
            c->last_gen_s > 0 ? n_gen / c->last_gen_s : 0.0, c->last_prompt, c->last_reused,
            c->last_prompt - c->last_reused);
    return 0;
}

static void clear(chat *c)
{
    size_t keep = c->has_system ? 1 : 0;
    while (c->n_msgs > keep) drop_msg(c, c->n_msgs - 1);
    /* the KV keeps the system prompt's tokens: the next turn reuses them */
}

int cmd_chat(int argc, char **argv)
{
    cli_model_opts mo = {.n_ckpt = CLI_DEFAULT_CHECKPOINTS};
    const char *system = NULL, *tmpl = NULL;
    int n_predict = -1;
    mp_sampler_params sp = mp_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_take_model_opt(&mo, argc, argv, &i);
        if (r == 0) r = cli_take_sampler_opt(&sp, argc, argv, &i);
        if (r == 0) r = cli_take_ckpt_opt(&mo, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (cli_is_help(a)) {
            help();
            return 0;
        } else if (!strcmp(a, "-sys") || !strcmp(a, "--system")) {
            if (!(system = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--chat-template")) {
            if (!(tmpl = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(a, v, -1, 1 << 24, &n_predict)) return 1;
        } else {
            return cli_error("chat: unknown option '%s' (see moepager chat --help)", a);
        }
    }
    if (cli_resolve_model(&mo)) return 1;
    chat c = {0};
    c.tmpl = tmpl;
    int rc = 1;
    char *line = NULL;
    size_t line_cap = 0;
    mp_err err = {0};
    if (!(c.e = cli_open_engine(&mo, true, 0))) return 1;
    if (cli_chat_check(c.e, tmpl)) {
        mp_engine_free(c.e);
        return 1;
    }
    mp_engine_info info;
    mp_engine_get_info(c.e, &info);
    c.n_vocab = info.n_vocab;
    c.n_ctx = mp_engine_n_ctx(c.e);
    c.kv = malloc(sizeof *c.kv * (size_t)c.n_ctx);
    c.logits = malloc(sizeof *c.logits * (size_t)c.n_vocab);
    if (!c.kv || !c.logits || mp_sampler_open(&c.smp, &sp, c.n_vocab, &err)) {
        cli_error("out of memory");
        goto done;
    }
    if (system && system[0]) {
        if (add_msg(&c, "system", system, strlen(system))) goto done;
        c.has_system = true;
    }
    /* Ctrl-C interrupts the read or the answer, never the program */
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL);
    fprintf(stderr, "moepager chat: %s (context %d tokens). Ctrl-C stops an answer; /exit or Ctrl-D quits; "
                    "/clear, /stats.\n", mo.model, c.n_ctx);
    for (;;) {
        printf("> ");
        fflush(stdout);
        g_interrupt = 0;
        errno = 0;
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) {
            if (errno == EINTR || g_interrupt) {
                clearerr(stdin);
                printf("\n(Ctrl-D or /exit quits)\n");
                continue;
            }
            printf("\n");
            break;
        }
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
        if (got == 0) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/clear")) {
            clear(&c);
            mp_sampler_reset(c.smp);
            printf("(conversation cleared)\n");
            continue;
        }
        if (!strcmp(line, "/stats")) {
            printf("last answer: %d tokens in %.2f s (%.1f tok/s); prompt %d tokens, %d reused, %.2f s; context %d/%d\n",
                   c.last_gen, c.last_gen_s, c.last_gen_s > 0 ? c.last_gen / c.last_gen_s : 0.0, c.last_prompt,
                   c.last_reused, c.last_prompt_s, c.n_kv, c.n_ctx);
            fflush(stdout);
            mp_stats st;
            mp_engine_stats(c.e, &st);
            if (st.streamed) cli_print_cache_stats(c.e, c.total_s, c.total_tokens);
            else fprintf(stderr, "expert cache: none (the model is mapped: every expert in memory)\n");
            continue;
        }
        if (add_msg(&c, "user", line, (size_t)got)) {
            cli_error("out of memory");
            goto done;
        }
        if (answer(&c, n_predict)) {
            /* the turn failed: forget it, keep chatting */
            if (c.n_msgs && !strcmp(c.msgs[c.n_msgs - 1].role, "user")) drop_msg(&c, c.n_msgs - 1);
        }
    }
    rc = 0;
done:
    free(line);
    while (c.n_msgs) drop_msg(&c, c.n_msgs - 1);
    free(c.msgs);
    free(c.kv);
    free(c.logits);
    mp_sampler_free(c.smp);
    mp_engine_free(c.e);
    return rc;
}
