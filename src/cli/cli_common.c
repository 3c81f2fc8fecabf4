#include "cli.h"

#include "common/parse.h"
#include "io/io.h"
#include "runtime/session.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MP_DEMO_MODEL
#define MP_DEMO_MODEL ""
#endif

const char *const cli_model_opts_help =
    "  -m, --model FILE     model (GGUF); default: the demo model the build generated\n"
    "  -t, --threads N      threads (default: all cores)\n"
    "  -c, --ctx-size N     context length in tokens (default: min(model's, 4096))\n"
    "  -b, --batch-size N   tokens per prefill chunk (default: 512)\n"
    "  --mem SIZE           memory budget for the whole process (e.g. 1536M, 4G): stream\n"
    "                       routed experts from disk through an expert cache that fits\n"
    "  --cache-size SIZE    expert cache size alone (instead of --mem)\n"
    "  --cache-experts N    expert cache of N experts per MoE layer (instead of --mem)\n"
    "  --io KIND            expert reads: auto (io_uring, else pread), uring, pread\n"
    "  --io-depth N         reads in flight (default 16)\n"
    "  --io-timeout SECONDS  fail the run when no read completes for this long (default 30)\n"
    "  --policy NAME        cache replacement policy: lfu-decay (default), lru\n"
    "  --prefetch KIND      lookahead (default), none, oracle\n"
    "  --lookahead D        layers ahead the router lookahead predicts (default 2)\n"
    "  --prefetch-extra M   also prefetch the next M experts by score (default 0)\n"
    "  --prefetch-min-prob P  lookahead prefetches a predicted expert only if its gate\n"
    "                       probability is at least P, extras included (default auto: 1/k,\n"
    "                       k the experts used per token; 0: all)\n"
    "  --oracle-trace FILE  routing recorded by --trace-out of an identical run (oracle)\n"
    "  --trace-out FILE     record the routing (JSON lines: token_idx, layer, experts, gating_probs)\n"
    "  --layer-stats        after the run, a table of the decode's expert cache and prefetch\n"
    "                       statistics per MoE layer\n";

bool cli_is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "error: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_parse_int(const char *opt, const char *s, int64_t lo, int64_t hi, int *out)
{
    int64_t v;
    if (mp_parse_i64(s, &v) != MP_OK || v < lo || v > hi) {
        fprintf(stderr, "error: %s: '%s' is not an integer in [%lld, %lld]\n", opt, s, (long long)lo, (long long)hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, float *out)
{
    if (mp_parse_f32(s, out) != MP_OK) {
        fprintf(stderr, "error: %s: '%s' is not a number\n", opt, s);
        return -1;
    }
    return 0;
}

int cli_take_model_opt(cli_model_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->model = v;
        return 1;
    }
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 1, 1024, &o->n_threads)) return -1;
        return 1;
    }
    if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 1, 1 << 24, &o->n_ctx)) return -1;
        return 1;
    }
    if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 1, 1 << 16, &o->n_batch)) return -1;
        return 1;
    }
    if (!strcmp(a, "--mem") || !strcmp(a, "--cache-size")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        uint64_t b;
        if (mp_parse_size(v, &b) != MP_OK || b == 0) {
            fprintf(stderr, "error: %s: '%s' is not a size (like 512M or 4G)\n", a, v);
            return -1;
        }
        if (!strcmp(a, "--mem")) o->mem = b;
        else o->cache_bytes = b;
        return 1;
    }
    if (!strcmp(a, "--cache-experts")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 1, 1 << 20, &o->cache_experts)) return -1;
        return 1;
    }
    if (!strcmp(a, "--io")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->io = v;
        return 1;
    }
    if (!strcmp(a, "--io-depth")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 1, 1024, &o->io_depth)) return -1;
        return 1;
    }
    if (!strcmp(a, "--io-timeout")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 1, 86400, &o->io_timeout_s)) return -1;
        return 1;
    }
    if (!strcmp(a, "--policy")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->policy = v;
        return 1;
    }
    if (!strcmp(a, "--prefetch")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        mp_prefetch_kind k;
        if (mp_prefetch_kind_parse(v, &k) != MP_OK) {
            fprintf(stderr, "error: --prefetch: unknown predictor '%s' (none, lookahead, oracle)\n", v);
            return -1;
        }
        o->prefetch = v;
        return 1;
    }
    if (!strcmp(a, "--lookahead")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 1, 64, &o->lookahead)) return -1;
        return 1;
    }
    if (!strcmp(a, "--layer-stats")) {
        o->layer_stats = true;
        return 1;
    }
    if (!strcmp(a, "--prefetch-min-prob")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (!strcmp(v, "auto")) o->prefetch_min_prob = -1.0f;
        else if (cli_parse_float(a, v, &o->prefetch_min_prob)) return -1;
        else if (!(o->prefetch_min_prob >= 0.0f && o->prefetch_min_prob <= 1.0f)) {
            fprintf(stderr, "error: %s: %s is not a probability in [0, 1]\n", a, v);
            return -1;
        }
        o->has_min_prob = true;
        return 1;
    }
    if (!strcmp(a, "--prefetch-extra")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 0, 4096, &o->prefetch_extra)) return -1;
        return 1;
    }
    if (!strcmp(a, "--oracle-trace") || !strcmp(a, "--trace-out")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (!strcmp(a, "--trace-out")) o->trace_out = v;
        else o->oracle_trace = v;
        return 1;
    }
    if (!strcmp(a, "--io-fault")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->fault = v;
        return 1;
    }
    return 0;
}

