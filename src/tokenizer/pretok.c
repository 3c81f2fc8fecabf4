#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretok.h"

#include "tokenizer/tok_unicode.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* ---- Regex lists (the same strings llama.cpp uses per pre-tokenizer) ---- */

#define RX_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RX_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RX_LLAMA3 RX_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN2 RX_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static const char *const k_rx_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    RX_GPT2,
    "\\p{N}+",
    "[0-9][0-9][0-9]",
    NULL,
};
static const char *const k_rx_gpt2[] = {RX_GPT2, NULL};
static const char *const k_rx_llama3[] = {RX_LLAMA3, NULL};
static const char *const k_rx_qwen2[] = {RX_QWEN2, NULL};
static const char *const k_rx_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
    NULL,
};
static const char *const k_rx_deepseek_coder[] = {
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}",
    NULL,
};
/* DeepSeek-V3: digits in threes, then CJK ideographs and kana runs, then a
 * word rule where one ASCII punctuation mark may lead an ASCII word and
 * letters take their combining marks. */
static const char *const k_rx_deepseek3[] = {
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
/* Kimi-K2: llama.cpp's trigger string for its hand-written matcher of
 * tiktoken's K2 pattern (split_kimi_k2 below) */
#define RX_KIMI_K2 "\\p{Han}+"
static const char *const k_rx_kimi_k2[] = {RX_KIMI_K2, NULL};

/* Names accepted for each family: the subset of llama.cpp's list whose
 * tokenizer needs nothing beyond what this file and tokenizer.c implement. */
static const struct {
    const char *name;
    mp_pretok_kind kind;
} k_pre_names[] = {
    {"default", MP_PRETOK_DEFAULT},
    {"gpt-2", MP_PRETOK_GPT2},       {"phi-2", MP_PRETOK_GPT2},
    {"mpt", MP_PRETOK_GPT2},         {"olmo", MP_PRETOK_GPT2},
    {"jais", MP_PRETOK_GPT2},        {"trillion", MP_PRETOK_GPT2},
    {"granite-docling", MP_PRETOK_GPT2}, {"exaone4", MP_PRETOK_GPT2},
    {"gigachat", MP_PRETOK_GPT2},    {"a.x-4.0", MP_PRETOK_GPT2},
    {"mellum", MP_PRETOK_GPT2},
    {"llama3", MP_PRETOK_LLAMA3},    {"llama-v3", MP_PRETOK_LLAMA3},
    {"llama-bpe", MP_PRETOK_LLAMA3}, {"falcon3", MP_PRETOK_LLAMA3},
    {"falcon-h1", MP_PRETOK_LLAMA3}, {"pixtral", MP_PRETOK_LLAMA3},
    {"midm-2.0", MP_PRETOK_LLAMA3},  {"lfm2", MP_PRETOK_LLAMA3},
    {"jina-v5-nano", MP_PRETOK_LLAMA3},
    {"dbrx", MP_PRETOK_DBRX},        {"smaug-bpe", MP_PRETOK_DBRX},
    {"glm4", MP_PRETOK_CHATGLM4},    {"chatglm-bpe", MP_PRETOK_CHATGLM4},
    {"qwen2", MP_PRETOK_QWEN2},      {"deepseek-r1-qwen", MP_PRETOK_QWEN2},
    {"kormo", MP_PRETOK_QWEN2},      {"f2llmv2", MP_PRETOK_QWEN2},
    {"megrez", MP_PRETOK_QWEN2},     {"stablelm2", MP_PRETOK_QWEN2},
    {"hunyuan", MP_PRETOK_QWEN2},    {"solar-open", MP_PRETOK_QWEN2},
    {"grok-2", MP_PRETOK_QWEN2},
    {"deepseek-llm", MP_PRETOK_DEEPSEEK_LLM},
    {"deepseek-coder", MP_PRETOK_DEEPSEEK_CODER},
    {"deepseek-v3", MP_PRETOK_DEEPSEEK3}, {"hunyuan-dense", MP_PRETOK_DEEPSEEK3},
    {"joyai-llm", MP_PRETOK_DEEPSEEK3},   {"hy_v4", MP_PRETOK_DEEPSEEK3},
    {"kimi-k2", MP_PRETOK_KIMI_K2},
};

int mp_pretok_kind_from_name(const char *pre, mp_pretok_kind *kind, mp_err *err)
{
    if (!pre || !*pre) {
        *kind = MP_PRETOK_DEFAULT; /* llama.cpp warns and uses 'default' */
        return MP_OK;
    }
    for (size_t i = 0; i < sizeof(k_pre_names) / sizeof(k_pre_names[0]); i++) {
        if (strcmp(pre, k_pre_names[i].name) == 0) {
            *kind = k_pre_names[i].kind;
            return MP_OK;
        }
    }
    return mp_err_set(err, MP_E_UNSUPPORTED, "tokenizer.ggml.pre: unknown pre-tokenizer type '%s'", pre);
}

/* ---- Compiled regex list ---------------------------------------------- */

enum { RX_CUSTOM_NONE, RX_CUSTOM_GPT2, RX_CUSTOM_LLAMA3, RX_CUSTOM_QWEN2, RX_CUSTOM_KIMI_K2 };

#define MP_PRETOK_MAX_RX 8

typedef struct mp_pretok_rx {
    int custom;      /* RX_CUSTOM_* */
    bool collapsed;  /* runs on the one-byte-per-code-point text */
    pcre2_code *re;  /* when !custom */
} mp_pretok_rx;

struct mp_pretok {
    mp_pretok_kind kind;
    int n_rx;
    mp_pretok_rx rx[MP_PRETOK_MAX_RX];
};

/* Byte that stands for a non-ASCII code point's category in the collapsed
 * text (llama.cpp's choice, so the rewritten regexes agree with it). */
enum { COL_OTHER = 0xD0, COL_NUMBER = 0xD1, COL_LETTER = 0xD2, COL_PUNCT = 0xD3,
       COL_MARK = 0xD4, COL_SYMBOL = 0xD5 };

static const struct {
    const char *prop;
    uint8_t byte;
    const char *ascii; /* the ASCII members, as class text */
} k_collapse[] = {
    {"\\p{N}", COL_NUMBER, "0-9"},
    {"\\p{L}", COL_LETTER, "A-Za-z"},
    {"\\p{P}", COL_PUNCT, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", COL_MARK, ""},
    {"\\p{S}", COL_SYMBOL, "\\$\\+<->^`\\|~"},
    {"\\p{Lu}", COL_LETTER, "A-Za-z"},
    {"\\p{Ll}", COL_LETTER, "A-Za-z"},
    {"\\p{Lt}", COL_LETTER, "A-Za-z"},
    {"\\p{Lm}", COL_LETTER, "A-Za-z"},
    {"\\p{Lo}", COL_LETTER, "A-Za-z"},
};
#define N_COLLAPSE (sizeof(k_collapse) / sizeof(k_collapse[0]))

static bool uses_categories(const char *rx)
{
    for (size_t k = 0; k < N_COLLAPSE; k++)
        if (strstr(rx, k_collapse[k].prop))
            return true;
    return false;
}

/* Rewrites rx for the collapsed text: each \p{X} becomes its category byte
 * plus its ASCII members (wrapped in [] outside a class). Returns a malloc'd
 * string or NULL on OOM. */
static char *collapse_regex(const char *rx)
{
    size_t n = strlen(rx);
    char *out = malloc(n * 16 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    bool inside = false;
    for (size_t i = 0; i < n; i++) {
        if (rx[i] == '[' && (i == 0 || rx[i - 1] != '\\')) {
            out[o++] = '[';
            inside = true;
            continue;
        }
        if (inside && rx[i] == ']' && rx[i - 1] != '\\') {
            out[o++] = ']';
            inside = false;
            continue;
        }
        if (rx[i] == '\\' && i + 3 < n && rx[i + 1] == 'p' && rx[i + 2] == '{') {
            const char *close = strchr(rx + i + 3, '}');
            if (close && (size_t)(close - rx) <= i + 10) {
                size_t plen = (size_t)(close - rx) - i + 1;
                size_t k;
                for (k = 0; k < N_COLLAPSE; k++)
                    if (strlen(k_collapse[k].prop) == plen && memcmp(rx + i, k_collapse[k].prop, plen) == 0)
                        break;
                if (k < N_COLLAPSE) {
                    if (!inside)
                        out[o++] = '[';
                    out[o++] = (char)k_collapse[k].byte;
                    size_t al = strlen(k_collapse[k].ascii);
                    memcpy(out + o, k_collapse[k].ascii, al);
                    o += al;
                    if (!inside)
                        out[o++] = ']';
                    i += plen - 1;
                    continue;
                }
            }
        }
        out[o++] = rx[i];
    }
    out[o] = '\0';
    return out;
}

static const char *const *regex_list(mp_pretok_kind kind)
{
    switch (kind) {
    case MP_PRETOK_GPT2: return k_rx_gpt2;
    case MP_PRETOK_LLAMA3:
    case MP_PRETOK_DBRX:
    case MP_PRETOK_CHATGLM4: return k_rx_llama3;
    case MP_PRETOK_QWEN2: return k_rx_qwen2;
    case MP_PRETOK_DEEPSEEK_LLM: return k_rx_deepseek_llm;
    case MP_PRETOK_DEEPSEEK_CODER: return k_rx_deepseek_coder;
    case MP_PRETOK_DEEPSEEK3: return k_rx_deepseek3;
    case MP_PRETOK_KIMI_K2: return k_rx_kimi_k2;
    case MP_PRETOK_DEFAULT:
    default: return k_rx_default;
    }
}

void mp_pretok_free(mp_pretok *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_rx; i++)
        pcre2_code_free(p->rx[i].re);
    free(p);
}

int mp_pretok_create(mp_pretok **out, mp_pretok_kind kind, mp_err *err)
{
    *out = NULL;
    int st = mp_cpt_init();
    if (st != MP_OK)
        return mp_err_set(err, st, "tokenizer: cannot build the Unicode category table");
    mp_pretok *p = calloc(1, sizeof(*p));
    if (!p)
        return mp_err_set(err, MP_E_NOMEM, "tokenizer: out of memory");
    p->kind = kind;
    const char *const *list = regex_list(kind);
    for (int i = 0; list[i]; i++) {
        mp_pretok_rx *r = &p->rx[p->n_rx++];
        const char *rx = list[i];
        if (strcmp(rx, RX_GPT2) == 0) {
            r->custom = RX_CUSTOM_GPT2;
            continue;
        }
        if (strcmp(rx, RX_LLAMA3) == 0) {
            r->custom = RX_CUSTOM_LLAMA3;
            continue;
        }
        if (strcmp(rx, RX_QWEN2) == 0) {
            r->custom = RX_CUSTOM_QWEN2;
            continue;
        }
        if (strcmp(rx, RX_KIMI_K2) == 0) {
            r->custom = RX_CUSTOM_KIMI_K2;
            continue;
        }
        int errcode;
        PCRE2_SIZE erroff;
        if (uses_categories(rx)) {
            char *c = collapse_regex(rx);
            if (!c) {
                mp_pretok_free(p);
                return mp_err_set(err, MP_E_NOMEM, "tokenizer: out of memory");
            }
            /* Byte mode: the category bytes 0xD0..0xD5 are plain literals. */
            r->re = pcre2_compile((PCRE2_SPTR)c, PCRE2_ZERO_TERMINATED, PCRE2_DOLLAR_ENDONLY, &errcode,
                                  &erroff, NULL);
            free(c);
            r->collapsed = true;
        } else {
            r->re = pcre2_compile((PCRE2_SPTR)rx, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY,
                                  &errcode, &erroff, NULL);
        }
        if (!r->re) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(errcode, msg, sizeof(msg));
            mp_pretok_free(p);
            return mp_err_set(err, MP_E_UNSUPPORTED, "tokenizer: PCRE2 rejects pre-tokenizer regex %d at %zu: %s",
                              i, (size_t)erroff, (const char *)msg);
        }
        (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
    }
    *out = p;
    return MP_OK;
}

/* ---- Splitting ---------------------------------------------------------- */

typedef struct lenvec {
    size_t *v;
    size_t n, cap;
    bool oom;
} lenvec;

static void lv_push(lenvec *l, size_t x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
}

#define OUT_OF_RANGE 0xFFFFFFFFu

/* View of one fragment [ini, end) of the code points; positions outside it
 * read as OUT_OF_RANGE with no flags, as in llama.cpp's matchers. */
typedef struct frag {
    const uint32_t *cpts;
    size_t ini, end, prev_end;
    lenvec *out;
} frag;

static inline uint32_t fr_cpt(const frag *f, size_t pos)
{
    return (pos >= f->ini && pos < f->end) ? f->cpts[pos] : OUT_OF_RANGE;
}
static inline uint8_t fr_flags(const frag *f, size_t pos)
{
    return (pos >= f->ini && pos < f->end) ? mp_cpt_flags(f->cpts[pos]) : 0;
}
/* Emits the word [prev_end, end) if non-empty; returns its length. */
static inline size_t fr_emit(frag *f, size_t end)
{
    size_t len = end - f->prev_end;
    if (len > 0)
        lv_push(f->out, len);
    f->prev_end = end;
    return len;
}

#define F_L(fl) ((fl) & MP_CPT_LETTER)
#define F_N(fl) ((fl) & MP_CPT_NUMBER)
#define F_WS(fl) ((fl) & MP_CPT_WHITESPACE)

/* Shared tail of the matchers: whitespace runs. with_newlines selects the
 * Llama-3/Qwen2 variant that also has \s*[\r\n]+. */
static void match_whitespace(frag *f, size_t *ppos, bool with_newlines)
{
    size_t pos = *ppos;
    size_t nws = 0, last_nl_end = 0;
    while (F_WS(fr_flags(f, pos + nws))) {
        uint32_t c = fr_cpt(f, pos + nws);
        if (with_newlines && (c == '\r' || c == '\n'))
            last_nl_end = pos + nws + 1;
        nws++;
    }
    if (last_nl_end > 0) { /* \s*[\r\n]+ */
        pos = last_nl_end;
        fr_emit(f, pos);
    } else if (nws > 1 && fr_cpt(f, pos + nws) != OUT_OF_RANGE) { /* \s+(?!\S) */
        pos += nws - 1;
        fr_emit(f, pos);
    } else if (nws > 0) { /* \s+ */
        pos += nws;
        fr_emit(f, pos);
    } else { /* no rule matched: the code point alone */
        fr_emit(f, ++pos);
    }
    *ppos = pos;
}

/* 's|'t|'re|'ve|'m|'ll|'d, optionally ASCII-case-insensitive; returns the
 * match length (0 = none). */
static size_t match_contraction(const frag *f, size_t pos, bool icase)
{
    if (fr_cpt(f, pos) != '\'' || pos + 1 >= f->end)
        return 0;
    uint32_t a = fr_cpt(f, pos + 1);
    if (icase && a >= 'A' && a <= 'Z')
        a += 32;
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (pos + 2 < f->end) {
        uint32_t b = fr_cpt(f, pos + 2);
        if (icase && b >= 'A' && b <= 'Z')
            b += 32;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return 3;
    }
    return 0;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(frag *f)
{
    size_t pos = f->ini;
    while (pos < f->end) {
        uint32_t cpt = fr_cpt(f, pos);
        uint8_t fl = fr_flags(f, pos);
        size_t c = match_contraction(f, pos, false);
        if (c) {
            pos += fr_emit(f, pos + c);
            continue;
        }
        uint8_t fl2 = cpt == ' ' ? fr_flags(f, pos + 1) : fl;
        if (F_L(fl2)) {
            pos += (cpt == ' ');
            while (F_L(fl2))
                fl2 = fr_flags(f, ++pos);
            fr_emit(f, pos);
            continue;
        }
        if (F_N(fl2)) {
            pos += (cpt == ' ');
            while (F_N(fl2))
                fl2 = fr_flags(f, ++pos);
            fr_emit(f, pos);
            continue;
        }
        if (!(F_WS(fl2) | F_L(fl2) | F_N(fl2)) && fl2) {
            pos += (cpt == ' ');
            while (!(F_WS(fl2) | F_L(fl2) | F_N(fl2)) && fl2)
                fl2 = fr_flags(f, ++pos);
            fr_emit(f, pos);
            continue;
        }
        match_whitespace(f, &pos, false);
    }
}

/* Llama-3 (max_digits 3) and Qwen2 (max_digits 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static void split_llama3(frag *f, size_t max_digits)
{
    size_t pos = f->ini;
    while (pos < f->end) {
        uint32_t cpt = fr_cpt(f, pos);
        uint8_t fl = fr_flags(f, pos);
        size_t c = match_contraction(f, pos, true);
        if (c) {
            pos += fr_emit(f, pos + c);
            continue;
        }
        if (!(cpt == '\r' || cpt == '\n' || F_N(fl))) {
            if (F_L(fl) || F_L(fr_flags(f, pos + 1))) {
                pos++;
                while (F_L(fr_flags(f, pos)))
                    pos++;
                fr_emit(f, pos);
                continue;
            }
        }
        if (F_N(fl)) {
            size_t ini = pos;
            while (F_N(fr_flags(f, pos))) {
                if (++pos - ini >= max_digits) {
                    fr_emit(f, pos);
                    ini = pos;
                }
            }
            fr_emit(f, pos);
            continue;
        }
        uint8_t fl2 = cpt == ' ' ? fr_flags(f, pos + 1) : fl;
        /* The guard tests the current code point's flags (always set in
         * range), not fl2's: a lone trailing space is taken here. */
        if (!(F_WS(fl2) | F_L(fl2) | F_N(fl2)) && fl) {
            pos += (cpt == ' ');
            while (!(F_WS(fl2) | F_L(fl2) | F_N(fl2)) && fl2)
                fl2 = fr_flags(f, ++pos);
            uint32_t c2 = fr_cpt(f, pos);
            while (c2 == '\r' || c2 == '\n')
                c2 = fr_cpt(f, ++pos);
            fr_emit(f, pos);
            continue;
        }
        match_whitespace(f, &pos, true);
    }
}

/* The ideograph blocks llama.cpp's Kimi-K2 matcher takes for \p{Han}
 * (unicode_cpt_is_han): the CJK Unified Ideographs, extensions A-F and the
 * compatibility blocks; not the radicals, not U+3007. */
static bool is_han(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2EBEF) /* extensions C, D, E, F: contiguous */ ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* A letter that is not Han, at pos (false outside the fragment). */
static inline bool kimi_letter(const frag *f, size_t pos)
{
    return F_L(fr_flags(f, pos)) && !is_han(fr_cpt(f, pos));
}

/* Kimi-K2 (tiktoken's pattern, as llama.cpp's matcher decides it):
 * [\p{Han}]+ | [^\r\n\p{L}\p{N}]? non-Han letters+ ('s|'t|'re|'ve|'m|'ll|'d,
 * any case)? | \p{N}{1,3} | ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ |
 * \s+(?!\S) | \s+. Letters here are all of \p{L} (the case split of the
 * original pattern makes no difference to where a run ends), and a Han
 * ideograph ends a letter run. */
static void split_kimi_k2(frag *f)
{
    size_t pos = f->ini;
    while (pos < f->end) {
        uint32_t cpt = fr_cpt(f, pos);
        uint8_t fl = fr_flags(f, pos);
        if (is_han(cpt)) {
            while (is_han(fr_cpt(f, pos)))
                pos++;
            fr_emit(f, pos);
            continue;
        }
        /* a non-letter, non-number, non-newline lead may start a word */
        const bool lead = !(cpt == '\r' || cpt == '\n' || F_L(fl) || F_N(fl));
        if ((F_L(fl) && !is_han(cpt)) || (lead && kimi_letter(f, pos + 1))) {
            pos += lead;
            while (kimi_letter(f, pos))
                pos++;
            pos += match_contraction(f, pos, true);
            fr_emit(f, pos);
            continue;
        }
        if (F_N(fl)) {
            size_t ini = pos;
            while (F_N(fr_flags(f, pos))) {
                if (++pos - ini >= 3) {
                    fr_emit(f, pos);
                    ini = pos;
                }
            }
            fr_emit(f, pos);
            continue;
        }
        uint8_t fl2 = cpt == ' ' ? fr_flags(f, pos + 1) : fl;
        if (!(F_WS(fl2) | F_L(fl2) | F_N(fl2)) && fl2) {
            pos += (cpt == ' ');
            while (!(F_WS(fl2) | F_L(fl2) | F_N(fl2)) && fl2)
                fl2 = fr_flags(f, ++pos);
            uint32_t c2 = fr_cpt(f, pos);
            while (c2 == '\r' || c2 == '\n')
                c2 = fr_cpt(f, ++pos);
            fr_emit(f, pos);
            continue;
        }
        match_whitespace(f, &pos, true);
    }
}

/* Subjects for the PCRE2 regexes, built on first need. */
typedef struct subjects {
    const uint32_t *cpts;
    size_t n;
    uint8_t *collapsed; /* n bytes */
    char *utf8;         /* UTF-8 of the code points (non-ASCII whitespace -> \v) */
    size_t *byte_of;    /* n + 1 entries: byte offset of code point i in utf8 */
} subjects;

static int build_collapsed(subjects *s)
{
    s->collapsed = malloc(s->n ? s->n : 1);
    if (!s->collapsed)
        return MP_E_NOMEM;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->cpts[i];
        if (c < 128) {
            s->collapsed[i] = (uint8_t)c;
            continue;
        }
        uint8_t fl = mp_cpt_flags(c);
        uint8_t b = COL_OTHER;
        if (F_WS(fl))
            b = 0x0B;
        else if (fl & MP_CPT_NUMBER)
            b = COL_NUMBER;
        else if (fl & MP_CPT_LETTER)
            b = COL_LETTER;
        else if (fl & MP_CPT_PUNCT)
            b = COL_PUNCT;
        else if (fl & MP_CPT_MARK)
            b = COL_MARK;
        else if (fl & MP_CPT_SYMBOL)
            b = COL_SYMBOL;
        s->collapsed[i] = b;
    }
    return MP_OK;
}

