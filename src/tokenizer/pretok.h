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

/* Pre-tokenizer families: one per distinct regex list of llama.cpp's
 * LLAMA_VOCAB_PRE_TYPE_* (types whose lists are equal share a family; the
 * per-name flags live in mp_pretok_info). */
typedef enum mp_pretok_kind {
    MP_PRETOK_DEFAULT = 0,  /* "default" or missing */
    MP_PRETOK_GPT2,         /* "gpt-2", "mpt", "olmo", "jais", "trillion", ... */
    MP_PRETOK_LLAMA3,       /* "llama3"/"llama-bpe" (+ ignore_merges, add_bos) */
    MP_PRETOK_DBRX,         /* Llama-3 regex, merges not ignored ("dbrx", "smaug-bpe") */
    MP_PRETOK_CHATGLM4,     /* Llama-3 regex, no default BOS ("glm4", "chatglm-bpe") */
    MP_PRETOK_QWEN2,        /* "qwen2", "stablelm2", "hunyuan", "grok-2", ... */
    MP_PRETOK_DEEPSEEK_LLM, /* "deepseek-llm" */
    MP_PRETOK_DEEPSEEK_CODER, /* "deepseek-coder" */
    MP_PRETOK_DEEPSEEK3,    /* "deepseek-v3" (DeepSeek-V3/R1/V3.1), "hunyuan-dense", "joyai-llm", "hy_v4" */
    MP_PRETOK_KIMI_K2,      /* "kimi-k2": Llama-3-like, Han runs apart (merges may be absent) */
    MP_PRETOK_QWEN35,       /* "qwen35": Qwen2 with combining marks in letter runs */
    MP_PRETOK_FALCON,       /* "falcon" */
    MP_PRETOK_STARCODER,    /* single digits, then GPT-2: "starcoder", "refact", "command-r", "smollm", ... */
    MP_PRETOK_BLOOM,        /* " ?[^(\\s|.,!?...)]+": "bloom", "poro-chat", "gpt3-finnish" */
    MP_PRETOK_VIKING,       /* BLOOM's, then single digits */
    MP_PRETOK_TEKKEN,       /* "tekken" (Mistral Nemo): the GPT-4o case trick, single digits */
    MP_PRETOK_CHAMELEON,    /* "chameleon" */
    MP_PRETOK_GPT4O,        /* "gpt-4o" (o200k), "llama4", "minimax-m2", "kanana2", "talkie" */
    MP_PRETOK_GRANITE_EMB_MULTI, /* "granite-embed-multi-97m": GPT-4o with marks */
    MP_PRETOK_TINY_AYA,     /* "tiny_aya", "cohere2moe": digit groups from the right, then o200k-like */
    MP_PRETOK_SUPERBPE,     /* "superbpe" */
    MP_PRETOK_BAILINGMOE,   /* "bailingmoe", "bailingmoe2", "llada-moe" */
    MP_PRETOK_SEED_CODER,   /* "seed-coder" */
    MP_PRETOK_UFAKZEKA,     /* "ufakzeka": Qwen2 without contractions */
    MP_PRETOK_AFMOE,        /* "afmoe" */
    MP_PRETOK_LAGUNA,       /* "laguna": lines, then Qwen2 */
    MP_PRETOK_EXAONE_MOE,   /* "exaone-moe" */
    MP_PRETOK_GEMMA4,       /* "gemma4", "granite-embed-multi-311m": lines only, raw UTF-8 (no byte-level alphabet) */
    MP_PRETOK_SARVAM_MOE,   /* "sarvam-moe": Gemma 4's splits without its BOS and newline-run rules */
    MP_PRETOK_MINICPM5,     /* "minicpm5" */
    MP_PRETOK_WHITESPACE,   /* "whitespace": \S+ runs, raw UTF-8 */
    MP_PRETOK_JAIS2,        /* "jais-2": Llama-3 with cascading whitespace runs */
    MP_PRETOK_SPARK2_5,     /* "spark2_5" */
    MP_PRETOK_YOUTU,        /* "youtu" */
    MP_PRETOK_COUNT
} mp_pretok_kind;

/* What a tokenizer.ggml.pre name sets besides its family (llama-vocab.cpp
 * sets these per name before the metadata flags are read). */
typedef struct mp_pretok_info {
    mp_pretok_kind kind;
    bool ignore_merges;      /* a word that is a whole token is taken as is */
    bool add_bos;            /* BOS added by default */
    bool clean_spaces;       /* detokenizer removes spaces before punctuation */
    bool escape_whitespaces; /* ' ' -> U+2581 before splitting (SPM-style BPE) */
    bool add_sep;            /* SEP added by default (embedding models) */
    bool no_bos;             /* the default BOS id is dropped (GLM) */
} mp_pretok_info;

/* Maps a tokenizer.ggml.pre value (NULL or "" = missing) to its family.
 * Returns MP_OK or MP_E_UNSUPPORTED (err names the value). */
int mp_pretok_kind_from_name(const char *pre, mp_pretok_kind *kind, mp_err *err);
/* The same with the per-name flags. */
int mp_pretok_lookup(const char *pre, mp_pretok_info *info, mp_err *err);
/* Name of each tokenizer.ggml.pre value known, in turn (i = 0, 1, ...;
 * NULL past the end): for tests and listings. */
const char *mp_pretok_name_at(size_t i);
/* Whether words are byte-level encoded (GPT-2 alphabet) before merging;
 * false for the SPM-style BPE families (raw UTF-8, <0xXX> byte fallback). */
bool mp_pretok_byte_encode(mp_pretok_kind kind);

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
