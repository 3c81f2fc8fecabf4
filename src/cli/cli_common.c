#include "cli.h"

#include <errno.h>
#include <stdint.h>
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
    "                       (--mem 0: map the whole file, as --mmap)\n"
    "  --mmap               map the whole file and never stream experts\n"
    "  --cache-size SIZE    expert cache size alone (instead of --mem)\n"
    "  --cache-experts N    expert cache of N experts per MoE layer (instead of --mem)\n"
    "  --vram SIZE          GPU memory budget: resident weights and KV cache first, the rest\n"
    "                       a VRAM expert cache (0: CPU only; default: most of the free VRAM\n"
    "                       when a CUDA device is present)\n"
    "  --gpu KIND           auto (default), cuda, cpu, or sim: the CPU posing as a device of\n"
    "                       --vram bytes (same output as the CPU; shows the tier's decisions)\n"
    "  --io KIND            expert reads: auto (io_uring, else pread), uring, pread\n"
    "  --io-depth N         reads in flight (default 16)\n"
    "  --io-timeout SECONDS end the run with an error when a read has not completed\n"
    "                       after this long (default 30)\n"
    "  --policy NAME        cache replacement policy: lfu-cycle (default), lfu-decay, lru,\n"
    "                       duel\n"
    "  --prefetch KIND      lookahead (default), none, oracle\n"
    "  --lookahead D        most layers ahead the router lookahead predicts (default 2)\n"
    "  --prefetch-extra M   also prefetch the next M experts by score (default 0)\n"
    "  --prefetch-min-prob P  a fixed rule instead of the adaptive one: lookahead prefetches\n"
    "                       a predicted expert only if its gate probability is at least P\n"
    "                       (0: all). Default auto: adaptive (it learns, per layer and\n"
    "                       distance, which picks get used, lets through those used at\n"
    "                       least half the time, and stops predicting where none are)\n"
    "  --prefetch-timing on|off  adaptive lookahead times decode tokens with and without\n"
    "                       its prefetches (in turns, blocks of 4 tokens) and keeps the\n"
    "                       faster, trying the other one block in 8 (default on, but off\n"
    "                       with --predictor; off: always predict)\n"
    "  --predictor FILE     lookahead guesses with a predictor trained on this model's hidden\n"
    "                       states (tools/train_predictor.py) where it has a net, and reaches\n"
    "                       the next token's first layers; a layer's guesses go when the net\n"
    "                       is sure of the whole layer (default: MODEL.predictor.gguf when\n"
    "                       it sits beside the model, MODEL being its path less .gguf)\n"
    "  --no-predictor       lookahead with the routers only, even with a predictor beside\n"
    "                       the model\n"
    "  --oracle-trace FILE  routing recorded by --trace-out of an identical run (oracle)\n"
    "  --trace-out FILE     record the routing (JSON lines: token_idx, layer, experts, gating_probs)\n"
    "  --hidden-out FILE    record, per token and MoE layer, the residual entering the FFN and the\n"
    "                       picks (binary; what tools/train_predictor.py trains on)\n"
    "  --routing-trace FILE replay recorded routing instead of the model's router: experts and\n"
    "                       weights of every position and MoE layer come from FILE (its\n"
    "                       sequences concatenated; docs/TRACE_FORMAT.md); the oracle uses it too\n"
    "  --routing-seq N      replay only sequence N of the routing trace (0 = the first)\n"
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

