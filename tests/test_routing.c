/* The routing table of --routing-trace (trace/routing.h): how a trace's
 * sequences map onto one run's positions (concatenated in order of first
 * appearance, or one of them), weights (gating_probs as written, 1/k where a
 * record has none), holes, and every way a trace can fail to fit a model:
 * each a one-line MP_E_INVAL naming the file and, for one record, its line. */
#include "mp_test.h"
#include "trace/routing.h"

#include <string.h>

/* Two sequences ("a": tokens 0..1, "b": tokens 0..2), 2 layers, k = 2; line
 * 6 has no gating_probs; sequence b's token 1 has no layer-1 record (a hole).
 * Lines in file order (1-based): */
static const char *const TRACE =
    "{\"problem_id\": \"a\", \"token_idx\": 0, \"layer\": 0, \"experts\": [1, 2], \"gating_probs\": [0.75, 0.25]}\n"
    "{\"problem_id\": \"a\", \"token_idx\": 0, \"layer\": 1, \"experts\": [3, 0], \"gating_probs\": [0.5, 0.5]}\n"
    "{\"problem_id\": \"b\", \"token_idx\": 0, \"layer\": 0, \"experts\": [0, 1], \"gating_probs\": [0.6, 0.4]}\n"
    "{\"problem_id\": \"a\", \"token_idx\": 1, \"layer\": 0, \"experts\": [2, 3], \"gating_probs\": [0.9, 0.1]}\n"
    "{\"problem_id\": \"a\", \"token_idx\": 1, \"layer\": 1, \"experts\": [1, 3], \"gating_probs\": [0.8, 0.2]}\n"
    "{\"problem_id\": \"b\", \"token_idx\": 0, \"layer\": 1, \"experts\": [2, 0]}\n"
    "{\"problem_id\": \"b\", \"token_idx\": 1, \"layer\": 0, \"experts\": [3, 1], \"gating_probs\": [0.7, 0.3]}\n"
    "{\"problem_id\": \"b\", \"token_idx\": 2, \"layer\": 0, \"experts\": [0, 3], \"gating_probs\": [0.55, 0.45]}\n"
    "{\"problem_id\": \"b\", \"token_idx\": 2, \"layer\": 1, \"experts\": [1, 2], \"gating_probs\": [0.65, 0.35]}\n";

static mp_trace *parse(const char *text)
{
    mp_trace *t = NULL;
    mp_err e;
    mp_err_clear(&e);
    int rc = mp_trace_parse("t.jsonl", text, strlen(text), &t, &e);
    CHECKF(rc == MP_OK, "%s", e.msg);
    return t;
}

static bool is(const mp_routing *r, int64_t pos, uint32_t layer, int32_t e0, int32_t e1, float w0, float w1)
{
    const float *w = NULL;
    const int32_t *e = mp_routing_get(r, pos, layer, &w);
    return e && e[0] == e0 && e[1] == e1 && w[0] == w0 && w[1] == w1;
}

/* Builds from text with opts o; expects failure with a message containing want. */
static void expect_error(const char *text, mp_routing_opts o, const char *want)
{
    mp_trace *t = parse(text);
    if (!t) return;
    mp_routing *r = NULL;
    mp_err e;
    mp_err_clear(&e);
    int rc = mp_routing_build(t, "t.jsonl", &o, &r, &e);
    CHECKF(rc == MP_E_INVAL && r == NULL, "rc %d for '%s'", rc, want);
    CHECKF(strstr(e.msg, want) != NULL && strncmp(e.msg, "t.jsonl", 7) == 0 && !strchr(e.msg, '\n'),
           "message '%s' lacks '%s'", e.msg, want);
    mp_trace_free(t);
}