static int build_utf8(subjects *s)
{
    s->utf8 = malloc(s->n * 4 + 1);
    s->byte_of = malloc((s->n + 1) * sizeof(size_t));
    if (!s->utf8 || !s->byte_of)
        return MP_E_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->cpts[i];
        if (c > 0x7F && F_WS(mp_cpt_flags(c)))
            c = 0x0B;
        else if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
            c = MP_CPT_REPLACEMENT; /* keep the subject valid UTF-8 for PCRE2 */
        s->byte_of[i] = o;
        o += mp_utf8_encode(c, s->utf8 + o);
    }
    s->byte_of[s->n] = o;
    return MP_OK;
}

/* Code point index (relative to `base`) of byte offset b within the
 * fragment starting at code point base. */
static size_t cpt_index(const subjects *s, size_t base, size_t count, size_t b)
{
    size_t lo = base, hi = base + count; /* byte_of[lo] <= target <= byte_of[hi] */
    size_t target = s->byte_of[base] + b;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->byte_of[mid] < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - base;
}

/* One regex over each fragment: matches and the gaps between them become
 * words (llama.cpp's unicode_regex_split_stl). */
static int split_regex(const mp_pretok_rx *r, subjects *s, const lenvec *in, lenvec *out)
{
    int st;
    if (r->collapsed && !s->collapsed && (st = build_collapsed(s)) != MP_OK)
        return st;
    if (!r->collapsed && !s->utf8 && (st = build_utf8(s)) != MP_OK)
        return st;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->re, NULL);
    if (!md)
        return MP_E_NOMEM;
    size_t start = 0;
    st = MP_OK;
    for (size_t k = 0; k < in->n && st == MP_OK; k++) {
        size_t count = in->v[k];
        const char *subj;
        size_t subj_len;
        if (r->collapsed) {
            subj = (const char *)s->collapsed + start;
            subj_len = count;
        } else {
            subj = s->utf8 + s->byte_of[start];
            subj_len = s->byte_of[start + count] - s->byte_of[start];
        }
        size_t done = 0; /* code points of this fragment already emitted */
        size_t off = 0;  /* byte offset where the next search starts */
        while (off <= subj_len) {
            int rc = pcre2_match(r->re, (PCRE2_SPTR)subj, subj_len, off, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH)
                break;
            if (rc < 0) {
                st = MP_E_UNSUPPORTED;
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (!r->collapsed) {
                ms = cpt_index(s, start, count, ms);
                me = cpt_index(s, start, count, me);
            }
            if (me == ms) { /* empty match: step over one code point */
                if (ov[1] >= subj_len)
                    break;
                off = r->collapsed ? ov[1] + 1 : s->byte_of[start + ms + 1] - s->byte_of[start];
                continue;
            }
            if (ms > done)
                lv_push(out, ms - done);
            lv_push(out, me - ms);
            done = me;
            off = ov[1];
        }
        if (done < count)
            lv_push(out, count - done);
        start += count;
    }
    pcre2_match_data_free(md);
    return out->oom ? MP_E_NOMEM : st;
}

