/* SentencePiece and byte-level BPE tokenizers from GGUF metadata, following
 * llama.cpp's llama-vocab.cpp step by step (defaults per model type, special
 * token partitioning, SPM bigram merging by score with byte fallback, BPE
 * merging by rank after pre-tokenization, and the token -> piece rules). */
#define _GNU_SOURCE /* memmem */
#include "tokenizer/tokenizer.h"

#include "tokenizer/pretok.h"
#include "tokenizer/tok_map.h"
#include "tokenizer/tok_unicode.h"

#include <ctype.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Token attributes (llama_token_attr bit values). */
enum {
    ATTR_UNKNOWN = 1 << 0,
    ATTR_UNUSED = 1 << 1,
    ATTR_NORMAL = 1 << 2,
    ATTR_CONTROL = 1 << 3,
    ATTR_USER_DEFINED = 1 << 4,
    ATTR_BYTE = 1 << 5,
    ATTR_LSTRIP = 1 << 7,
    ATTR_RSTRIP = 1 << 8,
};

/* tokenizer.ggml.token_type values. */
enum { TT_UNDEFINED = 0, TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE };

typedef enum { VOCAB_SPM, VOCAB_BPE, VOCAB_WPM, VOCAB_UGM, VOCAB_RWKV } vocab_type;

struct mp_tokenizer {
    vocab_type type;
    mp_pretok_kind pre_kind;
    mp_pretok_info pre; /* BPE: the flags tokenizer.ggml.pre sets */
    bool byte_encode;   /* BPE: words in the GPT-2 byte alphabet (else raw UTF-8) */
    mp_pretok *pretok; /* BPE only */
    int32_t n_vocab;

    char *text_arena;   /* every token's text, NUL-terminated */
    uint64_t *text_off; /* n_vocab */
    uint32_t *text_len; /* n_vocab */
    float *score;       /* n_vocab */
    uint16_t *attr;     /* n_vocab, ATTR_* */
    uint8_t *eog;       /* n_vocab, 1 = end of generation */

    mp_tok_map tok2id;
    mp_tok_map merges; /* key: u32 left length, left bytes, right bytes -> rank */
    size_t max_merge_key;

    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_eos, add_space_prefix, ignore_merges;
    bool clean_spaces, escape_whitespaces, add_sep;
    int32_t sep;                    /* WPM: appended with add_special */
    bool lowercase, strip_accents;  /* WPM normalizer */
    size_t max_token_len;           /* bytes of the longest token text */

    /* UGM (T5 unigram): the precompiled normalization map (XCDA trie of
     * prefixes + NUL-terminated replacements), user-defined token prefixes,
     * and the score of an unknown code point (lowest normal score - 10). */
    uint8_t *charsmap;
    size_t charsmap_len;
    const uint32_t *xcda; /* into charsmap, xcda_n entries */
    size_t xcda_n;
    const char *repl;     /* into charsmap, repl_n bytes */
    size_t repl_n;
    mp_tok_map ud_prefix; /* every prefix of every user-defined token */
    size_t max_ud_len;
    double unk_score;
    bool remove_extra_ws;

    /* RWKV: unescaped token bytes -> id (the last id of equal texts), every
     * prefix of them, and each token's unescaped bytes for detokenizing. */
    mp_tok_map rwkv_map, rwkv_prefix;
    char *rwkv_arena;
    uint64_t *rwkv_off; /* n_vocab + 1 */
    size_t rwkv_max;

    int32_t byte_id[256];    /* token of a raw byte (-1 if the vocab lacks it) */
    char byte_enc[256][2];   /* BPE: UTF-8 of the byte-level code point */
    uint8_t byte_enc_len[256];

    int32_t *special; /* control/user-defined/unknown ids, longest text first */
    int32_t n_special;
};

static inline const char *tok_text(const mp_tokenizer *t, int32_t id)
{
    return t->text_arena + t->text_off[id];
}

/* ---- Small vectors ------------------------------------------------------- */

typedef struct ivec {
    int32_t *v;
    size_t n, cap;
    bool oom;
} ivec;

static void iv_push(ivec *o, int32_t x)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        int32_t *v = realloc(o->v, cap * sizeof(*v));
        if (!v) {
            o->oom = true;
            return;
        }
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = x;
}

/* ---- Bigram heap: smallest key first, then leftmost ---------------------- */

typedef struct bigram {
    double key; /* SPM: -score; BPE: merge rank */
    int left, right;
    size_t size; /* bytes of left + right when queued */
} bigram;

typedef struct bheap {
    bigram *v;
    size_t n, cap;
    bool oom;
} bheap;

