/* Routing trace reading and writing (trace/trace.h): the documented format,
 * extra keys and any key order, exact round trips through the writer, an
 * error naming file and line for each kind of malformed line, no crash on
 * mangled input, and the replay of a hand-made trace counted by hand. */
#include "mp_test.h"
#include "trace/replay.h"
#include "trace/trace.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 777;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static int parse_str(const char *s, mp_trace **t, mp_err *e)
{
    mp_err_clear(e);
    return mp_trace_parse("mem.jsonl", s, strlen(s), t, e);
}

static void test_tiny(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/traces/tiny-2x3.jsonl", mp_test_src_dir());
    mp_trace *t = NULL;
    mp_err e;
    mp_err_clear(&e);
    int rc = mp_trace_read(path, &t, &e);
    CHECKF(rc == MP_OK, "%s", e.msg);
    if (rc != MP_OK) return;
    CHECK(t->n_recs == 8 && t->n_problems == 2 && t->n_layers == 2 && t->n_experts == 4 && t->k_max == 2);
    CHECK(t->recs[2].layer == 0 && t->recs[2].token_idx == 1 && t->recs[2].problem == 0);
    CHECK(t->experts[t->recs[2].off] == 1 && t->experts[t->recs[2].off + 1] == 2);
    CHECK(t->probs[t->recs[2].off] == 0.7f);
    CHECK(t->recs[6].problem == 1 && t->recs[7].problem == 1);
    CHECK(t->probs[t->recs[7].off] == 0.0f); /* no gating_probs on that line */

    /* Per layer, 2 slots = k: every eviction is forced; layer 0 sees
     * {0,1} {1,2} {0,1} {3,0}: 3 hits; layer 1 {2,3} {2,0} {3,2} {1,0}: 2. */
    mp_replay_stats st;
    for (const mp_policy_ops *const *p = mp_policy_list(); *p; p++) {
        CHECK(mp_trace_replay(t, *p, 2, MP_REPLAY_PER_LAYER, &st, NULL) == MP_OK);
        CHECKF(st.accesses == 16 && st.hits == 5 && st.misses == 11, "%s: %llu hits", (*p)->name,
               (unsigned long long)st.hits);
    }
    CHECK(mp_trace_belady(t, 2, MP_REPLAY_PER_LAYER, &st, NULL) == MP_OK);
    CHECK(st.hits == 5);
    /* 1 slot < k: experts are streamed one by one: 0 1 1 2 0 1 3 0 has one
     * hit (the repeated 1), layer 1 (2 3 2 0 3 2 1 0) none. */
    CHECK(mp_trace_replay(t, mp_policy_find("lru"), 1, MP_REPLAY_PER_LAYER, &st, NULL) == MP_OK);
    CHECK(st.hits == 1);
    CHECK(mp_trace_belady(t, 1, MP_REPLAY_PER_LAYER, &st, NULL) == MP_OK);
    CHECK(st.hits == 1);
    /* Global, 2 x 2 layers = 4 slots, keys layer * 4 + expert:
     * {0,1} {6,7} {1,2} {6,4} {0,1} {7,6} {3,0} {5,4}. LRU: 5 hits (one in
     * each of groups 3..7); Belady: 7 (both in group 5, one in 3,4,6,7,8). */
    CHECK(mp_trace_replay(t, mp_policy_find("lru"), 2, MP_REPLAY_GLOBAL, &st, NULL) == MP_OK);
    CHECKF(st.hits == 5, "lru global %llu", (unsigned long long)st.hits);
    CHECK(mp_trace_belady(t, 2, MP_REPLAY_GLOBAL, &st, NULL) == MP_OK);
    CHECKF(st.hits == 7, "belady global %llu", (unsigned long long)st.hits);
    CHECK(mp_trace_replay(t, mp_policy_find("lru"), 0, MP_REPLAY_GLOBAL, &st, NULL) == MP_E_INVAL);
    mp_trace_free(t);
}

