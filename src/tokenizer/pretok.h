/* Byte-level BPE pre-tokenizers: split text into words exactly as
 * llama.cpp's unicode_regex_split() does for the regex list of each
 * tokenizer.ggml.pre value. Regexes that llama.cpp runs through a hand-written
 * matcher (the GPT-2, Llama-3, Qwen2 and Kimi-K2 patterns) get equivalent
 * hand-written matchers here; the others run through PCRE2 with llama.cpp's rewriting
 * (\p{..} classes on a one-byte-per-code-point "collapsed" text, non-ASCII
 * whitespace as \v), so both give the same splits.
 * Internal to src/tokenizer/ (and its tests). */
#ifndef MP_PRETOK_H
#define MP_PRETOK_H

#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mp_pretok mp_pretok;

/* Pre-tokenizer families (what llama.cpp calls LLAMA_VOCAB_PRE_TYPE_*). */
typedef enum mp_pretok_kind {
    MP_PRETOK_DEFAULT = 0,  /* "default" or missing */
    MP_PRETOK_GPT2,         /* "gpt-2" and friends */
    MP_PRETOK_LLAMA3,       /* "llama3"/"llama-bpe" (+ ignore_merges, add_bos) */
    MP_PRETOK_DBRX,         /* Llama-3 regex, merges not ignored ("dbrx", "smaug-bpe") */
    MP_PRETOK_CHATGLM4,     /* Llama-3 regex, no default BOS ("glm4", "chatglm-bpe") */
    MP_PRETOK_QWEN2,        /* "qwen2" and friends */
    MP_PRETOK_DEEPSEEK_LLM, /* "deepseek-llm" */
    MP_PRETOK_DEEPSEEK_CODER, /* "deepseek-coder" */
    MP_PRETOK_DEEPSEEK3,    /* "deepseek-v3" (DeepSeek-V3/R1/V3.1), "hunyuan-dense", "joyai-llm", "hy_v4" */
    MP_PRETOK_KIMI_K2,      /* "kimi-k2": Llama-3-like, Han runs apart (merges may be absent) */
} mp_pretok_kind;

/* Maps a tokenizer.ggml.pre value (NULL or "" = missing) to its family.
 * Returns MP_OK or MP_E_UNSUPPORTED (err names the value). */
int mp_pretok_kind_from_name(const char *pre, mp_pretok_kind *kind, mp_err *err);

/* Compiles the regex list of `kind`. Returns MP_OK, MP_E_NOMEM or
 * MP_E_UNSUPPORTED (a regex PCRE2 refused; err says which). */
int mp_pretok_create(mp_pretok **out, mp_pretok_kind kind, mp_err *err);
void mp_pretok_free(mp_pretok *p); /* NULL-safe */

/* Splits cpts[0..n) (code points, as mp_utf8_to_cpts decodes them) into
 * words. On success *word_lens (malloc'd, caller frees) holds the length of
 * each word in code points, in order, summing to n, and the word count is
 * returned; a negative status on failure (OOM, PCRE2 match error). Thread
 * safe: a pretok may be used by several threads at once. */
int64_t mp_pretok_split(const mp_pretok *p, const uint32_t *cpts, size_t n, size_t **word_lens);

#endif
