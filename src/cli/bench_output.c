/* moepager bench: what a row's counters mean (rates, means, labels, the
 * knee) and the writers: md (a table for people), csv, json (an array) and
 * jsonl (one object per line), all with the fields of docs/BENCH_FORMAT.md. */
#include "bench_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *bench_pf_name(bench_pf pf)
{
    return pf == BENCH_PF_LOOKAHEAD ? "lookahead" : pf == BENCH_PF_ORACLE ? "oracle" : "none";
}

int bench_pf_parse(const char *s, bench_pf *out)
{
    if (!strcmp(s, "none")) *out = BENCH_PF_NONE;
    else if (!strcmp(s, "lookahead")) *out = BENCH_PF_LOOKAHEAD;
    else if (!strcmp(s, "oracle")) *out = BENCH_PF_ORACLE;
    else return -1;
    return 0;
}

/* ---- derived figures ------------------------------------------------------ */

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
    const mp_expert_stats *t = &r->tg, *p = &r->pp;
    double dem = (double)(t->hits + t->late_hits + t->misses);
    m->hit_rate = ratio((double)(t->hits + t->late_hits), dem);
    m->pp_hit_rate = ratio((double)(p->hits + p->late_hits), (double)(p->hits + p->late_hits + p->misses));
    if (r->set.pf != BENCH_PF_NONE) mp_expert_stats_rates(t, NULL, &m->precision, &m->recall);
    m->stall_share = ratio(t->wait_ns / 1e9, r->tg_seconds);
    m->tg_mb_per_token = n_gen > 0 ? t->bytes_read / 1e6 / ((double)n_gen * r->reps) : NAN;
    m->pp_mb = p->bytes_read / 1e6 / r->reps;
    m->io_mb_s = ratio(r->io_bytes / 1e6, r->io_busy_ns / 1e9);
}

static bool same_but_prefetch(const bench_setting *a, const bench_setting *b)
{
    const char *pa = a->policy ? a->policy : "", *pb = b->policy ? b->policy : "";
    return a->kind == b->kind && a->value == b->value && !strcmp(pa, pb) && a->io_depth == b->io_depth &&
           a->vram_set == b->vram_set && (!a->vram_set || a->vram == b->vram);
}

void bench_vs_none(const bench_row *rows, int n, int i, int n_gen, bench_paired *out)
{
    *out = (bench_paired){NAN, NAN, 0, 0};
    const bench_row *r = &rows[i];
    if (n_gen <= 0 || r->set.kind == BENCH_RAM || r->set.pf == BENCH_PF_NONE) return;
    const bench_row *none = NULL;
    for (int j = 0; j < n && !none; j++)
        if (rows[j].set.pf == BENCH_PF_NONE && same_but_prefetch(&rows[j].set, &r->set)) none = &rows[j];
    if (!none) return;
    const int reps = r->reps < none->reps ? r->reps : none->reps;
    double d[BENCH_MAX_REPS];
    int k = 0;
    for (int q = 0; q < reps; q++)
        if (none->tg_tps[q] > 0 && isfinite(r->tg_tps[q])) {
            d[k] = r->tg_tps[q] / none->tg_tps[q] - 1.0;
            out->won += d[k] > 0;
            k++;
        }
    if (k == 0) return;
    out->rounds = k;
    out->mean = mean_of(d, k);
    if (k > 1) out->se = sd_of(d, k) / sqrt((double)k);
}

void bench_prefetch_label(const bench_setting *s, char *buf, size_t cap)
{
    if (s->kind == BENCH_RAM) snprintf(buf, cap, "-");
    else if (s->pf == BENCH_PF_LOOKAHEAD) {
        int k = snprintf(buf, cap, "lookahead d=%d", s->lookahead);
        if (s->extra && k >= 0 && (size_t)k < cap) k += snprintf(buf + k, cap - (size_t)k, " +%d", s->extra);
        if (k >= 0 && (size_t)k < cap) {
            if (s->min_prob < 0) snprintf(buf + k, cap - (size_t)k, " adaptive");
            else snprintf(buf + k, cap - (size_t)k, " p>=%g", (double)s->min_prob);
        }
    } else if (s->pf == BENCH_PF_ORACLE) snprintf(buf, cap, "oracle d=%d", s->lookahead);
    else snprintf(buf, cap, "%s", bench_pf_name(s->pf));
}

void bench_series_label(const bench_row *r, bool with_policy, bool with_depth, char *buf, size_t cap)
{
    char pf[48];
    bench_prefetch_label(&r->set, pf, sizeof pf);
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

/* ---- writers -------------------------------------------------------------- */

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
    "tg_prefetch_used", "tg_prefetch_dropped", "tg_prefetch_wasted", "tg_wasted_bytes", "routing", "tg_tps_reps",
    "tg_vs_none", "tg_vs_none_se", "tg_vs_none_won", NULL,
};

