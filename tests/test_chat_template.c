/* mp_chat_apply_template (the public API): built-ins by name, a template
 * file given as the override, a file's own tokenizer.chat_template (a real
 * vocabulary rewritten with the key set), the ChatML fallback for a file
 * without one, and the refusals (an unknown name, a missing file, a message
 * without content), each a one-line message. */
#include "mp_test.h"

#include "moepager/moepager.h"
#include "gguf/gguf.h"
#include "template/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const mp_chat_msg conv[] = {
    {"system", "You are terse."},
    {"user", "Hi"},
    {"assistant", "Hello."},
    {"user", "2+2?"},
};

static const char want_chatml[] = "<|im_start|>system\nYou are terse.<|im_end|>\n"
                                  "<|im_start|>user\nHi<|im_end|>\n"
                                  "<|im_start|>assistant\nHello.<|im_end|>\n"
                                  "<|im_start|>user\n2+2?<|im_end|>\n"
                                  "<|im_start|>assistant\n";

/* Writes the vocabulary at src to dst with tokenizer.chat_template = tmpl
 * (NULL: left out). */
static int write_with_template(const char *src, const char *dst, const char *tmpl)
{
    mp_gguf *g = NULL;
    mp_err err = {0};
    int rc = mp_gguf_open(&g, src, NULL, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return rc;
    }
    mp_gguf_writer *w = mp_gguf_writer_create();
    for (uint64_t i = 0; !rc && i < mp_gguf_n_kv(g); i++) {
        const mp_gguf_kv *kv = mp_gguf_kv_at(g, i);
        if (!strcmp(kv->key.ptr, "tokenizer.chat_template")) continue;
        rc = mp_gguf_writer_set_value(w, kv->key.ptr, &kv->value);
    }
    if (!rc && tmpl) rc = mp_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl);
    if (!rc) rc = mp_gguf_writer_write(w, dst, NULL, NULL, &err);
    if (rc) fprintf(stderr, "writing %s: %s\n", dst, err.msg);
    mp_gguf_writer_free(w);
    mp_gguf_free(g);
    return rc;
}

static mp_engine *open_vocab(const char *path)
{
    mp_params p = mp_params_default();
    p.vocab_only = true;
    mp_engine *e = NULL;
    mp_err err = {0};
    if (mp_engine_open(&e, path, &p, &err)) fprintf(stderr, "%s: %s\n", path, err.msg);
    return e;
}

