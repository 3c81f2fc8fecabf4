/* moepager bench: sweep cache sizes, policies, prefetch settings and I/O
 * depths like llama-bench sweeps its flags; one row per combination, each
 * repetition cold (a fresh engine, so the expert cache starts empty, and
 * the model file dropped from the page cache). Also --suggest
 * (bench_suggest.c) and --trace (routing-trace replay, bench_trace.c).
 * This file: the flags, the combinations they make, and the dispatch. */
#include "bench_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: moepager bench -m MODEL [--cache-size LIST] [--cache-experts LIST] [--mem LIST]\n"
           "                      [--policy LIST] [--prefetch LIST] [--lookahead LIST] [--prefetch-extra LIST]\n"
           "                      [--prefetch-min-prob LIST] [--io-depth LIST] [--vram LIST] [-p N] [-n N] [-r N] [-t N] [-o md|csv|json|jsonl] [--plot FILE.svg]\n"
           "       moepager bench --suggest -m MODEL --mem SIZE [-p N] [-n N] [-t N]\n"
           "       moepager bench --trace FILE [--cache-experts LIST] [--per-layer|--global] [--policy LIST]\n"
           "                      [--io [KIND] -m MODEL]\n\n"
           "Runs every combination of the comma-separated lists (--lookahead applies to lookahead\n"
           "and oracle, --prefetch-extra and --prefetch-min-prob to lookahead only) and prints one\n"
           "row per combination. Each\n"
           "repetition is cold: a fresh session (empty expert cache) and the model file dropped\n"
           "from the page cache. A repetition evaluates a prompt of -p deterministic token ids\n"
           "(see --print-ids) in chunks of -b, then -n greedy decode steps; prompt and decode are\n"
           "timed and counted separately. The combinations take turns, one repetition each per\n"
           "round (every other round in reverse order), so a machine whose speed drifts weighs\n"
           "on all of them alike, and each row's decode is also given against the 'none' row of\n"
           "its budget, round by round (tg vs none: mean, standard error, rounds won). Without any\n"
           "budget flag, or with 'ram' in --cache-size,\n"
           "a row runs with the whole model mapped (\"all in RAM\", the ceiling). 'oracle' in\n"
           "--prefetch first records the routing of the same tokens (kept in a temporary file,\n"
           "or in --trace-out FILE), then replays it.\n\n"
           "  --cache-size LIST    expert cache sizes, e.g. 256M,512M,1G,ram\n"
           "  --cache-experts LIST cache sizes in experts per MoE layer, e.g. 2,4\n"
           "  --mem LIST           whole-process budgets, e.g. 1G,2G\n"
           "  --policy LIST        replacement policies (lfu-cycle, lfu-decay, lru, duel)\n"
           "  --prefetch LIST      none, lookahead, oracle (default: lookahead)\n"
           "  --lookahead LIST     layers ahead for lookahead and oracle (default %d)\n"
           "  --prefetch-extra LIST extra experts by score for lookahead (default 0)\n"
           "  --prefetch-min-prob LIST  lookahead's fixed minimum gate probability, e.g. 0,0.5,auto (default auto: adaptive)\n"
           "  --io-depth LIST      reads in flight (default %d)\n"
           "  --vram LIST          GPU budgets (every row once per budget), e.g. 0,2G,6G (with --gpu)\n"
           "  -p, --n-prompt N     prompt tokens (default 512)\n"
           "  -n, --n-gen N        decode steps (default 128; 0: prompt only)\n"
           "  -r, --repetitions N  repetitions per row (default 3)\n"
           "  -o, --output FMT     md (default), csv, json (an array, one object per row), jsonl\n"
           "  --plot FILE.svg      gen tok/s and hit rate against cache size, one line per prefetch setting\n"
           "  --suggest            short sweep inside --mem; prints the recommended flags\n"
           "  --print-ids          print the prompt ids of -p (for moepager logits --ids) and exit\n"
           "  --trace FILE         replay a routing trace through the policies and Belady's optimum\n"
           "  -m, -t, -c, -b, --io, --oracle-trace, --trace-out as for moepager run:\n%s",
           mp_params_default().lookahead, MP_DEFAULT_IO_DEPTH, cli_model_opts_help);
}

