/* Chat prompts: messages -> the text the model was trained on, with the
 * model's own chat template (mp_chat_apply_template: its Jinja program,
 * ChatML for a file without one) or the --chat-template override. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_chat_render(const mp_engine *e, const char *tmpl, const cli_chat_msg *msgs, size_t n, bool add_gen,
                    char **out, char *msg, size_t cap)
{
    mp_chat_msg *m = calloc(n ? n : 1, sizeof *m);
    if (!m) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) m[i] = (mp_chat_msg){msgs[i].role, msgs[i].content};
    mp_err err = {0};
    *out = NULL;
    int rc = mp_chat_apply_template(e, tmpl, m, n, add_gen, out, &err);
    free(m);
    if (rc) {
        snprintf(msg, cap, "%s", err.msg[0] ? err.msg : mp_strerror(rc));
        return -1;
    }
    return 0;
}

int cli_chat_split(const mp_engine *e, const char *tmpl, const cli_chat_msg *msgs, size_t n_msgs,
                   const int32_t *ids, size_t n)
{
    mp_engine_info in;
    mp_engine_get_info(e, &in);
    if (in.n_checkpoints == 0 || n < 2) return (int)n;
    char *text = NULL, msg[512];
    if (cli_chat_render(e, tmpl, msgs, n_msgs, false, &text, msg, sizeof msg)) return (int)n;
    const unsigned flags = MP_TOKENIZE_ADD_SPECIAL | MP_TOKENIZE_PARSE_SPECIAL;
    size_t n0 = 0;
    int32_t *ids0 = NULL;
    int rc = mp_engine_tokenize(e, text, strlen(text), flags, NULL, 0, &n0, NULL);
    if ((rc == MP_OK || rc == MP_E_RANGE) && n0 > 0 && (ids0 = malloc(sizeof *ids0 * n0)) &&
        mp_engine_tokenize(e, text, strlen(text), flags, ids0, n0, &n0, NULL) == MP_OK) {
        size_t i = 0;
        while (i < n0 && i < n && ids0[i] == ids[i]) i++;
        n0 = i;
    } else {
        n0 = n;
    }
    free(ids0);
    free(text);
    return n0 >= 1 && n0 < n ? (int)n0 : (int)n;
}

int cli_chat_check(const mp_engine *e, const char *tmpl)
{
    /* One user turn is the least every chat template renders: a template that fails on
     * it (a missing file, a syntax error, a construct the interpreter lacks) would fail
     * every request, so it is refused at start rather than turn after turn. */
    const cli_chat_msg probe = {"user", "Hello"};
    char *text = NULL, msg[512];
    if (cli_chat_render(e, tmpl, &probe, 1, true, &text, msg, sizeof msg)) {
        cli_error("chat template: %s", msg);
        return -1;
    }
    free(text);
    return 0;
}
