/* moepager serve's request parser (src/cli/serve_request.c, compiled in
 * here): accepted bodies give the documented fields, refused ones a reason
 * and the field at fault; the UTF-8 helpers hold back a split character and
 * replace invalid bytes; every file of the fuzz corpus
 * (tests/fuzz/corpus_serve) runs through the same checks as the fuzzer. */
#include "mp_test.h"

#include "../src/cli/serve_request.c"

#include <dirent.h>

static const mp_sampler_params DEF = {.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                                      .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0};

static int parse(const char *body, bool chat, srv_request *r, char *msg, const char **param)
{
    return srv_request_parse(body, strlen(body), chat, &DEF, r, msg, 256, param);
}

static void test_good(void)
{
    srv_request r;
    char msg[256];
    const char *param;
    CHECK(parse("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":"
                 "[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{}},{\"type\":\"text\","
                 "\"text\":\"b\"}]}],\"max_tokens\":7,\"temperature\":0,\"top_p\":0.5,\"top_k\":3,\"min_p\":0.2,"
                 "\"seed\":-1,\"stop\":[\"x\",\"\",\"yz\"],\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                 "\"repeat_penalty\":1.3,\"unknown\":[1,{}]}",
                 true, &r, msg, &param) == 0);
    CHECK(r.chat && r.n_msgs == 2 && !strcmp(r.msgs[0].role, "system") && !strcmp(r.msgs[1].content, "ab"));
    CHECK(!strcmp(r.model, "m") && r.max_tokens == 7 && r.sp.temp == 0.0f && r.sp.top_p == 0.5f && r.sp.top_k == 3);
    CHECK(r.sp.min_p == 0.2f && r.sp.repeat_penalty == 1.3f && r.has_seed && r.sp.seed == UINT64_MAX);
    CHECK(r.stream && r.include_usage && r.n_stop == 2 && !strcmp(r.stop[1], "yz"));
    srv_request_free(&r);
    /* defaults; a one-string prompt array; max_completion_tokens; an integral real */
    CHECK(parse("{\"prompt\":[\"hi\"],\"max_completion_tokens\":4.0,\"stop\":\"\\n\"}", false, &r, msg, &param) == 0);
    CHECK(!r.chat && !strcmp(r.prompt, "hi") && r.max_tokens == 4 && r.sp.temp == 0.8f && !r.has_seed);
    CHECK(r.n_stop == 1 && !strcmp(r.stop[0], "\n") && !r.stream && !r.model);
    srv_request_free(&r);
    CHECK(parse("{\"messages\":[{\"role\":\"assistant\",\"content\":null}],\"model\":null}", true, &r, msg, &param) == 0);
    CHECK(r.n_msgs == 1 && !strcmp(r.msgs[0].content, "") && r.max_tokens == -1);
    srv_request_free(&r);
}

