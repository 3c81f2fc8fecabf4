/* moepager bench: sweep cache sizes, policies, prefetch settings and I/O
 * depths like llama-bench sweeps its flags; one row per combination, each
 * repetition cold (a fresh session, so the expert cache starts empty, and
 * the model file dropped from the page cache). Also --suggest (a short
 * sweep inside a --mem budget that recommends settings) and --trace
 * (routing-trace replay, bench_trace.c). Output fields: docs/BENCH_FORMAT.md. */
#include "bench_internal.h"
#include "cli.h"
#include "runtime/model_open.h"

#include "cache/policy.h"
#include "common/parse.h"
#include "common/sysinfo.h"
#include "io/io.h"
#include "runtime/session.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: moepager bench -m MODEL [--cache-size LIST] [--cache-experts LIST] [--mem LIST]\n"
           "                      [--policy LIST] [--prefetch LIST] [--lookahead LIST] [--prefetch-extra LIST]\n"
           "                      [--prefetch-min-prob LIST] [--io-depth LIST] [-p N] [-n N] [-r N] [-t N] [-o md|csv|json|jsonl] [--plot FILE.svg]\n"
           "       moepager bench --suggest -m MODEL --mem SIZE [-p N] [-n N] [-t N]\n"
           "       moepager bench --trace FILE [--cache-experts LIST] [--per-layer|--global] [--policy LIST]\n"
           "                      [--io [KIND] -m MODEL]\n\n"
           "Runs every combination of the comma-separated lists (--lookahead applies to lookahead\n"
           "and oracle, --prefetch-extra and --prefetch-min-prob to lookahead only) and prints one\n"
           "row per combination. Each\n"
           "repetition is cold: a fresh session (empty expert cache) and the model file dropped\n"
           "from the page cache. A repetition evaluates a prompt of -p deterministic token ids\n"
           "(see --print-ids) in chunks of -b, then -n greedy decode steps; prompt and decode are\n"
           "timed and counted separately. Without any budget flag, or with 'ram' in --cache-size,\n"
           "a row runs with the whole model mapped (\"all in RAM\", the ceiling). 'oracle' in\n"
           "--prefetch first records the routing of the same tokens (kept in a temporary file,\n"
           "or in --trace-out FILE), then replays it.\n\n"
           "  --cache-size LIST    expert cache sizes, e.g. 256M,512M,1G,ram\n"
           "  --cache-experts LIST cache sizes in experts per MoE layer, e.g. 2,4\n"
           "  --mem LIST           whole-process budgets, e.g. 1G,2G\n"
           "  --policy LIST        replacement policies (lfu-decay, lru)\n"
           "  --prefetch LIST      none, lookahead, oracle (default: lookahead)\n"
           "  --lookahead LIST     layers ahead for lookahead and oracle (default %d)\n"
           "  --prefetch-extra LIST extra experts by score for lookahead (default 0)\n"
           "  --prefetch-min-prob LIST  lookahead's minimum gate probability, e.g. 0,0.5,auto (default auto: 1/k)\n"
           "  --io-depth LIST      reads in flight (default %d)\n"
           "  -p, --n-prompt N     prompt tokens (default 512)\n"
           "  -n, --n-gen N        decode steps (default 128; 0: prompt only)\n"
           "  -r, --repetitions N  repetitions per row (default 3)\n"
           "  -o, --output FMT     md (default), csv, json (an array, one object per row), jsonl\n"
           "  --plot FILE.svg      gen tok/s and hit rate against cache size, one line per prefetch setting\n"
           "  --suggest            short sweep inside --mem; prints the recommended flags\n"
           "  --print-ids          print the prompt ids of -p (for moepager logits --ids) and exit\n"
           "  --trace FILE         replay a routing trace through the policies and Belady's optimum\n"
           "  -m, -t, -c, -b, --io, --oracle-trace, --trace-out as for moepager run:\n%s",
           MP_DEFAULT_LOOKAHEAD, MP_IO_DEFAULT_DEPTH, cli_model_opts_help);
}

/* ---- small helpers ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Prompt id i: 1 + splitmix64(i) mod (n_vocab - 1), so never 0 and the same
 * for every run (documented in docs/BENCH_FORMAT.md). */
static int32_t prompt_id(int i, uint32_t n_vocab)
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

/* Peak RSS is per repetition: VmHWM is reset by writing 5 to clear_refs
 * (Linux >= 4.0). Returns false when that is refused. */
static bool reset_peak_rss(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd < 0) return false;
    bool ok = write(fd, "5", 1) == 1;
    close(fd);
    return ok;
}

static double mean_of(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return n ? s / n : NAN;
}

static double sd_of(const double *v, int n)
{
    if (n < 2) return 0;
    double m = mean_of(v, n), s = 0;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    return sqrt(s / (n - 1));
}

static double ratio(double a, double b) { return b > 0 ? a / b : NAN; }

void bench_metrics_get(const bench_row *r, int n_gen, bench_metrics *m)
{
    m->pp_tps = mean_of(r->pp_tps, r->reps);
    m->pp_tps_sd = sd_of(r->pp_tps, r->reps);
    m->tg_tps = n_gen > 0 ? mean_of(r->tg_tps, r->reps) : NAN;
    m->tg_tps_sd = n_gen > 0 ? sd_of(r->tg_tps, r->reps) : NAN;
    m->peak_rss_mib = r->peak_rss / 1048576.0;
    m->hit_rate = m->pp_hit_rate = m->precision = m->recall = m->stall_share = NAN;
    m->tg_mb_per_token = m->pp_mb = m->io_mb_s = NAN;
    if (!r->streamed || r->reps == 0) return;
    const mp_cache_stats *t = &r->tg, *p = &r->pp;
    double dem = (double)(t->hits + t->late_hits + t->misses);
    m->hit_rate = ratio((double)(t->hits + t->late_hits), dem);
    m->pp_hit_rate = ratio((double)(p->hits + p->late_hits), (double)(p->hits + p->late_hits + p->misses));
    if (r->set.pf != MP_PREFETCH_NONE) mp_cache_prefetch_quality(t, &m->precision, &m->recall);
    m->stall_share = ratio(t->wait_ns / 1e9, r->tg_seconds);
    m->tg_mb_per_token = n_gen > 0 ? t->bytes_read / 1e6 / ((double)n_gen * r->reps) : NAN;
    m->pp_mb = p->bytes_read / 1e6 / r->reps;
    m->io_mb_s = ratio(r->io_bytes / 1e6, r->io_busy_ns / 1e9);
}

