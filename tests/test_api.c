/* The public API (include/moepager/moepager.h), used the way a program that
 * links the library would use it: this file includes nothing else from the
 * project (mp_test.h is plain CHECK macros).
 *
 * On a small mp-gen model (llama-moe, 3 layers x 8 experts, top-2, a real
 * SPM vocabulary): tokenize / detokenize; evaluate a prompt; generate
 * greedily with the sampler; truncate the KV cache and re-evaluate to the
 * same logits bit for bit; the same logits with experts streamed through a
 * 2-experts-per-layer cache (and from a pack); statistics split by phase and
 * by layer that add up; notes reach the log callback; a routing trace
 * replays; and bad inputs (missing file, bad parameters, out-of-range
 * tokens, small buffers) return a negative status with a message, never a
 * crash. Exit 0 pass, 1 fail, 77 when mp-gen is not built. */
#include "moepager/moepager.h"

#include "mp_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[1024];

static const char *path_in(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", g_dir, name);
    return buf;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Opening must fail with a negative status, a message containing want, and
 * no engine. */
static void expect_open_fails(const char *what, const char *path, const mp_params *p, int want_status,
                              const char *want)
{
    mp_engine *e = (mp_engine *)&e; /* must be overwritten with NULL */
    mp_err err = {0};
    int rc = mp_engine_open(&e, path, p, &err);
    CHECKF(rc < 0, "%s: rc %d", what, rc);
    CHECKF(want_status == 0 || rc == want_status, "%s: rc %d (%s), want %d", what, rc, mp_status_name(rc), want_status);
    CHECKF(e == NULL, "%s: *out not NULL after a failure", what);
    CHECKF(err.status == rc && err.msg[0], "%s: no message (status %d)", what, err.status);
    CHECKF(!want || strstr(err.msg, want), "%s: message '%s' does not say '%s'", what, err.msg, want);
    mp_engine_free(e == (mp_engine *)&e ? NULL : e);
}

typedef struct log_rec {
    int n_warn;
    char last[512];
} log_rec;

static void on_log(void *ud, mp_log_level level, const char *msg)
{
    log_rec *r = ud;
    if (level == MP_LOG_WARN) r->n_warn++;
    snprintf(r->last, sizeof r->last, "%s", msg);
}

typedef struct route_ctr {
    int calls;
    int bad;
    int n_expert;
} route_ctr;

static void on_route(void *ud, int layer, int pos, const int32_t *experts, const float *weights, int k)
{
    route_ctr *c = ud;
    c->calls++;
    for (int i = 0; i < k; i++)
        if (experts[i] < 0 || experts[i] >= c->n_expert || !(weights[i] > 0)) c->bad++;
    (void)layer;
    (void)pos;
}

int main(void)
{
    const char *build = getenv("MP_BUILD") ? getenv("MP_BUILD") : ".";
    const char *src = getenv("MP_SRC") ? getenv("MP_SRC") : "..";
    char gen[1024], vocab[1024], model[1200], pack[1200], trace[1200], cmd[4096];
    snprintf(gen, sizeof gen, "%s/mp-gen", build);
    snprintf(vocab, sizeof vocab, "%s/tests/data/vocab/ggml-vocab-llama-spm.gguf", src);
    if (access(gen, X_OK) != 0) MP_TEST_SKIP("%s not built", gen);
    if (access(vocab, R_OK) != 0) MP_TEST_SKIP("%s missing", vocab);
    snprintf(g_dir, sizeof g_dir, "%s/api-test", build);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_dir, g_dir);
    if (system(cmd) != 0) MP_TEST_SKIP("cannot make %s", g_dir);
    path_in("m.gguf", model, sizeof model);
    path_in("m.moepack", pack, sizeof pack);
    path_in("route.jsonl", trace, sizeof trace);
    snprintf(cmd, sizeof cmd,
             "'%s' -q --arch llama-moe --type q8_0 --n-embd 128 --n-head 4 --n-head-kv 2 --n-ff 128 --n-layer 3 "
             "--n-expert 8 --n-expert-used 2 --vocab '%s' --seed 11 -o '%s'",
             gen, vocab, model);
    if (system(cmd) != 0) {
        fprintf(stderr, "mp-gen failed: %s\n", cmd);
        return 1;
    }

    /* ---- version and defaults ---- */
    const char *v = mp_version();
    CHECKF(v && v[0] >= '0' && v[0] <= '9' && strchr(v, '.'), "mp_version '%s'", v ? v : "(null)");
    mp_params p = mp_params_default();
    CHECK(p.io_depth == MP_DEFAULT_IO_DEPTH && p.lookahead == 2 && p.prefetch_min_prob < 0 && !p.mmap);
    CHECK(p.mem == 0 && p.cache_bytes == 0 && p.io_timeout_ms == 0 && p.policy == NULL);
    CHECK(mp_policy_name_at(0) && mp_policy_known(mp_policy_name_at(0)) && !mp_policy_known("nope"));
    CHECK(mp_policy_description_at(0) != NULL);
    size_t n_pol = 0;
    while (mp_policy_name_at(n_pol)) n_pol++;
    CHECK(n_pol >= 2 && mp_policy_description_at(n_pol) == NULL);
    CHECK(mp_prefetch_known("none") && mp_prefetch_known("oracle") && !mp_prefetch_known("psychic"));
    CHECK(!strcmp(mp_prefetch_name_at(0), "lookahead") && mp_prefetch_name_at(3) == NULL);
    CHECK(mp_io_known("pread") && mp_io_known("io_uring") && !mp_io_known("floppy"));

    /* ---- bad opens: one message each, no engine, no crash ---- */
    char missing[1200];
    path_in("no-such-model.gguf", missing, sizeof missing);
    expect_open_fails("missing file", missing, NULL, 0, "no-such-model.gguf");
    expect_open_fails("NULL path", NULL, NULL, MP_E_INVAL, NULL);
    expect_open_fails("not a model", vocab, NULL, 0, NULL); /* a vocabulary has no tensors */
    mp_params bad = mp_params_default();
    bad.cache_experts = 2;
    bad.policy = "nope";
    expect_open_fails("unknown policy", model, &bad, MP_E_INVAL, "nope");
    bad = mp_params_default();
    bad.prefetch = "psychic";
    expect_open_fails("unknown prefetch", model, &bad, MP_E_INVAL, "psychic");
    bad = mp_params_default();
    bad.cache_experts = 2;
    bad.io = "floppy";
    expect_open_fails("unknown io", model, &bad, MP_E_INVAL, "floppy");
    bad = mp_params_default();
    bad.n_ctx = -5;
    expect_open_fails("negative n_ctx", model, &bad, MP_E_INVAL, NULL);
    bad = mp_params_default();
    bad.io_depth = 100000;
    expect_open_fails("io depth", model, &bad, MP_E_INVAL, "io-depth");
    bad = mp_params_default();
    bad.mem = 1 << 20;
    expect_open_fails("budget too small", model, &bad, MP_E_BUDGET, "need at least");
    bad = mp_params_default();
    bad.prefetch_min_prob = 1.5f;
    expect_open_fails("min prob", model, &bad, MP_E_INVAL, "probability");

    /* ---- the mapped engine ---- */
    mp_err err = {0};
    mp_engine *e = NULL;
    p = mp_params_default();
    p.n_ctx = 64;
    p.n_threads = 2;
    p.need_tokenizer = true;
    p.mmap = true; /* the mapped engine (without it a model that fits is read into RAM) */
    if (mp_engine_open(&e, model, &p, &err) != MP_OK) {
        fprintf(stderr, "open %s: %s\n", model, err.msg);
        return 1;
    }
    mp_engine_info info;
    mp_engine_get_info(e, &info);
    CHECK(info.has_tokenizer && !info.vocab_only && info.n_vocab == 32000 && info.n_layer == 3);
    CHECK(info.n_expert == 8 && info.n_expert_used == 2 && info.n_ctx == 64 && !info.plan.streamed);
    CHECK(!strcmp(info.arch, "llama"));
    char plan[512];
    mp_plan_text(&info.plan, plan, sizeof plan);
    CHECKF(strstr(plan, "memory plan:") == plan, "plan text '%s'", plan);
    const int V = info.n_vocab;

    /* tokens */
    const char *text = "Hello world, the quick brown fox";
    size_t n_ids = 0;
    int rc = mp_engine_tokenize(e, text, strlen(text), MP_TOKENIZE_ADD_SPECIAL, NULL, 0, &n_ids, &err);
    CHECKF(rc == MP_E_RANGE && n_ids > 2, "sizing call: rc %d, %zu ids", rc, n_ids);
    err = (mp_err){0};
    int32_t ids[64];
    size_t n2 = 0;
    CHECK(n_ids < 64 && mp_engine_tokenize(e, text, strlen(text), MP_TOKENIZE_ADD_SPECIAL, ids, 64, &n2, &err) == MP_OK);
    CHECK(n2 == n_ids && ids[0] == mp_engine_bos(e));
    int32_t two[2];
    err = (mp_err){0};
    CHECK(mp_engine_tokenize(e, text, strlen(text), MP_TOKENIZE_ADD_SPECIAL, two, 2, &n2, &err) == MP_E_RANGE &&
          n2 == n_ids && two[0] == ids[0] && err.msg[0]);
    char back[256];
    size_t blen = 0;
    CHECK(mp_engine_detokenize(e, ids + 1, n_ids - 1, false, back, sizeof back, &blen, NULL) == MP_OK);
    CHECKF(blen < sizeof back && strstr(back, text), "detokenize: '%s'", back);
    char piece[4];
    size_t plen = 0;
    err = (mp_err){0};
    CHECK(mp_engine_token_to_piece(e, -1, false, piece, sizeof piece, &plen, &err) == MP_E_RANGE && err.msg[0]);
    err = (mp_err){0};
    CHECK(mp_engine_token_to_piece(e, V, false, piece, sizeof piece, &plen, &err) == MP_E_RANGE);
    CHECK(!mp_engine_is_eog(e, -3) && !mp_engine_is_eog(e, V) && mp_engine_is_eog(e, mp_engine_eos(e)));

    /* evaluate the prompt, then generate greedily */
    const int n = (int)n_ids;
    float *l_prompt = malloc(sizeof(float) * V), *lg = malloc(sizeof(float) * V), *all = malloc(sizeof(float) * V * n);
    float *l_step[5];
    for (int i = 0; i < 5; i++) l_step[i] = malloc(sizeof(float) * V);
    err = (mp_err){0};
    CHECK(mp_engine_eval(e, ids, (size_t)n, l_prompt, V, false, &err) == MP_OK);
    CHECK(mp_engine_n_past(e) == n);
    mp_sampler *smp = NULL;
    mp_sampler_params spp = mp_sampler_default_params();
    spp.temp = 0;
    CHECK(mp_sampler_open(&smp, &spp, V, &err) == MP_OK && smp);
    int32_t gen_ids[5];
    memcpy(lg, l_prompt, sizeof(float) * V);
    for (int g = 0; g < 5; g++) {
        int32_t t = mp_sampler_sample(smp, lg);
        CHECK(t == argmax(lg, V));
        mp_sampler_accept(smp, t);
        gen_ids[g] = t;
        CHECK(mp_engine_eval(e, &t, 1, lg, V, false, &err) == MP_OK);
        memcpy(l_step[g], lg, sizeof(float) * V);
    }
    CHECK(mp_engine_n_past(e) == n + 5);
    mp_sampler_free(smp);
    mp_sampler_free(NULL);
    mp_sampler *none = (mp_sampler *)&none;
    CHECK(mp_sampler_open(&none, &spp, 0, &err) == MP_E_INVAL && none == NULL);

    /* truncate and re-evaluate: the same logits, bit for bit */
    err = (mp_err){0};
    CHECK(mp_engine_truncate(e, n - 1, &err) == MP_OK && mp_engine_n_past(e) == n - 1);
    CHECK(mp_engine_eval(e, ids + n - 1, 1, lg, V, false, &err) == MP_OK);
    CHECK(memcmp(lg, l_prompt, sizeof(float) * V) == 0);
    CHECK(mp_engine_eval(e, gen_ids, 3, lg, V, false, &err) == MP_OK);
    CHECK(memcmp(lg, l_step[2], sizeof(float) * V) == 0);
    CHECK(mp_engine_truncate(e, 0, &err) == MP_OK);
    CHECK(mp_engine_eval(e, ids, (size_t)n, all, (size_t)V * n, true, &err) == MP_OK);
    CHECK(memcmp(all + (size_t)(n - 1) * V, l_prompt, sizeof(float) * V) == 0);

    /* bad evaluations: an error, n_past unchanged, the engine still usable */
    const int past = mp_engine_n_past(e);
    int32_t bad_ids[2] = {1, V + 7};
    err = (mp_err){0};
    CHECK(mp_engine_eval(e, bad_ids, 2, lg, V, false, &err) == MP_E_INVAL && strstr(err.msg, "out of range"));
    err = (mp_err){0};
    bad_ids[1] = -1;
    CHECK(mp_engine_eval(e, bad_ids, 2, lg, V, false, &err) == MP_E_INVAL);
    err = (mp_err){0};
    CHECK(mp_engine_eval(e, ids, 0, lg, V, false, &err) == MP_E_INVAL && err.msg[0]);
    err = (mp_err){0};
    CHECK(mp_engine_eval(e, ids, 1, lg, V - 1, false, &err) == MP_E_RANGE && err.msg[0]);
    err = (mp_err){0};
    CHECK(mp_engine_eval(e, ids, 2, lg, V, true, &err) == MP_E_RANGE);
    int32_t many[80] = {0};
    err = (mp_err){0};
    CHECK(mp_engine_eval(e, many, 80, NULL, 0, false, &err) == MP_E_RANGE && strstr(err.msg, "context"));
    err = (mp_err){0};
    CHECK(mp_engine_truncate(e, past + 1, &err) == MP_E_RANGE && mp_engine_truncate(e, -1, NULL) == MP_E_RANGE);
    CHECK(mp_engine_n_past(e) == past);
    CHECK(mp_engine_eval(e, gen_ids, 1, lg, V, false, &err) == MP_OK);
    CHECK(memcmp(lg, l_step[0], sizeof(float) * V) == 0);

    /* statistics of a mapped engine: all zero, not streamed */
    mp_stats st;
    mp_engine_stats(e, &st);
    CHECK(!st.streamed && st.n_layers == 3 && st.total.misses == 0);
    route_ctr rc_ctr = {.n_expert = 8};
    CHECK(mp_engine_set_route_cb(e, on_route, &rc_ctr, &err) == MP_OK);
    CHECK(mp_engine_eval(e, gen_ids + 1, 1, NULL, 0, false, &err) == MP_OK);
    CHECKF(rc_ctr.calls == 3 && rc_ctr.bad == 0, "route callback: %d calls, %d bad", rc_ctr.calls, rc_ctr.bad);
    CHECK(mp_engine_set_route_cb(e, NULL, NULL, &err) == MP_OK);
    mp_engine_free(e);
    mp_engine_free(NULL);

    /* ---- streamed through a cache of 2 experts per layer: the same logits ---- */
    log_rec lr = {0};
    p = mp_params_default();
    p.n_ctx = 64;
    p.n_threads = 2;
    p.cache_experts = 2;
    p.io_fault = "refuse_direct"; /* a fallback, so a note must reach the log */
    p.log = on_log;
    p.log_ud = &lr;
    p.trace_out = trace;
    err = (mp_err){0};
    e = NULL;
    if (mp_engine_open(&e, model, &p, &err) != MP_OK) {
        fprintf(stderr, "open streamed: %s\n", err.msg);
        return 1;
    }
    mp_engine_get_info(e, &info);
    CHECK(info.plan.streamed && info.slots == 6 && info.slot_bytes > 0 && !info.io_direct && info.io[0]);
    CHECK(!strcmp(info.prefetch, "lookahead") && info.prefetch_min_prob_auto && fabsf(info.prefetch_min_prob - 0.5f) < 1e-6f);
    CHECK(!strcmp(info.policy, mp_policy_name_at(0)));
    CHECKF(lr.n_warn >= 1 && strstr(mp_engine_notes(e), lr.last), "log: %d warnings, last '%s', notes '%s'",
           lr.n_warn, lr.last, mp_engine_notes(e));
    CHECK(mp_engine_set_route_cb(e, on_route, &rc_ctr, &err) == MP_E_INVAL); /* trace_out holds the hook */
    mp_engine_stats_reset(e);
    CHECK(mp_engine_eval(e, ids, (size_t)n, lg, V, false, &err) == MP_OK);
    CHECK(memcmp(lg, l_prompt, sizeof(float) * V) == 0);
    mp_engine_stats_mark(e, MP_PHASE_DECODE);
    for (int g = 0; g < 3; g++) {
        CHECK(mp_engine_eval(e, &gen_ids[g], 1, lg, V, false, &err) == MP_OK);
        CHECK(memcmp(lg, l_step[g], sizeof(float) * V) == 0);
    }
    mp_engine_stats(e, &st);
    CHECK(st.streamed && st.n_tiers == 1 && st.tier[0].kind == MP_TIER_RAM && st.tier[0].slots == 6);
    uint64_t dem = st.total.hits + st.total.late_hits + st.total.misses;
    CHECKF(dem > 0 && dem <= (uint64_t)(n + 3) * 3 * 2, "demands %llu for %d tokens", (unsigned long long)dem, n + 3);
    CHECK(st.total.misses > 0 && st.total.bytes_read > 0 && st.io.bytes >= st.total.bytes_read);
    mp_expert_stats sum = st.phase[0];
    mp_expert_stats_add(&sum, &st.phase[1]);
    CHECK(memcmp(&sum, &st.total, sizeof sum) == 0);
    CHECK(st.phase[1].hits + st.phase[1].late_hits + st.phase[1].misses == 3 * 3 * 2);
    mp_expert_stats layers[8], lsum = {0};
    CHECK(mp_engine_layer_stats(e, MP_PHASE_DECODE, layers, 8) == 3);
    for (int l = 0; l < 3; l++) mp_expert_stats_add(&lsum, &layers[l]);
    CHECK(memcmp(&lsum, &st.phase[1], sizeof lsum) == 0);
    CHECK(mp_engine_layer_stats(e, MP_PHASE_ALL, layers, 1) == 3); /* writes only 1 */
    double hr, prec, rec;
    mp_expert_stats_rates(&st.total, &hr, &prec, &rec);
    CHECK(hr >= 0 && hr <= 1);
    mp_engine_stats_reset(e);
    mp_engine_stats(e, &st);
    CHECK(st.total.misses == 0 && st.phase[1].misses == 0 && st.io.bytes == 0 && st.trace_errors == 0);
    mp_engine_free(e);

    /* ---- vocab only ---- */
    p = mp_params_default();
    p.vocab_only = true;
    err = (mp_err){0};
    CHECK(mp_engine_open(&e, vocab, &p, &err) == MP_OK);
    if (e) {
        mp_engine_get_info(e, &info);
        CHECK(info.vocab_only && info.has_tokenizer && info.n_vocab == 32000);
        int32_t vids[64];
        CHECK(mp_engine_tokenize(e, text, strlen(text), MP_TOKENIZE_ADD_SPECIAL, vids, 64, &n2, &err) == MP_OK);
        CHECK(n2 == n_ids && memcmp(vids, ids, n2 * sizeof *ids) == 0);
        err = (mp_err){0};
        CHECK(mp_engine_eval(e, vids, 1, NULL, 0, false, &err) == MP_E_UNSUPPORTED && err.msg[0]);
        mp_engine_stats(e, &st);
        CHECK(!st.streamed);
        mp_engine_free(e);
    }

    /* ---- model facts, plans, packs, traces ---- */
    mp_model_info mi;
    err = (mp_err){0};
    CHECK(mp_model_inspect(model, NULL, &mi, &err) == MP_OK);
    CHECK(mi.moe && mi.n_expert == 8 && mi.n_layer == 3 && mi.n_vocab == 32000 && mi.n_types >= 2);
    CHECK(mi.active_params < mi.total_params && mi.expert_bytes + mi.resident_bytes == mi.total_bytes);
    CHECK(mp_model_inspect(missing, NULL, &mi, &err) < 0);
    mp_plan_info pl;
    p = mp_params_default();
    p.cache_experts = 3;
    err = (mp_err){0};
    CHECK(mp_model_plan(model, &p, &pl, &err) == MP_OK && pl.streamed && pl.slots == 9);
    p = mp_params_default();
    p.mem = 4096;
    err = (mp_err){0};
    CHECK(mp_model_plan(model, &p, &pl, &err) == MP_E_BUDGET && strstr(err.msg, "need at least"));

    mp_pack_result pr;
    err = (mp_err){0};
    CHECK(mp_pack_model(model, pack, NULL, &pr, &err) == MP_OK && pr.n_blocks == 3 * 8);
    err = (mp_err){0};
    CHECK(mp_pack_model(missing, pack, NULL, &pr, &err) < 0 && strstr(err.msg, "no-such-model"));
    p = mp_params_default();
    p.n_ctx = 64;
    err = (mp_err){0};
    CHECK(mp_engine_open(&e, pack, &p, &err) == MP_OK);
    if (e) {
        CHECK(mp_engine_eval(e, ids, (size_t)n, lg, V, false, &err) == MP_OK);
        CHECK(memcmp(lg, l_prompt, sizeof(float) * V) == 0);
        mp_engine_free(e);
    }

    mp_trace *t = NULL;
    err = (mp_err){0};
    CHECKF(mp_trace_read(trace, &t, &err) == MP_OK, "%s", err.msg);
    if (t) {
        mp_trace_info ti;
        mp_trace_get_info(t, &ti);
        CHECKF(ti.n_layers == 3 && ti.k_max == 2 && ti.n_records == (size_t)(n + 3) * 3, "trace: %zu records",
               ti.n_records);
        mp_replay_result a, b;
        CHECK(mp_trace_replay_policy(t, "lru", 2, false, &a, &err) == MP_OK);
        CHECK(mp_trace_replay_policy(t, "belady", 2, false, &b, &err) == MP_OK);
        CHECK(a.accesses == b.accesses && b.hits >= a.hits && a.hits + a.misses == a.accesses);
        err = (mp_err){0};
        CHECK(mp_trace_replay_policy(t, "nope", 2, false, &a, &err) == MP_E_INVAL);
        mp_trace_io *tio = NULL;
        err = (mp_err){0};
        CHECKF(mp_trace_io_open(&tio, t, model, "pread", 4, &err) == MP_OK, "%s", err.msg);
        if (tio) {
            mp_trace_io_result res;
            CHECKF(mp_trace_io_run(tio, NULL, 6, &res, &err) == MP_OK, "%s", err.msg);
            CHECK(res.loads > 0 && res.bytes_read > 0 && res.hit_rate >= 0 && res.hit_rate < 1);
            err = (mp_err){0};
            CHECK(mp_trace_io_run(tio, "nope", 6, &res, &err) == MP_E_INVAL);
            mp_trace_io_free(tio);
        }
        mp_trace_free(t);
    }
    err = (mp_err){0};
    CHECK(mp_trace_read(missing, &t, &err) < 0 && err.msg[0]);

    /* utilities */
    uint64_t sz;
    CHECK(mp_parse_size("1.5K", &sz) == MP_OK && sz == 1536 && mp_parse_size("x", &sz) == MP_E_INVAL);
    char sb[32];
    CHECK(mp_format_size(512ull << 20, sb, sizeof sb) > 0 && !strcmp(sb, "512 MiB"));
    CHECK(mp_n_cpus() >= 1 && mp_time_s() > 0);

    for (int i = 0; i < 5; i++) free(l_step[i]);
    free(l_prompt);
    free(lg);
    free(all);
    MP_TEST_DONE();
}