static void test_bad(void)
{
    static const struct {
        const char *body;
        bool chat;
        const char *param, *why;
    } bad[] = {
        {"{\"prompt\": \"x\", ", false, NULL, "malformed JSON"},
        {"[]", false, NULL, "must be a JSON object"},
        {"{\"prompt\":\"x\",\"prompt\":\"y\"}", false, NULL, "duplicate"},
        {"{}", false, "prompt", "'prompt' is required"},
        {"{\"prompt\":5}", false, "prompt", "must be a string"},
        {"{\"prompt\":[\"a\",\"b\"]}", false, "prompt", "must be a string"},
        {"{}", true, "messages", "'messages' is required"},
        {"{\"messages\":[]}", true, "messages", "must not be empty"},
        {"{\"messages\":[1]}", true, "messages", "messages[0] must be an object"},
        {"{\"messages\":[{\"content\":\"x\"}]}", true, "messages", "role must be a string"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":7}]}", true, "messages", "content must be"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}", true, "messages", "content must be"},
        {"{\"prompt\":\"x\",\"max_tokens\":0}", false, "max_tokens", "in [1,"},
        {"{\"prompt\":\"x\",\"max_tokens\":1.5}", false, "max_tokens", "must be an integer"},
        {"{\"prompt\":\"x\",\"temperature\":\"hot\"}", false, "temperature", "must be a number"},
        {"{\"prompt\":\"x\",\"top_p\":1.5}", false, "top_p", "in [0, 1]"},
        {"{\"prompt\":\"x\",\"n\":2}", false, "n", "in [1, 1]"},
        {"{\"prompt\":\"x\",\"stream\":1}", false, "stream", "true or false"},
        {"{\"prompt\":\"x\",\"stop\":[1]}", false, "stop", "stop[0] must be a string"},
        {"{\"prompt\":\"x\",\"stop\":{}}", false, "stop", "string or an array"},
        {"{\"prompt\":\"x\",\"model\":3}", false, "model", "must be a string"},
        {"{\"prompt\":\"x\",\"stream_options\":[]}", false, "stream_options", "must be an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        srv_request r;
        char msg[256];
        const char *param = "unset";
        int rc = parse(bad[i].body, bad[i].chat, &r, msg, &param);
        CHECKF(rc == -1, "case %zu accepted", i);
        CHECKF(strstr(msg, bad[i].why) != NULL, "case %zu: '%s' (want '%s')", i, msg, bad[i].why);
        CHECKF(bad[i].param ? param && !strcmp(param, bad[i].param) : param == NULL, "case %zu: param %s", i,
               param ? param : "(null)");
        CHECKF(r.msgs == NULL && r.prompt == NULL && r.model == NULL && r.n_stop == 0, "case %zu: not emptied", i);
    }
    char *e = srv_error_json("bad \"x\"", "invalid_request_error", "prompt", NULL);
    CHECK(e != NULL);
    json_error_t je;
    json_t *o = e ? json_loads(e, 0, &je) : NULL;
    CHECK(o && !strcmp(json_string_value(json_object_get(json_object_get(o, "error"), "param")), "prompt"));
    CHECK(o && json_is_null(json_object_get(json_object_get(o, "error"), "code")));
    json_decref(o);
    free(e);
}

static void test_utf8(void)
{
    CHECK(srv_utf8_incomplete_tail("ab", 2) == 0);
    CHECK(srv_utf8_incomplete_tail("a\xc3", 2) == 1);
    CHECK(srv_utf8_incomplete_tail("a\xe2\x82", 3) == 2);
    CHECK(srv_utf8_incomplete_tail("\xf0\x9f\x98", 3) == 3);
    CHECK(srv_utf8_incomplete_tail("\xf0\x9f\x98\x80", 4) == 0);
    CHECK(srv_utf8_incomplete_tail("a\xff", 2) == 0);
    char *out = NULL;
    size_t len = 0, cap = 0;
    CHECK(srv_utf8_append_clean(&out, &len, &cap, "a\xc3\xa9\xff\xed\xa0\x80z", 8) == 0);
    /* a, é, then U+FFFD for 0xFF and for each byte of the surrogate, z */
    CHECK(out && !strcmp(out, "a\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz"));
    CHECK(srv_utf8_append_clean(&out, &len, &cap, "\0!", 2) == 0 && len == 16 + 4);
    free(out);
}

/* The fuzz harness's checks on every corpus file. */
static int corpus(void)
{
    const char *src = getenv("MP_SRC");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus_serve", src ? src : "..");
    DIR *d = opendir(dir);
    CHECKF(d != NULL, "%s", dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        char buf[65536];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        if (len < 1) continue;
        srv_request r;
        char msg[256];
        const char *param;
        if (srv_request_parse(buf + 1, len - 1, buf[0] & 1, &DEF, &r, msg, sizeof msg, &param) == 0) {
            CHECKF(buf[0] & 1 ? r.n_msgs >= 1 : r.prompt != NULL, "%s", de->d_name);
            srv_request_free(&r);
        } else {
            CHECKF(msg[0], "%s: no reason", de->d_name);
        }
        n++;
    }
    closedir(d);
    return n;
}

int main(void)
{
    test_good();
    test_bad();
    test_utf8();
    int n = corpus();
    CHECKF(n >= 5, "corpus: %d files", n);
    printf("corpus: %d files\n", n);
    MP_TEST_DONE();
}