static inline bool bg_before(const bigram *a, const bigram *b)
{
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static void bh_push(bheap *h, bigram b)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        bigram *v = realloc(h->v, cap * sizeof(*v));
        if (!v) {
            h->oom = true;
            return;
        }
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bg_before(&b, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
}

static bigram bh_pop(bheap *h)
{
    bigram top = h->v[0];
    bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && bg_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!bg_before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

typedef struct symbol {
    const char *text;
    size_t n;
    int prev, next;
} symbol;

/* Splits text into one symbol per UTF-8 sequence (by lead byte, clipped at
 * the end), linked as a list. Returns the count or -1 on OOM. */
static int make_symbols(const char *text, size_t len, symbol **out)
{
    symbol *s = malloc((len ? len : 1) * sizeof(*s));
    if (!s)
        return -1;
    int n = 0;
    size_t off = 0;
    while (off < len) {
        size_t l = mp_utf8_len((uint8_t)text[off]);
        if (l > len - off)
            l = len - off;
        s[n].text = text + off;
        s[n].n = l;
        s[n].prev = n - 1;
        off += l;
        s[n].next = off == len ? -1 : n + 1;
        n++;
    }
    *out = s;
    return n;
}

static void push_bytes(const mp_tokenizer *t, const char *s, size_t n, ivec *out)
{
    for (size_t j = 0; j < n; j++) {
        int32_t id = t->byte_id[(uint8_t)s[j]];
        if (id < 0)
            id = t->unk; /* llama.cpp would throw here: the vocab lacks the byte */
        if (id >= 0)
            iv_push(out, id);
    }
}

/* ---- SentencePiece ------------------------------------------------------- */

static void spm_try_bigram(const mp_tokenizer *t, const symbol *sym, int left, int right, bheap *h)
{
    if (left < 0 || right < 0)
        return;
    size_t n = sym[left].n + sym[right].n;
    int32_t id = mp_tok_map_get(&t->tok2id, sym[left].text, n);
    if (id < 0)
        return;
    bh_push(h, (bigram){.key = -(double)t->score[id], .left = left, .right = right, .size = n});
}

/* text: already space-escaped ("▁"). */
static int spm_tokenize(const mp_tokenizer *t, const char *text, size_t len, ivec *out)
{
    symbol *sym;
    int n = make_symbols(text, len, &sym);
    if (n < 0)
        return MP_E_NOMEM;
    bheap h = {0};
    for (int i = 1; i < n; i++)
        spm_try_bigram(t, sym, i - 1, i, &h);
    while (h.n) {
        bigram b = bh_pop(&h);
        symbol *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue; /* stale: one side was merged since */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = b.left;
        spm_try_bigram(t, sym, l->prev, b.left, &h);
        spm_try_bigram(t, sym, b.left, l->next, &h);
    }
    /* Every merged symbol is a token; single code points may not be and
     * fall back to byte tokens. */
    for (int i = n ? 0 : -1; i != -1; i = sym[i].next) {
        int32_t id = mp_tok_map_get(&t->tok2id, sym[i].text, sym[i].n);
        if (id >= 0)
            iv_push(out, id);
        else
            push_bytes(t, sym[i].text, sym[i].n, out);
    }
    bool oom = h.oom;
    free(h.v);
    free(sym);
    return oom ? MP_E_NOMEM : MP_OK;
}

/* ---- Byte-level BPE ------------------------------------------------------ */

/* Rank of merging the pieces (a, b), or -1. key: scratch of max_merge_key bytes. */
static int32_t bpe_rank(const mp_tokenizer *t, const char *a, size_t an, const char *b, size_t bn, char *key)
{
    size_t kl = 4 + an + bn;
    if (kl > t->max_merge_key)
        return -1;
    uint32_t al = (uint32_t)an;
    memcpy(key, &al, 4);
    memcpy(key + 4, a, an);
    memcpy(key + 4 + an, b, bn);
    return mp_tok_map_get(&t->merges, key, kl);
}

static void bpe_try_bigram(const mp_tokenizer *t, const symbol *sym, int left, int right, bheap *h, char *key)
{
    if (left < 0 || right < 0)
        return;
    int32_t rank = bpe_rank(t, sym[left].text, sym[left].n, sym[right].text, sym[right].n, key);
    if (rank < 0)
        return;
    bh_push(h, (bigram){.key = rank, .left = left, .right = right, .size = sym[left].n + sym[right].n});
}

static bool all_newlines(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\n')
            return false;
    return n > 0;
}

/* word: one pre-tokenized word in the byte-level alphabet (or raw UTF-8). */
static int bpe_word(const mp_tokenizer *t, const char *word, size_t len, ivec *out, char *key)
{
    if (t->ignore_merges || (t->pre_kind == MP_PRETOK_GEMMA4 && all_newlines(word, len))) {
        /* Gemma 4: a run of newlines that is a token stays whole */
        int32_t id = mp_tok_map_get(&t->tok2id, word, len);
        if (id >= 0) {
            iv_push(out, id);
            return MP_OK;
        }
    }
    symbol *sym;
    int n = make_symbols(word, len, &sym);
    if (n < 0)
        return MP_E_NOMEM;
    bheap h = {0};
    for (int i = 1; i < n; i++)
        bpe_try_bigram(t, sym, i - 1, i, &h, key);
    while (h.n) {
        bigram b = bh_pop(&h);
        symbol *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = b.left;
        bpe_try_bigram(t, sym, l->prev, b.left, &h, key);
        bpe_try_bigram(t, sym, b.left, l->next, &h, key);
    }
    for (int i = 0; i < n; i++) {
        if (sym[i].n == 0)
            continue;
        int32_t id = mp_tok_map_get(&t->tok2id, sym[i].text, sym[i].n);
        if (id >= 0) {
            iv_push(out, id);
            continue;
        }
        /* llama.cpp looks each byte of the encoded text up as a
         * one-character token (only ASCII ones can exist), or for raw
         * UTF-8 words as a "<0xXX>" byte token. */
        for (size_t j = 0; j < sym[i].n; j++) {
            int32_t b1;
            if (t->byte_encode) {
                b1 = mp_tok_map_get(&t->tok2id, sym[i].text + j, 1);
            } else {
                char hex[8];
                snprintf(hex, sizeof(hex), "<0x%02X>", (uint8_t)sym[i].text[j]);
                b1 = mp_tok_map_get(&t->tok2id, hex, 6);
            }
            if (b1 >= 0)
                iv_push(out, b1);
        }
    }
    bool oom = h.oom;
    free(h.v);
    free(sym);
    return oom ? MP_E_NOMEM : MP_OK;
}

static int bpe_tokenize(const mp_tokenizer *t, const char *text, size_t len, ivec *out)
{
    uint32_t *cpts = NULL;
    size_t *words = NULL;
    char *buf = NULL, *key = NULL;
    int st = MP_OK;
    int64_t n = mp_utf8_to_cpts(text, len, &cpts);
    if (n < 0)
        return MP_E_NOMEM;
    int64_t nw = mp_pretok_split(t->pretok, cpts, (size_t)n, &words);
    if (nw < 0) {
        st = (int)nw;
        goto done;
    }
    size_t maxw = 0;
    for (int64_t w = 0; w < nw; w++)
        if (words[w] > maxw)
            maxw = words[w];
    buf = malloc(maxw * 8 + 1); /* 4 UTF-8 bytes per code point, 2 per encoded byte */
    key = malloc(t->max_merge_key + 1);
    if (!buf || !key) {
        st = MP_E_NOMEM;
        goto done;
    }
    size_t c = 0;
    for (int64_t w = 0; w < nw && st == MP_OK; w++) {
        size_t bl = 0;
        for (size_t k = 0; k < words[w]; k++) {
            char u[4];
            size_t ul = mp_utf8_encode(cpts[c + k], u);
            if (!t->byte_encode) {
                memcpy(buf + bl, u, ul);
                bl += ul;
                continue;
            }
            for (size_t j = 0; j < ul; j++) {
                uint8_t by = (uint8_t)u[j];
                memcpy(buf + bl, t->byte_enc[by], t->byte_enc_len[by]);
                bl += t->byte_enc_len[by];
            }
        }
        c += words[w];
        st = bpe_word(t, buf, bl, out, key);
    }
done:
    free(cpts);
    free(words);
    free(buf);
    free(key);
    return st;
}

/* ---- WordPiece (BERT) --------------------------------------------------- */

/* True for the CJK ideograph blocks BERT splits one character at a time
 * (HF's list, with its 0x2B920 start for extension E). */
static bool wpm_is_chinese(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Covers w[0..wl) (a word with its U+2581 prefix) by the longest vocabulary
 * entries from left to right; the whole word becomes UNK when some position
 * has none. */
static void wpm_word(const mp_tokenizer *t, const char *w, size_t wl, ivec *out)
{
    size_t before = out->n;
    for (size_t p = 0; p < wl;) {
        size_t j = p + t->max_token_len + 1 < wl ? p + t->max_token_len + 1 : wl;
        int32_t id = -1;
        for (; j > p; j--)
            if ((id = mp_tok_map_get(&t->tok2id, w + p, j - p)) >= 0)
                break;
        if (id < 0) {
            out->n = before;
            break;
        }
        iv_push(out, id);
        p = j;
    }
    if (out->n == before && t->unk >= 0)
        iv_push(out, t->unk);
}

/* Normalizes (NFD first code point and accent removal, lowercase; NUL,
 * U+FFFD and control characters dropped) and splits on whitespace, with
 * punctuation, ASCII symbols and CJK ideographs each a word alone. */
static int wpm_tokenize(const mp_tokenizer *t, const char *text, size_t len, ivec *out)
{
    uint32_t *cpts = NULL;
    int64_t n = mp_utf8_to_cpts(text, len, &cpts);
    if (n < 0)
        return MP_E_NOMEM;
    char *w = malloc((size_t)n * 4 + 4); /* 4 bytes per code point, plus the U+2581 prefix */
    if (!w) {
        free(cpts);
        return MP_E_NOMEM;
    }
    memcpy(w, "\xE2\x96\x81", 3);
    size_t wl = 3;
    for (int64_t i = 0; i < n; i++) {
        uint32_t c = t->strip_accents ? mp_cpt_nfd_first(cpts[i]) : cpts[i];
        uint8_t fl = mp_cpt_flags(c);
        if (fl & MP_CPT_WHITESPACE) {
            if (wl > 3)
                wpm_word(t, w, wl, out);
            wl = 3;
            continue;
        }
        if (c == 0 || c == MP_CPT_REPLACEMENT || (fl & MP_CPT_CONTROL) || (t->strip_accents && (fl & MP_CPT_MARK)))
            continue;
        const bool alone = (fl & MP_CPT_PUNCT) || (c < 0x7F && (fl & MP_CPT_SYMBOL)) || wpm_is_chinese(c);
        if (alone && wl > 3) {
            wpm_word(t, w, wl, out);
            wl = 3;
        }
        wl += mp_utf8_encode(t->lowercase ? mp_cpt_tolower(c) : c, w + wl);
        if (alone) {
            wpm_word(t, w, wl, out);
            wl = 3;
        }
    }
    if (wl > 3)
        wpm_word(t, w, wl, out);
    free(w);
    free(cpts);
    return out->oom ? MP_E_NOMEM : MP_OK;
}

/* ---- Unigram (T5) ------------------------------------------------------- */

/* XCDA node fields (Kanda 2018 as SentencePiece packs them): BASE in bits
 * 10-30 (shifted by 8 when bit 9 is set), LCHECK in bits 0-7 (bit 31 kept
 * so value nodes never match), LEAF in bit 8, VALUE in bits 0-30. */
static bool xcda_node(const mp_tokenizer *t, size_t i, uint32_t *out)
{
    if (i >= t->xcda_n)
        return false;
    memcpy(out, t->xcda + i, 4);
    return true;
}

/* Normalizes the input prefix at in[0..n) (n >= 1): a user-defined token
 * prefix stays as is, else the longest charsmap match is replaced, else one
 * valid UTF-8 sequence stays, else one byte becomes U+FFFD. Sets *rep and
 * *rep_len and returns the input bytes consumed. */
static size_t ugm_normalize_prefix(const mp_tokenizer *t, const char *in, size_t n, const char **rep, size_t *rep_len)
{
    /* llama.cpp walks its user-defined trie as far as the input follows any
     * path, whether or not a whole token ends there */
    size_t ud = 0;
    for (size_t l = 1; l <= n && l <= t->max_ud_len; l++)
        if (mp_tok_map_get(&t->ud_prefix, in, l) >= 0)
            ud = l;
        else
            break;
    if (ud > 0) {
        *rep = in;
        *rep_len = ud;
        return ud;
    }
    size_t best_len = 0, best_off = 0;
    uint32_t node;
    if (t->xcda_n > 0 && xcda_node(t, 0, &node)) {
        uint32_t idx = (node >> 10) << ((node & (1u << 9)) >> 6);
        for (size_t p = 0; p < n; p++) {
            const uint8_t c = (uint8_t)in[p];
            if (c == 0)
                break;
            idx ^= c;
            if (!xcda_node(t, idx, &node) || (node & ((1u << 31) | 0xFF)) != c)
                break;
            const bool leaf = (node >> 8) & 1;
            idx ^= (node >> 10) << ((node & (1u << 9)) >> 6);
            if (leaf) {
                uint32_t v;
                if (!xcda_node(t, idx, &v))
                    break;
                best_len = p + 1;
                best_off = v & ((1u << 31) - 1);
            }
        }
    }
    if (best_len > 0 && best_off < t->repl_n) {
        const char *r = t->repl + best_off;
        size_t rl = strnlen(r, t->repl_n - best_off);
        if (rl < t->repl_n - best_off) { /* terminated */
            *rep = r;
            *rep_len = rl;
            return best_len;
        }
    }
    size_t adv;
    uint32_t c = mp_utf8_decode((const uint8_t *)in, n, &adv);
    if (c == MP_CPT_REPLACEMENT && !(adv == 3 && memcmp(in, "\xEF\xBF\xBD", 3) == 0)) {
        *rep = "\xEF\xBF\xBD";
        *rep_len = 3;
        return 1;
    }
    *rep = in;
    *rep_len = adv;
    return adv;
}

/* Whole-fragment normalization: prefixes replaced as above, spaces as U+2581,
 * runs of spaces merged and one put before each word when
 * remove_extra_whitespaces, one before the first word with add_space_prefix. */
static int ugm_normalize(const mp_tokenizer *t, const char *in, size_t n, char **out, size_t *out_len)
{
    size_t cap = 3 * n + 16, o = 0;
    char *buf = malloc(cap);
    if (!buf)
        return MP_E_NOMEM;
    bool prepended = false, in_word = false;
    for (size_t i = 0; i < n;) {
        const char *r;
        size_t rl;
        i += ugm_normalize_prefix(t, in + i, n - i, &r, &rl);
        for (size_t k = 0; k < rl; k++) {
            if (o + 8 > cap) {
                cap *= 2;
                char *nb = realloc(buf, cap);
                if (!nb) {
                    free(buf);
                    return MP_E_NOMEM;
                }
                buf = nb;
            }
            if (r[k] != ' ') {
                if (!in_word) {
                    in_word = true;
                    if ((t->add_space_prefix && !prepended) || t->remove_extra_ws) {
                        memcpy(buf + o, "\xE2\x96\x81", 3);
                        o += 3;
                        prepended = true;
                    }
                }
                buf[o++] = r[k];
            } else {
                in_word = false;
                if (!t->remove_extra_ws) {
                    memcpy(buf + o, "\xE2\x96\x81", 3);
                    o += 3;
                }
            }
        }
    }
    *out = buf;
    *out_len = o;
    return MP_OK;
}

typedef struct ugm_best {
    int32_t id;
    size_t from;
    double score;
} ugm_best;

/* Viterbi over byte offsets, one code point at a time: every vocabulary
 * entry (normal, user-defined at score 0, unused) starting at a reached
 * offset is a candidate; a code point no entry covers alone may be UNK at
 * unk_score. Consecutive UNKs of the best path merge into one. */
static int ugm_tokenize(const mp_tokenizer *t, const char *text, size_t len, ivec *out)
{
    char *s;
    size_t n;
    int st = ugm_normalize(t, text, len, &s, &n);
    if (st != MP_OK)
        return st;
    if (n == 0) {
        free(s);
        return MP_OK;
    }
    ugm_best *best = malloc((n + 1) * sizeof(*best));
    if (!best) {
        free(s);
        return MP_E_NOMEM;
    }
    for (size_t i = 0; i <= n; i++)
        best[i] = (ugm_best){t->unk, 0, -DBL_MAX};
    best[0].score = 0;
    for (size_t i = 0; i < n;) {
        size_t cl = mp_utf8_len((uint8_t)s[i]);
        if (cl > n - i)
            cl = n - i;
        bool single = false;
        const double base = best[i].score;
        for (size_t l = 1; l <= n - i && l <= t->max_token_len; l++) {
            int32_t id = mp_tok_map_get(&t->tok2id, s + i, l);
            if (id < 0 || !(t->attr[id] & (ATTR_NORMAL | ATTR_USER_DEFINED | ATTR_UNUSED)))
                continue;
            if (l == cl)
                single = true;
            const double sc = base + ((t->attr[id] & ATTR_USER_DEFINED) ? 0.0 : (double)t->score[id]);
            if (sc > best[i + l].score)
                best[i + l] = (ugm_best){id, i, sc};
        }
        if (!single) {
            const double sc = base + t->unk_score;
            if (sc > best[i + cl].score)
                best[i + cl] = (ugm_best){t->unk, i, sc};
        }
        i += cl;
    }
    size_t start = out->n;
    bool prev_unk = false;
    for (size_t at = n;;) {
        const ugm_best *b = &best[at];
        const bool unk = b->id == t->unk;
        if (!(prev_unk && unk) && b->id >= 0) /* no UNK id: llama.cpp would emit -1 */
            iv_push(out, b->id);
        if (b->from == 0)
            break;
        prev_unk = unk;
        at = b->from;
    }
    if (!out->oom) /* the path was collected from the end */
        for (size_t a = start, z = out->n - 1; a < z; a++, z--) {
            int32_t tmp = out->v[a];
            out->v[a] = out->v[z];
            out->v[z] = tmp;
        }
    free(best);
    free(s);
    return out->oom ? MP_E_NOMEM : MP_OK;
}

/* ---- RWKV ---------------------------------------------------------------- */

/* RWKV token texts are escaped: \t \n \r, \xhh (lowercase hex digits as
 * llama.cpp reads them), and \c for any other c. Returns the length written
 * to out (at most n bytes). */
static size_t rwkv_unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    int hex_left = 0;
    uint8_t acc = 0;
    bool esc = false;
    for (size_t i = 0; i < n; i++) {
        const char c = s[i];
        if (hex_left) {
            acc = (uint8_t)((acc << 4) + (c >= 'a' ? c - 'a' + 10 : c - '0'));
            if (--hex_left == 0) {
                out[o++] = (char)acc;
                acc = 0;
            }
        } else if (esc) {
            if (c == 'x')
                hex_left = 2;
            else
                out[o++] = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
            esc = false;
        } else if (c == '\\') {
            esc = true;
        } else {
            out[o++] = c;
        }
    }
    return o;
}

/* Greedy longest match from left to right; a byte that starts no token is
 * UNK. (llama.cpp's walk would stall where a prefix path holds no token;
 * RWKV vocabularies have every single byte, so that cannot happen there:
 * the engine takes one UNK for the byte instead.) */
static void rwkv_tokenize(const mp_tokenizer *t, const char *s, size_t n, ivec *out)
{
    size_t pos = 0;
    while (pos < n) {
        int32_t id = -1;
        size_t len = 0;
        for (size_t l = 1; pos + l <= n && l <= t->rwkv_max; l++) {
            if (mp_tok_map_get(&t->rwkv_prefix, s + pos, l) < 0)
                break;
            int32_t x = mp_tok_map_get(&t->rwkv_map, s + pos, l);
            if (x >= 0) {
                id = x;
                len = l;
            }
        }
        if (len == 0) {
            if (t->unk >= 0) /* llama.cpp would emit -1 here (RWKV has no UNK) */
                iv_push(out, t->unk);
            pos++;
        } else {
            iv_push(out, id);
            pos += len;
        }
    }
}

static int rwkv_setup(mp_tokenizer *t, mp_err *err, const char *path)
{
    size_t total = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        total += t->text_len[id];
    t->rwkv_arena = malloc(total + 1);
    t->rwkv_off = malloc(((size_t)t->n_vocab + 1) * sizeof(*t->rwkv_off));
    if (!t->rwkv_arena || !t->rwkv_off || mp_tok_map_init(&t->rwkv_map, (size_t)t->n_vocab) != 0 ||
        mp_tok_map_init(&t->rwkv_prefix, (size_t)t->n_vocab * 4) != 0)
        return mp_err_set(err, MP_E_NOMEM, "%s: out of memory for the RWKV vocabulary", path);
    size_t o = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        t->rwkv_off[id] = o;
        size_t l = rwkv_unescape(tok_text(t, id), t->text_len[id], t->rwkv_arena + o);
        if (mp_tok_map_put(&t->rwkv_map, t->rwkv_arena + o, l, id, true) != 0)
            return mp_err_set(err, MP_E_NOMEM, "%s: out of memory for the RWKV vocabulary", path);
        for (size_t k = 1; k <= l; k++)
            if (mp_tok_map_put(&t->rwkv_prefix, t->rwkv_arena + o, k, 1, false) != 0)
                return mp_err_set(err, MP_E_NOMEM, "%s: out of memory for the RWKV vocabulary", path);
        if (l > t->rwkv_max)
            t->rwkv_max = l;
        o += l;
    }
    t->rwkv_off[t->n_vocab] = o;
    return MP_OK;
}

/* ---- Special-token partitioning ----------------------------------------- */

typedef struct frag {
    int32_t tok; /* -1: raw text [off, off + len) */
    size_t off, len;
} frag;

typedef struct fvec {
    frag *v;
    size_t n, cap;
    bool oom;
} fvec;

static void fv_push(fvec *f, frag x)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        frag *v = realloc(f->v, cap * sizeof(*v));
        if (!v) {
            f->oom = true;
            return;
        }
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = x;
}