void cli_session_params(const cli_model_opts *o, mp_session_params *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->model_path = o->model;
    sp->n_ctx = o->n_ctx;
    sp->n_batch = o->n_batch;
    sp->n_threads = o->n_threads;
    sp->mem = o->mem;
    sp->cache_bytes = o->cache_bytes;
    sp->cache_experts = (uint32_t)o->cache_experts;
    sp->io = o->io;
    sp->io_depth = (unsigned)o->io_depth;
    sp->io_timeout_ms = (uint32_t)o->io_timeout_s * 1000u;
    sp->policy = o->policy;
    sp->fault_spec = o->fault;
    sp->trace_out = o->trace_out;
    if (o->prefetch || o->lookahead || o->prefetch_extra || o->has_min_prob || o->oracle_trace) {
        sp->prefetch_set = true;
        sp->prefetch.kind = MP_PREFETCH_LOOKAHEAD;
        if (o->prefetch) mp_prefetch_kind_parse(o->prefetch, &sp->prefetch.kind);
        else if (o->oracle_trace) sp->prefetch.kind = MP_PREFETCH_ORACLE;
        sp->prefetch.lookahead = o->lookahead ? o->lookahead : MP_DEFAULT_LOOKAHEAD;
        sp->prefetch.extra = o->prefetch_extra;
        sp->prefetch.min_prob = o->has_min_prob ? o->prefetch_min_prob : MP_DEFAULT_PREFETCH_MIN_PROB;
        sp->prefetch.oracle_trace = o->oracle_trace;
    }
}

