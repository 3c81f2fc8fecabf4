/* The real routing trace of FLAME-MoE-290M (../shared/data/traces, not
 * shipped: skipped when absent): it parses with the expected shape, writes
 * back and re-reads identically, and on it Belady >= every policy, and the
 * default policy (lfu-cycle) beats lfu-decay and LRU, the measurement that
 * made it the default. Every policy's hit counts are pinned. */
#include "mp_test.h"
#include "trace/replay.h"
#include "trace/trace.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/../shared/data/traces/flame-moe-290m-32x64.jsonl", mp_test_src_dir());
    if (access(path, R_OK) != 0) MP_TEST_SKIP("%s not found", path);
    mp_trace *t = NULL;
    mp_err e;
    mp_err_clear(&e);
    int rc = mp_trace_read(path, &t, &e);
    CHECKF(rc == MP_OK, "%s", e.msg);
    if (rc != MP_OK) MP_TEST_DONE();
    CHECK(t->n_recs == 32 * 64 * 8 && t->n_problems == 32 && t->n_layers == 8 && t->n_experts == 64 &&
          t->k_max == 6);

    /* write it back out and read it again */
    char out[1024];
    snprintf(out, sizeof out, "%s/test_trace_flame.%d.jsonl", mp_test_build_dir(), (int)getpid());
    mp_trace_writer *w = NULL;
    CHECK(mp_trace_writer_open(out, "flame-moe-290m", &w, &e) == MP_OK);
    for (size_t r = 0; w && r < t->n_recs; r++) {
        const mp_trace_rec *x = &t->recs[r];
        int32_t ex[MP_TRACE_MAX_K];
        for (uint32_t i = 0; i < x->k; i++) ex[i] = (int32_t)t->experts[x->off + i];
        CHECK(mp_trace_writer_write(w, x->problem, x->token_idx, x->layer, ex, &t->probs[x->off], x->k, &e) ==
              MP_OK);
    }
    CHECK(mp_trace_writer_close(w, &e) == MP_OK);
    mp_trace *t2 = NULL;
    CHECKF(mp_trace_read(out, &t2, &e) == MP_OK, "%s", e.msg);
    unlink(out);
    if (t2) {
        CHECK(t2->n_recs == t->n_recs);
        size_t n_vals = t->recs[t->n_recs - 1].off + t->recs[t->n_recs - 1].k;
        for (size_t r = 0; r < t->n_recs && r < t2->n_recs; r++) {
            const mp_trace_rec *a = &t->recs[r], *b = &t2->recs[r];
            CHECK(a->problem == b->problem && a->layer == b->layer && a->token_idx == b->token_idx &&
                  a->k == b->k && a->off == b->off);
        }
        CHECK(memcmp(t->experts, t2->experts, n_vals * sizeof *t->experts) == 0);
        CHECK(memcmp(t->probs, t2->probs, n_vals * sizeof *t->probs) == 0);
        mp_trace_free(t2);
    }

    /* The default is lfu-cycle (docs/measurements/policy-2026-12-06.md): with
     * a cache per layer it is lfu-decay exactly (one layer, nothing to weigh);
     * with one cache for all layers it hits more at every size, and at 8 and
     * 16 experts per layer at least 5 points more than LRU (issue 10's
     * target). Every count is pinned: the policies are deterministic. */
    CHECK(strcmp(mp_policy_default()->name, "lfu-cycle") == 0);
    const mp_policy_ops *decay = mp_policy_find("lfu-decay");
    CHECK(decay != NULL);
    static const uint32_t caps[] = {4, 8, 16, 32};
    static const uint64_t lru_hits[2][4] = {{2815, 13338, 25617, 51750}, {0, 10383, 21523, 48251}};
    static const uint64_t decay_hits[2][4] = {{5987, 14591, 29769, 55992}, {6297, 14614, 29257, 55663}};
    static const uint64_t def_hits[2][4] = {{5987, 14591, 29769, 55992}, {7222, 15467, 30033, 56233}};
    static const uint64_t opt_hits[2][4] = {{20609, 24636, 51178, 77378}, {24553, 39046, 57439, 79559}};
    for (int m = 0; m < 2; m++) {
        mp_replay_mode mode = m ? MP_REPLAY_GLOBAL : MP_REPLAY_PER_LAYER;
        for (int c = 0; c < 4; c++) {
            mp_replay_stats b, lru, dec, def;
            CHECK(mp_trace_belady(t, caps[c], mode, &b, &e) == MP_OK);
            CHECK(mp_trace_replay(t, mp_policy_find("lru"), caps[c], mode, &lru, &e) == MP_OK);
            CHECK(mp_trace_replay(t, decay, caps[c], mode, &dec, &e) == MP_OK);
            CHECK(mp_trace_replay(t, mp_policy_default(), caps[c], mode, &def, &e) == MP_OK);
            printf("%s %2u: lru %llu  lfu-decay %llu  %s %llu  belady %llu  (of %llu)\n", m ? "global   " : "per-layer",
                   caps[c], (unsigned long long)lru.hits, (unsigned long long)dec.hits, mp_policy_default()->name,
                   (unsigned long long)def.hits, (unsigned long long)b.hits, (unsigned long long)b.accesses);
            CHECK(b.accesses == 32 * 64 * 8 * 6 && lru.accesses == b.accesses && dec.accesses == b.accesses &&
                  def.accesses == b.accesses);
            CHECK(b.hits >= def.hits && b.hits >= dec.hits && b.hits >= lru.hits);
            CHECK(def.hits > lru.hits && dec.hits > lru.hits);
            if (m) CHECK(def.hits > dec.hits);
            else CHECK(def.hits == dec.hits);
            if (m && (caps[c] == 8 || caps[c] == 16))
                CHECKF(def.hits - lru.hits >= b.accesses / 20, "%s beats lru by %llu hits at %u, under 5%%",
                       mp_policy_default()->name, (unsigned long long)(def.hits - lru.hits), caps[c]);
            CHECKF(lru.hits == lru_hits[m][c], "lru hits %llu", (unsigned long long)lru.hits);
            CHECKF(dec.hits == decay_hits[m][c], "lfu-decay hits %llu", (unsigned long long)dec.hits);
            CHECKF(def.hits == def_hits[m][c], "%s hits %llu", mp_policy_default()->name,
                   (unsigned long long)def.hits);
            CHECKF(b.hits == opt_hits[m][c], "belady hits %llu", (unsigned long long)b.hits);
        }
    }
    mp_trace_free(t);
    MP_TEST_DONE();
}