int cli_take_sampler_opt(mp_sampler_params *sp, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v;
    int n;
    if (!strcmp(a, "--temp")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_float(a, v, &sp->temp)) return -1;
    } else if (!strcmp(a, "--top-k")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 0, 1 << 24, &sp->top_k)) return -1;
    } else if (!strcmp(a, "--top-p")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_float(a, v, &sp->top_p)) return -1;
    } else if (!strcmp(a, "--min-p")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_float(a, v, &sp->min_p)) return -1;
    } else if (!strcmp(a, "--repeat-penalty")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_float(a, v, &sp->repeat_penalty)) return -1;
    } else if (!strcmp(a, "--repeat-last-n")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 0, 1 << 24, &sp->repeat_last_n)) return -1;
    } else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 0, INT32_MAX, &n)) return -1;
        sp->seed = (uint64_t)n;
    } else {
        return 0;
    }
    return 1;
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
    if (!strcmp(a, "--no-predictor")) {
        o->no_predictor = true;
        return 1;
    }
    if (!strcmp(a, "--mmap")) {
        o->mmap = true;
        return 1;
    }
    if (!strcmp(a, "--mem") && *i + 1 < argc && !strcmp(argv[*i + 1], "0")) {
        ++*i;
        o->mmap = true; /* --mem 0: no budget, map everything */
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
    if (!strcmp(a, "--vram")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (mp_parse_size(v, &o->vram) != MP_OK) {
            fprintf(stderr, "error: --vram: '%s' is not a size (like 6G, or 0 for CPU only)\n", v);
            return -1;
        }
        o->vram_given = true;
        return 1;
    }
    if (!strcmp(a, "--gpu")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->gpu = v;
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
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 1, MP_MAX_IO_DEPTH, &o->io_depth)) return -1;
        return 1;
    }
    if (!strcmp(a, "--io-timeout")) {
        float sec;
        if (!(v = cli_value(argc, argv, i)) || cli_parse_float(a, v, &sec)) return -1;
        if (!(sec > 0.0f && sec <= 86400.0f)) {
            fprintf(stderr, "error: %s: %s is not a number of seconds in (0, 86400]\n", a, v);
            return -1;
        }
        o->io_timeout_ms = (uint32_t)(sec * 1000.0f + 0.5f);
        if (o->io_timeout_ms == 0) o->io_timeout_ms = 1;
        return 1;
    }
    if (!strcmp(a, "--policy")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->policy = v;
        return 1;
    }
    if (!strcmp(a, "--prefetch")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (!mp_prefetch_known(v)) {
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
    if (!strcmp(a, "--prefetch-timing")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (strcmp(v, "on") && strcmp(v, "off")) {
            fprintf(stderr, "error: %s: '%s' is not on or off\n", a, v);
            return -1;
        }
        o->prefetch_no_timing = !strcmp(v, "off");
        o->prefetch_timing_on = !strcmp(v, "on");
        return 1;
    }
    if (!strcmp(a, "--prefetch-extra")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 0, 4096, &o->prefetch_extra)) return -1;
        return 1;
    }
    if (!strcmp(a, "--oracle-trace") || !strcmp(a, "--trace-out") || !strcmp(a, "--hidden-out") ||
        !strcmp(a, "--predictor")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (!strcmp(a, "--trace-out")) o->trace_out = v;
        else if (!strcmp(a, "--hidden-out")) o->hidden_out = v;
        else if (!strcmp(a, "--predictor")) o->predictor = v;
        else o->oracle_trace = v;
        return 1;
    }
    if (!strcmp(a, "--routing-trace")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->routing_trace = v;
        return 1;
    }
    if (!strcmp(a, "--routing-seq")) {
        if (!(v = cli_value(argc, argv, i)) || cli_parse_int(a, v, 0, INT32_MAX, &o->routing_seq)) return -1;
        o->has_routing_seq = true;
        return 1;
    }
    if (!strcmp(a, "--io-fault")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        o->fault = v;
        return 1;
    }
    return 0;
}

int cli_take_ckpt_opt(cli_model_opts *o, int argc, char **argv, int *i)
{
    if (strcmp(argv[*i], "--ctx-checkpoints")) return 0;
    const char *v = cli_value(argc, argv, i);
    return !v || cli_parse_int(argv[*i - 1], v, 0, MP_MAX_CHECKPOINTS, &o->n_ckpt) ? -1 : 1;
}

