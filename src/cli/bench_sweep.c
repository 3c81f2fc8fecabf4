/* moepager bench: the sweep. Every repetition is cold: the model file is
 * dropped from the page cache and a fresh engine (an empty expert cache) is
 * opened; a prompt of -p deterministic ids is evaluated in chunks of -b,
 * then -n greedy decode steps, each phase timed and counted apart. The
 * settings take turns, one repetition each per round. */
#include "bench_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

int32_t bench_prompt_id(int i, uint32_t n_vocab)
{
    return n_vocab > 1 ? (int32_t)(1 + splitmix64((uint64_t)i) % (n_vocab - 1)) : 0;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* ---- one repetition ----------------------------------------------------- */

/* Counts the distinct (layer, expert) pairs a prompt chunk routes to. */
typedef struct distinct_ctr {
    uint8_t *seen; /* (n_layer * n_expert) */
    uint32_t n_expert;
    uint64_t n;
} distinct_ctr;

static void count_route(void *ud, int layer, int pos, const int32_t *experts, const float *weights, int k)
{
    (void)pos;
    (void)weights;
    distinct_ctr *d = ud;
    for (int i = 0; i < k; i++) {
        size_t key = (size_t)layer * d->n_expert + (size_t)experts[i];
        if (!d->seen[key]) {
            d->seen[key] = 1;
            d->n++;
        }
    }
}

static void engine_params(const bench_run *b, const bench_setting *s, mp_params *p)
{
    cli_model_opts o = b->mo;
    o.mem = o.cache_bytes = 0;
    o.cache_experts = 0;
    o.prefetch = NULL;
    o.lookahead = o.prefetch_extra = 0;
    o.has_min_prob = false;
    o.oracle_trace = NULL;
    o.trace_out = NULL;
    /* "all in RAM" rows map the whole file, whatever the default budget */
    o.mmap = s->kind == BENCH_RAM;
    if (s->kind == BENCH_CACHE_SIZE) o.cache_bytes = s->value;
    else if (s->kind == BENCH_CACHE_EXPERTS) o.cache_experts = (int)s->value;
    else if (s->kind == BENCH_MEM) o.mem = s->value;
    o.policy = s->policy;
    o.io_depth = s->io_depth;
    if (s->vram_set) {
        o.vram = s->vram;
        o.vram_given = true;
    }
    cli_params(&o, p);
    p->n_ctx = b->n_ctx;
    p->need_tokenizer = false;
    p->prefetch = bench_pf_name(s->pf);
    p->lookahead = s->lookahead > 0 ? s->lookahead : 0; /* 0: the default */
    p->prefetch_extra = s->extra;
    p->prefetch_min_prob = s->min_prob;
    /* with --routing-trace the oracle predicts from the replayed routing */
    p->oracle_trace = b->mo.routing_trace ? NULL : b->oracle_trace;
}

/* The registry's own copy of a policy name (static), so rows outlive the
 * option buffers. */
static const char *policy_name(const char *name)
{
    for (size_t i = 0; mp_policy_name_at(i); i++)
        if (!name || !strcmp(mp_policy_name_at(i), name)) return mp_policy_name_at(i);
    return "?";
}

/* Prints engine notes (fallbacks) once per distinct line. */
static void print_notes(bench_run *b, const char *note)
{
    for (const char *line = note; *line;) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        if (len > 0) {
            char one[512];
            snprintf(one, sizeof one, "%.*s\n", len, line);
            if (!strstr(b->notes, one)) {
                fprintf(stderr, "moepager: %s", one);
                if (strlen(b->notes) + strlen(one) < sizeof b->notes) strcat(b->notes, one);
            }
        }
        line += len + (nl ? 1 : 0);
    }
}

/* Runs one cold repetition and adds its measurements to row. trace_out,
 * when set, records the routing instead (row may then be NULL). Returns 0
 * or -1 after printing the error. */
