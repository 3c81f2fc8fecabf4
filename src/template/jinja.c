/* The Jinja interpreter (see jinja.h): lexer, parser, evaluator, builtins.
 * llama.cpp's engine (common/jinja/) is the reference for every rule here;
 * where it differs from Python's Jinja2 (whitespace, precedence of filters
 * and tests, scoping by copying, lenient undefined values) we follow it. */
#include "template/jinja.h"

#include "common/err.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------------ */

typedef struct ar_block {
    struct ar_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} ar_block;

typedef struct arena {
    ar_block *head;
    jmp_buf *oom;    /* where to unwind when malloc fails or the cap is passed */
    size_t total;    /* bytes held */
    bool over;       /* the unwinding was for the cap, not malloc */
} arena;

/* A render (or a parse) may hold at most this much: a template that loops
 * forever making values ends with an error instead of taking the machine. */
#define MP_JINJA_ARENA_CAP ((size_t)256 << 20)
/* Evaluation steps (expressions + statements) per render, and nesting depth. */
#define MP_JINJA_MAX_STEPS 50000000L
#define MP_JINJA_MAX_DEPTH 400

static void *ar_alloc(arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->used + n > a->head->cap) {
        size_t cap = n > 32768 ? n : 32768;
        if (a->total + cap > MP_JINJA_ARENA_CAP) {
            a->over = true;
            longjmp(*a->oom, 1);
        }
        ar_block *b = malloc(sizeof *b + cap);
        if (!b) longjmp(*a->oom, 1);
        a->total += cap;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static void ar_free(arena *a)
{
    for (ar_block *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    a->head = NULL;
}

static char *ar_strndup(arena *a, const char *s, size_t n)
{
    char *p = ar_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- growing strings ---------------------------------------------------------- */

typedef struct sbuf {
    arena *a;
    char *p;
    size_t n, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = ar_alloc(b->a, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_putc(sbuf *b, char c) { sb_put(b, &c, 1); }
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ---- errors ------------------------------------------------------------------- */

typedef struct jerr {
    jmp_buf jb;
    int status;
    char msg[MP_ERR_MSG_MAX];
} jerr;

/* ---- lexer -------------------------------------------------------------------- */

typedef enum tok_t {
    T_TEXT, T_COMMENT, T_OPEN_STMT, T_CLOSE_STMT, T_OPEN_EXPR, T_CLOSE_EXPR,
    T_LPAREN, T_RPAREN, T_LBRACE, T_RBRACE, T_LBRACKET, T_RBRACKET, T_COMMA, T_DOT, T_COLON, T_PIPE,
    T_CMP, T_ADD, T_MUL, T_EQUALS, T_UNARY, T_NUM, T_STR, T_IDENT, T_EOF,
} tok_t;

typedef struct token {
    tok_t t;
    const char *v; /* NUL-terminated */
    size_t len;
    size_t pos;    /* offset in the normalised source */
} token;

typedef struct lexer {
    arena *a;
    jerr *e;
    const char *name;
    const char *src; /* normalised: \r\n -> \n, one trailing \n dropped */
    size_t n;
    token *toks;
    size_t n_toks, cap;
} lexer;

static int line_of(const char *src, size_t pos)
{
    int line = 1;
    for (size_t i = 0; i < pos && src[i]; i++) line += src[i] == '\n';
    return line;
}

static _Noreturn void fail_at(jerr *e, int status, const char *name, const char *src, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static _Noreturn void fail_at(jerr *e, int status, const char *name, const char *src, size_t pos, const char *fmt, ...)
{
    int k = snprintf(e->msg, sizeof e->msg, "%s:%d: ", name, line_of(src, pos));
    if (k < 0 || (size_t)k >= sizeof e->msg) k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg + k, sizeof e->msg - (size_t)k, fmt, ap);
    va_end(ap);
    e->status = status;
    longjmp(e->jb, 1);
}

static void push_tok(lexer *L, tok_t t, const char *v, size_t len, size_t pos)
{
    if (L->n_toks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        token *nt = ar_alloc(L->a, cap * sizeof *nt);
        if (L->n_toks) memcpy(nt, L->toks, L->n_toks * sizeof *nt);
        L->toks = nt;
        L->cap = cap;
    }
    L->toks[L->n_toks++] = (token){t, ar_strndup(L->a, v, len), len, pos};
}

static bool next_is(const lexer *L, size_t pos, const char *set, size_t k)
{
    if (pos + k >= L->n) return false;
    return strchr(set, L->src[pos + k]) != NULL && L->src[pos + k] != '\0';
}

static bool is_word(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* Consumes while pred holds, handling backslash escapes as llama.cpp's
 * consume_while does (for string literals). */
static void lex_string(lexer *L, size_t *pos, char quote, sbuf *out)
{
    size_t p = *pos;
    while (p < L->n && L->src[p] != quote) {
        char c = L->src[p];
        if (c == '\\') {
            p++;
            if (p >= L->n) fail_at(L->e, MP_E_CORRUPT, L->name, L->src, p, "unexpected end of input after escape character");
            char x = L->src[p++], u;
            switch (x) {
            case 'n': u = '\n'; break;
            case 't': u = '\t'; break;
            case 'r': u = '\r'; break;
            case 'b': u = '\b'; break;
            case 'f': u = '\f'; break;
            case 'v': u = '\v'; break;
            case '\\': u = '\\'; break;
            case '\'': u = '\''; break;
            case '"': u = '"'; break;
            default: fail_at(L->e, MP_E_CORRUPT, L->name, L->src, p, "unknown escape character \\%c", x);
            }
            sb_putc(out, u);
            continue;
        }
        sb_putc(out, c);
        p++;
    }
    if (p >= L->n) fail_at(L->e, MP_E_CORRUPT, L->name, L->src, *pos, "unterminated string literal");
    *pos = p;
}

static size_t lex_number(const lexer *L, size_t p)
{
    while (p < L->n && isdigit((unsigned char)L->src[p])) p++;
    if (p + 1 < L->n && L->src[p] == '.' && isdigit((unsigned char)L->src[p + 1])) {
        p++;
        while (p < L->n && isdigit((unsigned char)L->src[p])) p++;
    }
    return p;
}

static const struct {
    const char *seq;
    tok_t t;
} lex_table[] = {
    {"{%-", T_OPEN_STMT}, {"-%}", T_CLOSE_STMT}, {"{{-", T_OPEN_EXPR}, {"-}}", T_CLOSE_EXPR},
    {"{%", T_OPEN_STMT}, {"%}", T_CLOSE_STMT}, {"{{", T_OPEN_EXPR}, {"}}", T_CLOSE_EXPR},
    {"(", T_LPAREN}, {")", T_RPAREN}, {"{", T_LBRACE}, {"}", T_RBRACE}, {"[", T_LBRACKET},
    {"]", T_RBRACKET}, {",", T_COMMA}, {".", T_DOT}, {":", T_COLON}, {"|", T_PIPE},
    {"<=", T_CMP}, {">=", T_CMP}, {"==", T_CMP}, {"!=", T_CMP}, {"<", T_CMP}, {">", T_CMP},
    {"+", T_ADD}, {"-", T_ADD}, {"~", T_ADD}, {"*", T_MUL}, {"/", T_MUL}, {"%", T_MUL}, {"=", T_EQUALS},
};

static void lex(lexer *L)
{
    const char *s = L->src;
    size_t n = L->n, pos = 0;
    int brace_depth = 0;
    while (pos < n) {
        size_t start_pos = pos;
        tok_t last = L->n_toks ? L->toks[L->n_toks - 1].t : T_CLOSE_STMT;
        if (last == T_CLOSE_STMT || last == T_CLOSE_EXPR || last == T_COMMENT) {
            bool rstrip_prev = false, can_rm_nl = false;
            if (pos > 3) {
                char c0 = s[pos - 3], c1 = s[pos - 2], c2 = s[pos - 1];
                rstrip_prev = c0 == '-' && (c1 == '%' || c1 == '}' || c1 == '#') && c2 == '}';
                can_rm_nl = (c1 == '#' || c1 == '%' || c1 == '-') && c2 == '}';
            }
            size_t start = pos, end = start;
            while (pos < n && !(s[pos] == '{' && next_is(L, pos, "%{#", 1))) end = ++pos;
            bool text_from_start = false; /* llama.cpp's quirk: trimmed "from the start of the string" */
            if (pos < n && s[pos] == '{' && next_is(L, pos, "%#-", 1)) {
                size_t cur = end;
                while (cur > start) {
                    char c = s[cur - 1];
                    if (cur == 1) {
                        end = 0;
                        text_from_start = true;
                        break;
                    }
                    if (c == '\n') {
                        end = cur;
                        break;
                    }
                    if (!isspace((unsigned char)c)) break;
                    --cur;
                }
            }
            const char *tp;
            size_t tl;
            if (text_from_start && end < start) { /* substr(start, npos): the rest */
                tp = s + start;
                tl = n - start;
            } else {
                tp = s + start;
                tl = end - start;
            }
            if (can_rm_nl && tl && tp[0] == '\n') {
                tp++;
                tl--;
            }
            if (rstrip_prev)
                while (tl && strchr(" \t\r\n", tp[0])) {
                    tp++;
                    tl--;
                }
            bool lstrip_cur = pos < n && s[pos] == '{' && next_is(L, pos, "{%#", 1) && next_is(L, pos, "-", 2);
            if (lstrip_cur)
                while (tl && strchr(" \t\r\n", tp[tl - 1])) tl--;
            if (tl) {
                push_tok(L, T_TEXT, tp, tl, start_pos);
                continue;
            }
            if (pos >= n) break;
        }
        if (s[pos] == '{' && next_is(L, pos, "#", 1)) {
            start_pos = pos;
            pos += 2;
            size_t c0 = pos;
            while (!(s[pos] == '#' && next_is(L, pos, "}", 1))) {
                if (pos + 2 >= n) fail_at(L->e, MP_E_CORRUPT, L->name, s, start_pos, "missing end of comment tag");
                pos++;
            }
            push_tok(L, T_COMMENT, s + c0, pos - c0, start_pos);
            pos += 2;
            continue;
        }
        if (s[pos] == '-' && (last == T_OPEN_EXPR || last == T_OPEN_STMT)) {
            pos++;
            if (pos >= n) break;
        }
        while (pos < n && isspace((unsigned char)s[pos])) pos++;
        if (pos >= n) break;
        char ch = s[pos];
        bool closing = ch == '-' && next_is(L, pos, "%}", 1);
        if (!closing && (ch == '-' || ch == '+')) {
            start_pos = pos;
            tok_t lt = L->n_toks ? L->toks[L->n_toks - 1].t : T_EOF;
            if (lt == T_TEXT || lt == T_EOF) fail_at(L->e, MP_E_CORRUPT, L->name, s, pos, "unexpected character: %c", ch);
            if (!(lt == T_IDENT || lt == T_NUM || lt == T_STR || lt == T_RPAREN || lt == T_RBRACKET)) {
                pos++;
                size_t e = isdigit((unsigned char)s[pos]) ? lex_number(L, pos) : pos;
                if (e > pos) {
                    sbuf b = {.a = L->a};
                    sb_putc(&b, ch);
                    sb_put(&b, s + pos, e - pos);
                    push_tok(L, T_NUM, b.p, b.n, start_pos);
                } else {
                    push_tok(L, T_UNARY, &ch, 1, start_pos);
                }
                pos = e;
                continue;
            }
        }
        bool matched = false;
        for (size_t i = 0; i < sizeof lex_table / sizeof lex_table[0]; i++) {
            const char *seq = lex_table[i].seq;
            size_t sl = strlen(seq);
            if (!strcmp(seq, "}}") && brace_depth > 0) continue;
            if (pos + sl <= n && !memcmp(s + pos, seq, sl)) {
                tok_t t = lex_table[i].t;
                push_tok(L, t, seq, sl, pos);
                if (t == T_OPEN_EXPR) brace_depth = 0;
                else if (t == T_LBRACE) brace_depth++;
                else if (t == T_RBRACE) brace_depth--;
                pos += sl;
                matched = true;
                break;
            }
        }
        if (matched) continue;
        if (ch == '\'' || ch == '"') {
            start_pos = pos;
            pos++;
            sbuf b = {.a = L->a};
            sb_put(&b, "", 0);
            lex_string(L, &pos, ch, &b);
            push_tok(L, T_STR, b.p, b.n, start_pos);
            pos++;
            continue;
        }
        if (isdigit((unsigned char)ch)) {
            size_t e = lex_number(L, pos);
            push_tok(L, T_NUM, s + pos, e - pos, pos);
            pos = e;
            continue;
        }
        if (is_word(ch)) {
            size_t e = pos;
            while (e < n && is_word(s[e])) e++;
            push_tok(L, T_IDENT, s + pos, e - pos, pos);
            pos = e;
            continue;
        }
        fail_at(L->e, MP_E_CORRUPT, L->name, s, pos, "unexpected character: %c", ch);
    }
    push_tok(L, T_EOF, "", 0, n);
}

/* ---- syntax tree ------------------------------------------------------------------ */

typedef enum node_t {
    /* statements */
    N_TEXT, N_COMMENT, N_OUTPUT, N_IF, N_FOR, N_SET, N_MACRO, N_BREAK, N_CONTINUE, N_CALLBLOCK, N_FILTERBLOCK, N_NOOP,
    /* expressions */
    N_STR, N_INT, N_FLOAT, N_IDENT, N_ARRAY, N_TUPLE, N_OBJECT, N_BINARY, N_UNARY, N_TERNARY, N_SELECT, N_TEST,
    N_FILTER, N_CALL, N_MEMBER, N_SLICE, N_KWARG, N_SPREAD, N_BLANK,
} node_t;

typedef struct node node;
typedef struct nodes {
    node **v;
    size_t n;
} nodes;

struct node {
    node_t t;
    size_t pos;
    const char *s;     /* N_STR, N_IDENT, N_TEXT; operator for N_BINARY/N_UNARY */
    size_t slen;
    int64_t i;
    double f;
    bool flag;         /* N_MEMBER: computed; N_TEST: negate */
    node *a, *b, *c;   /* operands / test / callee / object ... */
    nodes list;        /* elements, args, body */
    nodes list2;       /* alternate / object values / caller args */
};

typedef struct parser {
    arena *a;
    jerr *e;
    const char *name, *src;
    token *toks;
    size_t n, cur;
    int depth; /* recursion of parse_primary / parse_statement */
} parser;

static _Noreturn void perr(parser *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static _Noreturn void perr(parser *P, const char *fmt, ...)
{
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    size_t pos = P->cur < P->n ? P->toks[P->cur].pos : strlen(P->src);
    fail_at(P->e, MP_E_CORRUPT, P->name, P->src, pos, "%s", m);
}

static node *mk(parser *P, node_t t, size_t tokpos)
{
    node *x = ar_alloc(P->a, sizeof *x);
    x->t = t;
    x->pos = tokpos < P->n ? P->toks[tokpos].pos : strlen(P->src);
    return x;
}

typedef struct nvec {
    node **v;
    size_t n, cap;
} nvec;

static void nv_push(parser *P, nvec *v, node *x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        node **nv = ar_alloc(P->a, cap * sizeof *nv);
        if (v->n) memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}
static nodes nv_done(nvec *v) { return (nodes){v->v, v->n}; }

static token *peek(parser *P, size_t k) { return &P->toks[P->cur + k < P->n ? P->cur + k : P->n - 1]; }
static bool is(parser *P, tok_t t) { return peek(P, 0)->t == t; }
static bool is_ident(parser *P, const char *name) { return is(P, T_IDENT) && !strcmp(peek(P, 0)->v, name); }
static token *next_tok(parser *P)
{
    token *t = peek(P, 0);
    if (P->cur < P->n) P->cur++;
    return t;
}
static void expect(parser *P, tok_t t, const char *what)
{
    if (!is(P, t)) perr(P, "%s", what);
    P->cur++;
}
static void expect_ident(parser *P, const char *name)
{
    if (!is_ident(P, name)) perr(P, "expected '%s'", name);
    P->cur++;
}
static bool is_statement(parser *P, const char *const *names)
{
    if (!(peek(P, 0)->t == T_OPEN_STMT && peek(P, 1)->t == T_IDENT)) return false;
    for (; *names; names++)
        if (!strcmp(peek(P, 1)->v, *names)) return true;
    return false;
}

static node *parse_any(parser *P);
static node *parse_expression(parser *P);
static node *parse_primary(parser *P);
static nodes parse_args(parser *P);
static node *parse_call(parser *P, node *callee);

/* Statements until one of `names` (not consumed); fails at the end of input. */
static nodes parse_block(parser *P, const char *const *names, const char *what)
{
    nvec v = {0};
    size_t open = P->cur ? P->cur - 1 : 0; /* the opening statement's %} */
    while (P->cur > 0 && open > 0 && P->toks[open].t != T_OPEN_STMT) open--;
    while (!is_statement(P, names)) {
        if (is(P, T_EOF))
            fail_at(P->e, MP_E_CORRUPT, P->name, P->src, P->toks[open].pos, "this block is never closed: missing {%% %s %%}",
                    what);
        nv_push(P, &v, parse_any(P));
    }
    return nv_done(&v);
}

static node *parse_expression_sequence(parser *P, bool primary)
{
    size_t start = P->cur;
    nvec v = {0};
    nv_push(P, &v, primary ? parse_primary(P) : parse_expression(P));
    bool tuple = is(P, T_COMMA);
    while (is(P, T_COMMA)) {
        P->cur++;
        nv_push(P, &v, primary ? parse_primary(P) : parse_expression(P));
    }
    if (!tuple) return v.v[0];
    node *x = mk(P, N_TUPLE, start);
    x->list = nv_done(&v);
    return x;
}

static node *parse_if_stmt(parser *P, size_t start)
{
    static const char *const stop[] = {"elif", "else", "endif", NULL}, *const endif[] = {"endif", NULL};
    node *x = mk(P, N_IF, start);
    x->a = parse_expression(P);
    expect(P, T_CLOSE_STMT, "expected %}");
    x->list = parse_block(P, stop, "endif");
    nvec alt = {0};
    if (is_statement(P, (const char *const[]){"elif", NULL})) {
        size_t p0 = P->cur;
        P->cur += 2;
        nv_push(P, &alt, parse_if_stmt(P, p0));
    } else if (is_statement(P, (const char *const[]){"else", NULL})) {
        P->cur += 2;
        expect(P, T_CLOSE_STMT, "expected %}");
        alt.v = NULL;
        nodes b = parse_block(P, endif, "endif");
        x->list2 = b;
        return x;
    }
    x->list2 = nv_done(&alt);
    return x;
}

static node *parse_statement_inner(parser *P);
static node *parse_statement(parser *P)
{
    if (++P->depth > MP_JINJA_MAX_DEPTH) perr(P, "statements nested too deeply");
    node *x = parse_statement_inner(P);
    P->depth--;
    return x;
}

static node *parse_statement_inner(parser *P)
{
    expect(P, T_OPEN_STMT, "expected {%");
    if (!is(P, T_IDENT)) perr(P, "unknown statement");
    size_t start = P->cur;
    token *nt = next_tok(P);
    const char *name = nt->v;
    node *x;
    if (!strcmp(name, "set")) {
        x = mk(P, N_SET, start);
        x->a = parse_expression_sequence(P, false);
        if (is(P, T_EQUALS)) {
            P->cur++;
            x->b = parse_expression_sequence(P, false);
        } else {
            expect(P, T_CLOSE_STMT, "expected %}");
            x->list = parse_block(P, (const char *const[]){"endset", NULL}, "endset");
            expect(P, T_OPEN_STMT, "expected {%");
            expect_ident(P, "endset");
        }
        expect(P, T_CLOSE_STMT, "expected %}");
    } else if (!strcmp(name, "if")) {
        x = parse_if_stmt(P, start);
        expect(P, T_OPEN_STMT, "expected {%");
        expect_ident(P, "endif");
        expect(P, T_CLOSE_STMT, "expected %}");
    } else if (!strcmp(name, "macro")) {
        x = mk(P, N_MACRO, start);
        x->a = parse_primary(P);
        if (x->a->t != N_IDENT) perr(P, "macro name must be an identifier");
        x->list2 = parse_args(P);
        expect(P, T_CLOSE_STMT, "expected %}");
        x->list = parse_block(P, (const char *const[]){"endmacro", NULL}, "endmacro");
        expect(P, T_OPEN_STMT, "expected {%");
        expect_ident(P, "endmacro");
        expect(P, T_CLOSE_STMT, "expected %}");
    } else if (!strcmp(name, "for")) {
        x = mk(P, N_FOR, start);
        x->a = parse_expression_sequence(P, true);
        if (!is_ident(P, "in")) perr(P, "expected 'in'");
        P->cur++;
        x->b = parse_expression(P);
        expect(P, T_CLOSE_STMT, "expected %}");
        x->list = parse_block(P, (const char *const[]){"endfor", "else", NULL}, "endfor");
        if (is_statement(P, (const char *const[]){"else", NULL})) {
            P->cur += 2;
            expect(P, T_CLOSE_STMT, "expected %}");
            x->list2 = parse_block(P, (const char *const[]){"endfor", NULL}, "endfor");
        }
        expect(P, T_OPEN_STMT, "expected {%");
        expect_ident(P, "endfor");
        expect(P, T_CLOSE_STMT, "expected %}");
    } else if (!strcmp(name, "break") || !strcmp(name, "continue")) {
        x = mk(P, name[0] == 'b' ? N_BREAK : N_CONTINUE, start);
        expect(P, T_CLOSE_STMT, "expected %}");
    } else if (!strcmp(name, "call")) {
        x = mk(P, N_CALLBLOCK, start);
        if (is(P, T_LPAREN)) x->list2 = parse_args(P);
        node *callee = parse_primary(P);
        if (callee->t != N_IDENT) perr(P, "expected identifier");
        node *call = mk(P, N_CALL, start);
        call->a = callee;
        call->list = parse_args(P);
        x->a = call;
        expect(P, T_CLOSE_STMT, "expected %}");
        x->list = parse_block(P, (const char *const[]){"endcall", NULL}, "endcall");
        expect(P, T_OPEN_STMT, "expected {%");
        expect_ident(P, "endcall");
        expect(P, T_CLOSE_STMT, "expected %}");
    } else if (!strcmp(name, "filter")) {
        x = mk(P, N_FILTERBLOCK, start);
        x->a = parse_primary(P);
        if (x->a->t == N_IDENT && is(P, T_LPAREN)) x->a = parse_call(P, x->a);
        expect(P, T_CLOSE_STMT, "expected %}");
        x->list = parse_block(P, (const char *const[]){"endfilter", NULL}, "endfilter");
        expect(P, T_OPEN_STMT, "expected {%");
        expect_ident(P, "endfilter");
        expect(P, T_CLOSE_STMT, "expected %}");
    } else if (!strcmp(name, "generation") || !strcmp(name, "endgeneration")) {
        x = mk(P, N_NOOP, start);
        P->cur++; /* llama.cpp skips one token: the %} */
    } else {
        P->cur = start;
        fail_at(P->e, MP_E_UNSUPPORTED, P->name, P->src, nt->pos, "unsupported statement: %s", name);
    }
    return x;
}

static node *parse_any(parser *P)
{
    size_t start = P->cur;
    token *t = peek(P, 0);
    node *x;
    switch (t->t) {
    case T_COMMENT:
        P->cur++;
        return mk(P, N_COMMENT, start);
    case T_TEXT:
        P->cur++;
        x = mk(P, N_TEXT, start);
        x->s = t->v;
        x->slen = t->len;
        return x;
    case T_OPEN_STMT:
        return parse_statement(P);
    case T_OPEN_EXPR:
        P->cur++;
        x = mk(P, N_OUTPUT, start);
        x->a = parse_expression(P);
        expect(P, T_CLOSE_EXPR, "expected }}");
        return x;
    default:
        perr(P, "unexpected token '%s'", t->v);
    }
}

static node *parse_if_expr(parser *P);
static node *parse_or(parser *P);

static node *binop(parser *P, size_t start, const char *op, node *l, node *r)
{
    node *x = mk(P, N_BINARY, start);
    x->s = op;
    x->a = l;
    x->b = r;
    return x;
}

static node *parse_expression(parser *P) { return parse_if_expr(P); }

static node *parse_if_expr(parser *P)
{
    node *a = parse_or(P);
    if (is_ident(P, "if")) {
        size_t start = P->cur;
        P->cur++;
        node *test = parse_or(P);
        if (is_ident(P, "else")) {
            size_t p0 = P->cur;
            P->cur++;
            node *x = mk(P, N_TERNARY, p0);
            x->a = test;
            x->b = a;
            x->c = parse_if_expr(P);
            return x;
        }
        node *x = mk(P, N_SELECT, start);
        x->a = a;
        x->b = test;
        return x;
    }
    return a;
}

static node *parse_not(parser *P);
static node *parse_and(parser *P)
{
    node *l = parse_not(P);
    while (is_ident(P, "and")) {
        size_t s = P->cur++;
        l = binop(P, s, "and", l, parse_not(P));
    }
    return l;
}
static node *parse_or(parser *P)
{
    node *l = parse_and(P);
    while (is_ident(P, "or")) {
        size_t s = P->cur++;
        l = binop(P, s, "or", l, parse_and(P));
    }
    return l;
}
static node *parse_cmp(parser *P);
static node *parse_not(parser *P)
{
    if (P->depth > MP_JINJA_MAX_DEPTH) perr(P, "expressions nested too deeply");
    if (is_ident(P, "not")) {
        P->depth++;
        size_t s = P->cur++;
        node *x = mk(P, N_UNARY, s);
        x->s = "not";
        x->a = parse_not(P);
        P->depth--;
        return x;
    }
    return parse_cmp(P);
}
static node *parse_add(parser *P);
static node *parse_cmp(parser *P)
{
    node *l = parse_add(P);
    for (;;) {
        size_t s = P->cur;
        const char *op;
        if (is_ident(P, "not") && peek(P, 1)->t == T_IDENT && !strcmp(peek(P, 1)->v, "in")) {
            op = "not in";
            P->cur += 2;
        } else if (is_ident(P, "in")) {
            op = "in";
            P->cur++;
        } else if (is(P, T_CMP)) {
            op = next_tok(P)->v;
        } else {
            break;
        }
        l = binop(P, s, op, l, parse_add(P));
    }
    return l;
}
static node *parse_mul(parser *P);
static node *parse_add(parser *P)
{
    node *l = parse_mul(P);
    while (is(P, T_ADD)) {
        size_t s = P->cur;
        const char *op = next_tok(P)->v;
        l = binop(P, s, op, l, parse_mul(P));
    }
    return l;
}
static node *parse_test(parser *P);
static node *parse_mul(parser *P)
{
    node *l = parse_test(P);
    while (is(P, T_MUL)) {
        size_t s = P->cur;
        const char *op = next_tok(P)->v;
        l = binop(P, s, op, l, parse_test(P));
    }
    return l;
}
static node *parse_filter(parser *P);
static node *parse_test(parser *P)
{
    node *operand = parse_filter(P);
    while (is_ident(P, "is")) {
        size_t s = P->cur++;
        bool neg = false;
        if (is_ident(P, "not")) {
            P->cur++;
            neg = true;
        }
        node *id = parse_primary(P);
        if (is(P, T_LPAREN)) id = parse_call(P, id);
        node *x = mk(P, N_TEST, s);
        x->a = operand;
        x->b = id;
        x->flag = neg;
        operand = x;
    }
    return operand;
}
static node *parse_unary(parser *P);
static node *parse_filter(parser *P)
{
    node *operand = parse_unary(P);
    while (is(P, T_PIPE)) {
        size_t s = P->cur++;
        node *f = parse_primary(P);
        if (is(P, T_LPAREN)) f = parse_call(P, f);
        node *x = mk(P, N_FILTER, s);
        x->a = operand;
        x->b = f;
        operand = x;
    }
    return operand;
}
static node *parse_member(parser *P, node *obj);
static node *parse_unary(parser *P)
{
    if (P->depth > MP_JINJA_MAX_DEPTH) perr(P, "expressions nested too deeply");
    if (is(P, T_UNARY)) {
        size_t s = P->cur;
        node *x = mk(P, N_UNARY, s);
        x->s = next_tok(P)->v;
        P->depth++;
        x->a = parse_unary(P);
        P->depth--;
        return x;
    }
    node *m = parse_member(P, parse_primary(P));
    return is(P, T_LPAREN) ? parse_call(P, m) : m;
}

static node *parse_call(parser *P, node *callee)
{
    size_t s = P->cur;
    node *x = mk(P, N_CALL, s);
    x->a = callee;
    x->list = parse_args(P);
    node *m = parse_member(P, x);
    return is(P, T_LPAREN) ? parse_call(P, m) : m;
}

static nodes parse_args(parser *P)
{
    expect(P, T_LPAREN, "expected (");
    nvec v = {0};
    while (!is(P, T_RPAREN)) {
        if (is(P, T_EOF)) perr(P, "expected )");
        node *arg;
        if (is(P, T_MUL) && !strcmp(peek(P, 0)->v, "*")) {
            size_t s = P->cur++;
            arg = mk(P, N_SPREAD, s);
            arg->a = parse_expression(P);
        } else {
            arg = parse_expression(P);
            if (is(P, T_EQUALS)) {
                size_t s = P->cur++;
                node *k = mk(P, N_KWARG, s);
                k->a = arg;
                k->b = parse_expression(P);
                arg = k;
            }
        }
        nv_push(P, &v, arg);
        if (is(P, T_COMMA)) P->cur++;
    }
    expect(P, T_RPAREN, "expected )");
    return nv_done(&v);
}

static node *parse_subscript(parser *P)
{
    nvec sl = {0};
    bool slice = false;
    size_t s = P->cur;
    while (!is(P, T_RBRACKET)) {
        if (is(P, T_EOF)) perr(P, "expected ]");
        if (is(P, T_COLON)) {
            nv_push(P, &sl, NULL);
            P->cur++;
            slice = true;
        } else {
            nv_push(P, &sl, parse_expression(P));
            if (is(P, T_COLON)) {
                P->cur++;
                slice = true;
            }
        }
    }
    if (slice) {
        node *x = mk(P, N_SLICE, s);
        x->a = sl.n > 0 ? sl.v[0] : NULL;
        x->b = sl.n > 1 ? sl.v[1] : NULL;
        x->c = sl.n > 2 ? sl.v[2] : NULL;
        return x;
    }
    if (!sl.n) return mk(P, N_BLANK, s);
    return sl.v[0];
}

static node *parse_member(parser *P, node *obj)
{
    size_t s = P->cur;
    while (is(P, T_DOT) || is(P, T_LBRACKET)) {
        bool computed = next_tok(P)->t == T_LBRACKET;
        node *prop;
        if (computed) {
            prop = parse_subscript(P);
            expect(P, T_RBRACKET, "expected ]");
        } else {
            prop = parse_primary(P);
        }
        node *x = mk(P, N_MEMBER, s);
        x->a = obj;
        x->b = prop;
        x->flag = computed;
        obj = x;
    }
    return obj;
}

static node *parse_primary_inner(parser *P);
static node *parse_primary(parser *P)
{
    if (++P->depth > MP_JINJA_MAX_DEPTH) perr(P, "expressions nested too deeply");
    node *x = parse_primary_inner(P);
    P->depth--;
    return x;
}

static node *parse_primary_inner(parser *P)
{
    size_t s = P->cur;
    token *t = next_tok(P);
    node *x;
    switch (t->t) {
    case T_NUM:
        if (strchr(t->v, '.')) {
            x = mk(P, N_FLOAT, s);
            x->f = strtod(t->v, NULL);
        } else {
            x = mk(P, N_INT, s);
            x->i = strtoll(t->v, NULL, 10);
        }
        return x;
    case T_STR: {
        sbuf b = {.a = P->a};
        sb_put(&b, t->v, t->len);
        while (is(P, T_STR)) {
            token *u = next_tok(P);
            sb_put(&b, u->v, u->len);
        }
        x = mk(P, N_STR, s);
        x->s = b.p;
        x->slen = b.n;
        return x;
    }
    case T_IDENT:
        x = mk(P, N_IDENT, s);
        x->s = t->v;
        x->slen = t->len;
        return x;
    case T_LPAREN:
        x = parse_expression_sequence(P, false);
        expect(P, T_RPAREN, "expected )");
        return x;
    case T_LBRACKET: {
        nvec v = {0};
        while (!is(P, T_RBRACKET)) {
            if (is(P, T_EOF)) perr(P, "expected ]");
            nv_push(P, &v, parse_expression(P));
            if (is(P, T_COMMA)) P->cur++;
        }
        P->cur++;
        x = mk(P, N_ARRAY, s);
        x->list = nv_done(&v);
        return x;
    }
    case T_LBRACE: {
        nvec k = {0}, v = {0};
        while (!is(P, T_RBRACE)) {
            if (is(P, T_EOF)) perr(P, "expected }");
            nv_push(P, &k, parse_expression(P));
            expect(P, T_COLON, "expected :");
            nv_push(P, &v, parse_expression(P));
            if (is(P, T_COMMA)) P->cur++;
        }
        P->cur++;
        x = mk(P, N_OBJECT, s);
        x->list = nv_done(&k);
        x->list2 = nv_done(&v);
        return x;
    }
    default:
        P->cur = s;
        perr(P, "unexpected token '%s'", t->v);
    }
}

/* ---- values --------------------------------------------------------------------- */

typedef enum vt { V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_ARR, V_OBJ, V_FUNC, V_KWARG } vt;

/* stats ops (the caps probe) */
enum { OP_IS_STRING = 1, OP_ARRAY_ACCESS = 2, OP_SELECTATTR = 4 };

typedef struct val val;
typedef struct rt rt;
typedef struct scope scope;
typedef val *(*builtin_fn)(rt *R, const node *at, val *self, val **args, size_t n);

struct val {
    vt t;
    bool used, tuple;
    unsigned ops;
    bool b;
    int64_t i;
    double f;
    const char *s; /* V_STR (NUL-terminated), V_FUNC / V_KWARG name */
    size_t n;      /* string length */
    val **items;   /* V_ARR; V_OBJ keys */
    val **vals;    /* V_OBJ values */
    size_t len, cap;
    /* V_FUNC: a builtin bound to self, or a macro / caller block */
    builtin_fn fn;
    val *self;
    const node *macro;     /* N_MACRO or N_CALLBLOCK */
    scope *closure;        /* the caller block's scope */
    val *kw;               /* V_KWARG's value */
};

struct scope {
    scope *parent;
    const char **names;
    val **vals;
    size_t n, cap;
};

struct rt {
    arena *a;
    jerr *e;
    const char *name, *src;
    int ctl;          /* 1: break, 2: continue */
    int depth;        /* macro recursion */
    int edepth;       /* eval / exec nesting */
    long steps;       /* evaluation steps so far */
    const node *cur;  /* the node being evaluated (for a line in out-of-room errors) */
    time_t now;
    val *undef, *none, *vtrue, *vfalse;
};

static _Noreturn void rerr(rt *R, const node *at, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static _Noreturn void rerr(rt *R, const node *at, int status, const char *fmt, ...)
{
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    fail_at(R->e, status, R->name, R->src, at ? at->pos : 0, "%s", m);
}

static val *mkv(rt *R, vt t)
{
    val *v = ar_alloc(R->a, sizeof *v);
    v->t = t;
    return v;
}
static val *mk_int(rt *R, int64_t i)
{
    val *v = mkv(R, V_INT);
    v->i = i;
    return v;
}
static val *mk_float(rt *R, double f)
{
    val *v = mkv(R, V_FLOAT);
    v->f = f;
    return v;
}
static val *mk_bool(rt *R, bool b) { return b ? R->vtrue : R->vfalse; }
static val *mk_strn(rt *R, const char *s, size_t n)
{
    val *v = mkv(R, V_STR);
    v->s = ar_strndup(R->a, s, n);
    v->n = n;
    return v;
}
static val *mk_str(rt *R, const char *s) { return mk_strn(R, s, strlen(s)); }
static val *mk_arr(rt *R) { return mkv(R, V_ARR); }
static val *mk_obj(rt *R) { return mkv(R, V_OBJ); }

static void arr_push(rt *R, val *a, val *x)
{
    if (a->len == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        val **ni = ar_alloc(R->a, cap * sizeof *ni);
        if (a->len) memcpy(ni, a->items, a->len * sizeof *ni);
        a->items = ni;
        if (a->t == V_OBJ) {
            val **nv = ar_alloc(R->a, cap * sizeof *nv);
            if (a->len) memcpy(nv, a->vals, a->len * sizeof *nv);
            a->vals = nv;
        }
        a->cap = cap;
    }
    a->items[a->len++] = x;
}

static bool veq(const val *a, const val *b);

static val *obj_get(val *o, const val *key)
{
    for (size_t i = 0; i < o->len; i++)
        if (veq(o->items[i], key)) return o->vals[i];
    return NULL;
}
static val *obj_gets(val *o, const char *key)
{
    for (size_t i = 0; i < o->len; i++)
        if (o->items[i]->t == V_STR && !strcmp(o->items[i]->s, key)) return o->vals[i];
    return NULL;
}
static void obj_set(rt *R, val *o, val *key, val *v)
{
    for (size_t i = 0; i < o->len; i++)
        if (veq(o->items[i], key)) {
            o->vals[i] = v;
            return;
        }
    arr_push(R, o, key);
    o->vals[o->len - 1] = v;
}
static void obj_sets(rt *R, val *o, const char *key, val *v) { obj_set(R, o, mk_str(R, key), v); }

static bool is_num(const val *v) { return v->t == V_INT || v->t == V_FLOAT || v->t == V_BOOL; }
static double as_f(const val *v) { return v->t == V_FLOAT ? v->f : v->t == V_BOOL ? (double)v->b : (double)v->i; }

static bool truthy(const val *v)
{
    switch (v->t) {
    case V_UNDEF: case V_NONE: return false;
    case V_BOOL: return v->b;
    case V_INT: return v->i != 0;
    case V_FLOAT: return v->f != 0.0;
    case V_STR: return v->n != 0;
    case V_ARR: case V_OBJ: return v->len != 0;
    default: return true;
    }
}

static bool veq(const val *a, const val *b)
{
    if (is_num(a) && is_num(b)) return as_f(a) == as_f(b);
    if (a->t != b->t) return false;
    switch (a->t) {
    case V_UNDEF: case V_NONE: return true;
    case V_STR: return a->n == b->n && !memcmp(a->s, b->s, a->n);
    case V_ARR:
        if (a->len != b->len || a->tuple != b->tuple) return false; /* (1, 2) != [1, 2], as llama.cpp */
        for (size_t i = 0; i < a->len; i++)
            if (!veq(a->items[i], b->items[i])) return false;
        return true;
    case V_OBJ:
        if (a->len != b->len) return false;
        for (size_t i = 0; i < a->len; i++)
            if (!veq(a->items[i], b->items[i]) || !veq(a->vals[i], b->vals[i])) return false;
        return true;
    default: return a == b;
    }
}

static void mark_used(val *v) { v->used = true; }

/* ---- to text: str(), repr() and JSON ------------------------------------------------ */

static void to_str(rt *R, sbuf *b, const val *v);

static void fmt_float(sbuf *b, double f)
{
    /* std::to_string ("%f"), trailing zeros dropped, one kept after the point */
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%f", f);
    size_t n = strlen(tmp);
    while (n && tmp[n - 1] == '0') n--;
    if (n && tmp[n - 1] == '.') tmp[n++] = '0';
    sb_put(b, tmp, n);
}

static void json_str(sbuf *b, const char *s, size_t n)
{
    sb_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case '\t': sb_puts(b, "\\t"); break;
        case '\b': sb_puts(b, "\\b"); break;
        case '\f': sb_puts(b, "\\f"); break;
        default:
            if (c < 0x20) sb_printf(b, "\\u%04x", c);
            else sb_putc(b, (char)c);
        }
    }
    sb_putc(b, '"');
}

static void repr(rt *R, sbuf *b, const val *v)
{
    if (v->t == V_STR) {
        if (memchr(v->s, '\'', v->n)) json_str(b, v->s, v->n);
        else {
            sb_putc(b, '\'');
            sb_put(b, v->s, v->n);
            sb_putc(b, '\'');
        }
        return;
    }
    to_str(R, b, v);
}

static void to_str(rt *R, sbuf *b, const val *v)
{
    switch (v->t) {
    case V_UNDEF: break;
    case V_NONE: sb_puts(b, "None"); break;
    case V_BOOL: sb_puts(b, v->b ? "True" : "False"); break;
    case V_INT: sb_printf(b, "%" PRId64, v->i); break;
    case V_FLOAT: fmt_float(b, v->f); break;
    case V_STR: sb_put(b, v->s, v->n); break;
    case V_ARR:
        sb_putc(b, v->tuple ? '(' : '[');
        for (size_t i = 0; i < v->len; i++) {
            if (i) sb_puts(b, ", ");
            repr(R, b, v->items[i]);
        }
        if (v->tuple && v->len == 1) sb_putc(b, ',');
        sb_putc(b, v->tuple ? ')' : ']');
        break;
    case V_OBJ:
        sb_putc(b, '{');
        for (size_t i = 0; i < v->len; i++) {
            if (i) sb_puts(b, ", ");
            repr(R, b, v->items[i]);
            sb_puts(b, ": ");
            repr(R, b, v->vals[i]);
        }
        sb_putc(b, '}');
        break;
    case V_FUNC: sb_puts(b, "Function"); break;
    case V_KWARG: sb_puts(b, "KwArg"); break;
    }
}

static const char *str_of(rt *R, const val *v, size_t *len)
{
    if (v->t == V_STR) {
        if (len) *len = v->n;
        return v->s;
    }
    sbuf b = {.a = R->a};
    sb_put(&b, "", 0);
    to_str(R, &b, v);
    if (len) *len = b.n;
    return b.p;
}

/* JSON as llama.cpp's tojson writes it: Python json.dumps style separators
 * (", " and ": ") without indent; with indent, newlines and `indent` spaces
 * per level and ":" followed by a space. */
static void to_json(rt *R, sbuf *b, const val *v, int indent, int level, const char *item_sep, const char *key_sep)
{
    switch (v->t) {
    case V_UNDEF: case V_NONE: sb_puts(b, "null"); break;
    case V_BOOL: sb_puts(b, v->b ? "true" : "false"); break;
    case V_INT: sb_printf(b, "%" PRId64, v->i); break;
    case V_FLOAT: sb_printf(b, "%g", v->f); break; /* std::ostream's default, as llama.cpp's tojson */
    case V_STR: json_str(b, v->s, v->n); break;
    case V_ARR: case V_OBJ: {
        bool obj = v->t == V_OBJ;
        sb_putc(b, obj ? '{' : '[');
        if (!v->len) {
            sb_putc(b, obj ? '}' : ']');
            break;
        }
        for (size_t i = 0; i < v->len; i++) {
            if (i) sb_puts(b, indent >= 0 ? "," : item_sep);
            if (indent >= 0) {
                sb_putc(b, '\n');
                for (int k = 0; k < (level + 1) * indent; k++) sb_putc(b, ' ');
            }
            if (obj) {
                const val *k = v->items[i];
                if (k->t == V_STR) json_str(b, k->s, k->n);
                else {
                    size_t kl;
                    const char *ks = str_of(R, k, &kl);
                    json_str(b, ks, kl);
                }
                sb_puts(b, key_sep);
                to_json(R, b, v->vals[i], indent, level + 1, item_sep, key_sep);
            } else {
                to_json(R, b, v->items[i], indent, level + 1, item_sep, key_sep);
            }
        }
        if (indent >= 0) {
            sb_putc(b, '\n');
            for (int k = 0; k < level * indent; k++) sb_putc(b, ' ');
        }
        sb_putc(b, obj ? '}' : ']');
        break;
    }
    default: sb_puts(b, "null"); break;
    }
}

static const char *type_name(const val *v)
{
    static const char *const names[] = {"Undefined", "None", "Boolean", "Integer", "Float", "String",
                                        "Array", "Object", "Function", "KwArg"};
    return names[v->t];
}

/* ---- scopes ----------------------------------------------------------------------- */

static scope *scope_new(rt *R, scope *parent)
{
    scope *s = ar_alloc(R->a, sizeof *s);
    s->parent = parent;
    return s;
}

static void scope_set(rt *R, scope *s, const char *name, val *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) {
            s->vals[i] = v;
            return;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const char **nn = ar_alloc(R->a, cap * sizeof *nn);
        val **nv = ar_alloc(R->a, cap * sizeof *nv);
        if (s->n) {
            memcpy(nn, s->names, s->n * sizeof *nn);
            memcpy(nv, s->vals, s->n * sizeof *nv);
        }
        s->names = nn;
        s->vals = nv;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->vals[s->n++] = v;
}

static val *scope_get(scope *s, const char *name)
{
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (!strcmp(s->names[i], name)) return s->vals[i];
    return NULL;
}

/* ---- arguments ------------------------------------------------------------------- */

typedef struct args {
    val **v;
    size_t n;
} args;

static val *kwarg(rt *R, const args *a, const char *key)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i]->t == V_KWARG && !strcmp(a->v[i]->s, key)) return a->v[i]->kw;
    return R->undef;
}
/* llama.cpp's get_kwarg_or_pos: the keyword, else the positional at pos (0 = first after self) */
static val *kw_or_pos(rt *R, const args *a, const char *key, size_t pos)
{
    val *v = kwarg(R, a, key);
    if (v->t == V_UNDEF && pos < a->n && a->v[pos]->t != V_KWARG) return a->v[pos];
    return v;
}
static val *pos_arg(rt *R, const node *at, const args *a, size_t pos, const char *fn)
{
    if (pos < a->n) return a->v[pos];
    rerr(R, at, MP_E_INVAL, "%s: expected at least %zu arguments, got %zu", fn, pos + 1, a->n);
}

/* ---- evaluation ------------------------------------------------------------------- */

static val *eval(rt *R, scope *S, const node *x);
static void exec_list(rt *R, scope *S, const nodes *l, sbuf *out);
static val *call_value(rt *R, scope *S, const node *at, val *fn, args *a);
static val *call_builtin(rt *R, scope *S, const node *at, const char *name, val *self, args *a, bool *found);
static bool run_test(rt *R, scope *S, const node *at, const char *name, val *x, args *a);

static val *index_val(rt *R, const node *at, val *obj, val *prop)
{
    if (prop->t == V_UNDEF || obj->t == V_UNDEF) return R->undef;
    if (obj->t == V_OBJ) {
        val *v = obj_get(obj, prop);
        return v ? v : R->undef;
    }
    if (obj->t == V_ARR || obj->t == V_STR) {
        if (prop->t == V_INT) {
            int64_t i = prop->i;
            if (obj->t == V_ARR) {
                if (i < 0) i += (int64_t)obj->len;
                return i >= 0 && i < (int64_t)obj->len ? obj->items[i] : R->undef;
            }
            return i >= 0 && i < (int64_t)obj->n ? mk_strn(R, obj->s + i, 1) : R->undef;
        }
        if (prop->t == V_STR) return R->undef;
        rerr(R, at, MP_E_INVAL, "cannot access property with a %s", type_name(prop));
    }
    return R->undef;
}

/* A builtin bound to self, or undefined when self's type has none of that name. */
static bool has_builtin(const val *self, const char *name);

static val *bind_builtin(rt *R, val *self, const char *name)
{
    if (!has_builtin(self, name)) return R->undef;
    val *f = mkv(R, V_FUNC);
    f->s = name;
    f->self = self;
    return f;
}

static val *eval_member(rt *R, scope *S, const node *x)
{
    val *obj = eval(R, S, x->a);
    val *prop;
    const node *p = x->b;
    if (x->flag) {
        if (p->t == N_SLICE) {
            int64_t size = obj->t == V_ARR ? (int64_t)obj->len : obj->t == V_STR ? (int64_t)obj->n : 0;
            val *step = p->c ? eval(R, S, p->c) : mk_int(R, 1);
            int64_t st = step->t == V_INT ? step->i : 1;
            val *start = p->a ? eval(R, S, p->a) : mk_int(R, st < 0 ? size - 1 : 0);
            val *stop = p->b ? eval(R, S, p->b) : mk_int(R, st < 0 ? -1 : size);
            args a = {(val *[]){obj, start, stop, step}, 4};
            bool found;
            mark_used(obj);
            val *r = call_builtin(R, S, x, "slice", obj, &a, &found);
            if (!found) rerr(R, x, MP_E_INVAL, "cannot slice a %s", type_name(obj));
            return r;
        }
        prop = eval(R, S, p);
    } else if (p->t == N_INT) {
        prop = mk_int(R, p->i);
    } else {
        if (p->t != N_IDENT) rerr(R, x, MP_E_CORRUPT, "static member property must be an identifier");
        prop = mk_strn(R, p->s, p->slen);
        mark_used(obj);
        val *b = bind_builtin(R, obj, p->s);
        if (b->t != V_UNDEF) return b;
    }
    val *v;
    if (obj->t == V_OBJ && prop->t != V_UNDEF) {
        v = obj_get(obj, prop);
        if (!v) v = prop->t == V_STR ? bind_builtin(R, obj, prop->s) : R->undef;
    } else if ((obj->t == V_ARR || obj->t == V_STR) && prop->t == V_STR) {
        v = bind_builtin(R, obj, prop->s);
    } else {
        v = index_val(R, x, obj, prop);
    }
    if (prop->t != V_UNDEF) {
        mark_used(v);
        mark_used(obj);
        if (prop->t == V_INT) obj->ops |= OP_ARRAY_ACCESS;
    }
    return v;
}

static args eval_args(rt *R, scope *S, const nodes *l, val *self)
{
    args a = {0};
    size_t cap = l->n + (self ? 1 : 0) + 8;
    a.v = ar_alloc(R->a, cap * sizeof *a.v);
    if (self) a.v[a.n++] = self;
    for (size_t i = 0; i < l->n; i++) {
        const node *e = l->v[i];
        if (e->t == N_KWARG) {
            if (e->a->t != N_IDENT) rerr(R, e, MP_E_INVAL, "keyword argument key must be an identifier");
            val *k = mkv(R, V_KWARG);
            k->s = e->a->s;
            k->kw = eval(R, S, e->b);
            a.v[a.n++] = k;
        } else if (e->t == N_SPREAD) {
            val *arr = eval(R, S, e->a);
            if (arr->t != V_ARR) rerr(R, e, MP_E_INVAL, "cannot unpack a %s", type_name(arr));
            val **nv = ar_alloc(R->a, (cap + arr->len) * sizeof *nv);
            memcpy(nv, a.v, a.n * sizeof *nv);
            a.v = nv;
            cap += arr->len;
            for (size_t j = 0; j < arr->len; j++) a.v[a.n++] = arr->items[j];
        } else {
            a.v[a.n++] = eval(R, S, e);
        }
    }
    return a;
}

static val *binary(rt *R, scope *S, const node *x)
{
    const char *op = x->s;
    val *l = eval(R, S, x->a);
    if (!strcmp(op, "and")) return truthy(l) ? eval(R, S, x->b) : l;
    if (!strcmp(op, "or")) return truthy(l) ? l : eval(R, S, x->b);
    val *r = eval(R, S, x->b);
    if (!strcmp(op, "==")) return mk_bool(R, veq(l, r));
    if (!strcmp(op, "!=")) return mk_bool(R, !veq(l, r));
    bool in = !strcmp(op, "in"), notin = !strcmp(op, "not in");
    bool concat = !strcmp(op, "+") || !strcmp(op, "~");
    if (l->t == V_UNDEF || r->t == V_UNDEF || l->t == V_NONE || r->t == V_NONE) {
        if (r->t == V_UNDEF && (in || notin)) return mk_bool(R, notin);
        if (r->t != V_UNDEF && r->t != V_NONE && l->t == V_NONE && (in || notin)) {
            args a = {(val *[]){l, r}, 2};
            bool m = run_test(R, S, x, "in", l, &a);
            return mk_bool(R, in ? m : !m);
        }
        if (concat) {
            bool ln = l->t == V_UNDEF || l->t == V_NONE, rn = r->t == V_UNDEF || r->t == V_NONE;
            if ((ln && r->t == V_STR) || (rn && l->t == V_STR)) return ln ? r : l;
        }
        rerr(R, x, MP_E_INVAL, "cannot perform operation %s on %s and %s", op, type_name(l), type_name(r));
    }
    if ((l->t == V_INT || l->t == V_FLOAT || l->t == V_BOOL) && (r->t == V_INT || r->t == V_FLOAT || r->t == V_BOOL) &&
        strcmp(op, "~") && !in && !notin) {
        double a = as_f(l), b = as_f(r);
        bool fl = l->t == V_FLOAT || r->t == V_FLOAT;
        if (!strcmp(op, "+") || !strcmp(op, "-") || !strcmp(op, "*")) {
            if (!fl) {
                int64_t ai = l->t == V_BOOL ? l->b : l->i, bi = r->t == V_BOOL ? r->b : r->i;
                return mk_int(R, op[0] == '+' ? ai + bi : op[0] == '-' ? ai - bi : ai * bi);
            }
            return mk_float(R, op[0] == '+' ? a + b : op[0] == '-' ? a - b : a * b);
        }
        if (!strcmp(op, "/")) return mk_float(R, a / b);
        if (!strcmp(op, "%")) {
            if (!fl) {
                int64_t ai = l->t == V_BOOL ? l->b : l->i, bi = r->t == V_BOOL ? r->b : r->i;
                if (bi == 0) rerr(R, x, MP_E_INVAL, "integer modulo by zero");
                return mk_int(R, ai % bi);
            }
            return mk_float(R, fmod(a, b));
        }
        if (!strcmp(op, "<")) return mk_bool(R, a < b);
        if (!strcmp(op, ">")) return mk_bool(R, a > b);
        if (!strcmp(op, "<=")) return mk_bool(R, a <= b);
        if (!strcmp(op, ">=")) return mk_bool(R, a >= b);
    }
    if (l->t == V_ARR && r->t == V_ARR && !strcmp(op, "+")) {
        val *o = mk_arr(R);
        for (size_t i = 0; i < l->len; i++) arr_push(R, o, l->items[i]);
        for (size_t i = 0; i < r->len; i++) arr_push(R, o, r->items[i]);
        return o;
    }
    if ((in || notin) && (r->t == V_ARR || r->t == V_OBJ || (r->t == V_STR && l->t == V_STR))) {
        args a = {(val *[]){l, r}, 2};
        bool m = run_test(R, S, x, "in", l, &a);
        return mk_bool(R, in ? m : !m);
    }
    if ((l->t == V_STR || r->t == V_STR) && concat) {
        sbuf b = {.a = R->a};
        sb_put(&b, "", 0);
        to_str(R, &b, l);
        to_str(R, &b, r);
        val *v = mkv(R, V_STR);
        v->s = b.p;
        v->n = b.n;
        return v;
    }
    if (!strcmp(op, "~")) { /* llama.cpp refuses ~ between two non-strings */
        rerr(R, x, MP_E_INVAL, "unknown operator ~ between %s and %s", type_name(l), type_name(r));
    }
    if (!strcmp(op, "*") && ((l->t == V_STR && r->t == V_INT) || (l->t == V_INT && r->t == V_STR))) {
        val *s = l->t == V_STR ? l : r;
        int64_t k = l->t == V_INT ? l->i : r->i;
        sbuf b = {.a = R->a};
        sb_put(&b, "", 0);
        for (int64_t i = 0; i < k; i++) sb_put(&b, s->s, s->n);
        val *v = mkv(R, V_STR);
        v->s = b.p;
        v->n = b.n;
        return v;
    }
    /* no ordering between strings: llama.cpp refuses "a" < "b" too */
    rerr(R, x, MP_E_INVAL, "unknown operator %s between %s and %s", op, type_name(l), type_name(r));
}

static const char *filter_alias(const char *id)
{
    if (!strcmp(id, "count")) return "length";
    if (!strcmp(id, "d")) return "default";
    if (!strcmp(id, "e")) return "escape";
    if (!strcmp(id, "trim")) return "strip";
    return id;
}

static val *apply_filter(rt *R, scope *S, const node *at, const node *f, val *input)
{
    const char *id;
    const nodes *argl = NULL;
    if (f->t == N_IDENT) {
        id = f->s;
    } else if (f->t == N_CALL && f->a->t == N_IDENT) {
        id = f->a->s;
        argl = &f->list;
    } else {
        rerr(R, at, MP_E_INVAL, "invalid filter expression");
    }
    id = filter_alias(id);
    if (input->t != V_UNDEF && input->t != V_STR &&
        (!strcmp(id, "capitalize") || !strcmp(id, "lower") || !strcmp(id, "replace") || !strcmp(id, "strip") ||
         !strcmp(id, "title") || !strcmp(id, "upper") || !strcmp(id, "wordcount"))) {
        size_t n;
        const char *s = str_of(R, input, &n);
        input = mk_strn(R, s, n);
    }
    mark_used(input);
    if (!strcmp(id, "selectattr")) input->ops |= OP_SELECTATTR;
    args a = argl ? eval_args(R, S, argl, input) : (args){(val *[]){input}, 1};
    bool found;
    val *r = call_builtin(R, S, at, id, input, &a, &found);
    if (!found)
        rerr(R, at, MP_E_UNSUPPORTED, "unknown filter '%s' for a %s", id, type_name(input));
    return r;
}

static val *eval_inner(rt *R, scope *S, const node *x);
static void count_step(rt *R, const node *x)
{
    R->cur = x;
    if (++R->steps > MP_JINJA_MAX_STEPS)
        rerr(R, x, MP_E_RANGE, "the template takes more than %ld evaluation steps", MP_JINJA_MAX_STEPS);
}

static val *eval(rt *R, scope *S, const node *x)
{
    count_step(R, x);
    if (++R->edepth > MP_JINJA_MAX_DEPTH * 4) rerr(R, x, MP_E_RANGE, "the template nests too deeply while running");
    val *v = eval_inner(R, S, x);
    R->edepth--;
    return v;
}

static val *eval_inner(rt *R, scope *S, const node *x)
{
    switch (x->t) {
    case N_STR: {
        val *v = mkv(R, V_STR);
        v->s = x->s;
        v->n = x->slen;
        return v;
    }
    case N_INT: return mk_int(R, x->i);
    case N_FLOAT: return mk_float(R, x->f);
    case N_IDENT: {
        if (!strcmp(x->s, "true") || !strcmp(x->s, "True")) return R->vtrue;
        if (!strcmp(x->s, "false") || !strcmp(x->s, "False")) return R->vfalse;
        if (!strcmp(x->s, "none") || !strcmp(x->s, "None")) return R->none;
        val *v = scope_get(S, x->s);
        if (v) return v;
        static const char *const globals[] = {"raise_exception", "namespace", "strftime_now", "range", NULL};
        for (size_t i = 0; globals[i]; i++)
            if (!strcmp(x->s, globals[i])) {
                val *f = mkv(R, V_FUNC);
                f->s = globals[i];
                return f;
            }
        return R->undef;
    }
    case N_ARRAY: case N_TUPLE: {
        val *a = mk_arr(R);
        a->tuple = x->t == N_TUPLE;
        for (size_t i = 0; i < x->list.n; i++) arr_push(R, a, eval(R, S, x->list.v[i]));
        return a;
    }
    case N_OBJECT: {
        val *o = mk_obj(R);
        for (size_t i = 0; i < x->list.n; i++) {
            val *k = eval(R, S, x->list.v[i]);
            if (k->t == V_ARR || k->t == V_OBJ || k->t == V_FUNC)
                rerr(R, x, MP_E_INVAL, "a %s is not allowed as an object key", type_name(k));
            obj_set(R, o, k, eval(R, S, x->list2.v[i]));
        }
        return o;
    }
    case N_BINARY: return binary(R, S, x);
    case N_UNARY: {
        val *v = eval(R, S, x->a);
        if (!strcmp(x->s, "not")) return mk_bool(R, !truthy(v));
        if (v->t == V_INT) return x->s[0] == '-' ? mk_int(R, -v->i) : v;
        if (v->t == V_FLOAT) return x->s[0] == '-' ? mk_float(R, -v->f) : v;
        rerr(R, x, MP_E_INVAL, "unary %s needs a number, got a %s", x->s, type_name(v));
    }
    case N_TERNARY: return truthy(eval(R, S, x->a)) ? eval(R, S, x->b) : eval(R, S, x->c);
    case N_SELECT: return truthy(eval(R, S, x->b)) ? eval(R, S, x->a) : R->undef;
    case N_TEST: {
        val *in = eval(R, S, x->a);
        const char *id;
        args a;
        if (x->b->t == N_IDENT) {
            id = x->b->s;
            a = (args){(val *[]){in}, 1};
        } else if (x->b->t == N_CALL && x->b->a->t == N_IDENT) {
            id = x->b->a->s;
            a = eval_args(R, S, &x->b->list, in);
        } else if (x->b->t == N_INT || x->b->t == N_STR) {
            rerr(R, x, MP_E_INVAL, "invalid test expression");
        } else {
            rerr(R, x, MP_E_INVAL, "invalid test expression");
        }
        mark_used(in);
        if (!strcmp(id, "string")) in->ops |= OP_IS_STRING;
        bool r = run_test(R, S, x, id, in, &a);
        return mk_bool(R, x->flag ? !r : r);
    }
    case N_FILTER: return apply_filter(R, S, x, x->b, eval(R, S, x->a));
    case N_MEMBER: return eval_member(R, S, x);
    case N_CALL: {
        val *fn = eval(R, S, x->a);
        args a = eval_args(R, S, &x->list, NULL);
        return call_value(R, S, x, fn, &a);
    }
    case N_KWARG: case N_SPREAD: case N_SLICE: case N_BLANK:
        rerr(R, x, MP_E_INVAL, "unexpected expression here");
    default: {
        /* a statement used as an expression cannot happen: the parser keeps them apart */
        rerr(R, x, MP_E_INVAL, "unexpected statement");
    }
    }
}

/* Binds a macro's parameters (llama.cpp's bind_parameters). */
static void bind_params(rt *R, const node *at, const char *name, const nodes *params, args *a, scope *into, scope *defaults_scope)
{
    for (size_t i = 0; i < params->n; i++) {
        const node *p = params->v[i];
        const char *pname;
        if (p->t == N_IDENT) pname = p->s;
        else if (p->t == N_KWARG && p->a->t == N_IDENT) pname = p->a->s;
        else rerr(R, at, MP_E_INVAL, "invalid parameter in '%s'", name);
        if (i < a->n) {
            scope_set(R, into, pname, kw_or_pos(R, a, pname, i));
        } else if (p->t == N_KWARG) {
            scope_set(R, into, pname, eval(R, defaults_scope, p->b));
        } else {
            rerr(R, at, MP_E_INVAL, "not enough arguments for '%s'", name);
        }
    }
}

static val *call_value(rt *R, scope *S, const node *at, val *fn, args *a)
{
    if (fn->t != V_FUNC) rerr(R, at, MP_E_INVAL, "a %s is not callable", type_name(fn));
    if (fn->macro) {
        if (++R->depth > 200) rerr(R, at, MP_E_INVAL, "macro recursion too deep");
        const node *m = fn->macro;
        sbuf out = {.a = R->a};
        sb_put(&out, "", 0);
        if (m->t == N_MACRO) {
            scope *ms = scope_new(R, S); /* llama.cpp: a copy of the calling context */
            bind_params(R, at, m->a->s, &m->list2, a, ms, S);
            exec_list(R, ms, &m->list, &out);
        } else { /* a {% call %} block's caller() */
            scope *bs = scope_new(R, fn->closure);
            bind_params(R, at, "caller", &m->list2, a, bs, S);
            exec_list(R, bs, &m->list, &out);
        }
        R->ctl = 0;
        R->depth--;
        val *v = mkv(R, V_STR);
        v->s = out.p;
        v->n = out.n;
        return v;
    }
    if (fn->self) {
        args b = {0};
        b.v = ar_alloc(R->a, (a->n + 1) * sizeof *b.v);
        b.v[0] = fn->self;
        memcpy(b.v + 1, a->v, a->n * sizeof *a->v);
        b.n = a->n + 1;
        bool found;
        val *r = call_builtin(R, S, at, fn->s, fn->self, &b, &found);
        if (!found) rerr(R, at, MP_E_UNSUPPORTED, "unknown method '%s' for a %s", fn->s, type_name(fn->self));
        return r;
    }
    /* globals */
    const char *name = fn->s;
    if (!strcmp(name, "raise_exception")) {
        val *m = pos_arg(R, at, a, 0, name);
        size_t n;
        const char *s = str_of(R, m, &n);
        rerr(R, at, MP_E_INVAL, "the template raised an exception: %.*s", (int)(n > 300 ? 300 : n), s);
    }
    if (!strcmp(name, "namespace")) {
        val *o = mk_obj(R);
        for (size_t i = 0; i < a->n; i++) {
            if (a->v[i]->t != V_KWARG) rerr(R, at, MP_E_INVAL, "namespace() arguments must be keyword arguments");
            obj_sets(R, o, a->v[i]->s, a->v[i]->kw);
        }
        return o;
    }
    if (!strcmp(name, "strftime_now")) {
        val *f = pos_arg(R, at, a, 0, name);
        if (f->t != V_STR) rerr(R, at, MP_E_INVAL, "strftime_now: the format must be a string");
        char buf[100];
        struct tm tm;
        time_t now = R->now;
        localtime_r(&now, &tm);
        size_t n = strftime(buf, sizeof buf, f->s, &tm);
        if (!n) rerr(R, at, MP_E_INVAL, "strftime_now: failed to format time");
        return mk_strn(R, buf, n);
    }
    if (!strcmp(name, "range")) {
        if (a->n < 1 || a->n > 3) rerr(R, at, MP_E_INVAL, "range() takes 1 to 3 arguments");
        for (size_t i = 0; i < a->n; i++)
            if (a->v[i]->t != V_INT) rerr(R, at, MP_E_INVAL, "range() arguments must be integers");
        int64_t start = a->n == 1 ? 0 : a->v[0]->i, stop = a->n == 1 ? a->v[0]->i : a->v[1]->i,
                step = a->n == 3 ? a->v[2]->i : 1;
        if (step == 0) rerr(R, at, MP_E_INVAL, "range() step must not be zero");
        val *o = mk_arr(R);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            arr_push(R, o, mk_int(R, i));
            if (o->len > 10000000) rerr(R, at, MP_E_RANGE, "range() longer than 10000000");
        }
        return o;
    }
    rerr(R, at, MP_E_UNSUPPORTED, "unknown function '%s'", name);
}

/* ---- statements ------------------------------------------------------------------- */

/* What {{ v }} writes (llama.cpp's gather_string_parts): strings and numbers
 * as text, lists element by element, nothing for None, undefined, objects. */
static void emit(rt *R, sbuf *out, const val *v)
{
    switch (v->t) {
    case V_STR: sb_put(out, v->s, v->n); break;
    case V_INT: case V_FLOAT: case V_BOOL: to_str(R, out, v); break;
    case V_ARR:
        for (size_t i = 0; i < v->len; i++) emit(R, out, v->items[i]);
        break;
    default: break;
    }
}

static void assign(rt *R, scope *S, const node *x, const node *lhs, val *rhs)
{
    if (lhs->t == N_IDENT) {
        scope_set(R, S, lhs->s, rhs);
    } else if (lhs->t == N_TUPLE) {
        if (rhs->t != V_ARR) rerr(R, x, MP_E_INVAL, "cannot unpack a %s in set", type_name(rhs));
        if (rhs->len != lhs->list.n) rerr(R, x, MP_E_INVAL, "too %s items to unpack in set", lhs->list.n > rhs->len ? "few" : "many");
        for (size_t i = 0; i < lhs->list.n; i++) {
            if (lhs->list.v[i]->t != N_IDENT) rerr(R, x, MP_E_INVAL, "cannot unpack to a non-identifier");
            scope_set(R, S, lhs->list.v[i]->s, rhs->items[i]);
        }
    } else if (lhs->t == N_MEMBER) {
        if (lhs->flag) rerr(R, x, MP_E_INVAL, "cannot assign to a computed member");
        if (lhs->b->t != N_IDENT) rerr(R, x, MP_E_INVAL, "cannot assign to a member with a non-identifier property");
        val *o = eval(R, S, lhs->a);
        if (o->t != V_OBJ) rerr(R, x, MP_E_INVAL, "cannot assign to a member of a %s", type_name(o));
        obj_sets(R, o, lhs->b->s, rhs);
    } else {
        rerr(R, x, MP_E_INVAL, "invalid left-hand side of set");
    }
}

static void exec_for(rt *R, scope *S, const node *x, sbuf *out)
{
    scope *fs = scope_new(R, S);
    const node *iter = x->b, *test = NULL;
    if (iter->t == N_SELECT) {
        test = iter->b;
        iter = iter->a;
    }
    val *it = eval(R, S, iter);
    mark_used(it);
    it->ops |= OP_ARRAY_ACCESS;
    if (it->t == V_UNDEF) it = mk_arr(R);
    if (it->t != V_ARR && it->t != V_OBJ) rerr(R, x, MP_E_INVAL, "cannot iterate over a %s", type_name(it));
    const node *lv = x->a;
    if (lv->t != N_IDENT && lv->t != N_TUPLE) rerr(R, x, MP_E_INVAL, "invalid loop variable");
    /* the items (for an object: (key, value) pairs), then the filter */
    size_t n = it->len, kept = 0;
    val **items = ar_alloc(R->a, (n + 1) * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        val *cur;
        if (it->t == V_OBJ) {
            cur = mk_arr(R);
            cur->tuple = true;
            arr_push(R, cur, it->items[i]);
            arr_push(R, cur, it->vals[i]);
        } else {
            cur = it->items[i];
        }
        items[i] = cur;
    }
    val **sel = ar_alloc(R->a, (n + 1) * sizeof *sel);
    for (size_t i = 0; i < n; i++) {
        val *cur = items[i];
        if (lv->t == N_TUPLE) {
            if (cur->t != V_ARR) rerr(R, x, MP_E_INVAL, "cannot unpack a %s", type_name(cur));
            if (cur->len != lv->list.n) rerr(R, x, MP_E_INVAL, "too %s items to unpack", lv->list.n > cur->len ? "few" : "many");
        }
        if (test) {
            scope *ls = scope_new(R, fs);
            if (lv->t == N_IDENT) scope_set(R, ls, lv->s, it->t == V_OBJ ? cur->items[0] : cur);
            else
                for (size_t j = 0; j < lv->list.n; j++) scope_set(R, ls, lv->list.v[j]->s, cur->items[j]);
            if (!truthy(eval(R, ls, test))) continue;
        }
        sel[kept++] = cur;
    }
    bool none = true;
    for (size_t i = 0; i < kept; i++) {
        val *loop = mk_obj(R);
        loop->tuple = true; /* marks "no builtins" (llama.cpp's loop object has none) */
        obj_sets(R, loop, "index", mk_int(R, (int64_t)i + 1));
        obj_sets(R, loop, "index0", mk_int(R, (int64_t)i));
        obj_sets(R, loop, "revindex", mk_int(R, (int64_t)(kept - i)));
        obj_sets(R, loop, "revindex0", mk_int(R, (int64_t)(kept - i - 1)));
        obj_sets(R, loop, "first", mk_bool(R, i == 0));
        obj_sets(R, loop, "last", mk_bool(R, i == kept - 1));
        obj_sets(R, loop, "length", mk_int(R, (int64_t)kept));
        obj_sets(R, loop, "previtem", i > 0 ? sel[i - 1] : R->undef);
        obj_sets(R, loop, "nextitem", i + 1 < kept ? sel[i + 1] : R->undef);
        scope_set(R, fs, "loop", loop);
        val *cur = sel[i];
        if (lv->t == N_IDENT) scope_set(R, fs, lv->s, it->t == V_OBJ ? cur->items[0] : cur);
        else
            for (size_t j = 0; j < lv->list.n; j++) {
                if (lv->list.v[j]->t != N_IDENT) rerr(R, x, MP_E_INVAL, "cannot unpack to a non-identifier");
                scope_set(R, fs, lv->list.v[j]->s, cur->items[j]);
            }
        exec_list(R, fs, &x->list, out);
        if (R->ctl == 2) {
            R->ctl = 0;
            continue;
        }
        if (R->ctl == 1) {
            R->ctl = 0;
            break;
        }
        none = false;
    }
    if (none) exec_list(R, S, &x->list2, out);
}

static void exec_stmt(rt *R, scope *S, const node *x, sbuf *out)
{
    count_step(R, x);
    if (out->n > MP_JINJA_ARENA_CAP / 4) rerr(R, x, MP_E_RANGE, "the rendered text passes %zu MiB", MP_JINJA_ARENA_CAP / 4 >> 20);
    switch (x->t) {
    case N_TEXT: sb_put(out, x->s, x->slen); break;
    case N_COMMENT: case N_NOOP: break;
    case N_OUTPUT: emit(R, out, eval(R, S, x->a)); break;
    case N_IF:
        if (truthy(eval(R, S, x->a))) exec_list(R, S, &x->list, out);
        else exec_list(R, S, &x->list2, out);
        break;
    case N_FOR: exec_for(R, S, x, out); break;
    case N_SET: {
        val *rhs;
        if (x->b) {
            rhs = eval(R, S, x->b);
        } else {
            sbuf b = {.a = R->a};
            sb_put(&b, "", 0);
            exec_list(R, S, &x->list, &b);
            rhs = mkv(R, V_STR);
            rhs->s = b.p;
            rhs->n = b.n;
        }
        assign(R, S, x, x->a, rhs);
        break;
    }
    case N_MACRO: {
        val *f = mkv(R, V_FUNC);
        f->s = x->a->s;
        f->macro = x;
        scope_set(R, S, x->a->s, f);
        break;
    }
    case N_BREAK: R->ctl = 1; break;
    case N_CONTINUE: R->ctl = 2; break;
    case N_CALLBLOCK: {
        const node *call = x->a;
        val *callee = eval(R, S, call->a);
        if (callee->t != V_FUNC) rerr(R, x, MP_E_INVAL, "callee is not a function: got a %s", type_name(callee));
        val *caller = mkv(R, V_FUNC);
        caller->s = "caller";
        caller->macro = x;
        caller->closure = S;
        scope *cs = scope_new(R, S);
        scope_set(R, cs, "caller", caller);
        args a = eval_args(R, S, &call->list, NULL);
        emit(R, out, call_value(R, cs, x, callee, &a));
        break;
    }
    case N_FILTERBLOCK: {
        sbuf b = {.a = R->a};
        sb_put(&b, "", 0);
        exec_list(R, S, &x->list, &b);
        val *body = mkv(R, V_STR);
        body->s = b.p;
        body->n = b.n;
        emit(R, out, apply_filter(R, S, x, x->a, body));
        break;
    }
    default: rerr(R, x, MP_E_INVAL, "unexpected expression as a statement");
    }
}

static void exec_list(rt *R, scope *S, const nodes *l, sbuf *out)
{
    for (size_t i = 0; i < l->n && !R->ctl; i++) exec_stmt(R, S, l->v[i], out);
}

/* ---- tests ------------------------------------------------------------------------ */

static bool contains(rt *R, val *needle, val *hay)
{
    if (hay->t == V_UNDEF) return false;
    if (hay->t == V_ARR) {
        for (size_t i = 0; i < hay->len; i++)
            if (veq(needle, hay->items[i])) return true;
        return false;
    }
    if (hay->t == V_STR) {
        if (needle->t != V_STR) return false;
        if (!needle->n) return true;
        for (size_t i = 0; i + needle->n <= hay->n; i++)
            if (!memcmp(hay->s + i, needle->s, needle->n)) return true;
        return false;
    }
    if (hay->t == V_OBJ) return obj_get(hay, needle) != NULL;
    (void)R;
    return false;
}

static bool str_case(const val *v, bool upper)
{
    bool any = false;
    for (size_t i = 0; i < v->n; i++) {
        unsigned char c = (unsigned char)v->s[i];
        if (isalpha(c)) {
            any = true;
            if (upper ? islower(c) : isupper(c)) return false;
        }
    }
    return any;
}

static bool run_test(rt *R, scope *S, const node *at, const char *name, val *x, args *a)
{
    (void)S;
    if (!strcmp(name, "defined")) return x->t != V_UNDEF;
    if (!strcmp(name, "undefined")) return x->t == V_UNDEF;
    if (!strcmp(name, "none")) return x->t == V_NONE;
    if (!strcmp(name, "string")) return x->t == V_STR;
    if (!strcmp(name, "boolean")) return x->t == V_BOOL;
    if (!strcmp(name, "callable")) return x->t == V_FUNC;
    if (!strcmp(name, "integer")) return x->t == V_INT;
    if (!strcmp(name, "float")) return x->t == V_FLOAT;
    if (!strcmp(name, "number")) return x->t == V_INT || x->t == V_FLOAT;
    if (!strcmp(name, "iterable") || !strcmp(name, "sequence")) return x->t == V_ARR || x->t == V_STR || x->t == V_UNDEF;
    if (!strcmp(name, "mapping")) return x->t == V_OBJ;
    if (!strcmp(name, "true")) return x->t == V_BOOL && x->b;
    if (!strcmp(name, "false")) return x->t == V_BOOL && !x->b;
    if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        if (x->t != V_INT) rerr(R, at, MP_E_INVAL, "test %s needs an integer, got a %s", name, type_name(x));
        return (x->i % 2 != 0) == (name[0] == 'o');
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        if (x->t != V_STR) rerr(R, at, MP_E_INVAL, "test %s needs a string, got a %s", name, type_name(x));
        return str_case(x, name[0] == 'u');
    }
    if (a->n < 2) rerr(R, at, MP_E_INVAL, "test %s needs an argument", name);
    val *y = a->v[1];
    if (!strcmp(name, "divisibleby")) {
        if (x->t != V_INT || y->t != V_INT || !y->i) rerr(R, at, MP_E_INVAL, "divisibleby needs integers");
        return x->i % y->i == 0;
    }
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==")) return veq(x, y);
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) return !veq(x, y);
    if (!strcmp(name, "in")) return contains(R, x, y);
    if (!strcmp(name, "gt") || !strcmp(name, "greaterthan") || !strcmp(name, "ge") || !strcmp(name, "lt") ||
        !strcmp(name, "lessthan") || !strcmp(name, "le")) {
        if (!is_num(x) || !is_num(y)) rerr(R, at, MP_E_INVAL, "test %s needs numbers", name);
        double p = as_f(x), q = as_f(y);
        if (name[0] == 'g') return name[1] == 'e' ? p >= q : p > q;
        return name[1] == 'e' ? p <= q : p < q;
    }
    rerr(R, at, MP_E_UNSUPPORTED, "unknown test '%s'", name);
}