/* Cuts every occurrence of each special token's text out of the raw
 * fragments, longest tokens first. Without parse_special only user-defined
 * tokens are cut (control and unknown ones stay text). */
static int partition(const mp_tokenizer *t, const char *text, size_t len, bool parse_special, fvec *out)
{
    fvec cur = {0}, next = {0};
    if (len)
        fv_push(&cur, (frag){-1, 0, len});
    for (int32_t k = 0; k < t->n_special && !cur.oom && !next.oom; k++) {
        int32_t id = t->special[k];
        uint16_t a = t->attr[id];
        if (!parse_special && (a & (ATTR_CONTROL | ATTR_UNKNOWN)))
            continue;
        const char *tt = tok_text(t, id);
        size_t tl = t->text_len[id];
        next.n = 0;
        for (size_t i = 0; i < cur.n; i++) {
            frag f = cur.v[i];
            if (f.tok >= 0) {
                fv_push(&next, f);
                continue;
            }
            size_t base = f.off, blen = f.len;
            while (blen > 0) {
                const char *p = memmem(text + base, blen, tt, tl);
                if (!p)
                    break;
                size_t m = (size_t)(p - text);
                size_t ll = m - base;
                if (a & ATTR_LSTRIP)
                    while (ll > 0 && isspace((unsigned char)text[base + ll - 1]))
                        ll--;
                if (ll > 0)
                    fv_push(&next, (frag){-1, base, ll});
                fv_push(&next, (frag){id, 0, 0});
                size_t ro = m + tl, rl = base + blen - ro;
                if (a & ATTR_RSTRIP)
                    while (rl > 0 && isspace((unsigned char)text[ro])) {
                        ro++;
                        rl--;
                    }
                base = ro;
                blen = rl;
            }
            if (blen > 0)
                fv_push(&next, (frag){-1, base, blen});
        }
        fvec tmp = cur;
        cur = next;
        next = tmp;
    }
    bool oom = cur.oom || next.oom;
    free(next.v);
    if (oom) {
        free(cur.v);
        return MP_E_NOMEM;
    }
    *out = cur;
    return MP_OK;
}

