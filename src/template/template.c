/* Chat templates: built-ins, llama.cpp's fix-ups, and the chat layer
 * around the Jinja interpreter (jinja.c): the capability probes and the
 * message reshaping llama.cpp's common_chat_templates_apply does before it
 * renders (system role merged into the first user turn where the template
 * ignores it, "developer" mapped to "system", typed content), the extra
 * globals it defines (enable_thinking, datetime, date_string), and the BOS
 * it drops when tokenizing adds one. */
#include "template/template.h"

#include "common/err.h"
#include "template/jinja.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* llama.cpp's CHATML_TEMPLATE_SRC (common/chat.cpp), byte for byte: the
 * template used when the file has none. */
static const char chatml_src[] =
    "{%- for message in messages -%}\n"
    "  {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}";

/* The other built-ins: llama.cpp's named formats (llama_chat_apply_template in
 * src/llama-chat.cpp, for files without a Jinja template) written as Jinja, so they
 * run through the same interpreter; tests/test_chat_parity.c checks each against
 * that C++ code's renderings (tests/data/chat/golden-builtin/). Every output is an
 * expression between whitespace-controlled tags, so no template text is trimmed. */
#define T_MISTRAL(lead, trail, trim_asst)                                                        \
    "{%- set ns = namespace(inside=false) -%}"                                                  \
    "{%- for m in messages -%}"                                                                 \
    "{%- if not ns.inside -%}{{ '" lead "[INST]" trail "' }}{%- set ns.inside = true -%}{%- endif -%}" \
    "{%- if m.role == 'system' -%}{{ m.content + '\\n\\n' }}"                                  \
    "{%- elif m.role == 'user' -%}{{ m.content + '" lead "[/INST]' }}"                          \
    "{%- else -%}{{ '" trail "' + (m.content" trim_asst ") + '</s>' }}{%- set ns.inside = false -%}" \
    "{%- endif -%}{%- endfor -%}"
#define T_MISTRAL7(trail)                                                                        \
    "{%- for m in messages -%}"                                                                 \
    "{%- if m.role == 'system' -%}{{ '[SYSTEM_PROMPT]" trail "' + m.content + '[/SYSTEM_PROMPT]' }}" \
    "{%- elif m.role == 'user' -%}{{ '[INST]" trail "' + m.content + '[/INST]' }}"              \
    "{%- else -%}{{ '" trail "' + m.content + '</s>' }}{%- endif -%}{%- endfor -%}"
#define T_LLAMA2(sys_open, sys_close)                                                            \
    "{%- set ns = namespace(inside=true) -%}{{ '[INST] ' }}"                                   \
    "{%- for m in messages -%}"                                                                 \
    "{%- if not ns.inside -%}{%- set ns.inside = true -%}{{ '[INST] ' }}{%- endif -%}"          \
    "{%- if m.role == 'system' -%}{{ '" sys_open "' + m.content + '" sys_close "' }}"           \
    "{%- elif m.role == 'user' -%}{{ m.content + ' [/INST]' }}"                                 \
    "{%- else -%}{{ m.content + '</s>' }}{%- set ns.inside = false -%}{%- endif -%}{%- endfor -%}"
#define T_ROLE_LINES(open, mid, close, gen)                                                      \
    "{%- for m in messages -%}{{ '" open "' + m.role + '" mid "' + m.content + '" close "' }}{%- endfor -%}" \
    "{%- if add_generation_prompt -%}{{ '" gen "' }}{%- endif -%}"