/* ---- builtins (filters and methods, one table per type as llama.cpp) --------------------- */

static const char *const b_common[] = {"default", "tojson", "string", "safe", NULL};
static const char *const b_num[] = {"abs", "int", "float", NULL};
static const char *const b_str[] = {"upper", "lower", "strip", "rstrip", "lstrip", "title", "capitalize", "length",
                                    "startswith", "endswith", "split", "rsplit", "replace", "format", "int", "float",
                                    "slice", "indent", "join", NULL};
static const char *const b_bool[] = {"int", "float", NULL};
static const char *const b_arr[] = {"list", "first", "last", "length", "slice", "selectattr", "select", "rejectattr",
                                    "reject", "join", "map", "append", "pop", "sort", "reverse", "min", "max",
                                    "unique", NULL};
static const char *const b_obj[] = {"get", "keys", "values", "items", "tojson", "string", "length", "dictsort",
                                    "join", NULL};
static const char *const b_none[] = {"default", "tojson", "string", "safe", "items", "map", "reject", "rejectattr",
                                     "select", "selectattr", "unique", NULL};
static const char *const b_undef[] = {"default", "capitalize", "first", "items", "join", "last", "length", "list",
                                      "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse",
                                      "safe", "select", "selectattr", "sort", "string", "strip", "sum", "title",
                                      "truncate", "unique", "upper", "wordcount", "tojson", NULL};

