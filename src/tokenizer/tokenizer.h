/* Tokenizers built from GGUF metadata, matching llama.cpp (src/llama-vocab.cpp):
 * SentencePiece (tokenizer.ggml.model = "llama"), byte-level BPE ("gpt2")
 * with the pre-tokenizer named by tokenizer.ggml.pre (every name llama.cpp
 * knows: pretok.h), SPM-style BPE on raw UTF-8 ("gemma4"), WordPiece
 * ("bert") and Unigram ("t5"); other models ("rwkv", "plamo2", ...) are
 * refused by name. Special tokens, BOS/EOS/SEP flags, and detokenisation
 * that round-trips bytes. */
#ifndef MP_TOKENIZER_H
#define MP_TOKENIZER_H

#include "common/err.h"
#include "gguf/gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mp_tokenizer mp_tokenizer;

/* Builds a tokenizer from g's tokenizer.ggml.* metadata (g may be freed
 * afterwards). MP_E_UNSUPPORTED names an unknown tokenizer model or
 * pre-tokenizer; MP_E_CORRUPT a malformed vocabulary (key named). */
int mp_tokenizer_load(mp_tokenizer **out, const mp_gguf *g, mp_err *err);
void mp_tokenizer_free(mp_tokenizer *tok); /* NULL-safe */

int32_t mp_tokenizer_n_vocab(const mp_tokenizer *tok);
int32_t mp_tokenizer_bos(const mp_tokenizer *tok);     /* -1 if none */
int32_t mp_tokenizer_eos(const mp_tokenizer *tok);     /* -1 if none */
bool mp_tokenizer_add_bos(const mp_tokenizer *tok);    /* add BOS by default? */
bool mp_tokenizer_is_eog(const mp_tokenizer *tok, int32_t id); /* end of generation */

/* Tokenizes text[0..len). add_special: add BOS (and EOS) as the vocab's
 * flags say; parse_special: recognise control/special token texts in the
 * input. Writes up to cap ids and returns the total number of ids (which may
 * exceed cap: call again with a bigger buffer), or a negative status. */
int64_t mp_tokenize(const mp_tokenizer *tok, const char *text, size_t len, bool add_special,
                    bool parse_special, int32_t *ids, int64_t cap);

/* Bytes that token id contributes to the output text (SPM: '▁' -> ' ', byte
 * tokens -> the byte; BPE: byte-level decoding). special: render control
 * tokens' text too. Writes up to cap bytes (no NUL) and returns the full
 * length, or a negative status for an invalid id. */
int mp_token_to_piece(const mp_tokenizer *tok, int32_t id, char *buf, int cap, bool special);

/* Extra accessors (all NULL/-1 safe for out-of-range ids). */
int32_t mp_tokenizer_eot(const mp_tokenizer *tok);           /* -1 if none */
int32_t mp_tokenizer_unk(const mp_tokenizer *tok);           /* -1 if none */
bool mp_tokenizer_add_eos(const mp_tokenizer *tok);          /* add EOS by default? */
/* SPM: a space is put before the text (and after each special token). */
bool mp_tokenizer_add_space_prefix(const mp_tokenizer *tok);
/* Detokenizing removes the space before punctuation and in contractions
 * (llama.cpp's clean_spaces, set per tokenizer.ggml.pre). */
bool mp_tokenizer_clean_spaces(const mp_tokenizer *tok);
/* A SEP token is added by default (embedding vocabularies). */
bool mp_tokenizer_add_sep(const mp_tokenizer *tok);
/* Control or unknown token (rendered only with special = true). */
bool mp_tokenizer_is_control(const mp_tokenizer *tok, int32_t id);
/* The token's raw vocabulary text (NUL-terminated, owned by tok), or NULL. */
const char *mp_tokenizer_token_text(const mp_tokenizer *tok, int32_t id);
/* Id of the token whose raw text is text[0..len), or -1. */
int32_t mp_tokenizer_find(const mp_tokenizer *tok, const char *text, size_t len);

#endif