static void prefetch_label(const bench_setting *s, char *buf, size_t cap)
{
    if (s->kind == BENCH_RAM) snprintf(buf, cap, "-");
    else if (s->pf == MP_PREFETCH_LOOKAHEAD) {
        int k = snprintf(buf, cap, "lookahead d=%d", s->lookahead);
        if (s->extra && k >= 0 && (size_t)k < cap) k += snprintf(buf + k, cap - (size_t)k, " +%d", s->extra);
        if (k >= 0 && (size_t)k < cap) {
            if (s->min_prob < 0) snprintf(buf + k, cap - (size_t)k, " p>=1/k");
            else snprintf(buf + k, cap - (size_t)k, " p>=%g", (double)s->min_prob);
        }
    } else if (s->pf == MP_PREFETCH_ORACLE) snprintf(buf, cap, "oracle d=%d", s->lookahead);
    else snprintf(buf, cap, "%s", mp_prefetch_kind_name(s->pf));
}

void bench_series_label(const bench_row *r, bool with_policy, bool with_depth, char *buf, size_t cap)
{
    char pf[48];
    prefetch_label(&r->set, pf, sizeof pf);
    int n = snprintf(buf, cap, "%s", pf);
    if (with_policy && n >= 0 && (size_t)n < cap) n += snprintf(buf + n, cap - (size_t)n, " %s", r->policy_name);
    if (with_depth && n >= 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, " qd%d", r->set.io_depth);
}