static bool in_list(const char *const *l, const char *name)
{
    for (; *l; l++)
        if (!strcmp(*l, name)) return true;
    return false;
}

static bool has_builtin(const val *self, const char *name)
{
    switch (self->t) {
    case V_INT: case V_FLOAT: return in_list(b_common, name) || in_list(b_num, name);
    case V_STR: return in_list(b_common, name) || in_list(b_str, name);
    case V_BOOL: return in_list(b_common, name) || in_list(b_bool, name);
    case V_ARR: return in_list(b_common, name) || in_list(b_arr, name);
    case V_OBJ: return !self->tuple && in_list(b_obj, name);
    case V_NONE: return in_list(b_none, name);
    case V_UNDEF: return in_list(b_undef, name);
    default: return false;
    }
}

static int64_t as_int(rt *R, const node *at, const val *v)
{
    if (v->t == V_INT) return v->i;
    if (v->t == V_BOOL) return v->b;
    if (v->t == V_FLOAT) return (int64_t)v->f;
    if (v->t == V_UNDEF || v->t == V_NONE) return 0;
    rerr(R, at, MP_E_INVAL, "expected an integer, got a %s", type_name(v));
}

/* Python-style slice of n elements: the kept indices into idx (llama.cpp's slice()). */
static size_t slice_idx(int64_t len, int64_t start, int64_t stop, int64_t step, int64_t *idx)
{
    int64_t dir = step > 0 ? 1 : step < 0 ? -1 : 0, sv, ev;
    if (dir >= 0) {
        sv = start < 0 ? (len + start > 0 ? len + start : 0) : (start < len ? start : len);
        ev = stop < 0 ? (len + stop > 0 ? len + stop : 0) : (stop < len ? stop : len);
    } else {
        sv = start < 0 ? (len + start > 0 ? len + start : 0) : (start < len - 1 ? start : len - 1);
        ev = stop < -1 ? (len + stop > -1 ? len + stop : -1) : (stop < len - 1 ? stop : len - 1);
    }
    size_t n = 0;
    if (!dir) return 0;
    for (int64_t i = sv; dir * i < dir * ev; i += step)
        if (i >= 0 && i < len) idx[n++] = i;
    return n;
}