/* ---- lists of values ----------------------------------------------------- */

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
                    bool la = L->pfs[fi] == BENCH_PF_LOOKAHEAD;
                    bool ahead = la || L->pfs[fi] == BENCH_PF_ORACLE;
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
    /* --vram LIST: the rows above once per VRAM budget, labelled */
    if (L->n_vrams > 0) {
        const int n0 = n;
        if ((int64_t)n0 * L->n_vrams > cap) goto too_many;
        for (int vi = L->n_vrams - 1; vi >= 0; vi--) {
            uint64_t v;
            if (mp_parse_size(L->vrams[vi], &v) != MP_OK)
                return cli_error("bench: --vram: '%s' is not a size (like 6G, or 0 for CPU only)", L->vrams[vi]), -1;
            for (int k = 0; k < n0; k++) {
                bench_setting s = sets[k];
                s.vram = v;
                s.vram_set = true;
                const size_t len = strlen(s.label);
                snprintf(s.label + len, sizeof s.label - len, ", vram %s", L->vrams[vi]);
                sets[vi * n0 + k] = s;
            }
        }
        n = n0 * L->n_vrams;
    }
    return n;
too_many:
    return cli_error("bench: more than %d combinations; sweep fewer values at once", cap), -1;
}

/* ---- main ------------------------------------------------------------------ */

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
    const mp_params defaults = mp_params_default();
    bench_pf_parse(mp_prefetch_name_at(0), &L->pfs[0]); /* the library's default predictor */
    L->n_pfs = 1;
    L->lookaheads[0] = defaults.lookahead;
    L->n_lookaheads = 1;
    L->extras[0] = 0;
    L->n_extras = 1;
    L->min_probs[0] = defaults.prefetch_min_prob;
    L->n_min_probs = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--cache-size") || !strcmp(a, "--cache-experts") || !strcmp(a, "--mem") ||
            !strcmp(a, "--policy") || !strcmp(a, "--prefetch") || !strcmp(a, "--lookahead") ||
            !strcmp(a, "--prefetch-extra") || !strcmp(a, "--prefetch-min-prob") || !strcmp(a, "--io-depth") ||
            !strcmp(a, "--vram")) {
            if (!(v = cli_value(argc, argv, &i))) goto done;
            int bad = 0;
            if (!strcmp(a, "--cache-size")) bad = take_str_list(a, v, L->size_buf, sizeof L->size_buf, L->sizes, &L->n_sizes);
            else if (!strcmp(a, "--cache-experts")) bad = take_str_list(a, v, L->exp_buf, sizeof L->exp_buf, L->exps, &L->n_exps);
            else if (!strcmp(a, "--mem")) bad = take_str_list(a, v, L->mem_buf, sizeof L->mem_buf, L->mems, &L->n_mems);
            else if (!strcmp(a, "--vram")) bad = take_str_list(a, v, L->vram_buf, sizeof L->vram_buf, L->vrams, &L->n_vrams);
            else if (!strcmp(a, "--policy")) {
                bad = take_str_list(a, v, L->pol_buf, sizeof L->pol_buf, L->pols, &L->n_pols);
                for (int k = 0; !bad && k < L->n_pols; k++)
                    if (!mp_policy_known(L->pols[k])) {
                        char names[256] = "";
                        for (size_t q = 0; mp_policy_name_at(q); q++)
                            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", names[0] ? ", " : "",
                                     mp_policy_name_at(q));
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
                        if (bench_pf_parse(items[j], &L->pfs[j]))
                            bad = cli_error("bench: --prefetch: unknown predictor '%s' (none, lookahead, oracle)", items[j]);
                }
            } else if (!strcmp(a, "--lookahead")) bad = take_int_list(a, v, 1, 64, L->lookaheads, &L->n_lookaheads);
            else if (!strcmp(a, "--prefetch-extra")) bad = take_int_list(a, v, 0, 4096, L->extras, &L->n_extras);
            else if (!strcmp(a, "--prefetch-min-prob")) bad = take_prob_list(a, v, L->min_probs, &L->n_min_probs);
            else bad = take_int_list(a, v, 1, MP_MAX_IO_DEPTH, L->depths, &L->n_depths);
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
        mp_model_info mi;
        mp_err err = {0};
        if (mp_model_inspect(b.mo.model, NULL, &mi, &err)) {
            cli_fail(&err);
            goto done;
        }
        for (int i = 0; i < b.n_prompt; i++) printf("%s%d", i ? "," : "", bench_prompt_id(i, mi.n_vocab));
        printf("\n");
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
        rc = bench_suggest(&b, L, mem, out_fmt);
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
    if (bench_sweep(&b, sets, n, rows, b.mo.trace_out, tmp_trace, sizeof tmp_trace)) goto done;
    bench_print(&b, rows, n, out_fmt);
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