int64_t mp_tokenize(const mp_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                    int32_t *ids, int64_t cap)
{
    fvec frags = {0};
    ivec out = {0};
    char *buf = NULL;
    int st = partition(t, text, len, parse_special, &frags);
    if (st != MP_OK)
        return st;
    /* WordPiece adds CLS (the BOS id) and SEP whenever add_special is set;
     * RWKV adds nothing */
    if (add_special && (t->add_bos || t->type == VOCAB_WPM) && t->type != VOCAB_RWKV && t->bos >= 0)
        iv_push(&out, t->bos);
    if (t->type == VOCAB_SPM) {
        size_t maxl = 0;
        for (size_t i = 0; i < frags.n; i++)
            if (frags.v[i].tok < 0 && frags.v[i].len > maxl)
                maxl = frags.v[i].len;
        buf = malloc(3 * (maxl + 1)); /* every byte may become "▁" */
        if (!buf) {
            st = MP_E_NOMEM;
            goto done;
        }
        bool prev_special = true; /* the first fragment gets the prefix space too */
        for (size_t i = 0; i < frags.n && st == MP_OK; i++) {
            const frag *f = &frags.v[i];
            if (f->tok >= 0) {
                iv_push(&out, f->tok);
                prev_special = true;
                continue;
            }
            size_t bl = 0;
            if (t->add_space_prefix && prev_special) {
                memcpy(buf, "\xE2\x96\x81", 3);
                bl = 3;
            }
            for (size_t j = 0; j < f->len; j++) {
                char ch = text[f->off + j];
                if (ch == ' ') {
                    memcpy(buf + bl, "\xE2\x96\x81", 3);
                    bl += 3;
                } else {
                    buf[bl++] = ch;
                }
            }
            st = spm_tokenize(t, buf, bl, &out);
            prev_special = false;
        }
    } else if (t->type == VOCAB_RWKV) {
        for (size_t i = 0; i < frags.n; i++) {
            const frag *f = &frags.v[i];
            if (f->tok >= 0)
                iv_push(&out, f->tok);
            else
                rwkv_tokenize(t, text + f->off, f->len, &out);
        }
    } else if (t->type == VOCAB_UGM) {
        for (size_t i = 0; i < frags.n && st == MP_OK; i++) {
            const frag *f = &frags.v[i];
            if (f->tok >= 0)
                iv_push(&out, f->tok);
            else
                st = ugm_tokenize(t, text + f->off, f->len, &out);
        }
    } else if (t->type == VOCAB_WPM) {
        for (size_t i = 0; i < frags.n && st == MP_OK; i++) {
            const frag *f = &frags.v[i];
            if (f->tok >= 0)
                iv_push(&out, f->tok);
            else
                st = wpm_tokenize(t, text + f->off, f->len, &out);
        }
        if (st == MP_OK && add_special && t->sep >= 0)
            iv_push(&out, t->sep);
    } else {
        for (size_t i = 0; i < frags.n && st == MP_OK; i++) {
            const frag *f = &frags.v[i];
            if (f->tok >= 0) {
                iv_push(&out, f->tok);
            } else if (t->escape_whitespaces) {
                /* SPM-style BPE (Gemma 4): ' ' -> U+2581 before splitting */
                free(buf);
                buf = malloc(3 * f->len + 1);
                if (!buf) {
                    st = MP_E_NOMEM;
                    break;
                }
                size_t bl = 0;
                for (size_t j = 0; j < f->len; j++) {
                    if (text[f->off + j] == ' ') {
                        memcpy(buf + bl, "\xE2\x96\x81", 3);
                        bl += 3;
                    } else {
                        buf[bl++] = text[f->off + j];
                    }
                }
                st = bpe_tokenize(t, buf, bl, &out);
            } else {
                st = bpe_tokenize(t, text + f->off, f->len, &out);
            }
        }
    }
    if (st == MP_OK && add_special && t->add_eos && t->eos >= 0 && t->type != VOCAB_WPM && t->type != VOCAB_RWKV)
        iv_push(&out, t->eos);
    if (st == MP_OK && out.oom)
        st = MP_E_NOMEM;
done:
    free(frags.v);
    free(buf);
    if (st != MP_OK) {
        free(out.v);
        return st;
    }
    if (ids && cap > 0 && out.n > 0) /* out.v is NULL for no tokens: memcpy's pointers must be valid */
        memcpy(ids, out.v, (size_t)((int64_t)out.n < cap ? (int64_t)out.n : cap) * sizeof(int32_t));
    free(out.v);
    return (int64_t)out.n;
}