static void test_roundtrip(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/test_trace_io.%d.jsonl", mp_test_build_dir(), (int)getpid());
    mp_trace_writer *w = NULL;
    mp_err e;
    mp_err_clear(&e);
    CHECK(mp_trace_writer_open(path, "my \"model\"\n", &w, &e) == MP_OK);
    if (!w) return;
    enum { N = 300 };
    int32_t ex[N][8];
    float pr[N][8];
    uint32_t kk[N];
    for (int r = 0; r < N; r++) {
        kk[r] = 1 + rnd(8);
        for (uint32_t i = 0; i < kk[r]; i++) {
            ex[r][i] = (int32_t)(i * 1000 + rnd(1000)); /* distinct */
            pr[r][i] = (float)rnd(1u << 30) / (float)(1u << 30) * (r % 2 ? 1e-7f : 1.0f);
        }
        CHECK(mp_trace_writer_write(w, r / 40, r % 40 / 4, (uint32_t)(r % 4), ex[r], r % 7 ? pr[r] : NULL, kk[r],
                                    &e) == MP_OK);
    }
    int32_t bad = -1;
    CHECK(mp_trace_writer_write(w, 0, 0, 0, &bad, NULL, 1, &e) == MP_E_INVAL);
    CHECK(mp_trace_writer_write(w, 0, 0, 0, ex[0], NULL, 0, NULL) == MP_E_INVAL);
    mp_err_clear(&e);
    CHECK(mp_trace_writer_close(w, &e) == MP_OK);
    mp_trace *t = NULL;
    CHECKF(mp_trace_read(path, &t, &e) == MP_OK, "%s", e.msg);
    unlink(path);
    if (!t) return;
    CHECK(t->n_recs == N && t->n_problems == (N + 39) / 40 && t->n_layers == 4);
    for (int r = 0; r < N && r < (int)t->n_recs; r++) {
        const mp_trace_rec *x = &t->recs[r];
        CHECK(x->problem == (uint32_t)(r / 40) && x->token_idx == r % 40 / 4 && x->layer == (uint32_t)(r % 4));
        CHECK(x->k == kk[r]);
        for (uint32_t i = 0; i < x->k && i < kk[r]; i++) {
            CHECK(t->experts[x->off + i] == (uint32_t)ex[r][i]);
            float want = r % 7 ? pr[r][i] : 0.0f;
            CHECKF(memcmp(&t->probs[x->off + i], &want, 4) == 0, "rec %d: %.9g != %.9g", r,
                   t->probs[x->off + i], want);
        }
    }
    mp_trace_free(t);
    CHECK(mp_trace_writer_open("/nonexistent-dir/x.jsonl", NULL, &w, NULL) == MP_E_IO);
    CHECK(mp_trace_read("/nonexistent-dir/x.jsonl", &t, NULL) == MP_E_IO);
}

/* 10 levels of nesting (the reader refuses more than 64) */
#define D10 "[[[[[[[[[["
#define E10 "]]]]]]]]]]"

/* Syntax errors are jansson's words ("'}' expected near ..."), the
 * record's own checks this file's. */