static int run_rep(bench_run *b, const bench_setting *s, bench_row *row, const char *trace_out)
{
    int rc = -1;
    mp_engine *e = NULL;
    float *logits = NULL;
    int32_t *ids = NULL;
    distinct_ctr dc = {0};
    mp_err err = {0};

    if (mp_drop_path_cache(b->mo.model) != MP_OK) {
        if (row) row->dropped = false;
        if (!b->quiet_drop_note)
            fprintf(stderr, "moepager: note: could not drop %s from the page cache: repetitions are not cold\n",
                    b->mo.model);
        b->quiet_drop_note = true;
    }
    /* peak RSS is per repetition */
    if (mp_reset_peak_rss() != MP_OK && !b->quiet_rss_note) {
        fprintf(stderr, "moepager: note: /proc/self/clear_refs refused: peak RSS is the process's peak so far\n");
        b->quiet_rss_note = true;
    }
    mp_params p;
    engine_params(b, s, &p);
    p.trace_out = trace_out;
    if (trace_out) p.prefetch = "none";
    if (mp_engine_open(&e, b->mo.model, &p, &err)) {
        cli_fail(&err);
        goto done;
    }
    print_notes(b, mp_engine_notes(e));
    mp_engine_info in;
    mp_engine_get_info(e, &in);
    if (in.routing_replayed) {
        if (!b->routing_noted) cli_routing_line(&b->mo, &in, "moepager: ", stderr);
        b->routing_noted = true;
        if ((int64_t)b->n_prompt + b->n_gen > in.routing_positions) {
            cli_error("bench: -p %d + -n %d tokens need positions 0..%d, but %s routes positions 0..%lld", b->n_prompt,
                      b->n_gen, b->n_prompt + b->n_gen - 1, b->mo.routing_trace, (long long)in.routing_positions - 1);
            goto done;
        }
    }
    const int V = in.n_vocab;
    if (!(logits = malloc(sizeof *logits * (size_t)V)) || !(ids = malloc(sizeof *ids * (size_t)b->n_prompt))) {
        cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < b->n_prompt; i++) ids[i] = bench_prompt_id(i, (uint32_t)V);
    if (!trace_out && in.n_expert) {
        dc.n_expert = in.n_expert;
        if (!(dc.seen = malloc((size_t)in.n_layer * in.n_expert))) {
            cli_error("out of memory");
            goto done;
        }
        if (mp_engine_set_route_cb(e, count_route, &dc, &err)) {
            cli_fail(&err);
            goto done;
        }
    }
    mp_engine_stats_reset(e);

    /* prefill, chunk by chunk so each chunk's distinct experts are known */
    const int chunk = b->mo.n_batch > 0 ? b->mo.n_batch : 512;
    uint64_t distinct = 0, chunks = 0;
    double t0 = mp_time_s();
    for (int q = 0; q < b->n_prompt; q += chunk) {
        int T = b->n_prompt - q < chunk ? b->n_prompt - q : chunk;
        if (dc.seen) memset(dc.seen, 0, (size_t)in.n_layer * in.n_expert), dc.n = 0;
        if (mp_engine_eval(e, ids + q, (size_t)T, logits, (size_t)V, false, &err)) {
            cli_fail(&err);
            goto done;
        }
        distinct += dc.n;
        chunks++;
    }
    double t_pp = mp_time_s() - t0;
    mp_engine_stats_mark(e, MP_PHASE_DECODE);

    double t1 = mp_time_s();
    for (int g = 0; g < b->n_gen; g++) {
        int32_t cur = argmax(logits, V);
        if (mp_engine_eval(e, &cur, 1, logits, (size_t)V, false, &err)) {
            cli_fail(&err);
            goto done;
        }
    }
    double t_tg = mp_time_s() - t1;
    mp_stats st;
    mp_engine_stats(e, &st);
    mp_expert_stats tgl[BENCH_MAX_LAYERS];
    const uint32_t n_layers = in.n_layer < BENCH_MAX_LAYERS ? in.n_layer : BENCH_MAX_LAYERS;
    if (st.streamed) mp_engine_layer_stats(e, MP_PHASE_DECODE, tgl, n_layers);
    if (st.trace_errors) {
        cli_error("%s: %llu routing records could not be written", trace_out, (unsigned long long)st.trace_errors);
        goto done;
    }
    if (row) {
        int r = row->reps++;
        row->pp_tps[r] = b->n_prompt / t_pp;
        row->tg_tps[r] = b->n_gen > 0 ? b->n_gen / t_tg : NAN;
        row->pp_seconds += t_pp;
        row->tg_seconds += t_tg;
        row->pp_chunks += chunks;
        row->pp_distinct += distinct;
        row->streamed = st.streamed;
        if (st.streamed) {
            row->slots = in.slots;
            row->cache_bytes = (uint64_t)in.slots * in.slot_bytes;
            row->n_moe_layers = in.plan.n_moe_layers;
            row->n_expert_used = in.n_expert_used;
            row->io_bytes += st.io.bytes;
            row->io_busy_ns += st.io.busy_ns;
            snprintf(row->io_name, sizeof row->io_name, "%s", in.io);
            row->policy_name = policy_name(s->policy);
            mp_expert_stats_add(&row->pp, &st.phase[MP_PHASE_PREFILL]);
            mp_expert_stats_add(&row->tg, &st.phase[MP_PHASE_DECODE]);
            row->n_layers = n_layers;
            for (uint32_t l = 0; l < n_layers; l++) mp_expert_stats_add(&row->tg_layer[l], &tgl[l]);
        } else {
            row->policy_name = "-";
            snprintf(row->io_name, sizeof row->io_name, "mmap");
        }
        uint64_t rss = mp_peak_rss_bytes();
        if (rss > row->peak_rss) row->peak_rss = rss;
    }
    rc = 0;
done:
    free(dc.seen);
    free(ids);
    free(logits);
    mp_engine_free(e);
    return rc;
}

