/* Chat templates: the model's tokenizer.chat_template (a Jinja program) or a
 * built-in format, rendered into the prompt text the model was trained on.
 *
 * A template is parsed once (mp_tmpl_parse) and rendered for each
 * conversation (mp_tmpl_render_chat). What the interpreter cannot do is an
 * error naming the template and the line (MP_E_UNSUPPORTED for a construct
 * it lacks, MP_E_CORRUPT for a syntax error, MP_E_INVAL for a template
 * that raises or fails at render time): a prompt is never rendered wrong
 * silently. Semantics follow llama.cpp's Jinja engine (common/jinja/), the
 * reference for parity. */
#ifndef MP_TEMPLATE_H
#define MP_TEMPLATE_H

#include "moepager/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct mp_tmpl mp_tmpl;

/* One chat message (borrowed strings, UTF-8, NUL-terminated). */
typedef struct mp_tmpl_msg {
    const char *role;    /* "system", "user", "assistant", ... */
    const char *content;
} mp_tmpl_msg;

/* What a chat render sees: `messages`, `add_generation_prompt`,
 * `bos_token`, `eos_token` (NULL: ""). */
typedef struct mp_tmpl_chat {
    const mp_tmpl_msg *msgs;
    size_t n_msgs;
    bool add_generation_prompt;
    const char *bos_token, *eos_token;
    bool add_bos, add_eos; /* tokenizing adds them: drop a leading BOS / trailing EOS the template wrote */
    time_t now;            /* the clock of strftime_now and date_string; 0: time(NULL) */
} mp_tmpl_chat;

/* Parses src (NUL-terminated) as a Jinja template; name (borrowed for the
 * call, copied) is used in error messages ("Qwen3.jinja:12: ..."). Returns
 * MP_OK and *out (mp_tmpl_free), or MP_E_CORRUPT / MP_E_UNSUPPORTED naming
 * name and line, or MP_E_NOMEM. */
int mp_tmpl_parse(mp_tmpl **out, const char *src, const char *name, mp_err *err);
void mp_tmpl_free(mp_tmpl *t); /* NULL-safe */

/* Renders the conversation c with t. On MP_OK *out is a malloc'd
 * NUL-terminated string the caller frees; on failure *out is NULL and err
 * names the template and line. */
int mp_tmpl_render_chat(const mp_tmpl *t, const mp_tmpl_chat *c, char **out, mp_err *err);

/* Built-in templates (Jinja sources, static strings): the i-th name, NULL
 * past the end; index 0 ("chatml") is llama.cpp's fallback for a file
 * without a template. mp_tmpl_builtin returns the source for a name, or
 * NULL when there is no such built-in. */
const char *mp_tmpl_builtin_name_at(size_t i);
const char *mp_tmpl_builtin(const char *name);

/* llama.cpp rewrites two known-broken constructs in real templates before
 * parsing them (gpt-oss's "<|channel|>" check that raises on assistant
 * content, and a Mistral [TOOL_CALLS] check); does the same to src.
 * Returns a malloc'd copy (the caller frees it), or NULL on OOM. */
char *mp_tmpl_fixup(const char *src);

#endif