static void test_malformed(void)
{
    static const char *good = "{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": [1, 2]}\n";
    static const struct {
        const char *line, *why;
    } bad[] = {
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0}", "missing key experts"},
        {"{\"problem_id\": 1, \"layer\": 0, \"experts\": [1]}", "missing key token_idx"},
        {"{\"token_idx\": 0, \"layer\": 0, \"experts\": [1]}", "missing key problem_id"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"experts\": [1]}", "missing key layer"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": []}", "experts is empty"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": [1, 1]}", "twice"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": [1, -2]}", "expert must be"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": [1.5]}", "expert must be"},
        {"{\"problem_id\": 1, \"token_idx\": -1, \"layer\": 0, \"experts\": [1]}", "token_idx"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 70000, \"experts\": [1]}", "layer"},
        {"{\"problem_id\": 1, \"token_idx\": 99999999999999999999, \"layer\": 0, \"experts\": [1]}", "number out of range"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": [1, 2], \"gating_probs\": [0.5]}",
         "differ in length"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"layer\": 1, \"experts\": [1]}", "duplicate key"},
        {"{\"problem_id\": 1 \"token_idx\": 0, \"layer\": 0, \"experts\": [1]}", "'}' expected"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": [1 2]}", "']' expected"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": [1]} x", "text after"},
        {"[1, 2]", "expected '{'"},
        {"{\"problem_id\": true, \"token_idx\": 0, \"layer\": 0, \"experts\": [1]}", "problem_id"},
        {"{\"problem_id\": \"abc, \"token_idx\": 0}", "'}' expected"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": [1], \"x\" 1}", "':' expected"},
        {"{\"problem_id\": \"abc", "premature end of input"},
        {"{\"problem_id\": \"a\\q\", \"token_idx\": 0, \"layer\": 0, \"experts\": [1]}", "invalid escape"},
        {"{\"x\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
         "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], \"problem_id\": 1}",
         "'}' expected"}, /* one ']' too many */
        {"{\"x\": " D10 D10 D10 D10 D10 D10 D10 E10 E10 E10 E10 E10 E10 E10 ", \"problem_id\": 1}", "nested too deeply"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": [1], \"gating_probs\": [01]}",
         "invalid token"},
        {"{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": [1], \"gating_probs\": [nan]}",
         "invalid token"},
        {"{}", "empty object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s\n%s\n%s", good, bad[i].line, good);
        mp_trace *t = (mp_trace *)1;
        mp_err e;
        int rc = parse_str(buf, &t, &e);
        CHECKF(rc == MP_E_CORRUPT && t == NULL, "case %zu: rc %d", i, rc);
        CHECKF(strstr(e.msg, "mem.jsonl:3:") == e.msg, "case %zu: %s", i, e.msg);
        CHECKF(strstr(e.msg, bad[i].why) != NULL, "case %zu: %s (want %s)", i, e.msg, bad[i].why);
    }
    /* valid odds and ends: escapes, exponents, CRLF, whitespace, unknown values */
    mp_trace *t = NULL;
    mp_err e;
    int rc = parse_str(" { \"dataset\" : \"a\\\"b\\u00e9\" , \"problem_id\":\"p\\n1\",\"token_idx\":3,"
                       "\"layer\":2,\"experts\":[ 5 ,4 ],\"gating_probs\":[1e-3, -0.5E+1],"
                       "\"z\":[null,false,{}],\"y\":{}} \r\n\n",
                       &t, &e);
    CHECKF(rc == MP_OK, "%s", e.msg);
    if (t) {
        CHECK(t->n_recs == 1 && t->recs[0].layer == 2 && t->recs[0].token_idx == 3 && t->n_experts == 6);
        CHECK(t->probs[0] == 1e-3f && t->probs[1] == -5.0f);
        mp_trace_free(t);
    }
    /* empty input: an empty trace */
    CHECK(parse_str("\n \n", &t, &e) == MP_OK && t && t->n_recs == 0);
    mp_trace_free(t);
}

/* Mangled input: truncations and random byte changes of valid lines. Any
 * status is fine; reading out of bounds is not (run under MP_SANITIZE). */
static void test_fuzz(void)
{
    static const char *src =
        "{\"dataset\": \"x\", \"problem_id\": \"q\\u0041\", \"token_idx\": 12, \"layer\": 3, \"token_id\": 5, "
        "\"experts\": [34, 28, 21], \"gating_probs\": [0.099801, 5e-2, 1E3], \"o\": {\"a\": [true, null]}}";
    size_t n = strlen(src);
    char buf[512];
    int ok = 0, corrupt = 0;
    for (size_t cut = 0; cut <= n; cut++) {
        mp_trace *t = NULL;
        int rc = mp_trace_parse("fuzz", src, cut, &t, NULL); /* not NUL-terminated at cut */
        ok += rc == MP_OK, corrupt += rc == MP_E_CORRUPT;
        CHECK(rc == MP_OK || rc == MP_E_CORRUPT);
        mp_trace_free(t);
    }
    for (int it = 0; it < 20000; it++) {
        memcpy(buf, src, n);
        int muts = 1 + (int)rnd(4);
        for (int m = 0; m < muts; m++) {
            static const char alphabet[] = "{}[]\":,\\u0123456789.eE+- \nabtrfn\x01\xff";
            buf[rnd((uint32_t)n)] = rnd(2) ? alphabet[rnd(sizeof alphabet - 1)] : (char)rnd(256);
        }
        mp_trace *t = NULL;
        int rc = mp_trace_parse("fuzz", buf, n, &t, NULL);
        CHECK(rc == MP_OK || rc == MP_E_CORRUPT);
        ok += rc == MP_OK, corrupt += rc == MP_E_CORRUPT;
        mp_trace_free(t);
        if (mp_test_failures) break;
    }
    CHECK(ok > 0 && corrupt > 0);
}

int main(void)
{
    test_tiny();
    test_roundtrip();
    test_malformed();
    test_fuzz();
    MP_TEST_DONE();
}