static const struct {
    const char *name, *src;
} builtins[] = {
    {"chatml", chatml_src},
    {"llama3", "{%- for m in messages -%}"
               "{{ '<|start_header_id|>' + m.role + '<|end_header_id|>\\n\\n' + (m.content | trim) + '<|eot_id|>' }}"
               "{%- endfor -%}"
               "{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif -%}"},
    {"llama2", T_LLAMA2("", "\\n")},
    {"llama2-sys", T_LLAMA2("<<SYS>>\\n", "\\n<</SYS>>\\n\\n")},
    {"mistral-v1", T_MISTRAL(" ", " ", "")},
    {"mistral-v3", T_MISTRAL("", " ", " | trim")},
    {"mistral-v3-tekken", T_MISTRAL("", "", "")},
    {"mistral-v7", T_MISTRAL7(" ")},
    {"mistral-v7-tekken", T_MISTRAL7("")},
    {"deepseek2", "{%- for m in messages -%}"
                  "{%- if m.role == 'system' -%}{{ m.content + '\\n\\n' }}"
                  "{%- elif m.role == 'user' -%}{{ 'User: ' + m.content + '\\n\\n' }}"
                  "{%- elif m.role == 'assistant' -%}{{ 'Assistant: ' + m.content + '<｜end▁of▁sentence｜>' }}"
                  "{%- endif -%}{%- endfor -%}"
                  "{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}"},
    {"deepseek3", "{%- for m in messages -%}"
                  "{%- if m.role == 'system' -%}{{ m.content + '\\n\\n' }}"
                  "{%- elif m.role == 'user' -%}{{ '<｜User｜>' + m.content }}"
                  "{%- elif m.role == 'assistant' -%}{{ '<｜Assistant｜>' + m.content + '<｜end▁of▁sentence｜>' }}"
                  "{%- endif -%}{%- endfor -%}"
                  "{%- if add_generation_prompt -%}{{ '<｜Assistant｜>' }}{%- endif -%}"},
    {"kimi-k2", "{%- for m in messages -%}"
                "{%- if m.role == 'system' -%}{{ '<|im_system|>system<|im_middle|>' }}"
                "{%- elif m.role == 'user' -%}{{ '<|im_user|>user<|im_middle|>' }}"
                "{%- elif m.role == 'assistant' -%}{{ '<|im_assistant|>assistant<|im_middle|>' }}"
                "{%- elif m.role == 'tool' -%}{{ '<|im_system|>tool<|im_middle|>' }}{%- endif -%}"
                "{{ m.content + '<|im_end|>' }}{%- endfor -%}"
                "{%- if add_generation_prompt -%}{{ '<|im_assistant|>assistant<|im_middle|>' }}{%- endif -%}"},
    {"gpt-oss", "{%- for m in messages -%}"
                "{{ '<|start|>' + m.role + '<|message|>' + m.content + ('<|return|>' if m.role == 'assistant' else '<|end|>') }}"
                "{%- endfor -%}{%- if add_generation_prompt -%}{{ '<|start|>assistant' }}{%- endif -%}"},
    {"chatglm4", "{{ '[gMASK]<sop>' }}"
                 "{%- for m in messages -%}{{ '<|' + m.role + '|>\\n' + m.content }}{%- endfor -%}"
                 "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- endif -%}"},
    {"phi3", T_ROLE_LINES("<|", "|>\\n", "<|end|>\\n", "<|assistant|>\\n")},
    {"zephyr", T_ROLE_LINES("<|", "|>\\n", "<|endoftext|>\\n", "<|assistant|>\\n")},
    {"gemma", "{%- set ns = namespace(sys='') -%}"
              "{%- for m in messages -%}"
              "{%- if m.role == 'system' -%}{%- set ns.sys = ns.sys + (m.content | trim) -%}"
              "{%- else -%}"
              "{%- set role = 'model' if m.role == 'assistant' else m.role -%}"
              "{{ '<start_of_turn>' + role + '\\n' }}"
              "{%- if ns.sys and role != 'model' -%}{{ ns.sys + '\\n\\n' }}{%- set ns.sys = '' -%}{%- endif -%}"
              "{{ (m.content | trim) + '<end_of_turn>\\n' }}"
              "{%- endif -%}{%- endfor -%}"
              "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"},
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

/* What llama.cpp learns by running the template on probe conversations
 * (common/jinja/caps.cpp) and then uses to reshape the messages. */
typedef struct tmpl_caps {
    bool string_content, typed_content, system_role;
} tmpl_caps;

struct mp_tmpl {
    mp_jinja *prog;
    char *name;
    bool stepfun_trim; /* llama.cpp trims message contents for this family */
    bool map_developer;
    bool gpt_oss;      /* llama.cpp's gpt-oss handler: <|return|> -> <|end|> without a generation prompt */
    bool ministral3;   /* llama.cpp's Ministral 3 handler: system and assistant contents as text blocks */
    tmpl_caps caps;
};

static void probe_caps(mp_tmpl *t)
{
    tmpl_caps c = {.string_content = true, .typed_content = false, .system_role = true};
    mp_jinja_input in = {.add_generation_prompt = true, .tools_empty_array = true, .bos_token = "", .eos_token = ""};
    mp_jinja_stats st;
    char *out = NULL;
    static const char marker[] = "STRING_MARKER";
    /* typed content: the content is a string; is it used as a list? */
    mp_tmpl_msg m1[] = {{"user", marker}};
    in.msgs = m1;
    in.n_msgs = 1;
    int rc = mp_jinja_render(t->prog, &in, &out, &st, NULL);
    bool checks_for_string = st.content0_is_string_test, as_array = st.content0_array_access;
    if (as_array) c.typed_content = true;
    if (rc) c.string_content = false;
    else if (as_array && !strstr(out, marker)) c.string_content = false;
    free(out);
    out = NULL;
    if (checks_for_string) {
        in.empty_content_array = true;
        rc = mp_jinja_render(t->prog, &in, &out, &st, NULL);
        if (st.content0_array_access && rc == MP_OK) c.typed_content = true;
        free(out);
        out = NULL;
        in.empty_content_array = false;
    }
    /* system role: is the system message's content read at all? */
    mp_tmpl_msg m3[] = {{"system", "System message"}, {"user", "User message"}};
    in.msgs = m3;
    in.n_msgs = 2;
    mp_jinja_render(t->prog, &in, &out, &st, NULL);
    if (!st.content0_used) c.system_role = false;
    free(out);
    t->caps = c;
}

int mp_tmpl_parse(mp_tmpl **out, const char *src, const char *name, mp_err *err)
{
    *out = NULL;
    if (!name) name = "template";
    mp_tmpl *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) {
        free(t);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    int rc = mp_jinja_parse(&t->prog, src, name, err);
    if (rc) {
        mp_tmpl_free(t);
        return rc;
    }
    t->stepfun_trim = strstr(src, "You have access to the following functions in JSONSchema format") != NULL;
    t->map_developer = strstr(src, "<|channel|>") == NULL;
    /* the same tests as common_chat_try_specialized_template */
    t->gpt_oss = !t->map_developer;
    t->ministral3 = strstr(src, "[SYSTEM_PROMPT]") && strstr(src, "[TOOL_CALLS]") && strstr(src, "[ARGS]") &&
                    !strstr(src, "[CALL_ID]");
    probe_caps(t);
    *out = t;
    return MP_OK;
}

void mp_tmpl_free(mp_tmpl *t)
{
    if (!t) return;
    mp_jinja_free(t->prog);
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

static char *trim_ws(const char *s)
{
    size_t a = 0, e = strlen(s);
    while (a < e && isspace((unsigned char)s[a])) a++;
    while (e > a && isspace((unsigned char)s[e - 1])) e--;
    char *r = malloc(e - a + 1);
    if (r) {
        memcpy(r, s + a, e - a);
        r[e - a] = '\0';
    }
    return r;
}

int mp_tmpl_render_chat(const mp_tmpl *t, const mp_tmpl_chat *c, char **out, mp_err *err)
{
    *out = NULL;
    for (size_t i = 0; i < c->n_msgs; i++)
        if (!c->msgs[i].role || !c->msgs[i].content)
            return mp_err_set(err, MP_E_INVAL, "%s: message %zu has no role or content", t->name, i);
    /* the messages as llama.cpp reshapes them before rendering */
    size_t n = c->n_msgs;
    mp_tmpl_msg *m = calloc(n ? n : 1, sizeof *m);
    char **owned = calloc(n ? n : 1, sizeof *owned);
    int rc = MP_OK;
    if (!m || !owned) {
        rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        m[i] = c->msgs[i];
        if (t->stepfun_trim) {
            if (!(owned[i] = trim_ws(m[i].content))) {
                rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
                goto done;
            }
            m[i].content = owned[i];
        }
        if (t->map_developer && !strcmp(m[i].role, "developer")) m[i].role = "system";
    }
    size_t first = 0;
    if (!t->caps.system_role && n && !strcmp(m[0].role, "system")) {
        if (n > 1) {
            sbuf b = {0};
            sb_puts(&b, m[0].content);
            sb_puts(&b, "\n");
            sb_puts(&b, m[1].content);
            if (b.oom) {
                free(b.p);
                rc = mp_err_set(err, MP_E_NOMEM, "out of memory");
                goto done;
            }
            free(owned[1]);
            owned[1] = b.p;
            m[1].content = b.p;
        }
        first = 1;
    }
    char datetime[64], date_string[64];
    struct tm tm;
    time_t now = c->now ? c->now : time(NULL);
    localtime_r(&now, &tm);
    strftime(datetime, sizeof datetime, "%b %d %Y", &tm);
    strftime(date_string, sizeof date_string, "%d %b %Y", &tm);
    mp_jinja_input in = {
        .msgs = m + first,
        .n_msgs = n - first,
        .typed_content = !t->caps.string_content && t->caps.typed_content,
        .typed_system_assistant = t->ministral3,
        .add_generation_prompt = c->add_generation_prompt,
        .define_enable_thinking = true,
        .enable_thinking = true,
        .bos_token = c->bos_token ? c->bos_token : "",
        .eos_token = c->eos_token ? c->eos_token : "",
        .datetime = datetime,
        .date_string = date_string,
        .now = now,
    };
    char *r = NULL;
    if ((rc = mp_jinja_render(t->prog, &in, &r, NULL, err))) goto done;
    /* llama.cpp drops a BOS the template wrote when tokenizing adds one (and an EOS likewise) */
    size_t bl = strlen(in.bos_token), el = strlen(in.eos_token), rl = strlen(r);
    if (c->add_bos && bl && rl >= bl && !memcmp(r, in.bos_token, bl)) {
        memmove(r, r + bl, rl - bl + 1);
        rl -= bl;
    }
    if (c->add_eos && el && rl >= el && !memcmp(r + rl - el, in.eos_token, el)) r[rl - el] = '\0';
    if (t->gpt_oss && !c->add_generation_prompt) {
        /* the last "<|return|>" (8 bytes) becomes "<|end|>" (7): the conversation goes on */
        char *last = NULL;
        for (char *p = strstr(r, "<|return|>"); p; p = strstr(p + 1, "<|return|>")) last = p;
        if (last) memmove(last + 7, last + 10, strlen(last + 10) + 1), memcpy(last, "<|end|>", 7);
    }
    *out = r;
done:
    if (owned)
        for (size_t i = 0; i < n; i++) free(owned[i]);
    free(owned);
    free(m);
    return rc;
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
