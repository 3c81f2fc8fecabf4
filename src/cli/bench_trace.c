/* moepager bench --trace FILE: replays a routing trace through the
 * replacement policies (mp_trace_replay_policy) for a list of cache sizes and
 * prints each hit rate beside Belady's optimum on the same accesses. With
 * --io and -m MODEL it also drives the real expert cache (mp_trace_io_run)
 * with real reads of that model's experts, using the trace's expert ids, and reports the real cache's hit rate and MB/s. The
 * real cache is one slab shared by all layers, so its figures sit beside
 * the global-mode replay (capacity x trace layers slots). */
#include "bench_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    const char *path = NULL, *out_fmt = "md", *model = NULL, *io = NULL;
    char pol_buf[1024];
    const char *pols[BENCH_MAX_LIST];
    int n_pols = 0, n_caps = 4, io_depth = 0;
    int64_t caps[BENCH_MAX_LIST] = {4, 8, 16, 32};
    bool per_layer = false, global = false, use_io = false;
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
            if (mp_parse_str_list(v, pol_buf, sizeof pol_buf, pols, BENCH_MAX_LIST, &n_pols) != MP_OK)
                return cli_error("bench: --policy: '%s' is not a comma-separated list", v);
            for (int k = 0; k < n_pols; k++)
                if (!mp_policy_known(pols[k])) return cli_error("bench: --policy: unknown replacement policy '%s'", pols[k]);
        } else if (!strcmp(a, "--io")) {
            use_io = true;
            /* the backend is optional here: --io alone means auto */
            if (i + 1 < argc && mp_io_known(argv[i + 1])) io = argv[++i];
        } else if (!strcmp(a, "--io-depth")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(a, v, 1, MP_MAX_IO_DEPTH, &io_depth)) return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out_fmt = cli_value(argc, argv, &i))) return 1;
            if (strcmp(out_fmt, "md") && strcmp(out_fmt, "csv") && strcmp(out_fmt, "json"))
                return cli_error("bench: -o: unknown format '%s' (md, csv, json)", out_fmt);
        } else {
            return cli_error("bench --trace: unknown option '%s' (see moepager bench --trace x --help)", a);
        }
    }
    if (!path) return cli_error("bench: --trace needs a file");
    if (use_io && !model) return cli_error("bench --trace --io: give the model to read with -m MODEL");
    if (!use_io && model)
        return cli_error("bench --trace: -m is only used with --io (real reads); the replay needs no model");
    if (!per_layer && !global) per_layer = true;
    if (!n_pols)
        for (size_t k = 0; mp_policy_name_at(k) && n_pols < BENCH_MAX_LIST; k++) pols[n_pols++] = mp_policy_name_at(k);

    int rc = 1;
    mp_trace *t = NULL;
    mp_trace_io *tio = NULL;
    mp_err err = {0};
    if (mp_trace_read(path, &t, &err)) return cli_fail(&err);
    mp_trace_info ti;
    mp_trace_get_info(t, &ti);
    if (ti.n_records == 0) {
        cli_error("%s: the trace has no records", path);
        goto done;
    }
    fprintf(stderr, "moepager: %s: %zu records, %u sequences, %u layers x %u experts, top-%u\n", path, ti.n_records,
            ti.n_sequences, ti.n_layers, ti.n_experts, ti.k_max);
    if (use_io && mp_trace_io_open(&tio, t, model, io, (uint32_t)io_depth, &err)) {
        if (err.status == MP_E_RANGE) cli_error("bench --trace --io: %s", err.msg);
        else cli_fail(&err);
        goto done;
    }

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
            uint32_t cap = (uint32_t)caps[ci];
            mp_replay_result bel;
            if (mp_trace_replay_policy(t, "belady", cap, mode == 1, &bel, &err)) {
                cli_fail(&err);
                goto done;
            }
            for (int pi = 0; pi < n_pols; pi++) {
                mp_replay_result st;
                if (mp_trace_replay_policy(t, pols[pi], cap, mode == 1, &st, &err)) {
                    cli_fail(&err);
                    goto done;
                }
                mp_trace_io_result real = {0};
                bool ran = false;
                uint64_t slots = (uint64_t)cap * ti.n_layers;
                bool can_real = use_io && slots >= ti.k_max && slots <= UINT32_MAX;
                if (can_real) {
                    if (mp_trace_io_run(tio, pols[pi], (uint32_t)slots, &real, &err)) {
                        if (real.note[0]) fprintf(stderr, "moepager: %s\n", real.note);
                        cli_fail(&err);
                        goto done;
                    }
                    if (real.note[0]) fprintf(stderr, "moepager: %s\n", real.note);
                    ran = true;
                }
                double hr = st.accesses ? (double)st.hits / st.accesses : NAN;
                double br = bel.accesses ? (double)bel.hits / bel.accesses : NAN;
                const char *mname = mode ? "global" : "per-layer";
                if (!strcmp(out_fmt, "md")) {
                    printf("| %u | %s | %s | %.2f | %.2f | %.2f |", cap, mname, pols[pi], hr * 100, br * 100,
                           (br - hr) * 100);
                    if (use_io && ran)
                        printf(" %llu | %.2f | %.0f | %.1f |", (unsigned long long)slots, real.hit_rate * 100, real.mb_s,
                               real.bytes_read / 1e6);
                    else if (use_io)
                        printf(" - | - | - | - |");
                    printf("\n");
                } else if (!strcmp(out_fmt, "csv")) {
                    printf("%u,%s,%s,%llu,%llu,%.6f,%llu,%.6f", cap, mname, pols[pi], (unsigned long long)st.accesses,
                           (unsigned long long)st.hits, hr, (unsigned long long)bel.hits, br);
                    if (use_io && ran)
                        printf(",%llu,%.6f,%.1f,%llu", (unsigned long long)slots, real.hit_rate, real.mb_s,
                               (unsigned long long)real.bytes_read);
                    else if (use_io)
                        printf(",,,,");
                    printf("\n");
                } else {
                    printf("%s  {\"experts_per_layer\": %u, \"mode\": \"%s\", \"policy\": \"%s\", \"accesses\": %llu, "
                           "\"hits\": %llu, \"hit_rate\": %.6f, \"belady_hits\": %llu, \"belady_hit_rate\": %.6f",
                           first ? "" : ",\n", cap, mname, pols[pi], (unsigned long long)st.accesses,
                           (unsigned long long)st.hits, hr, (unsigned long long)bel.hits, br);
                    if (use_io && ran)
                        printf(", \"real_slots\": %llu, \"real_hit_rate\": %.6f, \"real_mb_s\": %.1f, "
                               "\"real_bytes_read\": %llu",
                               (unsigned long long)slots, real.hit_rate, real.mb_s, (unsigned long long)real.bytes_read);
                    printf("}");
                }
                first = false;
            }
        }
    if (!strcmp(out_fmt, "json")) printf("\n]\n");
    rc = 0;
done:
    mp_trace_io_free(tio);
    mp_trace_free(t);
    return rc;
}
