/* moepager bench --trace FILE: replays a routing trace through the
 * replacement policies (trace/replay.h) for a list of cache sizes and prints
 * each hit rate beside Belady's optimum on the same accesses. With --io and
 * -m MODEL it also drives the real expert cache (mp_cache_request_layer /
 * mp_cache_wait_any) with real reads of that model's experts, using the
 * trace's expert ids, and reports the real cache's hit rate and MB/s. The
 * real cache is one slab shared by all layers, so its figures sit beside
 * the global-mode replay (capacity x trace layers slots). */
#include "bench_internal.h"
#include "cli.h"
#include "runtime/model_open.h"

#include "cache/policy.h"
#include "common/parse.h"
#include "common/sysinfo.h"
#include "io/io.h"
#include "model/model.h"
#include "runtime/plan.h"
#include "trace/replay.h"
#include "trace/trace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct real_res {
    bool ran;
    double hit_rate, mb_s, seconds;
    uint64_t bytes, loads;
} real_res;

typedef struct trace_io {
    const char *model_path;
    mp_io_kind kind;
    int depth;
    mp_model *m;
    struct mp_pack *pack;
    mp_expert_loc *locs;
    uint32_t *layer_map; /* trace layer -> model layer (MoE layers in order) */
    size_t *order;       /* records in replay order */
} trace_io;

static const mp_trace *g_sort_trace; /* qsort has no context argument */

static int rec_cmp(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const mp_trace_rec *x = &g_sort_trace->recs[i], *y = &g_sort_trace->recs[j];
    if (x->problem != y->problem) return x->problem < y->problem ? -1 : 1;
    if (x->token_idx != y->token_idx) return x->token_idx < y->token_idx ? -1 : 1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return (i > j) - (i < j);
}

/* Loads the model and checks that its shape covers the trace. */
static int trace_io_open(trace_io *tio, const mp_trace *t)
{
    mp_err err = {0};
    if (mp_model_open(tio->model_path, false, &tio->m, &tio->pack, &err) || mp_expert_locs_gguf(tio->m, &tio->locs, &err))
        return cli_fail(&err);
    const mp_hparams *hp = &tio->m->hp;
    if (!(tio->layer_map = calloc(t->n_layers + 1, sizeof *tio->layer_map)) ||
        !(tio->order = malloc((t->n_recs + 1) * sizeof *tio->order)))
        return cli_error("out of memory");
    uint32_t n_moe = 0;
    for (uint32_t l = 0; l < hp->n_layer && hp->n_expert; l++)
        if (tio->locs[(size_t)l * hp->n_expert].n_parts) {
            if (n_moe < t->n_layers) tio->layer_map[n_moe] = l;
            n_moe++;
        }
    if (n_moe < t->n_layers || hp->n_expert < t->n_experts)
        return cli_error("bench --trace --io: the trace has %u layers x %u experts but %s has %u MoE layers x %u experts "
                         "(give a model at least as large)",
                         t->n_layers, t->n_experts, tio->model_path, n_moe, hp->n_expert);
    for (size_t r = 0; r < t->n_recs; r++) tio->order[r] = r;
    g_sort_trace = t;
    qsort(tio->order, t->n_recs, sizeof *tio->order, rec_cmp);
    g_sort_trace = NULL;
    return 0;
}

static void trace_io_close(trace_io *tio)
{
    free(tio->order);
    free(tio->layer_map);
    free(tio->locs);
    mp_model_close(tio->m, tio->pack);
}

/* Replays the trace through a real cache of slots slots with real reads. */
static int run_real(trace_io *tio, const mp_trace *t, const mp_policy_ops *pol, uint32_t slots, real_res *res)
{
    int rc = 1;
    mp_err err = {0};
    mp_io *io = NULL;
    mp_cache *c = NULL;
    memset(res, 0, sizeof *res);
    mp_io_opts io_opts = {.depth = (unsigned)tio->depth};
    char note[512] = "";
    if (mp_io_open(tio->kind, tio->model_path, &io_opts, &io, note, sizeof note, &err)) return cli_fail(&err);
    if (note[0]) fprintf(stderr, "moepager: %s\n", note);
    mp_cache_config cc = {
        .n_layers = tio->m->hp.n_layer,
        .n_experts = tio->m->hp.n_expert,
        .locs = tio->locs,
        .n_slots = slots,
        .min_slots = t->k_max,
        .io = io,
        .policy = pol,
        .file_name = tio->model_path,
    };
    if (mp_cache_create(&cc, &c, NULL, 0, &err)) {
        mp_io_free(io);
        return cli_fail(&err);
    }
    mp_drop_path_cache(tio->model_path);
    double t0 = mp_time_s();
    uint32_t ex[MP_TRACE_MAX_K];
    for (size_t o = 0; o < t->n_recs; o++) {
        const mp_trace_rec *r = &t->recs[tio->order[o]];
        for (uint32_t i = 0; i < r->k; i++) ex[i] = t->experts[r->off + i];
        uint32_t layer = tio->layer_map[r->layer];
        if (mp_cache_request_layer(c, layer, ex, r->k, &err)) {
            cli_fail(&err);
            goto done;
        }
        mp_cache_ready rd;
        int w;
        while ((w = mp_cache_wait_any(c, &rd, &err)) == 1) mp_cache_release(c, rd.layer, rd.expert);
        if (w < 0) {
            cli_fail(&err);
            goto done;
        }
    }
    res->seconds = mp_time_s() - t0;
    mp_cache_stats st;
    mp_io_counters ioc;
    mp_cache_get_stats(c, &st, NULL, false);
    mp_io_get_counters(mp_cache_io(c), &ioc, false);
    uint64_t dem = st.hits + st.late_hits + st.misses;
    res->hit_rate = dem ? (double)(st.hits + st.late_hits) / (double)dem : NAN;
    res->bytes = st.bytes_read;
    res->loads = st.loads;
    res->mb_s = ioc.busy_ns ? st.bytes_read / 1e6 / (ioc.busy_ns / 1e9) : NAN;
    res->ran = true;
    rc = 0;
done:
    mp_cache_free(c);
    return rc;
}