/* "model" (its own router), or the replayed trace: "FILE" or "FILE#seq N". */
static void routing_label(const bench_run *b, char *buf, size_t cap)
{
    if (!b->mo.routing_trace) snprintf(buf, cap, "model");
    else if (b->mo.has_routing_seq) snprintf(buf, cap, "%s#seq %d", b->mo.routing_trace, b->mo.routing_seq);
    else snprintf(buf, cap, "%s", b->mo.routing_trace);
}

/* Values of row ri as strings (json: strings quoted, NaN as null). */
#define VAL_CAP 2048 /* tg_tps_reps: up to BENCH_MAX_REPS numbers */
static char row_vals[64][VAL_CAP]; /* one row's values, for the csv and json writers */
static void row_values(const bench_run *b, const bench_row *rows, int n, int ri, bool json, char vals[][VAL_CAP])
{
    const bench_row *r = &rows[ri];
    bench_metrics m;
    bench_metrics_get(r, b->n_gen, &m);
    void (*num)(char *, size_t, double, int) = json ? fmt_json : fmt_num;
    int i = 0;
#define S(...) snprintf(vals[i++], VAL_CAP, __VA_ARGS__)
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
    if (r->streamed && r->n_moe_layers) num(vals[i++], VAL_CAP, (double)r->slots / r->n_moe_layers, 2);
    else num(vals[i++], VAL_CAP, NAN, 0);
    S("%s", r->policy_name ? r->policy_name : "-");
    S("%s", r->set.kind == BENCH_RAM ? "-" : bench_pf_name(r->set.pf));
    S("%d", r->set.pf == BENCH_PF_LOOKAHEAD || r->set.pf == BENCH_PF_ORACLE ? r->set.lookahead : 0);
    S("%d", r->set.pf == BENCH_PF_LOOKAHEAD ? r->set.extra : 0);
    /* auto (adaptive) as -1 */
    S("%g", r->set.pf != BENCH_PF_LOOKAHEAD ? 0.0 : r->set.min_prob >= 0 ? (double)r->set.min_prob : -1.0);
    S("%s", r->io_name);
    S("%d", r->streamed ? (r->set.io_depth ? r->set.io_depth : MP_DEFAULT_IO_DEPTH) : 0);
    num(vals[i++], VAL_CAP, m.pp_tps, 3);
    num(vals[i++], VAL_CAP, m.pp_tps_sd, 3);
    num(vals[i++], VAL_CAP, m.tg_tps, 3);
    num(vals[i++], VAL_CAP, m.tg_tps_sd, 3);
    num(vals[i++], VAL_CAP, m.hit_rate, 6);
    num(vals[i++], VAL_CAP, m.pp_hit_rate, 6);
    num(vals[i++], VAL_CAP, m.precision, 6);
    num(vals[i++], VAL_CAP, m.recall, 6);
    num(vals[i++], VAL_CAP, m.stall_share, 6);
    num(vals[i++], VAL_CAP, m.tg_mb_per_token, 6);
    num(vals[i++], VAL_CAP, m.pp_mb, 6);
    U(r->pp_chunks);
    U(r->pp.loads);
    U(r->pp_distinct);
    num(vals[i++], VAL_CAP, m.io_mb_s, 1);
    num(vals[i++], VAL_CAP, m.peak_rss_mib, 1);
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
    routing_label(b, vals[i++], VAL_CAP);
    /* the repetitions' decode tok/s, in order, separated by ';' (json: a string too) */
    char *reps = vals[i++];
    reps[0] = '\0';
    for (int q = 0, len = 0; b->n_gen > 0 && q < r->reps && len < VAL_CAP - 32; q++)
        len += snprintf(reps + len, (size_t)(VAL_CAP - len), "%s%.3f", q ? ";" : "", r->tg_tps[q]);
    bench_paired pr;
    bench_vs_none(rows, n, ri, b->n_gen, &pr);
    num(vals[i++], VAL_CAP, pr.mean, 6);
    num(vals[i++], VAL_CAP, pr.se, 6);
    if (pr.rounds) S("%d", pr.won);
    else num(vals[i++], VAL_CAP, NAN, 0);
#undef S
#undef U
}

static bool is_string_field(const char *f)
{
    static const char *const s[] = {"model", "budget", "budget_kind", "policy", "prefetch", "io", "routing",
                                    "tg_tps_reps", NULL};
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
            if (r->streamed && r->set.pf != BENCH_PF_NONE) mp_expert_stats_rates(&r->tg_layer[l], NULL, &prec, &rec);
            char v[32];
            fmt_json(v, sizeof v, which ? rec : prec, 6);
            printf("%s%s", l ? ", " : "", v);
        }
        printf("]");
    }
}