int bench_knee(const double *x, const double *y, int n)
{
    if (n <= 0) return -1;
    int knee = n - 1;
    for (int i = n - 2; i >= 0; i--) {
        double doublings = x[i] > 0 && x[i + 1] > x[i] ? log2(x[i + 1] / x[i]) : 0;
        if (doublings <= 0 || !(y[i] > 0) || !isfinite(y[i + 1])) {
            knee = i; /* same size twice or no measurement: no gain to speak of */
            continue;
        }
        double gain = pow(y[i + 1] / y[i], 1.0 / doublings) - 1.0;
        if (gain >= BENCH_KNEE_GAIN) break;
        knee = i;
    }
    return knee;
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

typedef struct bench_run {
    cli_model_opts mo;      /* shared flags (-m, -t, -c, -b, --io) */
    int n_prompt, n_gen, reps;
    int n_ctx;
    const char *oracle_trace; /* recorded or given */
    bool quiet_rss_note, quiet_drop_note;
    char notes[2048];       /* session notes already printed */
} bench_run;

static void session_params(const bench_run *b, const bench_setting *s, mp_session_params *sp)
{
    cli_model_opts o = b->mo;
    o.mem = o.cache_bytes = 0;
    o.cache_experts = 0;
    o.mmap = s->kind == BENCH_RAM; /* "all in RAM" maps whatever the machine allows */
    o.prefetch = NULL;
    o.lookahead = o.prefetch_extra = 0;
    o.oracle_trace = NULL;
    o.trace_out = NULL;
    if (s->kind == BENCH_CACHE_SIZE) o.cache_bytes = s->value;
    else if (s->kind == BENCH_CACHE_EXPERTS) o.cache_experts = (int)s->value;
    else if (s->kind == BENCH_MEM) o.mem = s->value;
    o.policy = s->policy;
    o.io_depth = s->io_depth;
    cli_session_params(&o, sp);
    sp->n_ctx = b->n_ctx;
    sp->need_tokenizer = false;
    sp->prefetch_set = true;
    sp->prefetch.kind = s->pf;
    sp->prefetch.lookahead = s->lookahead > 0 ? s->lookahead : MP_DEFAULT_LOOKAHEAD;
    sp->prefetch.extra = s->extra;
    sp->prefetch.min_prob = s->min_prob;
    sp->prefetch.oracle_trace = b->oracle_trace;
}

/* Prints session notes (fallbacks) once per distinct line. */
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
    mp_session *ses = NULL;
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
    if (!reset_peak_rss() && !b->quiet_rss_note) {
        fprintf(stderr, "moepager: note: /proc/self/clear_refs refused: peak RSS is the process's peak so far\n");
        b->quiet_rss_note = true;
    }
    mp_session_params sp;
    session_params(b, s, &sp);
    sp.trace_out = trace_out;
    if (trace_out) sp.prefetch.kind = MP_PREFETCH_NONE;
    if (mp_session_open(&ses, &sp, &err)) {
        cli_fail(&err);
        goto done;
    }
    print_notes(b, ses->note);
    const mp_hparams *hp = &ses->model->hp;
    const int V = (int)hp->n_vocab;
    if (!(logits = malloc(sizeof *logits * (size_t)V)) || !(ids = malloc(sizeof *ids * (size_t)b->n_prompt))) {
        cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < b->n_prompt; i++) ids[i] = prompt_id(i, hp->n_vocab);
    if (!trace_out && hp->n_expert) {
        dc.n_expert = hp->n_expert;
        if (!(dc.seen = malloc((size_t)hp->n_layer * hp->n_expert))) {
            cli_error("out of memory");
            goto done;
        }
        mp_ctx_set_route_cb(ses->ctx, count_route, &dc);
    }
    if (ses->cache) {
        mp_cache_get_stats(ses->cache, NULL, NULL, true);
        mp_io_get_counters(mp_cache_io(ses->cache), NULL, true);
    }

    /* prefill, chunk by chunk so each chunk's distinct experts are known */
    const int chunk = b->mo.n_batch > 0 ? b->mo.n_batch : 512;
    uint64_t distinct = 0, chunks = 0;
    double t0 = mp_time_s();
    for (int p = 0; p < b->n_prompt; p += chunk) {
        int T = b->n_prompt - p < chunk ? b->n_prompt - p : chunk;
        if (dc.seen) memset(dc.seen, 0, (size_t)hp->n_layer * hp->n_expert), dc.n = 0;
        if (mp_ctx_eval(ses->ctx, ids + p, T, logits, false, &err)) {
            cli_fail(&err);
            goto done;
        }
        distinct += dc.n;
        chunks++;
    }
    double t_pp = mp_time_s() - t0;
    mp_cache_stats pp = {0}, tg = {0};
    if (ses->cache) mp_cache_get_stats(ses->cache, &pp, NULL, true);

    double t1 = mp_time_s();
    for (int g = 0; g < b->n_gen; g++) {
        int32_t cur = argmax(logits, V);
        if (mp_ctx_eval(ses->ctx, &cur, 1, logits, false, &err)) {
            cli_fail(&err);
            goto done;
        }
    }
    double t_tg = mp_time_s() - t1;
    mp_cache_stats tgl[BENCH_MAX_LAYERS];
    const uint32_t n_layers = hp->n_layer < BENCH_MAX_LAYERS ? hp->n_layer : BENCH_MAX_LAYERS;
    if (ses->cache) {
        mp_cache_stats *all = calloc(hp->n_layer, sizeof *all);
        if (!all) {
            cli_error("out of memory");
            goto done;
        }
        mp_cache_get_stats(ses->cache, &tg, all, false);
        memcpy(tgl, all, n_layers * sizeof *tgl);
        free(all);
    }
    if (ses->trace_errors) {
        cli_error("%s: %llu routing records could not be written", trace_out, (unsigned long long)ses->trace_errors);
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
        row->streamed = ses->cache != NULL;
        if (ses->cache) {
            row->slots = mp_cache_n_slots(ses->cache);
            row->cache_bytes = (uint64_t)row->slots * mp_cache_slot_size(ses->cache);
            row->n_moe_layers = ses->plan.n_moe_layers;
            row->n_expert_used = hp->n_expert_used;
            mp_io *io = mp_cache_io(ses->cache);
            mp_io_counters ioc;
            mp_io_get_counters(io, &ioc, false);
            row->io_bytes += ioc.bytes;
            row->io_busy_ns += ioc.busy_ns;
            snprintf(row->io_name, sizeof row->io_name, "%s", mp_io_name(io));
            const mp_policy_ops *pol = s->policy ? mp_policy_find(s->policy) : mp_policy_default();
            row->policy_name = pol ? pol->name : "?";
            mp_cache_stats_add(&row->pp, &pp);
            mp_cache_stats_add(&row->tg, &tg);
            row->n_layers = n_layers;
            for (uint32_t l = 0; l < n_layers; l++) mp_cache_stats_add(&row->tg_layer[l], &tgl[l]);
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
    mp_session_free(ses);
    return rc;
}

/* ---- output --------------------------------------------------------------- */

static void fmt_num(char *buf, size_t cap, double v, int prec)
{
    if (isfinite(v)) snprintf(buf, cap, "%.*f", prec, v);
    else snprintf(buf, cap, "-");
}

static void fmt_json(char *buf, size_t cap, double v, int prec)
{
    if (isfinite(v)) snprintf(buf, cap, "%.*f", prec, v);
    else snprintf(buf, cap, "null");
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static const char *kind_name(bench_budget_kind k)
{
    static const char *const n[] = {"ram", "cache_size", "cache_experts", "mem"};
    return n[k];
}

/* Field names of csv/json, in order (docs/BENCH_FORMAT.md). */
static const char *const fields[] = {
    "model", "n_prompt", "n_gen", "reps", "threads", "budget", "budget_kind", "budget_value", "streamed",
    "cache_bytes", "cache_slots", "slots_per_layer", "policy", "prefetch", "lookahead", "prefetch_extra",
    "prefetch_min_prob", "io",
    "io_depth", "pp_tps", "pp_tps_sd", "tg_tps", "tg_tps_sd", "hit_rate", "pp_hit_rate", "prefetch_precision",
    "prefetch_recall", "stall_share", "tg_mb_per_token", "pp_mb", "pp_chunks", "pp_loads", "pp_distinct", "io_mb_s",
    "peak_rss_mib", "page_cache_dropped", "pp_hits", "pp_late_hits", "pp_misses", "pp_evictions", "pp_bytes_read", "pp_prefetches",
    "tg_hits", "tg_late_hits", "tg_misses", "tg_evictions", "tg_bytes_read", "tg_wait_ns", "tg_prefetches",
    "tg_prefetch_used", "tg_prefetch_dropped", "tg_prefetch_wasted", "tg_wasted_bytes", NULL,
};

/* Values of one row as strings (json: strings quoted, NaN as null). */
static void row_values(const bench_run *b, const bench_row *r, bool json, char vals[][160])
{
    bench_metrics m;
    bench_metrics_get(r, b->n_gen, &m);
    void (*num)(char *, size_t, double, int) = json ? fmt_json : fmt_num;
    int i = 0;
#define S(...) snprintf(vals[i++], 160, __VA_ARGS__)
#define U(x) S("%llu", (unsigned long long)(x))
    S("%s", b->mo.model);
    S("%d", b->n_prompt);
    S("%d", b->n_gen);
    S("%d", r->reps);
    S("%d", b->mo.n_threads ? b->mo.n_threads : mp_n_cpus());
    S("%s", r->set.label);
    S("%s", kind_name(r->set.kind));
    U(r->set.value);
    S("%s", r->streamed ? "true" : "false");
    U(r->cache_bytes);
    U(r->slots);
    if (r->streamed && r->n_moe_layers) num(vals[i++], 160, (double)r->slots / r->n_moe_layers, 2);
    else num(vals[i++], 160, NAN, 0);
    S("%s", r->policy_name ? r->policy_name : "-");
    S("%s", r->set.kind == BENCH_RAM ? "-" : mp_prefetch_kind_name(r->set.pf));
    S("%d", r->set.pf == MP_PREFETCH_LOOKAHEAD || r->set.pf == MP_PREFETCH_ORACLE ? r->set.lookahead : 0);
    S("%d", r->set.pf == MP_PREFETCH_LOOKAHEAD ? r->set.extra : 0);
    /* auto (1/k) as the value it resolved to */
    S("%g", r->set.pf != MP_PREFETCH_LOOKAHEAD ? 0.0
            : r->set.min_prob >= 0 ? (double)r->set.min_prob
            : r->n_expert_used ? 1.0 / r->n_expert_used : -1.0);
    S("%s", r->io_name);
    S("%d", r->streamed ? (r->set.io_depth ? r->set.io_depth : MP_IO_DEFAULT_DEPTH) : 0);
    num(vals[i++], 160, m.pp_tps, 3);
    num(vals[i++], 160, m.pp_tps_sd, 3);
    num(vals[i++], 160, m.tg_tps, 3);
    num(vals[i++], 160, m.tg_tps_sd, 3);
    num(vals[i++], 160, m.hit_rate, 6);
    num(vals[i++], 160, m.pp_hit_rate, 6);
    num(vals[i++], 160, m.precision, 6);
    num(vals[i++], 160, m.recall, 6);
    num(vals[i++], 160, m.stall_share, 6);
    num(vals[i++], 160, m.tg_mb_per_token, 6);
    num(vals[i++], 160, m.pp_mb, 6);
    U(r->pp_chunks);
    U(r->pp.loads);
    U(r->pp_distinct);
    num(vals[i++], 160, m.io_mb_s, 1);
    num(vals[i++], 160, m.peak_rss_mib, 1);
    S("%s", r->dropped ? "true" : "false");
    U(r->pp.hits);
    U(r->pp.late_hits);
    U(r->pp.misses);
    U(r->pp.evictions);
    U(r->pp.bytes_read);
    U(r->pp.prefetches);
    U(r->tg.hits);
    U(r->tg.late_hits);
    U(r->tg.misses);
    U(r->tg.evictions);
    U(r->tg.bytes_read);
    U(r->tg.wait_ns);
    U(r->tg.prefetches);
    U(r->tg.prefetch_used);
    U(r->tg.prefetch_dropped);
    U(r->tg.prefetch_wasted);
    U(r->tg.wasted_bytes);
#undef S
#undef U
}

static bool is_string_field(const char *f)
{
    static const char *const s[] = {"model", "budget", "budget_kind", "policy", "prefetch", "io", NULL};
    for (int i = 0; s[i]; i++)
        if (!strcmp(s[i], f)) return true;
    return false;
}

/* json only: decode precision and in-time recall per MoE layer (null where
 * undefined: no prefetch, or no demand). */
static void print_json_layers(const bench_row *r)
{
    for (int which = 0; which < 2; which++) {
        printf(", \"%s\": [", which ? "tg_layer_recall" : "tg_layer_precision");
        for (uint32_t l = 0; l < r->n_layers; l++) {
            double prec = NAN, rec = NAN;
            if (r->streamed && r->set.pf != MP_PREFETCH_NONE) mp_cache_prefetch_quality(&r->tg_layer[l], &prec, &rec);
            char v[32];
            fmt_json(v, sizeof v, which ? rec : prec, 6);
            printf("%s%s", l ? ", " : "", v);
        }
        printf("]");
    }
}

static void print_json(const bench_run *b, const bench_row *rows, int n, bool lines)
{
    char vals[64][160];
    if (!lines) printf("[\n");
    for (int r = 0; r < n; r++) {
        row_values(b, &rows[r], true, vals);
        printf("%s{", lines ? "" : "  ");
        for (int i = 0; fields[i]; i++) {
            printf("%s\"%s\": ", i ? ", " : "", fields[i]);
            if (is_string_field(fields[i])) json_str(stdout, vals[i]);
            else printf("%s", vals[i]);
        }
        print_json_layers(&rows[r]);
        printf("}%s\n", lines ? "" : (r + 1 < n ? "," : ""));
    }
    if (!lines) printf("]\n");
}

static void print_csv(const bench_run *b, const bench_row *rows, int n)
{
    char vals[64][160];
    for (int i = 0; fields[i]; i++) printf("%s%s", i ? "," : "", fields[i]);
    printf("\n");
    for (int r = 0; r < n; r++) {
        row_values(b, &rows[r], false, vals);
        /* strings quoted (RFC 4180), n/a values empty */
        for (int i = 0; fields[i]; i++) {
            if (i) putchar(',');
            if (is_string_field(fields[i])) {
                putchar('"');
                for (const char *c = vals[i]; *c; c++) {
                    if (*c == '"') putchar('"');
                    putchar(*c);
                }
                putchar('"');
            } else {
                fputs(strcmp(vals[i], "-") ? vals[i] : "", stdout);
            }
        }
        printf("\n");
    }
}

static void print_md(const bench_run *b, const bench_row *rows, int n)
{
    printf("| budget | cache | slots/layer | policy | prefetch | io depth | pp t/s | tg t/s | hit %% | prec %% | "
           "recall %% | stall %% | MB/tok | pp MB | pp loads/needed | I/O MB/s | peak RSS MiB |\n");
    printf("|---|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (int i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        bench_metrics m;
        bench_metrics_get(r, b->n_gen, &m);
        char cache[32] = "-", spl[16] = "-", pf[48], pp[48], tg[48], hit[16], prec[16], rec[16], stall[16], mbt[16],
             ppmb[16], rn[48] = "-", iob[16], depth[16] = "-";
        if (r->streamed) {
            mp_format_size(r->cache_bytes, cache, sizeof cache);
            fmt_num(spl, sizeof spl, r->n_moe_layers ? (double)r->slots / r->n_moe_layers : NAN, 1);
            snprintf(rn, sizeof rn, "%llu/%llu", (unsigned long long)r->pp.loads, (unsigned long long)r->pp_distinct);
            snprintf(depth, sizeof depth, "%d", r->set.io_depth ? r->set.io_depth : MP_IO_DEFAULT_DEPTH);
        }
        prefetch_label(&r->set, pf, sizeof pf);
        snprintf(pp, sizeof pp, "%.2f ± %.2f", m.pp_tps, m.pp_tps_sd);
        if (b->n_gen > 0) snprintf(tg, sizeof tg, "%.2f ± %.2f", m.tg_tps, m.tg_tps_sd);
        else snprintf(tg, sizeof tg, "-");
        fmt_num(hit, sizeof hit, m.hit_rate * 100, 1);
        fmt_num(prec, sizeof prec, m.precision * 100, 1);
        fmt_num(rec, sizeof rec, m.recall * 100, 1);
        fmt_num(stall, sizeof stall, m.stall_share * 100, 1);
        fmt_num(mbt, sizeof mbt, m.tg_mb_per_token, 2);
        fmt_num(ppmb, sizeof ppmb, m.pp_mb, 1);
        fmt_num(iob, sizeof iob, m.io_mb_s, 0);
        printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f |\n",
               r->set.label, cache, spl, r->policy_name ? r->policy_name : "-", pf, depth, pp, tg, hit, prec, rec,
               stall, mbt, ppmb, rn, iob, m.peak_rss_mib);
    }
}

/* ---- the sweep -------------------------------------------------------------- */

static void setting_desc(const bench_setting *s, char *buf, size_t cap)
{
    char pf[48];
    prefetch_label(s, pf, sizeof pf);
    if (s->kind == BENCH_RAM) snprintf(buf, cap, "all in RAM");
    else
        snprintf(buf, cap, "cache %s policy %s prefetch %s io-depth %d", s->label,
                 s->policy ? s->policy : mp_policy_default()->name, pf,
                 s->io_depth ? s->io_depth : MP_IO_DEFAULT_DEPTH);
}

/* Records the routing of the benchmark's tokens into path (an oracle for
 * later rows). Returns 0 or -1 after printing the error. */
static int record_routing(bench_run *b, const bench_setting *s, const char *path)
{
    fprintf(stderr, "moepager: recording the routing of %d + %d tokens into %s (for --prefetch oracle)\n",
            b->n_prompt, b->n_gen, path);
    return run_rep(b, s, NULL, path);
}

static int sweep(bench_run *b, const bench_setting *sets, int n, bench_row *rows, const char *trace_out,
                 char *tmp_trace, size_t tmp_cap)
{
    bool tty = isatty(STDERR_FILENO);
    for (int i = 0; i < n; i++) {
        memset(&rows[i], 0, sizeof rows[i]);
        rows[i].set = sets[i];
        rows[i].dropped = true;
        if (sets[i].kind != BENCH_RAM && (sets[i].pf == MP_PREFETCH_ORACLE || trace_out) && !b->oracle_trace) {
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
        char desc[160];
        setting_desc(&sets[i], desc, sizeof desc);
        for (int r = 0; r < b->reps; r++) {
            fprintf(stderr, "%s[%d/%d] %s rep %d/%d ...%s", tty ? "\r\033[K" : "", i + 1, n, desc, r + 1, b->reps,
                    tty ? "" : "\n");
            fflush(stderr);
            if (run_rep(b, &sets[i], &rows[i], NULL)) {
                if (tty) fputc('\n', stderr);
                return 1;
            }
        }
        bench_metrics m;
        bench_metrics_get(&rows[i], b->n_gen, &m);
        fprintf(stderr, "%s[%d/%d] %s: pp %.2f tok/s, tg %.2f tok/s%s", tty ? "\r\033[K" : "", i + 1, n, desc,
                m.pp_tps, m.tg_tps, tty ? "" : "\n");
    }
    if (tty) fputc('\n', stderr);
    return 0;
}

/* ---- options -------------------------------------------------------------- */

typedef struct bench_lists {
    char size_buf[1024], exp_buf[1024], mem_buf[1024], pol_buf[1024];
    const char *sizes[BENCH_MAX_LIST], *exps[BENCH_MAX_LIST], *mems[BENCH_MAX_LIST], *pols[BENCH_MAX_LIST];
    int n_sizes, n_exps, n_mems, n_pols;
    mp_prefetch_kind pfs[8];
    int n_pfs;
    int64_t lookaheads[BENCH_MAX_LIST], extras[BENCH_MAX_LIST], depths[BENCH_MAX_LIST];
    int n_lookaheads, n_extras, n_depths;
    float min_probs[BENCH_MAX_LIST];
    int n_min_probs;
} bench_lists;

static int take_str_list(const char *opt, const char *v, char *buf, size_t cap, const char **items, int *n)
{
    if (mp_parse_str_list(v, buf, cap, items, BENCH_MAX_LIST, n) != MP_OK)
        return cli_error("bench: %s: '%s' is not a comma-separated list (at most %d items)", opt, v, BENCH_MAX_LIST);
    return 0;
}

static int take_int_list(const char *opt, const char *v, int64_t lo, int64_t hi, int64_t *out, int *n)
{
    if (mp_parse_int_list(v, out, BENCH_MAX_LIST, n) != MP_OK)
        return cli_error("bench: %s: '%s' is not a comma-separated list of integers", opt, v);
    for (int i = 0; i < *n; i++)
        if (out[i] < lo || out[i] > hi)
            return cli_error("bench: %s: %lld is not in [%lld, %lld]", opt, (long long)out[i], (long long)lo,
                             (long long)hi);
    return 0;
}

static int take_prob_list(const char *opt, const char *v, float *out, int *n)
{
    char buf[256];
    const char *items[BENCH_MAX_LIST];
    if (mp_parse_str_list(v, buf, sizeof buf, items, BENCH_MAX_LIST, n) != MP_OK)
        return cli_error("bench: %s: '%s' is not a comma-separated list (at most %d items)", opt, v, BENCH_MAX_LIST);
    for (int i = 0; i < *n; i++) {
        if (!strcmp(items[i], "auto")) {
            out[i] = -1.0f;
            continue;
        }
        if (mp_parse_f32(items[i], &out[i]) != MP_OK || !(out[i] >= 0.0f && out[i] <= 1.0f))
            return cli_error("bench: %s: '%s' is not a probability in [0, 1] or auto", opt, items[i]);
    }
    return 0;
}

/* Builds every combination into sets (cap entries). Returns the count, or
 * -1 after printing an error. */
static int expand(const bench_lists *L, bench_setting *sets, int cap)
{
    bench_setting budgets[3 * BENCH_MAX_LIST + 1];
    int nb = 0;
    for (int i = 0; i < L->n_sizes; i++) {
        bench_setting s = {0};
        if (!strcmp(L->sizes[i], "ram")) {
            s.kind = BENCH_RAM;
            snprintf(s.label, sizeof s.label, "all in RAM");
        } else {
            s.kind = BENCH_CACHE_SIZE;
            if (mp_parse_size(L->sizes[i], &s.value) != MP_OK || !s.value)
                return cli_error("bench: --cache-size: '%s' is not a size (like 512M or 4G) or 'ram'", L->sizes[i]), -1;
            snprintf(s.label, sizeof s.label, "%s", L->sizes[i]);
        }
        budgets[nb++] = s;
    }
    for (int i = 0; i < L->n_exps; i++) {
        bench_setting s = {.kind = BENCH_CACHE_EXPERTS};
        int64_t v;
        if (mp_parse_i64(L->exps[i], &v) != MP_OK || v < 1 || v > (1 << 20))
            return cli_error("bench: --cache-experts: '%s' is not a count of experts per layer", L->exps[i]), -1;
        s.value = (uint64_t)v;
        snprintf(s.label, sizeof s.label, "%lld/layer", (long long)v);
        budgets[nb++] = s;
    }
    for (int i = 0; i < L->n_mems; i++) {
        bench_setting s = {.kind = BENCH_MEM};
        if (mp_parse_size(L->mems[i], &s.value) != MP_OK || !s.value)
            return cli_error("bench: --mem: '%s' is not a size (like 512M or 4G)", L->mems[i]), -1;
        snprintf(s.label, sizeof s.label, "mem %s", L->mems[i]);
        budgets[nb++] = s;
    }
    if (nb == 0) {
        budgets[0] = (bench_setting){.kind = BENCH_RAM};
        snprintf(budgets[0].label, sizeof budgets[0].label, "all in RAM");
        nb = 1;
    }
    int n = 0;
    for (int bi = 0; bi < nb; bi++) {
        if (budgets[bi].kind == BENCH_RAM) {
            if (n >= cap) goto too_many;
            sets[n++] = budgets[bi];
            continue;
        }
        for (int pi = 0; pi < (L->n_pols ? L->n_pols : 1); pi++)
            for (int di = 0; di < (L->n_depths ? L->n_depths : 1); di++)
                for (int fi = 0; fi < L->n_pfs; fi++) {
                    bool la = L->pfs[fi] == MP_PREFETCH_LOOKAHEAD;
                    bool ahead = la || L->pfs[fi] == MP_PREFETCH_ORACLE;
                    int nla = ahead ? L->n_lookaheads : 1, nex = la ? L->n_extras : 1, nmp = la ? L->n_min_probs : 1;
                    for (int li = 0; li < nla; li++)
                        for (int ei = 0; ei < nex; ei++)
                            for (int mi = 0; mi < nmp; mi++) {
                                if (n >= cap) goto too_many;
                                bench_setting s = budgets[bi];
                                s.policy = L->n_pols ? L->pols[pi] : NULL;
                                s.io_depth = L->n_depths ? (int)L->depths[di] : 0;
                                s.pf = L->pfs[fi];
                                s.lookahead = ahead ? (int)L->lookaheads[li] : 0;
                                s.extra = la ? (int)L->extras[ei] : 0;
                                s.min_prob = la ? L->min_probs[mi] : 0.0f;
                                sets[n++] = s;
                            }
                }
    }
    return n;
too_many:
    return cli_error("bench: more than %d combinations; sweep fewer values at once", cap), -1;
}

/* ---- --suggest ------------------------------------------------------------ */

/* A short sweep inside the --mem budget: the largest expert cache that fits,
 * half and a quarter of it, each with prefetch none and lookahead d = 1, 2
 * (plus the whole file mapped when it fits), then the recommendation: the
 * fastest decode, or a smaller cache if it is within 5% of it. */
static int suggest(bench_run *b, const bench_lists *L, uint64_t mem, const char *out_fmt)
{
    int rc = 1;
    mp_model *m = NULL;
    struct mp_pack *pack = NULL;
    mp_expert_loc *locs = NULL;
    bench_row *rows = NULL;
    mp_err err = {0};
    if (mp_model_open(b->mo.model, false, &m, &pack, &err) || mp_expert_locs_gguf(m, &locs, &err)) {
        cli_fail(&err);
        goto done;
    }
    if (!m->hp.n_expert) {
        cli_error("bench --suggest: %s has no routed experts: nothing to tune", b->mo.model);
        goto done;
    }
    mp_plan plan, mapped;
    mp_plan_opts po = {.mem = mem, .n_ctx = b->n_ctx, .n_batch = b->mo.n_batch, .n_threads = b->mo.n_threads};
    if (mp_plan_make(m, locs, &po, &plan, &err)) {
        cli_fail(&err);
        goto done;
    }
    mp_plan_opts pm = {.n_ctx = b->n_ctx, .n_batch = b->mo.n_batch, .n_threads = b->mo.n_threads};
    bool fits = mp_plan_make(m, locs, &pm, &mapped, NULL) == MP_OK && mapped.total <= mem;
    uint64_t min_cache = (uint64_t)plan.min_slots * plan.slot_bytes;

    bench_setting sets[16];
    int n = 0;
    if (fits) {
        sets[n] = (bench_setting){.kind = BENCH_RAM};
        snprintf(sets[n++].label, sizeof sets[0].label, "all in RAM");
    }
    uint64_t prev = 0;
    for (int q = 4; q >= 1; q /= 2) {
        /* whole MiB, so the recommended --cache-size reproduces the row */
        uint64_t mib = plan.cache_bytes / (uint64_t)q >> 20, c = mib << 20;
        if (c < min_cache || c == prev) continue;
        prev = c;
        for (int v = 0; v < 3; v++) {
            bench_setting s = {.kind = BENCH_CACHE_SIZE, .value = c};
            snprintf(s.label, sizeof s.label, "%lluM", (unsigned long long)mib);
            s.policy = L->n_pols ? L->pols[0] : NULL;
            s.io_depth = L->n_depths ? (int)L->depths[0] : 0;
            s.pf = v == 0 ? MP_PREFETCH_NONE : MP_PREFETCH_LOOKAHEAD;
            s.lookahead = v;
            s.min_prob = MP_DEFAULT_PREFETCH_MIN_PROB;
            sets[n++] = s;
        }
    }
    char memb[32], cb[32];
    mp_format_size(mem, memb, sizeof memb);
    mp_format_size(plan.cache_bytes, cb, sizeof cb);
    fprintf(stderr, "moepager: --mem %s leaves %s for the expert cache (%u slots of %.1f MB); %s; measuring %d settings\n",
            memb, cb, plan.slots, plan.slot_bytes / 1e6, fits ? "the whole model also fits mapped" : "the model does not fit mapped", n);
    if (!(rows = calloc((size_t)n, sizeof *rows))) {
        cli_error("out of memory");
        goto done;
    }
    char tmp[512] = "";
    if (sweep(b, sets, n, rows, NULL, tmp, sizeof tmp)) goto done;
    if (!strcmp(out_fmt, "csv")) print_csv(b, rows, n);
    else if (!strcmp(out_fmt, "json")) print_json(b, rows, n, false);
    else if (!strcmp(out_fmt, "jsonl")) print_json(b, rows, n, true);
    else print_md(b, rows, n);

    /* fastest overall, then the smallest cache within 5% of it */
    int best = -1;
    double best_tps = 0;
    for (int i = 0; i < n; i++) {
        bench_metrics mm;
        bench_metrics_get(&rows[i], b->n_gen, &mm);
        double t = b->n_gen > 0 ? mm.tg_tps : mm.pp_tps;
        if (isfinite(t) && t > best_tps) best_tps = t, best = i;
    }
    if (best < 0) {
        cli_error("bench --suggest: nothing could be measured");
        goto done;
    }
    int pick = best;
    for (int i = 0; i < n; i++) {
        bench_metrics mm;
        bench_metrics_get(&rows[i], b->n_gen, &mm);
        double t = b->n_gen > 0 ? mm.tg_tps : mm.pp_tps;
        if (rows[i].streamed && rows[pick].streamed && rows[i].cache_bytes < rows[pick].cache_bytes &&
            t >= 0.95 * best_tps)
            pick = i;
        else if (rows[i].streamed && !rows[pick].streamed && t >= 0.95 * best_tps)
            pick = i; /* streaming within 5% of mapped: keeps the page cache free */
    }
    bench_metrics pm_;
    bench_metrics_get(&rows[pick], b->n_gen, &pm_);
    const bench_row *r = &rows[pick];
    printf("\nrecommended for --mem %s on %s:\n", memb, b->mo.model);
    if (!r->streamed) {
        printf("  no budget flag: the whole model fits (mapped, %.1f MiB peak RSS) and is fastest: tg %.2f tok/s, pp %.2f tok/s\n",
               pm_.peak_rss_mib, pm_.tg_tps, pm_.pp_tps);
    } else {
        char pf[64] = "--prefetch none";
        if (r->set.pf == MP_PREFETCH_LOOKAHEAD) snprintf(pf, sizeof pf, "--prefetch lookahead --lookahead %d", r->set.lookahead);
        printf("  --cache-size %s %s\n", r->set.label, pf);
        printf("  measured: tg %.2f tok/s, pp %.2f tok/s, decode hit rate %.1f%%, stall share %.1f%%, %.2f MB read per token, "
               "peak RSS %.1f MiB\n",
               pm_.tg_tps, pm_.pp_tps, pm_.hit_rate * 100, pm_.stall_share * 100, pm_.tg_mb_per_token, pm_.peak_rss_mib);
    }
    if (pick != best) {
        bench_metrics bm;
        bench_metrics_get(&rows[best], b->n_gen, &bm);
        char pf[48];
        prefetch_label(&rows[best].set, pf, sizeof pf);
        printf("  (the fastest, %s with prefetch %s, gave %.2f tok/s: less than 5%% more for more memory)\n",
               rows[best].set.label, pf, bm.tg_tps);
    }
    printf("  rule: the fastest decode measured; a smaller cache wins when it is within 5%% of it\n");
    rc = 0;
done:
    free(rows);
    free(locs);
    mp_model_close(m, pack);
    return rc;
}

/* ---- main ------------------------------------------------------------------- */

int cmd_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            help();
            return 0;
        }
        if (!strcmp(argv[i], "--trace")) return bench_trace_main(argc, argv);
    }
    bench_run b = {.n_prompt = 512, .n_gen = 128, .reps = 3};
    bench_lists *L = calloc(1, sizeof *L);
    bench_setting *sets = NULL;
    bench_row *rows = NULL;
    char tmp_trace[512] = "";
    int rc = 1, n = 0;
    const char *out_fmt = "md", *plot = NULL;
    bool do_suggest = false, print_ids = false, p_set = false, n_set = false, r_set = false;
    if (!L) return cli_error("out of memory");
    L->pfs[0] = MP_DEFAULT_PREFETCH;
    L->n_pfs = 1;
    L->lookaheads[0] = MP_DEFAULT_LOOKAHEAD;
    L->n_lookaheads = 1;
    L->extras[0] = 0;
    L->n_extras = 1;
    L->min_probs[0] = MP_DEFAULT_PREFETCH_MIN_PROB;
    L->n_min_probs = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--cache-size") || !strcmp(a, "--cache-experts") || !strcmp(a, "--mem") ||
            !strcmp(a, "--policy") || !strcmp(a, "--prefetch") || !strcmp(a, "--lookahead") ||
            !strcmp(a, "--prefetch-extra") || !strcmp(a, "--prefetch-min-prob") || !strcmp(a, "--io-depth")) {
            if (!(v = cli_value(argc, argv, &i))) goto done;
            int bad = 0;
            if (!strcmp(a, "--cache-size")) bad = take_str_list(a, v, L->size_buf, sizeof L->size_buf, L->sizes, &L->n_sizes);
            else if (!strcmp(a, "--cache-experts")) bad = take_str_list(a, v, L->exp_buf, sizeof L->exp_buf, L->exps, &L->n_exps);
            else if (!strcmp(a, "--mem")) bad = take_str_list(a, v, L->mem_buf, sizeof L->mem_buf, L->mems, &L->n_mems);
            else if (!strcmp(a, "--policy")) {
                bad = take_str_list(a, v, L->pol_buf, sizeof L->pol_buf, L->pols, &L->n_pols);
                for (int k = 0; !bad && k < L->n_pols; k++)
                    if (!mp_policy_find(L->pols[k])) {
                        char names[256] = "";
                        for (const mp_policy_ops *const *p = mp_policy_list(); *p; p++)
                            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", names[0] ? ", " : "", (*p)->name);
                        bad = cli_error("bench: --policy: unknown replacement policy '%s' (%s)", L->pols[k], names);
                    }
            } else if (!strcmp(a, "--prefetch")) {
                char buf[256];
                const char *items[8];
                int k = 0;
                if (mp_parse_str_list(v, buf, sizeof buf, items, 8, &k) != MP_OK) {
                    bad = cli_error("bench: --prefetch: '%s' is not a list of none, lookahead, oracle", v);
                } else {
                    L->n_pfs = k;
                    for (int j = 0; !bad && j < k; j++)
                        if (mp_prefetch_kind_parse(items[j], &L->pfs[j]) != MP_OK)
                            bad = cli_error("bench: --prefetch: unknown predictor '%s' (none, lookahead, oracle)", items[j]);
                }
            } else if (!strcmp(a, "--lookahead")) bad = take_int_list(a, v, 1, 64, L->lookaheads, &L->n_lookaheads);
            else if (!strcmp(a, "--prefetch-extra")) bad = take_int_list(a, v, 0, 4096, L->extras, &L->n_extras);
            else if (!strcmp(a, "--prefetch-min-prob")) bad = take_prob_list(a, v, L->min_probs, &L->n_min_probs);
            else bad = take_int_list(a, v, 1, MP_IO_MAX_DEPTH, L->depths, &L->n_depths);
            if (bad) goto done;
            continue;
        }
        int r = cli_take_model_opt(&b.mo, argc, argv, &i);
        if (r < 0) goto done;
        if (r > 0) continue;
        if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(a, v, 1, 1 << 20, &b.n_prompt)) goto done;
            p_set = true;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(a, v, 0, 1 << 20, &b.n_gen)) goto done;
            n_set = true;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(a, v, 1, BENCH_MAX_REPS, &b.reps)) goto done;
            r_set = true;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out_fmt = cli_value(argc, argv, &i))) goto done;
            if (strcmp(out_fmt, "md") && strcmp(out_fmt, "csv") && strcmp(out_fmt, "json") && strcmp(out_fmt, "jsonl")) {
                cli_error("bench: -o: unknown format '%s' (md, csv, json, jsonl)", out_fmt);
                goto done;
            }
        } else if (!strcmp(a, "--plot")) {
            if (!(plot = cli_value(argc, argv, &i))) goto done;
            size_t len = strlen(plot);
            if (len < 4 || strcmp(plot + len - 4, ".svg")) {
                cli_error("bench: --plot: '%s': only SVG is written (name it FILE.svg)", plot);
                goto done;
            }
        } else if (!strcmp(a, "--suggest")) {
            do_suggest = true;
        } else if (!strcmp(a, "--print-ids")) {
            print_ids = true;
        } else if (!strcmp(a, "--per-layer") || !strcmp(a, "--global")) {
            cli_error("bench: %s applies to trace replay only (--trace FILE)", a);
            goto done;
        } else {
            cli_error("bench: unknown option '%s' (see moepager bench --help)", a);
            goto done;
        }
    }
    if (b.mo.fault) {
        cli_error("bench: --io-fault is for tests of run/logits, not for benchmarks");
        goto done;
    }
    if (cli_resolve_model(&b.mo)) goto done;
    b.oracle_trace = b.mo.oracle_trace;
    if (print_ids) {
        mp_model *m = NULL;
        struct mp_pack *pack = NULL;
        mp_err err = {0};
        if (mp_model_open(b.mo.model, false, &m, &pack, &err)) {
            cli_fail(&err);
            goto done;
        }
        for (int i = 0; i < b.n_prompt; i++) printf("%s%d", i ? "," : "", prompt_id(i, m->hp.n_vocab));
        printf("\n");
        mp_model_close(m, pack);
        rc = 0;
        goto done;
    }
    if (do_suggest) {
        if (L->n_mems != 1 || L->n_sizes || L->n_exps) {
            cli_error("bench --suggest: give one --mem SIZE (the budget to tune for) and no --cache-size/--cache-experts");
            goto done;
        }
        if (!p_set) b.n_prompt = 64;
        if (!n_set) b.n_gen = 32;
        if (!r_set) b.reps = 1;
        b.n_ctx = b.mo.n_ctx ? b.mo.n_ctx : ((b.n_prompt + b.n_gen + 255) / 256) * 256;
        uint64_t mem;
        if (mp_parse_size(L->mems[0], &mem) != MP_OK || !mem) {
            cli_error("bench: --mem: '%s' is not a size (like 512M or 4G)", L->mems[0]);
            goto done;
        }
        rc = suggest(&b, L, mem, out_fmt);
        goto done;
    }
    b.n_ctx = b.mo.n_ctx ? b.mo.n_ctx : ((b.n_prompt + b.n_gen + 255) / 256) * 256;
    if (b.n_ctx < b.n_prompt + b.n_gen) {
        cli_error("bench: -c %d is too small for -p %d plus -n %d", b.n_ctx, b.n_prompt, b.n_gen);
        goto done;
    }
    enum { CAP = 4096 };
    if (!(sets = calloc(CAP, sizeof *sets))) {
        cli_error("out of memory");
        goto done;
    }
    if ((n = expand(L, sets, CAP)) < 0) goto done;
    if (!(rows = calloc((size_t)n, sizeof *rows))) {
        cli_error("out of memory");
        goto done;
    }
    if (sweep(&b, sets, n, rows, b.mo.trace_out, tmp_trace, sizeof tmp_trace)) goto done;
    if (!strcmp(out_fmt, "csv")) print_csv(&b, rows, n);
    else if (!strcmp(out_fmt, "json")) print_json(&b, rows, n, false);
    else if (!strcmp(out_fmt, "jsonl")) print_json(&b, rows, n, true);
    else print_md(&b, rows, n);
    if (plot && bench_svg_write(plot, b.mo.model, rows, n, b.n_gen)) goto done;
    if (plot) fprintf(stderr, "moepager: wrote %s\n", plot);
    rc = 0;
done:
    if (tmp_trace[0]) unlink(tmp_trace);
    free(rows);
    free(sets);
    free(L);
    return rc;
}
