/* moepager serve: the OpenAI request bodies, parsed and checked with
 * jansson, and the JSON error replies. Nothing here touches the engine, so
 * the libFuzzer harness (tests/fuzz/fuzz_serve_request.c) runs it alone. */
#ifndef MP_SERVE_REQUEST_H
#define MP_SERVE_REQUEST_H

#include "moepager/moepager.h"

#include <stdbool.h>
#include <stddef.h>

#define SRV_MAX_STOP 16 /* stop strings per request (OpenAI allows 4) */

typedef struct srv_msg {
    char *role;    /* "system", "user", "assistant", "tool", ... */
    char *content; /* text parts concatenated; "" for a null content */
} srv_msg;

typedef struct srv_request {
    bool chat;            /* /v1/chat/completions (messages), else /v1/completions (prompt) */
    char *model;          /* NULL when absent */
    srv_msg *msgs;        /* chat: n_msgs >= 1 */
    size_t n_msgs;
    char *prompt;         /* completions */
    int max_tokens;       /* -1: until end of text or of the context */
    mp_sampler_params sp; /* the defaults given, then the request's fields */
    bool has_seed;        /* else the server draws one */
    bool stream;
    bool include_usage;   /* stream_options.include_usage: one more chunk with the usage */
    char *stop[SRV_MAX_STOP];
    int n_stop;
} srv_request;

/* Parses body[0..len) (need not be NUL-terminated) as the request of the
 * chat (chat true) or completions endpoint, starting from the sampler
 * defaults (mp_sampler_default_params()). Returns 0 and fills *out (free
 * with srv_request_free); on a bad request returns -1 with a one-line reason
 * in msg[cap] and the offending field's name in *param (a static string,
 * or NULL when the body as a whole is at fault), *out left empty. Unknown
 * fields are ignored, as llama.cpp's server does. */
int srv_request_parse(const char *body, size_t len, bool chat, const mp_sampler_params *defaults, srv_request *out,
                      char *msg, size_t cap, const char **param);
void srv_request_free(srv_request *r); /* NULL-safe; leaves *r empty */

/* {"error":{"message":..,"type":..,"param":..,"code":..}} as OpenAI sends it
 * (param and code may be NULL: JSON null). Returns a malloc'd string, or
 * NULL when out of memory. */
char *srv_error_json(const char *message, const char *type, const char *param, const char *code);

/* UTF-8 helpers for streamed text (a token may end inside a character). */
/* Bytes at the end of s[0..n) that begin a character not yet complete
 * (0..3): hold them back until the next token. */
size_t srv_utf8_incomplete_tail(const char *s, size_t n);
/* Appends s[0..n) to *dst (len, cap: a growable buffer) with every invalid
 * sequence replaced by U+FFFD, so jansson accepts it. Returns 0, or -1 when
 * out of memory. */
int srv_utf8_append_clean(char **dst, size_t *len, size_t *cap, const char *s, size_t n);

#endif