void cli_params(const cli_model_opts *o, mp_params *p)
{
    *p = mp_params_default();
    p->n_ctx = o->n_ctx;
    p->n_batch = o->n_batch;
    p->n_threads = o->n_threads;
    p->n_seq = o->n_seq;
    p->n_checkpoints = o->n_ckpt;
    p->mem = o->mem;
    p->cache_bytes = o->cache_bytes;
    p->cache_experts = (uint32_t)o->cache_experts;
    p->mmap = o->mmap;
    p->gpu = o->gpu;
    p->vram = o->vram;
    p->vram_given = o->vram_given;
    p->io = o->io;
    if (o->io_depth) p->io_depth = (uint32_t)o->io_depth;
    p->io_timeout_ms = o->io_timeout_ms;
    p->policy = o->policy;
    p->io_fault = o->fault;
    p->trace_out = o->trace_out;
    p->hidden_out = o->hidden_out;
    p->predictor = o->predictor;
    p->no_predictor = o->no_predictor;
    p->prefetch = o->prefetch;
    if (o->lookahead) p->lookahead = o->lookahead;
    p->prefetch_extra = o->prefetch_extra;
    if (o->has_min_prob) p->prefetch_min_prob = o->prefetch_min_prob;
    p->prefetch_no_timing = o->prefetch_no_timing;
    p->prefetch_timing_on = o->prefetch_timing_on;
    p->oracle_trace = o->oracle_trace;
    p->routing_trace = o->routing_trace;
    p->routing_one_seq = o->has_routing_seq;
    p->routing_seq = o->has_routing_seq ? (uint32_t)o->routing_seq : 0;
}

void cli_routing_line(const cli_model_opts *o, const mp_engine_info *in, const char *prefix, FILE *f)
{
    if (!in->routing_replayed) return;
    fprintf(f, "%srouting replayed from %s (", prefix, o->routing_trace);
    if (o->has_routing_seq) fprintf(f, "sequence %d", o->routing_seq);
    else fprintf(f, "%u sequence%s", in->routing_sequences, in->routing_sequences == 1 ? "" : "s concatenated");
    fprintf(f, ": positions 0..%lld; weights %s): not the model's own router\n", (long long)in->routing_positions - 1,
            in->routing_uniform ? "1/k where the trace has no gating_probs" : "from gating_probs");
}

mp_engine *cli_open_engine(const cli_model_opts *o, bool need_tokenizer, int n_ctx_override)
{
    mp_params p;
    cli_params(o, &p);
    p.need_tokenizer = need_tokenizer;
    if (!o->n_ctx && n_ctx_override > 0) p.n_ctx = n_ctx_override;
    mp_engine *e = NULL;
    mp_err err = {0};
    if (mp_engine_open(&e, o->model, &p, &err)) {
        cli_fail(&err);
        return NULL;
    }
    mp_engine_info in;
    mp_engine_get_info(e, &in);
    char plan[512];
    mp_plan_text(&in.plan, plan, sizeof plan);
    fprintf(stderr, "moepager: %s\n", plan);
    if (in.plan.streamed && in.io[0]) {
        fprintf(stderr, "moepager: experts stream from %s via %s%s, %u reads in flight, prefetch %s", o->model, in.io,
                in.io_direct ? " (O_DIRECT)" : " (buffered)", in.io_depth, in.prefetch);
        if (!strcmp(in.prefetch, "lookahead") && in.prefetch_min_prob_auto)
            fprintf(stderr, " (up to %d layer%s ahead, +%d extra, adaptive: picks go when picks like them were used%s)",
                    in.lookahead, in.lookahead > 1 ? "s" : "", in.prefetch_extra,
                    in.prefetch_timed ? "; timed: on while decode tokens are faster with it" : "");
        else if (!strcmp(in.prefetch, "lookahead"))
            fprintf(stderr, " (%d layer%s ahead, +%d extra, gate probability >= %g)", in.lookahead,
                    in.lookahead > 1 ? "s" : "", in.prefetch_extra, (double)in.prefetch_min_prob);
        fprintf(stderr, "\n");
    }
    cli_routing_line(o, &in, "moepager: ", stderr);
    if (in.preloaded)
        fprintf(stderr, "moepager: the cache holds every expert: preloaded %.1f MB at start\n", in.preload_bytes / 1e6);
    for (const char *line = mp_engine_notes(e); *line;) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        if (len) fprintf(stderr, "moepager: %.*s\n", len, line);
        line += len + (nl ? 1 : 0);
    }
    return e;
}