/* ---- Detokenization ------------------------------------------------------ */

static int copy_out(const char *s, size_t n, char *buf, int cap)
{
    if (cap > 0)
        memcpy(buf, s, n < (size_t)cap ? n : (size_t)cap);
    return (int)n;
}

static int hex_byte(const char *s, uint32_t n)
{
    /* "<0xXX>" */
    if (n < 6)
        return -1;
    char h[3] = {s[3], s[4], 0};
    char *end;
    long v = strtol(h, &end, 16);
    return *end ? -1 : (int)v;
}

int mp_token_to_piece(const mp_tokenizer *t, int32_t id, char *buf, int cap, bool special)
{
    if (id < 0 || id >= t->n_vocab)
        return MP_E_INVAL;
    uint16_t a = t->attr[id];
    const char *s = tok_text(t, id);
    uint32_t n = t->text_len[id];
    if (!special && (a & (ATTR_UNKNOWN | ATTR_CONTROL)))
        return 0;
    if (t->type == VOCAB_RWKV) /* every token: its unescaped bytes */
        return copy_out(t->rwkv_arena + t->rwkv_off[id], (size_t)(t->rwkv_off[id + 1] - t->rwkv_off[id]), buf, cap);
    if (a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED))
        return copy_out(s, n, buf, cap);
    if (a & ATTR_BYTE) {
        int b = hex_byte(s, n);
        if (b < 0)
            return 0;
        char c = (char)b;
        return copy_out(&c, 1, buf, cap);
    }
    if (!(a & ATTR_NORMAL))
        return 0; /* unused / undefined tokens render as nothing */
    int total = 0;
    if (t->type != VOCAB_BPE || t->escape_whitespaces) { /* U+2581 -> ' ' */
        for (uint32_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
                if (total < cap)
                    buf[total] = ' ';
                total++;
                i += 3;
            } else {
                if (total < cap)
                    buf[total] = s[i];
                total++;
                i++;
            }
        }
        return total;
    }
    /* Byte-level BPE: each code point of the text stands for one byte;
     * others render as llama.cpp's "[UNK_BYTE_0x..<text>]". */
    for (uint32_t i = 0; i < n;) {
        size_t adv;
        uint32_t cpt = mp_utf8_decode((const uint8_t *)s + i, n - i, &adv);
        int b = mp_cpt_to_byte(cpt);
        if (b >= 0) {
            if (total < cap)
                buf[total] = (char)b;
            total++;
        } else {
            char tmp[32];
            char u[4];
            size_t ul = mp_utf8_encode(cpt, u);
            int tl = snprintf(tmp, sizeof(tmp), "[UNK_BYTE_0x");
            for (size_t j = 0; j < ul; j++)
                tl += snprintf(tmp + tl, sizeof(tmp) - (size_t)tl, "%02x", (uint8_t)u[j]);
            for (int j = 0; j < tl; j++, total++)
                if (total < cap)
                    buf[total] = tmp[j];
            for (uint32_t j = 0; j < n; j++, total++)
                if (total < cap)
                    buf[total] = s[j];
            if (total < cap)
                buf[total] = ']';
            total++;
        }
        i += adv;
    }
    return total;
}

/* ---- Loading ------------------------------------------------------------- */

void mp_tokenizer_free(mp_tokenizer *t)
{
    if (!t)
        return;
    mp_pretok_free(t->pretok);
    free(t->text_arena);
    free(t->text_off);
    free(t->text_len);
    free(t->score);
    free(t->attr);
    free(t->eog);
    free(t->special);
    mp_tok_map_free(&t->tok2id);
    mp_tok_map_free(&t->merges);
    mp_tok_map_free(&t->ud_prefix);
    mp_tok_map_free(&t->rwkv_map);
    mp_tok_map_free(&t->rwkv_prefix);
    free(t->rwkv_arena);
    free(t->rwkv_off);
    free(t->charsmap);
    free(t);
}

/* A token id from an integer key: kept only if it names a token (llama.cpp
 * warns and keeps the default otherwise). */
static void read_id(const mp_gguf *g, const char *key, int32_t n_vocab, int32_t *id)
{
    const mp_gguf_value *v = mp_gguf_get(g, key);
    if (!v)
        return;
    int64_t x;
    switch (v->type) {
    case MP_GGUF_UINT8: case MP_GGUF_UINT16: case MP_GGUF_UINT32: case MP_GGUF_UINT64:
        x = v->v.u64 > (uint64_t)INT32_MAX ? -1 : (int64_t)v->v.u64;
        break;
    case MP_GGUF_INT8: case MP_GGUF_INT16: case MP_GGUF_INT32: case MP_GGUF_INT64:
        x = v->v.i64;
        break;
    default:
        return;
    }
    if (x >= 0 && x < n_vocab)
        *id = (int32_t)x;
}

static int read_flag(const mp_gguf *g, const char *key, bool *flag, mp_err *err)
{
    bool b;
    int st = mp_gguf_get_bool(g, key, &b, err);
    if (st == MP_OK)
        *flag = b;
    return st == MP_E_NOTFOUND ? MP_OK : st;
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static const char *const k_eot_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
    "<end_of_utterance>", NULL};
static const char *const k_eom_names[] = {"<|eom_id|>", NULL};
static const char *const k_fim_pre_names[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
    "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const k_fim_suf_names[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>",
    "<SUF>", "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const k_fim_mid_names[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
    "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL};
static const char *const k_fim_pad_names[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
static const char *const k_fim_rep_names[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                              "<reponame>", NULL};
static const char *const k_fim_sep_names[] = {"<|file_sep|>", NULL};
static const char *const k_eog_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "[e~[", NULL};

/* Auto-detection by text (llama.cpp does this because converters do not
 * always record these ids): the first (lowest) matching id is taken when the
 * metadata gave none, and the token is forced to control type. */
static void detect_special(mp_tokenizer *t, int32_t *slot, const char *const *names)
{
    if (*slot >= 0)
        return;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (in_list(tok_text(t, id), names)) {
            *slot = id;
            t->attr[id] |= ATTR_CONTROL;
            return;
        }
    }
}


typedef struct special_key {
    uint32_t len;
    int32_t id;
} special_key;

