/* Chat templates: built-ins, llama.cpp's fix-ups, and the render entry
 * point. First version: the ChatML built-in renders natively; any other
 * template is refused by name (the Jinja interpreter comes next). */
#include "template/template.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

/* llama.cpp's CHATML_TEMPLATE_SRC (common/chat.cpp), byte for byte: the
 * template used when the file has none. */
static const char chatml_src[] =
    "{%- for message in messages -%}\n"
    "  {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}";

static const struct {
    const char *name, *src;
} builtins[] = {
    {"chatml", chatml_src},
};

const char *mp_tmpl_builtin_name_at(size_t i)
{
    return i < sizeof builtins / sizeof builtins[0] ? builtins[i].name : NULL;
}

const char *mp_tmpl_builtin(const char *name)
{
    for (size_t i = 0; name && i < sizeof builtins / sizeof builtins[0]; i++)
        if (!strcmp(builtins[i].name, name)) return builtins[i].src;
    return NULL;
}

struct mp_tmpl {
    char *name;
    bool chatml;
};

int mp_tmpl_parse(mp_tmpl **out, const char *src, const char *name, mp_err *err)
{
    *out = NULL;
    if (!name) name = "template";
    if (strcmp(src, chatml_src) != 0)
        return mp_err_set(err, MP_E_UNSUPPORTED, "%s:1: only the built-in ChatML template can be rendered so far", name);
    mp_tmpl *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) {
        free(t);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    t->chatml = true;
    *out = t;
    return MP_OK;
}

void mp_tmpl_free(mp_tmpl *t)
{
    if (!t) return;
    free(t->name);
    free(t);
}

/* A growing string. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

int mp_tmpl_render_chat(const mp_tmpl *t, const mp_tmpl_chat *c, char **out, mp_err *err)
{
    *out = NULL;
    sbuf b = {0};
    for (size_t i = 0; i < c->n_msgs; i++) {
        if (!c->msgs[i].role || !c->msgs[i].content) {
            free(b.p);
            return mp_err_set(err, MP_E_INVAL, "%s: message %zu has no role or content", t->name, i);
        }
        sb_puts(&b, "<|im_start|>");
        sb_puts(&b, c->msgs[i].role);
        sb_puts(&b, "\n");
        sb_puts(&b, c->msgs[i].content);
        sb_puts(&b, "<|im_end|>\n");
    }
    if (c->add_generation_prompt) sb_puts(&b, "<|im_start|>assistant\n");
    sb_put(&b, "", 0);
    if (b.oom) {
        free(b.p);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    *out = b.p;
    return MP_OK;
}

/* Replaces every occurrence of pat in s (malloc'd) with rep; returns the new
 * string (s freed) or NULL on OOM (s freed). */
static char *replace_all(char *s, const char *pat, const char *rep)
{
    size_t lp = strlen(pat), lr = strlen(rep);
    sbuf b = {0};
    const char *p = s;
    for (const char *q; (q = strstr(p, pat)); p = q + lp) {
        sb_put(&b, p, (size_t)(q - p));
        sb_put(&b, rep, lr);
    }
    sb_puts(&b, p);
    free(s);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p ? b.p : strdup("");
}

char *mp_tmpl_fixup(const char *src)
{
    char *s = strdup(src);
    if (!s) return NULL;
    /* the same conditions and replacements as common_chat_templates_init */
    if (strstr(s, "<|channel|>") && strstr(s, "in message.content or"))
        s = replace_all(s,
                        "{%- if \"<|channel|>analysis<|message|>\" in message.content or "
                        "\"<|channel|>final<|message|>\" in message.content %}",
                        "{%- if false %}");
    if (s && strstr(s, "[TOOL_CALLS]") && strstr(s, "if (message['content'] is none or"))
        s = replace_all(s,
                        "{%- if (message['content'] is none or message['content'] == '' or "
                        "message['content']|length == 0) and (message['tool_calls'] is not defined or "
                        "message['tool_calls'] is none or message['tool_calls']|length == 0) %}",
                        "{%- if false %}");
    return s;
}