static int vcmp(rt *R, const node *at, const val *a, const val *b)
{
    if (is_num(a) && is_num(b)) {
        double x = as_f(a), y = as_f(b);
        return x < y ? -1 : x > y;
    }
    if (a->t == V_STR && b->t == V_STR) {
        size_t m = a->n < b->n ? a->n : b->n;
        int c = memcmp(a->s, b->s, m);
        return c ? c : a->n < b->n ? -1 : a->n > b->n;
    }
    rerr(R, at, MP_E_INVAL, "cannot compare a %s with a %s", type_name(a), type_name(b));
}

static val *strip_str(rt *R, const val *s, bool left, bool right, const val *chars)
{
    size_t st = 0, en = s->n;
    const char *set = chars && chars->t == V_STR ? chars->s : NULL;
#define MATCH(c) (set ? strchr(set, (c)) != NULL && (c) != '\0' : isspace((unsigned char)(c)))
    if (left)
        while (st < en && MATCH(s->s[st])) st++;
    if (right)
        while (en > st && MATCH(s->s[en - 1])) en--;
#undef MATCH
    return mk_strn(R, s->s + st, en - st);
}

static val *selectattr(rt *R, scope *S, const node *at, args *a, bool reject)
{
    val *arr = a->v[0];
    if (arr->t != V_ARR) rerr(R, at, MP_E_INVAL, "selectattr: not a list");
    val *out = mk_arr(R);
    if (a->n == 2) {
        val *attr = a->v[1];
        for (size_t i = 0; i < arr->len; i++) {
            val *it = arr->items[i];
            if (it->t != V_OBJ) rerr(R, at, MP_E_INVAL, "selectattr: item is not an object");
            val *v = obj_get(it, attr);
            bool sel = v && truthy(v);
            if (sel != reject) arr_push(R, out, it);
        }
    } else if (a->n == 3) {
        if (a->v[1]->t != V_STR) rerr(R, at, MP_E_INVAL, "select: the test name must be a string");
        for (size_t i = 0; i < arr->len; i++) {
            args ta = {(val *[]){arr->items[i], a->v[2]}, 2};
            bool sel = run_test(R, S, at, a->v[1]->s, arr->items[i], &ta);
            if (sel != reject) arr_push(R, out, arr->items[i]);
        }
    } else if (a->n == 4) {
        if (a->v[2]->t != V_STR) rerr(R, at, MP_E_INVAL, "selectattr: the test name must be a string");
        for (size_t i = 0; i < arr->len; i++) {
            val *it = arr->items[i];
            if (it->t != V_OBJ) rerr(R, at, MP_E_INVAL, "selectattr: item is not an object");
            val *v = obj_get(it, a->v[1]);
            if (!v) v = R->undef;
            args ta = {(val *[]){v, a->v[3]}, 2};
            bool sel = run_test(R, S, at, a->v[2]->s, v, &ta);
            if (sel != reject) arr_push(R, out, it);
        }
    } else {
        rerr(R, at, MP_E_INVAL, "selectattr: invalid number of arguments");
    }
    return out;
}