static void print_json(const bench_run *b, const bench_row *rows, int n, bool lines)
{
    if (!lines) printf("[\n");
    for (int r = 0; r < n; r++) {
        row_values(b, rows, n, r, true, row_vals);
        printf("%s{", lines ? "" : "  ");
        for (int i = 0; fields[i]; i++) {
            printf("%s\"%s\": ", i ? ", " : "", fields[i]);
            if (is_string_field(fields[i])) json_str(stdout, row_vals[i]);
            else printf("%s", row_vals[i]);
        }
        print_json_layers(&rows[r]);
        printf("}%s\n", lines ? "" : (r + 1 < n ? "," : ""));
    }
    if (!lines) printf("]\n");
}

static void print_csv(const bench_run *b, const bench_row *rows, int n)
{
    for (int i = 0; fields[i]; i++) printf("%s%s", i ? "," : "", fields[i]);
    printf("\n");
    for (int r = 0; r < n; r++) {
        row_values(b, rows, n, r, false, row_vals);
        /* strings quoted (RFC 4180), n/a values empty */
        for (int i = 0; fields[i]; i++) {
            if (i) putchar(',');
            if (is_string_field(fields[i])) {
                putchar('"');
                for (const char *c = row_vals[i]; *c; c++) {
                    if (*c == '"') putchar('"');
                    putchar(*c);
                }
                putchar('"');
            } else {
                fputs(strcmp(row_vals[i], "-") ? row_vals[i] : "", stdout);
            }
        }
        printf("\n");
    }
}

static void print_md(const bench_run *b, const bench_row *rows, int n)
{
    if (b->mo.routing_trace) {
        char rl[160];
        routing_label(b, rl, sizeof rl);
        printf("Routing replayed from %s (--routing-trace): not the model's own router.\n\n", rl);
    }
    printf("| budget | cache | slots/layer | policy | prefetch | io depth | pp t/s | tg t/s | tg vs none | hit %% | "
           "prec %% | recall %% | stall %% | MB/tok | pp MB | pp loads/needed | I/O MB/s | peak RSS MiB |\n");
    printf("|---|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (int i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        bench_metrics m;
        bench_metrics_get(r, b->n_gen, &m);
        char cache[32] = "-", spl[16] = "-", pf[48], pp[48], tg[48], vs[64] = "-", hit[16], prec[16], rec[16], stall[16], mbt[16],
             ppmb[16], rn[48] = "-", iob[16], depth[16] = "-";
        if (r->streamed) {
            mp_format_size(r->cache_bytes, cache, sizeof cache);
            fmt_num(spl, sizeof spl, r->n_moe_layers ? (double)r->slots / r->n_moe_layers : NAN, 1);
            snprintf(rn, sizeof rn, "%llu/%llu", (unsigned long long)r->pp.loads, (unsigned long long)r->pp_distinct);
            snprintf(depth, sizeof depth, "%d", r->set.io_depth ? r->set.io_depth : MP_DEFAULT_IO_DEPTH);
        }
        bench_prefetch_label(&r->set, pf, sizeof pf);
        snprintf(pp, sizeof pp, "%.2f ± %.2f", m.pp_tps, m.pp_tps_sd);
        if (b->n_gen > 0) snprintf(tg, sizeof tg, "%.2f ± %.2f", m.tg_tps, m.tg_tps_sd);
        else snprintf(tg, sizeof tg, "-");
        bench_paired pr;
        bench_vs_none(rows, n, i, b->n_gen, &pr);
        if (pr.rounds > 1)
            snprintf(vs, sizeof vs, "%+.1f%% ± %.1f (%d/%d)", pr.mean * 100, pr.se * 100, pr.won, pr.rounds);
        else if (pr.rounds == 1)
            snprintf(vs, sizeof vs, "%+.1f%%", pr.mean * 100);
        fmt_num(hit, sizeof hit, m.hit_rate * 100, 1);
        fmt_num(prec, sizeof prec, m.precision * 100, 1);
        fmt_num(rec, sizeof rec, m.recall * 100, 1);
        fmt_num(stall, sizeof stall, m.stall_share * 100, 1);
        fmt_num(mbt, sizeof mbt, m.tg_mb_per_token, 2);
        fmt_num(ppmb, sizeof ppmb, m.pp_mb, 1);
        fmt_num(iob, sizeof iob, m.io_mb_s, 0);
        printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f |\n",
               r->set.label, cache, spl, r->policy_name ? r->policy_name : "-", pf, depth, pp, tg, vs, hit, prec, rec,
               stall, mbt, ppmb, rn, iob, m.peak_rss_mib);
    }
}

void bench_print(const bench_run *b, const bench_row *rows, int n, const char *fmt)
{
    if (!strcmp(fmt, "csv")) print_csv(b, rows, n);
    else if (!strcmp(fmt, "json")) print_json(b, rows, n, false);
    else if (!strcmp(fmt, "jsonl")) print_json(b, rows, n, true);
    else print_md(b, rows, n);
}