int main(void)
{
    const mp_routing_opts shape = {.n_layers = 2, .n_experts = 4, .k = 2};
    mp_trace *t = parse(TRACE);
    if (!t) MP_TEST_DONE();
    mp_err e;
    mp_err_clear(&e);

    /* all sequences: a at positions 0..1, b at 2..4 */
    mp_routing *r = NULL;
    CHECKF(mp_routing_build(t, "t.jsonl", &shape, &r, &e) == MP_OK, "%s", e.msg);
    if (r) {
        CHECK(mp_routing_n_pos(r) == 5 && mp_routing_n_seqs(r) == 2 && mp_routing_k(r) == 2);
        CHECK(mp_routing_n_uniform(r) == 1);
        CHECK(is(r, 0, 0, 1, 2, 0.75f, 0.25f));
        CHECK(is(r, 1, 1, 1, 3, 0.8f, 0.2f));
        CHECK(is(r, 2, 0, 0, 1, 0.6f, 0.4f));
        CHECK(is(r, 2, 1, 2, 0, 0.5f, 0.5f)); /* no gating_probs: 1/k */
        CHECK(is(r, 4, 1, 1, 2, 0.65f, 0.35f));
        CHECK(mp_routing_get(r, 3, 0, NULL) != NULL);
        CHECK(mp_routing_get(r, 3, 1, NULL) == NULL); /* the hole */
        CHECK(mp_routing_get(r, 5, 0, NULL) == NULL && mp_routing_get(r, -1, 0, NULL) == NULL);
        CHECK(mp_routing_get(r, 0, 2, NULL) == NULL);
        uint32_t seq;
        int64_t tok;
        mp_routing_locate(r, 1, &seq, &tok);
        CHECK(seq == 0 && tok == 1);
        mp_routing_locate(r, 3, &seq, &tok);
        CHECK(seq == 1 && tok == 1);
        CHECK(strcmp(mp_routing_name(r), "t.jsonl") == 0);
    }
    mp_routing_free(r);

    /* one sequence: b's token_idx is the position */
    mp_routing_opts one = shape;
    one.one_seq = true;
    one.seq = 1;
    r = NULL;
    CHECKF(mp_routing_build(t, "t.jsonl", &one, &r, &e) == MP_OK, "%s", e.msg);
    if (r) {
        CHECK(mp_routing_n_pos(r) == 3 && mp_routing_n_seqs(r) == 1);
        CHECK(is(r, 0, 0, 0, 1, 0.6f, 0.4f));
        CHECK(is(r, 2, 1, 1, 2, 0.65f, 0.35f));
        CHECK(mp_routing_get(r, 1, 1, NULL) == NULL);
        uint32_t seq;
        int64_t tok;
        mp_routing_locate(r, 2, &seq, &tok);
        CHECK(seq == 1 && tok == 2);
    }
    mp_routing_free(r);
    mp_trace_free(t);

    /* traces that do not fit the model */
    const char *ok_line = "{\"problem_id\": 0, \"token_idx\": 0, \"layer\": 0, \"experts\": [1, 2]}\n";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s", ok_line, "{\"problem_id\": 0, \"token_idx\": 0, \"layer\": 2, \"experts\": [1, 2]}\n");
    expect_error(buf, shape, "t.jsonl:2: layer 2, but the model has 2 MoE layers");
    snprintf(buf, sizeof buf, "%s%s", ok_line, "{\"problem_id\": 0, \"token_idx\": 0, \"layer\": 1, \"experts\": [1, 4]}\n");
    expect_error(buf, shape, "t.jsonl:2: expert 4, but the model's MoE layers have 4 experts");
    snprintf(buf, sizeof buf, "%s%s", ok_line, "{\"problem_id\": 0, \"token_idx\": 0, \"layer\": 1, \"experts\": [1, 2, 3]}\n");
    expect_error(buf, shape, "t.jsonl:2: 3 experts per token, but the model routes each token to 2 (k)");
    expect_error(ok_line, shape, "t.jsonl: the trace routes 1 MoE layers, but the model has 2");
    snprintf(buf, sizeof buf, "%s%s", ok_line, ok_line);
    mp_routing_opts one_layer = shape;
    one_layer.n_layers = 1;
    expect_error(buf, one_layer, "t.jsonl:2: a second record for sequence 0, token_idx 0, layer 0");
    mp_routing_opts far = one_layer;
    far.one_seq = true;
    far.seq = 3;
    expect_error(ok_line, far, "t.jsonl: no sequence 3: the trace has 1");
    expect_error("\n\n", shape, "t.jsonl: the routing trace has no records");
    expect_error("{\"problem_id\": 0, \"token_idx\": 16777216, \"layer\": 0, \"experts\": [1, 2]}\n", one_layer,
                 "t.jsonl:1: token_idx 16777216");
    /* a record of another sequence is not checked when one sequence is replayed */
    snprintf(buf, sizeof buf, "%s%s", ok_line, "{\"problem_id\": 1, \"token_idx\": 0, \"layer\": 0, \"experts\": [9, 2]}\n");
    mp_routing_opts first = one_layer;
    first.one_seq = true;
    t = parse(buf);
    r = NULL;
    CHECK(t && mp_routing_build(t, "t.jsonl", &first, &r, &e) == MP_OK && mp_routing_n_pos(r) == 1);
    mp_routing_free(r);
    mp_trace_free(t);

    /* a file that is not there, and one that is not a trace */
    CHECK(mp_routing_load("/nonexistent/t.jsonl", &shape, &r, &e) == MP_E_IO && r == NULL);
    MP_TEST_DONE();
}