static val *default_filter(rt *R, args *a)
{
    val *in = a->v[0];
    val *dflt = a->n > 1 ? a->v[1] : R->undef;
    if (dflt->t == V_KWARG) dflt = R->undef;
    val *boolean = kw_or_pos(R, a, "boolean", 2);
    bool none = truthy(boolean) ? !truthy(in) : (in->t == V_UNDEF || in->t == V_NONE);
    return none ? dflt : in;
}

/* Non-ASCII inside JSON strings as \uXXXX (UTF-16 pairs past U+FFFF; a byte that is not
 * UTF-8: \ufffd), as llama.cpp's json_ensure_ascii_preserving_format. */
static val *ensure_ascii(rt *R, const char *s, size_t n)
{
    sbuf b = {.a = R->a};
    sb_put(&b, "", 0);
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (!in_str || esc || c == '\\' || c == '"' || c < 0x80) {
            if (!in_str) in_str = c == '"';
            else if (esc) esc = false;
            else if (c == '\\') esc = true;
            else if (c == '"') in_str = false;
            sb_putc(&b, (char)c);
            i++;
            continue;
        }
        uint32_t cp = 0;
        size_t len = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
        bool ok = len && i + len <= n;
        if (ok) {
            cp = c & (0xFF >> (len + 1));
            for (size_t k = 1; k < len; k++) {
                unsigned char d = (unsigned char)s[i + k];
                if ((d & 0xC0) != 0x80) ok = false;
                cp = (cp << 6) | (d & 0x3F);
            }
        }
        if (!ok) {
            sb_puts(&b, "\\ufffd");
            i++;
            continue;
        }
        if (cp <= 0xFFFF) {
            sb_printf(&b, "\\u%04x", cp);
        } else {
            cp -= 0x10000;
            sb_printf(&b, "\\u%04x\\u%04x", 0xD800 + ((cp >> 10) & 0x3FF), 0xDC00 + (cp & 0x3FF));
        }
        i += len;
    }
    return mk_strn(R, b.p, b.n);
}

