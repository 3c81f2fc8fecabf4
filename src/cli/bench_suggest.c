/* moepager bench --suggest: a short sweep inside a --mem budget that
 * recommends settings. */
#include "bench_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A short sweep inside the --mem budget: the largest expert cache that fits,
 * half and a quarter of it, each with prefetch none and lookahead d = 1, 2
 * (plus the whole file mapped when it fits), then the recommendation: the
 * fastest decode, or a smaller cache if it is within 5% of it. */
int bench_suggest(bench_run *b, const bench_lists *L, uint64_t mem, const char *out_fmt)
{
    int rc = 1;
    bench_row *rows = NULL;
    char tmp[512] = ""; /* a recorded routing (no oracle row here, so none is made) */
    mp_err err = {0};
    mp_model_info mi;
    if (mp_model_inspect(b->mo.model, NULL, &mi, &err)) {
        cli_fail(&err);
        goto done;
    }
    if (!mi.n_expert) {
        cli_error("bench --suggest: %s has no routed experts: nothing to tune", b->mo.model);
        goto done;
    }
    mp_plan_info plan, mapped;
    mp_params po = mp_params_default();
    po.mem = mem;
    po.n_ctx = b->n_ctx;
    po.n_batch = b->mo.n_batch;
    po.n_threads = b->mo.n_threads;
    if (mp_model_plan(b->mo.model, &po, &plan, &err)) {
        cli_fail(&err);
        goto done;
    }
    mp_params pm = po;
    pm.mem = 0;
    pm.mmap = true; /* the whole file mapped */
    bool fits = mp_model_plan(b->mo.model, &pm, &mapped, NULL) == MP_OK && mapped.total <= mem;
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
            s.pf = v == 0 ? BENCH_PF_NONE : BENCH_PF_LOOKAHEAD;
            s.lookahead = v;
            s.min_prob = mp_params_default().prefetch_min_prob;
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
    if (bench_sweep(b, sets, n, rows, NULL, tmp, sizeof tmp)) goto done;
    bench_print(b, rows, n, out_fmt);

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
        if (r->set.pf == BENCH_PF_LOOKAHEAD) snprintf(pf, sizeof pf, "--prefetch lookahead --lookahead %d", r->set.lookahead);
        printf("  --cache-size %s %s\n", r->set.label, pf);
        printf("  measured: tg %.2f tok/s, pp %.2f tok/s, decode hit rate %.1f%%, stall share %.1f%%, %.2f MB read per token, "
               "peak RSS %.1f MiB\n",
               pm_.tg_tps, pm_.pp_tps, pm_.hit_rate * 100, pm_.stall_share * 100, pm_.tg_mb_per_token, pm_.peak_rss_mib);
    }
    if (pick != best) {
        bench_metrics bm;
        bench_metrics_get(&rows[best], b->n_gen, &bm);
        char pf[48];
        bench_prefetch_label(&rows[best].set, pf, sizeof pf);
        printf("  (the fastest, %s with prefetch %s, gave %.2f tok/s: less than 5%% more for more memory)\n",
               rows[best].set.label, pf, bm.tg_tps);
    }
    printf("  rule: the fastest decode measured; a smaller cache wins when it is within 5%% of it\n");
    rc = 0;
done:
    if (tmp[0]) unlink(tmp);
    free(rows);
    return rc;
}

