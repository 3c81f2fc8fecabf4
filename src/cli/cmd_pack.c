/* moepager pack: GGUF -> .moepack (one aligned, checksummed block per expert). */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: moepager pack MODEL.gguf -o MODEL.moepack [--no-compress] [-t THREADS] [-q]\n\n"
           "Rewrites a GGUF model as a packed expert file: all metadata and the resident\n"
           "tensors in an embedded GGUF, then one contiguous 4096-aligned block per routed\n"
           "expert (gate, up and down together) with an xxh3-64 checksum, lz4-compressed\n"
           "where that saves at least 8%%. Every moepager command accepts the result in\n"
           "place of the GGUF. The format is documented in include/moepager/pack_format.h.\n\n"
           "  -o, --output FILE    the pack to write (written to FILE.tmp.PID, then renamed)\n"
           "  --no-compress        store every block raw\n"
           "  -t, --threads N      compression threads (default: all cores)\n"
           "  -q, --quiet          no progress bar\n");
}

typedef struct progress {
    double t0, last;
    bool tty;
} progress;

static void on_progress(void *ud, uint64_t done, uint64_t total)
{
    progress *p = ud;
    double now = mp_time_s();
    if (done < total && now - p->last < (p->tty ? 0.1 : 2.0)) return;
    p->last = now;
    double pct = total ? 100.0 * (double)done / (double)total : 100.0;
    double mbs = now > p->t0 ? (double)done / 1e6 / (now - p->t0) : 0.0;
    if (p->tty) {
        int w = 30, fill = (int)(pct / 100.0 * w);
        fprintf(stderr, "\rpacking [%.*s%*s] %5.1f%%  %8.1f MB/s", fill, "##############################", w - fill, "",
                pct, mbs);
        if (done >= total) fputc('\n', stderr);
    } else {
        fprintf(stderr, "packing: %5.1f%%  %8.1f MB/s\n", pct, mbs);
    }
    fflush(stderr);
}

int cmd_pack(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    bool no_compress = false, quiet = false;
    int n_threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            help();
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(in = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--no-compress")) {
            no_compress = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_parse_int(a, v, 1, 1024, &n_threads)) return 1;
        } else if (a[0] == '-' && a[1]) {
            return cli_error("pack: unknown option '%s' (see moepager pack --help)", a);
        } else if (!in) {
            in = a;
        } else {
            return cli_error("pack: more than one input model ('%s' and '%s')", in, a);
        }
    }
    if (!in) return cli_error("pack: no input model (usage: moepager pack MODEL.gguf -o MODEL.moepack)");
    if (!out) return cli_error("pack: no output file: give -o MODEL.moepack");

    progress pr = {mp_time_s(), 0.0, isatty(2) != 0};
    mp_pack_params o = {
        .no_compress = no_compress,
        .n_threads = n_threads, /* 0: all CPUs */
        .progress = quiet ? NULL : on_progress,
        .progress_ud = &pr,
    };
    mp_pack_result st;
    mp_err err = {0};
    double t0 = mp_time_s();
    if (mp_pack_model(in, out, &o, &st, &err)) {
        if (pr.tty && !quiet) fputc('\n', stderr);
        return cli_fail(&err);
    }
    double dt = mp_time_s() - t0;
    char raw[32], stored[32], res[32], file[32];
    mp_format_size(st.raw_bytes, raw, sizeof raw);
    mp_format_size(st.stored_bytes, stored, sizeof stored);
    mp_format_size(st.resident_bytes, res, sizeof res);
    mp_format_size(st.file_bytes, file, sizeof file);
    double saved = st.raw_bytes ? 100.0 * (1.0 - (double)st.stored_bytes / (double)st.raw_bytes) : 0.0;
    printf("packed %s -> %s in %.2f s (%.1f MB/s)\n", in, out, dt, dt > 0 ? st.raw_bytes / 1e6 / dt : 0.0);
    printf("experts: %llu blocks, %llu lz4-compressed (%llu raw)\n", (unsigned long long)st.n_blocks,
           (unsigned long long)st.n_compressed, (unsigned long long)(st.n_blocks - st.n_compressed));
    printf("expert bytes: %s raw, %s stored (%.2f%% saved%s)\n", raw, stored, saved,
           no_compress ? ", compression off" : "");
    printf("resident: %s (metadata + non-expert tensors), file: %s\n", res, file);
    return 0;
}