static val *call_builtin(rt *R, scope *S, const node *at, const char *name, val *self, args *a, bool *found)
{
    *found = has_builtin(self, name);
    if (!*found) return NULL;
    size_t n = a->n;
    val *x = self;
#define IS(s) (!strcmp(name, s))
    if (IS("tojson")) {
        val *ascii = kw_or_pos(R, a, "ensure_ascii", 1), *ind = kw_or_pos(R, a, "indent", 2),
            *seps = kw_or_pos(R, a, "separators", 3), *sortk = kw_or_pos(R, a, "sort_keys", 4);
        if (truthy(sortk)) rerr(R, at, MP_E_UNSUPPORTED, "tojson sort_keys=true is not supported");
        int indent = ind->t == V_INT ? (int)ind->i : -1;
        const char *isep = indent < 0 ? ", " : ",", *ksep = ": ";
        if (seps->t == V_ARR) {
            if (seps->len > 0) isep = str_of(R, seps->items[0], NULL);
            if (seps->len > 1) ksep = str_of(R, seps->items[1], NULL);
        }
        sbuf b = {.a = R->a};
        sb_put(&b, "", 0);
        to_json(R, &b, x, indent, 0, isep, ksep);
        if (truthy(ascii)) return ensure_ascii(R, b.p, b.n);
        return mk_strn(R, b.p, b.n);
    }
    if (IS("default")) {
        if (x->t != V_STR && (n < 2 || n > 3))
            rerr(R, at, MP_E_INVAL, "default() expects 1 or 2 arguments, got %zu", n - 1);
        if (x->t == V_STR) {
            val *d = n > 1 && a->v[1]->t != V_UNDEF && a->v[1]->t != V_KWARG ? a->v[1] : mk_str(R, "");
            val *boolean = kw_or_pos(R, a, "boolean", 2);
            return truthy(boolean) && !truthy(x) ? d : x;
        }
        return default_filter(R, a);
    }
    switch (x->t) {
    case V_UNDEF:
        if (IS("first") || IS("last") || IS("max") || IS("min")) return R->undef;
        if (IS("length") || IS("sum")) return mk_int(R, 0);
        if (IS("items") || IS("list") || IS("map") || IS("reject") || IS("rejectattr") || IS("reverse") ||
            IS("select") || IS("selectattr") || IS("sort") || IS("unique"))
            return mk_arr(R);
        if (IS("wordcount")) return mk_int(R, 0);
        return mk_str(R, "");
    case V_NONE:
        if (IS("string") || IS("safe")) return mk_str(R, "None");
        return mk_arr(R);
    case V_INT: case V_FLOAT: case V_BOOL:
        if (IS("abs")) return x->t == V_FLOAT ? mk_float(R, fabs(x->f)) : mk_int(R, x->i < 0 ? -x->i : x->i);
        if (IS("int")) return mk_int(R, as_int(R, at, x));
        if (IS("float")) return mk_float(R, as_f(x));
        if (x->t == V_BOOL) return mk_str(R, x->b ? "True" : "False"); /* string, safe */
        {
            sbuf b = {.a = R->a};
            sb_put(&b, "", 0);
            to_json(R, &b, x, -1, 0, ", ", ": ");
            return mk_strn(R, b.p, b.n);
        }
    case V_STR: {
        if (IS("upper") || IS("lower")) {
            val *o = mk_strn(R, x->s, x->n);
            for (size_t i = 0; i < o->n; i++)
                ((char *)o->s)[i] = (char)(IS("upper") ? toupper((unsigned char)o->s[i]) : tolower((unsigned char)o->s[i]));
            return o;
        }
        if (IS("strip")) return strip_str(R, x, true, true, kw_or_pos(R, a, "chars", 1));
        if (IS("lstrip")) return strip_str(R, x, true, false, kw_or_pos(R, a, "chars", 1));
        if (IS("rstrip")) return strip_str(R, x, false, true, kw_or_pos(R, a, "chars", 1));
        if (IS("title") || IS("capitalize")) {
            val *o = mk_strn(R, x->s, x->n);
            char *p = (char *)o->s;
            bool start = true;
            for (size_t i = 0; i < o->n; i++) {
                unsigned char c = (unsigned char)p[i];
                if (IS("capitalize")) {
                    p[i] = (char)(i == 0 ? toupper(c) : tolower(c));
                } else {
                    p[i] = (char)(start ? toupper(c) : tolower(c));
                    start = isspace(c) != 0;
                }
            }
            return o;
        }
        if (IS("length")) return mk_int(R, (int64_t)x->n); /* bytes, as llama.cpp (not code points) */
        if (IS("startswith") || IS("endswith")) {
            val *p = pos_arg(R, at, a, 1, name);
            if (p->t != V_STR) rerr(R, at, MP_E_INVAL, "%s needs a string", name);
            if (p->n > x->n) return R->vfalse;
            return mk_bool(R, !memcmp(IS("startswith") ? x->s : x->s + x->n - p->n, p->s, p->n));
        }
        if (IS("split") || IS("rsplit")) {
            const char *d = " ";
            size_t dl = 1;
            if (n > 1) d = str_of(R, a->v[1], &dl);
            if (!dl) rerr(R, at, MP_E_INVAL, "empty separator");
            int64_t maxsplit = n > 2 ? as_int(R, at, a->v[2]) : -1;
            val *o = mk_arr(R);
            if (IS("split")) {
                size_t p = 0;
                for (;;) {
                    const char *hit = NULL;
                    for (size_t i = p; i + dl <= x->n; i++)
                        if (!memcmp(x->s + i, d, dl)) {
                            hit = x->s + i;
                            break;
                        }
                    if (!hit || maxsplit == 0) break;
                    arr_push(R, o, mk_strn(R, x->s + p, (size_t)(hit - x->s) - p));
                    p = (size_t)(hit - x->s) + dl;
                    maxsplit--;
                }
                arr_push(R, o, mk_strn(R, x->s + p, x->n - p));
            } else {
                size_t e = x->n;
                val *rev = mk_arr(R);
                for (;;) {
                    const char *hit = NULL;
                    for (size_t i = e >= dl ? e - dl + 1 : 0; i-- > 0;)
                        if (!memcmp(x->s + i, d, dl)) {
                            hit = x->s + i;
                            break;
                        }
                    if (!hit || maxsplit == 0) break;
                    size_t hp = (size_t)(hit - x->s);
                    arr_push(R, rev, mk_strn(R, x->s + hp + dl, e - hp - dl));
                    e = hp;
                    maxsplit--;
                }
                arr_push(R, rev, mk_strn(R, x->s, e));
                for (size_t i = rev->len; i-- > 0;) arr_push(R, o, rev->items[i]);
            }
            return o;
        }
        if (IS("replace")) {
            val *o = pos_arg(R, at, a, 1, name), *nw = pos_arg(R, at, a, 2, name);
            if (o->t != V_STR || nw->t != V_STR) rerr(R, at, MP_E_INVAL, "replace needs strings");
            if (n > 3 && as_int(R, at, a->v[3]) > 0) rerr(R, at, MP_E_UNSUPPORTED, "replace with a count is not supported");
            if (veq(o, nw)) return x;
            sbuf b = {.a = R->a};
            sb_put(&b, "", 0);
            if (!o->n) {
                sb_put(&b, nw->s, nw->n);
                for (size_t i = 0; i < x->n; i++) {
                    sb_putc(&b, x->s[i]);
                    sb_put(&b, nw->s, nw->n);
                }
            } else {
                size_t p = 0;
                while (p < x->n) {
                    if (p + o->n <= x->n && !memcmp(x->s + p, o->s, o->n)) {
                        sb_put(&b, nw->s, nw->n);
                        p += o->n;
                    } else {
                        sb_putc(&b, x->s[p++]);
                    }
                }
            }
            return mk_strn(R, b.p, b.n);
        }
        if (IS("format")) {
            sbuf b = {.a = R->a};
            sb_put(&b, "", 0);
            size_t ai = 1;
            for (size_t i = 0; i < x->n; i++) {
                if (x->s[i] != '{') {
                    sb_putc(&b, x->s[i]);
                    continue;
                }
                if (i + 1 >= x->n || x->s[i + 1] != '}')
                    rerr(R, at, MP_E_UNSUPPORTED, "format() supports only '{}' placeholders");
                i++;
                to_str(R, &b, pos_arg(R, at, a, ai++, name));
            }
            return mk_strn(R, b.p, b.n);
        }
        if (IS("int")) {
            char *end;

            long long v = strtoll(x->s, &end, 10);
            if (end == x->s) {
                val *d = kw_or_pos(R, a, "default", 1);
                return mk_int(R, d->t == V_UNDEF ? 0 : as_int(R, at, d));
            }
            return mk_int(R, (int32_t)v);
        }
        if (IS("float")) {
            char *end;
            double v = strtod(x->s, &end);
            if (end == x->s) {
                val *d = kw_or_pos(R, a, "default", 1);
                return mk_float(R, d->t == V_UNDEF ? 0.0 : as_f(d));
            }
            return mk_float(R, v);
        }
        if (IS("string") || IS("safe")) return x;
        if (IS("slice")) {
            int64_t st, sp, stp;
            if (n == 2) st = 0, sp = as_int(R, at, a->v[1]), stp = 1;
            else if (n == 3) st = as_int(R, at, a->v[1]), sp = as_int(R, at, a->v[2]), stp = 1;
            else if (n >= 4) st = as_int(R, at, a->v[1]), sp = as_int(R, at, a->v[2]), stp = as_int(R, at, a->v[3]);
            else rerr(R, at, MP_E_INVAL, "slice needs arguments");
            if (!stp) rerr(R, at, MP_E_INVAL, "slice step cannot be zero");
            int64_t *idx = ar_alloc(R->a, (x->n + 1) * sizeof *idx);
            size_t k = slice_idx((int64_t)x->n, st, sp, stp, idx);
            char *o = ar_alloc(R->a, k + 1);
            for (size_t i = 0; i < k; i++) o[i] = x->s[idx[i]];
            val *v = mkv(R, V_STR);
            v->s = o;
            v->n = k;
            return v;
        }
        if (IS("indent")) {
            val *w = kw_or_pos(R, a, "width", 1);
            bool first = truthy(kw_or_pos(R, a, "first", 2)), blank = truthy(kw_or_pos(R, a, "blank", 3));
            const char *ind = "    ";
            size_t il = 4;
            if (w->t == V_INT) {
                char *sp = ar_alloc(R->a, (size_t)(w->i > 0 ? w->i : 0) + 1);
                memset(sp, ' ', (size_t)(w->i > 0 ? w->i : 0));
                ind = sp;
                il = (size_t)(w->i > 0 ? w->i : 0);
            } else if (w->t == V_STR) {
                ind = w->s;
                il = w->n;
            }
            sbuf b = {.a = R->a};
            sb_put(&b, "", 0);
            size_t p = 0;
            bool any = false;
            while (p < x->n) { /* std::getline: lines without their \n */
                const char *nl = memchr(x->s + p, '\n', x->n - p);
                size_t e = nl ? (size_t)(nl - x->s) : x->n;
                if (b.n) sb_putc(&b, '\n');
                bool empty_so_far = !any;
                if (empty_so_far ? first : (e > p || blank)) sb_put(&b, ind, il);
                sb_put(&b, x->s + p, e - p);
                any = true;
                p = e + 1;
                if (!nl) break;
            }
            if (x->n && x->s[x->n - 1] == '\n') {
                sb_putc(&b, '\n');
                if (blank) sb_put(&b, ind, il);
            }
            return mk_strn(R, b.p, b.n);
        }
        rerr(R, at, MP_E_UNSUPPORTED, "'%s' is not supported on a string", name);
    }
    case V_ARR: {
        if (IS("list")) {
            val *o = mk_arr(R);
            for (size_t i = 0; i < x->len; i++) arr_push(R, o, x->items[i]);
            return o;
        }
        if (IS("first")) return x->len ? x->items[0] : R->undef;
        if (IS("last")) return x->len ? x->items[x->len - 1] : R->undef;
        if (IS("length")) return mk_int(R, (int64_t)x->len);
        if (IS("slice")) {
            int64_t st, sp, stp;
            if (n == 2) st = 0, sp = as_int(R, at, a->v[1]), stp = 1;
            else if (n == 3) st = as_int(R, at, a->v[1]), sp = as_int(R, at, a->v[2]), stp = 1;
            else if (n >= 4) st = as_int(R, at, a->v[1]), sp = as_int(R, at, a->v[2]), stp = as_int(R, at, a->v[3]);
            else rerr(R, at, MP_E_INVAL, "slice needs arguments");
            if (!stp) rerr(R, at, MP_E_INVAL, "slice step cannot be zero");
            int64_t *idx = ar_alloc(R->a, (x->len + 1) * sizeof *idx);
            size_t k = slice_idx((int64_t)x->len, st, sp, stp, idx);
            val *o = mk_arr(R);
            o->tuple = x->tuple;
            for (size_t i = 0; i < k; i++) arr_push(R, o, x->items[idx[i]]);
            return o;
        }
        if (IS("selectattr") || IS("select")) return selectattr(R, S, at, a, false);
        if (IS("rejectattr") || IS("reject")) return selectattr(R, S, at, a, true);
        if (IS("join")) {
            val *d = kw_or_pos(R, a, "d", 1), *attr = kw_or_pos(R, a, "attribute", 2);
            sbuf b = {.a = R->a};
            sb_put(&b, "", 0);
            for (size_t i = 0; i < x->len; i++) {
                val *v = x->items[i];
                if (attr->t == V_INT && v->t == V_ARR) v = index_val(R, at, v, attr);
                else if (attr->t == V_STR && v->t == V_OBJ) v = index_val(R, at, v, attr);
                if (v->t != V_STR && v->t != V_INT && v->t != V_FLOAT)
                    rerr(R, at, MP_E_INVAL, "join() can only join strings or numbers, got a %s", type_name(v));
                to_str(R, &b, v);
                if (i + 1 < x->len && d->t != V_UNDEF) to_str(R, &b, d);
            }
            return mk_strn(R, b.p, b.n);
        }
        if (IS("string") || IS("safe")) {
            sbuf b = {.a = R->a};
            sb_put(&b, "", 0);
            to_str(R, &b, x);
            return mk_strn(R, b.p, b.n);
        }
        if (IS("map")) {
            if (n < 2 || a->v[1]->t != V_KWARG) rerr(R, at, MP_E_UNSUPPORTED, "map: only map(attribute=...) is supported");
            val *attr = kw_or_pos(R, a, "attribute", 1), *dflt = kwarg(R, a, "default");
            if (attr->t != V_STR && attr->t != V_INT) rerr(R, at, MP_E_INVAL, "map: attribute must be a string or an integer");
            val *o = mk_arr(R);
            o->tuple = x->tuple;
            for (size_t i = 0; i < x->len; i++) {
                val *it = x->items[i], *v = NULL;
                if (attr->t == V_INT && it->t == V_ARR) {
                    int64_t k = attr->i < 0 ? attr->i + (int64_t)it->len : attr->i;
                    v = k >= 0 && k < (int64_t)it->len ? it->items[k] : NULL;
                } else if (attr->t == V_STR && it->t == V_OBJ) {
                    v = obj_get(it, attr);
                }
                arr_push(R, o, v ? v : dflt);
            }
            return o;
        }
        if (IS("append")) {
            arr_push(R, x, pos_arg(R, at, a, 1, name));
            return x;
        }
        if (IS("pop")) {
            if (!x->len) rerr(R, at, MP_E_INVAL, "pop from an empty list");
            int64_t k = n > 1 ? as_int(R, at, a->v[1]) : -1;
            if (k < 0) k += (int64_t)x->len;
            if (k < 0 || k >= (int64_t)x->len) rerr(R, at, MP_E_INVAL, "pop index out of range");
            val *v = x->items[k];
            memmove(x->items + k, x->items + k + 1, (x->len - (size_t)k - 1) * sizeof *x->items);
            x->len--;
            return v;
        }
        if (IS("reverse")) {
            val *o = mk_arr(R);
            o->tuple = x->tuple;
            for (size_t i = x->len; i-- > 0;) arr_push(R, o, x->items[i]);
            return o;
        }
        if (IS("sort")) {
            bool rev = truthy(kw_or_pos(R, a, "reverse", 1));
            val *attr = kw_or_pos(R, a, "attribute", 3);
            val *o = mk_arr(R);
            o->tuple = x->tuple;
            for (size_t i = 0; i < x->len; i++) arr_push(R, o, x->items[i]);
            /* insertion sort: stable, and lists in templates are short */
            for (size_t i = 1; i < o->len; i++) {
                val *k = o->items[i];
                size_t j = i;
                while (j > 0) {
                    val *pa = o->items[j - 1], *pb = k;
                    if (attr->t != V_UNDEF) {
                        pa = index_val(R, at, pa, attr);
                        pb = index_val(R, at, pb, attr);
                    }
                    int c = vcmp(R, at, pb, pa);
                    if (rev ? c > 0 : c < 0) {
                        o->items[j] = o->items[j - 1];
                        j--;
                    } else {
                        break;
                    }
                }
                o->items[j] = k;
            }
            return o;
        }
        if (IS("min") || IS("max")) {
            if (!x->len) return R->undef;
            val *best = x->items[0];
            for (size_t i = 1; i < x->len; i++) {
                int c = vcmp(R, at, x->items[i], best);
                if (IS("min") ? c < 0 : c > 0) best = x->items[i];
            }
            return best;
        }
        if (IS("unique")) rerr(R, at, MP_E_UNSUPPORTED, "unique is not supported (nor by llama.cpp)");
        rerr(R, at, MP_E_UNSUPPORTED, "'%s' is not supported on a list", name);
    }
    case V_OBJ: {
        if (IS("get")) {
            if (n < 2 || a->v[1]->t != V_STR) rerr(R, at, MP_E_INVAL, "get: the key must be a string");
            val *v = obj_get(x, a->v[1]);
            return v ? v : n > 2 ? a->v[2] : R->none;
        }
        if (IS("keys") || IS("values") || IS("items")) {
            val *o = mk_arr(R);
            for (size_t i = 0; i < x->len; i++) {
                if (IS("keys")) arr_push(R, o, x->items[i]);
                else if (IS("values")) arr_push(R, o, x->vals[i]);
                else {
                    val *t = mk_arr(R);
                    t->tuple = true;
                    arr_push(R, t, x->items[i]);
                    arr_push(R, t, x->vals[i]);
                    arr_push(R, o, t);
                }
            }
            return o;
        }
        if (IS("string")) {
            sbuf b = {.a = R->a};
            sb_put(&b, "", 0);
            to_str(R, &b, x);
            return mk_strn(R, b.p, b.n);
        }
        if (IS("length")) return mk_int(R, (int64_t)x->len);
        if (IS("dictsort")) {
            val *by = kw_or_pos(R, a, "by", 2);
            bool rev = truthy(kw_or_pos(R, a, "reverse", 3));
            bool byv = by->t == V_STR && !strcmp(by->s, "value");
            val *o = mk_obj(R);
            for (size_t i = 0; i < x->len; i++) obj_set(R, o, x->items[i], x->vals[i]);
            for (size_t i = 1; i < o->len; i++) {
                val *k = o->items[i], *v = o->vals[i];
                size_t j = i;
                while (j > 0) {
                    int c = vcmp(R, at, byv ? v : k, byv ? o->vals[j - 1] : o->items[j - 1]);
                    if (rev ? c > 0 : c < 0) {
                        o->items[j] = o->items[j - 1];
                        o->vals[j] = o->vals[j - 1];
                        j--;
                    } else {
                        break;
                    }
                }
                o->items[j] = k;
                o->vals[j] = v;
            }
            return o;
        }
        rerr(R, at, MP_E_UNSUPPORTED, "'%s' is not supported on an object", name);
    }
    default: break;
    }
#undef IS
    rerr(R, at, MP_E_UNSUPPORTED, "'%s' is not supported on a %s", name, type_name(x));
}