static int cmp_special(const void *a, const void *b)
{
    const special_key *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* UGM: the charsmap blob (copied: g may go), user-defined prefixes and the
 * unknown score. */
static int ugm_setup(mp_tokenizer *t, const mp_gguf *g, mp_err *err)
{
    const char *path = mp_gguf_path(g);
    uint32_t et;
    uint64_t n;
    const void *data;
    int st = mp_gguf_get_arr(g, "tokenizer.ggml.precompiled_charsmap", &et, &n, &data, err);
    if (st == MP_OK) {
        if (et != MP_GGUF_INT8 && et != MP_GGUF_UINT8)
            return mp_err_set(err, MP_E_CORRUPT, "%s: tokenizer.ggml.precompiled_charsmap is an array of %s, expected bytes",
                              path, mp_gguf_vtype_name(et));
        uint32_t blob = 0;
        if (n >= 4)
            memcpy(&blob, data, 4);
        if (n < 4 || (uint64_t)blob + 4 >= n)
            return mp_err_set(err, MP_E_CORRUPT,
                              "%s: tokenizer.ggml.precompiled_charsmap: XCDA size %u does not fit its %llu bytes", path,
                              blob, (unsigned long long)n);
        t->charsmap = malloc(n);
        if (!t->charsmap)
            return mp_err_set(err, MP_E_NOMEM, "%s: out of memory for the charsmap", path);
        memcpy(t->charsmap, data, n);
        t->charsmap_len = n;
        t->xcda = (const uint32_t *)(void *)(t->charsmap + 4);
        t->xcda_n = blob / 4;
        t->repl = (const char *)t->charsmap + 4 + blob;
        t->repl_n = n - 4 - blob;
    } else if (st != MP_E_NOTFOUND) {
        return st;
    }
    mp_err_clear(err);
    float min_score = FLT_MAX;
    size_t n_ud = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if ((t->attr[id] & ATTR_NORMAL) && t->score[id] < min_score)
            min_score = t->score[id];
        if (t->attr[id] & ATTR_USER_DEFINED)
            n_ud += t->text_len[id];
    }
    t->unk_score = (double)(min_score - 10.0f);
    if (mp_tok_map_init(&t->ud_prefix, n_ud + 1) != 0)
        return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!(t->attr[id] & ATTR_USER_DEFINED))
            continue;
        for (size_t l = 1; l <= t->text_len[id]; l++)
            if (mp_tok_map_put(&t->ud_prefix, tok_text(t, id), l, 1, false) != 0)
                return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);
        if (t->text_len[id] > t->max_ud_len)
            t->max_ud_len = t->text_len[id];
    }
    return MP_OK;
}

static int get_str_array(const mp_gguf *g, const char *key, bool required, uint64_t *n,
                         const mp_gguf_str **strs, mp_err *err)
{
    uint32_t et;
    const void *data;
    int st = mp_gguf_get_arr(g, key, &et, n, &data, err);
    if (st == MP_E_NOTFOUND) {
        if (required)
            return mp_err_set(err, MP_E_CORRUPT, "%s: missing key %s", mp_gguf_path(g), key);
        *n = 0;
        *strs = NULL;
        return MP_OK;
    }
    if (st != MP_OK)
        return st;
    if (et != MP_GGUF_STRING)
        return mp_err_set(err, MP_E_CORRUPT, "%s: %s is an array of %s, expected strings", mp_gguf_path(g), key,
                          mp_gguf_vtype_name(et));
    *strs = data;
    return MP_OK;
}