int main(void)
{
    char vocab[1024], dir[] = "/tmp/mp_chat_tmpl_XXXXXX";
    snprintf(vocab, sizeof vocab, "%s/tests/data/vocab/ggml-vocab-llama-spm.gguf", mp_test_src_dir());
    if (access(vocab, R_OK)) MP_TEST_SKIP("%s is missing", vocab);
    if (!mkdtemp(dir)) MP_TEST_SKIP("mkdtemp failed");
    char *out = NULL;
    mp_err err = {0};

    /* the built-in by name, no engine */
    CHECK(!strcmp(mp_chat_template_name_at(0), "chatml"));
    CHECK(mp_chat_apply_template(NULL, "chatml", conv, 4, true, &out, &err) == MP_OK);
    CHECKF(out && !strcmp(out, want_chatml), "got [%s]", out ? out : "(null)");
    free(out);
    /* no generation prompt; an empty conversation */
    CHECK(mp_chat_apply_template(NULL, "chatml", conv, 1, false, &out, &err) == MP_OK);
    CHECK(out && !strcmp(out, "<|im_start|>system\nYou are terse.<|im_end|>\n"));
    free(out);
    CHECK(mp_chat_apply_template(NULL, "chatml", NULL, 0, true, &out, &err) == MP_OK);
    CHECK(out && !strcmp(out, "<|im_start|>assistant\n"));
    free(out);

    /* an unknown name that is no file either */
    err = (mp_err){0};
    CHECK(mp_chat_apply_template(NULL, "no-such-format", conv, 2, true, &out, &err) == MP_E_NOTFOUND);
    CHECK(out == NULL);
    CHECKF(strstr(err.msg, "no-such-format") && strstr(err.msg, "chatml") && !strchr(err.msg, '\n'), "%s", err.msg);

    /* a message without content */
    err = (mp_err){0};
    const mp_chat_msg bad[] = {{"user", NULL}};
    CHECK(mp_chat_apply_template(NULL, "chatml", bad, 1, true, &out, &err) == MP_E_INVAL);
    CHECK(out == NULL && strstr(err.msg, "message 0"));

    /* a template file as the override */
    char path[1200];
    snprintf(path, sizeof path, "%s/chatml.jinja", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(mp_tmpl_builtin("chatml"), f);
        fclose(f);
    }
    err = (mp_err){0};
    CHECKF(mp_chat_apply_template(NULL, path, conv, 4, true, &out, &err) == MP_OK, "%s", err.msg);
    CHECK(out && !strcmp(out, want_chatml));
    free(out);
    unlink(path);

    /* templates that cannot be rendered are refused with the file and line, never rendered wrong */
    static const struct {
        const char *src;
        int want;
        const char *line;
    } bad_tmpl[] = {
        {"\n{% for m in messages %}\n{{ m.content }}\n", MP_E_CORRUPT, ":2:"},               /* no endfor */
        {"ok\n{% frobnicate %}", MP_E_UNSUPPORTED, ":2:"},                                    /* unknown statement */
        {"a\nb\n{{ messages | no_such_filter }}", MP_E_UNSUPPORTED, ":3:"},
        {"x\n{% if messages[0].content == 'You are terse.' %}{{ raise_exception('no terse') }}{% endif %}", MP_E_INVAL,
         ":2:"},
        {"{{ 'unterminated }}", MP_E_CORRUPT, ":1:"},
    };
    for (size_t i = 0; i < sizeof bad_tmpl / sizeof bad_tmpl[0]; i++) {
        snprintf(path, sizeof path, "%s/bad%zu.jinja", dir, i);
        f = fopen(path, "w");
        if (!f) continue;
        fputs(bad_tmpl[i].src, f);
        fclose(f);
        err = (mp_err){0};
        int rc = mp_chat_apply_template(NULL, path, conv, 4, true, &out, &err);
        CHECKF(rc == bad_tmpl[i].want && out == NULL, "template %zu: rc %d (%s)", i, rc, err.msg);
        CHECKF(strstr(err.msg, path) && strstr(err.msg, bad_tmpl[i].line) && !strchr(err.msg, '\n'),
               "template %zu: %s", i, err.msg);
        if (i == 3) CHECKF(strstr(err.msg, "no terse"), "raise_exception's message: %s", err.msg);
        free(out);
        out = NULL;
        unlink(path);
    }

    /* a file without a template: ChatML, as llama.cpp */
    mp_engine *e = open_vocab(vocab);
    CHECK(e != NULL);
    if (e) {
        CHECK(mp_engine_chat_template(e) == NULL);
        err = (mp_err){0};
        CHECKF(mp_chat_apply_template(e, NULL, conv, 4, true, &out, &err) == MP_OK, "%s", err.msg);
        CHECK(out && !strcmp(out, want_chatml));
        free(out);
        mp_engine_free(e);
    }

    /* the file's own template; bos_token and eos_token are the vocabulary's */
    char gpath[1200];
    snprintf(gpath, sizeof gpath, "%s/with-template.gguf", dir);
    const char *own = "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}"
                      "{% if add_generation_prompt %}[assistant]{% endif %}";
    CHECK(write_with_template(vocab, gpath, own) == MP_OK);
    e = open_vocab(gpath);
    CHECK(e != NULL);
    if (e) {
        CHECK(mp_engine_chat_template(e) && !strcmp(mp_engine_chat_template(e), own));
        err = (mp_err){0};
        /* the SPM vocabulary adds BOS when tokenizing: the template's leading <s> is dropped, as llama.cpp does */
        int rc = mp_chat_apply_template(e, NULL, conv + 1, 2, true, &out, &err);
        CHECKF(rc == MP_OK, "%s", err.msg);
        CHECKF(out && !strcmp(out, "[user]Hi</s>[assistant]Hello.</s>[assistant]"), "got [%s]", out ? out : "");
        free(out);
        mp_engine_free(e);
        /* a broken template in the file: refused naming the file, the key and the line */
        CHECK(write_with_template(vocab, gpath, "{% for m in messages %}\n{{ m.content | bogus }}{% endfor %}") == MP_OK);
        e = open_vocab(gpath);
        CHECK(e != NULL);
        err = (mp_err){0};
        CHECK(e && mp_chat_apply_template(e, NULL, conv, 4, true, &out, &err) == MP_E_UNSUPPORTED && out == NULL);
        CHECKF(strstr(err.msg, gpath) && strstr(err.msg, ":tokenizer.chat_template:2:"), "%s", err.msg);
        /* the override wins over the file's template */
        CHECK(mp_chat_apply_template(e, "chatml", conv, 4, true, &out, &err) == MP_OK);
        CHECK(out && !strcmp(out, want_chatml));
        free(out);
        mp_engine_free(e);
    }
    unlink(gpath);
    rmdir(dir);
    MP_TEST_DONE();
}