mp_session *cli_open_session(const cli_model_opts *o, bool need_tokenizer, int n_ctx_override)
{
    mp_session_params sp;
    cli_session_params(o, &sp);
    sp.need_tokenizer = need_tokenizer;
    if (!o->n_ctx && n_ctx_override > 0) sp.n_ctx = n_ctx_override;
    mp_session *s = NULL;
    mp_err err = {0};
    if (mp_session_open(&s, &sp, &err)) {
        cli_fail(&err);
        return NULL;
    }
    char plan[512];
    mp_plan_describe(&s->plan, plan, sizeof plan);
    fprintf(stderr, "moepager: %s\n", plan);
    if (s->cache) {
        mp_io *io = mp_cache_io(s->cache);
        fprintf(stderr, "moepager: experts stream from %s via %s%s, %u reads in flight, prefetch %s", o->model,
                mp_io_name(io), mp_io_is_direct(io) ? " (O_DIRECT)" : " (buffered)", mp_io_depth(io),
                mp_prefetch_kind_name(s->prefetch.kind));
        if (s->prefetch.kind == MP_PREFETCH_LOOKAHEAD)
            fprintf(stderr, " (%d layer%s ahead, +%d extra, gate probability >= %g%s)", s->prefetch.lookahead,
                    s->prefetch.lookahead > 1 ? "s" : "", s->prefetch.extra, (double)mp_predict_min_prob(s->pred),
                    s->prefetch.min_prob < 0 ? " = 1/k" : "");
        fprintf(stderr, "\n");
    }
    if (s->preloaded)
        fprintf(stderr, "moepager: the cache holds every expert: preloaded %.1f MB at start\n",
                s->preload_stats.bytes_read / 1e6);
    for (char *line = s->note; *line;) {
        char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        if (len) fprintf(stderr, "moepager: %.*s\n", len, line);
        line += len + (nl ? 1 : 0);
    }
    return s;
}

void cli_stats_mark_take(mp_session *s, cli_stats_mark *mark)
{
    mark->layers = NULL;
    if (!s->cache) return;
    mark->layers = calloc(s->model->hp.n_layer, sizeof(mp_cache_stats));
    if (mark->layers) mp_cache_get_stats(s->cache, NULL, mark->layers, false);
}

void cli_stats_mark_free(cli_stats_mark *mark)
{
    free(mark->layers);
    mark->layers = NULL;
}

static void print_phase(const char *phase, const mp_cache_stats *st, double seconds, int n_tokens, bool prefetch)
{
    fprintf(stderr, "%s: %d token%s, stall %.2f ms/token, %.0f%% of the time waiting for I/O, %.1f MB/token read", phase,
            n_tokens, n_tokens == 1 ? "" : "s", n_tokens > 0 ? st->wait_ns / 1e6 / n_tokens : 0.0,
            seconds > 0 ? 100.0 * st->wait_ns / 1e9 / seconds : 0.0, n_tokens > 0 ? st->bytes_read / 1e6 / n_tokens : 0.0);
    if (prefetch) {
        double prec, rec;
        mp_cache_prefetch_quality(st, &prec, &rec);
        fprintf(stderr, "; prefetch: %llu loads, precision %.1f%%, in-time recall %.1f%%, %.1f MB wasted (%llu evicted unused)",
                (unsigned long long)st->prefetches, isnan(prec) ? 0.0 : 100 * prec, isnan(rec) ? 0.0 : 100 * rec,
                st->wasted_bytes / 1e6, (unsigned long long)st->prefetch_wasted);
    }
    fprintf(stderr, "\n");
}