/* ---- entry points ------------------------------------------------------------------- */

struct mp_jinja {
    arena a;
    char *name;
    const char *src; /* normalised, in the arena */
    nodes body;
};

void mp_jinja_free(mp_jinja *j)
{
    if (!j) return;
    ar_free(&j->a);
    free(j->name);
    free(j);
}

int mp_jinja_parse(mp_jinja **out, const char *src, const char *name, mp_err *err)
{
    *out = NULL;
    mp_jinja *j = calloc(1, sizeof *j);
    if (!j || !(j->name = strdup(name ? name : "template"))) {
        free(j);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    jerr e = {0};
    j->a.oom = &e.jb;
    if (setjmp(e.jb)) {
        int st = e.status ? e.status : j->a.over ? MP_E_RANGE : MP_E_NOMEM;
        if (e.status) mp_err_set(err, st, "%s", e.msg);
        else if (j->a.over) mp_err_set(err, st, "%s:1: the template needs more than %zu MiB to parse", j->name, MP_JINJA_ARENA_CAP >> 20);
        else mp_err_set(err, MP_E_NOMEM, "%s:1: out of memory", j->name);
        mp_jinja_free(j);
        return st;
    }
    /* \r\n and \r become \n; one trailing \n is dropped (llama.cpp's lexer) */
    size_t n = strlen(src);
    char *s = ar_alloc(&j->a, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') i++;
        } else {
            s[k++] = src[i];
        }
    }
    if (n && src[n - 1] == '\n' && k) k--;
    s[k] = '\0';
    j->src = s;
    lexer L = {.a = &j->a, .e = &e, .name = j->name, .src = s, .n = k};
    lex(&L);
    parser P = {.a = &j->a, .e = &e, .name = j->name, .src = s, .toks = L.toks, .n = L.n_toks};
    nvec body = {0};
    while (!is(&P, T_EOF)) nv_push(&P, &body, parse_any(&P));
    j->body = nv_done(&body);
    j->a.oom = NULL;
    *out = j;
    return MP_OK;
}