static void help_trace(void)
{
    printf("usage: moepager bench --trace FILE [--cache-experts LIST] [--per-layer] [--global]\n"
           "                      [--policy LIST] [--io [auto|uring|pread] -m MODEL [--io-depth N]] [-o md|csv|json]\n\n"
           "Replays the routing trace (docs/TRACE_FORMAT.md) through each policy for each cache size\n"
           "(experts per layer; --global shares size x layers slots among all layers; default\n"
           "--per-layer) and prints the hit rate beside Belady's optimal offline policy on the same\n"
           "accesses. With --io, also runs the real expert cache with real reads of MODEL's experts\n"
           "(global: one slab of size x trace layers slots) and reports its hit rate and MB/s.\n");
}

int bench_trace_main(int argc, char **argv)
{
    const char *path = NULL, *out_fmt = "md";
    char pol_buf[1024];
    const char *pol_names[BENCH_MAX_LIST];
    int n_pols = 0, n_caps = 4;
    int64_t caps[BENCH_MAX_LIST] = {4, 8, 16, 32};
    bool per_layer = false, global = false, use_io = false;
    trace_io tio = {.kind = MP_IO_AUTO};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            help_trace();
            return 0;
        } else if (!strcmp(a, "--trace")) {
            if (!(path = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--cache-experts")) {
            if (!(v = cli_value(argc, argv, &i))) return 1;
            if (mp_parse_int_list(v, caps, BENCH_MAX_LIST, &n_caps) != MP_OK)
                return cli_error("bench: --cache-experts: '%s' is not a comma-separated list of counts", v);
            for (int k = 0; k < n_caps; k++)
                if (caps[k] < 1 || caps[k] > (1 << 20))
                    return cli_error("bench: --cache-experts: %lld is not in [1, %d]", (long long)caps[k], 1 << 20);
        } else if (!strcmp(a, "--per-layer")) {
            per_layer = true;
        } else if (!strcmp(a, "--global")) {
            global = true;
        } else if (!strcmp(a, "--policy")) {
            if (!(v = cli_value(argc, argv, &i))) return 1;
            if (mp_parse_str_list(v, pol_buf, sizeof pol_buf, pol_names, BENCH_MAX_LIST, &n_pols) != MP_OK)
                return cli_error("bench: --policy: '%s' is not a comma-separated list", v);
            for (int k = 0; k < n_pols; k++)
                if (!mp_policy_find(pol_names[k])) return cli_error("bench: --policy: unknown replacement policy '%s'", pol_names[k]);
        } else if (!strcmp(a, "--io")) {
            use_io = true;
            /* the backend is optional here: --io alone means auto */
            if (i + 1 < argc && mp_io_kind_parse(argv[i + 1], &tio.kind) == MP_OK) i++;
        } else if (!strcmp(a, "--io-depth")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(a, v, 1, MP_IO_MAX_DEPTH, &tio.depth)) return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(tio.model_path = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out_fmt = cli_value(argc, argv, &i))) return 1;
            if (strcmp(out_fmt, "md") && strcmp(out_fmt, "csv") && strcmp(out_fmt, "json"))
                return cli_error("bench: -o: unknown format '%s' (md, csv, json)", out_fmt);
        } else {
            return cli_error("bench --trace: unknown option '%s' (see moepager bench --trace x --help)", a);
        }
    }
    if (!path) return cli_error("bench: --trace needs a file");
    if (use_io && !tio.model_path) return cli_error("bench --trace --io: give the model to read with -m MODEL");
    if (!use_io && tio.model_path)
        return cli_error("bench --trace: -m is only used with --io (real reads); the replay needs no model");
    if (!per_layer && !global) per_layer = true;
    const mp_policy_ops *pols[BENCH_MAX_LIST];
    if (n_pols) {
        for (int k = 0; k < n_pols; k++) pols[k] = mp_policy_find(pol_names[k]);
    } else {
        for (const mp_policy_ops *const *p = mp_policy_list(); *p && n_pols < BENCH_MAX_LIST; p++) pols[n_pols++] = *p;
    }

    int rc = 1;
    mp_trace *t = NULL;
    mp_err err = {0};
    if (mp_trace_read(path, &t, &err)) return cli_fail(&err);
    if (t->n_recs == 0) {
        cli_error("%s: the trace has no records", path);
        goto done;
    }
    fprintf(stderr, "moepager: %s: %zu records, %u sequences, %u layers x %u experts, top-%u\n", path, t->n_recs,
            t->n_problems, t->n_layers, t->n_experts, t->k_max);
    if (use_io && trace_io_open(&tio, t)) goto done;

    if (!strcmp(out_fmt, "md")) {
        printf("| experts/layer | mode | policy | hit %% | Belady %% | gap (points) |%s\n",
               use_io ? " real cache slots | real hit % | real MB/s | real MB read |" : "");
        printf("|--:|---|---|--:|--:|--:|%s\n", use_io ? "--:|--:|--:|--:|" : "");
    } else if (!strcmp(out_fmt, "csv")) {
        printf("experts_per_layer,mode,policy,accesses,hits,hit_rate,belady_hits,belady_hit_rate%s\n",
               use_io ? ",real_slots,real_hit_rate,real_mb_s,real_bytes_read" : "");
    } else {
        printf("[\n");
    }
    bool first = true;
    for (int ci = 0; ci < n_caps; ci++)
        for (int mode = 0; mode < 2; mode++) {
            if ((mode == 0 && !per_layer) || (mode == 1 && !global)) continue;
            mp_replay_mode rm = mode ? MP_REPLAY_GLOBAL : MP_REPLAY_PER_LAYER;
            uint32_t cap = (uint32_t)caps[ci];
            mp_replay_stats bel;
            if (mp_trace_belady(t, cap, rm, &bel, &err)) {
                cli_fail(&err);
                goto done;
            }
            for (int pi = 0; pi < n_pols; pi++) {
                mp_replay_stats st;
                if (mp_trace_replay(t, pols[pi], cap, rm, &st, &err)) {
                    cli_fail(&err);
                    goto done;
                }
                real_res real = {0};
                uint64_t slots = (uint64_t)cap * t->n_layers;
                bool can_real = use_io && slots >= t->k_max && slots <= UINT32_MAX;
                if (can_real && run_real(&tio, t, pols[pi], (uint32_t)slots, &real)) goto done;
                double hr = st.accesses ? (double)st.hits / st.accesses : NAN;
                double br = bel.accesses ? (double)bel.hits / bel.accesses : NAN;
                const char *mname = mode ? "global" : "per-layer";
                if (!strcmp(out_fmt, "md")) {
                    printf("| %u | %s | %s | %.2f | %.2f | %.2f |", cap, mname, pols[pi]->name, hr * 100, br * 100,
                           (br - hr) * 100);
                    if (use_io && real.ran)
                        printf(" %llu | %.2f | %.0f | %.1f |", (unsigned long long)slots, real.hit_rate * 100, real.mb_s,
                               real.bytes / 1e6);
                    else if (use_io)
                        printf(" - | - | - | - |");
                    printf("\n");
                } else if (!strcmp(out_fmt, "csv")) {
                    printf("%u,%s,%s,%llu,%llu,%.6f,%llu,%.6f", cap, mname, pols[pi]->name,
                           (unsigned long long)st.accesses, (unsigned long long)st.hits, hr,
                           (unsigned long long)bel.hits, br);
                    if (use_io && real.ran)
                        printf(",%llu,%.6f,%.1f,%llu", (unsigned long long)slots, real.hit_rate, real.mb_s,
                               (unsigned long long)real.bytes);
                    else if (use_io)
                        printf(",,,,");
                    printf("\n");
                } else {
                    printf("%s  {\"experts_per_layer\": %u, \"mode\": \"%s\", \"policy\": \"%s\", \"accesses\": %llu, "
                           "\"hits\": %llu, \"hit_rate\": %.6f, \"belady_hits\": %llu, \"belady_hit_rate\": %.6f",
                           first ? "" : ",\n", cap, mname, pols[pi]->name, (unsigned long long)st.accesses,
                           (unsigned long long)st.hits, hr, (unsigned long long)bel.hits, br);
                    if (use_io && real.ran)
                        printf(", \"real_slots\": %llu, \"real_hit_rate\": %.6f, \"real_mb_s\": %.1f, "
                               "\"real_bytes_read\": %llu",
                               (unsigned long long)slots, real.hit_rate, real.mb_s, (unsigned long long)real.bytes);
                    printf("}");
                }
                first = false;
            }
        }
    if (!strcmp(out_fmt, "json")) printf("\n]\n");
    rc = 0;
done:
    if (use_io) trace_io_close(&tio);
    mp_trace_free(t);
    return rc;
}