void cli_print_phase_stats(mp_session *s, const cli_stats_mark *mark, double t_prompt, int n_prompt, double t_decode,
                           int n_decode, bool per_layer)
{
    if (!s->cache || !mark->layers) return;
    const uint32_t L = s->model->hp.n_layer;
    mp_cache_stats *now = calloc(L, sizeof *now);
    if (!now) return;
    mp_cache_get_stats(s->cache, NULL, now, false);
    const mp_cache_stats *at = mark->layers;
    mp_cache_stats pp = {0}, tg = {0};
    for (uint32_t l = 0; l < L; l++) {
        mp_cache_stats_add(&pp, &at[l]);
        mp_cache_stats_sub(&now[l], &at[l]); /* now: the decode phase */
        mp_cache_stats_add(&tg, &now[l]);
    }
    const bool pf = s->prefetch.kind != MP_PREFETCH_NONE;
    print_phase("experts, prompt", &pp, t_prompt, n_prompt, pf);
    if (n_decode > 0) print_phase("experts, decode", &tg, t_decode, n_decode, pf);
    if (per_layer && n_decode > 0) {
        fprintf(stderr, "decode per MoE layer:\n%5s %8s %8s %6s %7s %10s %6s %9s %9s %10s %9s\n", "layer", "demands", "hits",
                "late", "misses", "prefetches", "used", "precision", "recall", "wasted MB", "wait ms");
        for (uint32_t l = 0; l < L; l++) {
            const mp_cache_stats *st = &now[l];
            const uint64_t dem = st->hits + st->late_hits + st->misses;
            if (!mp_layer_is_moe(&s->model->layers[l])) continue;
            double prec, rec;
            mp_cache_prefetch_quality(st, &prec, &rec);
            char ps[16] = "-", rs[16] = "-";
            if (pf && !isnan(prec)) snprintf(ps, sizeof ps, "%.1f%%", 100 * prec);
            if (pf && !isnan(rec)) snprintf(rs, sizeof rs, "%.1f%%", 100 * rec);
            fprintf(stderr, "%5u %8llu %8llu %6llu %7llu %10llu %6llu %9s %9s %10.1f %9.1f\n", l, (unsigned long long)dem,
                    (unsigned long long)st->hits, (unsigned long long)st->late_hits, (unsigned long long)st->misses,
                    (unsigned long long)st->prefetches, (unsigned long long)st->prefetch_used, ps, rs,
                    st->wasted_bytes / 1e6, st->wait_ns / 1e6);
        }
    }
    free(now);
}

void cli_print_cache_stats(mp_session *s, double seconds, int n_tokens)
{
    if (!s->cache) return;
    mp_cache_stats st;
    mp_cache_get_stats(s->cache, &st, NULL, false);
    /* Expert bytes per second of time the device had reads in flight:
     * the figure to set beside fio's random-read bandwidth. */
    mp_io_counters ioc;
    mp_io_get_counters(mp_cache_io(s->cache), &ioc, false);
    double busy_s = ioc.busy_ns / 1e9;
    uint64_t demanded = st.hits + st.late_hits + st.misses;
    fprintf(stderr,
            "expert cache: %.1f%% hits (%llu hits, %llu misses, %llu evictions), %.1f MB read, %.1f MB/token, "
            "waited %.2f s for I/O (%.0f%% of %.2f s), I/O busy %.2f s, %.0f MB/s while busy\n",
            demanded ? 100.0 * (double)(st.hits + st.late_hits) / (double)demanded : 0.0, (unsigned long long)st.hits,
            (unsigned long long)st.misses, (unsigned long long)st.evictions, st.bytes_read / 1e6,
            n_tokens > 0 ? st.bytes_read / 1e6 / n_tokens : 0.0, st.wait_ns / 1e9,
            seconds > 0 ? 100.0 * st.wait_ns / 1e9 / seconds : 0.0, seconds, busy_s,
            busy_s > 0 ? st.bytes_read / 1e6 / busy_s : 0.0);
}

int cli_resolve_model(cli_model_opts *o)
{
    if (o->model) return 0;
    if (MP_DEMO_MODEL[0] && access(MP_DEMO_MODEL, R_OK) == 0) {
        o->model = MP_DEMO_MODEL;
        fprintf(stderr, "moepager: no -m given, using the demo model %s\n", MP_DEMO_MODEL);
        return 0;
    }
    fprintf(stderr, "error: no model: give one with -m FILE.gguf\n");
    return -1;
}

int cli_fail(const mp_err *err)
{
    if (err && err->msg[0]) fprintf(stderr, "error: %s\n", err->msg);
    else fprintf(stderr, "error: %s\n", mp_strerror(err ? err->status : MP_E_INVAL));
    return 1;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool bad = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || bad) {
        fprintf(stderr, "error: %s: %s\n", path, buf ? "read error" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}