static void print_phase(const char *phase, const mp_expert_stats *st, double seconds, int n_tokens, bool prefetch)
{
    fprintf(stderr, "%s: %d token%s, stall %.2f ms/token, %.0f%% of the time waiting for I/O, %.1f MB/token read", phase,
            n_tokens, n_tokens == 1 ? "" : "s", n_tokens > 0 ? st->wait_ns / 1e6 / n_tokens : 0.0,
            seconds > 0 ? 100.0 * st->wait_ns / 1e9 / seconds : 0.0, n_tokens > 0 ? st->bytes_read / 1e6 / n_tokens : 0.0);
    if (prefetch) {
        double prec, rec;
        mp_expert_stats_rates(st, NULL, &prec, &rec);
        fprintf(stderr, "; prefetch: %llu loads, precision %.1f%%, in-time recall %.1f%%, %.1f MB wasted (%llu evicted unused)",
                (unsigned long long)st->prefetches, isnan(prec) ? 0.0 : 100 * prec, isnan(rec) ? 0.0 : 100 * rec,
                st->wasted_bytes / 1e6, (unsigned long long)st->prefetch_wasted);
    }
    fprintf(stderr, "\n");
}

void cli_print_phase_stats(mp_engine *e, double t_prompt, int n_prompt, double t_decode, int n_decode, bool per_layer)
{
    mp_stats st;
    mp_engine_stats(e, &st);
    if (st.n_tiers > 1 && st.tier[1].kind == MP_TIER_VRAM) {
        const mp_tier_stats *v = &st.tier[1];
        const uint64_t dem = v->experts.hits + v->experts.misses;
        fprintf(stderr,
                "vram: %.1f%% hits (%llu of %llu expert uses), %llu promoted (%.1f MB RAM->VRAM), %llu evicted; "
                "experts run on GPU %llu, CPU %llu; copy stall %.2f ms; %u slots of %.2f MiB\n",
                dem ? 100.0 * v->experts.hits / dem : 0.0, (unsigned long long)v->experts.hits, (unsigned long long)dem,
                (unsigned long long)v->experts.loads, v->experts.bytes_read / 1e6,
                (unsigned long long)v->experts.evictions, (unsigned long long)v->run_gpu,
                (unsigned long long)v->run_cpu, v->experts.wait_ns / 1e6, v->slots, v->slot_bytes / 1048576.0);
    }
    if (!st.streamed) return;
    mp_engine_info in;
    mp_engine_get_info(e, &in);
    const bool pf = strcmp(in.prefetch, "none") != 0;
    print_phase("experts, prompt", &st.phase[MP_PHASE_PREFILL], t_prompt, n_prompt, pf);
    if (n_decode > 0) print_phase("experts, decode", &st.phase[MP_PHASE_DECODE], t_decode, n_decode, pf);
    const uint64_t events = st.lookahead_computed + st.lookahead_skipped;
    if (events > 0)
        fprintf(stderr,
                "lookahead: guessed (router or net) for %.0f%% of %llu predictions (standing aside for the rest), "
                "%.1f%% of its %llu decode picks that needed a read were used, %.1f ms of CPU\n",
                100.0 * st.lookahead_computed / events, (unsigned long long)events,
                st.lookahead_checked ? 100.0 * st.lookahead_used / st.lookahead_checked : 0.0,
                (unsigned long long)st.lookahead_checked, st.lookahead_cpu_ns / 1e6);
    else if (st.lookahead_cpu_ns > 0)
        fprintf(stderr, "lookahead: %.1f ms of CPU\n", st.lookahead_cpu_ns / 1e6);
    const uint64_t *tt = st.lookahead_timed_tokens;
    if (tt[0] + tt[1] > 0)
        fprintf(stderr, "lookahead timing: on for %llu of %llu timed decode tokens (%llu pairs of neighbouring blocks compared)\n",
                (unsigned long long)tt[1], (unsigned long long)(tt[0] + tt[1]), (unsigned long long)st.lookahead_pairs);
    if (!per_layer || n_decode <= 0) return;
    const uint32_t L = st.n_layers;
    mp_expert_stats *now = calloc(L ? L : 1, sizeof *now);
    if (!now) return;
    mp_engine_layer_stats(e, MP_PHASE_DECODE, now, L);
    fprintf(stderr, "decode per MoE layer:\n%5s %8s %8s %6s %7s %10s %6s %9s %9s %10s %9s\n", "layer", "demands", "hits",
            "late", "misses", "prefetches", "used", "precision", "recall", "wasted MB", "wait ms");
    for (uint32_t l = 0; l < L; l++) {
        const mp_expert_stats *s = &now[l];
        const uint64_t dem = s->hits + s->late_hits + s->misses;
        if (dem == 0) continue; /* a dense layer: every decoded token demands k experts of each MoE layer */
        double prec, rec;
        mp_expert_stats_rates(s, NULL, &prec, &rec);
        char ps[16] = "-", rs[16] = "-";
        if (pf && !isnan(prec)) snprintf(ps, sizeof ps, "%.1f%%", 100 * prec);
        if (pf && !isnan(rec)) snprintf(rs, sizeof rs, "%.1f%%", 100 * rec);
        fprintf(stderr, "%5u %8llu %8llu %6llu %7llu %10llu %6llu %9s %9s %10.1f %9.1f\n", l, (unsigned long long)dem,
                (unsigned long long)s->hits, (unsigned long long)s->late_hits, (unsigned long long)s->misses,
                (unsigned long long)s->prefetches, (unsigned long long)s->prefetch_used, ps, rs, s->wasted_bytes / 1e6,
                s->wait_ns / 1e6);
    }
    free(now);
}

