/* A Jinja subset interpreter for chat templates, with the semantics of
 * llama.cpp's engine (common/jinja/: its lexer's whitespace rules with
 * trim_blocks and lstrip_blocks on, its operator precedence, its scoping,
 * its builtins), so that a template renders byte for byte as llama.cpp
 * renders it.
 *
 * A program is parsed once into an arena it owns; each render allocates its
 * values in a fresh arena freed on return, so a render never leaks whatever
 * the template does. Errors unwind (longjmp) to the entry point and come
 * back as one line naming the template and line. */
#ifndef MP_JINJA_H
#define MP_JINJA_H

#include "moepager/status.h"
#include "template/template.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct mp_jinja mp_jinja;

/* Parses src; name is used in error messages. MP_OK and *out, or
 * MP_E_CORRUPT (a syntax error: "name:LINE: ..."), MP_E_UNSUPPORTED (a
 * statement the interpreter lacks), MP_E_NOMEM. */
int mp_jinja_parse(mp_jinja **out, const char *src, const char *name, mp_err *err);
void mp_jinja_free(mp_jinja *j); /* NULL-safe */

/* The globals of one render, as llama.cpp builds them for a chat. */
typedef struct mp_jinja_input {
    const mp_tmpl_msg *msgs;
    size_t n_msgs;
    bool typed_content;        /* content as [{"type": "text", "text": ...}] */
    bool empty_content_array;  /* (caps probe) the first message's content is [] */
    bool typed_system_assistant; /* only system and assistant contents typed (llama.cpp's Ministral 3 handler) */
    bool add_generation_prompt;/* defined (true) only when set, as llama.cpp */
    bool define_enable_thinking;
    bool enable_thinking;
    bool tools_empty_array;    /* (caps probe) tools = [] */
    const char *bos_token, *eos_token;
    const char *datetime, *date_string; /* NULL: left undefined */
    time_t now;                /* strftime_now's clock (local time) */
} mp_jinja_input;

/* What the caps probe learns about messages[0].content. */
typedef struct mp_jinja_stats {
    bool content0_used;        /* read through a member access, a filter or a loop */
    bool content0_is_string_test; /* tested with `is string` */
    bool content0_array_access;   /* indexed, iterated or selectattr'ed as a list */
} mp_jinja_stats;

/* Renders j with in. On MP_OK *out is malloc'd (the caller frees it).
 * stats (may be NULL) is filled even when rendering fails. Errors:
 * MP_E_INVAL (the template raised, or a type error: "name:LINE: ..."),
 * MP_E_UNSUPPORTED (a filter, test or method the interpreter lacks),
 * MP_E_NOMEM. */
int mp_jinja_render(const mp_jinja *j, const mp_jinja_input *in, char **out, mp_jinja_stats *stats, mp_err *err);

#endif