/* ---- the sweep -------------------------------------------------------------- */

static void setting_desc(const bench_setting *s, char *buf, size_t cap)
{
    char pf[48];
    bench_prefetch_label(s, pf, sizeof pf);
    if (s->kind == BENCH_RAM) snprintf(buf, cap, "all in RAM");
    else
        snprintf(buf, cap, "cache %s policy %s prefetch %s io-depth %d", s->label,
                 s->policy ? s->policy : mp_policy_name_at(0), pf,
                 s->io_depth ? s->io_depth : MP_DEFAULT_IO_DEPTH);
}

/* Records the routing of the benchmark's tokens into path (an oracle for
 * later rows). Returns 0 or -1 after printing the error. */
static int record_routing(bench_run *b, const bench_setting *s, const char *path)
{
    fprintf(stderr, "moepager: recording the routing of %d + %d tokens into %s (for --prefetch oracle)\n",
            b->n_prompt, b->n_gen, path);
    return run_rep(b, s, NULL, path);
}

int bench_sweep(bench_run *b, const bench_setting *sets, int n, bench_row *rows, const char *trace_out,
                 char *tmp_trace, size_t tmp_cap)
{
    bool tty = isatty(STDERR_FILENO);
    for (int i = 0; i < n; i++) {
        memset(&rows[i], 0, sizeof rows[i]);
        rows[i].set = sets[i];
        rows[i].dropped = true;
        /* the oracle needs a recording of the same tokens' routing, unless
         * the routing is replayed (it then predicts from that) */
        if (sets[i].kind != BENCH_RAM && ((sets[i].pf == BENCH_PF_ORACLE && !b->mo.routing_trace) || trace_out) &&
            !b->oracle_trace) {
            const char *path = trace_out;
            if (!path) {
                const char *dir = getenv("TMPDIR");
                snprintf(tmp_trace, tmp_cap, "%s/moepager-bench-routing-XXXXXX", dir && *dir ? dir : "/tmp");
                int fd = mkstemp(tmp_trace);
                if (fd < 0) {
                    tmp_trace[0] = '\0';
                    return cli_error("bench: cannot create a temporary file for the oracle's routing trace");
                }
                close(fd);
                path = tmp_trace;
            }
            if (record_routing(b, &sets[i], path)) return 1;
            b->oracle_trace = path;
        }
    }
    /* repetitions take turns over the settings (rep 1 of each, then rep 2
     * of each, ...): a machine whose speed drifts weighs on every setting
     * alike, where runs of one setting after another put the drift between
     * settings; and every other round runs them in reverse order, so that
     * no setting always runs first (after the previous round's last one) */
    for (int r = 0; r < b->reps; r++)
        for (int j = 0; j < n; j++) {
            const int i = r % 2 ? n - 1 - j : j;
            char desc[160];
            setting_desc(&sets[i], desc, sizeof desc);
            fprintf(stderr, "%s[%d/%d] %s rep %d/%d ...%s", tty ? "\r\033[K" : "", i + 1, n, desc, r + 1, b->reps,
                    tty ? "" : "\n");
            fflush(stderr);
            if (run_rep(b, &sets[i], &rows[i], NULL)) {
                if (tty) fputc('\n', stderr);
                return 1;
            }
        }
    for (int i = 0; i < n; i++) {
        char desc[160];
        setting_desc(&sets[i], desc, sizeof desc);
        bench_metrics m;
        bench_metrics_get(&rows[i], b->n_gen, &m);
        fprintf(stderr, "%s[%d/%d] %s: pp %.2f tok/s, tg %.2f tok/s%s", tty ? "\r\033[K" : "", i + 1, n, desc,
                m.pp_tps, m.tg_tps, tty ? "" : "\n");
    }
    if (tty) fputc('\n', stderr);
    return 0;
}