void cli_print_cache_stats(mp_engine *e, double seconds, int n_tokens)
{
    mp_stats s;
    mp_engine_stats(e, &s);
    if (!s.streamed) return;
    const mp_expert_stats *st = &s.total;
    /* Expert bytes per second of time the device had reads in flight:
     * the figure to set beside fio's random-read bandwidth. */
    double busy_s = s.io.busy_ns / 1e9;
    uint64_t demanded = st->hits + st->late_hits + st->misses;
    fprintf(stderr,
            "expert cache: %.1f%% hits (%llu hits, %llu misses, %llu evictions), %.1f MB read, %.1f MB/token, "
            "waited %.2f s for I/O (%.0f%% of %.2f s), I/O busy %.2f s, %.0f MB/s while busy\n",
            demanded ? 100.0 * (double)(st->hits + st->late_hits) / (double)demanded : 0.0, (unsigned long long)st->hits,
            (unsigned long long)st->misses, (unsigned long long)st->evictions, st->bytes_read / 1e6,
            n_tokens > 0 ? st->bytes_read / 1e6 / n_tokens : 0.0, st->wait_ns / 1e9,
            seconds > 0 ? 100.0 * st->wait_ns / 1e9 / seconds : 0.0, seconds, busy_s,
            busy_s > 0 ? st->bytes_read / 1e6 / busy_s : 0.0);
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