int mp_tokenizer_load(mp_tokenizer **out, const mp_gguf *g, mp_err *err)
{
    *out = NULL;
    const char *path = mp_gguf_path(g);
    int st;
    mp_tokenizer *t = calloc(1, sizeof(*t));
    if (!t)
        return mp_err_set(err, MP_E_NOMEM, "%s: out of memory for the tokenizer", path);

    const char *model = mp_gguf_get_str(g, "tokenizer.ggml.model");
    const char *pre = mp_gguf_get_str(g, "tokenizer.ggml.pre");
    if (!model) {
        st = mp_err_set(err, MP_E_CORRUPT, "%s: missing key tokenizer.ggml.model", path);
        goto fail;
    }
    const bool gemma4 = strcmp(model, "gemma4") == 0;
    if (strcmp(model, "llama") == 0) {
        t->type = VOCAB_SPM;
    } else if (strcmp(model, "bert") == 0) {
        t->type = VOCAB_WPM;
    } else if (strcmp(model, "t5") == 0) {
        t->type = VOCAB_UGM;
    } else if (strcmp(model, "rwkv") == 0) {
        t->type = VOCAB_RWKV;
    } else if (strcmp(model, "gpt2") == 0 || gemma4) {
        t->type = VOCAB_BPE;
        /* llama.cpp: the "gemma4" model is BPE whatever .pre says */
        if ((st = mp_pretok_lookup(gemma4 ? "gemma4" : pre, &t->pre, err)) != MP_OK)
            goto fail;
        t->pre_kind = t->pre.kind;
        t->byte_encode = mp_pretok_byte_encode(t->pre_kind);
        if (t->pre_kind == MP_PRETOK_WHITESPACE) {
            /* made for tokenizer.ggml.model = "whitespace" (jina-v2-base-zh), which
             * has its own session; under "gpt2" llama.cpp aborts on some inputs */
            st = mp_err_set(err, MP_E_UNSUPPORTED,
                            "%s: tokenizer.ggml.pre 'whitespace' is supported only with tokenizer.ggml.model "
                            "'whitespace', which is not", path);
            goto fail;
        }
    } else {
        st = mp_err_set(err, MP_E_UNSUPPORTED,
                        "%s: tokenizer.ggml.model '%s' is not supported (only 'llama', 'gpt2', 'gemma4', 'bert', 't5' and 'rwkv')", path, model);
        goto fail;
    }

    /* Vocabulary, scores, types. */
    uint64_t n_tok;
    const mp_gguf_str *toks;
    if ((st = get_str_array(g, "tokenizer.ggml.tokens", true, &n_tok, &toks, err)) != MP_OK)
        goto fail;
    if (n_tok == 0 || n_tok > (uint64_t)INT32_MAX) {
        st = mp_err_set(err, MP_E_CORRUPT, "%s: tokenizer.ggml.tokens has %llu entries", path,
                        (unsigned long long)n_tok);
        goto fail;
    }
    t->n_vocab = (int32_t)n_tok;
    const float *fscores = NULL;
    const int32_t *iscores = NULL, *types = NULL;
    {
        uint32_t et;
        uint64_t n;
        const void *data;
        st = mp_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &n, &data, err);
        if (st == MP_OK) {
            if ((et != MP_GGUF_FLOAT32 && et != MP_GGUF_INT32) || n < n_tok) {
                st = mp_err_set(err, MP_E_CORRUPT, "%s: tokenizer.ggml.scores: %llu %s values for %llu tokens",
                                path, (unsigned long long)n, mp_gguf_vtype_name(et), (unsigned long long)n_tok);
                goto fail;
            }
            if (et == MP_GGUF_FLOAT32)
                fscores = data;
            else
                iscores = data;
        } else if (st != MP_E_NOTFOUND) {
            goto fail;
        }
        st = mp_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n, &data, err);
        if (st == MP_OK) {
            if (et != MP_GGUF_INT32 || n < n_tok) {
                st = mp_err_set(err, MP_E_CORRUPT, "%s: tokenizer.ggml.token_type: %llu %s values for %llu tokens",
                                path, (unsigned long long)n, mp_gguf_vtype_name(et), (unsigned long long)n_tok);
                goto fail;
            }
            types = data;
        } else if (st != MP_E_NOTFOUND) {
            goto fail;
        }
        mp_err_clear(err);
    }

    size_t arena = 0;
    for (uint64_t i = 0; i < n_tok; i++)
        arena += (toks[i].len ? toks[i].len : 24) + 1;
    t->text_arena = malloc(arena);
    t->text_off = malloc(n_tok * sizeof(*t->text_off));
    t->text_len = malloc(n_tok * sizeof(*t->text_len));
    t->score = malloc(n_tok * sizeof(*t->score));
    t->attr = malloc(n_tok * sizeof(*t->attr));
    t->eog = calloc(n_tok, 1);
    if (!t->text_arena || !t->text_off || !t->text_len || !t->score || !t->attr || !t->eog ||
        mp_tok_map_init(&t->tok2id, n_tok) != 0) {
        st = mp_err_set(err, MP_E_NOMEM, "%s: out of memory for %llu tokens", path, (unsigned long long)n_tok);
        goto fail;
    }
    size_t off = 0;
    for (uint64_t i = 0; i < n_tok; i++) {
        char *dst = t->text_arena + off;
        size_t len = toks[i].len;
        if (len > UINT32_MAX) {
            st = mp_err_set(err, MP_E_CORRUPT, "%s: token %llu is %llu bytes long", path, (unsigned long long)i,
                            (unsigned long long)len);
            goto fail;
        }
        if (len == 0) /* llama.cpp renames empty tokens */
            len = (size_t)sprintf(dst, "[EMPTY_%llu]", (unsigned long long)i);
        else
            memcpy(dst, toks[i].ptr, len);
        dst[len] = '\0';
        t->text_off[i] = off;
        t->text_len[i] = (uint32_t)len;
        if (len > t->max_token_len)
            t->max_token_len = len;
        off += len + 1;
        t->score[i] = fscores ? fscores[i] : iscores ? (float)iscores[i] : 0.0f;
        uint16_t a = ATTR_NORMAL;
        if (types) {
            switch (types[i]) {
            case TT_UNKNOWN: a = ATTR_UNKNOWN; break;
            case TT_UNUSED: a = ATTR_UNUSED; break;
            case TT_NORMAL: a = ATTR_NORMAL; break;
            case TT_CONTROL: a = ATTR_CONTROL; break;
            case TT_USER_DEFINED: a = ATTR_USER_DEFINED; break;
            case TT_BYTE: a = ATTR_BYTE; break;
            default: a = 0; break; /* undefined */
            }
        }
        t->attr[i] = a;
        if (mp_tok_map_put(&t->tok2id, dst, len, (int32_t)i, true) != 0) {
            st = mp_err_set(err, MP_E_NOMEM, "%s: out of memory for the vocabulary map", path);
            goto fail;
        }
    }

    /* Merges: "left right", split at the first space after the first byte;
     * the first occurrence of a pair sets its rank. */
    if (t->type == VOCAB_BPE) {
        uint64_t n_merges;
        const mp_gguf_str *merges;
        /* llama.cpp loads a kimi-k2 vocab without merges (its converter
         * rebuilds them from tiktoken ranks, but need not): words then stay
         * in single byte-level symbols */
        const bool merges_required = t->pre_kind != MP_PRETOK_KIMI_K2;
        if ((st = get_str_array(g, "tokenizer.ggml.merges", merges_required, &n_merges, &merges, err)) != MP_OK)
            goto fail;
        if (mp_tok_map_init(&t->merges, n_merges) != 0) {
            st = mp_err_set(err, MP_E_NOMEM, "%s: out of memory for %llu merges", path, (unsigned long long)n_merges);
            goto fail;
        }
        char *key = NULL;
        size_t key_cap = 0;
        for (uint64_t i = 0; i < n_merges && i <= (uint64_t)INT32_MAX; i++) {
            const char *m = merges[i].ptr;
            size_t ml = merges[i].len;
            const char *sp = ml > 1 ? memchr(m + 1, ' ', ml - 1) : NULL;
            if (!sp)
                continue; /* llama.cpp stores ("", ""), which no lookup can hit */
            size_t al = (size_t)(sp - m), bl = ml - al - 1;
            if (4 + al + bl > key_cap) {
                key_cap = 2 * (4 + al + bl);
                char *nk = realloc(key, key_cap);
                if (!nk) {
                    free(key);
                    st = mp_err_set(err, MP_E_NOMEM, "%s: out of memory for merges", path);
                    goto fail;
                }
                key = nk;
            }
            uint32_t al32 = (uint32_t)al;
            memcpy(key, &al32, 4);
            memcpy(key + 4, m, al);
            memcpy(key + 4 + al, sp + 1, bl);
            if (mp_tok_map_put(&t->merges, key, 4 + al + bl, (int32_t)i, false) != 0) {
                free(key);
                st = mp_err_set(err, MP_E_NOMEM, "%s: out of memory for merges", path);
                goto fail;
            }
            if (4 + al + bl > t->max_merge_key)
                t->max_merge_key = 4 + al + bl;
        }
        free(key);
    }

    /* Defaults per model type, then the pre-tokenizer's adjustments, then
     * whatever the metadata says. */
    int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
    t->eot = t->eom = t->sep = -1;
    if (t->type == VOCAB_SPM) {
        t->bos = 1;
        t->eos = 2;
        t->unk = 0;
        t->add_space_prefix = true;
        t->add_bos = true;
        t->add_eos = false;
        t->clean_spaces = false;
    } else if (t->type == VOCAB_RWKV) {
        t->bos = t->eos = t->unk = -1;
    } else if (t->type == VOCAB_UGM) {
        t->bos = -1;
        t->eos = 1;
        t->unk = 2;
        t->add_bos = false;
        t->add_eos = true;
    } else if (t->type == VOCAB_WPM) {
        t->bos = 101; /* [CLS] */
        t->eos = -1;
        t->unk = 100;
        t->sep = 102;
        t->add_bos = true;
        t->add_sep = true;
        t->clean_spaces = true;
    } else {
        t->bos = gemma4 ? -1 : 11; /* gemma4: every special id comes from the metadata */
        t->eos = gemma4 ? -1 : 11;
        t->unk = -1;
        t->add_space_prefix = false;
        t->add_bos = t->pre.add_bos;
        t->add_eos = false;
        t->ignore_merges = t->pre.ignore_merges;
        t->clean_spaces = t->pre.clean_spaces;
        t->escape_whitespaces = t->pre.escape_whitespaces;
        t->add_sep = t->pre.add_sep;
        if (t->pre.no_bos)
            t->bos = -1;
    }
    if ((st = read_flag(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err)) != MP_OK ||
        (st = read_flag(g, "tokenizer.ggml.remove_extra_whitespaces", &t->remove_extra_ws, err)) != MP_OK)
        goto fail;
    if (t->bos >= t->n_vocab)
        t->bos = -1;
    if (t->sep >= t->n_vocab)
        t->sep = -1;
    if (t->eos >= t->n_vocab)
        t->eos = -1;
    if (t->unk >= t->n_vocab)
        t->unk = -1;
    read_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos);
    read_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos);
    read_id(g, "tokenizer.ggml.eot_token_id", t->n_vocab, &t->eot);
    read_id(g, "tokenizer.ggml.eom_token_id", t->n_vocab, &t->eom);
    read_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk);
    read_id(g, "tokenizer.ggml.seperator_token_id", t->n_vocab, &t->sep); /* sic, llama.cpp's key */
    read_id(g, "tokenizer.ggml.fim_pre_token_id", t->n_vocab, &fim_pre);
    read_id(g, "tokenizer.ggml.fim_suf_token_id", t->n_vocab, &fim_suf);
    read_id(g, "tokenizer.ggml.fim_mid_token_id", t->n_vocab, &fim_mid);
    read_id(g, "tokenizer.ggml.fim_pad_token_id", t->n_vocab, &fim_pad);
    read_id(g, "tokenizer.ggml.fim_rep_token_id", t->n_vocab, &fim_rep);
    read_id(g, "tokenizer.ggml.fim_sep_token_id", t->n_vocab, &fim_sep);
    read_id(g, "tokenizer.ggml.prefix_token_id", t->n_vocab, &fim_pre);
    read_id(g, "tokenizer.ggml.suffix_token_id", t->n_vocab, &fim_suf);
    read_id(g, "tokenizer.ggml.middle_token_id", t->n_vocab, &fim_mid);
    if ((st = read_flag(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err)) != MP_OK ||
        (st = read_flag(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err)) != MP_OK ||
        (st = read_flag(g, "tokenizer.ggml.add_sep_token", &t->add_sep, err)) != MP_OK)
        goto fail;
    if (t->type == VOCAB_BPE && t->pre_kind == MP_PRETOK_GEMMA4)
        t->add_bos = true; /* llama.cpp overrides the metadata for Gemma 4 */
    t->lowercase = true; /* BertNormalizer: strip_accents follows lowercase unless set */
    if ((st = read_flag(g, "tokenizer.ggml.normalizer.lowercase", &t->lowercase, err)) != MP_OK)
        goto fail;
    t->strip_accents = t->lowercase;
    if ((st = read_flag(g, "tokenizer.ggml.normalizer.strip_accents", &t->strip_accents, err)) != MP_OK)
        goto fail;

    detect_special(t, &t->eot, k_eot_names);
    detect_special(t, &t->eom, k_eom_names);
    detect_special(t, &fim_pre, k_fim_pre_names);
    detect_special(t, &fim_suf, k_fim_suf_names);
    detect_special(t, &fim_mid, k_fim_mid_names);
    detect_special(t, &fim_pad, k_fim_pad_names);
    detect_special(t, &fim_rep, k_fim_rep_names);
    detect_special(t, &fim_sep, k_fim_sep_names);

    /* End-of-generation set. */
    if (fim_pad >= 0)
        t->eog[fim_pad] = 1;
    if (fim_rep >= 0)
        t->eog[fim_rep] = 1;
    if (fim_sep >= 0)
        t->eog[fim_sep] = 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = tok_text(t, id);
        if (in_list(s, k_eog_names)) {
            t->eog[id] = 1;
            t->attr[id] |= ATTR_CONTROL;
        }
        /* gpt-oss: these are rendered, never treated as control */
        if (strcmp(s, "<|channel|>") == 0 || strcmp(s, "<|message|>") == 0 || strcmp(s, "<|start|>") == 0 ||
            strcmp(s, "<|constrain|>") == 0)
            t->attr[id] = ATTR_USER_DEFINED;
    }
    if (t->eos >= 0)
        t->eog[t->eos] = 1;
    if (t->eot >= 0)
        t->eog[t->eot] = 1;
    if (t->eom >= 0)
        t->eog[t->eom] = 1;
    {
        /* o200k_harmony / solar-open: "<|end|>" is not an end of generation
         * when "<|return|>"+"<|call|>" or "<|calls|>"+"<|flush|>" exist;
         * gemma4: "</s>" is not one when "<|tool_response>" exists. */
        bool has_return = false, has_call = false, has_flush = false, has_tool_response = false;
        int32_t end_id = -1, s_id = -1;
        for (int32_t id = 0; id < t->n_vocab; id++) {
            if (!t->eog[id])
                continue;
            const char *s = tok_text(t, id);
            if (strcmp(s, "<|return|>") == 0)
                has_return = true;
            else if (strcmp(s, "<|call|>") == 0 || strcmp(s, "<|calls|>") == 0)
                has_call = true;
            else if (strcmp(s, "<|flush|>") == 0)
                has_flush = true;
            else if (strcmp(s, "<|end|>") == 0)
                end_id = id;
            else if (strcmp(s, "<|tool_response>") == 0)
                has_tool_response = true;
            else if (strcmp(s, "</s>") == 0)
                s_id = id;
        }
        if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
            t->eog[end_id] = 0;
            t->attr[end_id] = ATTR_USER_DEFINED;
        }
        if (has_tool_response && s_id >= 0) {
            t->eog[s_id] = 0;
            t->attr[s_id] = ATTR_NORMAL;
        }
    }

    /* Special tokens for partitioning, longest text first (ties by id so
     * the order is deterministic). */
    {
        int32_t ns = 0;
        for (int32_t id = 0; id < t->n_vocab; id++)
            if (t->attr[id] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN))
                ns++;
        special_key *keys = malloc((ns ? (size_t)ns : 1) * sizeof(*keys));
        t->special = malloc((ns ? (size_t)ns : 1) * sizeof(*t->special));
        if (!keys || !t->special) {
            free(keys);
            st = mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        ns = 0;
        for (int32_t id = 0; id < t->n_vocab; id++)
            if (t->attr[id] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN))
                keys[ns++] = (special_key){t->text_len[id], id};
        qsort(keys, (size_t)ns, sizeof(*keys), cmp_special);
        for (int32_t i = 0; i < ns; i++)
            t->special[i] = keys[i].id;
        t->n_special = ns;
        free(keys);
    }

    /* Per-model strip flags that llama.cpp sets by name (the GGUF has no
     * per-token attributes): after the special list is built, so only the
     * strip behaviour changes. */
    {
        const char *gname = mp_gguf_get_str(g, "general.name");
        const char *arch = mp_gguf_get_str(g, "general.architecture");
        char lname[256] = "";
        for (size_t i = 0; gname && gname[i] && i + 1 < sizeof(lname); i++) {
            lname[i] = (char)tolower((unsigned char)gname[i]);
            lname[i + 1] = '\0';
        }
        const char *p = pre ? pre : "";
        int32_t id;
        if (strstr(p, "jina-v2-de") || strstr(p, "jina-v2-es") || strstr(p, "jina-v2-code") ||
            (arch && (strstr(arch, "nomic-bert-moe") || strstr(arch, "jina-bert-v3")))) {
            if ((id = mp_tok_map_get(&t->tok2id, "<mask>", 6)) >= 0)
                t->attr[id] |= ATTR_LSTRIP;
        } else if (strstr(lname, "phi-3") || strstr(lname, "phi3")) {
            for (int32_t i = 0; i < t->n_special; i++)
                t->attr[t->special[i]] |= ATTR_RSTRIP;
            if ((id = mp_tok_map_get(&t->tok2id, "</s>", 4)) >= 0)
                t->attr[id] |= ATTR_RSTRIP;
            static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
            for (size_t k = 0; k < 3; k++)
                if ((id = mp_tok_map_get(&t->tok2id, keep[k], strlen(keep[k]))) >= 0)
                    t->attr[id] &= (uint16_t)~ATTR_RSTRIP;
        } else if (strstr(lname, "modern-bert")) {
            if ((id = mp_tok_map_get(&t->tok2id, "[MASK]", 6)) >= 0)
                t->attr[id] |= ATTR_LSTRIP;
        }
    }

    /* Byte tokens and the byte-level alphabet. */
    for (int b = 0; b < 256; b++) {
        char u[4];
        size_t ul = mp_utf8_encode(mp_byte_to_cpt((uint8_t)b), u);
        memcpy(t->byte_enc[b], u, ul); /* the alphabet stays below U+0800: 1-2 bytes */
        t->byte_enc_len[b] = (uint8_t)ul;
        if (t->type == VOCAB_SPM) {
            char hex[8];
            snprintf(hex, sizeof(hex), "<0x%02X>", b);
            int32_t id = mp_tok_map_get(&t->tok2id, hex, 6);
            if (id < 0) {
                char c = (char)b;
                id = mp_tok_map_get(&t->tok2id, &c, 1);
            }
            t->byte_id[b] = id;
        } else {
            t->byte_id[b] = mp_tok_map_get(&t->tok2id, u, ul);
        }
    }

    if (t->type == VOCAB_BPE && (st = mp_pretok_create(&t->pretok, t->pre_kind, err)) != MP_OK)
        goto fail;
    if (t->type == VOCAB_UGM && (st = ugm_setup(t, g, err)) != MP_OK)
        goto fail;
    if (t->type == VOCAB_RWKV && (st = rwkv_setup(t, err, path)) != MP_OK)
        goto fail;
    if (t->type == VOCAB_WPM && (st = mp_cpt_init()) != MP_OK) {
        st = mp_err_set(err, st, "tokenizer: cannot build the Unicode category table");
        goto fail;
    }

    *out = t;
    return MP_OK;
