/* Replays a routing trace through every replacement policy and Belady's MIN
 * for a list of cache sizes, and prints the hit rates as a markdown table.
 *
 *   bench_trace_replay --trace FILE [--cache-experts 4,8,16,32]
 *                      [--per-layer | --global] [--policy lru,lfu-decay]
 *                      [--sequences A-B]
 *
 * --sequences A-B replays only the sequences A to B (0-based, in order of
 * first appearance in the file): a policy tuned on one half of a trace is
 * checked on the other half.
 *
 * Cache sizes are experts per layer; global mode shares that many times the
 * number of layers among all layers. The access model is in trace/replay.h. */
#include "cache/policy.h"
#include "trace/replay.h"
#include "trace/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 32

static int parse_list(const char *s, uint32_t *out)
{
    int n = 0;
    while (*s && n < MAX_LIST) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v == 0 || v > 1u << 20) return -1;
        out[n++] = (uint32_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_trace_replay --trace FILE [--cache-experts 4,8,16,32] [--per-layer|--global] "
                    "[--policy NAME,...] [--sequences A-B]\npolicies:");
    for (const mp_policy_ops *const *p = mp_policy_list(); *p; p++) fprintf(stderr, " %s", (*p)->name);
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    uint32_t caps[MAX_LIST] = {4, 8, 16, 32};
    int n_caps = 4;
    int modes = 3; /* bit 0 per-layer, bit 1 global */
    unsigned long seq_lo = 0, seq_hi = (unsigned long)-1;
    const mp_policy_ops *pols[MAX_LIST];
    int n_pols = 0;
    for (const mp_policy_ops *const *p = mp_policy_list(); *p && n_pols < MAX_LIST; p++) pols[n_pols++] = *p;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--trace") && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "--cache-experts") && i + 1 < argc) {
            n_caps = parse_list(argv[++i], caps);
            if (n_caps <= 0) {
                fprintf(stderr, "bad --cache-experts list: %s\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--sequences") && i + 1 < argc) {
            char *end;
            const char *a = argv[++i];
            seq_lo = strtoul(a, &end, 10);
            if (end == a || *end != '-' || (seq_hi = strtoul(end + 1, &end, 10), *end) || seq_hi < seq_lo) {
                fprintf(stderr, "bad --sequences range: %s (want A-B, A <= B)\n", a);
                return 2;
            }
        } else if (!strcmp(argv[i], "--per-layer")) {
            modes = 1;
        } else if (!strcmp(argv[i], "--global")) {
            modes = 2;
        } else if (!strcmp(argv[i], "--policy") && i + 1 < argc) {
            char *list = strdup(argv[++i]);
            n_pols = 0;
            for (char *tok = strtok(list, ","); tok && n_pols < MAX_LIST; tok = strtok(NULL, ",")) {
                pols[n_pols] = mp_policy_find(tok);
                if (!pols[n_pols]) {
                    fprintf(stderr, "unknown policy: %s\n", tok);
                    usage();
                    free(list);
                    return 2;
                }
                n_pols++;
            }
            free(list);
        } else {
            usage();
            return 2;
        }
    }
    if (!path) {
        usage();
        return 2;
    }

    mp_trace *t = NULL;
    mp_err err;
    mp_err_clear(&err);
    if (mp_trace_read(path, &t, &err) != MP_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    if (seq_lo > 0 || seq_hi != (unsigned long)-1) {
        /* keep the records of the chosen sequences; replay sorts them anyway */
        size_t m = 0;
        for (size_t r = 0; r < t->n_recs; r++)
            if (t->recs[r].problem >= seq_lo && t->recs[r].problem <= seq_hi) t->recs[m++] = t->recs[r];
        unsigned long top = seq_hi < t->n_problems ? seq_hi : (unsigned long)t->n_problems - 1;
        printf("sequences %lu-%lu (%lu of %u): ", seq_lo, seq_hi, seq_lo <= top ? top - seq_lo + 1 : 0,
               t->n_problems);
        t->n_recs = m;
    }
    printf("trace %s: %zu records, %u sequences, %u layers, %u experts, top-%u\n\n", path, t->n_recs,
           t->n_problems, t->n_layers, t->n_experts, t->k_max);
    printf("| mode | experts/layer | slots |");
    for (int p = 0; p < n_pols; p++) printf(" %s |", pols[p]->name);
    printf(" belady |\n|---|---:|---:|");
    for (int p = 0; p <= n_pols; p++) printf("---:|");
    printf("\n");
    int rc = 0;
    for (int m = 0; m < 2; m++) {
        if (!(modes >> m & 1)) continue;
        mp_replay_mode mode = m ? MP_REPLAY_GLOBAL : MP_REPLAY_PER_LAYER;
        for (int c = 0; c < n_caps; c++) {
            uint64_t slots = m ? (uint64_t)caps[c] * t->n_layers : caps[c];
            printf("| %s | %u | %llu |", m ? "global" : "per-layer", caps[c], (unsigned long long)slots);
            mp_replay_stats st;
            for (int p = 0; p <= n_pols; p++) {
                mp_err_clear(&err);
                int r = p < n_pols ? mp_trace_replay(t, pols[p], caps[c], mode, &st, &err)
                                   : mp_trace_belady(t, caps[c], mode, &st, &err);
                if (r != MP_OK) {
                    fprintf(stderr, "error: %s\n", err.msg);
                    rc = 1;
                    printf(" - |");
                    continue;
                }
                printf(" %.2f%% |", st.accesses ? 100.0 * (double)st.hits / (double)st.accesses : 0.0);
            }
            printf("\n");
        }
    }
    printf("\nhit rate = hits / expert uses; caches start empty. Per-layer: one cache of that many experts per "
           "layer; global: one cache of experts/layer x layers slots. A layer's k experts are pinned together; "
           "a cache smaller than k streams them one at a time.\n");
    mp_trace_free(t);
    return rc;
}
