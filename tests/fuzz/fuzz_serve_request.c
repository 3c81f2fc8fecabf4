/* libFuzzer entry for the serve request parser: the first byte picks the
 * endpoint (chat or completions), the rest is the body. A body is either
 * refused with a message and the name of a field (or none), or accepted
 * with fields inside their documented ranges; either way nothing leaks and
 * nothing is read out of bounds. The UTF-8 helpers run on the same bytes:
 * their output must be valid UTF-8 that jansson accepts. Built by
 * tools/fuzz_serve.sh. */
#include "../../src/cli/serve_request.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const bool chat = data[0] & 1;
    const char *body = (const char *)data + 1;
    const size_t len = size - 1;
    const mp_sampler_params def = {.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f,
                                   .repeat_last_n = 64, .seed = 0};
    srv_request r;
    char msg[256];
    const char *param = NULL;
    if (srv_request_parse(body, len, chat, &def, &r, msg, sizeof msg, &param) == 0) {
        if (chat ? (r.n_msgs < 1 || !r.msgs) : !r.prompt) abort();
        if (r.max_tokens == 0 || r.max_tokens < -1) abort();
        if (r.sp.top_p < 0 || r.sp.top_p > 1 || r.sp.min_p < 0 || r.sp.min_p > 1 || r.sp.temp < 0) abort();
        if (r.n_stop < 0 || r.n_stop > SRV_MAX_STOP) abort();
        for (int i = 0; i < r.n_stop; i++)
            if (!r.stop[i] || !r.stop[i][0]) abort();
        srv_request_free(&r);
    } else {
        if (!msg[0]) abort();
        char *e = srv_error_json(msg, "invalid_request_error", param, NULL);
        if (!e) abort(); /* the message may quote invalid UTF-8: it falls back, never fails */
        free(e);
    }
    /* UTF-8: a clean copy is valid (jansson takes it); the held-back tail is
     * at most 3 bytes */
    char *out = NULL;
    size_t ol = 0, oc = 0;
    if (srv_utf8_append_clean(&out, &ol, &oc, body, len)) abort();
    json_t *s = json_stringn(out ? out : "", ol);
    if (!s) abort();
    json_decref(s);
    free(out);
    if (srv_utf8_incomplete_tail(body, len) > 3) abort();
    return 0;
}