int64_t mp_pretok_split(const mp_pretok *p, const uint32_t *cpts, size_t n, size_t **word_lens)
{
    *word_lens = NULL;
    if (n == 0)
        return 0;
    lenvec cur = {0}, next = {0};
    subjects subj = {.cpts = cpts, .n = n};
    int st = MP_OK;
    lv_push(&cur, n);
    for (int i = 0; i < p->n_rx && st == MP_OK; i++) {
        const mp_pretok_rx *r = &p->rx[i];
        next.n = 0;
        if (r->custom) {
            size_t start = 0;
            for (size_t k = 0; k < cur.n; k++) {
                frag f = {.cpts = cpts, .ini = start, .end = start + cur.v[k], .prev_end = start, .out = &next};
                if (r->custom == RX_CUSTOM_GPT2)
                    split_gpt2(&f);
                else if (r->custom == RX_CUSTOM_KIMI_K2)
                    split_kimi_k2(&f);
                else
                    split_llama3(&f, r->custom == RX_CUSTOM_LLAMA3 ? 3 : 1);
                start += cur.v[k];
            }
            if (next.oom)
                st = MP_E_NOMEM;
        } else {
            st = split_regex(r, &subj, &cur, &next);
        }
        lenvec t = cur;
        cur = next;
        next = t;
    }
    free(next.v);
    free(subj.collapsed);
    free(subj.utf8);
    free(subj.byte_of);
    if (st != MP_OK || cur.oom) {
        free(cur.v);
        return st != MP_OK ? st : MP_E_NOMEM;
    }
    *word_lens = cur.v;
    return (int64_t)cur.n;
}