fail:
    mp_tokenizer_free(t);
    return st;
}

int32_t mp_tokenizer_n_vocab(const mp_tokenizer *t) { return t->n_vocab; }
int32_t mp_tokenizer_bos(const mp_tokenizer *t) { return t->bos; }
int32_t mp_tokenizer_eos(const mp_tokenizer *t) { return t->eos; }
int32_t mp_tokenizer_eot(const mp_tokenizer *t) { return t->eot; }
int32_t mp_tokenizer_unk(const mp_tokenizer *t) { return t->unk; }
bool mp_tokenizer_add_bos(const mp_tokenizer *t) { return t->add_bos; }
bool mp_tokenizer_add_eos(const mp_tokenizer *t) { return t->add_eos; }
bool mp_tokenizer_add_space_prefix(const mp_tokenizer *t) { return t->add_space_prefix; }
bool mp_tokenizer_clean_spaces(const mp_tokenizer *t) { return t->clean_spaces; }
bool mp_tokenizer_add_sep(const mp_tokenizer *t) { return t->add_sep; }

bool mp_tokenizer_is_eog(const mp_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

bool mp_tokenizer_is_control(const mp_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab && (t->attr[id] & (ATTR_CONTROL | ATTR_UNKNOWN));
}

const char *mp_tokenizer_token_text(const mp_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab ? tok_text(t, id) : NULL;
}

int32_t mp_tokenizer_find(const mp_tokenizer *t, const char *text, size_t len)
{
    return mp_tok_map_get(&t->tok2id, text, len);
}