static val *msg_content(rt *R, const char *content, bool typed)
{
    val *s = mk_str(R, content);
    if (!typed) return s;
    val *part = mk_obj(R);
    obj_sets(R, part, "type", mk_str(R, "text"));
    obj_sets(R, part, "text", s);
    val *arr = mk_arr(R);
    arr_push(R, arr, part);
    return arr;
}

int mp_jinja_render(const mp_jinja *j, const mp_jinja_input *in, char **out, mp_jinja_stats *stats, mp_err *err)
{
    *out = NULL;
    if (stats) *stats = (mp_jinja_stats){0};
    arena a = {0};
    jerr e = {0};
    a.oom = &e.jb;
    val *volatile content0 = NULL; /* read after a longjmp */
    rt R = {.a = &a, .e = &e, .name = j->name, .src = j->src, .now = in->now};
    if (setjmp(e.jb)) {
        int st = e.status ? e.status : a.over ? MP_E_RANGE : MP_E_NOMEM;
        if (e.status) mp_err_set(err, st, "%s", e.msg);
        else if (a.over) {
            const node *volatile cur = R.cur;
            mp_err_set(err, st, "%s:%d: rendering needs more than %zu MiB", j->name,
                       line_of(j->src, cur ? cur->pos : 0), MP_JINJA_ARENA_CAP >> 20);
        }
        else mp_err_set(err, MP_E_NOMEM, "%s:1: out of memory", j->name);
        if (stats && content0) {
            stats->content0_used = content0->used;
            stats->content0_is_string_test = content0->ops & OP_IS_STRING;
            stats->content0_array_access = content0->ops & (OP_ARRAY_ACCESS | OP_SELECTATTR);
        }
        ar_free(&a);
        return st;
    }
    R.undef = mkv(&R, V_UNDEF);
    R.none = mkv(&R, V_NONE);
    R.vtrue = mkv(&R, V_BOOL);
    R.vtrue->b = true;
    R.vfalse = mkv(&R, V_BOOL);
    scope *G = scope_new(&R, NULL);
    val *msgs = mk_arr(&R);
    for (size_t i = 0; i < in->n_msgs; i++) {
        val *m = mk_obj(&R);
        obj_sets(&R, m, "role", mk_str(&R, in->msgs[i].role));
        bool typed = in->typed_content ||
                     (in->typed_system_assistant &&
                      (!strcmp(in->msgs[i].role, "system") || !strcmp(in->msgs[i].role, "assistant")));
        if (i == 0 && in->empty_content_array) obj_sets(&R, m, "content", mk_arr(&R));
        else obj_sets(&R, m, "content", msg_content(&R, in->msgs[i].content ? in->msgs[i].content : "", typed));
        if (i == 0) content0 = obj_gets(m, "content");
        arr_push(&R, msgs, m);
    }
    scope_set(&R, G, "messages", msgs);
    if (in->tools_empty_array) scope_set(&R, G, "tools", mk_arr(&R));
    scope_set(&R, G, "bos_token", mk_str(&R, in->bos_token ? in->bos_token : ""));
    scope_set(&R, G, "eos_token", mk_str(&R, in->eos_token ? in->eos_token : ""));
    if (in->define_enable_thinking) scope_set(&R, G, "enable_thinking", mk_bool(&R, in->enable_thinking));
    if (in->datetime) scope_set(&R, G, "datetime", mk_str(&R, in->datetime));
    if (in->date_string) scope_set(&R, G, "date_string", mk_str(&R, in->date_string));
    if (in->add_generation_prompt) scope_set(&R, G, "add_generation_prompt", R.vtrue);
    sbuf o = {.a = &a};
    sb_put(&o, "", 0);
    exec_list(&R, G, &j->body, &o);
    if (stats && content0) {
        stats->content0_used = content0->used;
        stats->content0_is_string_test = content0->ops & OP_IS_STRING;
        stats->content0_array_access = content0->ops & (OP_ARRAY_ACCESS | OP_SELECTATTR);
    }
    char *res = malloc(o.n + 1);
    if (!res) {
        ar_free(&a);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    memcpy(res, o.p, o.n + 1);
    ar_free(&a);
    *out = res;
    return MP_OK;
}
